/* The job codec: round trips, N-1 compatibility, and refusal of every kind
 * of malformed body. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "gradeq/job.h"

#define JOB_ID "0b7c4e1a-5f0e-4d3a-9c59-2f7f0e6b1a11"
#define RUN_ID "6f1d2a90-3c4b-4e8f-a1d2-7b9c0e4f5a66"

static int32_t users3[] = {7, 42, 2147483647};

static struct gradeq_job sample_job(void)
{
	struct gradeq_job job = {
		.schema = GRADEQ_SCHEMA_VERSION,
		.job_id = JOB_ID,
		.run_id = RUN_ID,
		.course_id = "course-v1:edX+DemoX+Demo_Course",
		.release = "2026.11",
		.user_ids = users3,
		.nusers = 3,
		.created_us = 1767225600123456,
		.seq = 4000000000u,
	};
	return job;
}

/* ---- a map builder for hand-made bodies ---- */

struct mb {
	msgpack_sbuffer sb;
	msgpack_packer pk;
	uint32_t n;
	char *buf;
	size_t len;
};

static void mb_init(struct mb *m)
{
	memset(m, 0, sizeof(*m));
	msgpack_sbuffer_init(&m->sb);
	msgpack_packer_init(&m->pk, &m->sb, msgpack_sbuffer_write);
}

static void mb_key(struct mb *m, const char *k)
{
	m->n++;
	msgpack_pack_str_with_body(&m->pk, k, strlen(k));
}

static void mb_str(struct mb *m, const char *k, const char *v)
{
	mb_key(m, k);
	msgpack_pack_str_with_body(&m->pk, v, strlen(v));
}

static void mb_int(struct mb *m, const char *k, int64_t v)
{
	mb_key(m, k);
	msgpack_pack_int64(&m->pk, v);
}

static void mb_users(struct mb *m, const char *k, const int64_t *v, size_t n)
{
	mb_key(m, k);
	msgpack_pack_array(&m->pk, n);
	for (size_t i = 0; i < n; i++)
		msgpack_pack_int64(&m->pk, v[i]);
}

/* All schema 2 fields but 'omit' (NULL: all). */
static void mb_valid(struct mb *m, int schema, const char *omit)
{
	static const int64_t u[] = {1, 2, 3};
	const char *ukey = schema == 1 ? "user_ids" : "users";

	if (!omit || strcmp(omit, "schema"))
		mb_int(m, "schema", schema);
	if (!omit || strcmp(omit, "job"))
		mb_str(m, "job", JOB_ID);
	if (!omit || strcmp(omit, "run"))
		mb_str(m, "run", RUN_ID);
	if (!omit || strcmp(omit, "course"))
		mb_str(m, "course", "course-v1:X+Y+Z");
	if (!omit || strcmp(omit, "release"))
		mb_str(m, "release", "2026.11");
	if (!omit || strcmp(omit, ukey))
		mb_users(m, ukey, u, 3);
	if (schema == 1)
		return;
	if (!omit || strcmp(omit, "created"))
		mb_int(m, "created", 1767225600000000);
	if (!omit || strcmp(omit, "seq"))
		mb_int(m, "seq", 0);
}

/* Prefixes the map header; m->buf/m->len hold the body. */
static void mb_finish(struct mb *m)
{
	msgpack_sbuffer hs;
	msgpack_packer hp;

	msgpack_sbuffer_init(&hs);
	msgpack_packer_init(&hp, &hs, msgpack_sbuffer_write);
	msgpack_pack_map(&hp, m->n);
	m->len = hs.size + m->sb.size;
	m->buf = malloc(m->len);
	assert_non_null(m->buf);
	memcpy(m->buf, hs.data, hs.size);
	memcpy(m->buf + hs.size, m->sb.data, m->sb.size);
	msgpack_sbuffer_destroy(&hs);
	msgpack_sbuffer_destroy(&m->sb);
}

static void mb_done(struct mb *m)
{
	free(m->buf);
}

/* Decodes and expects failure 'code' with 'substr' in the message. */
static void expect_fail(const void *buf, size_t len, int code, const char *substr)
{
	struct gradeq_job *job = (struct gradeq_job *)1;
	char err[256];
	int ret;

	ret = gradeq_job_decode(buf, len, &job, err, sizeof(err));
	if (ret != code || !strstr(err, substr))
		print_error("got %d '%s', want %d '%s'\n", ret, err, code, substr);
	assert_int_equal(ret, code);
	assert_null(job);
	assert_non_null(strstr(err, substr));
	assert_null(strchr(err, '\n'));
}

static void expect_mb_fail(struct mb *m, int code, const char *substr)
{
	mb_finish(m);
	expect_fail(m->buf, m->len, code, substr);
	mb_done(m);
}

/* ---- round trips ---- */

static bool contains(const char *buf, size_t len, const char *s)
{
	size_t n = strlen(s);

	for (size_t i = 0; i + n <= len; i++)
		if (memcmp(buf + i, s, n) == 0)
			return true;
	return false;
}

static void assert_job_equal(const struct gradeq_job *a, const struct gradeq_job *b, bool times)
{
	assert_string_equal(a->job_id, b->job_id);
	assert_string_equal(a->run_id, b->run_id);
	assert_string_equal(a->course_id, b->course_id);
	assert_string_equal(a->release, b->release);
	assert_int_equal(a->nusers, b->nusers);
	assert_memory_equal(a->user_ids, b->user_ids, a->nusers * sizeof(int32_t));
	if (times) {
		assert_true(a->created_us == b->created_us);
		assert_int_equal(a->seq, b->seq);
	}
}

static void test_roundtrip_schema2(void **state)
{
	struct gradeq_job in = sample_job(), *out = NULL;
	char *buf = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(gradeq_job_encode(&in, 2, &buf, &len), 0);
	assert_int_equal(gradeq_job_decode(buf, len, &out, NULL, 0), 0);
	assert_int_equal(out->schema, 2);
	assert_job_equal(&in, out, true);
	gradeq_job_free(out);
	free(buf);
}

static void test_roundtrip_schema1(void **state)
{
	struct gradeq_job in = sample_job(), *out = NULL;
	char *buf = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(gradeq_job_encode(&in, 1, &buf, &len), 0);
	assert_true(contains(buf, len, "user_ids"));
	assert_false(contains(buf, len, "created"));
	assert_int_equal(gradeq_job_decode(buf, len, &out, NULL, 0), 0);
	assert_int_equal(out->schema, 1);
	assert_job_equal(&in, out, false);
	assert_true(out->created_us == 0);
	assert_int_equal(out->seq, 0);
	gradeq_job_free(out);
	free(buf);
}

/* A body as release N-1 wrote it, built without our encoder. */
static void test_schema1_body_decodes(void **state)
{
	struct gradeq_job *out = NULL;
	struct mb m;

	(void)state;
	mb_init(&m);
	mb_valid(&m, 1, NULL);
	mb_finish(&m);
	assert_int_equal(gradeq_job_decode(m.buf, m.len, &out, NULL, 0), 0);
	assert_int_equal(out->schema, 1);
	assert_int_equal(out->nusers, 3);
	assert_int_equal(out->user_ids[2], 3);
	assert_string_equal(out->course_id, "course-v1:X+Y+Z");
	gradeq_job_free(out);
	mb_done(&m);
}

static void test_empty_users_and_extra_keys(void **state)
{
	struct gradeq_job *out = NULL;
	struct mb m;

	(void)state;
	mb_init(&m);
	mb_valid(&m, 2, "users");
	mb_users(&m, "users", NULL, 0);
	mb_str(&m, "priority", "high"); /* a later schema's key */
	mb_key(&m, "nested");
	msgpack_pack_map(&m.pk, 1);
	msgpack_pack_int(&m.pk, 1);
	msgpack_pack_nil(&m.pk);
	mb_finish(&m);
	assert_int_equal(gradeq_job_decode(m.buf, m.len, &out, NULL, 0), 0);
	assert_int_equal(out->nusers, 0);
	assert_null(out->user_ids);
	gradeq_job_free(out);
	mb_done(&m);
}

static void test_uuid_case_folded(void **state)
{
	struct gradeq_job *out = NULL;
	struct mb m;

	(void)state;
	mb_init(&m);
	mb_valid(&m, 2, "job");
	mb_str(&m, "job", "0B7C4E1A-5F0E-4D3A-9C59-2F7F0E6B1A11");
	mb_finish(&m);
	assert_int_equal(gradeq_job_decode(m.buf, m.len, &out, NULL, 0), 0);
	assert_string_equal(out->job_id, JOB_ID);
	gradeq_job_free(out);
	mb_done(&m);
}

/* ---- malformed bodies ---- */

static void test_not_msgpack(void **state)
{
	static const unsigned char reserved[] = {0xc1};
	static const unsigned char truncated[] = {0x81, 0xa6, 's', 'c'};
	static const unsigned char array[] = {0x92, 0x01, 0x02};
	static const unsigned char text[] = "{\"schema\":2}";

	(void)state;
	expect_fail("", 0, GRADEQ_ERR_DECODE, "empty");
	expect_fail(reserved, sizeof(reserved), GRADEQ_ERR_DECODE, "not msgpack");
	expect_fail(truncated, sizeof(truncated), GRADEQ_ERR_DECODE, "truncated");
	expect_fail(array, sizeof(array), GRADEQ_ERR_DECODE, "not a msgpack map");
	/* '{' is a positive fixint followed by more bytes */
	expect_fail(text, sizeof(text) - 1, GRADEQ_ERR_DECODE, "trailing bytes");
}

static void test_trailing_bytes(void **state)
{
	struct gradeq_job in = sample_job();
	char *buf = NULL, *longer;
	size_t len = 0;

	(void)state;
	assert_int_equal(gradeq_job_encode(&in, 2, &buf, &len), 0);
	longer = malloc(len + 1);
	assert_non_null(longer);
	memcpy(longer, buf, len);
	longer[len] = (char)0xc0;
	expect_fail(longer, len + 1, GRADEQ_ERR_DECODE, "trailing bytes");
	free(longer);
	free(buf);
}

static void test_missing_fields(void **state)
{
	static const char *keys2[] = {"job", "run", "course", "release", "users", "created", "seq"};
	static const char *keys1[] = {"job", "run", "course", "release", "user_ids"};
	char want[64];
	struct mb m;

	(void)state;
	for (size_t i = 0; i < sizeof(keys2) / sizeof(keys2[0]); i++) {
		mb_init(&m);
		mb_valid(&m, 2, keys2[i]);
		snprintf(want, sizeof(want), "missing key '%s'", keys2[i]);
		expect_mb_fail(&m, GRADEQ_ERR_DECODE, want);
	}
	for (size_t i = 0; i < sizeof(keys1) / sizeof(keys1[0]); i++) {
		mb_init(&m);
		mb_valid(&m, 1, keys1[i]);
		snprintf(want, sizeof(want), "missing key '%s'", keys1[i]);
		expect_mb_fail(&m, GRADEQ_ERR_DECODE, want);
	}
	mb_init(&m);
	mb_valid(&m, 2, "schema");
	expect_mb_fail(&m, GRADEQ_ERR_DECODE, "missing key 'schema'");
}

/* Schema 2 renamed user_ids: a schema 2 body with the old key is wrong. */
static void test_schema_keys_not_mixed(void **state)
{
	static const int64_t u[] = {5};
	struct mb m;

	(void)state;
	mb_init(&m);
	mb_valid(&m, 2, "users");
	mb_users(&m, "user_ids", u, 1);
	expect_mb_fail(&m, GRADEQ_ERR_DECODE, "missing key 'users'");
}

static void test_duplicate_fields(void **state)
{
	struct mb m;

	(void)state;
	mb_init(&m);
	mb_valid(&m, 2, NULL);
	mb_str(&m, "course", "other");
	expect_mb_fail(&m, GRADEQ_ERR_DECODE, "duplicate key 'course'");

	mb_init(&m);
	mb_valid(&m, 2, NULL);
	mb_int(&m, "schema", 2);
	expect_mb_fail(&m, GRADEQ_ERR_DECODE, "duplicate key 'schema'");
}

static void test_wrong_types(void **state)
{
	struct mb m;

	(void)state;
	mb_init(&m);
	mb_valid(&m, 2, "course");
	mb_int(&m, "course", 12);
	expect_mb_fail(&m, GRADEQ_ERR_DECODE, "'course' is not a string");

	mb_init(&m);
	mb_valid(&m, 2, "users");
	mb_str(&m, "users", "1,2,3");
	expect_mb_fail(&m, GRADEQ_ERR_DECODE, "'users' is not an array");

	mb_init(&m);
	mb_valid(&m, 2, "created");
	mb_str(&m, "created", "yesterday");
	expect_mb_fail(&m, GRADEQ_ERR_DECODE, "'created' is not a 64-bit integer");

	mb_init(&m);
	mb_valid(&m, 2, "seq");
	mb_int(&m, "seq", -1);
	expect_mb_fail(&m, GRADEQ_ERR_DECODE, "'seq' is not an unsigned 32-bit integer");

	mb_init(&m);
	mb_valid(&m, 2, "seq");
	mb_int(&m, "seq", 4294967296);
	expect_mb_fail(&m, GRADEQ_ERR_DECODE, "'seq'");

	mb_init(&m);
	mb_valid(&m, 2, "schema");
	mb_str(&m, "schema", "2");
	expect_mb_fail(&m, GRADEQ_ERR_DECODE, "'schema' is not an integer");

	mb_init(&m);
	mb_valid(&m, 2, NULL);
	m.n++;
	msgpack_pack_int(&m.pk, 1);
	msgpack_pack_int(&m.pk, 1);
	expect_mb_fail(&m, GRADEQ_ERR_DECODE, "is not a string");
}

static void test_bad_uuid(void **state)
{
	static const char *bad[] = {
		"0b7c4e1a-5f0e-4d3a-9c59-2f7f0e6b1a1",   /* 35 */
		"0b7c4e1a-5f0e-4d3a-9c59-2f7f0e6b1a111", /* 37 */
		"0b7c4e1a05f0e-4d3a-9c59-2f7f0e6b1a11",  /* no dash */
		"0b7c4e1g-5f0e-4d3a-9c59-2f7f0e6b1a11",  /* not hex */
		"",
	};
	struct mb m;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		mb_init(&m);
		mb_valid(&m, 2, "run");
		mb_str(&m, "run", bad[i]);
		expect_mb_fail(&m, GRADEQ_ERR_DECODE, "'run' is not a 36-character UUID");
	}
}

static void test_empty_and_nul_strings(void **state)
{
	struct mb m;

	(void)state;
	mb_init(&m);
	mb_valid(&m, 2, "course");
	mb_str(&m, "course", "");
	expect_mb_fail(&m, GRADEQ_ERR_DECODE, "'course' is empty");

	mb_init(&m);
	mb_valid(&m, 2, "release");
	mb_key(&m, "release");
	msgpack_pack_str_with_body(&m.pk, "2026\0.11", 8);
	expect_mb_fail(&m, GRADEQ_ERR_DECODE, "'release' contains a NUL byte");
}

static void test_bad_user_ids(void **state)
{
	static const int64_t zero[] = {1, 0};
	static const int64_t neg[] = {-5};
	static const int64_t big[] = {1, 2, 2147483648};
	struct mb m;

	(void)state;
	mb_init(&m);
	mb_valid(&m, 2, "users");
	mb_users(&m, "users", zero, 2);
	expect_mb_fail(&m, GRADEQ_ERR_DECODE, "'users' element 1 is not a positive int32");

	mb_init(&m);
	mb_valid(&m, 1, "user_ids");
	mb_users(&m, "user_ids", neg, 1);
	expect_mb_fail(&m, GRADEQ_ERR_DECODE, "'user_ids' element 0 is not a positive int32");

	mb_init(&m);
	mb_valid(&m, 2, "users");
	mb_users(&m, "users", big, 3);
	expect_mb_fail(&m, GRADEQ_ERR_DECODE, "element 2 is not a positive int32");

	mb_init(&m);
	mb_valid(&m, 2, "users");
	mb_key(&m, "users");
	msgpack_pack_array(&m.pk, 1);
	msgpack_pack_double(&m.pk, 3.0);
	expect_mb_fail(&m, GRADEQ_ERR_DECODE, "element 0 is not an integer");
}

static void test_too_many_users(void **state)
{
	size_t n = GRADEQ_JOB_MAX_USERS + 1;
	int64_t *u = malloc(n * sizeof(*u));
	struct mb m;

	(void)state;
	assert_non_null(u);
	for (size_t i = 0; i < n; i++)
		u[i] = (int64_t)i + 1;
	mb_init(&m);
	mb_valid(&m, 2, "users");
	mb_users(&m, "users", u, n);
	expect_mb_fail(&m, GRADEQ_ERR_DECODE, "more than 100000");

	/* the limit itself is fine */
	{
		struct gradeq_job *out = NULL;

		mb_init(&m);
		mb_valid(&m, 2, "users");
		mb_users(&m, "users", u, n - 1);
		mb_finish(&m);
		assert_int_equal(gradeq_job_decode(m.buf, m.len, &out, NULL, 0), 0);
		assert_int_equal(out->nusers, n - 1);
		gradeq_job_free(out);
		mb_done(&m);
	}
	free(u);
}

/* Five bytes that declare four billion elements must not allocate them. */
static void test_huge_declared_lengths(void **state)
{
	static const unsigned char arr32[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x01};
	static const unsigned char map32[] = {0xdf, 0x7f, 0xff, 0xff, 0xff};
	static const unsigned char str32[] = {0x81, 0xa1, 'x', 0xdb, 0xff, 0xff, 0xff, 0xf0, 'a'};
	struct mb m;

	(void)state;
	expect_fail(arr32, sizeof(arr32), GRADEQ_ERR_DECODE, "more elements than it holds");
	expect_fail(map32, sizeof(map32), GRADEQ_ERR_DECODE, "more elements than it holds");
	expect_fail(str32, sizeof(str32), GRADEQ_ERR_DECODE, "truncated");

	/* inside a valid-looking job */
	mb_init(&m);
	mb_valid(&m, 2, "users");
	mb_key(&m, "users");
	msgpack_pack_array(&m.pk, 0xffffffffu);
	msgpack_pack_int(&m.pk, 1);
	expect_mb_fail(&m, GRADEQ_ERR_DECODE, "more elements than it holds");
}

static void test_unknown_schema(void **state)
{
	struct mb m;

	(void)state;
	mb_init(&m);
	mb_valid(&m, 7, NULL);
	expect_mb_fail(&m, GRADEQ_ERR_SCHEMA, "schema 7 not accepted (this release reads 1..3)");

	mb_init(&m);
	mb_valid(&m, 0, NULL);
	expect_mb_fail(&m, GRADEQ_ERR_SCHEMA, "schema 0 not accepted");

	mb_init(&m);
	mb_valid(&m, -3, NULL);
	expect_mb_fail(&m, GRADEQ_ERR_SCHEMA, "schema -3 not accepted");

	mb_init(&m);
	mb_key(&m, "schema");
	msgpack_pack_uint64(&m.pk, UINT64_MAX);
	expect_mb_fail(&m, GRADEQ_ERR_SCHEMA, "schema 18446744073709551615 not accepted");
}

static void test_encode_refuses_bad_jobs(void **state)
{
	int32_t bad_users[] = {3, 0};
	struct gradeq_job job;
	char *buf = (char *)1;
	size_t len;

	(void)state;
	job = sample_job();
	assert_int_equal(gradeq_job_encode(&job, 4, &buf, &len), GRADEQ_ERR_SCHEMA);
	assert_null(buf);
	job.course_id = "";
	assert_int_equal(gradeq_job_encode(&job, 2, &buf, &len), GRADEQ_ERR_INVALID);
	job = sample_job();
	job.job_id[3] = 'x';
	assert_int_equal(gradeq_job_encode(&job, 2, &buf, &len), GRADEQ_ERR_INVALID);
	job = sample_job();
	job.user_ids = bad_users;
	job.nusers = 2;
	assert_int_equal(gradeq_job_encode(&job, 2, &buf, &len), GRADEQ_ERR_INVALID);
	job = sample_job();
	job.nusers = GRADEQ_JOB_MAX_USERS + 1;
	assert_int_equal(gradeq_job_encode(&job, 2, &buf, &len), GRADEQ_ERR_INVALID);
	assert_null(buf);
}

/* ---- hostile bytes ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void test_random_mutations(void **state)
{
	struct gradeq_job in = sample_job();
	char *bodies[2] = {NULL, NULL}, *mut;
	size_t lens[2] = {0, 0};
	int decoded = 0;

	(void)state;
	assert_int_equal(gradeq_job_encode(&in, 2, &bodies[0], &lens[0]), 0);
	assert_int_equal(gradeq_job_encode(&in, 1, &bodies[1], &lens[1]), 0);
	mut = malloc(lens[0] + 16);
	assert_non_null(mut);
	for (int it = 0; it < 5000; it++) {
		int b = it & 1;
		size_t len = lens[b];
		int nmut = 1 + (int)(rng() % 4);
		struct gradeq_job *out = NULL;
		char err[256];

		memcpy(mut, bodies[b], len);
		for (int k = 0; k < nmut; k++) {
			switch (rng() % 4) {
			case 0: /* any byte */ mut[rng() % len] = (char)rng(); break;
			case 1: /* a bit */ mut[rng() % len] ^= (char)(1u << (rng() % 8)); break;
			case 2: /* a length-ish byte */
				mut[rng() % len] = (char)(0xdc + rng() % 4);
				break;
			case 3: /* truncate */ len = 1 + rng() % len; break;
			}
		}
		if (gradeq_job_decode(mut, len, &out, err, sizeof(err)) == 0) {
			decoded++;
			assert_non_null(out);
			gradeq_job_free(out);
		} else {
			assert_null(out);
			assert_true(err[0] != '\0');
		}
	}
	print_message("%d of 5000 mutants still decode\n", decoded);
	free(mut);
	free(bodies[0]);
	free(bodies[1]);
}

static void test_uuid(void **state)
{
	char a[37], b[37];

	(void)state;
	gradeq_uuid(a);
	gradeq_uuid(b);
	assert_int_equal(strlen(a), 36);
	assert_string_not_equal(a, b);
	assert_int_equal(a[14], '4');
	assert_non_null(strchr("89ab", a[19]));
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23)
			assert_int_equal(a[i], '-');
		else
			assert_non_null(strchr("0123456789abcdef", a[i]));
	}
}

/* Deep nesting is a malformed body (permanent), not an out-of-memory
 * error (transient, retried for ever). */
static void test_deep_nesting(void **state)
{
	unsigned char deep[10000];
	struct mb m;

	(void)state;
	/* arrays of one array ... of nil */
	memset(deep, 0x91, sizeof(deep) - 1);
	deep[sizeof(deep) - 1] = 0xc0;
	expect_fail(deep, sizeof(deep), GRADEQ_ERR_DECODE, "not a job: msgpack nested deeper");
	expect_fail(deep + sizeof(deep) - 40, 40, GRADEQ_ERR_DECODE, "nested deeper than 8");
	/* a map of them */
	deep[0] = 0x81;
	deep[1] = 0xc0;
	expect_fail(deep, sizeof(deep), GRADEQ_ERR_DECODE, "nested deeper");
	/* within the limit, in a key a later release may add: decodes */
	mb_init(&m);
	mb_valid(&m, 2, NULL);
	mb_key(&m, "later");
	for (int i = 0; i < GRADEQ_JOB_MAX_DEPTH - 1; i++)
		msgpack_pack_array(&m.pk, 1);
	msgpack_pack_nil(&m.pk);
	mb_finish(&m);
	{
		struct gradeq_job *out = NULL;
		char err[256] = "";

		assert_int_equal(gradeq_job_decode(m.buf, m.len, &out, err, sizeof(err)), 0);
		gradeq_job_free(out);
	}
	mb_done(&m);
	/* one level more: refused */
	mb_init(&m);
	mb_valid(&m, 2, NULL);
	mb_key(&m, "later");
	for (int i = 0; i < GRADEQ_JOB_MAX_DEPTH; i++)
		msgpack_pack_array(&m.pk, 1);
	msgpack_pack_nil(&m.pk);
	expect_mb_fail(&m, GRADEQ_ERR_DECODE, "nested deeper");
}

/* Random bytes are no job, and say so; never out of memory. */
static void test_random_bytes(void **state)
{
	unsigned char buf[64];

	(void)state;
	for (int it = 0; it < 20000; it++) {
		size_t len = 1 + rng() % sizeof(buf);
		struct gradeq_job *out = NULL;
		char err[256] = "";
		int rc;

		for (size_t i = 0; i < len; i++)
			buf[i] = (unsigned char)rng();
		rc = gradeq_job_decode(buf, len, &out, err, sizeof(err));
		if (rc == 0) {
			gradeq_job_free(out);
			continue;
		}
		assert_null(out);
		if (rc != GRADEQ_ERR_DECODE && rc != GRADEQ_ERR_SCHEMA)
			fail_msg("random bytes gave %s: %s", gradeq_strerror(rc), err);
		/* not a map at all: no job, by name */
		if (!((buf[0] >= 0x80 && buf[0] <= 0x8f) || buf[0] == 0xde || buf[0] == 0xdf) &&
		    !strstr(err, "not a job"))
			fail_msg("random bytes: '%s' does not say 'not a job'", err);
	}
}

/* ---- the digest of the user ids and the check against the job row ---- */

static void test_users_digest(void **state)
{
	static const int32_t three[] = {1, 2, 3}, mixed[] = {-2, 0x01020304};
	int32_t *many = malloc(1000 * sizeof(*many));
	char hex[GRADEQ_JOB_DIGEST_HEX];

	(void)state;
	/* SHA-256 of the ids as little-endian int32, in order */
	gradeq_job_users_digest(NULL, 0, hex);
	assert_string_equal(hex,
			    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	gradeq_job_users_digest(three, 3, hex);
	assert_string_equal(hex,
			    "4636993d3e1da4e9d6b8f87b79e8f7c6d018580d52661950eabc3845c5897a4d");
	gradeq_job_users_digest(mixed, 2, hex);
	assert_string_equal(hex,
			    "ca5fe6e95ae681d0aecafe7b847f8f65a309ec5d6d677a2add488437aacfcfed");
	/* more ids than one chunk */
	assert_non_null(many);
	for (int i = 0; i < 1000; i++)
		many[i] = i + 1;
	gradeq_job_users_digest(many, 1000, hex);
	assert_string_equal(hex,
			    "d0255ff699fc2718a5e487c3e1dea502a4e332f84ea02243459eb527f5790fec");
	free(many);
}

static struct gradeq_job_record sample_record(const struct gradeq_job *job)
{
	struct gradeq_job_record rec = {.known = true, .run_known = true, .learners = 3};

	snprintf(rec.run_id, sizeof(rec.run_id), "%s", RUN_ID);
	rec.course_id = strdup(job->course_id);
	assert_non_null(rec.course_id);
	gradeq_job_users_digest(job->user_ids, job->nusers, rec.digest);
	return rec;
}

static void expect_record_check(const struct gradeq_job *job, const struct gradeq_job_record *rec,
				int code, const char *substr)
{
	int rc = gradeq_job_check_record(job, rec);

	assert_int_equal(rc, code);
	if (substr && !strstr(gradeq_errmsg(rc), substr))
		fail_msg("'%s' lacks '%s'", gradeq_errmsg(rc), substr);
}

static void test_check_record(void **state)
{
	struct gradeq_job job = sample_job();
	struct gradeq_job_record rec = sample_record(&job);
	int32_t other[] = {7, 42, 2147483646};

	(void)state;
	expect_record_check(&job, &rec, 0, NULL);
	/* same count, other ids: only the digest tells */
	job.user_ids = other;
	expect_record_check(&job, &rec, GRADEQ_ERR_INVALID,
			    "job body does not match its record: user ids differ");
	/* a row recorded before digests: run, course and count only */
	rec.digest[0] = '\0';
	expect_record_check(&job, &rec, 0, NULL);
	job.nusers = 2;
	expect_record_check(&job, &rec, GRADEQ_ERR_INVALID, "learner count differs");
	job = sample_job();
	job.course_id = "course-v1:other+X+1";
	expect_record_check(&job, &rec, GRADEQ_ERR_INVALID, "course differs");
	job = sample_job();
	snprintf(job.run_id, sizeof(job.run_id), "%s", "00000000-0000-4000-8000-000000000000");
	expect_record_check(&job, &rec, GRADEQ_ERR_INVALID, "run differs");
	/* a run gradeq never recorded */
	rec.run_known = false;
	expect_record_check(&job, &rec, GRADEQ_ERR_NOT_FOUND, "unknown job: run");
	/* a job id gradeq never recorded */
	gradeq_job_record_release(&rec);
	memset(&rec, 0, sizeof(rec));
	rec.run_known = true;
	expect_record_check(&job, &rec, GRADEQ_ERR_NOT_FOUND, "unknown job: job");
	rec.run_known = false;
	expect_record_check(&job, &rec, GRADEQ_ERR_NOT_FOUND, "unknown job: run");
	assert_false(gradeq_err_is_transient(GRADEQ_ERR_NOT_FOUND));
	assert_false(gradeq_err_is_transient(GRADEQ_ERR_INVALID));
	gradeq_job_record_release(&rec);
	gradeq_job_record_release(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_schema2),
		cmocka_unit_test(test_users_digest),
		cmocka_unit_test(test_deep_nesting),
		cmocka_unit_test(test_random_bytes),
		cmocka_unit_test(test_check_record),
		cmocka_unit_test(test_roundtrip_schema1),
		cmocka_unit_test(test_schema1_body_decodes),
		cmocka_unit_test(test_empty_users_and_extra_keys),
		cmocka_unit_test(test_uuid_case_folded),
		cmocka_unit_test(test_not_msgpack),
		cmocka_unit_test(test_trailing_bytes),
		cmocka_unit_test(test_missing_fields),
		cmocka_unit_test(test_schema_keys_not_mixed),
		cmocka_unit_test(test_duplicate_fields),
		cmocka_unit_test(test_wrong_types),
		cmocka_unit_test(test_bad_uuid),
		cmocka_unit_test(test_empty_and_nul_strings),
		cmocka_unit_test(test_bad_user_ids),
		cmocka_unit_test(test_too_many_users),
		cmocka_unit_test(test_huge_declared_lengths),
		cmocka_unit_test(test_unknown_schema),
		cmocka_unit_test(test_encode_refuses_bad_jobs),
		cmocka_unit_test(test_random_mutations),
		cmocka_unit_test(test_uuid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
