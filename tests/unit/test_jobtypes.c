/* The job type registry and the codec over both types: round trips of a
 * grading job and a report part in schema 3, bodies of release N-1, and
 * refusal of unknown types and malformed args. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "gradeq/job.h"
#include "gradeq/jobtype.h"
#include "gradeq/report_job.h"

#define JOB_ID "0b7c4e1a-5f0e-4d3a-9c59-2f7f0e6b1a11"
#define RUN_ID "6f1d2a90-3c4b-4e8f-a1d2-7b9c0e4f5a66"
#define OUT_ID "9a0e8f4c-1b2d-4c3e-8f5a-6b7c8d9e0f12"

static int32_t users[] = {7, 42, 2147483647};

static struct gradeq_job sample(void)
{
	struct gradeq_job job = {
		.schema = GRADEQ_SCHEMA_VERSION,
		.job_id = JOB_ID,
		.run_id = RUN_ID,
		.course_id = "course-v1:edX+DemoX+Demo_Course",
		.release = "2026.11",
		.user_ids = users,
		.nusers = 3,
		.created_us = 1767225600123456,
		.seq = 2,
	};
	return job;
}

static const struct gradeq_jobtype *part_type(void)
{
	const char *n = GRADEQ_REPORT_PART_TYPE;

	return gradeq_jobtype_find(n, strlen(n));
}

static bool contains(const char *buf, size_t len, const char *s)
{
	size_t n = strlen(s);

	for (size_t i = 0; i + n <= len; i++)
		if (memcmp(buf + i, s, n) == 0)
			return true;
	return false;
}

static void test_registry(void **state)
{
	size_t n = 0;
	const struct gradeq_jobtype *all = gradeq_jobtypes(&n);

	(void)state;
	assert_true(n >= 2);
	assert_ptr_equal(gradeq_jobtype_default(), &all[0]);
	assert_string_equal(gradeq_jobtype_default()->name, "grades.compute");
	assert_non_null(part_type());
	assert_null(gradeq_jobtype_find("grades", 6));
	assert_null(gradeq_jobtype_find("grades.compute.x", 16));
	for (size_t i = 0; i < n; i++) {
		/* every row is complete: a handler, states, a consistent codec */
		assert_non_null(all[i].handle);
		assert_non_null(all[i].states);
		assert_true(strlen(all[i].name) <= GRADEQ_JOBTYPE_NAME_MAX);
		assert_true(!all[i].decode_args == !all[i].encode_args);
		assert_true(!all[i].decode_args == !all[i].free_args);
		assert_ptr_equal(gradeq_jobtype_find(all[i].name, strlen(all[i].name)), &all[i]);
	}
}

static void test_grading_roundtrip_schema3(void **state)
{
	struct gradeq_job in = sample(), *out = NULL;
	char *buf = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(gradeq_job_encode(&in, 3, &buf, &len), 0);
	assert_true(contains(buf, len, "grades.compute"));
	assert_false(contains(buf, len, "args"));
	assert_int_equal(gradeq_job_decode(buf, len, &out, NULL, 0), 0);
	assert_int_equal(out->schema, 3);
	assert_ptr_equal(out->type, gradeq_jobtype_default());
	assert_null(out->args);
	assert_string_equal(gradeq_job_type_name(out), "grades.compute");
	assert_int_equal(out->nusers, 3);
	assert_memory_equal(out->user_ids, users, sizeof(users));
	assert_int_equal(out->seq, 2);
	gradeq_job_free(out);
	free(buf);
}

static void test_part_roundtrip(void **state)
{
	struct gradeq_report_part args = {.output_id = OUT_ID, .parts = 17};
	struct gradeq_job in = sample(), *out = NULL;
	const struct gradeq_report_part *got;
	char *buf = NULL, *again = NULL;
	size_t len = 0, len2 = 0;

	(void)state;
	in.type = part_type();
	in.args = &args;
	assert_int_equal(gradeq_job_encode(&in, GRADEQ_SCHEMA_VERSION, &buf, &len), 0);
	assert_int_equal(gradeq_job_decode(buf, len, &out, NULL, 0), 0);
	assert_ptr_equal(out->type, part_type());
	assert_string_equal(gradeq_job_type_name(out), GRADEQ_REPORT_PART_TYPE);
	got = out->args;
	assert_non_null(got);
	assert_string_equal(got->output_id, OUT_ID);
	assert_int_equal(got->parts, 17);
	assert_int_equal(out->seq, 2);
	assert_string_equal(out->course_id, in.course_id);
	/* what decodes encodes to the same bytes */
	assert_int_equal(gradeq_job_encode(out, out->schema, &again, &len2), 0);
	assert_int_equal(len, len2);
	assert_memory_equal(buf, again, len);
	gradeq_job_free(out);
	free(buf);
	free(again);
}

static void test_part_needs_schema3(void **state)
{
	struct gradeq_report_part args = {.output_id = OUT_ID, .parts = 1};
	struct gradeq_job in = sample();
	char *buf = NULL;
	size_t len = 0;

	(void)state;
	in.type = part_type();
	in.args = &args;
	assert_int_equal(gradeq_job_encode(&in, 2, &buf, &len), GRADEQ_ERR_INVALID);
	assert_null(buf);
	in.args = NULL; /* a part without its args */
	assert_int_equal(gradeq_job_encode(&in, 3, &buf, &len), GRADEQ_ERR_INVALID);
	in.args = &args;
	args.parts = 0;
	assert_int_equal(gradeq_job_encode(&in, 3, &buf, &len), GRADEQ_ERR_INVALID);
	args.parts = GRADEQ_REPORT_MAX_PARTS + 1;
	assert_int_equal(gradeq_job_encode(&in, 3, &buf, &len), GRADEQ_ERR_INVALID);
	args.parts = 1;
	args.output_id[0] = 'X';
	assert_int_equal(gradeq_job_encode(&in, 3, &buf, &len), GRADEQ_ERR_INVALID);
	/* grading takes no args */
	in = sample();
	in.args = &args;
	assert_int_equal(gradeq_job_encode(&in, 3, &buf, &len), GRADEQ_ERR_INVALID);
}

/* A body of release N-1 (schema 2, no type) is a grading job. */
static void test_schema2_is_grading(void **state)
{
	struct gradeq_job in = sample(), *out = NULL;
	char *buf = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(gradeq_job_encode(&in, 2, &buf, &len), 0);
	assert_false(contains(buf, len, "type"));
	assert_int_equal(gradeq_job_decode(buf, len, &out, NULL, 0), 0);
	assert_int_equal(out->schema, 2);
	assert_ptr_equal(out->type, gradeq_jobtype_default());
	gradeq_job_free(out);
	free(buf);
	assert_int_equal(gradeq_job_encode(&in, 1, &buf, &len), 0);
	assert_int_equal(gradeq_job_decode(buf, len, &out, NULL, 0), 0);
	assert_ptr_equal(out->type, gradeq_jobtype_default());
	gradeq_job_free(out);
	free(buf);
}

/* ---- hand-made schema 3 bodies ---- */

enum args_kind { ARGS_NONE, ARGS_OK, ARGS_NOT_MAP, ARGS_BAD_UUID, ARGS_ZERO, ARGS_NO_PARTS };

static void pack_str(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str_with_body(pk, s, strlen(s));
}

static size_t body(char **out, const char *type, enum args_kind args)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	size_t len;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 9 + (args != ARGS_NONE) - (type == NULL));
	pack_str(&pk, "schema");
	msgpack_pack_int(&pk, 3);
	pack_str(&pk, "job");
	pack_str(&pk, JOB_ID);
	pack_str(&pk, "run");
	pack_str(&pk, RUN_ID);
	pack_str(&pk, "course");
	pack_str(&pk, "course-v1:X+Y+Z");
	pack_str(&pk, "release");
	pack_str(&pk, "2026.11");
	pack_str(&pk, "users");
	msgpack_pack_array(&pk, 1);
	msgpack_pack_int(&pk, 5);
	pack_str(&pk, "created");
	msgpack_pack_int64(&pk, 1);
	pack_str(&pk, "seq");
	msgpack_pack_int(&pk, 0);
	if (type) {
		pack_str(&pk, "type");
		pack_str(&pk, type);
	}
	if (args != ARGS_NONE) {
		pack_str(&pk, "args");
		if (args == ARGS_NOT_MAP) {
			msgpack_pack_int(&pk, 1);
		} else {
			msgpack_pack_map(&pk, args == ARGS_NO_PARTS ? 1 : 2);
			pack_str(&pk, "output");
			pack_str(&pk, args == ARGS_BAD_UUID ? "not-a-uuid" : OUT_ID);
			if (args != ARGS_NO_PARTS) {
				pack_str(&pk, "parts");
				msgpack_pack_int(&pk, args == ARGS_ZERO ? 0 : 3);
			}
		}
	}
	len = sb.size;
	*out = msgpack_sbuffer_release(&sb);
	return len;
}

static void expect_body(const char *type, enum args_kind args, int code, const char *substr)
{
	struct gradeq_job *job = NULL;
	char *buf = NULL, err[256] = "";
	size_t len = body(&buf, type, args);
	int ret = gradeq_job_decode(buf, len, &job, err, sizeof(err));

	if (ret != code || (substr && !strstr(err, substr)))
		print_error("got %d '%s', want %d '%s'\n", ret, err, code, substr ? substr : "");
	assert_int_equal(ret, code);
	if (substr)
		assert_non_null(strstr(err, substr));
	if (code)
		assert_null(job);
	else
		assert_non_null(job);
	gradeq_job_free(job);
	free(buf);
}

static void test_schema3_bodies(void **state)
{
	(void)state;
	expect_body("grades.compute", ARGS_NONE, 0, NULL);
	expect_body(GRADEQ_REPORT_PART_TYPE, ARGS_OK, 0, NULL);
	expect_body(NULL, ARGS_NONE, GRADEQ_ERR_DECODE, "missing key 'type'");
	expect_body("report.bogus", ARGS_NONE, GRADEQ_ERR_DECODE,
		    "unknown job type 'report.bogus'");
	expect_body("bad\ntype", ARGS_NONE, GRADEQ_ERR_DECODE, "unknown job type");
	expect_body("grades.compute", ARGS_OK, GRADEQ_ERR_DECODE, "takes no 'args'");
	expect_body(GRADEQ_REPORT_PART_TYPE, ARGS_NONE, GRADEQ_ERR_DECODE, "missing key 'args'");
	expect_body(GRADEQ_REPORT_PART_TYPE, ARGS_NOT_MAP, GRADEQ_ERR_DECODE,
		    "'args' is not a map");
	expect_body(GRADEQ_REPORT_PART_TYPE, ARGS_BAD_UUID, GRADEQ_ERR_DECODE,
		    "'args.output' is not a lower-case UUID");
	expect_body(GRADEQ_REPORT_PART_TYPE, ARGS_ZERO, GRADEQ_ERR_DECODE,
		    "'args.parts' is not 1..");
	expect_body(GRADEQ_REPORT_PART_TYPE, ARGS_NO_PARTS, GRADEQ_ERR_DECODE,
		    "missing key 'args.parts'");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registry),
		cmocka_unit_test(test_grading_roundtrip_schema3),
		cmocka_unit_test(test_part_roundtrip),
		cmocka_unit_test(test_part_needs_schema3),
		cmocka_unit_test(test_schema2_is_grading),
		cmocka_unit_test(test_schema3_bodies),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
