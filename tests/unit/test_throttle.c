/* The throttle's pure core: pacing holds the rate (with at most one job
 * over), a rate change rescales the wait, the budget splits evenly, the
 * distress signals and latency baselines, and AIMD's decrease and climb. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gradeq/err.h"
#include "gradeq/throttle.h"

/* Jobs of k learners go as soon as the bucket allows, on a simulated
 * clock; returns the learners started in [0, horizon). */
static double learners_in(struct gradeq_pace *p, double k, double horizon)
{
	double t = 0, n = 0;

	for (;;) {
		t += gradeq_pace_wait(p, t);
		if (t >= horizon)
			break;
		gradeq_pace_take(p, k, t);
		n += k;
	}
	return n;
}

static void test_pace_holds_rate(void **state)
{
	struct gradeq_pace p;
	double n;

	(void)state;
	gradeq_pace_init(&p, 500);
	n = learners_in(&p, 100, 30);
	/* 500/s over 30 s: 15000, plus at most the job that starts first */
	assert_true(n <= 15000 + 100);
	assert_true(n >= 15000 - 100);
}

static void test_pace_unlimited(void **state)
{
	struct gradeq_pace p;

	(void)state;
	gradeq_pace_init(&p, 0);
	for (int i = 0; i < 100; i++) {
		assert_true(gradeq_pace_wait(&p, 1.0) == 0);
		gradeq_pace_take(&p, 1000, 1.0);
	}
}

static void test_pace_no_burst_after_idle(void **state)
{
	struct gradeq_pace p;

	(void)state;
	gradeq_pace_init(&p, 100);
	gradeq_pace_take(&p, 100, 0); /* busy until 1 */
	assert_true(gradeq_pace_wait(&p, 0.5) > 0.49);
	/* idle until 10: the next goes at once, the one after waits 1 s */
	assert_true(gradeq_pace_wait(&p, 10) == 0);
	gradeq_pace_take(&p, 100, 10);
	assert_true(gradeq_pace_wait(&p, 10) > 0.99);
}

static void test_pace_rate_change_rescales(void **state)
{
	struct gradeq_pace p;

	(void)state;
	gradeq_pace_init(&p, 100);
	gradeq_pace_take(&p, 1000, 0);     /* 10 s of debt */
	gradeq_pace_set_rate(&p, 1000, 2); /* 8 s left at 100/s: 0.8 s at 1000/s */
	assert_true(gradeq_pace_wait(&p, 2) > 0.79 && gradeq_pace_wait(&p, 2) < 0.81);
	gradeq_pace_set_rate(&p, 0, 2); /* off: no wait */
	assert_true(gradeq_pace_wait(&p, 2) == 0);
	gradeq_pace_set_rate(&p, 50, 3); /* on again: no debt from before */
	assert_true(gradeq_pace_wait(&p, 3) == 0);
}

static void test_share_and_rate(void **state)
{
	(void)state;
	assert_true(gradeq_throttle_share(0, 3) == 0);
	assert_true(gradeq_throttle_share(900, 3) == 300);
	assert_true(gradeq_throttle_share(900, 0) == 900);
	assert_true(gradeq_throttle_rate(0, 0) == 0);
	assert_true(gradeq_throttle_rate(300, 0) == 300);
	assert_true(gradeq_throttle_rate(0, 50) == 50);
	assert_true(gradeq_throttle_rate(300, 50) == 50);
	assert_true(gradeq_throttle_rate(30, 50) == 30);
}

/* Three consumers with a third of the budget each hold the sum. */
static void test_three_consumers_hold_budget(void **state)
{
	double sum = 0;

	(void)state;
	for (int i = 0; i < 3; i++) {
		struct gradeq_pace p;

		gradeq_pace_init(&p, gradeq_throttle_share(500, 3));
		sum += learners_in(&p, 100, 30);
	}
	assert_true(sum <= 15000 + 3 * 100);
}

static void test_distress_classify(void **state)
{
	struct gradeq_distress_limits lim = {1, 80, 5, 5, 0, 0};
	struct gradeq_db_health h = {0, 10, 100};

	(void)state;
	assert_int_equal(gradeq_distress_classify(&h, &lim), GRADEQ_DISTRESS_NONE);
	h.lock_waiters = 1;
	assert_int_equal(gradeq_distress_classify(&h, &lim), GRADEQ_DISTRESS_LOCK_WAITS);
	h.lock_waiters = 0;
	h.active_backends = 80;
	assert_int_equal(gradeq_distress_classify(&h, &lim), GRADEQ_DISTRESS_BACKENDS);
	lim.backends_pct = 0;
	lim.lock_waiters = 0;
	h.lock_waiters = 5;
	assert_int_equal(gradeq_distress_classify(&h, &lim), GRADEQ_DISTRESS_NONE);
	assert_string_equal(gradeq_distress_name(GRADEQ_DISTRESS_LOCK_WAITS), "lock_waits");
	assert_string_equal(gradeq_distress_name(GRADEQ_DISTRESS_NONE), "none");
	assert_string_equal(gradeq_distress_name(GRADEQ_DISTRESS_REPLICA_LAG), "replica_lag");
}

static void test_replica_distress(void **state)
{
	struct gradeq_distress_limits lim = {1, 80, 5, 5, 0, 1000};

	(void)state;
	assert_int_equal(gradeq_replica_distress(&lim, 10, false), GRADEQ_DISTRESS_NONE);
	assert_int_equal(gradeq_replica_distress(&lim, 1000, false), GRADEQ_DISTRESS_REPLICA_LAG);
	assert_int_equal(gradeq_replica_distress(&lim, 300, true), GRADEQ_DISTRESS_REPLICA_LAG);
	lim.replica_lag_ms = 0;
	assert_int_equal(gradeq_replica_distress(&lim, 5000, true), GRADEQ_DISTRESS_NONE);
}

static void test_latency_baseline(void **state)
{
	struct gradeq_distress_limits lim = {1, 80, 5, 3, 0, 0};
	struct gradeq_latency l = {0};

	(void)state;
	/* no verdict before min samples, however slow */
	assert_int_equal(gradeq_latency_add(&l, &lim, 40, 100, 100, 100), GRADEQ_DISTRESS_NONE);
	assert_int_equal(gradeq_latency_add(&l, &lim, 40, 100, 100, 100), GRADEQ_DISTRESS_NONE);
	assert_int_equal(gradeq_latency_add(&l, &lim, 40, 100, 100, 100), GRADEQ_DISTRESS_NONE);
	/* 1 ms a learner baseline: 4x is fine, 6x is distress */
	assert_int_equal(gradeq_latency_add(&l, &lim, 40, 100, 400, 100), GRADEQ_DISTRESS_NONE);
	assert_int_equal(gradeq_latency_add(&l, &lim, 40, 100, 100, 10000),
			 GRADEQ_DISTRESS_WRITE_LATENCY);
	assert_int_equal(gradeq_latency_add(&l, &lim, 40, 100, 10000, 100),
			 GRADEQ_DISTRESS_READ_LATENCY);
	/* another course size has no baseline yet */
	assert_int_equal(gradeq_latency_add(&l, &lim, 1000, 100, 10000, 10000),
			 GRADEQ_DISTRESS_NONE);
	/* slow jobs did not move the baseline */
	assert_int_equal(gradeq_latency_add(&l, &lim, 40, 100, 100, 10000),
			 GRADEQ_DISTRESS_WRITE_LATENCY);
	/* too short to count, however far above */
	lim.latency_min_ms = 20000;
	assert_int_equal(gradeq_latency_add(&l, &lim, 40, 100, 100, 10000), GRADEQ_DISTRESS_NONE);
	lim.latency_min_ms = 0;
	lim.latency_factor = 0;
	assert_int_equal(gradeq_latency_add(&l, &lim, 40, 100, 100, 10000), GRADEQ_DISTRESS_NONE);
}

static void test_aimd_with_budget(void **state)
{
	struct gradeq_aimd a = {0, 0.5, 50, 5};
	double recover = 0;

	(void)state;
	assert_false(gradeq_aimd_step(&a, false, 300, 280, &recover));
	assert_true(gradeq_aimd_step(&a, true, 300, 280, &recover));
	assert_true(a.cap == 150); /* half the share */
	assert_true(gradeq_aimd_step(&a, true, 300, 140, &recover));
	assert_true(a.cap == 75);
	assert_true(gradeq_aimd_step(&a, false, 300, 70, &recover));
	assert_true(a.cap == 125);
	for (int i = 0; i < 10 && a.cap > 0; i++)
		assert_true(gradeq_aimd_step(&a, false, 300, 0, &recover));
	assert_true(a.cap == 0); /* back to the budget's share: no cap */
}

static void test_aimd_without_budget(void **state)
{
	struct gradeq_aimd a = {0, 0.5, 100, 5};
	double recover = 0;
	int steps = 0;

	(void)state;
	assert_true(gradeq_aimd_step(&a, true, 0, 1000, &recover));
	assert_true(a.cap == 500);
	assert_true(recover == 1000);
	while (a.cap > 0 && steps < 100) {
		assert_true(gradeq_aimd_step(&a, false, 0, 0, &recover));
		steps++;
	}
	assert_int_equal(steps, 5); /* 500 + 5 x 100 reaches 1000: unbounded again */
	/* the floor */
	for (int i = 0; i < 20; i++)
		(void)gradeq_aimd_step(&a, true, 0, 1000, &recover);
	assert_true(a.cap == 5);
}

static void test_window_parse(void **state)
{
	struct gradeq_throttle_window w;

	(void)state;
	assert_int_equal(gradeq_throttle_window_parse("01:00-06:00=off", &w), 0);
	assert_string_equal(w.starts, "01:00");
	assert_string_equal(w.ends, "06:00");
	assert_true(w.learners_per_s == 0);
	assert_int_equal(gradeq_throttle_window_parse("06:00-01:00=200", &w), 0);
	assert_true(w.learners_per_s == 200);
	assert_int_equal(gradeq_throttle_window_parse("22:30-23:59=12.5", &w), 0);
	assert_true(w.learners_per_s == 12.5);
	assert_int_equal(gradeq_throttle_window_parse("24:00-06:00=1", &w), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_throttle_window_parse("01:60-06:00=1", &w), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_throttle_window_parse("01:00-01:00=1", &w), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_throttle_window_parse("1:00-06:00=1", &w), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_throttle_window_parse("01:00-06:00=", &w), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_throttle_window_parse("01:00-06:00=0", &w), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_throttle_window_parse("01:00-06:00=-5", &w), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_throttle_window_parse("01:00-06:00=5x", &w), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_throttle_window_parse("01:00 06:00=5", &w), GRADEQ_ERR_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pace_holds_rate),
		cmocka_unit_test(test_pace_unlimited),
		cmocka_unit_test(test_pace_no_burst_after_idle),
		cmocka_unit_test(test_pace_rate_change_rescales),
		cmocka_unit_test(test_share_and_rate),
		cmocka_unit_test(test_three_consumers_hold_budget),
		cmocka_unit_test(test_distress_classify),
		cmocka_unit_test(test_latency_baseline),
		cmocka_unit_test(test_replica_distress),
		cmocka_unit_test(test_window_parse),
		cmocka_unit_test(test_aimd_with_budget),
		cmocka_unit_test(test_aimd_without_budget),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
