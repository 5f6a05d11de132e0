/* The store's side of the dead letters: the job rows gradeq-replay moves. */
#ifndef GRADEQ_STORE_DEADLETTERS_H
#define GRADEQ_STORE_DEADLETTERS_H

#include "gradeq/states.h"
#include "gradeq/store.h"

/* Moves a job from one of the states in from to to, records the event with
 * the job's true previous state and adjusts its run's counters (jobs_dead,
 * jobs_discarded; a replay puts a failed run back to running), in one
 * statement. A job in another state, or unknown to this database, is left
 * alone (0). by: who moves it; detail: why. GRADEQ_ERR_DB(_TRANSIENT). */
int gradeq_store_deadletter_move(struct gradeq_store *st, const char *job_id,
				 gradeq_job_states_t from, enum gradeq_job_state to, const char *by,
				 const char *detail) GRADEQ_MUST_CHECK;

#endif
