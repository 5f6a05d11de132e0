/* Message header tables: what does not fit is reported, never sent short. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "gradeq/broker.h"

static void test_fits(void **state)
{
	struct gradeq_headers h;
	amqp_table_t t;
	char buf[64];

	(void)state;
	gradeq_headers_init(&h);
	gradeq_headers_set_str(&h, "gradeq-run", "r1");
	gradeq_headers_set_int(&h, "gradeq-attempt", 1);
	gradeq_headers_set_int(&h, "gradeq-attempt", 2); /* replaces */
	assert_int_equal(gradeq_headers_finish(&h, &t), 0);
	assert_int_equal(t.num_entries, 2);
	assert_string_equal(gradeq_header_str(&t, "gradeq-run", buf, sizeof(buf)), "r1");
	assert_int_equal(gradeq_header_int(&t, "gradeq-attempt", 0), 2);
}

static void test_too_many(void **state)
{
	struct gradeq_headers h;
	amqp_table_t t;
	char key[32];

	(void)state;
	gradeq_headers_init(&h);
	for (int i = 0; i < 33; i++) {
		snprintf(key, sizeof(key), "h%d", i);
		gradeq_headers_set_int(&h, key, i);
	}
	assert_int_equal(gradeq_headers_finish(&h, &t), GRADEQ_ERR_INVALID);
	assert_non_null(strstr(gradeq_errmsg(GRADEQ_ERR_INVALID), "'h32' does not fit"));
}

static void test_too_long(void **state)
{
	static char big[5000];
	struct gradeq_headers h;
	amqp_table_t t;

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	gradeq_headers_init(&h);
	gradeq_headers_set_str(&h, "gradeq-error", big);
	assert_int_equal(gradeq_headers_finish(&h, &t), GRADEQ_ERR_INVALID);
	assert_non_null(strstr(gradeq_errmsg(GRADEQ_ERR_INVALID), "'gradeq-error'"));
	/* the entry is not left looking like an empty value */
	assert_int_equal(t.entries[0].value.kind, AMQP_FIELD_KIND_VOID);
}

static void test_copy_overflow(void **state)
{
	amqp_table_entry_t e[40];
	amqp_table_t src = {40, e}, t;
	struct gradeq_headers h;
	const char *const skip[] = {"k0", NULL};
	char keys[40][8];

	(void)state;
	for (int i = 0; i < 40; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%d", i);
		e[i].key = amqp_cstring_bytes(keys[i]);
		e[i].value.kind = AMQP_FIELD_KIND_I32;
		e[i].value.value.i32 = i;
	}
	gradeq_headers_init(&h);
	gradeq_headers_copy(&h, &src, skip);
	assert_int_equal(gradeq_headers_finish(&h, &t), GRADEQ_ERR_INVALID);
	assert_int_equal(t.num_entries, 32);
	assert_int_equal(gradeq_header_int(&t, "k0", -1), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fits),
		cmocka_unit_test(test_too_many),
		cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_copy_overflow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
