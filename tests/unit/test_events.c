/* Event bodies: JSON that any parser reads back, whatever a course id,
 * a job id or an error text holds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "gradeq/events.h"

static json_t *parsed(char *body)
{
	json_error_t e;
	json_t *o;

	assert_non_null(body);
	o = json_loads(body, JSON_REJECT_DUPLICATES, &e);
	if (!o)
		fail_msg("not JSON (%s): %s", e.text, body);
	assert_null(strchr(body, '\n')); /* one line */
	free(body);
	return o;
}

static const char *str(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	assert_non_null(v);
	assert_true(json_is_string(v));
	return json_string_value(v);
}

static void test_job_hostile(void **state)
{
	const char *course = "course-v1:x\"},\"forged\":\"1\n\\ \t\x01 \xc3\xa9";
	const char *detail = "error \"quoted\" back\\slash\nnext line";
	json_t *o;

	(void)state;
	o = parsed(gradeq_event_job_body("j\"1", "r1", course, "dead", detail,
					 "2026-01-01T00:00:00.000Z"));
	assert_int_equal(json_object_size(o), 6);
	assert_string_equal(str(o, "event"), "job.dead");
	assert_string_equal(str(o, "job"), "j\"1");
	assert_string_equal(str(o, "run"), "r1");
	assert_string_equal(str(o, "course"), course);
	assert_string_equal(str(o, "detail"), detail);
	assert_string_equal(str(o, "at"), "2026-01-01T00:00:00.000Z");
	assert_null(json_object_get(o, "forged"));
	json_decref(o);

	/* no detail: no key */
	o = parsed(gradeq_event_job_body("j1", "r1", "c", "complete", NULL, "t"));
	assert_int_equal(json_object_size(o), 5);
	assert_null(json_object_get(o, "detail"));
	json_decref(o);
}

static void test_long_and_not_utf8(void **state)
{
	size_t n = 5000;
	char *detail = malloc(n + 1);
	json_t *o;

	(void)state;
	for (size_t i = 0; i < n; i++)
		detail[i] = "ab\"\\\n"[i % 5];
	detail[n] = '\0';
	/* a long detail is whole, never cut into broken JSON */
	o = parsed(gradeq_event_job_body("j1", "r1", "c", "dead", detail, "t"));
	assert_string_equal(str(o, "detail"), detail);
	json_decref(o);
	free(detail);
	/* bytes that are not UTF-8 still make valid JSON */
	o = parsed(gradeq_event_job_body("j1", "r1", "bad\xff\xfe-\"x\"", "dead", NULL, "t"));
	assert_string_equal(str(o, "course"), "bad?"
					      "?-\"x\"");
	json_decref(o);
}

static void test_run_and_release(void **state)
{
	json_t *o;

	(void)state;
	o = parsed(gradeq_event_run_body("r1", NULL, "complete", "t"));
	assert_string_equal(str(o, "event"), "run.complete");
	assert_string_equal(str(o, "release"), "");
	json_decref(o);
	o = parsed(gradeq_event_run_body("r1", "rel\"1", "failed", "t"));
	assert_string_equal(str(o, "release"), "rel\"1");
	json_decref(o);
	o = parsed(gradeq_event_release_body("demo\"\n", "draining", "t"));
	assert_string_equal(str(o, "event"), "release.draining");
	assert_string_equal(str(o, "release"), "demo\"\n");
	json_decref(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_job_hostile),
		cmocka_unit_test(test_long_and_not_utf8),
		cmocka_unit_test(test_run_and_release),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
