/* Courses and enrollments as gradeq-publish reads them: which courses to
 * publish, and each course's learners in enrollment order through a server
 * cursor, so memory stays flat in the number of enrollments. */
#ifndef GRADEQ_ENROLL_H
#define GRADEQ_ENROLL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gradeq/err.h"

struct gradeq_store;
struct gradeq_watermark;

/* The most learner ids one gradeq_enroll_fetch() returns. */
#define GRADEQ_ENROLL_FETCH 10000

/* A list of course ids. */
struct gradeq_enroll_courses {
	char **ids;
	int n;
};

/* Every course of the courses table (all), in id order, or the nwant
 * courses asked for, in the order asked, each checked to exist:
 * GRADEQ_ERR_NOT_FOUND "unknown course 'X': nothing published" else. */
int gradeq_enroll_courses_resolve(struct gradeq_store *st, char *const *want, int nwant, bool all,
				  struct gradeq_enroll_courses *out) GRADEQ_MUST_CHECK;
void gradeq_enroll_courses_release(struct gradeq_enroll_courses *c);

/* A course's version and grading policy (JSON text), both malloc'd (a
 * NULL column reads as ""); both NULL and 0 returned when the course is
 * unknown. The caller frees them, also on error. */
int gradeq_enroll_course_policy(struct gradeq_store *st, const char *course, char **version,
				char **policy) GRADEQ_MUST_CHECK;

/* Which enrollments of a course a cursor reads. */
struct gradeq_enroll_query {
	const char *course;
	bool active_only;
	/* only learners with no stored course grade, one stored under another
	 * course version or policy hash, or score rows modified after the
	 * stored grade (or after changed_since, a PostgreSQL timestamp) */
	bool incremental;
	const char *version;       /* the course's version (incremental) */
	const char *policy_hash;   /* NULL: any stored hash will do */
	const char *changed_since; /* NULL: after each learner's stored grade */
	/* incremental: select from this watermark instead, in O(changes):
	 * learners with score rows modified at or after since->watermark
	 * whose writer since->snapshot did not see (rows it saw were selected
	 * by that run), and enrollments newer than since->last_enrollment_id.
	 * NULL: compare every learner. */
	const struct gradeq_watermark *since;
	/* incremental: the next run's watermark, selected_at, snapshot and
	 * newest enrollment, taken in the cursor's (repeatable read)
	 * transaction, whose snapshot the selection reads (NULL: not wanted) */
	struct gradeq_watermark *next;
};

/* Opens the cursor (a transaction of its own on st: st reads nothing else
 * until gradeq_enroll_close()). The next watermark is the least of the
 * clock less GRADEQ_WATERMARK_OVERLAP_MS and the start of the oldest
 * transaction in flight on the database (other than gradeq's own) that
 * the role may see: a row committed after the selection's snapshot was
 * stamped after that. */
int gradeq_enroll_open(struct gradeq_store *st,
		       const struct gradeq_enroll_query *q) GRADEQ_MUST_CHECK;
/* The next learner ids, up to GRADEQ_ENROLL_FETCH, into ids; *n 0 at the
 * end. */
int gradeq_enroll_fetch(struct gradeq_store *st, int32_t *ids, size_t *n) GRADEQ_MUST_CHECK;
/* Ends the cursor's transaction (nothing was written in it). */
void gradeq_enroll_close(struct gradeq_store *st);

#endif
