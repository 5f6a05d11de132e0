/* The job message (DESIGN.md section 4): a msgpack map in the body. */
#ifndef GRADEQ_JOB_H
#define GRADEQ_JOB_H

#include <stddef.h>
#include <stdint.h>

#include "gradeq/err.h"

/* The schema this release writes, and the oldest it still reads. */
#define GRADEQ_SCHEMA_VERSION 2
#define GRADEQ_SCHEMA_MIN 1
/* Upper bound on user ids in one job; larger arrays are rejected. */
#define GRADEQ_JOB_MAX_USERS 100000

struct gradeq_job {
	int schema;
	char job_id[37]; /* UUID text */
	char run_id[37];
	char *course_id;
	char *release;
	int32_t *user_ids;
	size_t nusers;
	int64_t created_us; /* when the producer cut the batch */
	uint32_t seq;       /* batch number within the course, from 0 */
};

/* Encodes job as schema 'schema' (GRADEQ_SCHEMA_MIN..GRADEQ_SCHEMA_VERSION)
 * into a malloc'd buffer. */
int gradeq_job_encode(const struct gradeq_job *job, int schema, char **buf,
		      size_t *len) GRADEQ_MUST_CHECK;

/* Decodes a body. GRADEQ_ERR_DECODE when it is not a job (err says what is
 * wrong), GRADEQ_ERR_SCHEMA when its version is not one this release reads
 * (err names the version seen and those accepted). *out is malloc'd. */
int gradeq_job_decode(const void *buf, size_t len, struct gradeq_job **out, char *err,
		      size_t errlen) GRADEQ_MUST_CHECK;

void gradeq_job_free(struct gradeq_job *job);

/* Writes a random (version 4) UUID into out[37]. */
void gradeq_uuid(char out[37]);

#endif
