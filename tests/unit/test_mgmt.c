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

/* A quorum queue's leader and members, a classic queue's node, and a
 * queue the listing says nothing about placement of. */
static void test_placement(void **state)
{
	static const char body[] =
		"[{\"name\":\"q\",\"messages_unacknowledged\":0,\"leader\":\"a@h\","
		"\"members\":[\"a@h\",\"b@h\",7,\"c@h\"],\"node\":\"a@h\"},"
		"{\"name\":\"log\",\"node\":\"b@h\"},"
		"{\"name\":\"bare\",\"messages_unacknowledged\":1},"
		"{\"name\":\"dup\",\"leader\":\"a@h\",\"members\":[\"a@h\"],\"members\":[\"a@h\",\"b@h\"]}]";
	struct gradeq_mgmt *m = NULL;
	const char *leader, *members[4];

	(void)state;
	assert_int_equal(gradeq_mgmt_parse(body, strlen(body), &m), 0);
	assert_int_equal(gradeq_mgmt_placement(m, "q", &leader, members, 4), 3);
	assert_string_equal(leader, "a@h");
	assert_string_equal(members[0], "a@h");
	assert_string_equal(members[1], "b@h");
	assert_string_equal(members[2], "c@h");
	assert_int_equal(gradeq_mgmt_placement(m, "q", &leader, members, 2), 2);
	assert_int_equal(gradeq_mgmt_placement(m, "log", &leader, members, 4), 1);
	assert_string_equal(leader, "b@h");
	assert_string_equal(members[0], "b@h");
	assert_int_equal(gradeq_mgmt_placement(m, "bare", &leader, members, 4), -1);
	assert_null(leader);
	assert_int_equal(gradeq_mgmt_placement(m, "none", &leader, members, 4), -1);
	assert_int_equal(gradeq_mgmt_placement(NULL, "q", &leader, members, 4), -1);
	assert_int_equal(gradeq_mgmt_unacked(m, "bare"), 1);
	/* RabbitMQ 3.10 may repeat "members" just after a member was added:
	 * the last one wins */
	assert_int_equal(gradeq_mgmt_placement(m, "dup", &leader, members, 4), 2);
	gradeq_mgmt_free(m);
}

/* Only the running nodes, in the API's order. */
static void test_nodes(void **state)
{
	static const char body[] = "[{\"name\":\"a@h\",\"running\":true},"
				   "{\"name\":\"b@h\",\"running\":false},{\"running\":true},"
				   "{\"name\":\"c@h\",\"running\":true}]";
	char **names = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(gradeq_mgmt_parse_nodes(body, strlen(body), &names, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(names[0], "a@h");
	assert_string_equal(names[1], "c@h");
	gradeq_mgmt_free_nodes(names, n);
	assert_int_equal(gradeq_mgmt_parse_nodes("{}", 2, &names, &n), GRADEQ_ERR_DECODE);
	assert_null(names);
}

static void test_not_a_listing(void **state)
{
	static const char *bad[] = {
		"",
		"<html>login</html>",
		"{\"error\":\"not_authorised\",\"reason\":\"Login failed\"}",
		"42",
		"[{\"name\":\"a\",\"messages_unacknowledged\":1}",
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
		cmocka_unit_test(test_placement),
		cmocka_unit_test(test_nodes),
		cmocka_unit_test(test_not_a_listing),
		cmocka_unit_test(test_unreachable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
