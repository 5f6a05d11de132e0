/* What gradeq-web reads from the database: each function gives one JSON
 * text (malloc'd into *out, NULL when the run or job is unknown) in the
 * shapes of docs/web-api.md. The SQL lives in src/store/web.c. */
#ifndef GRADEQ_WEBSTORE_H
#define GRADEQ_WEBSTORE_H

#include "gradeq/err.h"

struct gradeq_store;

/* {"run": {"states": [...], "transitions": [[from, to], ...]}, "job": ...} */
int gradeq_webstore_states(struct gradeq_store *st, char **out) GRADEQ_MUST_CHECK;
/* {"jobs_by_state": {...}, "jobs_by_course": [...]} of run. */
int gradeq_webstore_run(struct gradeq_store *st, const char *run, char **out) GRADEQ_MUST_CHECK;
/* {"total", "jobs": [JOB...]} of run, state and course when not NULL. */
int gradeq_webstore_jobs(struct gradeq_store *st, const char *run, const char *state,
			 const char *course, long limit, long offset, char **out) GRADEQ_MUST_CHECK;
/* {"job": JOB, "first_user_ids": [...], "events": [...oldest first]} */
int gradeq_webstore_job(struct gradeq_store *st, const char *job, char **out) GRADEQ_MUST_CHECK;
/* {"total", "dead": [...newest first]}: dead job rows, filtered by
 * release, course and a text in the last error when not NULL. */
int gradeq_webstore_dead(struct gradeq_store *st, const char *release, const char *course,
			 const char *reason, long limit, char **out) GRADEQ_MUST_CHECK;
/* {"job": {"job_id", "course_id", "holding_s"} or null, "done", "failed"}
 * of the consumer whose jobs' consumer column is consumer ("HOST:PID"),
 * since since_ms (epoch milliseconds). */
int gradeq_webstore_consumer_jobs(struct gradeq_store *st, const char *consumer,
				  const char *since_ms, char **out) GRADEQ_MUST_CHECK;
/* *n gets how many jobs of run are not finished (what a cancel stops). */
int gradeq_webstore_unfinished_jobs(struct gradeq_store *st, const char *run,
				    long *n) GRADEQ_MUST_CHECK;

#endif
