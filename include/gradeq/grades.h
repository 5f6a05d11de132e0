/* The output tables: a batch's subsection and course grade rows, COPYed in
 * on a first backfill, only the changed ones written on a regrade. */
#ifndef GRADEQ_GRADES_H
#define GRADEQ_GRADES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gradeq/courses.h"
#include "gradeq/err.h"

struct gradeq_store;

struct gradeq_subsection_row {
	double earned_all, possible_all, earned_graded, possible_graded;
	int64_t first_attempted_us; /* when attempted */
	bool attempted;
};

struct gradeq_course_row {
	int32_t user_id;
	double percent;
	const char *letter; /* NULL: "" */
	bool passed;
};

struct gradeq_grades_batch {
	const char *job_id; /* for the logs */
	const char *course_id;
	const char *version;
	const char *policy_hash;
	const char *edited;              /* course_edited_timestamp, NULL when none */
	struct gradeq_keys *subsections; /* the subsection keys, in row order */
	const int32_t *user_ids;         /* the job's learners (graded or not) */
	size_t nusers;
	size_t nlearners;
	const struct gradeq_course_row *learners; /* nlearners */
	const struct gradeq_subsection_row *subs; /* nlearners x subsections, by learner */
};

/* Opens a transaction and writes the batch's grade rows. On success the
 * transaction stays open: the caller records the job's completion in it and
 * commits (gradeq_store_commit); on error it is rolled back. */
int gradeq_grades_write(struct gradeq_store *st,
			const struct gradeq_grades_batch *b) GRADEQ_MUST_CHECK;

#endif
