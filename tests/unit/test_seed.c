/* The seed generator's pure part: course trees that the grader accepts,
 * sizes per class, positions, determinism, learners and their module rows
 * shaped like the platform's (about half of the problems attempted, as many
 * rows of blocks that are not problems). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "gradeq/grading.h"
#include "gradeq/seed.h"

static const char *const class_names[] = {"small", "medium", "large"};
static const int seq_lo[] = {8, 36, 110};
static const int seq_hi[] = {12, 44, 130};
static const int prob_lo[] = {3, 6, 6};
static const int prob_hi[] = {6, 10, 10};
static const uint64_t seeds[] = {0, 1, 7, 42, 0xdeadbeefcafef00dULL};

#define NSEEDS (sizeof(seeds) / sizeof(seeds[0]))

static struct gradeq_seed_course *build(const char *cls, int index, int ordinal, int learners,
					uint64_t seed)
{
	struct gradeq_seed_course *c = NULL;

	assert_int_equal(gradeq_seed_course_new(cls, index, ordinal, learners, seed, NULL, &c), 0);
	assert_non_null(c);
	return c;
}

static int parent_type_ok(enum gradeq_block_type t, enum gradeq_block_type p)
{
	switch (t) {
	case GRADEQ_BLOCK_CHAPTER: return p == GRADEQ_BLOCK_COURSE;
	case GRADEQ_BLOCK_SEQUENTIAL: return p == GRADEQ_BLOCK_CHAPTER;
	case GRADEQ_BLOCK_VERTICAL:
		return p == GRADEQ_BLOCK_SEQUENTIAL || p == GRADEQ_BLOCK_VERTICAL;
	case GRADEQ_BLOCK_PROBLEM: return p == GRADEQ_BLOCK_VERTICAL;
	case GRADEQ_BLOCK_OTHER: return p == GRADEQ_BLOCK_VERTICAL; /* video, html */
	default: return 0;
	}
}

static int cmp_id(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Tree shape: one root first, parents before children and of the right type,
 * positions 0..n-1 among siblings, ids unique, order a permutation. */
static void check_tree(const struct gradeq_seed_course *c)
{
	int *kids = calloc(c->nblocks, sizeof(int));
	char *seen = calloc(c->nblocks, 1);
	const char **ids = calloc(c->nblocks, sizeof(*ids));
	size_t nseq = 0, nprob = 0;

	assert_non_null(kids);
	assert_non_null(seen);
	assert_non_null(ids);
	assert_true(c->nblocks > 0);
	assert_int_equal(c->blocks[0].type, GRADEQ_BLOCK_COURSE);
	assert_int_equal(c->blocks[0].parent, -1);
	for (size_t i = 0; i < c->nblocks; i++) {
		const struct gradeq_seed_block *b = &c->blocks[i];

		ids[i] = b->id;
		assert_int_equal(strlen(b->id), 32);
		if (b->type == GRADEQ_BLOCK_OTHER)
			assert_true(strcmp(b->type_name, "video") == 0 ||
				    strcmp(b->type_name, "html") == 0);
		else
			assert_string_equal(b->type_name, gradeq_seed_block_type_name(b->type));
		nseq += b->type == GRADEQ_BLOCK_SEQUENTIAL;
		nprob += b->type == GRADEQ_BLOCK_PROBLEM;
		if (i == 0)
			continue;
		assert_true(b->parent >= 0 && (size_t)b->parent < i);
		assert_true(parent_type_ok(b->type, c->blocks[b->parent].type));
		/* depth-first: siblings come in position order */
		assert_int_equal(b->position, kids[b->parent]);
		kids[b->parent]++;
	}
	assert_int_equal(nseq, c->nsequentials);
	assert_int_equal(nprob, c->nproblems);
	qsort(ids, c->nblocks, sizeof(*ids), cmp_id);
	for (size_t i = 1; i < c->nblocks; i++)
		assert_true(strcmp(ids[i - 1], ids[i]) != 0);
	for (size_t i = 0; i < c->nblocks; i++) {
		assert_true(c->order[i] < c->nblocks);
		assert_false(seen[c->order[i]]);
		seen[c->order[i]] = 1;
	}
	free(kids);
	free(seen);
	free(ids);
}

/* Problems per subsection, in its whole subtree: 3 to 6 on small courses,
 * 6 to 10 (about 8) on medium and large ones. */
static void check_problems_per_sequential(const struct gradeq_seed_course *c, int lo, int hi)
{
	for (size_t s = 0; s < c->nblocks; s++) {
		int n = 0;

		if (c->blocks[s].type != GRADEQ_BLOCK_SEQUENTIAL)
			continue;
		for (size_t i = s + 1; i < c->nblocks; i++) {
			int a = c->blocks[i].parent;

			while (a > (int)s)
				a = c->blocks[a].parent;
			if (a < (int)s)
				break; /* left the subtree (depth-first order) */
			n += c->blocks[i].type == GRADEQ_BLOCK_PROBLEM;
		}
		assert_in_range(n, lo, hi);
	}
}

static int count_graded(const struct gradeq_seed_course *c, const char *format)
{
	int n = 0;

	for (size_t i = 0; i < c->nblocks; i++)
		n += c->blocks[i].type == GRADEQ_BLOCK_SEQUENTIAL && c->blocks[i].graded &&
		     c->blocks[i].format && strcmp(c->blocks[i].format, format) == 0;
	return n;
}

/* The policy has the platform's shape and fits the course: min_count at
 * least the number of graded subsections of the type. */
static void check_policy(const struct gradeq_seed_course *c)
{
	json_error_t jerr;
	json_t *p = json_loads(c->policy_json, 0, &jerr), *g, *e;
	size_t i;

	assert_non_null(p);
	g = json_object_get(p, "GRADER");
	assert_true(json_is_array(g));
	assert_int_equal(json_array_size(g), 4);
	json_array_foreach(g, i, e)
	{
		const char *type = json_string_value(json_object_get(e, "type"));
		json_int_t min = json_integer_value(json_object_get(e, "min_count"));
		json_int_t drop = json_integer_value(json_object_get(e, "drop_count"));
		int n;

		assert_non_null(type);
		n = count_graded(c, type);
		assert_true(n >= 1);
		assert_true(min >= n && min <= n + 1);
		assert_true(drop >= 0 && drop < min);
	}
	assert_true(json_is_object(json_object_get(p, "GRADE_CUTOFFS")));
	json_decref(p);
}

static void test_tree_shape_per_class(void **state)
{
	(void)state;
	for (size_t k = 0; k < 3; k++) {
		for (size_t s = 0; s < NSEEDS; s++) {
			struct gradeq_seed_course *c = build(class_names[k], 0, 1, 10, seeds[s]);

			assert_in_range(c->nsequentials, seq_lo[k], seq_hi[k]);
			check_tree(c);
			check_problems_per_sequential(c, prob_lo[k], prob_hi[k]);
			check_policy(c);
			gradeq_seed_course_free(c);
		}
	}
}

/* The mix the brief asks for shows up across a large course. */
static void test_block_mix(void **state)
{
	struct gradeq_seed_course *c = build("large", 0, 1, 10, 7);
	int wnull = 0, wset = 0, w0 = 0, msnull = 0, ungraded_p = 0, ungraded_s = 0, nested = 0;
	int video = 0, html = 0;

	(void)state;
	for (size_t i = 0; i < c->nblocks; i++) {
		const struct gradeq_seed_block *b = &c->blocks[i];

		if (b->type == GRADEQ_BLOCK_PROBLEM) {
			wnull += !b->has_weight;
			wset += b->has_weight && b->weight > 0;
			w0 += b->has_weight && b->weight == 0;
			msnull += !b->has_max_score;
			ungraded_p += !b->graded;
			if (b->has_max_score)
				assert_true(b->max_score >= 1 && b->max_score <= 10);
		} else if (b->type == GRADEQ_BLOCK_SEQUENTIAL) {
			ungraded_s += !b->graded;
		} else if (b->type == GRADEQ_BLOCK_VERTICAL) {
			nested += c->blocks[b->parent].type == GRADEQ_BLOCK_VERTICAL;
		} else if (b->type == GRADEQ_BLOCK_OTHER) {
			video += strcmp(b->type_name, "video") == 0;
			html += strcmp(b->type_name, "html") == 0;
		}
	}
	/* about one video or html block per unit */
	assert_true(video > 0 && html > 0);
	assert_true(video + html > (int)c->nsequentials);
	assert_true(wnull > 0 && wset > 0 && w0 > 0 && msnull > 0);
	assert_true(ungraded_p > 0 && ungraded_s > 0 && nested > 0);
	assert_int_equal(count_graded(c, "Final Exam"), 1);
	assert_int_equal(count_graded(c, "Midterm Exam"), 2);
	gradeq_seed_course_free(c);
}

static void test_names(void **state)
{
	struct gradeq_seed_course *c = NULL;
	char key[256];

	(void)state;
	c = build("small", 0, 1, 0, 7);
	assert_string_equal(c->course_id, "course-v1:gradeq+small1+2026");
	assert_string_equal(c->key_base, "block-v1:gradeq+small1+2026");
	assert_int_equal(strncmp(c->version, "v1-", 3), 0);
	assert_int_equal(strlen(c->version), 19);
	gradeq_seed_block_key(c, 0, key, sizeof(key));
	assert_int_equal(strncmp(key, "block-v1:gradeq+small1+2026+type@course+block@", 46), 0);
	gradeq_seed_course_free(c);

	assert_int_equal(gradeq_seed_course_new("large", 0, 3, 0, 7,
						"course-v1:gr\xc3\xa9"
						"de+",
						&c),
			 0);
	assert_string_equal(c->course_id, "course-v1:gr\xc3\xa9"
					  "de+large3+2026");
	assert_string_equal(c->key_base, "block-v1:gr\xc3\xa9"
					 "de+large3+2026");
	gradeq_seed_course_free(c);

	assert_int_equal(gradeq_seed_course_new("huge", 0, 1, 10, 7, NULL, &c), GRADEQ_ERR_INVALID);
	assert_null(c);
	assert_int_equal(gradeq_seed_course_new("small", 0, 1, -1, 7, NULL, &c),
			 GRADEQ_ERR_INVALID);
	assert_int_equal(
		gradeq_seed_course_new("small", 0, 1, GRADEQ_SEED_MAX_LEARNERS + 1, 7, NULL, &c),
		GRADEQ_ERR_INVALID);
	gradeq_seed_course_free(NULL);
}

static void test_letter_policies(void **state)
{
	struct gradeq_seed_course *c;

	(void)state;
	c = build("medium", 0, 1, 0, 7);
	assert_non_null(strstr(c->policy_json, "\"A\": 0.9"));
	gradeq_seed_course_free(c);
	c = build("small", 0, 1, 0, 7);
	assert_non_null(strstr(c->policy_json, "\"Pass\": 0.5"));
	assert_null(strstr(c->policy_json, "\"A\""));
	gradeq_seed_course_free(c);
	c = build("small", 0, 2, 0, 7);
	assert_non_null(strstr(c->policy_json, "\"A\": 0.9"));
	gradeq_seed_course_free(c);
}

/* Same options, same course; structure does not depend on the list
 * position; another seed gives another course. */
static void test_deterministic(void **state)
{
	struct gradeq_seed_course *a = build("medium", 0, 1, 100, 42);
	struct gradeq_seed_course *b = build("medium", 2, 1, 100, 42);
	struct gradeq_seed_course *d = build("medium", 0, 1, 100, 43);

	(void)state;
	assert_int_equal(a->nblocks, b->nblocks);
	assert_memory_equal(a->blocks, b->blocks, a->nblocks * sizeof(*a->blocks));
	assert_memory_equal(a->order, b->order, a->nblocks * sizeof(*a->order));
	assert_string_equal(a->policy_json, b->policy_json);
	assert_string_equal(a->version, b->version);
	assert_int_equal(a->start_us, b->start_us);
	assert_int_equal(a->edited_at_us, b->edited_at_us);
	assert_string_not_equal(a->version, d->version);
	/* each course starts a third of the learners after the one before */
	assert_int_equal(b->user_base - a->user_base, 2 * 33);
	gradeq_seed_course_free(a);
	gradeq_seed_course_free(b);
	gradeq_seed_course_free(d);
}

static void test_learner_permutation(void **state)
{
	static const int sizes[] = {1, 2, 3, 7, 1000, 4096};

	(void)state;
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		struct gradeq_seed_course *c = build("small", 1, 1, sizes[k], 9);
		char *seen = calloc((size_t)sizes[k], 1);
		int in_order = 1;

		assert_non_null(seen);
		for (int i = 0; i < sizes[k]; i++) {
			struct gradeq_seed_learner l;
			int u;

			gradeq_seed_learner_init(c, i, &l);
			u = l.user_id - c->user_base;
			assert_in_range(u, 0, sizes[k] - 1);
			assert_false(seen[u]);
			seen[u] = 1;
			in_order &= u == i;
			assert_int_equal(gradeq_seed_learner_index(c, u), i);
			assert_true(strcmp(l.mode, "audit") == 0 ||
				    strcmp(l.mode, "verified") == 0);
		}
		if (sizes[k] >= 1000)
			assert_false(in_order);
		free(seen);
		gradeq_seed_course_free(c);
	}
}

struct rows {
	const struct gradeq_seed_course *c;
	long n, grade_null, max_null, max_zero, frac;
	long problem_rows, other_rows, types[GRADEQ_BLOCK_PROBLEM + 1];
	long video, html;
	long learner_rows;     /* rows of the learner in hand */
	long learner_problems; /* of which problems */
	int none, all;         /* learners who attempted no problem, every one */
	size_t last;
	uint64_t hash;
	int64_t first_created;
};

static int check_row(void *arg, const struct gradeq_seed_score *r)
{
	struct rows *x = arg;

	const struct gradeq_seed_block *b;

	assert_true(r->block < x->c->nblocks);
	b = &x->c->blocks[r->block];
	assert_int_not_equal(b->type, GRADEQ_BLOCK_COURSE);
	if (x->learner_rows++)
		assert_true(r->block > x->last); /* course order, one per block */
	x->last = r->block;
	assert_true(r->modified_us >= r->created_us);
	x->types[b->type]++;
	if (b->type != GRADEQ_BLOCK_PROBLEM) {
		/* state of an opened block: no grade */
		assert_false(r->has_grade);
		assert_false(r->has_max_grade);
		x->other_rows++;
		x->video += strcmp(b->type_name, "video") == 0;
		x->html += strcmp(b->type_name, "html") == 0;
		x->hash = (x->hash ^ (uint64_t)r->block) * 0x100000001b3ULL;
		x->n++;
		return 0;
	}
	x->problem_rows++;
	x->learner_problems++;
	if (r->has_grade && r->has_max_grade) {
		assert_true(r->grade >= 0);
		assert_true(r->grade <= r->max_grade);
	}
	x->grade_null += !r->has_grade;
	x->max_null += !r->has_max_grade;
	x->max_zero += r->has_max_grade && r->max_grade == 0;
	x->frac += r->has_grade && r->grade != (double)(long)r->grade;
	x->hash = (x->hash ^ (uint64_t)r->block ^ (uint64_t)r->created_us) * 0x100000001b3ULL;
	x->n++;
	return 0;
}

static void walk(const struct gradeq_seed_course *c, struct rows *x)
{
	memset(x, 0, sizeof(*x));
	x->c = c;
	for (int i = 0; i < c->learners; i++) {
		struct gradeq_seed_learner l;

		gradeq_seed_learner_init(c, i, &l);
		x->learner_rows = x->learner_problems = 0;
		assert_int_equal(gradeq_seed_learner_scores(c, &l, check_row, x), 0);
		x->hash ^= (uint64_t)x->learner_rows;
		x->none += x->learner_problems == 0;
		x->all += x->learner_problems == (long)c->nproblems;
	}
}

/* The platform's shape, on every class: a learner attempted about half of
 * the problems on average, some none and some all; the blocks that are not
 * problems have about as many rows as the problems; every odd case of a
 * score shows up. */
static void check_shape(const char *cls, int learners)
{
	struct gradeq_seed_course *c = build(cls, 0, 1, learners, 7);
	struct rows a, b;
	double share, ratio;

	walk(c, &a);
	walk(c, &b);
	assert_int_equal(a.hash, b.hash);
	assert_int_equal(a.n, b.n);
	share = (double)a.problem_rows / ((double)learners * (double)c->nproblems);
	ratio = (double)a.other_rows / (double)a.problem_rows;
	print_message("%s: %.1f problem rows and %.1f others per learner (%zu problems,"
		      " share %.2f, ratio %.2f, %d none, %d all)\n",
		      cls, (double)a.problem_rows / learners, (double)a.other_rows / learners,
		      c->nproblems, share, ratio, a.none, a.all);
	assert_true(share > 0.4 && share < 0.6);
	assert_true(ratio > 0.75 && ratio < 1.35);
	assert_true(a.none > learners / 20 && a.none < learners / 4);
	assert_true(a.all > learners / 20 && a.all < learners / 4);
	assert_true(a.types[GRADEQ_BLOCK_CHAPTER] > 0 && a.types[GRADEQ_BLOCK_SEQUENTIAL] > 0);
	assert_true(a.types[GRADEQ_BLOCK_VERTICAL] > 0 && a.video > 0 && a.html > 0);
	assert_true(a.grade_null > 0 && a.max_null > 0 && a.max_zero > 0 && a.frac > 0);
	gradeq_seed_course_free(c);
}

static void test_scores(void **state)
{
	(void)state;
	check_shape("small", 2000);
	check_shape("medium", 1000);
	check_shape("large", 300);
}

/* A stop asked by the callback comes back unchanged. */
static int stop_at_first(void *arg, const struct gradeq_seed_score *r)
{
	(void)r;
	(*(int *)arg)++;
	return -99;
}

static void test_scores_stop(void **state)
{
	struct gradeq_seed_course *c = build("small", 0, 1, 200, 7);
	int calls = 0, stopped = 0;

	(void)state;
	for (int i = 0; i < c->learners; i++) {
		struct gradeq_seed_learner l;
		int before = calls;

		gradeq_seed_learner_init(c, i, &l);
		if (gradeq_seed_learner_scores(c, &l, stop_at_first, &calls) == -99)
			stopped++;
		assert_true(calls - before <= 1);
	}
	assert_true(stopped > 0);
	assert_int_equal(stopped, calls);
	gradeq_seed_course_free(c);
}

/* The grader accepts every generated course, sees the same subsections and
 * problems, and grades come out spread: some pass, some fail. */
struct grade_rows {
	const struct gradeq_course *gc;
	const struct gradeq_seed_course *c;
	struct gradeq_score *scores;
	size_t n;
	char key[512];
};

static int collect(void *arg, const struct gradeq_seed_score *r)
{
	struct grade_rows *g = arg;

	gradeq_seed_block_key(g->c, r->block, g->key, sizeof(g->key));
	g->scores[g->n].problem = gradeq_course_problem_index(g->gc, g->key);
	/* the grader knows the problems, and only them */
	if (g->c->blocks[r->block].type != GRADEQ_BLOCK_PROBLEM) {
		assert_true(g->scores[g->n].problem < 0);
		return 0;
	}
	assert_true(g->scores[g->n].problem >= 0);
	g->scores[g->n].has_grade = r->has_grade;
	g->scores[g->n].grade = r->grade;
	g->scores[g->n].has_max_grade = r->has_max_grade;
	g->scores[g->n].max_grade = r->max_grade;
	g->scores[g->n].created_us = r->created_us;
	g->n++;
	return 0;
}

static void grade_class(const char *cls)
{
	struct gradeq_seed_course *c = build(cls, 0, 1, 300, 7);
	struct gradeq_block_in *in = calloc(c->nblocks, sizeof(*in));
	char(*keys)[256] = calloc(c->nblocks, sizeof(*keys));
	struct gradeq_course *gc = NULL;
	struct gradeq_grader *gr;
	struct grade_rows g;
	char err[256];
	int passed = 0, zero = 0;

	assert_non_null(in);
	assert_non_null(keys);
	for (size_t i = 0; i < c->nblocks; i++) {
		const struct gradeq_seed_block *b = &c->blocks[i];

		gradeq_seed_block_key(c, i, keys[i], sizeof(keys[i]));
		in[i].usage_key = keys[i];
		in[i].parent_key = b->parent < 0 ? NULL : keys[b->parent];
		in[i].type = b->type;
		in[i].position = b->position;
		in[i].graded = b->graded;
		in[i].format = b->format;
		in[i].has_weight = b->has_weight;
		in[i].weight = b->weight;
		in[i].has_max_score = b->has_max_score;
		in[i].max_score = b->max_score;
	}
	assert_int_equal(gradeq_course_new(in, c->nblocks, c->policy_json, strlen(c->policy_json),
					   &gc, err, sizeof(err)),
			 0);
	assert_int_equal(gradeq_course_nsubsections(gc), c->nsequentials);
	assert_int_equal(gradeq_course_nproblems(gc), c->nproblems);
	gr = gradeq_grader_new(gc);
	assert_non_null(gr);
	memset(&g, 0, sizeof(g));
	g.gc = gc;
	g.c = c;
	g.scores = calloc(c->nproblems, sizeof(*g.scores));
	assert_non_null(g.scores);
	for (int i = 0; i < c->learners; i++) {
		struct gradeq_seed_learner l;
		const struct gradeq_subsection_grade *subs;
		struct gradeq_course_grade cg;

		gradeq_seed_learner_init(c, i, &l);
		g.n = 0;
		assert_int_equal(gradeq_seed_learner_scores(c, &l, collect, &g), 0);
		assert_int_equal(gradeq_grader_grade(gr, g.scores, g.n, &subs, &cg), 0);
		passed += cg.passed;
		zero += cg.percent == 0;
	}
	/* realistic: neither everybody nor nobody passes; never-started
	 * learners score zero */
	assert_in_range(passed, 300 / 20, 300 * 7 / 10);
	assert_in_range(zero, 300 / 20, 300 / 2);
	free(g.scores);
	gradeq_grader_free(gr);
	gradeq_course_free(gc);
	free(in);
	free(keys);
	gradeq_seed_course_free(c);
}

static void test_grader_accepts(void **state)
{
	(void)state;
	for (size_t k = 0; k < 3; k++)
		grade_class(class_names[k]);
}

static void test_format_ts(void **state)
{
	char buf[40];

	(void)state;
	assert_int_equal(gradeq_seed_format_ts(0, buf, sizeof(buf)), 29);
	assert_string_equal(buf, "1970-01-01 00:00:00.000000+00");
	/* 2000-02-29 23:59:59.999999 UTC */
	gradeq_seed_format_ts(951868799999999LL, buf, sizeof(buf));
	assert_string_equal(buf, "2000-02-29 23:59:59.999999+00");
	/* 2026-01-01 00:00:00.123456 UTC */
	gradeq_seed_format_ts(1767225600123456LL, buf, sizeof(buf));
	assert_string_equal(buf, "2026-01-01 00:00:00.123456+00");
	/* truncated, still terminated */
	assert_int_equal(gradeq_seed_format_ts(0, buf, 5), 29);
	assert_string_equal(buf, "1970");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tree_shape_per_class),
		cmocka_unit_test(test_block_mix),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_letter_policies),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_learner_permutation),
		cmocka_unit_test(test_scores),
		cmocka_unit_test(test_scores_stop),
		cmocka_unit_test(test_grader_accepts),
		cmocka_unit_test(test_format_ts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
