/* A run's end of life as the operator sees it: canceling a run, and
 * deleting finished runs with their jobs and events after a retention
 * period (never grades). The SQL lives in src/store/history.c. */
#ifndef GRADEQ_HISTORY_H
#define GRADEQ_HISTORY_H

#include <stdbool.h>

#include "gradeq/states.h"
#include "gradeq/store.h"

/* Cancels run (publishing or running -> canceled), recording in
 * gradeq_job_events the state it really left. Returns 0 when the run is
 * canceled now or was already, *was getting the state it had;
 * GRADEQ_ERR_NOT_FOUND for an unknown run; GRADEQ_ERR_STATE when it
 * ended otherwise (*was: how). */
int gradeq_history_cancel(struct gradeq_store *st, const char *run, const char *by,
			  enum gradeq_run_state *was) GRADEQ_MUST_CHECK;

/* How many finished runs (complete, failed, canceled) ended more than
 * secs seconds ago. */
int gradeq_history_count(struct gradeq_store *st, long secs, long *runs) GRADEQ_MUST_CHECK;

/* Deletes those runs with their jobs and events in bounded batches (short
 * transactions, no long locks); *runs counts the runs deleted, also on
 * error. */
int gradeq_history_purge(struct gradeq_store *st, long secs, long *runs) GRADEQ_MUST_CHECK;

#endif
