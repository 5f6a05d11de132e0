/* Groups of small jobs: what joins one, the order it writes in, its acks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gradeq/group.h"

static void test_admits_small_fresh_jobs_up_to_the_limits(void **state)
{
	const struct gradeq_group_limits l = {.max_jobs = 3, .max_learners = 10, .max_total = 25};

	(void)state;
	assert_true(gradeq_group_admits(&l, 0, 0, 1, false));
	assert_true(gradeq_group_admits(&l, 2, 1, 1, false));
	/* full */
	assert_false(gradeq_group_admits(&l, 3, 1, 1, false));
	/* a large job never groups, not even to start one */
	assert_false(gradeq_group_admits(&l, 0, 0, 11, false));
	assert_false(gradeq_group_admits(&l, 1, 1, 11, false));
	assert_true(gradeq_group_admits(&l, 0, 0, 10, false));
	assert_true(gradeq_group_admits(&l, 2, 1, 10, false));
	/* a redelivered job (it may have crashed a consumer) goes alone */
	assert_false(gradeq_group_admits(&l, 0, 0, 1, true));
	assert_false(gradeq_group_admits(&l, 1, 1, 1, true));
}

static void test_group_learners_capped(void **state)
{
	const struct gradeq_group_limits l = {
		.max_jobs = 32, .max_learners = 100, .max_total = 1000};

	(void)state;
	/* jobs of 100 learners: ten make a group, the eleventh does not fit */
	assert_true(gradeq_group_admits(&l, 0, 0, 100, false));
	assert_true(gradeq_group_admits(&l, 9, 900, 100, false));
	assert_false(gradeq_group_admits(&l, 10, 1000, 100, false));
	/* a single learner still fits beside 999 */
	assert_true(gradeq_group_admits(&l, 20, 999, 1, false));
	assert_false(gradeq_group_admits(&l, 20, 1000, 1, false));
	/* a job above group_learners never groups, whatever the room */
	assert_false(gradeq_group_admits(&l, 0, 0, 101, false));
}

static void test_paced_groups_hold_a_second_of_the_rate(void **state)
{
	const struct gradeq_group_limits l = {
		.max_jobs = 32,
		.max_learners = 100,
		.max_total = gradeq_group_paced_total(133.3, 1, 1000),
	};

	(void)state;
	assert_int_equal(gradeq_group_paced_total(0, 1, 1000), 1000);
	assert_int_equal(gradeq_group_paced_total(5000, 1, 1000), 1000);
	assert_int_equal(gradeq_group_paced_total(133.3, 1, 1000), 133);
	assert_int_equal(gradeq_group_paced_total(0.5, 1, 1000), 0);
	/* at 133 learners/s: two jobs of 50 a group, not twenty */
	assert_true(gradeq_group_admits(&l, 1, 50, 50, false));
	assert_false(gradeq_group_admits(&l, 2, 100, 50, false));
	/* a job larger than a second's learners still runs, alone */
	assert_true(gradeq_group_admits(&l, 0, 0, 100, false));
	assert_false(gradeq_group_admits(&l, 1, 100, 100, false));
}

static void test_no_groups_at_one_job(void **state)
{
	const struct gradeq_group_limits l = {.max_jobs = 1, .max_learners = 10, .max_total = 25};

	(void)state;
	assert_false(gradeq_group_admits(&l, 0, 0, 1, false));
}

static void test_order_by_key_stable(void **state)
{
	const char *keys[] = {"b", "a", "c", "a", "b"};
	int order[5];

	(void)state;
	gradeq_group_order(keys, order, 5);
	assert_int_equal(order[0], 1);
	assert_int_equal(order[1], 3);
	assert_int_equal(order[2], 0);
	assert_int_equal(order[3], 4);
	assert_int_equal(order[4], 2);
	gradeq_group_order(keys, order, 0);
	gradeq_group_order(keys, order, 1);
	assert_int_equal(order[0], 0);
}

static void test_ack_all_committed_at_once(void **state)
{
	const uint64_t tags[] = {4, 5, 6, 7};
	enum gradeq_group_settle all[] = {GRADEQ_SETTLE_ACK, GRADEQ_SETTLE_ACK, GRADEQ_SETTLE_ACK,
					  GRADEQ_SETTLE_ACK};

	(void)state;
	assert_int_equal(gradeq_group_ack_upto(tags, all, 4), 7);
}

static void test_ack_over_failures_acked_already(void **state)
{
	const uint64_t tags[] = {4, 5, 6, 7};
	/* the poisoned job in the middle was parked and acked alone */
	enum gradeq_group_settle s[] = {GRADEQ_SETTLE_ACK, GRADEQ_SETTLE_ACKED, GRADEQ_SETTLE_ACK,
					GRADEQ_SETTLE_ACK};

	(void)state;
	assert_int_equal(gradeq_group_ack_upto(tags, s, 4), 7);
	/* the last one failed: the multiple ack stops below it */
	s[3] = GRADEQ_SETTLE_ACKED;
	assert_int_equal(gradeq_group_ack_upto(tags, s, 4), 6);
}

static void test_one_by_one_when_a_delivery_below_is_held(void **state)
{
	const uint64_t tags[] = {4, 5, 6, 7};
	/* job 5 is left unacked to come back: a multiple ack would take it */
	enum gradeq_group_settle s[] = {GRADEQ_SETTLE_ACK, GRADEQ_SETTLE_HELD, GRADEQ_SETTLE_ACK,
					GRADEQ_SETTLE_ACK};

	(void)state;
	assert_int_equal(gradeq_group_ack_upto(tags, s, 4), 0);
	/* held above the last to ack: harmless */
	s[1] = GRADEQ_SETTLE_ACK;
	s[3] = GRADEQ_SETTLE_HELD;
	assert_int_equal(gradeq_group_ack_upto(tags, s, 4), 6);
}

static void test_nothing_to_ack(void **state)
{
	const uint64_t tags[] = {4, 5};
	enum gradeq_group_settle s[] = {GRADEQ_SETTLE_ACKED, GRADEQ_SETTLE_HELD};

	(void)state;
	assert_int_equal(gradeq_group_ack_upto(tags, s, 2), 0);
	assert_int_equal(gradeq_group_ack_upto(tags, s, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_admits_small_fresh_jobs_up_to_the_limits),
		cmocka_unit_test(test_group_learners_capped),
		cmocka_unit_test(test_paced_groups_hold_a_second_of_the_rate),
		cmocka_unit_test(test_no_groups_at_one_job),
		cmocka_unit_test(test_order_by_key_stable),
		cmocka_unit_test(test_ack_all_committed_at_once),
		cmocka_unit_test(test_ack_over_failures_acked_already),
		cmocka_unit_test(test_one_by_one_when_a_delivery_below_is_held),
		cmocka_unit_test(test_nothing_to_ack),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
