/* Log lines: one line an event, every value logfmt-quoted and escaped, read
 * back by a logfmt parser as the value given. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "gradeq/log.h"

#define MAX_PAIRS 32

struct kv {
	char key[64];
	char *val;
};

struct fixture {
	char path[64];
	struct kv kv[MAX_PAIRS];
	int n;
	char *text;
};

static void kv_clear(struct fixture *f)
{
	for (int i = 0; i < f->n; i++)
		free(f->kv[i].val);
	f->n = 0;
}

/* A logfmt parser as a log reader would write one: key=bare or key="..."
 * with \" \\ \n \r \t \uXXXX (up to 0xff) escapes. Returns the pairs or -1. */
static int parse_logfmt(const char *s, struct kv *kv, int max)
{
	int n = 0;

	while (*s) {
		size_t k;
		char *v;
		size_t o = 0;

		while (*s == ' ')
			s++;
		if (!*s)
			break;
		k = strcspn(s, " =\"");
		if (k == 0 || k >= sizeof(kv[0].key) || s[k] != '=' || n == max)
			return -1;
		memcpy(kv[n].key, s, k);
		kv[n].key[k] = '\0';
		s += k + 1;
		v = malloc(strlen(s) + 1);
		if (*s == '"') {
			for (s++;; s++) {
				if (!*s) {
					free(v);
					return -1; /* unterminated */
				}
				if (*s == '"')
					break;
				if (*s != '\\') {
					v[o++] = *s;
					continue;
				}
				s++;
				switch (*s) {
				case '"':
				case '\\': v[o++] = *s; break;
				case 'n': v[o++] = '\n'; break;
				case 'r': v[o++] = '\r'; break;
				case 't': v[o++] = '\t'; break;
				case 'u': {
					unsigned x;

					if (sscanf(s + 1, "%4x", &x) != 1 || x > 0xff) {
						free(v);
						return -1;
					}
					v[o++] = (char)x;
					s += 4;
					break;
				}
				default: free(v); return -1;
				}
			}
			s++;
			if (*s && *s != ' ') {
				free(v);
				return -1;
			}
		} else {
			while (*s && *s != ' ') {
				if (*s == '"' || *s == '=') {
					free(v);
					return -1; /* a bare value never holds these */
				}
				v[o++] = *s++;
			}
		}
		v[o] = '\0';
		kv[n++].val = v;
	}
	return n;
}

static const char *get(const struct fixture *f, const char *key)
{
	for (int i = 0; i < f->n; i++)
		if (strcmp(f->kv[i].key, key) == 0)
			return f->kv[i].val;
	return NULL;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	int fd;

	snprintf(f->path, sizeof(f->path), "/tmp/gradeq-test-log.XXXXXX");
	fd = mkstemp(f->path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(gradeq_log_init("test_log", GRADEQ_LOG_DEBUG, f->path), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	gradeq_log_init(NULL, GRADEQ_LOG_INFO, NULL);
	unlink(f->path);
	kv_clear(f);
	free(f->text);
	free(f);
	return 0;
}

/* Reads what was logged since the last call (truncating the file), checks
 * that it is exactly one line starting with ts=, and parses it. */
static void read_raw_line(struct fixture *f)
{
	FILE *fp = fopen(f->path, "r+");
	long len;
	char *nl;

	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	len = ftell(fp);
	rewind(fp);
	free(f->text);
	f->text = calloc(1, (size_t)len + 1);
	assert_int_equal(fread(f->text, 1, (size_t)len, fp), (size_t)len);
	fclose(fp);
	assert_int_equal(truncate(f->path, 0), 0);
	nl = strchr(f->text, '\n');
	assert_non_null(nl);
	assert_int_equal(nl - f->text, len - 1); /* one line, one newline at its end */
	*nl = '\0';
	for (const char *p = f->text; *p; p++)
		assert_false((unsigned char)*p < 0x20 || *p == 0x7f);
	assert_memory_equal(f->text, "ts=", 3);
}

static void read_one_line(struct fixture *f)
{
	read_raw_line(f);
	kv_clear(f);
	f->n = parse_logfmt(f->text, f->kv, MAX_PAIRS);
	if (f->n < 0)
		fail_msg("not a logfmt line: %s", f->text);
	assert_string_equal(get(f, "level"), "info");
	assert_string_equal(get(f, "prog"), "test_log");
}

static void check_value(struct fixture *f, const char *value)
{
	log_info("event=check course=%s n=%d", value, 7);
	read_one_line(f);
	assert_int_equal(f->n, 6);
	assert_string_equal(get(f, "event"), "check");
	assert_string_equal(get(f, "course"), value);
	assert_string_equal(get(f, "n"), "7");
}

static void test_newline(void **state)
{
	struct fixture *f = *state;
	const char *forged = "c1\nts=2026-01-01T00:00:00.000Z level=error prog=x event=forged";

	check_value(f, forged);
	assert_non_null(strstr(
		f->text,
		"course=\"c1\\nts=2026-01-01T00:00:00.000Z level=error prog=x event=forged\" n=7"));
	check_value(f, "a\r\nb\tc\x01\x1b[31m\x7f");
	assert_non_null(strstr(f->text, "course=\"a\\r\\nb\\tc\\u0001\\u001b[31m\\u007f\""));
}

static void test_specials(void **state)
{
	struct fixture *f = *state;

	check_value(f, "say \"hi\"");
	check_value(f, "a=b");
	check_value(f, "course=x event=forged");
	assert_non_null(strstr(f->text, "course=\"course=x event=forged\""));
	check_value(f, "two words");
	check_value(f, "back\\slash");
	check_value(f, "\\");
	check_value(f, "\"");
	check_value(f, "");
	assert_non_null(strstr(f->text, "course=\"\" "));
	check_value(f, "course-v1:edX+DemoX+2026");
	assert_non_null(strstr(f->text, " course=course-v1:edX+DemoX+2026 "));
}

static void test_utf8(void **state)
{
	struct fixture *f = *state;

	/* bytes >= 0x80 pass as they are: a bare value */
	check_value(f, "cours-\xc3\xa9t\xc3\xa9-\xe2\x9c\x93");
	assert_non_null(strstr(f->text, " course=cours-\xc3\xa9t\xc3\xa9-\xe2\x9c\x93 "));
	check_value(f, "\xc3\xa9 \"x\"");
}

static void test_quoted_site(void **state)
{
	struct fixture *f = *state;
	const char *v = "no \"route\"\nts=x level=error event=forged";
	char *bare, *quoted;

	/* key="%s" in the format writes what key=%s writes */
	log_info("event=e error=\"%s\" n=1", v);
	read_one_line(f);
	assert_string_equal(get(f, "error"), v);
	assert_string_equal(get(f, "n"), "1");
	bare = gradeq_logfmt_format("error=%s n=1", v);
	quoted = gradeq_logfmt_format("error=\"%s\" n=1", v);
	assert_string_equal(bare, quoted);
	free(bare);
	free(quoted);
	quoted = gradeq_logfmt_format("error=\"%s\"", "plain");
	assert_string_equal(quoted, "error=plain");
	free(quoted);
	/* a quoted value with text and conversions around the string */
	log_info("msg=\"%s is readable by %d users\" file=%s", "the \"x\" file\n", 3, "/a b");
	read_one_line(f);
	assert_string_equal(get(f, "msg"), "the \"x\" file\n is readable by 3 users");
	assert_string_equal(get(f, "file"), "/a b");
}

static void test_other_conversions(void **state)
{
	struct fixture *f = *state;
	char want[256];
	char *got;

	(void)state;
	snprintf(want, sizeof(want), "a=%d b=%5.2f c=%llu d=%zu e=%c f=%% g=%ld%s h=%x i=%-3d|",
		 -42, 3.14159, 18446744073709551615ULL, (size_t)7, 'x', 12L, "s", 255U, 5);
	got = gradeq_logfmt_format("a=%d b=%5.2f c=%llu d=%zu e=%c f=%% g=%ld%s h=%x i=%-3d|", -42,
				   3.14159, 18446744073709551615ULL, (size_t)7, 'x', 12L, "s", 255U,
				   5);
	assert_string_equal(got, want);
	free(got);
	/* precision on a value, from the arguments as rabbitmq-c's bytes are */
	got = gradeq_logfmt_format("key=%.*s x=%.3s", 5, "a b c d", "abcdef");
	assert_string_equal(got, "key=\"a b c\" x=abc");
	free(got);
	(void)f;
}

static void test_not_in_value_position(void **state)
{
	struct fixture *f = *state;

	/* a %s that is no value, or a literal, still cannot break the line */
	log_info("event=x jobs=%ld%s", 3L, " reason=draining\nts=forged");
	read_raw_line(f);
	assert_non_null(strstr(f->text, " event=x jobs=3 reason=draining\\nts=forged"));
	log_info("event=x\ttab=1%s", "\x1b");
	read_raw_line(f);
	assert_non_null(strstr(f->text, "event=x\\ttab=1\\u001b"));
}

static void test_long_value(void **state)
{
	struct fixture *f = *state;
	size_t n = 20000;
	char *v = malloc(n + 1);

	for (size_t i = 0; i < n; i++)
		v[i] = "ab\n\"= "[i % 6];
	v[n] = '\0';
	check_value(f, v);
	free(v);
}

static void test_quote_helper(void **state)
{
	char buf[16];

	(void)state;
	assert_string_equal(gradeq_log_quote(buf, sizeof(buf), "plain"), "plain");
	assert_string_equal(gradeq_log_quote(buf, sizeof(buf), ""), "\"\"");
	assert_string_equal(gradeq_log_quote(buf, sizeof(buf), NULL), "\"\"");
	assert_string_equal(gradeq_log_quote(buf, sizeof(buf), "a\nb"), "\"a\\nb\"");
	/* cut before an escape, the quote closed */
	assert_string_equal(gradeq_log_quote(buf, sizeof(buf), "abcdefghijkl\"m"),
			    "\"abcdefghijkl\"");
	assert_string_equal(gradeq_log_quote(buf, sizeof(buf), "abcdefghijk\x01"),
			    "\"abcdefghijk\"");
	assert_string_equal(gradeq_log_quote(buf, sizeof(buf), "a bcdefghijklmnop"),
			    "\"a bcdefghijkl\"");
	/* never inside a UTF-8 sequence */
	assert_string_equal(gradeq_log_quote(buf, sizeof(buf), "a bcdefghijk\xc3\xa9"),
			    "\"a bcdefghijk\"");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_newline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_specials, setup, teardown),
		cmocka_unit_test_setup_teardown(test_utf8, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quoted_site, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_conversions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_in_value_position, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_value, setup, teardown),
		cmocka_unit_test(test_quote_helper),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
