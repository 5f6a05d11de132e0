/* The grade report's CSV (reportfmt.c) and the file backend's parts and
 * seal (storage.c): escaping, header and rows, parts joined in order
 * whatever order they were written in, a missing part refused, a second
 * seal giving the same bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "gradeq/config.h"
#include "gradeq/outputs.h"
#include "gradeq/reportfmt.h"
#include "gradeq/storage.h"

static void expect_field(const char *in, const char *want)
{
	struct gradeq_buf b = {0};

	gradeq_csv_field(&b, in);
	assert_false(b.failed);
	assert_string_equal(b.data ? b.data : "", want);
	gradeq_buf_release(&b);
}

static void test_csv_escaping(void **state)
{
	(void)state;
	expect_field("", "");
	expect_field("plain", "plain");
	expect_field("block-v1:X+Y+type@sequential+block@a",
		     "block-v1:X+Y+type@sequential+block@a");
	expect_field("a,b", "\"a,b\"");
	expect_field("say \"hi\"", "\"say \"\"hi\"\"\"");
	expect_field("\"", "\"\"\"\"");
	expect_field("line\nbreak", "\"line\nbreak\"");
	expect_field("cr\r", "\"cr\r\"");
	expect_field(" lead", "\" lead\"");
	expect_field("trail ", "\"trail \"");
	expect_field("in side", "in side");
	expect_field("\"a\",\"b\"", "\"\"\"a\"\",\"\"b\"\"\"");
}

static void test_header_and_rows(void **state)
{
	const char *formats[] = {"Homework", "Final, Exam"};
	const char *keys[] = {"s1", "s2", "s3"};
	int owner[] = {0, 1, 0};
	struct gradeq_report_layout l = {.nformats = 2,
					 .formats = formats,
					 .nsubs = 3,
					 .sub_keys = keys,
					 .sub_format = owner};
	double earned[] = {1.0, 2.0, 0.5}, possible[] = {3.0, 4.0, 0.0};
	bool has[] = {true, true, true}, none[] = {true, false, false};
	struct gradeq_output_grade g = {.user_id = 42,
					.percent = 0.83,
					.letter = "B",
					.passed = true,
					.earned = earned,
					.possible = possible,
					.has = has};
	struct gradeq_buf b = {0};

	(void)state;
	gradeq_report_header(&b, &l);
	assert_string_equal(b.data,
			    "user_id,percent,letter,passed,Homework,\"Final, Exam\",s1,s2,s3\n");
	gradeq_buf_release(&b);
	/* Homework: (1 + 0.5 of a possible 0, which does not count) / 3 */
	gradeq_report_row(&b, &l, &g);
	assert_string_equal(b.data, "42,0.83,B,true,0.3333,0.5000,0.3333,0.5000,0.0000\n");
	gradeq_buf_release(&b);
	g.letter = "";
	g.passed = false;
	g.percent = 0.0;
	g.has = none;
	gradeq_report_row(&b, &l, &g);
	assert_string_equal(b.data, "42,0.00,,false,0.3333,0.0000,0.3333,,\n");
	gradeq_buf_release(&b);
	/* rule 5: half to even at the 4th decimal */
	earned[0] = 0.00005;
	possible[0] = 1.0;
	g.has = has;
	gradeq_report_row(&b, &l, &g);
	assert_non_null(strstr(b.data, ",0.0000,0.5000,0.0000,0.5000,"));
	gradeq_buf_release(&b);
}

/* ---- the file backend ---- */

struct fixture {
	char dir[64];
	struct gradeq_config cfg;
	struct gradeq_storage *s;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/gradeq-test-storage.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	f->cfg.output_dir = f->dir;
	if (gradeq_storage_open(&f->cfg, &f->s))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	gradeq_storage_free(f->s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *buf = calloc(1, 4096);

	assert_non_null(fp);
	*len = fread(buf, 1, 4095, fp);
	fclose(fp);
	return buf;
}

static void test_parts_sealed_in_order(void **state)
{
	struct fixture *f = *state;
	/* SHA-256 of "h\n" "a\n" "b\n" "c\n" */
	const char *want = "h\na\nb\nc\n";
	char sha[65], sha2[65], path[256], *got;
	long long size = 0;
	size_t len;

	/* written out of order, one twice (a retried part) */
	assert_int_equal(gradeq_storage_put_part(f->s, "o.csv", 2, "c\n", 2), 0);
	assert_int_equal(gradeq_storage_put_part(f->s, "o.csv", 0, "a\n", 2), 0);
	/* a missing part: no seal, nothing visible */
	assert_int_equal(gradeq_storage_seal(f->s, "o.csv", "h\n", 2, 3, &size, sha),
			 GRADEQ_ERR_NOT_FOUND);
	assert_int_equal(gradeq_storage_path(f->s, "o.csv", path, sizeof(path)), 0);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(gradeq_storage_put_part(f->s, "o.csv", 1, "x\n", 2), 0);
	assert_int_equal(gradeq_storage_put_part(f->s, "o.csv", 1, "b\n", 2), 0);
	assert_int_equal(gradeq_storage_seal(f->s, "o.csv", "h\n", 2, 3, &size, sha), 0);
	got = slurp(path, &len);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(got, want, len);
	free(got);
	assert_int_equal(size, 8);
	assert_string_equal(sha,
			    "7b04681a65a58de844e2e1d7547a8930ff16b0cef7015ab17aab0361a909625f");
	/* sealing again (a redelivered last part) rebuilds the same bytes */
	assert_int_equal(gradeq_storage_seal(f->s, "o.csv", "h\n", 2, 3, &size, sha2), 0);
	assert_string_equal(sha, sha2);
	gradeq_storage_drop_parts(f->s, "o.csv", 3);
	assert_int_equal(gradeq_storage_remove(f->s, "o.csv", 3), 0);
	assert_int_equal(access(path, F_OK), -1);
	/* removing what is gone is no error */
	assert_int_equal(gradeq_storage_remove(f->s, "o.csv", 3), 0);
}

static void test_bad_keys(void **state)
{
	struct fixture *f = *state;
	char path[256];

	assert_int_equal(gradeq_storage_put_part(f->s, "../x", 0, "a", 1), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_storage_path(f->s, "a/b", path, sizeof(path)), GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_storage_path(f->s, ".hidden", path, sizeof(path)),
			 GRADEQ_ERR_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_csv_escaping),
		cmocka_unit_test(test_header_and_rows),
		cmocka_unit_test_setup_teardown(test_parts_sealed_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_keys, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
