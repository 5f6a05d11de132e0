/* Signed download links: a link verifies until it expires; a changed
 * user, output id, expiry or key, or a truncated signature, is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "gradeq/outputlink.h"

#define OUT "9a0e8f4c-1b2d-4c3e-8f5a-6b7c8d9e0f12"
#define OTHER "9a0e8f4c-1b2d-4c3e-8f5a-6b7c8d9e0f13"

static const unsigned char key[] = "0123456789abcdef0123456789abcdef-the-test-key";
static const unsigned char key2[] = "0123456789abcdef0123456789abcdef-the-test-kez";
#define KEYLEN (sizeof(key) - 1)

static void test_sign_verify(void **state)
{
	char sig[GRADEQ_LINK_SIG_HEX], again[GRADEQ_LINK_SIG_HEX];
	const int64_t exp = 2000000000;

	(void)state;
	gradeq_link_sign(key, KEYLEN, OUT, 42, exp, sig);
	assert_int_equal(strlen(sig), 64);
	gradeq_link_sign(key, KEYLEN, OUT, 42, exp, again);
	assert_string_equal(sig, again);
	assert_int_equal(gradeq_link_verify(key, KEYLEN, OUT, 42, exp, sig, exp - 1), 0);
	assert_int_equal(gradeq_link_verify(key, KEYLEN, OUT, 42, exp, sig, exp), 0);
}

static void test_expired(void **state)
{
	char sig[GRADEQ_LINK_SIG_HEX];

	(void)state;
	gradeq_link_sign(key, KEYLEN, OUT, 42, 1000, sig);
	assert_int_equal(gradeq_link_verify(key, KEYLEN, OUT, 42, 1000, sig, 1001),
			 GRADEQ_ERR_ACCESS);
	assert_string_equal(gradeq_errmsg(GRADEQ_ERR_ACCESS), "link expired");
	/* pushing the expiry out breaks the signature */
	assert_int_equal(gradeq_link_verify(key, KEYLEN, OUT, 42, 5000, sig, 1001),
			 GRADEQ_ERR_ACCESS);
	assert_string_equal(gradeq_errmsg(GRADEQ_ERR_ACCESS), "link signature does not match");
}

static void test_tampered(void **state)
{
	char sig[GRADEQ_LINK_SIG_HEX];
	const int64_t exp = 2000000000;

	(void)state;
	gradeq_link_sign(key, KEYLEN, OUT, 42, exp, sig);
	/* another user */
	assert_int_equal(gradeq_link_verify(key, KEYLEN, OUT, 43, exp, sig, 0), GRADEQ_ERR_ACCESS);
	/* another output */
	assert_int_equal(gradeq_link_verify(key, KEYLEN, OTHER, 42, exp, sig, 0),
			 GRADEQ_ERR_ACCESS);
	/* another key */
	assert_int_equal(gradeq_link_verify(key2, sizeof(key2) - 1, OUT, 42, exp, sig, 0),
			 GRADEQ_ERR_ACCESS);
	/* a signature cut short, empty, upper-cased, or one digit changed */
	assert_int_equal(gradeq_link_verify(key, KEYLEN, OUT, 42, exp, "", 0), GRADEQ_ERR_ACCESS);
	sig[63] = '\0';
	assert_int_equal(gradeq_link_verify(key, KEYLEN, OUT, 42, exp, sig, 0), GRADEQ_ERR_ACCESS);
	gradeq_link_sign(key, KEYLEN, OUT, 42, exp, sig);
	sig[10] = sig[10] == '0' ? '1' : '0';
	assert_int_equal(gradeq_link_verify(key, KEYLEN, OUT, 42, exp, sig, 0), GRADEQ_ERR_ACCESS);
	assert_int_equal(gradeq_link_verify(key, KEYLEN, OUT, 42, exp, NULL, 0), GRADEQ_ERR_ACCESS);
	/* user 4 of output ...2 and user 24 of output ... do not collide */
	gradeq_link_sign(key, KEYLEN, "a2", 4, exp, sig);
	assert_int_equal(gradeq_link_verify(key, KEYLEN, "a", 24, exp, sig, 0), GRADEQ_ERR_ACCESS);
}

static void test_key_file(void **state)
{
	char path[] = "/tmp/gradeq-test-key.XXXXXX";
	unsigned char got[GRADEQ_LINK_KEY_MAX];
	size_t len = 0;
	int fd = mkstemp(path);
	FILE *fp;

	(void)state;
	assert_true(fd >= 0);
	fp = fdopen(fd, "w");
	fputs("short\n", fp);
	fclose(fp);
	assert_int_equal(gradeq_link_key_read(path, got, &len), GRADEQ_ERR_CONFIG);
	fp = fopen(path, "w");
	fprintf(fp, "%s\n", (const char *)key);
	fclose(fp);
	assert_int_equal(gradeq_link_key_read(path, got, &len), 0);
	assert_int_equal(len, KEYLEN);
	assert_memory_equal(got, key, KEYLEN);
	unlink(path);
	assert_int_equal(gradeq_link_key_read(path, got, &len), GRADEQ_ERR_CONFIG);
	assert_int_equal(gradeq_link_key_read(NULL, got, &len), GRADEQ_ERR_CONFIG);
}

static void test_path(void **state)
{
	char buf[256], tiny[10];

	(void)state;
	assert_int_equal(gradeq_link_path(buf, sizeof(buf), OUT, 7, 99, "ab"), 0);
	assert_string_equal(buf, "/outputs/" OUT "?user=7&expires=99&sig=ab");
	assert_int_equal(gradeq_link_path(tiny, sizeof(tiny), OUT, 7, 99, "ab"),
			 GRADEQ_ERR_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sign_verify), cmocka_unit_test(test_expired),
		cmocka_unit_test(test_tampered),    cmocka_unit_test(test_key_file),
		cmocka_unit_test(test_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
