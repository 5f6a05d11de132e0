/* The s3 backend's SigV4 query presigning against AWS's published example
 * ("Authenticating Requests: Using Query Parameters", Amazon S3 API
 * reference: GET examplebucket/test.txt, 2013-05-24, 86400 s), URI
 * encoding, and that the credentials files are read as the first line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "gradeq/s3.h"

#define AWS_EXAMPLE                                                                                \
	"https://examplebucket.s3.amazonaws.com/test.txt"                                          \
	"?X-Amz-Algorithm=AWS4-HMAC-SHA256"                                                        \
	"&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"        \
	"&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"                \
	"&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"

static void test_aws_example(void **state)
{
	char url[2048];

	(void)state;
	assert_int_equal(gradeq_s3_presign_url("https", "examplebucket.s3.amazonaws.com",
					       "/test.txt", "us-east-1", "AKIAIOSFODNN7EXAMPLE",
					       "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
					       1369353600, 86400, url, sizeof(url)),
			 0);
	assert_string_equal(url, AWS_EXAMPLE);
}

static void test_changes_change_signature(void **state)
{
	char a[2048], b[2048];

	(void)state;
	assert_int_equal(gradeq_s3_presign_url("http", "127.0.0.1:9000", "/b/k.csv", "us-east-1",
					       "AK", "secret", 1369353600, 300, a, sizeof(a)),
			 0);
	assert_int_equal(gradeq_s3_presign_url("http", "127.0.0.1:9000", "/b/l.csv", "us-east-1",
					       "AK", "secret", 1369353600, 300, b, sizeof(b)),
			 0);
	assert_string_not_equal(strstr(a, "Signature="), strstr(b, "Signature="));
	assert_int_equal(gradeq_s3_presign_url("http", "127.0.0.1:9000", "/b/k.csv", "us-east-1",
					       "AK", "secret", 1369353600, 300, a, 40),
			 -2);
}

static void test_uri_encode(void **state)
{
	char out[64];

	(void)state;
	gradeq_s3_uri_encode("a b/c~d.e_f-g+h", 1, out, sizeof(out));
	assert_string_equal(out, "a%20b/c~d.e_f-g%2Bh");
	gradeq_s3_uri_encode("AK/20130524/us", 0, out, sizeof(out));
	assert_string_equal(out, "AK%2F20130524%2Fus");
	gradeq_s3_uri_encode("abcdefgh", 0, out, 6);
	assert_true(strlen(out) < 6);
}

static void test_open_reads_key_files(void **state)
{
	char ak[] = "/tmp/gradeq-s3-ak-XXXXXX", sk[] = "/tmp/gradeq-s3-sk-XXXXXX";
	struct gradeq_s3 *s = NULL;
	int fa = mkstemp(ak), fs = mkstemp(sk);

	(void)state;
	assert_true(fa >= 0 && fs >= 0);
	assert_int_equal(write(fa, "AKID\n", 5), 5);
	assert_int_equal(write(fs, "SECRET\nignored\n", 15), 15);
	close(fa);
	close(fs);
	assert_int_equal(gradeq_s3_open("http://127.0.0.1:9/", "bucket", "us-east-1", ak, sk, &s),
			 0);
	assert_string_equal(s->access, "AKID");
	assert_string_equal(s->secret, "SECRET");
	assert_string_equal(s->endpoint, "http://127.0.0.1:9");
	gradeq_s3_free(s);
	assert_int_not_equal(gradeq_s3_open("ftp://x", "bucket", "us-east-1", ak, sk, &s), 0);
	assert_int_not_equal(gradeq_s3_open("http://x", "", "us-east-1", ak, sk, &s), 0);
	assert_int_not_equal(gradeq_s3_open("http://x", "b", "us-east-1", ak, "/nonexistent", &s),
			     0);
	assert_null(s);
	unlink(ak);
	unlink(sk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_aws_example),
		cmocka_unit_test(test_changes_change_signature),
		cmocka_unit_test(test_uri_encode),
		cmocka_unit_test(test_open_reads_key_files),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
