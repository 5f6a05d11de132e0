#include "gradeq/states.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradeq/err.h"
#include "gradeq/registry.h"

static const char *const run_states[] = {"publishing", "running",  "complete",
					 "failed",     "canceled", NULL};
static const char *const job_states[] = {"pending", "in_progress", "retrying",  "complete",
					 "dead",    "canceled",    "discarded", NULL};

static const struct gradeq_transition run_transitions[] = {
	{"publishing", "running", "every job is confirmed by the broker"},
	{"publishing", "complete", "consumers finished every job before publishing ended"},
	{"publishing", "failed", "publishing broke off"},
	{"publishing", "canceled", "gradeq-admin cancel"},
	{"running", "complete", "the last job completed"},
	{"running", "failed", "the last job ended and some are dead"},
	{"running", "canceled", "gradeq-admin cancel"},
	{"failed", "running", "gradeq-replay sent dead jobs back"},
};

static const struct gradeq_transition job_transitions[] = {
	{"pending", "in_progress", "a consumer took the job"},
	{"retrying", "in_progress", "a consumer took the job again"},
	{"in_progress", "in_progress", "redelivered after its consumer died"},
	{"in_progress", "complete", "grades committed"},
	{"in_progress", "retrying", "transient failure: sent to the next retry tier"},
	{"pending", "retrying", "transient failure before the job started"},
	{"in_progress", "dead", "permanent failure or retries exhausted"},
	{"pending", "dead", "permanent failure before the job started"},
	{"retrying", "dead", "retries exhausted"},
	{"pending", "canceled", "its run was canceled"},
	{"retrying", "canceled", "its run was canceled"},
	{"in_progress", "canceled", "its run was canceled"},
	{"dead", "pending", "gradeq-replay replay"},
	{"dead", "discarded", "gradeq-replay purge"},
};

/* The enums follow the tables' order: checked by the unit tests and at the
 * first use below. */
_Static_assert(sizeof(run_states) / sizeof(run_states[0]) == GRADEQ_RUN_NSTATES + 1,
	       "enum gradeq_run_state and run_states[] differ");
_Static_assert(sizeof(job_states) / sizeof(job_states[0]) == GRADEQ_JOB_NSTATES + 1,
	       "enum gradeq_job_state and job_states[] differ");

const char *gradeq_run_state_name(enum gradeq_run_state s)
{
	return (unsigned)s < GRADEQ_RUN_NSTATES ? run_states[s] : "unknown";
}

const char *gradeq_job_state_name(enum gradeq_job_state s)
{
	return (unsigned)s < GRADEQ_JOB_NSTATES ? job_states[s] : "unknown";
}

bool gradeq_run_state_parse(const char *name, enum gradeq_run_state *out)
{
	for (int i = 0; name && i < GRADEQ_RUN_NSTATES; i++)
		if (strcmp(run_states[i], name) == 0) {
			*out = (enum gradeq_run_state)i;
			return true;
		}
	return false;
}

bool gradeq_job_state_parse(const char *name, enum gradeq_job_state *out)
{
	for (int i = 0; name && i < GRADEQ_JOB_NSTATES; i++)
		if (strcmp(job_states[i], name) == 0) {
			*out = (enum gradeq_job_state)i;
			return true;
		}
	return false;
}

bool gradeq_run_state_is_final(enum gradeq_run_state s)
{
	return gradeq_state_final(GRADEQ_STATE_RUN, gradeq_run_state_name(s));
}

bool gradeq_job_state_is_final(enum gradeq_job_state s)
{
	return gradeq_state_final(GRADEQ_STATE_JOB, gradeq_job_state_name(s));
}

const char *const *gradeq_states(enum gradeq_state_kind kind)
{
	return kind == GRADEQ_STATE_RUN ? run_states : job_states;
}

const struct gradeq_transition *gradeq_transitions(enum gradeq_state_kind kind, size_t *n)
{
	if (kind == GRADEQ_STATE_RUN) {
		*n = sizeof(run_transitions) / sizeof(run_transitions[0]);
		return run_transitions;
	}
	*n = sizeof(job_transitions) / sizeof(job_transitions[0]);
	return job_transitions;
}

bool gradeq_transition_allowed(enum gradeq_state_kind kind, const char *from, const char *to)
{
	size_t n;
	const struct gradeq_transition *t = gradeq_transitions(kind, &n);

	if (!from || !to)
		return false;
	for (size_t i = 0; i < n; i++)
		if (strcmp(t[i].from, from) == 0 && strcmp(t[i].to, to) == 0)
			return true;
	return false;
}

bool gradeq_state_final(enum gradeq_state_kind kind, const char *state)
{
	size_t n;
	const struct gradeq_transition *t = gradeq_transitions(kind, &n);
	bool known = false;

	for (const char *const *s = gradeq_states(kind); *s; s++)
		if (strcmp(*s, state) == 0)
			known = true;
	if (!known)
		return false;
	/* final: nothing leaves it but an operator's action */
	for (size_t i = 0; i < n; i++)
		if (strcmp(t[i].from, state) == 0 && strncmp(t[i].why, "gradeq-", 7) != 0)
			return false;
	return true;
}

/* Appends formatted text; keeps *buf NUL-terminated, grows it. */
static int put(char **buf, size_t *len, size_t *cap, const char *s)
{
	size_t n = strlen(s);

	if (*len + n + 1 > *cap) {
		size_t ncap = (*len + n + 1) * 2;
		char *nb = realloc(*buf, ncap);

		if (!nb)
			return -1;
		*buf = nb;
		*cap = ncap;
	}
	memcpy(*buf + *len, s, n + 1);
	*len += n;
	return 0;
}

static int machine_json(char **buf, size_t *len, size_t *cap, enum gradeq_state_kind kind)
{
	const struct gradeq_transition *t;
	char line[512];
	size_t n;
	int rc = put(buf, len, cap, "{\"states\":[");

	for (const char *const *s = gradeq_states(kind); !rc && *s; s++) {
		snprintf(line, sizeof(line), "%s\"%s\"", s == gradeq_states(kind) ? "" : ",", *s);
		rc = put(buf, len, cap, line);
	}
	rc = rc ? rc : put(buf, len, cap, "],\"final\":[");
	{
		bool first = true;

		for (const char *const *s = gradeq_states(kind); !rc && *s; s++) {
			if (!gradeq_state_final(kind, *s))
				continue;
			snprintf(line, sizeof(line), "%s\"%s\"", first ? "" : ",", *s);
			first = false;
			rc = put(buf, len, cap, line);
		}
	}
	rc = rc ? rc : put(buf, len, cap, "],\"transitions\":[");
	t = gradeq_transitions(kind, &n);
	for (size_t i = 0; !rc && i < n; i++) {
		snprintf(line, sizeof(line), "%s{\"from\":\"%s\",\"to\":\"%s\",\"why\":\"%s\"}",
			 i ? "," : "", t[i].from, t[i].to, t[i].why);
		rc = put(buf, len, cap, line);
	}
	return rc ? rc : put(buf, len, cap, "]}");
}

char *gradeq_states_json(void)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;

	if (put(&buf, &len, &cap, "{\"run\":") ||
	    machine_json(&buf, &len, &cap, GRADEQ_STATE_RUN) ||
	    put(&buf, &len, &cap, ",\"job\":") ||
	    machine_json(&buf, &len, &cap, GRADEQ_STATE_JOB) || put(&buf, &len, &cap, "}")) {
		free(buf);
		return NULL;
	}
	return buf;
}

int gradeq_states_print(FILE *out, bool json)
{
	char *text = NULL;
	size_t n;

	if (json) {
		text = gradeq_states_json();
		if (!text)
			return GRADEQ_ERR_NOMEM;
		fprintf(out, "%s\n", text);
		free(text);
		return 0;
	}
	for (int k = 0; k < 2; k++) {
		const struct gradeq_transition *t =
			gradeq_transitions(k ? GRADEQ_STATE_JOB : GRADEQ_STATE_RUN, &n);

		fprintf(out, "%s states:\n", k ? "job" : "run");
		for (size_t i = 0; i < n; i++)
			fprintf(out, "  %-11s -> %-11s  %s\n", t[i].from, t[i].to, t[i].why);
	}
	return 0;
}

/* --- the release registry's states (registry.h) --- */

static const char *const state_names[] = {
	[GRADEQ_RELEASE_ACTIVE] = "active",
	[GRADEQ_RELEASE_PROMOTED] = "promoted",
	[GRADEQ_RELEASE_DRAINING] = "draining",
	[GRADEQ_RELEASE_RETIRED] = "retired",
};

const char *gradeq_release_state_name(enum gradeq_release_state s)
{
	if ((size_t)s < sizeof(state_names) / sizeof(state_names[0]))
		return state_names[s];
	return "?";
}

int gradeq_release_state_parse(const char *s)
{
	for (size_t i = 0; s && i < sizeof(state_names) / sizeof(state_names[0]); i++)
		if (strcmp(s, state_names[i]) == 0)
			return (int)i;
	return -1;
}
