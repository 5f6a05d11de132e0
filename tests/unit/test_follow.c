/* The --follow loop's pure parts: the fit T = O + P * H over recent
 * iterations, and when the loop counts as falling behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gradeq/follow.h"
#include "gradeq/limits.h"

static void test_fit_exact(void **state)
{
	/* T = 0.5 + 0.8 H */
	const double h[] = {1, 2, 4, 8};
	const double t[] = {1.3, 2.1, 3.7, 6.9};
	double o = 0, p = 0;

	(void)state;
	assert_int_equal(gradeq_follow_fit(h, t, 4, &o, &p), 0);
	assert_true(o > 0.4999 && o < 0.5001);
	assert_true(p > 0.7999 && p < 0.8001);
}

static void test_fit_needs_spread(void **state)
{
	const double h[] = {2, 2, 2};
	const double t[] = {1, 2, 3};
	double o = 0, p = 0;

	(void)state;
	assert_int_equal(gradeq_follow_fit(h, t, 3, &o, &p), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_follow_fit(h, t, 1, &o, &p), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_follow_fit(h, t, 0, &o, &p), GRADEQ_ERR_INVALID);
}

static void test_behind(void **state)
{
	/* each iteration longer than its window, and growing: P >= 1 */
	const double h[] = {1, 2, 3, 4.5};
	const double t[] = {2, 3, 4.5, 6};
	/* settling: shorter than the window read */
	const double hs[] = {4, 3.5, 3.2, 3.1};
	const double ts[] = {3.5, 3.2, 3.1, 3.05};
	/* longer than the window but not growing: noise, not a trend */
	const double tn[] = {2, 3, 2.9, 6};
	/* back to back (each window the previous time), growing a little:
	 * noise too */
	const double hg[] = {0.95, 1.0, 1.05, 1.1};
	const double tg[] = {1.0, 1.05, 1.1, 1.2};

	(void)state;
	assert_true(gradeq_follow_behind(h, t, 4));
	assert_false(gradeq_follow_behind(hs, ts, 4));
	assert_false(gradeq_follow_behind(h, tn, 4));
	assert_false(gradeq_follow_behind(h, t, 1));
	assert_false(gradeq_follow_behind(hg, tg, 4));
	/* tenths of a second growing 1.5 times: noise on a loaded machine */
	{
		const double hq[] = {0.08, 0.09, 0.11, 0.15};
		const double tq[] = {0.09, 0.11, 0.15, 0.18};

		assert_false(gradeq_follow_behind(hq, tq, 4));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fit_exact),
		cmocka_unit_test(test_fit_needs_spread),
		cmocka_unit_test(test_behind),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
