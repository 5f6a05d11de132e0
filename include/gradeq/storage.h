/* Where job outputs are kept, behind one interface chosen by configuration
 * (output_backend): task code (report_job.c, report.c) never knows which
 * backend it writes to. The file backend keeps an output as one file in
 * output_dir, its parts beside it until it is sealed; the s3 backend keeps
 * it as one object in s3_bucket, its parts as objects KEY.parts/NNNNNN. */
#ifndef GRADEQ_STORAGE_H
#define GRADEQ_STORAGE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gradeq/err.h"

struct gradeq_config;
struct gradeq_storage;

/* Opens the configured backend. GRADEQ_ERR_CONFIG with the reason when it
 * cannot be used (the directory cannot be created, say). */
int gradeq_storage_open(const struct gradeq_config *cfg,
			struct gradeq_storage **out) GRADEQ_MUST_CHECK;
void gradeq_storage_free(struct gradeq_storage *s);

/* "file" or "s3": what goes in gradeq_outputs.backend. */
const char *gradeq_storage_backend(const struct gradeq_storage *s);

/* Stores part number `part` of the output `key` (replacing one stored
 * before: a retried part writes the same bytes), durably. */
int gradeq_storage_put_part(struct gradeq_storage *s, const char *key, uint32_t part,
			    const void *data, size_t len) GRADEQ_MUST_CHECK;

/* Seals `key`: header, then parts 0..nparts-1 in order, as one object that
 * appears whole or not at all (file: written beside, fsync'd, renamed,
 * the directory fsync'd). *size and sha256 (64 hex digits) describe it.
 * GRADEQ_ERR_NOT_FOUND when a part is missing. Sealing again rebuilds the
 * same bytes. */
int gradeq_storage_seal(struct gradeq_storage *s, const char *key, const void *header, size_t hlen,
			uint32_t nparts, long long *size, char sha256[65]) GRADEQ_MUST_CHECK;

/* Drops the parts of a sealed output (best effort after the seal is
 * committed). */
void gradeq_storage_drop_parts(struct gradeq_storage *s, const char *key, uint32_t nparts);

/* Removes the output and its parts; an absent object is no error. */
int gradeq_storage_remove(struct gradeq_storage *s, const char *key,
			  uint32_t nparts) GRADEQ_MUST_CHECK;

/* The file backend's path of a sealed output, into buf. */
int gradeq_storage_path(const struct gradeq_storage *s, const char *key, char *buf,
			size_t len) GRADEQ_MUST_CHECK;

/* The s3 backend's copy of a sealed output into fp (from its current
 * position), for gradeq-web to send a use-once output itself.
 * GRADEQ_ERR_NOT_FOUND when the object is gone; GRADEQ_ERR_INVALID on the
 * file backend. */
int gradeq_storage_fetch(struct gradeq_storage *s, const char *key, FILE *fp) GRADEQ_MUST_CHECK;

/* The s3 backend's presigned GET URL of a sealed output, valid expires_s
 * seconds (gradeq-web redirects a download to it); GRADEQ_ERR_INVALID on
 * the file backend. */
int gradeq_storage_presign(const struct gradeq_storage *s, const char *key, long expires_s,
			   char *buf, size_t len) GRADEQ_MUST_CHECK;

#endif
