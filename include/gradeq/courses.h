/* The platform's input tables as the consumer reads them: a course (its row
 * of courses and its blocks) and a batch's enrollments and score rows. */
#ifndef GRADEQ_COURSES_H
#define GRADEQ_COURSES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gradeq/err.h"
#include "gradeq/grading.h"

struct gradeq_store;

/* A course as stored: the strings live as long as the struct. */
struct gradeq_course_src {
	const char *version;
	const char *edited; /* edited_at as text, NULL when none */
	const char *policy; /* grading_policy, JSON */
	struct gradeq_block_in *blocks;
	size_t nblocks;
	void *priv; /* owns the strings */
};

/* Reads course_id; GRADEQ_ERR_NOT_FOUND when unknown. Release *out with
 * gradeq_course_src_release() (also after an error). */
int gradeq_courses_load(struct gradeq_store *st, const char *course_id,
			struct gradeq_course_src *out) GRADEQ_MUST_CHECK;
void gradeq_course_src_release(struct gradeq_course_src *s);

/* The course's current version into a malloc'd *version;
 * GRADEQ_ERR_NOT_FOUND when unknown. */
int gradeq_courses_version(struct gradeq_store *st, const char *course_id,
			   char **version) GRADEQ_MUST_CHECK;

/* A list of usage keys in the form the store passes to its queries (built
 * once per course, used by every batch). NULL when out of memory. */
struct gradeq_keys;
struct gradeq_keys *gradeq_keys_new(const char *const *keys, size_t n);
void gradeq_keys_free(struct gradeq_keys *k);
/* The index of the key of len bytes in the list (a hash lookup), -1 when it
 * is not there. */
int gradeq_keys_index(const struct gradeq_keys *k, const char *key, size_t len);

/* One row of a batch's read: an enrollment (the learner is enrolled), or a
 * score of the problem at index score.problem of the key list. */
struct gradeq_score_row {
	int32_t user_id;
	bool enrollment;
	struct gradeq_score score;
};

/* Called for each row, in learner order (a learner's enrollment first, then
 * its scores, in no particular order); a non-zero return stops the read and
 * is returned. */
typedef int (*gradeq_score_fn)(void *ctx, const struct gradeq_score_row *row);

/* Reads the enrollments in course_id of the given learners and their score
 * rows of the problems in the key list, in one read-only transaction,
 * streamed. */
int gradeq_scores_read(struct gradeq_store *st, const char *course_id, const int32_t *user_ids,
		       size_t nusers, const struct gradeq_keys *problems, gradeq_score_fn fn,
		       void *ctx) GRADEQ_MUST_CHECK;

#endif
