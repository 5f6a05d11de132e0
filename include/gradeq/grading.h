/* Pure grading: the platform's rules (DESIGN.md section 2), float for float.
 * No I/O and no globals: course structure and score rows in, grades out.
 * Timestamps are microseconds since the Unix epoch (UTC). */
#ifndef GRADEQ_GRADING_H
#define GRADEQ_GRADING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gradeq/err.h"

enum gradeq_block_type {
	GRADEQ_BLOCK_OTHER = 0,
	GRADEQ_BLOCK_COURSE,
	GRADEQ_BLOCK_CHAPTER,
	GRADEQ_BLOCK_SEQUENTIAL,
	GRADEQ_BLOCK_VERTICAL,
	GRADEQ_BLOCK_PROBLEM,
};

/* Maps "course", "chapter", ... to the enum; unknown names give OTHER. */
enum gradeq_block_type gradeq_block_type_parse(const char *s);

/* One row of course_blocks, as the store read it. Strings are borrowed. */
struct gradeq_block_in {
	const char *usage_key;
	const char *parent_key; /* NULL for the root */
	enum gradeq_block_type type;
	int position; /* order among siblings */
	bool graded;
	const char *format; /* NULL when none */
	bool has_weight;
	double weight;
	bool has_max_score;
	double max_score;
};

struct gradeq_grader_entry {
	char *type;
	char *short_label; /* NULL when absent */
	int min_count;
	int drop_count;
	double weight; /* 0 when absent */
};

struct gradeq_cutoff {
	char *letter;
	double cutoff;
};

/* A parsed grading policy. */
struct gradeq_policy {
	struct gradeq_grader_entry *graders; /* in GRADER order */
	size_t ngraders;
	struct gradeq_cutoff *cutoffs; /* sorted by cutoff, descending */
	size_t ncutoffs;
	double pass_cutoff; /* smallest non-zero cutoff; >1 when none */
	char hash[29];      /* base64(SHA-1(canonical JSON)) */
};

/* Parses a grading policy from JSON text (the courses.grading_policy
 * column) into a new *out, to be freed with gradeq_policy_free(). A missing
 * GRADER or GRADE_CUTOFFS gets the platform's default (four graders
 * Homework/Lab/Midterm Exam/Final Exam; {"Pass": 0.5}), as the platform's
 * course block does, and p->hash is taken over that effective policy. On a
 * policy not of the documented shape (or JSON the parser refuses: integers
 * beyond 64 bits, reals that overflow, NUL in keys) returns
 * GRADEQ_ERR_POLICY and writes one line naming what is wrong into err (if
 * err is not NULL); GRADEQ_ERR_NOMEM when out of memory. *out is NULL on
 * any error. */
int gradeq_policy_parse(const char *json, size_t len, struct gradeq_policy **out, char *err,
			size_t errlen) GRADEQ_MUST_CHECK;
void gradeq_policy_free(struct gradeq_policy *p);

/* Drops an incomplete UTF-8 character left at the end of s by a buffer
 * that cut it short (messages are stored and sent: they must stay text). */
void gradeq_utf8_cut_end(char *s);

/* Writes base64(SHA-1) of the canonical JSON of any JSON text, as Python's
 * json.dumps(p, sort_keys=True, separators=(',', ':')) writes it, into
 * out[29] (NUL-terminated). No defaults are filled in (see
 * gradeq_policy_parse for the hash of a course). GRADEQ_ERR_POLICY (with
 * err) on JSON that does not parse, GRADEQ_ERR_NOMEM. */
int gradeq_policy_hash(const char *json, size_t len, char out[29], char *err,
		       size_t errlen) GRADEQ_MUST_CHECK;

/* Writes the canonical JSON of any JSON text into a malloc'd,
 * NUL-terminated string (*out, its length in *outlen when outlen is not
 * NULL), the bytes gradeq_policy_hash() hashes. Errors as for
 * gradeq_policy_hash(); *out is NULL on error. Exposed for tests. */
int gradeq_policy_canonical(const char *json, size_t len, char **out, size_t *outlen, char *err,
			    size_t errlen) GRADEQ_MUST_CHECK;

/* A course compiled for grading: subsections in course order (depth-first by
 * position), the problems of each subsection's subtree, the parsed policy. */
struct gradeq_course;

/* Builds a course from its blocks (any order) and policy JSON. Strings are
 * copied. Course order is depth-first from the root, siblings by position
 * then usage_key. Blocks whose parent is missing are ignored (with their
 * subtree); so are problems outside every sequential, for grading. Returns
 * GRADEQ_ERR_POLICY (err names what is wrong), GRADEQ_ERR_INVALID (no root
 * or more than one block without a parent, a cycle, duplicate keys, a NULL
 * usage_key; err says which) or GRADEQ_ERR_NOMEM. *out is NULL on error. */
int gradeq_course_new(const struct gradeq_block_in *blocks, size_t nblocks, const char *policy_json,
		      size_t policy_len, struct gradeq_course **out, char *err,
		      size_t errlen) GRADEQ_MUST_CHECK;
void gradeq_course_free(struct gradeq_course *c);

size_t gradeq_course_nsubsections(const struct gradeq_course *c);
/* The usage_key of subsection i (course order). */
const char *gradeq_course_subsection_key(const struct gradeq_course *c, size_t i);
/* Whether subsection i is graded (its block's flag), and its format (NULL
 * when none); false for an i out of range. */
bool gradeq_course_subsection_graded(const struct gradeq_course *c, size_t i, const char **format);
size_t gradeq_course_nproblems(const struct gradeq_course *c);
/* Index of a problem by usage_key, or -1 when the key is no problem of the
 * course (O(log n)). */
int gradeq_course_problem_index(const struct gradeq_course *c, const char *usage_key);
const struct gradeq_policy *gradeq_course_policy(const struct gradeq_course *c);

/* One courseware_studentmodule row of a learner, for problem 'problem'. */
struct gradeq_score {
	int problem; /* gradeq_course_problem_index() */
	bool has_grade;
	double grade;
	bool has_max_grade;
	double max_grade;
	int64_t created_us;
};

struct gradeq_subsection_grade {
	double earned_all, possible_all;
	double earned_graded, possible_graded;
	bool attempted;
	int64_t first_attempted_us; /* meaningful when attempted */
};

struct gradeq_course_grade {
	double percent;     /* percent_grade, e.g. 0.83 */
	const char *letter; /* "" when none; owned by the course */
	bool passed;
};

/* Scratch space for grading learners of one course, one at a time. */
struct gradeq_grader;

/* Allocates every buffer grading needs, so gradeq_grader_grade() never
 * allocates. The course must outlive the grader. NULL when out of memory or
 * c is NULL. */
struct gradeq_grader *gradeq_grader_new(const struct gradeq_course *c);
void gradeq_grader_free(struct gradeq_grader *g);

/* Grades one learner from its score rows (any order; a problem at most once;
 * rows for indexes out of range are ignored). *subs points to
 * gradeq_course_nsubsections() results in course order, valid until the next
 * call on g. Returns 0, or GRADEQ_ERR_INVALID on a NULL argument or two rows
 * for one problem (then *subs and *course are not set). O(problems +
 * subsections + GRADER lists * log); no allocation. */
int gradeq_grader_grade(struct gradeq_grader *g, const struct gradeq_score *scores, size_t nscores,
			const struct gradeq_subsection_grade **subs,
			struct gradeq_course_grade *course) GRADEQ_MUST_CHECK;

#endif
