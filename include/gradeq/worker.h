/* Grading one job against the store: the consumer's unit of work. Loads the
 * course once per version (cached), reads the batch's score rows in one
 * streamed query, grades, and writes every grade row and the job's
 * completion in one transaction. */
#ifndef GRADEQ_WORKER_H
#define GRADEQ_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include "gradeq/err.h"
#include "gradeq/job.h"
#include "gradeq/states.h"
#include "gradeq/store.h"

struct gradeq_worker;

enum gradeq_outcome {
	GRADEQ_DONE = 0,             /* graded and committed */
	GRADEQ_ALREADY_DONE = 1,     /* job was complete before: no work */
	GRADEQ_SKIPPED_CANCELED = 2, /* its run is canceled: marked, not graded */
};

struct gradeq_job_stats {
	int outcome;
	/* the job failed because gradeq never recorded it or its body does
	 * not match its record: the job row named, if any, is not the
	 * message's to change (a forged body must not fail the genuine job) */
	bool forged;
	char run_settled[16]; /* the run's final state when this job settled it */
	int graded;           /* learners graded */
	int skipped;          /* ids in the job no longer enrolled */
	int subsections;
	long score_rows;
	long body_bytes; /* the job's message body */
	/* load: course structure (0 when cached); fetch: score read without the
	 * grading inside it; compute: grading; write: grade rows; commit */
	double ms_load, ms_fetch, ms_compute, ms_write, ms_commit, ms_total;
	/* pg_read_dsn: how long the job waited for the standby to replay the
	 * primary's WAL as of its start, and whether it read the primary
	 * instead because the standby stayed behind */
	double ms_standby_wait;
	bool standby_behind;
};

/* The index of the least recently used of n entries (the smallest stamp;
 * the first of equals); n > 0. The course cache's eviction choice. */
int gradeq_lru_oldest(const uint64_t *stamps, int n);

/* A worker owns a cache of up to cache_size courses. consumer names it in
 * the job rows (host:pid). */
struct gradeq_worker *gradeq_worker_new(int cache_size, const char *consumer);
void gradeq_worker_free(struct gradeq_worker *w);

struct gradeq_reader;
/* Course loads and score reads from then on go where r says (a hot
 * standby, reader.h); the worker owns r. NULL: the primary, as writes. */
void gradeq_worker_set_reader(struct gradeq_worker *w, struct gradeq_reader *r);

/* The consumer's name the worker writes into job rows (host:pid). */
const char *gradeq_worker_name(const struct gradeq_worker *w);

/* Processes one decoded job on st. Returns 0 (see stats->outcome), a
 * transient error (GRADEQ_ERR_DB_TRANSIENT: retry), or a permanent one
 * (GRADEQ_ERR_NOT_FOUND unknown course or job, GRADEQ_ERR_POLICY,
 * GRADEQ_ERR_INVALID, a body that does not match its job row: see
 * gradeq_job_check_record() and stats->forged)
 * with the reason in gradeq_errmsg(). Nothing is committed on error. */
int gradeq_worker_process(struct gradeq_worker *w, struct gradeq_store *st,
			  const struct gradeq_job *job,
			  struct gradeq_job_stats *stats) GRADEQ_MUST_CHECK;

/* Processes a group of n small jobs (group.h) as gradeq_worker_process()
 * would one by one, but writes them in one transaction, a savepoint each,
 * committed once: rcs[i] and stats[i] are job i's. A job that fails is
 * rolled back alone (rcs[i], nothing of it committed); when the group's
 * transaction is lost, every job that was to be written in it gets that
 * error. errs[i] (GRADEQ_GROUP_ERR_MAX bytes, or NULL) gets job i's error
 * message: gradeq_errmsg() holds the last one only. Jobs are read and
 * graded first, then written: a group holds the rows of all its jobs at
 * once. */
#define GRADEQ_GROUP_ERR_MAX 1024
void gradeq_worker_process_group(struct gradeq_worker *w, struct gradeq_store *st,
				 const struct gradeq_job *const *jobs, int n,
				 struct gradeq_job_stats *stats, int *rcs, char **errs);

/* Records a failed attempt: state GRADEQ_JOB_RETRYING or GRADEQ_JOB_DEAD
 * with the error and its class, in its own transaction (counters of the run
 * included for dead).
 * run_settled (16 bytes, may be NULL) gets the run's final state when this
 * failure settled the run, else "". */
int gradeq_worker_record_failure(struct gradeq_store *st, const char *job_id,
				 enum gradeq_job_state state, enum gradeq_err_class cls,
				 const char *error, char *run_settled) GRADEQ_MUST_CHECK;

#endif
