/* The rebalance plan: which running nodes each queue of a release gets,
 * up to the group size, the least loaded first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gradeq/rebalance.h"

static const char *const running[] = {"a@h", "b@h", "c@h"};

/* Queues on one node each grow onto the two others; every node ends with
 * every queue. */
static void test_grow_to_all(void **state)
{
	struct gradeq_rebalance_queue q[2] = {{"q1", {"a@h"}, 1}, {"q2", {"b@h"}, 1}};
	struct gradeq_rebalance_add add[8];
	size_t n;

	(void)state;
	n = gradeq_rebalance_plan(3, running, 3, q, 2, add, 8);
	assert_int_equal(n, 4);
	assert_string_equal(add[0].queue, "q1");
	assert_string_equal(add[1].queue, "q1");
	assert_string_equal(add[2].queue, "q2");
	assert_string_equal(add[3].queue, "q2");
	/* q1 lacks b and c; q2 lacks a and c */
	assert_true(strcmp(add[0].node, "a@h") != 0 && strcmp(add[1].node, "a@h") != 0);
	assert_true(strcmp(add[2].node, "b@h") != 0 && strcmp(add[3].node, "b@h") != 0);
	assert_string_not_equal(add[0].node, add[1].node);
	assert_string_not_equal(add[2].node, add[3].node);
}

/* A group size of 2 adds the node holding the fewest of these queues. */
static void test_least_loaded_first(void **state)
{
	struct gradeq_rebalance_queue q[3] = {
		{"q1", {"a@h", "b@h"}, 2}, {"q2", {"a@h"}, 1}, {"q3", {"b@h"}, 1}};
	struct gradeq_rebalance_add add[8];

	(void)state;
	assert_int_equal(gradeq_rebalance_plan(2, running, 3, q, 3, add, 8), 2);
	assert_string_equal(add[0].queue, "q2");
	assert_string_equal(add[0].node, "c@h");
	/* c now holds one, a two, b two: q3 gets c too */
	assert_string_equal(add[1].queue, "q3");
	assert_string_equal(add[1].node, "c@h");
}

/* Full queues need nothing; a member that is down still counts; fewer
 * running nodes than the group size cap it; out is bounded by max. */
static void test_nothing_to_do_and_bounds(void **state)
{
	struct gradeq_rebalance_queue full[1] = {{"q", {"a@h", "b@h", "c@h"}, 3}};
	struct gradeq_rebalance_queue down[1] = {{"q", {"a@h", "gone@h"}, 2}};
	struct gradeq_rebalance_queue one[2] = {{"q1", {"a@h"}, 1}, {"q2", {"a@h"}, 1}};
	struct gradeq_rebalance_add add[1];

	(void)state;
	assert_int_equal(gradeq_rebalance_plan(3, running, 3, full, 1, add, 1), 0);
	assert_int_equal(gradeq_rebalance_plan(2, running, 3, down, 1, add, 1), 0);
	assert_int_equal(gradeq_rebalance_plan(3, running, 3, down, 1, add, 1), 1);
	assert_int_equal(gradeq_rebalance_plan(5, running, 2, one, 2, add, 1), 2);
	assert_string_equal(add[0].node, "b@h");
	assert_int_equal(gradeq_rebalance_plan(3, running, 3, one, 0, add, 1), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grow_to_all),
		cmocka_unit_test(test_least_loaded_first),
		cmocka_unit_test(test_nothing_to_do_and_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
