/* The job rows gradeq-publish records before it publishes the jobs: a
 * consumer never sees a job the database does not know. */
#ifndef GRADEQ_JOBROWS_H
#define GRADEQ_JOBROWS_H

#include "gradeq/err.h"
#include "gradeq/job.h"

struct gradeq_store;

/* Records n new jobs (state pending) in one COPY through the shared COPY
 * writer, each with the digest of its user ids (gradeq_job_users_digest);
 * committed when st is not inside a transaction. */
int gradeq_jobrows_record(struct gradeq_store *st, const struct gradeq_job *jobs,
			  int n) GRADEQ_MUST_CHECK;

#endif
