/* Signed, expiring download links for job outputs (issue 18): HMAC-SHA256
 * over the output id, the user and the expiry, with a key read from a
 * secret file (output_link_key_file), never from argv. A leaked link ends
 * at its expiry; a changed id, user or expiry breaks its signature. Pure
 * apart from reading the key file. */
#ifndef GRADEQ_OUTPUTLINK_H
#define GRADEQ_OUTPUTLINK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "gradeq/err.h"

#define GRADEQ_LINK_SIG_HEX 65
/* Shortest key accepted: 32 bytes, the size of the HMAC-SHA256 output. */
#define GRADEQ_LINK_KEY_MIN 32
#define GRADEQ_LINK_KEY_MAX 4096

/* Reads the key file: its bytes, one trailing newline dropped; at least
 * GRADEQ_LINK_KEY_MIN bytes. GRADEQ_ERR_CONFIG with the reason otherwise. */
int gradeq_link_key_read(const char *path, unsigned char *key, size_t *len) GRADEQ_MUST_CHECK;

/* The signature of (output_id, user, expires) as 64 hex digits. */
void gradeq_link_sign(const unsigned char *key, size_t keylen, const char *output_id, int32_t user,
		      int64_t expires, char sig[GRADEQ_LINK_SIG_HEX]);

/* Checks a link's fields at time now: 0 when the signature holds and
 * expires is not past; GRADEQ_ERR_ACCESS ("link expired" or "link
 * signature does not match") otherwise. Constant-time comparison. */
int gradeq_link_verify(const unsigned char *key, size_t keylen, const char *output_id, int32_t user,
		       int64_t expires, const char *sig, time_t now) GRADEQ_MUST_CHECK;

/* The link path and query: "/outputs/ID?user=U&expires=E&sig=S" into buf. */
int gradeq_link_path(char *buf, size_t len, const char *output_id, int32_t user, int64_t expires,
		     const char *sig) GRADEQ_MUST_CHECK;

#endif
