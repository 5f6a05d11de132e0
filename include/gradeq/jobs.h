/* Jobs in the store: every change of a job's state goes through
 * gradeq_job_transition(), which in one statement updates the job row, adds
 * its gradeq_job_events row with the true previous state, and moves its
 * run's counters (the database then settles the run when they reach its
 * total). Nobody else writes gradeq_jobs.state. */
#ifndef GRADEQ_JOBS_H
#define GRADEQ_JOBS_H

#include <stdbool.h>

#include "gradeq/err.h"
#include "gradeq/job.h"
#include "gradeq/runs.h"
#include "gradeq/states.h"

struct gradeq_store;

/* What a completed job measured (to == complete); stored on the job row. */
struct gradeq_job_completion {
	double ms_load, ms_fetch, ms_compute;
	int graded, skipped, subsections;
	long score_rows;
};

struct gradeq_job_change {
	const char *job_id;
	gradeq_job_states_t from; /* the states the job may be in */
	enum gradeq_job_state to;
	const char *by;     /* who: the event's by (NULL: ''); the consumer
			     * column too when to == in_progress */
	const char *detail; /* the event's detail, or NULL */
	/* optional */
	const char *error;       /* stored as last_error when not NULL */
	const char *error_class; /* transient, permanent, exhausted: kept when NULL */
	const struct gradeq_job_completion *completion; /* to == complete */
	/* the run whose state out->run_state reports when the job row is
	 * unknown (a job message names its run); NULL: the job's run only */
	const char *run_id;
};

struct gradeq_job_changed {
	bool known;                /* the job row exists */
	bool changed;              /* it was in one of the from states: the row was updated */
	enum gradeq_job_state old; /* its state before (when known) */
	char run_id[37];
	int learners;
	/* the run's final state when this change settled it, else "" */
	char run_settled[16];
	/* the run's state before the change; run_known false when no run */
	bool run_known;
	enum gradeq_run_state run_state;
};

/* Applies c. The row changes only when the job is in one of c->from; then:
 * to in_progress counts an attempt and sets started_at and consumer; to a
 * final state sets finished_at, to pending or retrying clears it;
 * completion stores the stats. The event row is written when the state
 * changes, or when a detail is given (a failure recorded again in the same
 * state). The run's counters follow the job into and out of complete, dead,
 * canceled and discarded; a job sent back to pending makes its failed run
 * running again. Runs inside the caller's transaction, if any. out may be
 * NULL. */
int gradeq_job_transition(struct gradeq_store *st, const struct gradeq_job_change *c,
			  struct gradeq_job_changed *out) GRADEQ_MUST_CHECK;

/* A consumer takes a job: gradeq_job_transition(c), in a transaction of
 * its own committed asynchronously (no WAL flush to wait for: a crash
 * that loses it loses the attempt's statistics, and the job, never acked,
 * comes back), and *version gets course_id's current version (malloc'd;
 * NULL for an unknown course), in one statement. Outside any transaction
 * only. */
int gradeq_job_begin(struct gradeq_store *st, const struct gradeq_job_change *c,
		     const char *course_id, struct gradeq_job_changed *out,
		     char **version) GRADEQ_MUST_CHECK;

/* A group's jobs taken at once: for each of the n job_ids what
 * gradeq_job_begin with from, by and the job row's course does, in one
 * statement committed asynchronously, into out[i] and versions[i]
 * (malloc'd; NULL for an unknown job or course). Outside any transaction
 * only. On error nothing is set (versions all NULL). */
int gradeq_job_begin_group(struct gradeq_store *st, int n, const char *const *job_ids,
			   unsigned from, const char *by, struct gradeq_job_changed *out,
			   char **versions) GRADEQ_MUST_CHECK;

/* A group's jobs completed at once, inside the group's transaction
 * (gradeq_store_group_begin): for each of the n job_ids what
 * gradeq_job_transition to complete from 'from' with its statistics
 * done[i] and by does, in one statement, into out[i]; the runs'
 * counters move at the group's end (gradeq_jobs_count_group). */
int gradeq_job_complete_group(struct gradeq_store *st, int n, const char *const *job_ids,
			      const struct gradeq_job_completion *const *done, unsigned from,
			      const char *by, struct gradeq_job_changed *out) GRADEQ_MUST_CHECK;

/* Reads what gradeq recorded for job_id at publish time, and whether the
 * run run_id (the one a job body names) exists, into *out (release it with
 * gradeq_job_record_release()). An unknown job is not an error: out->known
 * is false. */
int gradeq_job_record_read(struct gradeq_store *st, const char *job_id, const char *run_id,
			   struct gradeq_job_record *out) GRADEQ_MUST_CHECK;

/* The times known only after the job's commit. */
struct gradeq_job_timings {
	double ms_write, ms_commit, ms_total;
	long body_bytes;
};

/* Stores t on the job row in a transaction of its own, committed
 * asynchronously (no WAL flush to wait for): statistics only. */
int gradeq_job_record_timings(struct gradeq_store *st, const char *job_id,
			      const struct gradeq_job_timings *t) GRADEQ_MUST_CHECK;

/* Inside a group of jobs (store.h), a job's completion leaves its run's
 * row alone: the group's completions of each run are counted here, once,
 * at the group's end, before its commit (and settled(ctx, run, state) is
 * called for a run they settled). The run rows are locked from here to
 * the commit only. */
int gradeq_jobs_count_group(struct gradeq_store *st, const char *by,
			    void (*settled)(void *ctx, const char *run_id, const char *state),
			    void *ctx) GRADEQ_MUST_CHECK;

/* gradeq_job_record_timings() of n jobs at once (a group's), in one
 * statement. */
int gradeq_jobs_record_timings(struct gradeq_store *st, int n, const char *const *job_ids,
			       const struct gradeq_job_timings *t) GRADEQ_MUST_CHECK;

/* *n gets the number of the release's jobs in progress that started less
 * than 15 minutes ago (a consumer still working on them). */
int gradeq_jobs_in_progress(struct gradeq_store *st, const char *release,
			    long *n) GRADEQ_MUST_CHECK;

#endif
