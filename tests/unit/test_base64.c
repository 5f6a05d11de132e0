/* Base64 through OpenSSL: the RFC 4648 vectors, round trips of every
 * length, and refusal of what is not canonical base64. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gradeq/base64.h"

static void test_rfc4648_vectors(void **state)
{
	static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
	static const char *const enc[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
					  "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};

	(void)state;
	for (size_t i = 0; i < 7; i++) {
		unsigned char out[16];
		char *e = gradeq_base64_encode(plain[i], strlen(plain[i]));

		assert_non_null(e);
		assert_string_equal(e, enc[i]);
		free(e);
		assert_int_equal(gradeq_base64_decode(enc[i], out), (long)strlen(plain[i]));
		assert_memory_equal(out, plain[i], strlen(plain[i]));
	}
}

static void test_round_trip_every_byte_and_length(void **state)
{
	unsigned char data[300], out[400];

	(void)state;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i * 7 + 3);
	for (size_t len = 0; len <= sizeof(data); len++) {
		char *e = gradeq_base64_encode(data, len);

		assert_non_null(e);
		assert_int_equal(strlen(e), 4 * ((len + 2) / 3));
		assert_true(gradeq_base64_decoded_max(strlen(e)) >= len);
		assert_int_equal(gradeq_base64_decode(e, out), (long)len);
		assert_memory_equal(out, data, len);
		free(e);
	}
}

static void test_refuses_what_is_not_base64(void **state)
{
	static const char *const bad[] = {
		"Zg=",      /* length */
		"Zg",       /* length */
		"Z===",     /* too much padding */
		"Zg=a",     /* padding inside */
		"Zg==Zg==", /* padding before the end */
		" Zg=",     /* whitespace, which OpenSSL would skip */
		"Zm9v\n",   /* a line break */
		"Zm9*",     /* not in the alphabet */
		"Zm9v-_==", /* the URL alphabet */
		"====",     /* padding only */
	};
	unsigned char out[32];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(gradeq_base64_decode(bad[i], out), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc4648_vectors),
		cmocka_unit_test(test_round_trip_every_byte_and_length),
		cmocka_unit_test(test_refuses_what_is_not_base64),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
