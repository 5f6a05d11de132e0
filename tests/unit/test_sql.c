/* The embedded SQL files: migrations numbered 1..N, their statement text
 * pinned (a migration that shipped is never edited: add the next one), and
 * the line joining that keeps that text byte for byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "store/sql.h"

/* SHA-256 of each migration's statement text, as shipped. */
static const char *const shipped[] = {
	"96afa04345c4e64cfee27602513c7bbc1ba98adeda6209b6ba3be75972b3ac33",
	"43dc040935ca1e1f3b7cc854e27daa5fc35bc116757d65b7de03d7e579a712e8",
	"01449cad4d38b0e8a48d8e2652468c8c7a6e4e59e333bc539757a78bedb90154",
	"a863e0b83c4c7d6bfd3cda650e1a83da9702a25735b58a7c3b327bb14dfd9a77",
	"9762572b4b65888a08d69971e6e3282e2b412364a100464a46ff317452b8062d",
	"0008633b3478e9fbf0113b62e94addbcdd734a26bfc73320486dd62bffa0e598",
	"01113bdf154d128df38f3e9482142596cded643d22986047eeba7ebb4671ba3f",
	/* 0008-watermarks.sql */
	"dac53f8ef4018f1b8a1d8cf3df740aa3e876b0595d0a407b54d2e544f4678edd",
	/* 0009-throttle.sql */
	"3d5e0e6d1c3d68efaa325d5f02377ecee15140f9f85de8c2a40db7d303a0d99a",
	/* 0010-error-class.sql */
	"bf5b7e65caeee41a1810f0d32257ce81ffcd6b43d21bb98c2ebfbb488fa4720b",
	/* 0011-outputs.sql */
	"ce3c521eb13fccd8c60b7c8f84c636b978afb22ba1e732a3ba577a3817a62d31",
};

static void sha256_hex(const char *s, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	assert_int_equal(EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL), 1);
	for (unsigned i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void test_migrations_numbered(void **state)
{
	(void)state;
	assert_true(gradeq_sql_migrations() >= (int)(sizeof(shipped) / sizeof(shipped[0])));
	assert_null(gradeq_sql_migration(0));
	assert_null(gradeq_sql_migration(gradeq_sql_migrations() + 1));
	assert_non_null(gradeq_sql_find("input-tables.sql"));
	assert_null(gradeq_sql_find("no-such.sql"));
}

static void test_shipped_migrations_unchanged(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(shipped) / sizeof(shipped[0]); i++) {
		const struct gradeq_sql_file *f = gradeq_sql_migration((int)i + 1);
		char *text, hex[65];

		assert_non_null(f);
		text = gradeq_sql_text(f->text, f->len);
		assert_non_null(text);
		sha256_hex(text, hex);
		if (strcmp(hex, shipped[i]) != 0)
			fail_msg("%s changed after it shipped (sha256 %s)", f->name, hex);
		free(text);
	}
}

static void test_text_joins_lines_drops_comments(void **state)
{
	static const char file[] = "-- a comment\nCREATE TABLE t (\n a int);\n-- b\n"
				   "SELECT '--' AS x;\n  -- indented\n\tEND;\n";
	char *text;

	(void)state;
	text = gradeq_sql_text(file, sizeof(file) - 1);
	assert_non_null(text);
	assert_string_equal(text, "CREATE TABLE t ( a int);SELECT '--' AS x;\tEND;");
	free(text);
	text = gradeq_sql_text("no newline", 10);
	assert_string_equal(text, "no newline");
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_migrations_numbered),
		cmocka_unit_test(test_shipped_migrations_unchanged),
		cmocka_unit_test(test_text_joins_lines_drops_comments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
