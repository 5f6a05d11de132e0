/* Demo and test data: generates courses of the platform's input tables
 * (courses, course_blocks, student_courseenrollment,
 * courseware_studentmodule) in three size classes, the ones of the backfill
 * strategy: small (about 10 subsections of about 4.5 problems), medium
 * (about 40 of about 8) and large (about 120 of about 8), shaped like the
 * platform's data: a learner attempted about half of the problems on
 * average (some none, some all), courseware_studentmodule also holds a row
 * with NULL grades for every chapter, sequential, vertical, video and html
 * block the learner opened (about as many as the problem rows), and
 * learners are enrolled in several courses. Everything follows from the
 * seed: the same options give the same rows, on any machine.
 *
 * Two layers: a pure generator (course structure in memory, learners and
 * their module rows produced one learner at a time, so memory does not grow
 * with the number of learners) and gradeq_seed_run(), which streams it into
 * PostgreSQL with COPY, in one transaction. Timestamps are microseconds
 * since the Unix epoch (UTC), as in grading.h. */
#ifndef GRADEQ_SEED_H
#define GRADEQ_SEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gradeq/err.h"
#include "gradeq/grading.h"
#include "gradeq/store.h"

#define GRADEQ_SEED_DEFAULT_PREFIX "course-v1:gradeq+"
/* Upper bound for learners per course (user ids must stay in an int). */
#define GRADEQ_SEED_MAX_LEARNERS 10000000

struct gradeq_seed_opts {
	const char *const *classes; /* "small", "medium", "large"; may repeat */
	size_t nclasses;
	int learners; /* per course, >= 0 */
	uint64_t seed;
	const char *prefix; /* course id prefix; NULL: the default */
	bool replace;       /* delete the rows of these course ids first */
};

struct gradeq_seed_stats {
	int courses;
	long blocks, enrollments;
	long score_rows;   /* courseware_studentmodule rows, problems or not */
	long problem_rows; /* of which rows of problem blocks */
	double seconds;
	double copy_seconds; /* of which spent in the courseware_studentmodule COPY */
};

/* Generates and stores one course per entry of o->classes. Course ids are
 * prefix + class + ordinal + "+2026" ("course-v1:gradeq+small1+2026", then
 * small2 when the class repeats). Everything is written in one transaction:
 * each course's courses row upserted, its blocks and enrollments COPYed,
 * then the courseware_studentmodule rows of all the courses in one COPY,
 * learner by learner in user id order across the courses (a learner's rows
 * of different courses lie side by side in the table, as on the platform
 * where a learner takes several courses), one learner's rows in memory at a
 * time. Without o->replace a course that already has blocks or enrollments
 * is refused with GRADEQ_ERR_STATE, every course checked before any is
 * written; with it, the course's rows are deleted from the four input
 * tables first, so seeding twice with the same options leaves the same data
 * (ids of the bigserial columns aside). The four tables are ANALYZEd at the
 * end. An error leaves the tables as they were.
 * Returns 0, GRADEQ_ERR_INVALID (unknown class, learners out of range, no
 * class), GRADEQ_ERR_STATE (input tables missing, or data there without
 * replace), GRADEQ_ERR_NOMEM, or the store's error for a failed statement;
 * stats (may be NULL) counts what was committed. */
int gradeq_seed_run(struct gradeq_store *st, const struct gradeq_seed_opts *o,
		    struct gradeq_seed_stats *stats) GRADEQ_MUST_CHECK;

struct gradeq_cli;

/* True when name is a course class: "small", "medium" or "large". */
bool gradeq_seed_class_known(const char *name);

/* gradeq-admin seed [--courses small,medium,large] [--learners N]
 * [--seed N] [--prefix P] [--replace]: argv[0] is "seed". Returns the
 * exit status and prints its own errors. */
int gradeq_seed_main(struct gradeq_cli *cli, struct gradeq_store *st, int argc, char **argv,
		     bool json);

/* ---- the pure generator ---- */

/* One course_blocks row. Keys are built from the course's key base:
 * key_base + "+type@" + type name + "+block@" + id. */
struct gradeq_seed_block {
	enum gradeq_block_type type;
	int parent;   /* index into the course's blocks; -1 for the root */
	int position; /* 0-based order among siblings */
	bool graded;
	const char *format; /* static string, NULL when none */
	bool has_weight;
	double weight;
	bool has_max_score;
	double max_score;
	char id[33];           /* 32 hex digits, unique in the course */
	const char *type_name; /* static: block_type and module_type ("video") */
};

struct gradeq_seed_course {
	char *course_id;
	char *key_base;    /* "block-v1:gradeq+small1+2026" */
	char *policy_json; /* the courses.grading_policy value */
	char version[20];  /* "v1-" + 16 hex digits of a content hash */
	int64_t edited_at_us;
	int64_t start_us;                 /* course start; enrollments come around it */
	struct gradeq_seed_block *blocks; /* depth-first, parents before children */
	size_t nblocks;
	size_t nsequentials, nproblems;
	size_t *order; /* a shuffled permutation of the block indexes:
				    * the order rows are written in, so that
				    * readers cannot lean on insertion order */
	int learners;
	int user_base;           /* learner i has a user id in
				    * [user_base, user_base + learners) */
	uint64_t perm_a, perm_c; /* user id = user_base + (i*a + c) mod learners */
	uint64_t perm_inv;       /* a's inverse modulo learners */
	uint64_t seed;           /* the course's own seed */
};

/* Builds course number 'index' (0-based position in the class list) of class
 * 'cls' with ordinal 'ordinal' (1-based within its class). prefix NULL means
 * the default. Returns GRADEQ_ERR_INVALID for an unknown class or learners
 * out of [0, GRADEQ_SEED_MAX_LEARNERS] (or user ids that would overflow),
 * GRADEQ_ERR_NOMEM; *out is NULL on error. */
int gradeq_seed_course_new(const char *cls, int index, int ordinal, int learners, uint64_t seed,
			   const char *prefix, struct gradeq_seed_course **out) GRADEQ_MUST_CHECK;
/* Frees a course; NULL is a no-op. */
void gradeq_seed_course_free(struct gradeq_seed_course *c);

/* Writes block i's usage key into buf (always NUL-terminated); returns the
 * length it needs, as snprintf does. */
size_t gradeq_seed_block_key(const struct gradeq_seed_course *c, size_t i, char *buf, size_t size);

/* Name of a block type as course_blocks spells it ("sequential"); the
 * generator's GRADEQ_BLOCK_OTHER blocks are "video" or "html" (see
 * type_name). */
const char *gradeq_seed_block_type_name(enum gradeq_block_type t);

/* A learner of a course, with the generator state its score rows come from. */
struct gradeq_seed_learner {
	int user_id;
	bool is_active;
	const char *mode;   /* "audit" or "verified" */
	int64_t created_us; /* enrollment */
	/* generator state */
	uint64_t rng[4];
	double reach;     /* fraction of the course the learner got through */
	double skill;     /* expected fraction of a problem's points */
	double diligence; /* probability of trying a reached graded problem */
	bool everything;  /* opens every block and tries every problem */
};

/* Sets up learner i (0 <= i < c->learners), the i-th enrollment in id order.
 * User ids are a permutation of the course's range, so enrollment order is
 * not user id order; course n's range starts a third of the learners after
 * course n-1's, so that with three courses or more most learners are
 * enrolled in two or three of them. Pure; same i, same learner. */
void gradeq_seed_learner_init(const struct gradeq_seed_course *c, int i,
			      struct gradeq_seed_learner *l);

/* The learner index whose user id is c->user_base + k (0 <= k <
 * c->learners): walking k upwards visits learners in user id order. */
int gradeq_seed_learner_index(const struct gradeq_seed_course *c, int k);

/* One courseware_studentmodule row: a problem's score, or the state of a
 * chapter, sequential, vertical, video or html block the learner opened
 * (grade and max_grade NULL). */
struct gradeq_seed_score {
	size_t block; /* index in c->blocks; module_type is its type_name */
	bool has_grade;
	double grade; /* 0 <= grade <= max_grade when both are set */
	bool has_max_grade;
	double max_grade;
	int64_t created_us;
	int64_t modified_us; /* >= created_us */
};

/* Called for each score row; a non-zero return stops the walk and is
 * returned by gradeq_seed_learner_scores(). */
typedef int (*gradeq_seed_score_fn)(void *arg, const struct gradeq_seed_score *row);

/* Produces the module rows of a learner just set up by
 * gradeq_seed_learner_init(), in course order, at most one per block: the
 * problems attempted and the other blocks opened (never the course root);
 * the rest have no row. Consumes l's generator state: call it once per
 * init. Returns 0 or what fn returned. */
int gradeq_seed_learner_scores(const struct gradeq_seed_course *c, struct gradeq_seed_learner *l,
			       gradeq_seed_score_fn fn, void *arg);

/* Formats microseconds since the epoch as "YYYY-MM-DD HH:MM:SS.ffffff+00"
 * into buf (at least 32 bytes); returns the length written. */
size_t gradeq_seed_format_ts(int64_t us, char *buf, size_t size);

#endif
