/* Grading rules of DESIGN.md section 2, one test per rule, expected values
 * worked out by hand (the arithmetic in the comments; where the last bit of
 * a double matters, Python 3 printed it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "grading_helpers.h"

/* One Homework grader taking everything as is. */
#define HW1                                                                                        \
	"{\"GRADER\": [{\"type\": \"Homework\", \"min_count\": 0, \"weight\": 1.0}], "             \
	"\"GRADE_CUTOFFS\": {\"A\": 0.9, \"Pass\": 0.5}}"

static struct gradeq_course *course_ok(struct tb *t, const char *policy)
{
	struct gradeq_course *c = NULL;
	char err[256] = "";
	int rc = gradeq_course_new(t->b, t->n, policy, strlen(policy), &c, err, sizeof(err));

	if (rc)
		fail_msg("course_new: %d %s", rc, err);
	return c;
}

/* Grades with a fresh grader; copies the results out. */
static void grade(const struct gradeq_course *c, const struct gradeq_score *rows, size_t n,
		  struct gradeq_subsection_grade *subs, struct gradeq_course_grade *cg)
{
	struct gradeq_grader *g = gradeq_grader_new(c);
	const struct gradeq_subsection_grade *s = NULL;

	assert_non_null(g);
	assert_int_equal(gradeq_grader_grade(g, rows, n, &s, cg), 0);
	if (subs)
		memcpy(subs, s, gradeq_course_nsubsections(c) * sizeof(*s));
	gradeq_grader_free(g);
}

/* root "c" and chapter "ch" */
static void tb_course(struct tb *t)
{
	tb_add(t, "c", NULL, GRADEQ_BLOCK_COURSE, 0);
	tb_add(t, "ch", "c", GRADEQ_BLOCK_CHAPTER, 0);
}

static void test_block_type_parse(void **state)
{
	(void)state;
	assert_int_equal(gradeq_block_type_parse("course"), GRADEQ_BLOCK_COURSE);
	assert_int_equal(gradeq_block_type_parse("chapter"), GRADEQ_BLOCK_CHAPTER);
	assert_int_equal(gradeq_block_type_parse("sequential"), GRADEQ_BLOCK_SEQUENTIAL);
	assert_int_equal(gradeq_block_type_parse("vertical"), GRADEQ_BLOCK_VERTICAL);
	assert_int_equal(gradeq_block_type_parse("problem"), GRADEQ_BLOCK_PROBLEM);
	assert_int_equal(gradeq_block_type_parse("html"), GRADEQ_BLOCK_OTHER);
	assert_int_equal(gradeq_block_type_parse("Problem"), GRADEQ_BLOCK_OTHER);
	assert_int_equal(gradeq_block_type_parse(NULL), GRADEQ_BLOCK_OTHER);
}

/* Rule 1. p1: row 1 of max_grade 3 (beats max_score 2), attempted at 100.
 * p2: row with NULL grade, max_grade 10: 0 of 10, no attempt.
 * p3: no row, max_score NULL: 0 of 0.
 * p4: row grade 4 but NULL max_grade, created 50: ignored, 0 of max_score 4.
 * all = 1 / (3 + 10 + 0 + 4) = 1 / 17; graded the same (p3 has possible 0,
 * so it is not graded, but adds 0 anyway). first attempt 100, not 50. */
static void test_rule1_score_source(void **state)
{
	struct gradeq_subsection_grade s[1];
	struct gradeq_course_grade cg;
	struct gradeq_score rows[3];
	struct gradeq_course *c;
	struct tb t = {0};

	(void)state;
	tb_course(&t);
	tb_seq(&t, "s1", "ch", 0, "Homework", true);
	tb_prob(&t, "p1", "s1", 0, 2, NUL, true);
	tb_prob(&t, "p2", "s1", 1, 5, NUL, true);
	tb_prob(&t, "p3", "s1", 2, NUL, NUL, true);
	tb_prob(&t, "p4", "s1", 3, 4, NUL, true);
	c = course_ok(&t, HW1);
	rows[0] = score_row(c, "p1", 1, 3, 100);
	rows[1] = score_row(c, "p2", NUL, 10, 10);
	rows[2] = score_row(c, "p4", 4, NUL, 50);
	grade(c, rows, 3, s, &cg);
	assert_true(s[0].earned_all == 1.0);
	assert_true(s[0].possible_all == 17.0);
	assert_true(s[0].earned_graded == 1.0);
	assert_true(s[0].possible_graded == 17.0);
	assert_true(s[0].attempted);
	assert_int_equal(s[0].first_attempted_us, 100);
	/* percent rint(1/17 * 1e4)/1e4 = 0.0588; 5.88 + 0.05 -> 6 -> 0.06 */
	assert_true(cg.percent == 0.06);
	gradeq_course_free(c);
	tb_release(&t);
}

/* Rule 2. p1 weight 10, row 1 of 3: 1 * 10 / 3 = 3.3333333333333335 of 10.
 * p2 weight NULL, row 2 of 4: raw 2 of 4.
 * p3 weight 0, row 2 of 2: 2 * 0 / 2 = 0 of 0, so not graded.
 * p4 weight 5, row 0 of max_grade 0: raw 0 of 0 (no division by 0).
 * p5 weight 5, no row, max_score NULL: 0 of 0.
 * p6 weight 5, no row, max_score 7: 0 * 5 / 7 = 0 of 5.
 * all: earned 0 + 3.3333333333333335 + 2 + 0 + 0 + 0 = 5.333333333333334
 * (Python: 3.3333333333333335 + 2 -> 5.333333333333334), possible
 * 10 + 4 + 0 + 0 + 0 + 5 = 19; graded the same. */
static void test_rule2_weighting(void **state)
{
	struct gradeq_subsection_grade s[1];
	struct gradeq_course_grade cg;
	struct gradeq_score rows[4];
	struct gradeq_course *c;
	struct tb t = {0};

	(void)state;
	tb_course(&t);
	tb_seq(&t, "s1", "ch", 0, "Homework", true);
	tb_prob(&t, "p1", "s1", 0, 3, 10, true);
	tb_prob(&t, "p2", "s1", 1, 4, NUL, true);
	tb_prob(&t, "p3", "s1", 2, 2, 0, true);
	tb_prob(&t, "p4", "s1", 3, 1, 5, true);
	tb_prob(&t, "p5", "s1", 4, NUL, 5, true);
	tb_prob(&t, "p6", "s1", 5, 7, 5, true);
	c = course_ok(&t, HW1);
	rows[0] = score_row(c, "p1", 1, 3, 1);
	rows[1] = score_row(c, "p2", 2, 4, 2);
	rows[2] = score_row(c, "p3", 2, 2, 3);
	rows[3] = score_row(c, "p4", 0, 0, 4);
	grade(c, rows, 4, s, &cg);
	assert_true(s[0].earned_all == 5.333333333333334);
	assert_true(s[0].possible_all == 19.0);
	assert_true(s[0].earned_graded == 5.333333333333334);
	assert_true(s[0].possible_graded == 19.0);
	/* 5.333333333333334 / 19 = 0.28070175438596495 -> 0.2807 -> 28.07 +
	 * 0.05 = 28.12 -> 28 -> 0.28 */
	assert_true(cg.percent == 0.28);
	gradeq_course_free(c);
	tb_release(&t);
}

/* Rule 3. p1 (graded=false, 2 of 4) counts in all only; p2 2 of 2 graded.
 * all 4 of 6, graded 2 of 2 -> 100%. */
static void test_rule3_graded_flag(void **state)
{
	struct gradeq_subsection_grade s[1];
	struct gradeq_course_grade cg;
	struct gradeq_score rows[2];
	struct gradeq_course *c;
	struct tb t = {0};

	(void)state;
	tb_course(&t);
	tb_seq(&t, "s1", "ch", 0, "Homework", true);
	tb_prob(&t, "p1", "s1", 0, 4, NUL, false);
	tb_prob(&t, "p2", "s1", 1, 2, NUL, true);
	c = course_ok(&t, HW1);
	rows[0] = score_row(c, "p1", 2, 4, 5);
	rows[1] = score_row(c, "p2", 2, 2, 9);
	grade(c, rows, 2, s, &cg);
	assert_true(s[0].earned_all == 4.0 && s[0].possible_all == 6.0);
	assert_true(s[0].earned_graded == 2.0 && s[0].possible_graded == 2.0);
	assert_int_equal(s[0].first_attempted_us, 5); /* ungraded attempts count too */
	assert_true(cg.percent == 1.0);
	assert_string_equal(cg.letter, "A");
	assert_true(cg.passed);
	gradeq_course_free(c);
	tb_release(&t);
}

/* Rule 4. Verticals nest: s1 > v1 > v2 > pa, s1 > v1 > pb, s1 > pc; the
 * sums take all three, in course order. Attempts at 300 (pa), 200 (pc), 0 (pb):
 * first attempt 0 (pb, created 0). Order matters in the last bit: in course order
 * ((0 + 0.1) + 0.2) + 0.3 = 0.6000000000000001 (Python), whereas in
 * reverse order 0.3 + 0.2 + 0.1 = 0.6. Course order here is pa (v2 is
 * v1's first child), pb, pc although the rows come in another order. */
static void test_rule4_nested_verticals(void **state)
{
	struct gradeq_subsection_grade s[2];
	struct gradeq_course_grade cg;
	struct gradeq_score rows[3];
	struct gradeq_course *c;
	struct tb t = {0};

	(void)state;
	tb_course(&t);
	tb_prob(&t, "pc", "s1", 5, 1, NUL, true);
	tb_prob(&t, "pb", "v1", 9, 1, NUL, true);
	tb_prob(&t, "pa", "v2", 0, 1, NUL, true);
	tb_add(&t, "v2", "v1", GRADEQ_BLOCK_VERTICAL, 1);
	tb_add(&t, "v1", "s1", GRADEQ_BLOCK_VERTICAL, 0);
	tb_seq(&t, "s1", "ch", 0, "Homework", true);
	tb_seq(&t, "s2", "ch", 1, "Homework", true);
	c = course_ok(&t, HW1);
	assert_int_equal(gradeq_course_nproblems(c), 3);
	assert_int_equal(gradeq_course_problem_index(c, "pa"), 0);
	assert_int_equal(gradeq_course_problem_index(c, "pb"), 1);
	assert_int_equal(gradeq_course_problem_index(c, "pc"), 2);
	rows[0] = score_row(c, "pc", 0.3, 1, 200);
	rows[1] = score_row(c, "pb", 0.2, 1, 0); /* created 0 is still an attempt */
	rows[2] = score_row(c, "pa", 0.1, 1, 300);
	grade(c, rows, 3, s, &cg);
	assert_true(s[0].earned_all == 0.6000000000000001);
	assert_true(s[0].possible_all == 3.0);
	assert_true(s[0].attempted);
	assert_int_equal(s[0].first_attempted_us, 0);
	/* s2 is empty: zeros, not attempted. */
	assert_true(s[1].earned_all == 0 && s[1].possible_all == 0 && !s[1].attempted);
	gradeq_course_free(c);
	tb_release(&t);
}

/* Rule 5: half to even at 4 decimals. 1/32 = 0.03125 exactly, * 1e4 =
 * 312.5 -> rint 312 -> 0.0312 (half up would give 0.0313); 3/32 = 0.09375
 * -> 937.5 -> 938 -> 0.0938. A weight of 100 lets the course percent show
 * the fourth decimal: 0.0312 * 100 = 3.1199999999999997 (Python), *100 =
 * 311.99999999999994, + 0.05 -> floor(312.55) = 312 -> 3.12; 0.0938 * 100
 * = 9.38 -> 938.05 -> 938 -> 9.38. */
static void test_rule5_half_even(void **state)
{
	static const char policy[] =
		"{\"GRADER\": [{\"type\": \"Homework\", \"min_count\": 0, \"weight\": 100}], "
		"\"GRADE_CUTOFFS\": {}}";
	struct gradeq_course_grade cg;
	struct gradeq_score row;
	struct gradeq_course *c;
	struct tb t = {0};

	(void)state;
	tb_course(&t);
	tb_seq(&t, "s1", "ch", 0, "Homework", true);
	tb_prob(&t, "p1", "s1", 0, 32, NUL, true);
	c = course_ok(&t, policy);
	row = score_row(c, "p1", 1, 32, 1);
	grade(c, &row, 1, NULL, &cg);
	assert_true(cg.percent == 3.12);
	assert_string_equal(cg.letter, "");
	assert_false(cg.passed);
	row = score_row(c, "p1", 3, 32, 1);
	grade(c, &row, 1, NULL, &cg);
	assert_true(cg.percent == 9.38);
	gradeq_course_free(c);
	tb_release(&t);
}

/* Rule 6. In course order (positions, not input order): s1 HW 100%,
 * s2 HW not graded (100%, ignored), s3 HW graded but nothing to score
 * (possible 0: left out, not a zero), s4 Lab 0%, s5 no format, s6 HW 50%.
 * Homework average (1.0 + 0.5) / 2 = 0.75; had s3 counted, 0.5. */
static void test_rule6_grader_input(void **state)
{
	struct gradeq_course_grade cg;
	struct gradeq_score rows[4];
	struct gradeq_course *c;
	struct tb t = {0};

	(void)state;
	tb_course(&t);
	tb_seq(&t, "s6", "ch", 6, "Homework", true);
	tb_seq(&t, "s5", "ch", 5, NULL, true);
	tb_seq(&t, "s4", "ch", 4, "Lab", true);
	tb_seq(&t, "s3", "ch", 3, "Homework", true);
	tb_seq(&t, "s2", "ch", 2, "Homework", false);
	tb_seq(&t, "s1", "ch", 1, "Homework", true);
	tb_prob(&t, "p1", "s1", 0, 1, NUL, true);
	tb_prob(&t, "p2", "s2", 0, 1, NUL, true);
	tb_prob(&t, "p3", "s3", 0, NUL, NUL, true);
	tb_prob(&t, "p4", "s4", 0, 1, NUL, true);
	tb_prob(&t, "p5", "s5", 0, 1, NUL, true);
	tb_prob(&t, "p6", "s6", 0, 2, NUL, true);
	c = course_ok(&t, HW1);
	assert_int_equal(gradeq_course_nsubsections(c), 6);
	assert_string_equal(gradeq_course_subsection_key(c, 0), "s1");
	assert_string_equal(gradeq_course_subsection_key(c, 5), "s6");
	assert_null(gradeq_course_subsection_key(c, 6));
	rows[0] = score_row(c, "p1", 1, 1, 1);
	rows[1] = score_row(c, "p2", 1, 1, 1);
	rows[2] = score_row(c, "p5", 1, 1, 1);
	rows[3] = score_row(c, "p6", 1, 2, 1);
	grade(c, rows, 4, NULL, &cg);
	assert_true(cg.percent == 0.75);
	gradeq_course_free(c);
	tb_release(&t);
}

/* n Homework subsections, one problem each, learner scoring pct[i] of 100. */
static double grade_hw(const char *policy, const double *pct, size_t n)
{
	struct gradeq_course_grade cg;
	struct gradeq_score rows[16];
	struct gradeq_course *c;
	struct tb t = {0};
	char sk[16], pk[16];

	tb_course(&t);
	for (size_t i = 0; i < n; i++) {
		snprintf(sk, sizeof(sk), "s%zu", i);
		snprintf(pk, sizeof(pk), "p%zu", i);
		tb_seq(&t, tb_str(&t, "%s", sk), "ch", (int)i, "Homework", true);
		tb_prob(&t, tb_str(&t, "%s", pk), t.b[t.n - 1].usage_key, 0, 100, NUL, true);
	}
	c = course_ok(&t, policy);
	for (size_t i = 0; i < n; i++) {
		snprintf(pk, sizeof(pk), "p%zu", i);
		rows[i] = score_row(c, pk, pct[i] * 100, 100, 1);
	}
	grade(c, rows, n, NULL, &cg);
	gradeq_course_free(c);
	tb_release(&t);
	return cg.percent;
}

#define HW_POLICY(min, drop)                                                                       \
	"{\"GRADER\": [{\"type\": \"Homework\", \"min_count\": " #min ", \"drop_count\": " #drop   \
	", \"weight\": 1}], \"GRADE_CUTOFFS\": {\"Pass\": 0.5}}"

/* Rule 7, dropping. [0.5, 1.0, 0.25, 0.75] drop 2: sorted 1.0, 0.75, 0.5,
 * 0.25; drop 0.5 and 0.25; kept in course order 1.0 + 0.75 = 1.75 / 2 =
 * 0.875 -> 87.5 + 0.05 -> 88 -> 0.88. Ties: [0.5, 0.5, 0.5] drop 1 ->
 * 1.0 / 2 = 0.5. */
static void test_rule7_drop_lowest(void **state)
{
	static const double p4[] = {0.5, 1.0, 0.25, 0.75};
	static const double p3[] = {0.5, 0.5, 0.5};

	(void)state;
	assert_true(grade_hw(HW_POLICY(0, 2), p4, 4) == 0.88);
	assert_true(grade_hw(HW_POLICY(0, 1), p3, 3) == 0.5);
	/* no drop: (0.5 + 1 + 0.25 + 0.75) / 4 = 0.625 -> 62.55 -> 63 */
	assert_true(grade_hw(HW_POLICY(0, 0), p4, 4) == 0.63);
}

/* Rule 7, padding to min_count. One 0.8 with min_count 5: [0.8, 0, 0, 0, 0].
 * drop 1 drops a pad: 0.8 / 4 = 0.2. No drop: 0.8 / 5 = 0.16 -> 16.05 ->
 * 16 -> 0.16.
 * More subsections than min_count: min_count ignored. */
static void test_rule7_padding(void **state)
{
	static const double one[] = {0.8};
	static const double three[] = {0.2, 0.4, 0.6};

	(void)state;
	assert_true(grade_hw(HW_POLICY(5, 1), one, 1) == 0.2);
	assert_true(grade_hw(HW_POLICY(5, 0), one, 1) == 0.16);
	/* (0.2 + 0.4 + 0.6) / 3 = 0.4 (0.6000000000000001 + 0.6 = 1.2000000000000002,
	 * / 3 = 0.4000000000000001) -> 40.05 -> 40 -> 0.4 */
	assert_true(grade_hw(HW_POLICY(2, 0), three, 3) == 0.4);
}

/* Rule 7, drop_count >= count: everything dropped, average 0. */
static void test_rule7_drop_all(void **state)
{
	static const double two[] = {0.9, 1.0};

	(void)state;
	assert_true(grade_hw(HW_POLICY(0, 2), two, 2) == 0.0);
	assert_true(grade_hw(HW_POLICY(0, 5), two, 2) == 0.0);
	assert_true(grade_hw(HW_POLICY(3, 3), two, 2) == 0.0);
	/* min_count 0 and nothing there */
	assert_true(grade_hw(HW_POLICY(0, 0), two, 0) == 0.0);
}

/* Negative grades sort below the zero pads, so they are dropped first:
 * [0.6, -0.5] + one pad (min_count 3), drop 1: sorted 0.6, pad 0, -0.5 ->
 * drop -0.5 -> (0.6 + 0) / 2 = 0.3 -> 30.05 -> 30 -> 0.3. Without the
 * drop: (0.6 - 0.5 + 0) / 3 = 0.033333333333333326 -> 3.38 -> 3 -> 0.03. */
static void test_rule7_negative(void **state)
{
	static const double pm[] = {0.6, -0.5};

	(void)state;
	assert_true(grade_hw(HW_POLICY(3, 1), pm, 2) == 0.3);
	assert_true(grade_hw(HW_POLICY(3, 0), pm, 2) == 0.03);
}

/* Rule 7, weights not normalised, missing weight 0: Homework 0.5 and Lab
 * 1.0 at 100%, Exam (no weight) at 100%: 1.0 * 0.5 + 1.0 * 1.0 + 0 = 1.5. */
static void test_rule7_weights(void **state)
{
	static const char policy[] =
		"{\"GRADER\": [{\"type\": \"Homework\", \"min_count\": 1, \"weight\": 0.5}, "
		"{\"type\": \"Lab\", \"min_count\": 1, \"weight\": 1.0}, "
		"{\"type\": \"Exam\", \"min_count\": 1}], \"GRADE_CUTOFFS\": {\"A\": 0.9}}";
	struct gradeq_course_grade cg;
	struct gradeq_score rows[3];
	struct gradeq_course *c;
	struct tb t = {0};

	(void)state;
	tb_course(&t);
	tb_seq(&t, "s1", "ch", 0, "Homework", true);
	tb_seq(&t, "s2", "ch", 1, "Lab", true);
	tb_seq(&t, "s3", "ch", 2, "Exam", true);
	tb_prob(&t, "p1", "s1", 0, 1, NUL, true);
	tb_prob(&t, "p2", "s2", 0, 1, NUL, true);
	tb_prob(&t, "p3", "s3", 0, 1, NUL, true);
	c = course_ok(&t, policy);
	rows[0] = score_row(c, "p1", 1, 1, 1);
	rows[1] = score_row(c, "p2", 1, 1, 1);
	rows[2] = score_row(c, "p3", 1, 1, 1);
	grade(c, rows, 3, NULL, &cg);
	assert_true(cg.percent == 1.5);
	assert_string_equal(cg.letter, "A");
	gradeq_course_free(c);
	tb_release(&t);
}

/* Rule 8: percent = floor(raw * 100 + 0.05 + 0.5) / 100, raw being the
 * subsection percent here (weight 1, one subsection).
 *   0.825:  82.5 + 0.05 = 82.55 -> 83.05 -> 83 -> 0.83
 *   0.8245: 82.45 + 0.05 = 82.5 -> 83.0 -> 83 -> 0.83 (Python's round()
 *           of 82.45 alone would give 82)
 *   0.8244: 82.44 + 0.05 = 82.49 -> 82.99 -> 82 -> 0.82
 *   0.445:  44.5 + 0.05 -> 45 -> 0.45 (half-even of 44.5 would be 44)
 *   0.0049: 0.49 + 0.05 = 0.54 -> 1.04 -> 1 -> 0.01 */
static void test_rule8_percent_rounding(void **state)
{
	static const double v1[] = {0.825}, v2[] = {0.8245}, v3[] = {0.8244}, v4[] = {0.445},
			    v5[] = {0.0049};

	(void)state;
	assert_true(grade_hw(HW_POLICY(0, 0), v1, 1) == 0.83);
	assert_true(grade_hw(HW_POLICY(0, 0), v2, 1) == 0.83);
	assert_true(grade_hw(HW_POLICY(0, 0), v3, 1) == 0.82);
	assert_true(grade_hw(HW_POLICY(0, 0), v4, 1) == 0.45);
	assert_true(grade_hw(HW_POLICY(0, 0), v5, 1) == 0.01);
}

/* Rule 9: letters from descending cutoffs, pass at the smallest non-zero.
 * 0.5 hits Pass exactly. 0.4999 -> 49.99 + 0.05 = 50.04 -> 50 -> 0.5:
 * passes too. 0.4944 -> 49.489999999999995 -> 49 -> 0.49: no letter. */
static void test_rule9_letters(void **state)
{
	static const char policy[] =
		"{\"GRADER\": [{\"type\": \"Homework\", \"min_count\": 0, \"weight\": 1}], "
		"\"GRADE_CUTOFFS\": {\"Pass\": 0.5, \"A\": 0.9, \"B\": 0.8}}";
	static const char zero_only[] =
		"{\"GRADER\": [{\"type\": \"Homework\", \"min_count\": 0, \"weight\": 1}], "
		"\"GRADE_CUTOFFS\": {\"F\": 0}}";
	struct gradeq_course_grade cg;
	struct gradeq_score row;
	struct gradeq_course *c, *cz;
	struct tb t = {0};
	static const struct {
		double earned;
		double percent;
		const char *letter;
		bool passed;
	} cases[] = {
		{5000, 0.5, "Pass", true}, {4999, 0.5, "Pass", true}, {4944, 0.49, "", false},
		{8000, 0.8, "B", true},    {8999, 0.9, "A", true},    {8944, 0.89, "B", true},
		{10000, 1.0, "A", true},   {0, 0.0, "", false},
	};

	(void)state;
	tb_course(&t);
	tb_seq(&t, "s1", "ch", 0, "Homework", true);
	tb_prob(&t, "p1", "s1", 0, 10000, NUL, true);
	c = course_ok(&t, policy);
	cz = course_ok(&t, zero_only);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		row = score_row(c, "p1", cases[i].earned, 10000, 1);
		grade(c, &row, 1, NULL, &cg);
		assert_true(cg.percent == cases[i].percent);
		assert_string_equal(cg.letter, cases[i].letter);
		assert_int_equal(cg.passed, cases[i].passed);
		/* The letter points into the course's policy. */
		if (*cases[i].letter) {
			const struct gradeq_policy *p = gradeq_course_policy(c);
			bool inside = false;

			for (size_t k = 0; k < p->ncutoffs; k++)
				inside |= cg.letter == p->cutoffs[k].letter;
			assert_true(inside);
		}
		grade(cz, &row, 1, NULL, &cg);
		assert_string_equal(cg.letter, "F");
		assert_false(cg.passed);
	}
	gradeq_course_free(c);
	gradeq_course_free(cz);
	tb_release(&t);
}

/* A course with nothing but its root: no subsections, grade 0. */
static void test_empty_course(void **state)
{
	const struct gradeq_subsection_grade *s = NULL;
	struct gradeq_course_grade cg;
	struct gradeq_grader *g;
	struct gradeq_course *c;
	struct tb t = {0};

	(void)state;
	tb_add(&t, "c", NULL, GRADEQ_BLOCK_COURSE, 0);
	c = course_ok(&t, "{}");
	assert_int_equal(gradeq_course_nsubsections(c), 0);
	assert_int_equal(gradeq_course_nproblems(c), 0);
	assert_int_equal(gradeq_course_problem_index(c, "c"), -1);
	g = gradeq_grader_new(c);
	assert_non_null(g);
	assert_int_equal(gradeq_grader_grade(g, NULL, 0, &s, &cg), 0);
	assert_non_null(s);
	assert_true(cg.percent == 0.0);
	assert_string_equal(cg.letter, "");
	assert_false(cg.passed);
	gradeq_grader_free(g);
	gradeq_course_free(c);
	tb_release(&t);
}

/* No graded subsection, and a learner without rows: sums from max_score,
 * nothing earned or attempted, percent 0. A problem outside any sequential
 * is known to the course but counts nowhere. */
static void test_nothing_graded_unattempted(void **state)
{
	struct gradeq_subsection_grade s[2];
	struct gradeq_course_grade cg;
	struct gradeq_course *c;
	struct tb t = {0};

	(void)state;
	tb_course(&t);
	tb_seq(&t, "s1", "ch", 0, "Homework", false);
	tb_seq(&t, "s2", "ch", 1, NULL, true);
	tb_prob(&t, "p1", "s1", 0, 3, NUL, true);
	tb_prob(&t, "p2", "s2", 0, 2, 4, true);
	tb_prob(&t, "loose", "ch", 5, 2, NUL, true);
	c = course_ok(&t, HW1);
	assert_int_equal(gradeq_course_nproblems(c), 3);
	grade(c, NULL, 0, s, &cg);
	assert_true(s[0].earned_all == 0 && s[0].possible_all == 3 && !s[0].attempted);
	assert_true(s[1].earned_all == 0 && s[1].possible_all == 4 && !s[1].attempted);
	assert_true(s[1].possible_graded == 4);
	assert_true(cg.percent == 0.0);
	assert_string_equal(cg.letter, "");
	assert_false(cg.passed);
	gradeq_course_free(c);
	tb_release(&t);
}

/* Non-ASCII keys and formats are plain bytes: copied, looked up, matched. */
static void test_non_ascii(void **state)
{
	static const char policy[] =
		"{\"GRADER\": [{\"type\": \"Devoir \\u00e9crit\", \"min_count\": 1, \"weight\": 1}],"
		" \"GRADE_CUTOFFS\": {\"R\\u00e9ussi\": 0.5}}";
	const char *seq = "block-v1:\xc3\x89"
			  "coleX+\xce\xa9+2026+type@sequential+block@\xc3\xbc";
	const char *prob = "block-v1:\xc3\x89"
			   "coleX+\xce\xa9+2026+type@problem+block@\xf0\x9f\x98\x80";
	struct gradeq_course_grade cg;
	struct gradeq_score row;
	struct gradeq_course *c;
	struct tb t = {0};

	(void)state;
	tb_add(&t,
	       "course-v1:\xc3\x89"
	       "coleX+\xce\xa9+2026",
	       NULL, GRADEQ_BLOCK_COURSE, 0);
	tb_add(&t, "ch\xc3\xa9", t.b[0].usage_key, GRADEQ_BLOCK_CHAPTER, 0);
	tb_seq(&t, seq, "ch\xc3\xa9", 0,
	       "Devoir \xc3\xa9"
	       "crit",
	       true);
	tb_prob(&t, prob, seq, 0, 1, NUL, true);
	tb_prob(&t, "ascii", seq, 1, 1, NUL, true);
	c = course_ok(&t, policy);
	assert_string_equal(gradeq_course_subsection_key(c, 0), seq);
	assert_int_equal(gradeq_course_problem_index(c, prob), 0);
	assert_int_equal(gradeq_course_problem_index(c, "ascii"), 1);
	row = score_row(c, prob, 1, 1, 1);
	grade(c, &row, 1, NULL, &cg);
	assert_true(cg.percent == 0.5);
	assert_string_equal(cg.letter, "R\xc3\xa9ussi");
	assert_true(cg.passed);
	gradeq_course_free(c);
	tb_release(&t);
}

/* 1,000 subsections in 10 chapters, one problem each, given in reverse.
 * Learner scores (i % 10) / 10 on subsection i; drop_count 100 drops the
 * 100 zeros; the 900 kept average (0.1 + ... + 0.9) / 9 = 0.5 up to the
 * last bits, which the +0.05 absorbs: 50.05 -> 50 -> 0.5. */
static void test_thousand_subsections(void **state)
{
	static const char policy[] =
		"{\"GRADER\": [{\"type\": \"Homework\", \"min_count\": 12, \"drop_count\": 100, "
		"\"weight\": 1}], \"GRADE_CUTOFFS\": {\"Pass\": 0.5}}";
	struct gradeq_subsection_grade *s = calloc(1000, sizeof(*s));
	struct gradeq_score *rows = calloc(1000, sizeof(*rows));
	struct gradeq_course_grade cg;
	struct gradeq_course *c;
	struct tb t = {0};
	char key[32];

	(void)state;
	tb_add(&t, "c", NULL, GRADEQ_BLOCK_COURSE, 0);
	for (int ch = 0; ch < 10; ch++)
		tb_add(&t, tb_str(&t, "ch%d", ch), "c", GRADEQ_BLOCK_CHAPTER, ch);
	for (int i = 999; i >= 0; i--) {
		const char *sk = tb_str(&t, "s%04d", i);

		tb_seq(&t, sk, tb_str(&t, "ch%d", i / 100), i % 100, "Homework", true);
		tb_prob(&t, tb_str(&t, "p%04d", i), sk, 0, 10, NUL, true);
	}
	c = course_ok(&t, policy);
	assert_int_equal(gradeq_course_nsubsections(c), 1000);
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "s%04d", i);
		assert_string_equal(gradeq_course_subsection_key(c, (size_t)i), key);
		snprintf(key, sizeof(key), "p%04d", i);
		rows[i] = score_row(c, key, i % 10, 10, i);
	}
	grade(c, rows, 1000, s, &cg);
	assert_true(s[123].earned_all == 3.0 && s[123].possible_all == 10.0);
	assert_int_equal(s[123].first_attempted_us, 123);
	assert_true(cg.percent == 0.5);
	assert_true(cg.passed);
	gradeq_course_free(c);
	tb_release(&t);
	free(rows);
	free(s);
}

static int try_course(struct tb *t, const char *policy, char *err, size_t errlen)
{
	struct gradeq_course *c = (struct gradeq_course *)1;
	int rc = gradeq_course_new(t->b, t->n, policy, strlen(policy), &c, err, errlen);

	if (rc)
		assert_null(c);
	gradeq_course_free(rc ? NULL : c);
	return rc;
}

/* Structure errors, orphans, policy errors. */
static void test_course_errors(void **state)
{
	struct gradeq_course *c;
	struct tb t = {0};
	char err[256];

	(void)state;
	assert_int_equal(try_course(&t, "{}", err, sizeof(err)), GRADEQ_ERR_INVALID);
	assert_non_null(strstr(err, "no root"));

	tb_add(&t, "a", NULL, GRADEQ_BLOCK_COURSE, 0);
	tb_add(&t, "b", NULL, GRADEQ_BLOCK_COURSE, 0);
	assert_int_equal(try_course(&t, "{}", err, sizeof(err)), GRADEQ_ERR_INVALID);
	assert_non_null(strstr(err, "2 blocks without a parent"));
	tb_release(&t);

	tb_add(&t, "a", NULL, GRADEQ_BLOCK_COURSE, 0);
	tb_add(&t, "x", "a", GRADEQ_BLOCK_CHAPTER, 0);
	tb_add(&t, "x", "a", GRADEQ_BLOCK_CHAPTER, 1);
	assert_int_equal(try_course(&t, "{}", err, sizeof(err)), GRADEQ_ERR_INVALID);
	assert_non_null(strstr(err, "duplicate usage_key 'x'"));
	tb_release(&t);

	tb_add(&t, "a", NULL, GRADEQ_BLOCK_COURSE, 0);
	tb_add(&t, "x", "y", GRADEQ_BLOCK_CHAPTER, 0);
	tb_add(&t, "y", "x", GRADEQ_BLOCK_CHAPTER, 0);
	assert_int_equal(try_course(&t, "{}", err, sizeof(err)), GRADEQ_ERR_INVALID);
	assert_non_null(strstr(err, "cycle"));
	tb_release(&t);

	tb_add(&t, "a", NULL, GRADEQ_BLOCK_COURSE, 0);
	tb_add(&t, "self", "self", GRADEQ_BLOCK_CHAPTER, 0);
	assert_int_equal(try_course(&t, "{}", err, sizeof(err)), GRADEQ_ERR_INVALID);
	tb_release(&t);

	/* An orphan subtree is ignored. */
	tb_add(&t, "a", NULL, GRADEQ_BLOCK_COURSE, 0);
	tb_seq(&t, "lost", "gone", 0, "Homework", true);
	tb_prob(&t, "lostp", "lost", 0, 1, NUL, true);
	tb_seq(&t, "s", "a", 0, "Homework", true);
	c = course_ok(&t, "{}");
	assert_int_equal(gradeq_course_nsubsections(c), 1);
	assert_int_equal(gradeq_course_nproblems(c), 0);
	assert_int_equal(gradeq_course_problem_index(c, "lostp"), -1);
	gradeq_course_free(c);

	assert_int_equal(try_course(&t, "{\"GRADER\": 1}", err, sizeof(err)), GRADEQ_ERR_POLICY);
	assert_string_equal(err, "GRADER must be a list");
	assert_int_equal(try_course(&t, "{\"GRADER\": 1}", NULL, 0), GRADEQ_ERR_POLICY);
	tb_release(&t);
}

/* Two rows for one problem are refused (the result would depend on their
 * order); rows for unknown problems are skipped. */
static void test_bad_rows(void **state)
{
	const struct gradeq_subsection_grade *s = NULL;
	struct gradeq_course_grade cg;
	struct gradeq_score rows[3];
	struct gradeq_grader *g;
	struct gradeq_course *c;
	struct tb t = {0};

	(void)state;
	tb_course(&t);
	tb_seq(&t, "s1", "ch", 0, "Homework", true);
	tb_prob(&t, "p1", "s1", 0, 2, NUL, true);
	c = course_ok(&t, HW1);
	g = gradeq_grader_new(c);
	rows[0] = score_row(c, "p1", 1, 2, 1);
	rows[1] = score_row(c, "nope", 1, 1, 1);
	rows[2] = rows[0];
	rows[2].problem = 7;
	assert_int_equal(rows[1].problem, -1);
	assert_int_equal(gradeq_grader_grade(g, rows, 3, &s, &cg), 0);
	assert_true(s[0].earned_all == 1.0);
	rows[1] = rows[0];
	assert_int_equal(gradeq_grader_grade(g, rows, 2, &s, &cg), GRADEQ_ERR_INVALID);
	/* The grader is still usable afterwards. */
	assert_int_equal(gradeq_grader_grade(g, rows, 1, &s, &cg), 0);
	assert_true(cg.percent == 0.5);
	assert_int_equal(gradeq_grader_grade(NULL, rows, 1, &s, &cg), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_grader_grade(g, NULL, 1, &s, &cg), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_grader_grade(g, rows, 1, NULL, &cg), GRADEQ_ERR_INVALID);
	assert_null(gradeq_grader_new(NULL));
	gradeq_grader_free(NULL);
	gradeq_course_free(NULL);
	gradeq_grader_free(g);
	gradeq_course_free(c);
	tb_release(&t);
}

/* Same-position siblings fall back to usage_key order; a GRADER type that
 * appears twice sees the same subsections in both entries. */
static void test_ties_and_duplicate_types(void **state)
{
	static const char policy[] =
		"{\"GRADER\": [{\"type\": \"Homework\", \"min_count\": 0, \"weight\": 0.25}, "
		"{\"type\": \"Homework\", \"min_count\": 0, \"weight\": 0.5}], \"GRADE_CUTOFFS\": {}}";
	struct gradeq_course_grade cg;
	struct gradeq_score row;
	struct gradeq_course *c;
	struct tb t = {0};

	(void)state;
	tb_course(&t);
	tb_seq(&t, "sb", "ch", 3, "Homework", true);
	tb_seq(&t, "sa", "ch", 3, "Homework", true);
	tb_prob(&t, "p", "sa", 0, 1, NUL, true);
	c = course_ok(&t, policy);
	assert_string_equal(gradeq_course_subsection_key(c, 0), "sa");
	assert_string_equal(gradeq_course_subsection_key(c, 1), "sb");
	row = score_row(c, "p", 1, 1, 1);
	/* 1.0 * 0.25 + 1.0 * 0.5 = 0.75 */
	grade(c, &row, 1, NULL, &cg);
	assert_true(cg.percent == 0.75);
	gradeq_course_free(c);
	tb_release(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_block_type_parse),
		cmocka_unit_test(test_rule1_score_source),
		cmocka_unit_test(test_rule2_weighting),
		cmocka_unit_test(test_rule3_graded_flag),
		cmocka_unit_test(test_rule4_nested_verticals),
		cmocka_unit_test(test_rule5_half_even),
		cmocka_unit_test(test_rule6_grader_input),
		cmocka_unit_test(test_rule7_drop_lowest),
		cmocka_unit_test(test_rule7_padding),
		cmocka_unit_test(test_rule7_drop_all),
		cmocka_unit_test(test_rule7_negative),
		cmocka_unit_test(test_rule7_weights),
		cmocka_unit_test(test_rule8_percent_rounding),
		cmocka_unit_test(test_rule9_letters),
		cmocka_unit_test(test_empty_course),
		cmocka_unit_test(test_nothing_graded_unattempted),
		cmocka_unit_test(test_non_ascii),
		cmocka_unit_test(test_thousand_subsections),
		cmocka_unit_test(test_course_errors),
		cmocka_unit_test(test_bad_rows),
		cmocka_unit_test(test_ties_and_duplicate_types),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
