/* The rate limiter of gradeq-replay --rate: evenly spaced, no burst after a
 * pause, never more than the rate in any second. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gradeq/ratelimit.h"

/* Drives the bucket on a simulated clock: each event goes as soon as the
 * limiter allows; returns how many went in [0, horizon). */
static int events_in(struct gradeq_ratelimit *rl, double start, double horizon, double *times,
		     int max)
{
	double t = start;
	int n = 0;

	while (n < max) {
		t += gradeq_ratelimit_wait(rl, t);
		if (t >= horizon)
			break;
		gradeq_ratelimit_take(rl, t);
		times[n++] = t;
	}
	return n;
}

static void test_unlimited_never_waits(void **state)
{
	struct gradeq_ratelimit rl;

	(void)state;
	gradeq_ratelimit_init(&rl, 0);
	for (int i = 0; i < 1000; i++) {
		assert_true(gradeq_ratelimit_wait(&rl, 5.0) == 0);
		gradeq_ratelimit_take(&rl, 5.0);
	}
}

static void test_evenly_spaced(void **state)
{
	struct gradeq_ratelimit rl;
	double t[100];
	int n;

	(void)state;
	gradeq_ratelimit_init(&rl, 10);
	n = events_in(&rl, 100.0, 101.95, t, 100); /* 100.0, 100.1 ... 101.9 */
	assert_int_equal(n, 20);
	assert_true(t[0] == 100.0); /* the first goes at once */
	for (int i = 1; i < n; i++)
		assert_true(t[i] - t[i - 1] > 0.0999 && t[i] - t[i - 1] < 0.1001);
}

/* Never more than rate events in any window of one second. */
static void test_no_second_holds_more_than_rate(void **state)
{
	struct gradeq_ratelimit rl;
	double t[400];
	int n;

	(void)state;
	gradeq_ratelimit_init(&rl, 7);
	n = events_in(&rl, 0.0, 50.0, t, 400);
	assert_true(n >= 340 && n <= 350);
	for (int i = 0; i + 7 < n; i++)
		assert_true(t[i + 7] - t[i] >= 1.0 - 1e-9);
}

/* An event that goes late (its process was descheduled) pushes the next one
 * back: however the delays fall, no second holds more than the rate. */
static void test_late_events_do_not_crowd_the_next(void **state)
{
	struct gradeq_ratelimit rl;
	double t[200], now = 0.0;
	int n = 0;

	(void)state;
	gradeq_ratelimit_init(&rl, 20);
	while (n < 200) {
		now += gradeq_ratelimit_wait(&rl, now);
		now += (n % 3 == 0) ? 0.011 : 0.0; /* every third goes 11 ms late */
		assert_true(gradeq_ratelimit_wait(&rl, now) == 0);
		gradeq_ratelimit_take(&rl, now);
		t[n++] = now;
	}
	for (int i = 0; i + 20 < n; i++)
		assert_true(t[i + 20] - t[i] >= 1.0 - 1e-9);
}

/* Idle time is not saved up: after a pause the events are spaced again. */
static void test_no_burst_after_a_pause(void **state)
{
	struct gradeq_ratelimit rl;

	(void)state;
	gradeq_ratelimit_init(&rl, 2);
	assert_true(gradeq_ratelimit_wait(&rl, 10.0) == 0);
	gradeq_ratelimit_take(&rl, 10.0);
	/* a minute later: one goes at once, the next waits half a second */
	assert_true(gradeq_ratelimit_wait(&rl, 70.0) == 0);
	gradeq_ratelimit_take(&rl, 70.0);
	assert_true(gradeq_ratelimit_wait(&rl, 70.0) > 0.4999);
	assert_true(gradeq_ratelimit_wait(&rl, 70.5) == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unlimited_never_waits),
		cmocka_unit_test(test_evenly_spaced),
		cmocka_unit_test(test_no_second_holds_more_than_rate),
		cmocka_unit_test(test_late_events_do_not_crowd_the_next),
		cmocka_unit_test(test_no_burst_after_a_pause),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
