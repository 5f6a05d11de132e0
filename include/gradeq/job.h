/* The job message (DESIGN.md section 4): a msgpack map in the body. */
#ifndef GRADEQ_JOB_H
#define GRADEQ_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gradeq/err.h"

struct gradeq_jobtype;

/* The schema this release writes, and the oldest it still reads. */
#define GRADEQ_SCHEMA_VERSION 3
#define GRADEQ_SCHEMA_MIN 1
/* Upper bound on user ids in one job; larger arrays are rejected. */
#define GRADEQ_JOB_MAX_USERS 100000
/* Deepest nesting of msgpack containers in a body: a job is a map holding
 * arrays; room for keys a later release may add, well under msgpack-c's
 * own limit (32), which it reports as out of memory. */
#define GRADEQ_JOB_MAX_DEPTH 8

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
	size_t body_bytes;  /* size of the decoded body; 0 when not decoded */
	/* The job type (jobtype.h); NULL when encoding means the default,
	 * grading. Decoding always sets it. */
	const struct gradeq_jobtype *type;
	/* The type's own fields, made by its decode_args and freed by its
	 * free_args (gradeq_job_free does); NULL for a type without args. */
	void *args;
};

/* Body layout, a msgpack map with string keys (order is not significant):
 *   schema 3: schema 2 and {"type": str (a registered job type, jobtype.h),
 *              "args": map (only for a type that has args; its decoder
 *              reads it)}
 *   schema 2: {"schema": 2, "job": uuid, "run": uuid, "course": str,
 *              "release": str, "users": [int32...], "created": int64 (us),
 *              "seq": uint32}
 *   schema 1: {"schema": 1, "job": uuid, "run": uuid, "course": str,
 *              "release": str, "user_ids": [int32...]}
 * Keys a schema does not name are ignored, so a later release may add some. */

/* Encodes job as schema 'schema' (GRADEQ_SCHEMA_MIN..GRADEQ_SCHEMA_VERSION)
 * into a malloc'd buffer (*buf, *len; the caller frees it). Fields the schema
 * lacks are left out (schema 1 drops created_us and seq; schemas 1 and 2
 * carry no type, so they can only carry a grading job). Returns
 * GRADEQ_ERR_SCHEMA for another version, GRADEQ_ERR_INVALID when the job is
 * one the decoder would refuse (ids not UUIDs, empty course or release, a user
 * id not positive, more than GRADEQ_JOB_MAX_USERS), GRADEQ_ERR_NOMEM; on error
 * *buf is NULL and gradeq_errmsg() says why. */
int gradeq_job_encode(const struct gradeq_job *job, int schema, char **buf,
		      size_t *len) GRADEQ_MUST_CHECK;

/* Decodes a body. GRADEQ_ERR_DECODE when it is not a job (err says what is
 * wrong), GRADEQ_ERR_SCHEMA when its version is not one this release reads
 * (err names the version seen and those accepted). *out is malloc'd, free it
 * with gradeq_job_free(); NULL on error. err (may be NULL) gets one line.
 * Safe on hostile bytes: memory is bounded by a small multiple of len.
 * UUIDs come back in lower case; a schema 1 job has created_us = seq = 0;
 * an empty user list gives nusers = 0 and user_ids = NULL; body_bytes = len;
 * a body of schema 1 or 2 is of the default type; an unknown type name is
 * GRADEQ_ERR_DECODE ("unknown job type ..."), never executed. */
int gradeq_job_decode(const void *buf, size_t len, struct gradeq_job **out, char *err,
		      size_t errlen) GRADEQ_MUST_CHECK;

/* Frees a job and its course_id, release, user_ids (all malloc'd) and args
 * (through its type's free_args); NULL is a no-op. */
void gradeq_job_free(struct gradeq_job *job);

/* The digest of a batch's user ids recorded in its job row at publish
 * time: SHA-256 of the ids as little-endian int32, in batch order, as 64
 * lower-case hex digits in out[65]. An empty list digests the empty input. */
#define GRADEQ_JOB_DIGEST_HEX 65
void gradeq_job_users_digest(const int32_t *ids, size_t n, char out[GRADEQ_JOB_DIGEST_HEX]);

/* The job's type, the default one when job->type is NULL. */
const struct gradeq_jobtype *gradeq_job_type(const struct gradeq_job *job);

/* The job's type name, as the AMQP `type` property carries it. */
const char *gradeq_job_type_name(const struct gradeq_job *job);

/* What the store recorded for a job id at publish time (DESIGN.md section
 * 4: a job body must match its row). */
struct gradeq_job_record {
	bool known;     /* a job row with this id exists */
	bool run_known; /* the run the body names exists */
	char run_id[37];
	char *course_id; /* malloc'd; NULL when not known */
	long long learners;
	char digest[GRADEQ_JOB_DIGEST_HEX]; /* "" for rows recorded before digests */
};

/* Frees rec->course_id; the record may be reused. */
void gradeq_job_record_release(struct gradeq_job_record *rec);

/* Checks a decoded job against its record. 0 when they match;
 * GRADEQ_ERR_NOT_FOUND ("unknown job: ...") when gradeq never recorded the
 * job id or the run the body names; GRADEQ_ERR_INVALID ("job body does not
 * match its record: ...") when the run, course, learner count or the digest
 * of the user ids differ (the digest only when the row has one). Both are
 * permanent; the reason goes to gradeq_errmsg(). */
int gradeq_job_check_record(const struct gradeq_job *job,
			    const struct gradeq_job_record *rec) GRADEQ_MUST_CHECK;

/* Writes a random (version 4) UUID, lower case, into out[37]. Aborts when
 * the system has no random source at all (a repeated id would merge jobs). */
void gradeq_uuid(char out[37]);

#endif
