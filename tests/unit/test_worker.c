/* The worker's pure parts: the course cache's eviction choice. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gradeq/worker.h"

/* A cache of `cap` slots driven the way the worker drives it: a hit
 * refreshes the slot's stamp; a miss fills an empty slot or evicts the one
 * gradeq_lru_oldest() names. Returns the course evicted by the last access,
 * or -1. */
struct sim {
	int course[4];
	uint64_t used[4];
	int n, cap;
	uint64_t clock;
};

static int access_course(struct sim *s, int course)
{
	int evicted = -1, slot;

	for (slot = 0; slot < s->n; slot++)
		if (s->course[slot] == course)
			break;
	if (slot == s->n) {
		if (s->n < s->cap) {
			slot = s->n++;
		} else {
			slot = gradeq_lru_oldest(s->used, s->n);
			evicted = s->course[slot];
		}
		s->course[slot] = course;
	}
	s->used[slot] = ++s->clock;
	return evicted;
}

static void test_least_recently_used_is_evicted(void **state)
{
	struct sim s = {.cap = 3};

	(void)state;
	assert_int_equal(access_course(&s, 10), -1);
	assert_int_equal(access_course(&s, 11), -1);
	assert_int_equal(access_course(&s, 12), -1);
	/* 10 is used again: 11 is now the least recently used, not slot 0 */
	assert_int_equal(access_course(&s, 10), -1);
	assert_int_equal(access_course(&s, 13), 11);
	assert_int_equal(access_course(&s, 12), -1);
	assert_int_equal(access_course(&s, 14), 10);
	assert_int_equal(access_course(&s, 15), 13);
}

static void test_oldest_of_stamps(void **state)
{
	const uint64_t one[] = {7};
	const uint64_t last[] = {9, 8, 3};
	const uint64_t ties[] = {5, 2, 2, 6};

	(void)state;
	assert_int_equal(gradeq_lru_oldest(one, 1), 0);
	assert_int_equal(gradeq_lru_oldest(last, 3), 2);
	assert_int_equal(gradeq_lru_oldest(ties, 4), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_least_recently_used_is_evicted),
		cmocka_unit_test(test_oldest_of_stamps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
