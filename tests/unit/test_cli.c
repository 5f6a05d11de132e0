/* The programs' shared command-line helpers: an error line stays one line
 * whatever its values hold. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "gradeq/cli.h"

static void print(const char *msg, char *out, size_t len)
{
	FILE *f = tmpfile();
	size_t n;

	assert_non_null(f);
	gradeq_cli_print_line(f, "gradeq-x", "error", msg);
	rewind(f);
	n = fread(out, 1, len - 1, f);
	out[n] = '\0';
	fclose(f);
}

static void test_one_line_whatever_the_value(void **state)
{
	char out[256];

	(void)state;
	print("course 'a\nts=1 level=error event=forged'", out, sizeof(out));
	assert_string_equal(out, "gradeq-x: error: course 'a ts=1 level=error event=forged'\n");
	print("a\r\tb\x01\x1b[31m\x7f", out, sizeof(out));
	assert_string_equal(out, "gradeq-x: error: a  b\\x01\\x1b[31m\\x7f\n");
	print("caf\xc3\xa9", out, sizeof(out));
	assert_string_equal(out, "gradeq-x: error: caf\xc3\xa9\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_line_whatever_the_value),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
