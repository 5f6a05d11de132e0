/* The SQL behind the throttle (gradeq/throttle_agent.h and the throttle
 * command): the budget registry gradeq_throttle, the consumers' reports in
 * gradeq_throttle_consumers and the database health samples. */
#ifndef GRADEQ_STORE_THROTTLE_H
#define GRADEQ_STORE_THROTTLE_H

#include <stddef.h>
#include <stdio.h>

#include "gradeq/store.h"
#include "gradeq/throttle.h"

/* Sets release's budget to learners_per_s (<= 0: off), recorded as by. */
int gradeq_store_throttle_set(struct gradeq_store *st, const char *release, double learners_per_s,
			      const char *by) GRADEQ_MUST_CHECK;

/* Replaces release's quiet-hours windows with the n of w (n 0: none). */
int gradeq_store_throttle_schedule(struct gradeq_store *st, const char *release,
				   const struct gradeq_throttle_window *w,
				   size_t n) GRADEQ_MUST_CHECK;

/* *learners_per_s gets release's budget now, 0 when none: that of the
 * window of its schedule the server's local time is in, else its own. */
int gradeq_store_throttle_get(struct gradeq_store *st, const char *release,
			      double *learners_per_s) GRADEQ_MUST_CHECK;

/* What a consumer reports of its throttle (upserted by consumer). */
struct gradeq_throttle_report {
	const char *consumer, *release;
	double budget;      /* 0: none */
	unsigned consumers; /* the release's consumers it counted */
	double share;       /* its share of the budget, 0: none */
	double rate;        /* the rate it paces with, 0: unlimited */
	const char *state;  /* "normal" or "backoff" */
	const char *reason; /* the distress of the last decrease, "" when normal */
	double achieved;    /* learners a second it graded lately */
};
int gradeq_store_throttle_report(struct gradeq_store *st,
				 const struct gradeq_throttle_report *r) GRADEQ_MUST_CHECK;

/* *n gets the release's consumers that reported within the last 30 s
 * (0 when none did, or before migration 9). */
int gradeq_store_throttle_live(struct gradeq_store *st, const char *release,
			       unsigned *n) GRADEQ_MUST_CHECK;

/* One health sample: sessions waiting for locks on grades_* tables, active
 * backends and max_connections. */
int gradeq_store_db_health(struct gradeq_store *st, struct gradeq_db_health *h) GRADEQ_MUST_CHECK;

/* The throttle of each release that has a budget or live consumer reports
 * (of release only when not NULL), as a JSON array (docs/status.md), in a
 * new string; *out is NULL on error. */
int gradeq_store_throttle_json(struct gradeq_store *st, const char *release,
			       char **out) GRADEQ_MUST_CHECK;

/* Prints one line a release (and one a consumer) of the array. */
void gradeq_store_throttle_text(struct gradeq_store *st, const char *json, FILE *out);

#endif
