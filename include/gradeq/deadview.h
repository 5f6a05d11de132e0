/* One dead letter: what it says about itself (from its body, gradeq-*
 * headers or the broker's x-death), which filters it passes, and how
 * gradeq-replay lists it. No I/O but the listing on standard output. */
#ifndef GRADEQ_DEADVIEW_H
#define GRADEQ_DEADVIEW_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <amqp.h>
#include <jansson.h>

#define GRADEQ_DL_MAX_COURSES 64

/* What selects a message; all given must match. */
struct gradeq_dl_filters {
	const char *courses[GRADEQ_DL_MAX_COURSES]; /* any of them */
	int ncourses;
	const char *cls;    /* error class, exactly */
	const char *run;    /* run id, case-insensitive */
	const char *reason; /* occurs in the error, case-insensitive */
	long older_than;    /* seconds, -1: none */
};

/* What a dead message says about itself, from its body and headers. */
struct gradeq_dl_view {
	bool decoded;
	char job_id[64], course[256], run[64], cls[64], error[1024], failed_at[40];
	char decode_err[256];
	int64_t attempt, replays;
	time_t failed_ts; /* 0: unknown */
	size_t size;
};

/* Fills v from a dead message: the job's ids from the body when it decodes
 * (else the message id and gradeq-* headers), the error class and text
 * from gradeq-error-class/gradeq-error or the broker's x-first-death-*,
 * the failure time from gradeq-failed-at, x-death or the timestamp. */
void gradeq_dl_view_fill(struct gradeq_dl_view *v, const amqp_envelope_t *env);

/* True when v passes every filter of f at time now. */
bool gradeq_dl_matches(const struct gradeq_dl_filters *f, const struct gradeq_dl_view *v,
		       time_t now);

/* The message as a JSON object for list --json: the view's fields, and
 * for a body that is no job its decode error, first bytes in hex and
 * headers. */
json_t *gradeq_dl_view_json(const struct gradeq_dl_view *v, const amqp_envelope_t *env);

/* The message as one line on standard output, after prefix ("would
 * replay "). */
void gradeq_dl_view_print(const struct gradeq_dl_view *v, const amqp_envelope_t *env,
			  const char *prefix);

#endif
