/* The one COPY escaping routine: COPY's text-format specials escaped,
 * everything else as is, and a value cut to the buffer never ends in half
 * an escape. The binary COPY reader's field decoders, and the key lists'
 * hash lookup the binary reads map usage keys through. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "gradeq/copy.h"
#include "gradeq/courses.h"

static void test_specials_escaped(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(gradeq_copy_escape(out, sizeof(out), "a\\b\tc\nd\re"), 13);
	assert_string_equal(out, "a\\\\b\\tc\\nd\\re");
	assert_int_equal(gradeq_copy_escape(out, sizeof(out), "course-v1:x+y+2026"), 18);
	assert_string_equal(out, "course-v1:x+y+2026");
	assert_int_equal(gradeq_copy_escape(out, sizeof(out), ""), 0);
	assert_string_equal(out, "");
	/* \N means NULL to COPY: a backslash in a value must never make it */
	gradeq_copy_escape(out, sizeof(out), "\\N");
	assert_string_equal(out, "\\\\N");
}

static void test_cut_at_the_buffer(void **state)
{
	char out[8];

	(void)state;
	/* room for 7 bytes: "abcdef" and not half of the tab's escape */
	assert_int_equal(gradeq_copy_escape(out, 7, "abcde\tz"), 5);
	assert_string_equal(out, "abcde");
	assert_int_equal(gradeq_copy_escape(out, sizeof(out), "abcdefghij"), 7);
	assert_string_equal(out, "abcdefg");
	assert_int_equal(gradeq_copy_escape(out, 1, "abc"), 0);
	assert_string_equal(out, "");
	assert_int_equal(gradeq_copy_escape(out, 0, "abc"), 0);
}

static void test_twice_the_length_fits(void **state)
{
	const char *s = "\t\t\\\\\n\n";
	char out[2 * 6 + 1];

	(void)state;
	assert_int_equal(gradeq_copy_escape(out, sizeof(out), s), 12);
	assert_string_equal(out, "\\t\\t\\\\\\\\\\n\\n");
}

static void test_binary_fields(void **state)
{
	const char i32[4] = {(char)0xff, (char)0xff, (char)0xff, (char)0xfe};
	const char i64[8] = {0, 0, 0, 1, 0, 0, 0, 2};
	/* 1.5 as a big-endian IEEE 754 double */
	const char f64[8] = {0x3f, (char)0xf8, 0, 0, 0, 0, 0, 0};
	const char neg[8] = {(char)0xff, (char)0xff, (char)0xff, (char)0xff,
			     (char)0xff, (char)0xff, (char)0xff, (char)0xff};

	(void)state;
	assert_int_equal(gradeq_copy_i32(i32), -2);
	assert_true(gradeq_copy_i64(i64) == ((int64_t)1 << 32) + 2);
	assert_true(gradeq_copy_i64(neg) == -1);
	assert_true(gradeq_copy_f64(f64) == 1.5);
}

static void test_parse_messages(void **state)
{
	/* the header, then a row of an int4 7 and a NULL */
	static const char first[] = "PGCOPY\n\377\r\n\0"
				    "\0\0\0\0\0\0\0\0"
				    "\0\2\0\0\0\4\0\0\0\7\377\377\377\377";
	static const char row[] = "\0\2\0\0\0\3abc\0\0\0\0";
	static const char trailer[] = "\377\377";
	struct gradeq_copy_field f[2];
	bool header = false;

	(void)state;
	assert_int_equal(gradeq_copy_parse(first, sizeof(first) - 1, &header, f, 2), 1);
	assert_true(header);
	assert_int_equal(f[0].len, 4);
	assert_int_equal(gradeq_copy_i32(f[0].p), 7);
	assert_int_equal(f[1].len, -1);
	assert_int_equal(gradeq_copy_parse(row, sizeof(row) - 1, &header, f, 2), 1);
	assert_int_equal(f[0].len, 3);
	assert_memory_equal(f[0].p, "abc", 3);
	assert_int_equal(f[1].len, 0);
	assert_int_equal(gradeq_copy_parse(trailer, 2, &header, f, 2), 0);
	/* another field count, a cut field, a bad signature, a cut header */
	assert_int_equal(gradeq_copy_parse(row, sizeof(row) - 1, &header, f, 3), -1);
	assert_int_equal(gradeq_copy_parse(row, sizeof(row) - 3, &header, f, 2), -1);
	header = false;
	assert_int_equal(gradeq_copy_parse(row, sizeof(row) - 1, &header, f, 2), -1);
	assert_int_equal(gradeq_copy_parse(first, 12, &header, f, 2), -1);
}

static void test_keys_index(void **state)
{
	const char *keys[] = {"block-v1:x+type@sequential+block@a",
			      "block-v1:x+type@sequential+block@b", "k\"q\\", "",
			      "block-v1:x+type@sequential+block@a"};
	struct gradeq_keys *k = gradeq_keys_new(keys, 5);
	char many[300][24];
	const char *mk[300];

	(void)state;
	assert_non_null(k);
	assert_int_equal(gradeq_keys_index(k, keys[0], strlen(keys[0])), 0);
	assert_int_equal(gradeq_keys_index(k, keys[1], strlen(keys[1])), 1);
	assert_int_equal(gradeq_keys_index(k, keys[2], strlen(keys[2])), 2);
	assert_int_equal(gradeq_keys_index(k, "", 0), 3);
	/* a prefix, a longer key, a key not NUL-terminated at len */
	assert_int_equal(gradeq_keys_index(k, keys[0], strlen(keys[0]) - 1), -1);
	assert_int_equal(gradeq_keys_index(k, "block-v1:x+type@sequential+block@ab", 35), -1);
	assert_int_equal(gradeq_keys_index(k, "block-v1:x+type@sequential+block@bXYZ", 34), 1);
	gradeq_keys_free(k);
	/* enough keys to fill chains of the open addressing */
	for (int i = 0; i < 300; i++) {
		snprintf(many[i], sizeof(many[i]), "key-%d", i * 7919);
		mk[i] = many[i];
	}
	k = gradeq_keys_new(mk, 300);
	assert_non_null(k);
	for (int i = 0; i < 300; i++)
		assert_int_equal(gradeq_keys_index(k, mk[i], strlen(mk[i])), i);
	assert_int_equal(gradeq_keys_index(k, "key-1", 5), -1);
	gradeq_keys_free(k);
	gradeq_keys_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_specials_escaped),
		cmocka_unit_test(test_cut_at_the_buffer),
		cmocka_unit_test(test_twice_the_length_fits),
		cmocka_unit_test(test_binary_fields),
		cmocka_unit_test(test_parse_messages),
		cmocka_unit_test(test_keys_index),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
