/* The one parser: numbers with range and overflow checks, durations,
 * release names by the grammar of DESIGN §3, RFC 3339 timestamps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gradeq/parse.h"

static void test_long(void **state)
{
	long v = 7;

	(void)state;
	assert_int_equal(gradeq_parse_long("42", 0, 100, &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(gradeq_parse_long("-5", -10, 10, &v), 0);
	assert_int_equal(v, -5);
	assert_int_equal(gradeq_parse_long("0", 0, 0, &v), 0);
	assert_int_equal(v, 0);
	v = 7;
	assert_int_equal(gradeq_parse_long("", 0, 100, &v), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_parse_long(NULL, 0, 100, &v), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_parse_long("12x", 0, 100, &v), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_parse_long(" 12", 0, 100, &v), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_parse_long("12 ", 0, 100, &v), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_parse_long("101", 0, 100, &v), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_parse_long("-1", 0, 100, &v), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_parse_long("0x10", 0, 100, &v), GRADEQ_ERR_INVALID);
	/* overflow is an error, not LONG_MAX */
	assert_int_equal(gradeq_parse_long("99999999999999999999999", 0, 0x7fffffffffffffffL, &v),
			 GRADEQ_ERR_INVALID);
	assert_int_equal(
		gradeq_parse_long("-99999999999999999999999", -0x7fffffffffffffffL - 1, 0, &v),
		GRADEQ_ERR_INVALID);
	assert_int_equal(v, 7);
}

static void test_int(void **state)
{
	int v = 3;

	(void)state;
	assert_int_equal(gradeq_parse_int("65535", 1, 65535, &v), 0);
	assert_int_equal(v, 65535);
	assert_int_equal(gradeq_parse_int("65536", 1, 65535, &v), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_parse_int("4294967297", 1, 65535, &v), GRADEQ_ERR_INVALID);
	assert_int_equal(v, 65535);
}

static void test_double(void **state)
{
	double v = 0;

	(void)state;
	assert_int_equal(gradeq_parse_double("0.05", NULL, 0.0001, 0.9999, &v), 0);
	assert_true(v == 0.05);
	assert_int_equal(gradeq_parse_double("50/s", "/s", 0, 1e6, &v), 0);
	assert_true(v == 50);
	assert_int_equal(gradeq_parse_double("50", "/s", 0, 1e6, &v), 0);
	assert_int_equal(gradeq_parse_double("50/m", "/s", 0, 1e6, &v), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_parse_double("1", NULL, 0.0001, 0.9999, &v), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_parse_double("nan", NULL, -1e9, 1e9, &v), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_parse_double("inf", NULL, 0, INFINITY, &v), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_parse_double("1e999", NULL, 0, 1e308, &v), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_parse_double("", NULL, 0, 1, &v), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_parse_double(" 1", NULL, 0, 10, &v), GRADEQ_ERR_INVALID);
}

static void test_duration(void **state)
{
	long s = -1;

	(void)state;
	assert_int_equal(gradeq_parse_duration("90", &s), 0);
	assert_int_equal(s, 90);
	assert_int_equal(gradeq_parse_duration("45s", &s), 0);
	assert_int_equal(s, 45);
	assert_int_equal(gradeq_parse_duration("15m", &s), 0);
	assert_int_equal(s, 900);
	assert_int_equal(gradeq_parse_duration("12h", &s), 0);
	assert_int_equal(s, 43200);
	assert_int_equal(gradeq_parse_duration("90d", &s), 0);
	assert_int_equal(s, 90 * 86400);
	assert_int_equal(gradeq_parse_duration("0", &s), 0);
	assert_int_equal(s, 0);
	assert_int_equal(gradeq_parse_duration("10000d", &s), 0);
	assert_int_equal(s, 10000L * 86400);
	s = -1;
	assert_int_equal(gradeq_parse_duration("", &s), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_parse_duration(NULL, &s), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_parse_duration("d", &s), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_parse_duration("-5m", &s), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_parse_duration("+5m", &s), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_parse_duration(" 5m", &s), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_parse_duration("5w", &s), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_parse_duration("5mm", &s), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_parse_duration("5 m", &s), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_parse_duration("10001d", &s), GRADEQ_ERR_INVALID);
	/* would overflow a long if multiplied blindly */
	assert_int_equal(gradeq_parse_duration("999999999999999999d", &s), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_parse_duration("99999999999999999999999999", &s),
			 GRADEQ_ERR_INVALID);
	assert_int_equal(s, -1);
}

static void test_release_names(void **state)
{
	char long_name[80];

	(void)state;
	assert_true(gradeq_release_name_ok("2026.11"));
	assert_true(gradeq_release_name_ok("demo"));
	assert_true(gradeq_release_name_ok("a"));
	assert_true(gradeq_release_name_ok("v2_rc-1.x"));
	assert_true(gradeq_release_name_ok("deadline.retrying"));
	assert_true(gradeq_release_name_ok("dead-end"));
	assert_false(gradeq_release_name_ok(NULL));
	assert_false(gradeq_release_name_ok(""));
	assert_false(gradeq_release_name_ok("demo.dead"));
	assert_false(gradeq_release_name_ok("dead"));
	assert_false(gradeq_release_name_ok("demo.retry.5s"));
	assert_false(gradeq_release_name_ok("events.demo"));
	assert_false(gradeq_release_name_ok("a..b"));
	assert_false(gradeq_release_name_ok("a."));
	assert_false(gradeq_release_name_ok(".a"));
	assert_false(gradeq_release_name_ok("-a"));
	assert_false(gradeq_release_name_ok("_a"));
	assert_false(gradeq_release_name_ok("a*"));
	assert_false(gradeq_release_name_ok("#"));
	assert_false(gradeq_release_name_ok("grades.*"));
	assert_false(gradeq_release_name_ok("a b"));
	assert_false(gradeq_release_name_ok("a/b"));
	memset(long_name, 'x', 64);
	long_name[64] = '\0';
	assert_true(gradeq_release_name_ok(long_name));
	long_name[64] = 'x';
	long_name[65] = '\0';
	assert_false(gradeq_release_name_ok(long_name));
}

static void test_rfc3339(void **state)
{
	struct timespec ts = {1769860800, 123456789};
	char buf[40];

	(void)state;
	gradeq_rfc3339(buf, sizeof(buf), 1769860800);
	assert_string_equal(buf, "2026-01-31T12:00:00Z");
	gradeq_rfc3339_ms(buf, sizeof(buf), &ts);
	assert_string_equal(buf, "2026-01-31T12:00:00.123Z");
	assert_int_equal(gradeq_parse_rfc3339("2026-01-31T12:00:00Z"), 1769860800);
	assert_int_equal(gradeq_parse_rfc3339("2026-01-31T12:00:00.5+00:00"), 1769860800);
	assert_int_equal(gradeq_parse_rfc3339("yesterday"), 0);
	assert_int_equal(gradeq_parse_rfc3339(""), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_long),          cmocka_unit_test(test_int),
		cmocka_unit_test(test_double),        cmocka_unit_test(test_duration),
		cmocka_unit_test(test_release_names), cmocka_unit_test(test_rfc3339),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
