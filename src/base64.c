/* Base64 through OpenSSL. EVP_DecodeBlock skips leading and trailing
 * whitespace and counts padding as zero bytes, so the text is checked first
 * and the padding subtracted after: what decodes is exactly what
 * gradeq_base64_encode() writes. */
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "gradeq/base64.h"

char *gradeq_base64_encode(const void *data, size_t len)
{
	char *out;

	if (len > (size_t)INT_MAX / 4 * 3 - 3)
		return NULL;
	out = malloc(4 * ((len + 2) / 3) + 1);
	if (!out)
		return NULL;
	if (len == 0)
		out[0] = '\0';
	else
		EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

size_t gradeq_base64_decoded_max(size_t n)
{
	return n / 4 * 3 + 3;
}

static bool b64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

/* The number of padding characters of a well-formed text, or -1. */
static int b64_padding(const char *s, size_t n)
{
	int pad = 0;

	if (n % 4)
		return -1;
	if (n && s[n - 1] == '=')
		pad = s[n - 2] == '=' ? 2 : 1;
	for (size_t i = 0; i < n - (size_t)pad; i++)
		if (!b64_char(s[i]))
			return -1;
	return pad;
}

long gradeq_base64_decode(const char *s, unsigned char *out)
{
	size_t n = strlen(s);
	int pad = b64_padding(s, n), got;

	if (pad < 0 || n > INT_MAX)
		return -1;
	if (n == 0)
		return 0;
	got = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
	if (got < pad)
		return -1;
	return (long)got - pad;
}
