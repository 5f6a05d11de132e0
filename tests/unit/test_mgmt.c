/* The management API reader: what a queue listing says about unacked
 * messages, what it does not, and answers that are not a listing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gradeq/mgmt.h"

static struct gradeq_mgmt *parse_ok(const char *json)
{
	struct gradeq_mgmt *m = NULL;

	assert_int_equal(gradeq_mgmt_parse(json, strlen(json), &m), 0);
	assert_non_null(m);
	return m;
}

static void test_listing(void **state)
{
	struct gradeq_mgmt *m;

	(void)state;
	m = parse_ok("[{\"name\":\"gradeq.grades.r1\",\"messages_unacknowledged\":3},"
		     "{\"name\":\"gradeq.grades.r1.dead\",\"messages_unacknowledged\":0},"
		     "{\"name\":\"other\",\"messages_unacknowledged\":12345678901}]");
	assert_int_equal(gradeq_mgmt_count(m), 3);
	assert_int_equal(gradeq_mgmt_unacked(m, "gradeq.grades.r1"), 3);
	assert_int_equal(gradeq_mgmt_unacked(m, "gradeq.grades.r1.dead"), 0);
	assert_true(gradeq_mgmt_unacked(m, "other") == 12345678901LL);
	assert_int_equal(gradeq_mgmt_unacked(m, "gradeq.grades.r2"), -1);
	gradeq_mgmt_free(m);
}

/* A queue the broker has no statistics for yet, or odd entries, are
 * unknown, not zero. */
static void test_missing_figures_are_unknown(void **state)
{
	struct gradeq_mgmt *m;

	(void)state;
	m = parse_ok("[{\"name\":\"fresh\"},{\"name\":\"neg\",\"messages_unacknowledged\":-1},"
		     "{\"name\":\"str\",\"messages_unacknowledged\":\"3\"},"
		     "{\"messages_unacknowledged\":4},{\"name\":7,\"messages_unacknowledged\":1},"
		     "17,null,[]]");
	assert_int_equal(gradeq_mgmt_count(m), 0);
	assert_int_equal(gradeq_mgmt_unacked(m, "fresh"), -1);
	assert_int_equal(gradeq_mgmt_unacked(m, "neg"), -1);
	assert_int_equal(gradeq_mgmt_unacked(m, "str"), -1);
	gradeq_mgmt_free(m);
	m = parse_ok("[]");
	assert_int_equal(gradeq_mgmt_count(m), 0);
	gradeq_mgmt_free(m);
	assert_int_equal(gradeq_mgmt_unacked(NULL, "x"), -1);
	gradeq_mgmt_free(NULL);
}

static void test_not_a_listing(void **state)
{
	static const char *bad[] = {
		"",
		"<html>login</html>",
		"{\"error\":\"not_authorised\",\"reason\":\"Login failed\"}",
		"42",
		"[{\"name\":\"a\",\"messages_unacknowledged\":1}",
		"[{\"name\":\"a\",\"name\":\"b\"}]",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct gradeq_mgmt *m = (struct gradeq_mgmt *)1;

		assert_int_equal(gradeq_mgmt_parse(bad[i], strlen(bad[i]), &m), GRADEQ_ERR_DECODE);
		assert_null(m);
	}
}

/* Nothing listens on port 1 of the loopback: a clear broker error, fast. */
static void test_unreachable(void **state)
{
	struct gradeq_mgmt *m = (struct gradeq_mgmt *)1;

	(void)state;
	assert_int_equal(gradeq_mgmt_fetch("http://127.0.0.1:1/", "amqp://u:p@127.0.0.1:5672/%2f",
					   NULL, 2000, &m),
			 GRADEQ_ERR_BROKER);
	assert_null(m);
	assert_non_null(strstr(gradeq_errmsg(GRADEQ_ERR_BROKER), "http://127.0.0.1:1/"));
	assert_null(strstr(gradeq_errmsg(GRADEQ_ERR_BROKER), ":p@"));
	assert_int_equal(gradeq_mgmt_fetch("http://127.0.0.1:1/", "not a url", NULL, 2000, &m),
			 GRADEQ_ERR_CONFIG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_listing),
		cmocka_unit_test(test_missing_figures_are_unknown),
		cmocka_unit_test(test_not_a_listing),
		cmocka_unit_test(test_unreachable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
