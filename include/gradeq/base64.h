/* Base64 (RFC 4648, with padding, no line breaks) through OpenSSL's
 * EVP_EncodeBlock/EVP_DecodeBlock, with the strict checks they leave out. */
#ifndef GRADEQ_BASE64_H
#define GRADEQ_BASE64_H

#include <stddef.h>

#include "gradeq/err.h"

/* The malloc'd, NUL-terminated base64 of len bytes of data (len 0: "").
 * NULL when out of memory. */
char *gradeq_base64_encode(const void *data, size_t len);

/* The most bytes gradeq_base64_decode() writes for a text of n characters. */
size_t gradeq_base64_decoded_max(size_t n);

/* Decodes the NUL-terminated s into out (gradeq_base64_decoded_max(strlen(s))
 * bytes) and returns the number of bytes, or -1 when s is not canonical
 * base64: a length that is not a multiple of 4, a character outside the
 * alphabet, whitespace, or padding anywhere but at the end. */
long gradeq_base64_decode(const char *s, unsigned char *out);

#endif
