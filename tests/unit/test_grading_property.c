/* Properties of the grader on random courses and learners (seeded, so
 * every run sees the same cases):
 *  - shuffling a learner's rows changes no bit of the result;
 *  - one grader reused for interleaved learners equals a fresh grader each;
 *  - the result equals a naive reference written straight from DESIGN.md
 *    section 2 (recursive sums, zero padding materialised, insertion sort,
 *    the last drop_count dropped). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "grading_helpers.h"

#define NCOURSES 300
#define NLEARNERS 12

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

static int rnd_int(int n)
{
	return (int)(rnd() % (uint64_t)n);
}

/* Values with short decimals and awkward ones, NULL sometimes. */
static double rnd_value(bool nullable)
{
	static const double v[] = {0, 1, 2, 3, 0.5, 0.1, 0.3, 7, 10, 0.25, 1.0 / 3, 12.5};

	if (nullable && rnd_int(6) == 0)
		return NUL;
	return v[rnd_int((int)(sizeof(v) / sizeof(v[0])))];
}

static const char *const formats[] = {"Homework", "Lab", "Exam", NULL};

static void add_subtree(struct tb *t, const char *parent, int depth)
{
	int n = rnd_int(4);

	for (int i = 0; i < n; i++) {
		const char *key = tb_str(t, "%s.%d", parent, i);
		int pos = rnd_int(3); /* ties on purpose */

		if (depth < 2 && rnd_int(3) == 0) {
			tb_add(t, key, parent, GRADEQ_BLOCK_VERTICAL, pos);
			add_subtree(t, key, depth + 1);
		} else {
			tb_prob(t, key, parent, pos, rnd_value(true), rnd_value(true),
				rnd_int(5) != 0);
		}
	}
}

static void random_course(struct tb *t)
{
	int nch = 1 + rnd_int(3);

	tb_add(t, "root", NULL, GRADEQ_BLOCK_COURSE, 0);
	for (int c = 0; c < nch; c++) {
		const char *ch = tb_str(t, "ch%d", c);
		int nseq = rnd_int(6);

		tb_add(t, ch, "root", GRADEQ_BLOCK_CHAPTER, rnd_int(4));
		for (int s = 0; s < nseq; s++) {
			const char *sk = tb_str(t, "%s.s%d", ch, s);

			tb_seq(t, sk, ch, rnd_int(4), formats[rnd_int(4)], rnd_int(4) != 0);
			add_subtree(t, sk, 0);
		}
	}
	/* Shuffle the input order: it must not matter. */
	for (size_t i = t->n; i > 1; i--) {
		size_t j = rnd() % i;
		struct gradeq_block_in tmp = t->b[i - 1];

		t->b[i - 1] = t->b[j];
		t->b[j] = tmp;
	}
}

static const char *random_policy(char *buf, size_t size)
{
	snprintf(buf, size,
		 "{\"GRADER\": [{\"type\": \"Homework\", \"min_count\": %d, \"drop_count\": %d, "
		 "\"weight\": 0.15}, {\"type\": \"Lab\", \"min_count\": %d, \"drop_count\": %d, "
		 "\"weight\": 0.35}, {\"type\": \"Exam\", \"min_count\": %d, \"weight\": 0.5}], "
		 "\"GRADE_CUTOFFS\": {\"A\": 0.87, \"B\": 0.8, \"C\": 0.5, \"D\": 0.2}}",
		 rnd_int(6), rnd_int(4), rnd_int(6), rnd_int(3), rnd_int(3));
	return buf;
}

static size_t random_rows(const struct gradeq_course *c, struct gradeq_score *rows)
{
	size_t n = 0, np = gradeq_course_nproblems(c);

	for (size_t i = 0; i < np; i++) {
		if (rnd_int(3) == 0)
			continue;
		rows[n].problem = (int)i;
		rows[n].grade = rnd_value(false);
		rows[n].has_grade = rnd_int(5) != 0;
		rows[n].max_grade = rnd_value(false);
		rows[n].has_max_grade = rnd_int(6) != 0;
		rows[n].created_us = 1000 + rnd_int(50);
		n++;
	}
	return n;
}

/* ---- the reference ---- */

struct ref_sub {
	double ea, pa, eg, pg;
	bool attempted;
	int64_t first;
};

static const struct gradeq_block_in *ref_find(const struct tb *t, const char *key)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->b[i].usage_key, key) == 0)
			return &t->b[i];
	return NULL;
}

/* Children of 'key' in course order, by selection. */
static size_t ref_children(const struct tb *t, const char *key, const struct gradeq_block_in **out)
{
	size_t n = 0;

	for (size_t i = 0; i < t->n; i++)
		if (t->b[i].parent_key && strcmp(t->b[i].parent_key, key) == 0)
			out[n++] = &t->b[i];
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0; j--) {
			const struct gradeq_block_in *x = out[j - 1], *y = out[j];

			if (x->position < y->position ||
			    (x->position == y->position && strcmp(x->usage_key, y->usage_key) < 0))
				break;
			out[j - 1] = y;
			out[j] = x;
		}
	return n;
}

static const struct gradeq_score *ref_row(const struct gradeq_course *c, const char *key,
					  const struct gradeq_score *rows, size_t n)
{
	int idx = gradeq_course_problem_index(c, key);

	for (size_t i = 0; i < n; i++)
		if (rows[i].problem == idx)
			return &rows[i];
	return NULL;
}

static void ref_sum(const struct tb *t, const struct gradeq_course *c, const char *key,
		    const struct gradeq_score *rows, size_t nrows, struct ref_sub *r)
{
	const struct gradeq_block_in *kids[64], *b = ref_find(t, key);
	const struct gradeq_score *row;
	double re, rp, e, p;
	bool att = false;
	size_t n;

	if (b->type == GRADEQ_BLOCK_PROBLEM) {
		row = ref_row(c, key, rows, nrows);
		if (row && row->has_max_grade) {
			rp = row->max_grade;
			re = row->has_grade ? row->grade : 0;
			att = row->has_grade;
		} else {
			re = 0;
			rp = b->has_max_score ? b->max_score : 0;
		}
		e = re;
		p = rp;
		if (b->has_weight && rp > 0) {
			e = re * b->weight / rp;
			p = b->weight;
		}
		r->ea += e;
		r->pa += p;
		if (b->graded && p > 0) {
			r->eg += e;
			r->pg += p;
		}
		if (att && (!r->attempted || row->created_us < r->first)) {
			r->attempted = true;
			r->first = row->created_us;
		}
	}
	n = ref_children(t, key, kids);
	for (size_t i = 0; i < n; i++)
		ref_sum(t, c, kids[i]->usage_key, rows, nrows, r);
}

static size_t ref_sequentials(const struct tb *t, const char *key,
			      const struct gradeq_block_in **out, size_t n)
{
	const struct gradeq_block_in *kids[64], *b = ref_find(t, key);
	size_t k = ref_children(t, key, kids);

	if (b->type == GRADEQ_BLOCK_SEQUENTIAL)
		out[n++] = b;
	for (size_t i = 0; i < k; i++)
		n = ref_sequentials(t, kids[i]->usage_key, out, n);
	return n;
}

static double ref_grade(const struct tb *t, const struct gradeq_course *c,
			const struct gradeq_score *rows, size_t nrows, struct ref_sub *subs,
			const char **letter)
{
	const struct gradeq_policy *pol = gradeq_course_policy(c);
	const struct gradeq_block_in *seqs[256];
	size_t nseq = ref_sequentials(t, "root", seqs, 0);
	double raw = 0, pct;

	for (size_t s = 0; s < nseq; s++) {
		memset(&subs[s], 0, sizeof(subs[s]));
		ref_sum(t, c, seqs[s]->usage_key, rows, nrows, &subs[s]);
	}
	for (size_t e = 0; e < pol->ngraders; e++) {
		const struct gradeq_grader_entry *ge = &pol->graders[e];
		double v[512], sum = 0, avg = 0;
		size_t idx[512], n = 0, total;

		for (size_t s = 0; s < nseq; s++) {
			if (!seqs[s]->graded || !seqs[s]->format ||
			    strcmp(seqs[s]->format, ge->type) || !(subs[s].pg > 0))
				continue;
			v[n++] = rint(subs[s].eg / subs[s].pg * 1e4) / 1e4;
		}
		total = n > (size_t)ge->min_count ? n : (size_t)ge->min_count;
		for (size_t i = n; i < total; i++)
			v[i] = 0.0;
		for (size_t i = 0; i < total; i++)
			idx[i] = i;
		for (size_t i = 1; i < total; i++) /* stable, descending */
			for (size_t j = i; j > 0 && v[idx[j]] > v[idx[j - 1]]; j--) {
				size_t x = idx[j];

				idx[j] = idx[j - 1];
				idx[j - 1] = x;
			}
		for (size_t i = 0; i < total; i++) {
			bool dropped = false;

			for (size_t k = total > (size_t)ge->drop_count
						? total - (size_t)ge->drop_count
						: 0;
			     k < total; k++)
				dropped |= idx[k] == i;
			if (!dropped)
				sum += v[i];
		}
		if (total > (size_t)ge->drop_count)
			avg = sum / (double)(total - (size_t)ge->drop_count);
		raw += avg * ge->weight;
	}
	pct = floor(raw * 100 + 0.05 + 0.5) / 100;
	*letter = "";
	for (size_t i = 0; i < pol->ncutoffs; i++)
		if (pct >= pol->cutoffs[i].cutoff) {
			*letter = pol->cutoffs[i].letter;
			break;
		}
	return pct;
}

/* ---- comparisons ---- */

static bool same_bits(double a, double b)
{
	return memcmp(&a, &b, sizeof(a)) == 0;
}

struct result {
	struct gradeq_subsection_grade subs[256];
	struct gradeq_course_grade cg;
};

static void assert_same(const struct result *a, const struct result *b, size_t nsubs)
{
	for (size_t s = 0; s < nsubs; s++) {
		assert_true(same_bits(a->subs[s].earned_all, b->subs[s].earned_all));
		assert_true(same_bits(a->subs[s].possible_all, b->subs[s].possible_all));
		assert_true(same_bits(a->subs[s].earned_graded, b->subs[s].earned_graded));
		assert_true(same_bits(a->subs[s].possible_graded, b->subs[s].possible_graded));
		assert_int_equal(a->subs[s].attempted, b->subs[s].attempted);
		if (a->subs[s].attempted)
			assert_int_equal(a->subs[s].first_attempted_us,
					 b->subs[s].first_attempted_us);
	}
	assert_true(same_bits(a->cg.percent, b->cg.percent));
	assert_ptr_equal(a->cg.letter, b->cg.letter);
	assert_int_equal(a->cg.passed, b->cg.passed);
}

static void run(struct gradeq_grader *g, const struct gradeq_score *rows, size_t n, size_t nsubs,
		struct result *r)
{
	const struct gradeq_subsection_grade *s = NULL;

	assert_int_equal(gradeq_grader_grade(g, rows, n, &s, &r->cg), 0);
	memcpy(r->subs, s, nsubs * sizeof(*s));
}

static void test_properties(void **state)
{
	static struct gradeq_score rows[NLEARNERS][512], shuffled[512];
	static struct result fresh[NLEARNERS], other;
	static struct ref_sub ref[256];
	size_t nrows[NLEARNERS];
	char policy[512];

	(void)state;
	rng_state = 0x9e3779b97f4a7c15ULL;
	for (int k = 0; k < NCOURSES; k++) {
		struct gradeq_course *c = NULL;
		struct gradeq_grader *g, *reused;
		struct tb t = {0};
		char err[256];
		size_t nsubs;

		random_course(&t);
		random_policy(policy, sizeof(policy));
		assert_int_equal(
			gradeq_course_new(t.b, t.n, policy, strlen(policy), &c, err, sizeof(err)),
			0);
		nsubs = gradeq_course_nsubsections(c);
		assert_true(nsubs <= 256);
		for (int l = 0; l < NLEARNERS; l++) {
			const char *letter;
			double pct;

			nrows[l] = random_rows(c, rows[l]);
			g = gradeq_grader_new(c);
			run(g, rows[l], nrows[l], nsubs, &fresh[l]);
			gradeq_grader_free(g);

			/* the reference */
			pct = ref_grade(&t, c, rows[l], nrows[l], ref, &letter);
			assert_true(same_bits(pct, fresh[l].cg.percent));
			assert_string_equal(letter, fresh[l].cg.letter);
			for (size_t s = 0; s < nsubs; s++) {
				assert_true(same_bits(ref[s].ea, fresh[l].subs[s].earned_all));
				assert_true(same_bits(ref[s].pa, fresh[l].subs[s].possible_all));
				assert_true(same_bits(ref[s].eg, fresh[l].subs[s].earned_graded));
				assert_true(same_bits(ref[s].pg, fresh[l].subs[s].possible_graded));
				assert_int_equal(ref[s].attempted, fresh[l].subs[s].attempted);
			}

			/* shuffled rows */
			memcpy(shuffled, rows[l], nrows[l] * sizeof(*shuffled));
			for (size_t i = nrows[l]; i > 1; i--) {
				size_t j = rnd() % i;
				struct gradeq_score tmp = shuffled[i - 1];

				shuffled[i - 1] = shuffled[j];
				shuffled[j] = tmp;
			}
			g = gradeq_grader_new(c);
			run(g, shuffled, nrows[l], nsubs, &other);
			gradeq_grader_free(g);
			assert_same(&fresh[l], &other, nsubs);
		}
		/* One grader, learners interleaved and repeated. */
		reused = gradeq_grader_new(c);
		for (int round = 0; round < 3; round++) {
			for (int l = 0; l < NLEARNERS; l++) {
				int who = (l * 5 + round) % NLEARNERS;

				run(reused, rows[who], nrows[who], nsubs, &other);
				assert_same(&fresh[who], &other, nsubs);
			}
		}
		gradeq_grader_free(reused);
		gradeq_course_free(c);
		tb_release(&t);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_properties),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
