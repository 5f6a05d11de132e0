/* The release module's pure parts: state names and the exact queue list
 * of a release from its topology. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gradeq/release.h"

static void test_state_names(void **state)
{
	(void)state;
	for (int s = GRADEQ_RELEASE_ACTIVE; s <= GRADEQ_RELEASE_RETIRED; s++)
		assert_int_equal(gradeq_release_state_parse(
					 gradeq_release_state_name((enum gradeq_release_state)s)),
				 s);
	assert_string_equal(gradeq_release_state_name(GRADEQ_RELEASE_PROMOTED), "promoted");
	assert_int_equal(gradeq_release_state_parse("draining"), GRADEQ_RELEASE_DRAINING);
	assert_int_equal(gradeq_release_state_parse("Promoted"), -1);
	assert_int_equal(gradeq_release_state_parse(""), -1);
	assert_int_equal(gradeq_release_state_parse(NULL), -1);
	assert_string_equal(gradeq_release_state_name((enum gradeq_release_state)42), "?");
}

static void test_queues(void **state)
{
	static const int tiers[] = {5, 30, 300};
	struct gradeq_topology t = {10, tiers, 3, 3, "balanced"};
	struct gradeq_release_queue q[GRADEQ_RELEASE_QUEUES_MAX];
	size_t n;

	(void)state;
	n = gradeq_release_queues("2026.11", &t, q);
	assert_int_equal(n, 5);
	assert_int_equal(q[0].kind, GRADEQ_QUEUE_WORK);
	assert_string_equal(q[0].name, "gradeq.grades.2026.11");
	assert_int_equal(q[1].kind, GRADEQ_QUEUE_RETRY);
	assert_int_equal(q[1].seconds, 5);
	assert_string_equal(q[1].name, "gradeq.grades.2026.11.retry.5s");
	assert_string_equal(q[2].name, "gradeq.grades.2026.11.retry.30s");
	assert_string_equal(q[3].name, "gradeq.grades.2026.11.retry.300s");
	assert_int_equal(q[4].kind, GRADEQ_QUEUE_DEAD);
	assert_string_equal(q[4].name, "gradeq.grades.2026.11.dead");
}

static void test_queues_without_retry(void **state)
{
	struct gradeq_topology t = {10, NULL, 0, 0, NULL};
	struct gradeq_release_queue q[GRADEQ_RELEASE_QUEUES_MAX];

	(void)state;
	assert_int_equal(gradeq_release_queues("demo", &t, q), 2);
	assert_string_equal(q[0].name, "gradeq.grades.demo");
	assert_string_equal(q[1].name, "gradeq.grades.demo.dead");
}

/* A release named like another's queue would share it: the grammar keeps
 * every name's queue list apart from every other's. */
static void test_no_collision(void **state)
{
	static const int tiers[] = {5};
	struct gradeq_topology t = {10, tiers, 1, 0, NULL};
	struct gradeq_release_queue q[GRADEQ_RELEASE_QUEUES_MAX];

	(void)state;
	gradeq_release_queues("demo", &t, q);
	for (size_t i = 0; i < 3; i++) {
		const char *suffix = q[i].name + strlen("gradeq.grades.");

		assert_false(i > 0 && gradeq_release_name_ok(suffix));
	}
	assert_true(gradeq_release_name_ok("demo"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_state_names),
		cmocka_unit_test(test_queues),
		cmocka_unit_test(test_queues_without_retry),
		cmocka_unit_test(test_no_collision),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
