/* Job outputs in the store (gradeq_outputs, gradeq_output_parts): the
 * rows of issue 18's grade reports, their parts, and the stored grades a
 * part reads. SQL lives in src/store/outputs.c only. */
#ifndef GRADEQ_OUTPUTS_H
#define GRADEQ_OUTPUTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gradeq/err.h"

struct gradeq_store;
struct gradeq_keys;

/* One output row. Strings are malloc'd (gradeq_output_release frees
 * them); times are RFC 3339 text, "" when NULL. */
struct gradeq_output {
	char output_id[37];
	char run_id[37];
	char *course_id;
	char *name;
	char *format;
	char *backend;
	char *key;
	char *state; /* pending, sealed, failed, deleted */
	char *created_by;
	int parts;
	long long size;  /* -1 until sealed */
	char sha256[65]; /* "" until sealed */
	char created_at[40], sealed_at[40], keep_until[40], downloaded_at[40], deleted_at[40];
	bool use_once;
};

void gradeq_output_release(struct gradeq_output *o);

/* Records a new output (state pending) from o's id, run, course, name,
 * format, backend, key, parts, created_by, keep_until ("" for none) and
 * use_once. */
int gradeq_output_create(struct gradeq_store *st, const struct gradeq_output *o) GRADEQ_MUST_CHECK;

/* Reads an output; *found false (and o zeroed) when there is none. With
 * lock, the row is locked FOR UPDATE in the transaction st has open. */
int gradeq_output_get(struct gradeq_store *st, const char *output_id, bool lock,
		      struct gradeq_output *o, bool *found) GRADEQ_MUST_CHECK;

/* A course's outputs, newest first, deleted ones included; *out is an
 * array of *n (free each with gradeq_output_release, then the array). */
int gradeq_output_list(struct gradeq_store *st, const char *course_id, struct gradeq_output **out,
		       size_t *n) GRADEQ_MUST_CHECK;

/* Outputs not yet deleted whose keep_until has passed (purge). */
int gradeq_output_list_expired(struct gradeq_store *st, struct gradeq_output **out,
			       size_t *n) GRADEQ_MUST_CHECK;

/* Marks an output deleted (deleted_at now, state deleted); *found false
 * when there is no such output or it was deleted already. */
int gradeq_output_mark_deleted(struct gradeq_store *st, const char *output_id,
			       bool *found) GRADEQ_MUST_CHECK;

/* Opens the part's transaction (BEGIN). */
int gradeq_output_part_begin(struct gradeq_store *st) GRADEQ_MUST_CHECK;

/* Inside the part's transaction: records the part (once: a part recorded
 * before is left as it was, *fresh false), then locks the output's row and
 * counts its recorded parts into *done. Concurrent last parts queue on the
 * lock, so exactly one of them sees every part with the output pending. */
int gradeq_output_part_record(struct gradeq_store *st, const char *output_id, int part,
			      const char *job_id, int rows, long long size, const char *sha256,
			      bool *fresh, int *done) GRADEQ_MUST_CHECK;

/* Inside the part's transaction, with the row locked: the output sealed,
 * with its size and digest (from pending, or from failed when a replayed
 * part completes it). */
int gradeq_output_mark_sealed(struct gradeq_store *st, const char *output_id, long long size,
			      const char *sha256) GRADEQ_MUST_CHECK;

/* A part went to the dead queue: a pending output becomes failed
 * (*changed); a sealed, deleted or already failed one is left. A replay of
 * the part that completes the output still seals it. */
int gradeq_output_mark_failed(struct gradeq_store *st, const char *output_id,
			      bool *changed) GRADEQ_MUST_CHECK;

/* *member: user_id is on course_id's team (student_courseaccessrole with
 * role staff or instructor), now. */
int gradeq_output_team_member(struct gradeq_store *st, const char *course_id, int32_t user_id,
			      bool *member) GRADEQ_MUST_CHECK;

/* The courses whose outputs user_id may read as a course team member
 * (staff or instructor), or with user_id 0 every course that has outputs
 * (for a global operator); sorted, into a malloc'd *courses of *n malloc'd
 * strings. */
int gradeq_output_courses(struct gradeq_store *st, int32_t user_id, char ***courses,
			  size_t *n) GRADEQ_MUST_CHECK;

/* Records a complete download (downloaded_at now). */
int gradeq_output_mark_downloaded(struct gradeq_store *st, const char *output_id) GRADEQ_MUST_CHECK;

/* A learner's stored grades, for a report row. */
struct gradeq_output_grade {
	int32_t user_id;
	double percent;
	const char *letter; /* valid during the callback */
	bool passed;        /* a passed_timestamp is stored */
	/* per subsection of the key list: stored earned_graded and
	 * possible_graded; has[i] false when no row is stored */
	const double *earned, *possible;
	const bool *has;
};

typedef int (*gradeq_output_grade_fn)(void *ctx, const struct gradeq_output_grade *g);

/* Calls fn for each of the n learners with a stored course grade in
 * course_id, in user id order, with their subsection grades for the keys
 * (in key order). Two queries in one read-only transaction of its own. */
int gradeq_output_grades_read(struct gradeq_store *st, const char *course_id,
			      const int32_t *user_ids, size_t n, const struct gradeq_keys *keys,
			      gradeq_output_grade_fn fn, void *ctx) GRADEQ_MUST_CHECK;

/* Every enrolled learner of course_id with a stored course grade, in user
 * id order, into a malloc'd *ids of *n. */
int gradeq_output_learners(struct gradeq_store *st, const char *course_id, int32_t **ids,
			   size_t *n) GRADEQ_MUST_CHECK;

#endif
