/* The dead-letter selection: what a parked message says about itself
 * (from its body, gradeq-* headers or the broker's x-death) and which
 * filters it passes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gradeq/broker.h"
#include "gradeq/deadletters.h"
#include "gradeq/job.h"

#define JOB_ID "0b7c4e1a-5f0e-4d3a-9c59-2f7f0e6b1a11"
#define RUN_ID "6f1d2a90-3c4b-4e8f-a1d2-7b9c0e4f5a66"
#define T_2026 1769860800 /* 2026-01-31T12:00:00Z */

static int32_t users[] = {7, 42};

/* An envelope whose body is a job (or the given bytes when body is set). */
static void envelope(amqp_envelope_t *env, struct gradeq_headers *h, const char *body,
		     char **encoded)
{
	memset(env, 0, sizeof(*env));
	*encoded = NULL;
	if (body) {
		env->message.body = amqp_cstring_bytes(body);
	} else {
		struct gradeq_job job = {.schema = GRADEQ_SCHEMA_VERSION,
					 .job_id = JOB_ID,
					 .run_id = RUN_ID,
					 .course_id = "course-v1:edX+DemoX+Demo",
					 .release = "2026.11",
					 .user_ids = users,
					 .nusers = 2};
		size_t len = 0;

		assert_int_equal(gradeq_job_encode(&job, GRADEQ_SCHEMA_VERSION, encoded, &len), 0);
		env->message.body.bytes = *encoded;
		env->message.body.len = len;
	}
	env->message.properties._flags = AMQP_BASIC_HEADERS_FLAG;
	assert_int_equal(gradeq_headers_finish(h, &env->message.properties.headers), 0);
}

static void test_a_consumers_dead_letter(void **state)
{
	struct gradeq_headers h;
	struct gradeq_dl_view v;
	amqp_envelope_t env;
	char *enc;

	(void)state;
	gradeq_headers_init(&h);
	gradeq_headers_set_str(&h, "gradeq-error-class", "permanent");
	gradeq_headers_set_str(&h, "gradeq-error", "policy: weights do not sum to 1");
	gradeq_headers_set_str(&h, "gradeq-failed-at", "2026-01-31T12:00:00Z");
	gradeq_headers_set_int(&h, "gradeq-attempt", 3);
	gradeq_headers_set_int(&h, "gradeq-replay-count", 1);
	envelope(&env, &h, NULL, &enc);
	gradeq_dl_view_fill(&v, &env);
	assert_true(v.decoded);
	assert_string_equal(v.job_id, JOB_ID);
	assert_string_equal(v.run, RUN_ID);
	assert_string_equal(v.course, "course-v1:edX+DemoX+Demo");
	assert_string_equal(v.cls, "permanent");
	assert_string_equal(v.error, "policy: weights do not sum to 1");
	assert_string_equal(v.failed_at, "2026-01-31T12:00:00Z");
	assert_int_equal(v.failed_ts, T_2026);
	assert_int_equal(v.attempt, 3);
	assert_int_equal(v.replays, 1);
	assert_int_equal(v.size, env.message.body.len);
	free(enc);
}

/* The broker parked it (delivery limit): its reason and queue, and the
 * time of x-death when there is no gradeq-failed-at. */
static void test_a_brokers_dead_letter(void **state)
{
	amqp_table_entry_t death[2];
	amqp_field_value_t deaths;
	struct gradeq_headers h;
	struct gradeq_dl_view v;
	amqp_envelope_t env;
	amqp_table_t t;
	char *enc;

	(void)state;
	death[0].key = amqp_cstring_bytes("reason");
	death[0].value.kind = AMQP_FIELD_KIND_UTF8;
	death[0].value.value.bytes = amqp_cstring_bytes("delivery_limit");
	death[1].key = amqp_cstring_bytes("time");
	death[1].value.kind = AMQP_FIELD_KIND_TIMESTAMP;
	death[1].value.value.u64 = T_2026;
	deaths.kind = AMQP_FIELD_KIND_TABLE;
	deaths.value.table.num_entries = 2;
	deaths.value.table.entries = death;
	gradeq_headers_init(&h);
	gradeq_headers_set_str(&h, "x-first-death-reason", "delivery_limit");
	gradeq_headers_set_str(&h, "x-first-death-queue", "gradeq.grades.2026.11");
	gradeq_headers_set_str(&h, "gradeq-course", "c1");
	envelope(&env, &h, "not msgpack", &enc);
	/* x-death (an array of tables, the oldest last), in the room h has left */
	t = env.message.properties.headers;
	t.entries[t.num_entries].key = amqp_cstring_bytes("x-death");
	t.entries[t.num_entries].value.kind = AMQP_FIELD_KIND_ARRAY;
	t.entries[t.num_entries].value.value.array.num_entries = 1;
	t.entries[t.num_entries].value.value.array.entries = &deaths;
	t.num_entries++;
	env.message.properties.headers = t;
	env.message.properties._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
	env.message.properties.message_id = amqp_cstring_bytes("m-1");
	gradeq_dl_view_fill(&v, &env);
	assert_false(v.decoded);
	assert_true(v.decode_err[0] != '\0');
	assert_string_equal(v.job_id, "m-1");
	assert_string_equal(v.course, "c1");
	assert_string_equal(v.cls, "delivery_limit");
	assert_string_equal(v.error, "dead-lettered by the broker (delivery_limit) from queue "
				     "gradeq.grades.2026.11");
	assert_int_equal(v.failed_ts, T_2026);
	assert_string_equal(v.failed_at, "2026-01-31T12:00:00Z");
}

static void test_no_class_no_time(void **state)
{
	struct gradeq_headers h;
	struct gradeq_dl_view v;
	amqp_envelope_t env;
	char *enc;

	(void)state;
	gradeq_headers_init(&h);
	envelope(&env, &h, "", &enc);
	gradeq_dl_view_fill(&v, &env);
	assert_string_equal(v.cls, "unknown");
	assert_int_equal(v.failed_ts, 0);
	assert_string_equal(v.failed_at, "");
	/* the message's timestamp is the last resort */
	env.message.properties._flags |= AMQP_BASIC_TIMESTAMP_FLAG;
	env.message.properties.timestamp = T_2026;
	gradeq_dl_view_fill(&v, &env);
	assert_int_equal(v.failed_ts, T_2026);
}

static void test_filters(void **state)
{
	struct gradeq_dl_view v = {.decoded = true,
				   .course = "c2",
				   .run = RUN_ID,
				   .cls = "transient",
				   .error = "Connection Refused by host",
				   .failed_ts = T_2026};
	struct gradeq_dl_filters f = {.older_than = -1};

	(void)state;
	assert_true(gradeq_dl_matches(&f, &v, T_2026));
	f.courses[0] = "c1";
	f.ncourses = 1;
	assert_false(gradeq_dl_matches(&f, &v, T_2026));
	f.courses[1] = "c2";
	f.ncourses = 2;
	assert_true(gradeq_dl_matches(&f, &v, T_2026)); /* any of them */
	f.cls = "permanent";
	assert_false(gradeq_dl_matches(&f, &v, T_2026));
	f.cls = "transient";
	f.run = "6F1D2A90-3C4B-4E8F-A1D2-7B9C0E4F5A66"; /* case-insensitive */
	assert_true(gradeq_dl_matches(&f, &v, T_2026));
	f.reason = "refused";
	assert_true(gradeq_dl_matches(&f, &v, T_2026));
	f.reason = "timeout";
	assert_false(gradeq_dl_matches(&f, &v, T_2026));
	f.reason = NULL;
	f.older_than = 3600;
	assert_false(gradeq_dl_matches(&f, &v, T_2026 + 3599));
	assert_true(gradeq_dl_matches(&f, &v, T_2026 + 3600));
	v.failed_ts = 0; /* unknown age never passes --older-than */
	assert_false(gradeq_dl_matches(&f, &v, T_2026 + 99999));
}

static void test_command_names(void **state)
{
	enum gradeq_dl_cmd c;

	(void)state;
	for (int i = 0; i < GRADEQ_DL_NCMDS; i++) {
		assert_true(gradeq_dl_cmd_parse(gradeq_dl_cmd_name((enum gradeq_dl_cmd)i), &c));
		assert_int_equal(c, i);
	}
	assert_true(gradeq_dl_cmd_parse("purge", &c));
	assert_int_equal(c, GRADEQ_DL_PURGE);
	assert_false(gradeq_dl_cmd_parse("Purge", &c));
	assert_false(gradeq_dl_cmd_parse("", &c));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_consumers_dead_letter),
		cmocka_unit_test(test_a_brokers_dead_letter),
		cmocka_unit_test(test_no_class_no_time),
		cmocka_unit_test(test_filters),
		cmocka_unit_test(test_command_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
