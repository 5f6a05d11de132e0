/* Unit tests for the planner's pure functions: least squares with its
 * errors, batch size from the criteria, backfill duration, T = O/(1-P). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "gradeq/plan.h"

static void fit_exact_line(void **state)
{
	double x[] = {100, 100, 1000, 1000, 550};
	double y[5];
	struct gradeq_fit f;

	(void)state;
	for (int i = 0; i < 5; i++)
		y[i] = 40 + 0.5 * x[i];
	assert_int_equal(gradeq_fit_linear(x, y, 5, &f), 0);
	assert_float_equal(f.o, 40, 1e-9);
	assert_float_equal(f.p, 0.5, 1e-12);
	assert_float_equal(f.r2, 1, 1e-12);
	assert_float_equal(f.se_p, 0, 1e-9);
	assert_float_equal(f.rmse, 0, 1e-9);
	assert_int_equal(f.n, 5);
}

/* Hand-worked: x = 0,1,2,3; y = 1,3,2,5. mean x 1.5, mean y 2.75,
 * Sxx = 5, Sxy = 5.5 -> p = 1.1, o = 1.1; residuals -0.1, 0.8, -1.3, 0.6,
 * SSR = 2.7, s2 = 1.35, se_p = sqrt(1.35/5), se_o = sqrt(1.35 (1/4 +
 * 2.25/5)). */
static void fit_with_error(void **state)
{
	double x[] = {0, 1, 2, 3}, y[] = {1, 3, 2, 5};
	struct gradeq_fit f;

	(void)state;
	assert_int_equal(gradeq_fit_linear(x, y, 4, &f), 0);
	assert_float_equal(f.p, 1.1, 1e-12);
	assert_float_equal(f.o, 1.1, 1e-12);
	assert_float_equal(f.se_p, sqrt(1.35 / 5), 1e-12);
	assert_float_equal(f.se_o, sqrt(1.35 * (0.25 + 2.25 / 5)), 1e-12);
	assert_float_equal(f.r2, 1 - 2.7 / 8.75, 1e-12);
}

static void fit_refuses_degenerate(void **state)
{
	double x[] = {100, 100, 100}, y[] = {1, 2, 3};
	struct gradeq_fit f;

	(void)state;
	assert_int_equal(gradeq_fit_linear(x, y, 3, &f), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_fit_linear(x, y, 1, &f), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_fit_linear(x, y, 0, &f), GRADEQ_ERR_INVALID);
}

/* With z = x the instrumented fit is least squares. */
static void iv_with_x_as_instrument_is_least_squares(void **state)
{
	double x[] = {0, 1, 2, 3}, y[] = {1, 3, 2, 5};
	struct gradeq_fit f, g;

	(void)state;
	assert_int_equal(gradeq_fit_iv(x, y, x, 4, &f), 0);
	assert_int_equal(gradeq_fit_linear(x, y, 4, &g), 0);
	assert_float_equal(f.p, g.p, 1e-12);
	assert_float_equal(f.o, g.o, 1e-12);
	assert_float_equal(f.se_p, g.se_p, 1e-12);
	assert_float_equal(f.se_o, g.se_o, 1e-12);
	assert_float_equal(f.r2, g.r2, 1e-12);
}

/* The loop's bias, built in: y = 10 + 0.25 x + e, where the noise e of a
 * slow stretch also made x larger (x = rate * window, the window longer by
 * 0.02 e). Least squares takes the noise for slope; the rate as instrument
 * recovers 0.25 and 10. Two rates, each with the same noise pattern. */
static void iv_undoes_feedback(void **state)
{
	const double e[] = {-3, -1, 0, 1, 3}, rates[] = {100, 300};
	double x[10], y[10], z[10];
	struct gradeq_fit ls, iv;

	(void)state;
	for (int r = 0; r < 2; r++)
		for (int i = 0; i < 5; i++) {
			int k = r * 5 + i;

			z[k] = rates[r];
			x[k] = rates[r] * (0.1 + 0.02 * e[i]);
			y[k] = 10 + 0.25 * x[k] + e[i];
		}
	assert_int_equal(gradeq_fit_linear(x, y, 10, &ls), 0);
	assert_int_equal(gradeq_fit_iv(x, y, z, 10, &iv), 0);
	assert_true(ls.p > 0.3);
	assert_float_equal(iv.p, 0.25, 1e-12);
	assert_float_equal(iv.o, 10, 1e-9);
	assert_true(iv.se_p > 0);
}

static void iv_refuses_weak_instrument(void **state)
{
	double x[] = {10, 20, 30, 40, 50, 60}, y[] = {1, 2, 3, 4, 5, 6};
	double flat[] = {5, 5, 5, 5, 5, 5}, unrelated[] = {1, -1, -1, 1, 1, -1};
	struct gradeq_fit f;

	(void)state;
	assert_int_equal(gradeq_fit_iv(x, y, flat, 6, &f), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_fit_iv(x, y, unrelated, 6, &f), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_fit_iv(x, y, x, 2, &f), GRADEQ_ERR_INVALID);
}

/* A concave cost, as measured: 10 ms + 2 ms * sqrt(learners), iterations
 * at four arrival rates of (learners, rate) clusters. The global line
 * overstates the slope at the large operating point; the local fit
 * predicts T where the curve's own fixed point T = f(R T) is. */
static void loop_fit_near_the_operating_point(void **state)
{
	const double sizes[] = {4, 20, 50, 110}, rates[] = {360, 1080, 1800, 2530};
	const double wobble[] = {0.9, 0.95, 1, 1.05, 1.1};
	double x[20], y[20], z[20], t = 0.05, R = 2600;
	struct gradeq_loop_fit lf;

	(void)state;
	for (int c = 0; c < 4; c++)
		for (int i = 0; i < 5; i++) {
			int k = c * 5 + i;

			x[k] = sizes[c] * wobble[i];
			y[k] = 10 + 2 * sqrt(x[k]);
			z[k] = rates[c] * wobble[i];
		}
	/* the curve's fixed point at R: t = (10 + 2 sqrt(R t)) / 1000 */
	for (int i = 0; i < 100; i++)
		t = (10 + 2 * sqrt(R * t)) / 1000;
	assert_int_equal(gradeq_fit_loop(x, y, z, 20, R, &lf), 0);
	assert_true(lf.iv);
	assert_true(lf.near > 0);
	assert_false(lf.doom);
	assert_true(fabs(lf.T - t) < 0.05 * t);
	/* no rate: the global fit, nothing near */
	assert_int_equal(gradeq_fit_loop(x, y, z, 20, 0, &lf), 0);
	assert_true(lf.near == 0);
}

/* Overloaded: doom, from the global fit. Too few points: no fit. */
static void loop_fit_doom_and_too_few(void **state)
{
	double x[] = {10, 20, 40, 80}, y[] = {15, 20, 30, 50}, z[] = {100, 200, 400, 800};
	struct gradeq_loop_fit lf;

	(void)state;
	assert_int_equal(gradeq_fit_loop(x, y, z, 4, 5000, &lf), 0);
	assert_true(lf.doom);
	assert_true(lf.P >= 1);
	assert_int_equal(gradeq_fit_loop(x, y, z, 1, 10, &lf), GRADEQ_ERR_INVALID);
}

static void size_classes(void **state)
{
	(void)state;
	assert_string_equal(gradeq_size_class(0), "small");
	assert_string_equal(gradeq_size_class(24), "small");
	assert_string_equal(gradeq_size_class(25), "medium");
	assert_string_equal(gradeq_size_class(79), "medium");
	assert_string_equal(gradeq_size_class(80), "large");
}

/* O = 50 ms, p = 1 ms: 5% overhead needs b >= 50 * 0.95 / 0.05 = 950 ->
 * 1000; a 60 s failure allows (60000 - 50) / 1 = 59950 -> 50000. */
static void batch_from_overhead(void **state)
{
	struct gradeq_fit f = {.o = 50, .p = 1};
	struct gradeq_plan_criteria c = {
		.overhead_share = 0.05, .failure_cost_s = 60, .full_share = 0.5};
	long enr[] = {20000, 15000, 3};
	struct gradeq_batch_advice a;

	(void)state;
	assert_int_equal(gradeq_plan_batch(&f, &c, enr, 3, &a), 0);
	assert_int_equal(a.min_overhead, 1000);
	assert_int_equal(a.max_failure, 50000);
	assert_int_equal(a.batch, 1000);
	assert_false(a.conflict);
	assert_float_equal(a.batch_ms, 1050, 1e-9);
	assert_float_equal(a.overhead, 50.0 / 1050, 1e-12);
	/* 20 + 15 + 0 full out of 20 + 15 + 1 */
	assert_float_equal(a.full, 35.0 / 36, 1e-12);
	assert_false(a.few_full);
}

/* The failure target wins when both cannot hold: O = 10 s, p = 100 ms,
 * failure 20 s allows 100 learners; overhead 5% would need 1900. */
static void batch_conflict(void **state)
{
	struct gradeq_fit f = {.o = 10000, .p = 100};
	struct gradeq_plan_criteria c = {
		.overhead_share = 0.05, .failure_cost_s = 20, .full_share = 0.5};
	long enr[] = {150};
	struct gradeq_batch_advice a;

	(void)state;
	assert_int_equal(gradeq_plan_batch(&f, &c, enr, 1, &a), 0);
	assert_true(a.conflict);
	assert_int_equal(a.max_failure, 100);
	assert_int_equal(a.batch, 100);
	/* 150 learners at 100: one full batch of two */
	assert_float_equal(a.full, 0.5, 1e-12);
	assert_false(a.few_full);
	enr[0] = 90;
	assert_int_equal(gradeq_plan_batch(&f, &c, enr, 1, &a), 0);
	assert_true(a.few_full);
}

/* O = 0 +- 20 ms, p = 4 ms: the target holds for O's upper bound, 40 ms:
 * b >= 40 * 0.95 / (0.05 * 4) = 190 -> 200. */
static void batch_uses_overhead_upper_bound(void **state)
{
	struct gradeq_fit f = {.o = 0, .se_o = 20, .p = 4};
	struct gradeq_plan_criteria c = {
		.overhead_share = 0.05, .failure_cost_s = 60, .full_share = 0.5};
	struct gradeq_batch_advice a;

	(void)state;
	assert_int_equal(gradeq_plan_batch(&f, &c, NULL, 0, &a), 0);
	assert_int_equal(a.min_overhead, 200);
	assert_int_equal(a.batch, 200);
	assert_float_equal(a.batch_ms, 800, 1e-9);
}

static void batch_refuses_bad_input(void **state)
{
	struct gradeq_fit f = {.o = 10, .p = 0};
	struct gradeq_plan_criteria c = {
		.overhead_share = 0.05, .failure_cost_s = 60, .full_share = 0.5};
	struct gradeq_batch_advice a;

	(void)state;
	assert_int_equal(gradeq_plan_batch(&f, &c, NULL, 0, &a), GRADEQ_ERR_INVALID);
	f.p = 1;
	c.overhead_share = 1;
	assert_int_equal(gradeq_plan_batch(&f, &c, NULL, 0, &a), GRADEQ_ERR_INVALID);
}

/* Two courses of 2500 and 500 at batch 1000: 3 + 1 batches, O = 100 ms,
 * p = 2 ms: (4 * 100 + 3000 * 2) ms / 2 consumers = 3.2 s. */
static void backfill_duration(void **state)
{
	struct gradeq_fit f = {.o = 100, .p = 2};
	long enr[] = {2500, 500};

	(void)state;
	assert_float_equal(gradeq_plan_backfill_s(&f, enr, 2, 1000, 2), 3.2, 1e-12);
	assert_float_equal(gradeq_plan_backfill_s(&f, enr, 2, 0, 2), 0, 0);
}

/* Seed 004's numbers: 30 = O / (1 - P) with P = 7/12 gives O = 12.5. */
static void cycle_of_doom(void **state)
{
	double t;

	(void)state;
	assert_int_equal(gradeq_plan_cycle(12.5, 7.0 / 12, &t), 0);
	assert_float_equal(t, 30, 1e-9);
	assert_int_equal(gradeq_plan_cycle(2.5, 7.0 / 12, &t), 0);
	assert_float_equal(t, 6, 1e-9);
	assert_int_equal(gradeq_plan_cycle(1, 1, &t), GRADEQ_ERR_STATE);
	assert_true(isinf(t));
	assert_int_equal(gradeq_plan_cycle(1, 1.5, &t), GRADEQ_ERR_STATE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fit_exact_line),
		cmocka_unit_test(fit_with_error),
		cmocka_unit_test(fit_refuses_degenerate),
		cmocka_unit_test(iv_with_x_as_instrument_is_least_squares),
		cmocka_unit_test(iv_undoes_feedback),
		cmocka_unit_test(iv_refuses_weak_instrument),
		cmocka_unit_test(loop_fit_near_the_operating_point),
		cmocka_unit_test(loop_fit_doom_and_too_few),
		cmocka_unit_test(size_classes),
		cmocka_unit_test(batch_from_overhead),
		cmocka_unit_test(batch_conflict),
		cmocka_unit_test(batch_uses_overhead_upper_bound),
		cmocka_unit_test(batch_refuses_bad_input),
		cmocka_unit_test(backfill_duration),
		cmocka_unit_test(cycle_of_doom),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
