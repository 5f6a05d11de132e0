/* Error classes of failed jobs: the enum and its names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gradeq/err.h"

static void test_classify(void **state)
{
	(void)state;
	/* transient errors retry while tiers remain, then are exhausted */
	assert_int_equal(gradeq_err_classify(GRADEQ_ERR_DB_TRANSIENT, 1, 3),
			 GRADEQ_CLASS_TRANSIENT);
	assert_int_equal(gradeq_err_classify(GRADEQ_ERR_DB_TRANSIENT, 3, 3),
			 GRADEQ_CLASS_TRANSIENT);
	assert_int_equal(gradeq_err_classify(GRADEQ_ERR_DB_TRANSIENT, 4, 3),
			 GRADEQ_CLASS_EXHAUSTED);
	assert_int_equal(gradeq_err_classify(GRADEQ_ERR_TIMEOUT, 1, 0), GRADEQ_CLASS_EXHAUSTED);
	/* permanent ones never retry */
	assert_int_equal(gradeq_err_classify(GRADEQ_ERR_DECODE, 1, 3), GRADEQ_CLASS_PERMANENT);
	assert_int_equal(gradeq_err_classify(GRADEQ_ERR_DB, 9, 3), GRADEQ_CLASS_PERMANENT);
}

static void test_names(void **state)
{
	static const enum gradeq_err_class all[] = {GRADEQ_CLASS_TRANSIENT, GRADEQ_CLASS_PERMANENT,
						    GRADEQ_CLASS_EXHAUSTED};
	enum gradeq_err_class c;

	(void)state;
	assert_string_equal(gradeq_err_class_name(GRADEQ_CLASS_TRANSIENT), "transient");
	assert_string_equal(gradeq_err_class_name(GRADEQ_CLASS_PERMANENT), "permanent");
	assert_string_equal(gradeq_err_class_name(GRADEQ_CLASS_EXHAUSTED), "exhausted");
	assert_string_equal(gradeq_err_class_name((enum gradeq_err_class)42), "unknown");
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		assert_int_equal(gradeq_err_class_parse(gradeq_err_class_name(all[i]), &c), 0);
		assert_int_equal(c, all[i]);
	}
	assert_int_equal(gradeq_err_class_parse("Transient", &c), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_err_class_parse(NULL, &c), GRADEQ_ERR_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
