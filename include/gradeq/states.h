/* The run and job state machines: one table each, the single source of
 * truth. The database enforces the same tables (a trigger checks every state
 * change against gradeq_state_transitions, which migrate fills from here). */
#ifndef GRADEQ_STATES_H
#define GRADEQ_STATES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum gradeq_state_kind {
	GRADEQ_STATE_RUN = 0,
	GRADEQ_STATE_JOB = 1,
};

/* The states as types. The order is the display order of the tables in
 * states.c; the strings exist only at the SQL and JSON edges, through
 * gradeq_run_state_name()/gradeq_job_state_name() and the parsers below. */
enum gradeq_run_state {
	GRADEQ_RUN_PUBLISHING = 0,
	GRADEQ_RUN_RUNNING,
	GRADEQ_RUN_COMPLETE,
	GRADEQ_RUN_FAILED,
	GRADEQ_RUN_CANCELED,
	GRADEQ_RUN_NSTATES
};

enum gradeq_job_state {
	GRADEQ_JOB_PENDING = 0,
	GRADEQ_JOB_IN_PROGRESS,
	GRADEQ_JOB_RETRYING,
	GRADEQ_JOB_COMPLETE,
	GRADEQ_JOB_DEAD,
	GRADEQ_JOB_CANCELED,
	GRADEQ_JOB_DISCARDED,
	GRADEQ_JOB_NSTATES
};

/* A set of job states, for "from any of these" (bit 1 << state). */
typedef unsigned gradeq_job_states_t;
#define GRADEQ_JOB_SET(s) ((gradeq_job_states_t)1u << (s))

/* The state's name as stored in PostgreSQL and shown in JSON. */
const char *gradeq_run_state_name(enum gradeq_run_state s);
const char *gradeq_job_state_name(enum gradeq_job_state s);

/* Parses a stored name; false (and *out untouched) when unknown. */
bool gradeq_run_state_parse(const char *name, enum gradeq_run_state *out);
bool gradeq_job_state_parse(const char *name, enum gradeq_job_state *out);

/* True when the state ends the run or job (see gradeq_state_final). */
bool gradeq_run_state_is_final(enum gradeq_run_state s);
bool gradeq_job_state_is_final(enum gradeq_job_state s);

struct gradeq_transition {
	const char *from;
	const char *to;
	const char *why; /* what makes it happen */
};

/* The states of a kind in display order, NULL-terminated. */
const char *const *gradeq_states(enum gradeq_state_kind kind);

/* The transitions of a kind; *n gets their number. */
const struct gradeq_transition *gradeq_transitions(enum gradeq_state_kind kind, size_t *n);

/* True when from -> to is allowed for the kind (both must be known). */
bool gradeq_transition_allowed(enum gradeq_state_kind kind, const char *from, const char *to);

/* True when the state ends the run or job (no transition leaves it, or
 * only an operator's replay does). */
bool gradeq_state_final(enum gradeq_state_kind kind, const char *state);

/* Writes both machines as JSON into a malloc'd string:
 * {"run":{"states":[...],"final":[...],"transitions":[{"from":..,"to":..,"why":..}]},
 *  "job":{...}}. NULL when out of memory. */
char *gradeq_states_json(void);

/* Prints both machines to out: their JSON (json) or a table of
 * transitions with why each happens. GRADEQ_ERR_NOMEM or 0. */
int gradeq_states_print(FILE *out, bool json);

#endif
