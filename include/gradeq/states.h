/* The run and job state machines: one table each, the single source of
 * truth. The database enforces the same tables (a trigger checks every state
 * change against gradeq_state_transitions, which migrate fills from here). */
#ifndef GRADEQ_STATES_H
#define GRADEQ_STATES_H

#include <stdbool.h>
#include <stddef.h>

enum gradeq_state_kind {
	GRADEQ_STATE_RUN = 0,
	GRADEQ_STATE_JOB = 1,
};

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

#endif
