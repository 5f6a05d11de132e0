/* Runs in the store: every change of a run's state goes through
 * gradeq_run_transition() (or gradeq_run_published(), which also records
 * the totals), which writes the new state and its gradeq_job_events row
 * (job_id NULL) with the true previous state in one statement. The run's
 * job counters move only with gradeq_job_transition() (jobs.h); the
 * database settles a running run when they reach its total. */
#ifndef GRADEQ_RUNS_H
#define GRADEQ_RUNS_H

#include <stdbool.h>

#include "gradeq/err.h"
#include "gradeq/states.h"

struct gradeq_store;

/* A set of run states, for "from any of these" (bit 1 << state). */
#define GRADEQ_RUN_SET(s) (1u << (s))

struct gradeq_run_changed {
	bool known;                  /* the run exists */
	bool changed;                /* it was in one of the from states and moved */
	enum gradeq_run_state old;   /* its state before (when known) */
	enum gradeq_run_state state; /* its state after (the database may have
				      * settled it further) */
};

/* Moves run_id (its text form) from any state of from_mask to `to`,
 * setting finished_at when `to` is final; records the event with by. A run
 * in another state is left alone (out->changed false); an unknown run is
 * not an error (out->known false). out may be NULL. */
int gradeq_run_transition(struct gradeq_store *st, const char *run_id, unsigned from_mask,
			  enum gradeq_run_state to, const char *by,
			  struct gradeq_run_changed *out) GRADEQ_MUST_CHECK;

/* Publishing of run_id ended: records its totals and published_at and moves
 * it from publishing to `to` (running, or failed when publishing broke); a
 * run whose jobs are all done already settles at once. */
int gradeq_run_published(struct gradeq_store *st, const char *run_id, long jobs, long learners,
			 enum gradeq_run_state to, const char *by,
			 struct gradeq_run_changed *out) GRADEQ_MUST_CHECK;

/* Records a new run in state publishing, with its event. options is a JSON
 * object. */
int gradeq_run_create(struct gradeq_store *st, const char *run_id, const char *release,
		      const char *options, int courses, const char *by) GRADEQ_MUST_CHECK;

#endif
