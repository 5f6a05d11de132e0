/* Unit tests for publisher confirms settled by tag: in order, many at
 * once, out of order (the case that lost a count), nacks, duplicates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gradeq/confirms.h"

static void publish_n(struct gradeq_confirms *c, int n)
{
	for (int i = 0; i < n; i++)
		(void)gradeq_confirms_publish(c);
}

static void in_order_one_by_one(void **state)
{
	struct gradeq_confirms c;

	(void)state;
	assert_int_equal(gradeq_confirms_init(&c, 4), 0);
	publish_n(&c, 3);
	assert_int_equal(gradeq_confirms_outstanding(&c), 3);
	for (uint64_t t = 1; t <= 3; t++)
		assert_int_equal(gradeq_confirms_settle(&c, t, false, true), 1);
	assert_int_equal(c.acked, 3);
	assert_int_equal(c.upto, 3);
	assert_int_equal(gradeq_confirms_outstanding(&c), 0);
	gradeq_confirms_free(&c);
}

static void multiple_settles_the_prefix(void **state)
{
	struct gradeq_confirms c;

	(void)state;
	assert_int_equal(gradeq_confirms_init(&c, 8), 0);
	publish_n(&c, 5);
	assert_int_equal(gradeq_confirms_settle(&c, 3, true, true), 3);
	assert_int_equal(c.upto, 3);
	assert_int_equal(gradeq_confirms_settle(&c, 5, true, true), 2);
	assert_int_equal(c.acked, 5);
	assert_int_equal(gradeq_confirms_outstanding(&c), 0);
	gradeq_confirms_free(&c);
}

/* Three messages (an event and two jobs): the broker confirms tag 3 alone,
 * then tags 1 and 2; every one counts. */
static void out_of_order_counts_every_tag(void **state)
{
	struct gradeq_confirms c;

	(void)state;
	assert_int_equal(gradeq_confirms_init(&c, 8), 0);
	publish_n(&c, 3);
	assert_int_equal(gradeq_confirms_settle(&c, 3, false, true), 1);
	assert_int_equal(c.upto, 0);
	assert_int_equal(gradeq_confirms_outstanding(&c), 3);
	assert_int_equal(gradeq_confirms_settle(&c, 2, false, true), 1);
	assert_int_equal(c.upto, 0);
	assert_int_equal(gradeq_confirms_settle(&c, 1, false, true), 1);
	assert_int_equal(c.upto, 3);
	assert_int_equal(c.acked, 3);
	/* and a multiple over a gap settles only what was missing */
	publish_n(&c, 4); /* 4..7 */
	assert_int_equal(gradeq_confirms_settle(&c, 6, false, true), 1);
	assert_int_equal(gradeq_confirms_settle(&c, 7, true, true), 3);
	assert_int_equal(c.acked, 7);
	assert_int_equal(gradeq_confirms_outstanding(&c), 0);
	gradeq_confirms_free(&c);
}

static void nacks_and_repeats(void **state)
{
	struct gradeq_confirms c;

	(void)state;
	assert_int_equal(gradeq_confirms_init(&c, 4), 0);
	publish_n(&c, 4);
	assert_int_equal(gradeq_confirms_settle(&c, 2, false, false), 1);
	assert_int_equal(gradeq_confirms_settle(&c, 2, false, true), 0);
	assert_int_equal(gradeq_confirms_settle(&c, 4, true, true), 3);
	assert_int_equal(c.acked, 3);
	assert_int_equal(c.nacked, 1);
	/* settled already, or never published */
	assert_int_equal(gradeq_confirms_settle(&c, 1, false, true), 0);
	assert_int_equal(gradeq_confirms_settle(&c, 9, false, true), 0);
	assert_int_equal(gradeq_confirms_settle(&c, 9, true, true), 0);
	assert_int_equal(c.acked, 3);
	gradeq_confirms_free(&c);
}

/* Many windows through the ring, each settled in reverse. */
static void ring_wraps(void **state)
{
	struct gradeq_confirms c;

	(void)state;
	assert_int_equal(gradeq_confirms_init(&c, 3), 0);
	for (int round = 0; round < 50; round++) {
		uint64_t first = c.next_tag;

		publish_n(&c, 3);
		for (uint64_t t = first + 2; t + 1 > first; t--)
			assert_int_equal(gradeq_confirms_settle(&c, t, false, true), 1);
		assert_int_equal(gradeq_confirms_outstanding(&c), 0);
	}
	assert_int_equal(c.acked, 150);
	gradeq_confirms_reset(&c);
	assert_int_equal(gradeq_confirms_publish(&c), 1);
	assert_int_equal(gradeq_confirms_settle(&c, 1, true, true), 1);
	assert_int_equal(c.acked, 151);
	gradeq_confirms_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(in_order_one_by_one),
		cmocka_unit_test(multiple_settles_the_prefix),
		cmocka_unit_test(out_of_order_counts_every_tag),
		cmocka_unit_test(nacks_and_repeats),
		cmocka_unit_test(ring_wraps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
