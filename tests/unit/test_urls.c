/* URL lists: splitting, the checks that every node takes the same login,
 * the per-process shuffle, the rotation after a lost node, and the
 * reconnect backoff schedule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "gradeq/urls.h"

static void test_split(void **state)
{
	struct gradeq_urls u;
	char why[200];

	(void)state;
	assert_int_equal(gradeq_urls_split("amqp://a/", &u, why, sizeof(why)), 0);
	assert_int_equal(u.n, 1);
	assert_string_equal(u.url[0], "amqp://a/");
	gradeq_urls_release(&u);
	assert_int_equal(u.n, 0);

	assert_int_equal(
		gradeq_urls_split(" amqp://a/ ,amqp://b/,\tamqp://c/ ", &u, why, sizeof(why)), 0);
	assert_int_equal(u.n, 3);
	assert_string_equal(u.url[0], "amqp://a/");
	assert_string_equal(u.url[1], "amqp://b/");
	assert_string_equal(u.url[2], "amqp://c/");
	/* the written order until shuffled */
	assert_int_equal(gradeq_urls_at(&u, 0), 0);
	assert_int_equal(gradeq_urls_at(&u, 2), 2);
	gradeq_urls_release(&u);

	assert_int_equal(gradeq_urls_split("", &u, why, sizeof(why)), GRADEQ_ERR_CONFIG);
	assert_string_equal(why, "is empty");
	gradeq_urls_release(&u);
	assert_int_equal(gradeq_urls_split("amqp://a/,,amqp://b/", &u, why, sizeof(why)),
			 GRADEQ_ERR_CONFIG);
	assert_string_equal(why, "entry 2 is empty");
	gradeq_urls_release(&u);
	assert_int_equal(gradeq_urls_split("amqp://a/, ", &u, why, sizeof(why)), GRADEQ_ERR_CONFIG);
	assert_string_equal(why, "entry 2 is empty");
	gradeq_urls_release(&u);
	assert_int_equal(gradeq_urls_split(",amqp://a/", &u, NULL, 0), GRADEQ_ERR_CONFIG);
	gradeq_urls_release(&u);

	char many[GRADEQ_URLS_MAX * 16 + 32] = "";
	for (int i = 0; i <= GRADEQ_URLS_MAX; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "%samqp://n%d/",
			 i ? "," : "", i);
	assert_int_equal(gradeq_urls_split(many, &u, why, sizeof(why)), GRADEQ_ERR_CONFIG);
	assert_non_null(strstr(why, "more than"));
	gradeq_urls_release(&u);
}

static void test_parse_amqp(void **state)
{
	struct gradeq_urls u;
	char why[300];

	(void)state;
	assert_int_equal(gradeq_urls_parse_amqp("amqps://gq:s3cret@n1:5671/grades,"
						"amqps://gq:s3cret@n2:5671/grades, "
						"amqp://gq@n3/grades",
						&u, why, sizeof(why)),
			 0);
	assert_int_equal(u.n, 3);
	gradeq_urls_release(&u);
	/* rabbitmq-c's defaults: no user is guest, no vhost is / */
	assert_int_equal(
		gradeq_urls_parse_amqp("amqp://n1,amqp://guest@n2:5673/%2f", &u, why, sizeof(why)),
		0);
	gradeq_urls_release(&u);

	assert_int_equal(gradeq_urls_parse_amqp("amqp://gq:pw@n1/v,amqp://bob:pw@n2/v", &u, why,
						sizeof(why)),
			 GRADEQ_ERR_CONFIG);
	assert_non_null(strstr(why, "entry 2 logs in as 'bob' but entry 1 as 'gq'"));
	assert_null(strstr(why, "pw"));
	gradeq_urls_release(&u);
	assert_int_equal(
		gradeq_urls_parse_amqp("amqp://gq@n1/v,amqp://gq@n2/w", &u, why, sizeof(why)),
		GRADEQ_ERR_CONFIG);
	assert_non_null(strstr(why, "entry 2 names vhost 'w' but entry 1 'v'"));
	gradeq_urls_release(&u);
	assert_int_equal(gradeq_urls_parse_amqp("amqp://n1/,http://n2/", &u, why, sizeof(why)),
			 GRADEQ_ERR_CONFIG);
	assert_string_equal(why, "entry 2 must be a URL starting with amqp:// or amqps://");
	gradeq_urls_release(&u);
	/* a single URL is not "entry 1" */
	assert_int_equal(gradeq_urls_parse_amqp("rabbit:5672", &u, why, sizeof(why)),
			 GRADEQ_ERR_CONFIG);
	assert_string_equal(why, "must be a URL starting with amqp:// or amqps://");
	gradeq_urls_release(&u);
	assert_int_equal(gradeq_urls_parse_amqp("amqp://n1:notaport/", &u, why, sizeof(why)),
			 GRADEQ_ERR_CONFIG);
	assert_non_null(strstr(why, "is malformed"));
	gradeq_urls_release(&u);
}

static void list3(struct gradeq_urls *u)
{
	assert_int_equal(gradeq_urls_split("amqp://a/,amqp://b/,amqp://c/", u, NULL, 0), 0);
}

static void test_shuffle(void **state)
{
	struct gradeq_urls u, v;
	int first[3] = {0, 0, 0};

	(void)state;
	list3(&u);
	list3(&v);
	/* a permutation, the same for the same seed */
	for (uint64_t seed = 0; seed < 300; seed++) {
		int seen = 0;

		gradeq_urls_shuffle(&u, seed);
		gradeq_urls_shuffle(&v, seed);
		for (int i = 0; i < 3; i++) {
			assert_int_equal(gradeq_urls_at(&u, i), gradeq_urls_at(&v, i));
			seen |= 1 << gradeq_urls_at(&u, i);
		}
		assert_int_equal(seen, 7);
		first[gradeq_urls_at(&u, 0)]++;
	}
	/* processes with different seeds spread over every node: 300 draws
	 * of 3, each well away from 0 and 300 */
	for (int i = 0; i < 3; i++) {
		assert_true(first[i] > 50);
		assert_true(first[i] < 150);
	}
	gradeq_urls_release(&u);
	gradeq_urls_release(&v);

	/* one node: nothing to shuffle */
	assert_int_equal(gradeq_urls_split("amqp://a/", &u, NULL, 0), 0);
	gradeq_urls_shuffle(&u, 42);
	assert_int_equal(gradeq_urls_at(&u, 0), 0);
	assert_int_equal(gradeq_urls_at(&u, 1), 0);
	gradeq_urls_lost(&u, 0);
	assert_int_equal(gradeq_urls_at(&u, 0), 0);
	gradeq_urls_release(&u);
}

static void test_rotation(void **state)
{
	struct gradeq_urls u;
	int a, b, c;

	(void)state;
	list3(&u);
	gradeq_urls_shuffle(&u, 7);
	a = gradeq_urls_at(&u, 0);
	b = gradeq_urls_at(&u, 1);
	c = gradeq_urls_at(&u, 2);
	/* wraps around */
	assert_int_equal(gradeq_urls_at(&u, 3), a);

	/* the node in use lost: the next open starts at the next node */
	gradeq_urls_lost(&u, a);
	assert_int_equal(gradeq_urls_at(&u, 0), b);
	assert_int_equal(gradeq_urls_at(&u, 1), c);
	assert_int_equal(gradeq_urls_at(&u, 2), a);
	/* a second connection to the same lost node (a consumer has two)
	 * does not move on again */
	gradeq_urls_lost(&u, a);
	assert_int_equal(gradeq_urls_at(&u, 0), b);

	/* b cannot be reached either: c, found at step 1, is the one in use */
	gradeq_urls_use(&u, 1);
	assert_int_equal(gradeq_urls_at(&u, 0), c);
	gradeq_urls_lost(&u, c);
	assert_int_equal(gradeq_urls_at(&u, 0), a);
	gradeq_urls_use(&u, 0);
	assert_int_equal(gradeq_urls_at(&u, 0), a);
	gradeq_urls_release(&u);
}

static void test_backoff(void **state)
{
	(void)state;
	/* the first attempt after a loss: at once, on the next node */
	assert_int_equal(gradeq_backoff_ms(0, 5000, 12345), 0);
	/* then within [base/2, base], base doubling from 250 ms to the cap */
	static const int base[] = {0, 250, 500, 1000, 2000, 4000, 5000, 5000, 5000};
	for (int attempt = 1; attempt < 9; attempt++) {
		int lo = base[attempt] / 2, hi = base[attempt];

		assert_int_equal(gradeq_backoff_ms(attempt, 5000, 0), lo);
		assert_int_equal(gradeq_backoff_ms(attempt, 5000, (uint32_t)(hi - lo)), hi);
		for (uint32_t j = 0; j < 5000; j += 97) {
			int ms = gradeq_backoff_ms(attempt, 5000, j);

			assert_true(ms >= lo && ms <= hi);
		}
	}
	/* never above the cap, however many attempts */
	for (uint32_t j = 0; j < 100000; j += 7919) {
		assert_true(gradeq_backoff_ms(1000, 5000, j) <= 5000);
		assert_true(gradeq_backoff_ms(1000, 5000, j) >= 2500);
		assert_true(gradeq_backoff_ms(40, 30000, j) <= 30000);
	}
	/* a cap below the first step */
	assert_true(gradeq_backoff_ms(1, 100, 0xffffffffu) <= 100);
	assert_true(gradeq_backoff_ms(3, 100, 0) >= 50);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split),   cmocka_unit_test(test_parse_amqp),
		cmocka_unit_test(test_shuffle), cmocka_unit_test(test_rotation),
		cmocka_unit_test(test_backoff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
