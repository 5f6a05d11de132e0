/* The incremental regrade's watermarks (gradeq_watermarks): per release and
 * course, where the next `gradeq-publish --incremental` selection starts,
 * so that it reads the score rows changed since, through an index range on
 * courseware_studentmodule.modified, instead of every learner's rows. */
#ifndef GRADEQ_WATERMARKS_H
#define GRADEQ_WATERMARKS_H

#include <stdbool.h>

#include "gradeq/err.h"

struct gradeq_store;

/* PostgreSQL timestamptz text ("2026-11-29 07:04:25.123456+00"). */
#define GRADEQ_TS_MAX 64

struct gradeq_watermark {
	/* score rows modified at or after it are read by the next selection */
	char watermark[GRADEQ_TS_MAX];
	/* the clock when the selection was made (the data window's end) */
	char selected_at[GRADEQ_TS_MAX];
	/* the selection's snapshot (pg_snapshot text, malloc'd): a score row
	 * of the overlap written by a transaction it saw was selected by that
	 * run, and is not selected again */
	char *snapshot;
	/* the newest enrollment of the course seen: newer ones are selected */
	long long last_enrollment_id;
	/* the course version and policy hash (malloc'd, "" for none) the
	 * selection was made under: a change selects every learner again */
	char *version, *policy_hash;
};

/* Frees the strings of w and zeroes it. */
void gradeq_watermark_clear(struct gradeq_watermark *w);

/* The watermark of release and course into out (*found false, out zeroed,
 * when there is none). */
int gradeq_watermark_load(struct gradeq_store *st, const char *release, const char *course,
			  struct gradeq_watermark *out, bool *found) GRADEQ_MUST_CHECK;

/* Records the watermarks of n courses of release (one transaction), written
 * by run_id, once the run's jobs are confirmed. */
int gradeq_watermark_save(struct gradeq_store *st, const char *release, const char *run_id,
			  char *const *courses, const struct gradeq_watermark *w,
			  int n) GRADEQ_MUST_CHECK;

/* Forgets the watermarks of release (all its courses): the next
 * incremental run compares every learner with the stored grades again. */
int gradeq_watermark_reset(struct gradeq_store *st, const char *release) GRADEQ_MUST_CHECK;

#endif
