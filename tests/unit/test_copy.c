/* The one COPY escaping routine: COPY's text-format specials escaped,
 * everything else as is, and a value cut to the buffer never ends in half
 * an escape. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gradeq/copy.h"

static void test_specials_escaped(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(gradeq_copy_escape(out, sizeof(out), "a\\b\tc\nd\re"), 13);
	assert_string_equal(out, "a\\\\b\\tc\\nd\\re");
	assert_int_equal(gradeq_copy_escape(out, sizeof(out), "course-v1:x+y+2026"), 18);
	assert_string_equal(out, "course-v1:x+y+2026");
	assert_int_equal(gradeq_copy_escape(out, sizeof(out), ""), 0);
	assert_string_equal(out, "");
	/* \N means NULL to COPY: a backslash in a value must never make it */
	gradeq_copy_escape(out, sizeof(out), "\\N");
	assert_string_equal(out, "\\\\N");
}

static void test_cut_at_the_buffer(void **state)
{
	char out[8];

	(void)state;
	/* room for 7 bytes: "abcdef" and not half of the tab's escape */
	assert_int_equal(gradeq_copy_escape(out, 7, "abcde\tz"), 5);
	assert_string_equal(out, "abcde");
	assert_int_equal(gradeq_copy_escape(out, sizeof(out), "abcdefghij"), 7);
	assert_string_equal(out, "abcdefg");
	assert_int_equal(gradeq_copy_escape(out, 1, "abc"), 0);
	assert_string_equal(out, "");
	assert_int_equal(gradeq_copy_escape(out, 0, "abc"), 0);
}

static void test_twice_the_length_fits(void **state)
{
	const char *s = "\t\t\\\\\n\n";
	char out[2 * 6 + 1];

	(void)state;
	assert_int_equal(gradeq_copy_escape(out, sizeof(out), s), 12);
	assert_string_equal(out, "\\t\\t\\\\\\\\\\n\\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_specials_escaped),
		cmocka_unit_test(test_cut_at_the_buffer),
		cmocka_unit_test(test_twice_the_length_fits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
