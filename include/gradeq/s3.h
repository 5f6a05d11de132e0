/* The s3 output backend's pieces: SigV4 query presigning (pure, tested
 * against AWS's published example) and the object calls over libcurl
 * (CURLOPT_AWS_SIGV4 signs those). Credentials come from files; they are
 * never logged and never put on a command line. */
#ifndef GRADEQ_S3_H
#define GRADEQ_S3_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gradeq/err.h"

struct gradeq_s3 {
	char *endpoint; /* scheme://host[:port], no trailing slash */
	char *bucket;
	char *region;
	char *access;
	char *secret;
};

/* A presigned GET of https?://HOST/PATH (path already URI-encoded, starting
 * with '/'), valid expires_s seconds from `now` (UTC seconds), signed for
 * host only with UNSIGNED-PAYLOAD; into buf. Virtual-hosted or path-style
 * is the caller's choice: it gives the host and path. */
int gradeq_s3_presign_url(const char *scheme, const char *host, const char *path,
			  const char *region, const char *access, const char *secret, int64_t now,
			  long expires_s, char *buf, size_t len) GRADEQ_MUST_CHECK;

/* RFC 3986 unreserved bytes kept, others %XX; '/' kept when keep_slash. */
void gradeq_s3_uri_encode(const char *in, int keep_slash, char *out, size_t len);

int gradeq_s3_open(const char *endpoint, const char *bucket, const char *region,
		   const char *access_file, const char *secret_file,
		   struct gradeq_s3 **out) GRADEQ_MUST_CHECK;
void gradeq_s3_free(struct gradeq_s3 *s);

/* PUT of a buffer, or of `len` bytes read from fp whose SHA-256 (hex) the
 * caller knows: S3 checks the bytes it receives against it. */
int gradeq_s3_put(struct gradeq_s3 *s, const char *key, const void *data,
		  size_t len) GRADEQ_MUST_CHECK;
int gradeq_s3_put_file(struct gradeq_s3 *s, const char *key, FILE *fp, long long len,
		       const char *sha256) GRADEQ_MUST_CHECK;
/* GET into fp. GRADEQ_ERR_NOT_FOUND on 404. */
int gradeq_s3_get(struct gradeq_s3 *s, const char *key, FILE *fp) GRADEQ_MUST_CHECK;
/* DELETE; a missing object is no error (S3 answers 204 either way). */
int gradeq_s3_delete(struct gradeq_s3 *s, const char *key) GRADEQ_MUST_CHECK;
/* A presigned GET URL of key, valid expires_s seconds. */
int gradeq_s3_presign(const struct gradeq_s3 *s, const char *key, long expires_s, char *buf,
		      size_t len) GRADEQ_MUST_CHECK;

#endif
