/* The message file of gradeq-replay export/import: a record keeps every
 * property, typed header and body byte through a write and a read; the
 * header, trailer and the checks of a whole file. */
#define _GNU_SOURCE /* fmemopen, open_memstream */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gradeq/err.h"
#include "gradeq/msgfile.h"

static const unsigned char body[] = {0x85, 0xa6, 's', 'c', 'h', 'e', 'm', 'a', 0x02, 0x00, 0xff};
static const unsigned char latin1[] = {'c', 'a', 'f', 0xe9}; /* not UTF-8 */

static amqp_field_value_t fv(uint8_t kind)
{
	amqp_field_value_t v;

	memset(&v, 0, sizeof(v));
	v.kind = kind;
	return v;
}

static amqp_table_entry_t entry(const char *key, amqp_field_value_t v)
{
	amqp_table_entry_t e;

	e.key = amqp_cstring_bytes(key);
	e.value = v;
	return e;
}

/* Headers of every kind, some twice, nested ones, bytes that are no UTF-8. */
static void sample(amqp_basic_properties_t *p, amqp_table_entry_t *e, amqp_field_value_t *arr,
		   amqp_table_entry_t *inner)
{
	amqp_field_value_t v;
	int n = 0;

	memset(p, 0, sizeof(*p));
	p->_flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG |
		    AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_TIMESTAMP_FLAG |
		    AMQP_BASIC_PRIORITY_FLAG | AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_APP_ID_FLAG;
	p->content_type = amqp_cstring_bytes("application/msgpack");
	p->message_id = amqp_cstring_bytes("0b7c4e1a-5f0e-4d3a-9c59-2f7f0e6b1a11");
	p->app_id = amqp_cstring_bytes("gradeq-publish/0.1.0");
	p->delivery_mode = 2;
	p->priority = 7;
	p->timestamp = 1767225600;
	v = fv(AMQP_FIELD_KIND_I64), v.value.i64 = -5000000000;
	e[n++] = entry("gradeq-attempt", v);
	v = fv(AMQP_FIELD_KIND_UTF8), v.value.bytes = amqp_cstring_bytes("boom \"quoted\"\n");
	e[n++] = entry("gradeq-error", v);
	v = fv(AMQP_FIELD_KIND_UTF8), v.value.bytes = amqp_cstring_bytes("second");
	e[n++] = entry("gradeq-error", v); /* a repeated name stays */
	v = fv(AMQP_FIELD_KIND_UTF8), v.value.bytes.bytes = (void *)latin1,
	v.value.bytes.len = sizeof(latin1);
	e[n++] = entry("latin1", v);
	v = fv(AMQP_FIELD_KIND_BYTES), v.value.bytes.bytes = (void *)body,
	v.value.bytes.len = sizeof(body);
	e[n++] = entry("raw", v);
	v = fv(AMQP_FIELD_KIND_F64), v.value.f64 = NAN;
	e[n++] = entry("nan", v);
	v = fv(AMQP_FIELD_KIND_F32), v.value.f32 = -INFINITY;
	e[n++] = entry("ninf", v);
	v = fv(AMQP_FIELD_KIND_F64), v.value.f64 = 0.1;
	e[n++] = entry("tenth", v);
	v = fv(AMQP_FIELD_KIND_DECIMAL), v.value.decimal.decimals = 2,
	v.value.decimal.value = 12345;
	e[n++] = entry("dec", v);
	v = fv(AMQP_FIELD_KIND_BOOLEAN), v.value.boolean = 1;
	e[n++] = entry("flag", v);
	v = fv(AMQP_FIELD_KIND_U8), v.value.u8 = 255;
	e[n++] = entry("u8", v);
	v = fv(AMQP_FIELD_KIND_TIMESTAMP), v.value.u64 = 1767225600;
	e[n++] = entry("time", v);
	v = fv(AMQP_FIELD_KIND_VOID);
	e[n++] = entry("nothing", v);
	inner[0] = entry("reason", fv(AMQP_FIELD_KIND_UTF8));
	inner[0].value.value.bytes = amqp_cstring_bytes("delivery_limit");
	inner[1] = entry("count", fv(AMQP_FIELD_KIND_I64));
	inner[1].value.value.i64 = 3;
	arr[0] = fv(AMQP_FIELD_KIND_TABLE);
	arr[0].value.table.num_entries = 2;
	arr[0].value.table.entries = inner;
	arr[1] = fv(AMQP_FIELD_KIND_I32);
	arr[1].value.i32 = -1;
	v = fv(AMQP_FIELD_KIND_ARRAY), v.value.array.num_entries = 2, v.value.array.entries = arr;
	e[n++] = entry("x-death", v);
	p->headers.num_entries = n;
	p->headers.entries = e;
}

static void assert_bytes(amqp_bytes_t a, const void *b, size_t len)
{
	assert_int_equal(a.len, len);
	if (len)
		assert_memory_equal(a.bytes, b, len);
}

static void assert_same_field(const amqp_field_value_t *a, const amqp_field_value_t *b)
{
	assert_int_equal(a->kind, b->kind);
	switch (a->kind) {
	case AMQP_FIELD_KIND_I64: assert_true(a->value.i64 == b->value.i64); break;
	case AMQP_FIELD_KIND_I32: assert_int_equal(a->value.i32, b->value.i32); break;
	case AMQP_FIELD_KIND_U8: assert_int_equal(a->value.u8, b->value.u8); break;
	case AMQP_FIELD_KIND_BOOLEAN: assert_int_equal(a->value.boolean, b->value.boolean); break;
	case AMQP_FIELD_KIND_TIMESTAMP: assert_true(a->value.u64 == b->value.u64); break;
	case AMQP_FIELD_KIND_UTF8:
	case AMQP_FIELD_KIND_BYTES:
		assert_bytes(a->value.bytes, b->value.bytes.bytes, b->value.bytes.len);
		break;
	case AMQP_FIELD_KIND_F64:
		assert_true((isnan(a->value.f64) && isnan(b->value.f64)) ||
			    a->value.f64 == b->value.f64);
		break;
	case AMQP_FIELD_KIND_F32: assert_true(a->value.f32 == b->value.f32); break;
	case AMQP_FIELD_KIND_DECIMAL:
		assert_int_equal(a->value.decimal.decimals, b->value.decimal.decimals);
		assert_int_equal(a->value.decimal.value, b->value.decimal.value);
		break;
	case AMQP_FIELD_KIND_ARRAY:
		assert_int_equal(a->value.array.num_entries, b->value.array.num_entries);
		for (int i = 0; i < a->value.array.num_entries; i++)
			assert_same_field(&a->value.array.entries[i], &b->value.array.entries[i]);
		break;
	case AMQP_FIELD_KIND_TABLE:
		assert_int_equal(a->value.table.num_entries, b->value.table.num_entries);
		for (int i = 0; i < a->value.table.num_entries; i++) {
			assert_bytes(a->value.table.entries[i].key,
				     b->value.table.entries[i].key.bytes,
				     b->value.table.entries[i].key.len);
			assert_same_field(&a->value.table.entries[i].value,
					  &b->value.table.entries[i].value);
		}
		break;
	default: break;
	}
}

static void test_record_round_trip(void **state)
{
	amqp_basic_properties_t p;
	amqp_table_entry_t e[16], inner[2];
	amqp_field_value_t arr[2];
	amqp_bytes_t rk = amqp_cstring_bytes("grades.2026.11");
	struct gradeq_msgfile_record rec;
	char *line = NULL;

	(void)state;
	memset(&rec, 0, sizeof(rec));
	sample(&p, e, arr, inner);
	assert_int_equal(gradeq_msgfile_record_line(&rk, &p, body, sizeof(body), &line), 0);
	assert_null(strchr(line, '\n')); /* one line */
	assert_int_equal(gradeq_msgfile_parse_line(line, strlen(line), &rec), 0);
	assert_false(rec.end);
	assert_bytes(rec.routing_key, "grades.2026.11", 14);
	assert_bytes(rec.body, body, sizeof(body));
	assert_int_equal(rec.props._flags, p._flags);
	assert_bytes(rec.props.content_type, "application/msgpack", 19);
	assert_bytes(rec.props.message_id, p.message_id.bytes, p.message_id.len);
	assert_bytes(rec.props.app_id, p.app_id.bytes, p.app_id.len);
	assert_int_equal(rec.props.delivery_mode, 2);
	assert_int_equal(rec.props.priority, 7);
	assert_true(rec.props.timestamp == p.timestamp);
	assert_int_equal(rec.props.headers.num_entries, p.headers.num_entries);
	for (int i = 0; i < p.headers.num_entries; i++) {
		assert_bytes(rec.props.headers.entries[i].key, e[i].key.bytes, e[i].key.len);
		assert_same_field(&rec.props.headers.entries[i].value, &e[i].value);
	}
	gradeq_msgfile_record_release(&rec);
	free(line);
}

static void test_empty_body_and_no_headers(void **state)
{
	amqp_basic_properties_t p;
	amqp_bytes_t rk = amqp_empty_bytes;
	struct gradeq_msgfile_record rec;
	char *line = NULL;

	(void)state;
	memset(&rec, 0, sizeof(rec));
	memset(&p, 0, sizeof(p));
	assert_int_equal(gradeq_msgfile_record_line(&rk, &p, NULL, 0, &line), 0);
	assert_string_equal(
		line, "{\"routing_key\":\"\",\"properties\":{},\"headers\":[],\"body\":\"\"}");
	assert_int_equal(gradeq_msgfile_parse_line(line, strlen(line), &rec), 0);
	assert_int_equal(rec.body.len, 0);
	assert_int_equal(rec.props._flags, 0);
	gradeq_msgfile_record_release(&rec);
	gradeq_msgfile_record_release(&rec); /* twice is fine */
	free(line);
}

static void test_malformed_lines(void **state)
{
	static const char *const invalid[] = {
		"{}",
		"[]",
		"{\"properties\":{},\"body\":\"Zg=\"}",
		"{\"properties\":[],\"body\":\"\"}",
		"{\"properties\":{\"message_id\":5},\"body\":\"\"}",
		"{\"properties\":{},\"headers\":[{\"name\":\"a\",\"type\":\"what\"}],\"body\":\"\"}",
		"{\"properties\":{},\"headers\":[{\"type\":\"i8\",\"value\":1}],\"body\":\"\"}",
		"{\"properties\":{},\"headers\":[{\"name\":\"a\",\"type\":\"bytes\"}],\"body\":\"\"}",
		"{\"properties\":{},\"headers\":[{\"name\":\"a\",\"type\":\"array\",\"value\":{}}],"
		"\"body\":\"\"}",
		"{\"properties\":{},\"headers\":[{\"name\":\"a\",\"type\":\"table\",\"value\":"
		"[{\"name\":\"b\",\"type\":\"string\",\"base64\":\"***\"}]}],\"body\":\"\"}",
	};
	struct gradeq_msgfile_record rec;

	(void)state;
	memset(&rec, 0, sizeof(rec));
	assert_int_equal(gradeq_msgfile_parse_line("{nope", 5, &rec), GRADEQ_ERR_DECODE);
	assert_int_equal(gradeq_msgfile_parse_line("", 0, &rec), GRADEQ_ERR_DECODE);
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
		assert_int_equal(gradeq_msgfile_parse_line(invalid[i], strlen(invalid[i]), &rec),
				 GRADEQ_ERR_INVALID);
	assert_null(rec.json);
	assert_null(rec.body.bytes);
}

static void test_header(void **state)
{
	char release[80];
	long v = -1;
	const char *ok =
		"{\"format\":\"gradeq-dead-letters\",\"version\":1,\"release\":\"2026.11\"}";
	const char *v2 = "{\"format\":\"gradeq-dead-letters\",\"version\":2}";
	const char *other = "{\"format\":\"csv\",\"version\":1}";

	(void)state;
	assert_int_equal(gradeq_msgfile_parse_header(ok, strlen(ok), release, sizeof(release), &v),
			 0);
	assert_string_equal(release, "2026.11");
	assert_int_equal(gradeq_msgfile_parse_header(v2, strlen(v2), release, sizeof(release), &v),
			 GRADEQ_ERR_SCHEMA);
	assert_int_equal(v, 2);
	assert_int_equal(
		gradeq_msgfile_parse_header(other, strlen(other), release, sizeof(release), &v),
		GRADEQ_ERR_INVALID);
	assert_int_equal(gradeq_msgfile_parse_header("x", 1, release, sizeof(release), &v),
			 GRADEQ_ERR_INVALID);
}

/* Writes a file of n records (and a trailer saying trailer_says, when >= 0)
 * into a malloc'd buffer. */
static char *write_file(int n, long trailer_says, size_t *len)
{
	struct gradeq_msgfile_writer w = {.name = "mem"};
	amqp_basic_properties_t p;
	amqp_bytes_t rk = amqp_cstring_bytes("k");
	char *buf = NULL;

	memset(&p, 0, sizeof(p));
	w.fp = open_memstream(&buf, len);
	assert_non_null(w.fp);
	assert_int_equal(gradeq_msgfile_write_header(&w, "2026.11", "gradeq.grades.2026.11.dead",
						     "2026-01-31T12:00:00Z", "host"),
			 0);
	for (int i = 0; i < n; i++)
		assert_int_equal(gradeq_msgfile_write_record(&w, &rk, &p, body, sizeof(body)), 0);
	if (trailer_says >= 0)
		assert_int_equal(gradeq_msgfile_write_trailer(&w, trailer_says), 0);
	fclose(w.fp);
	return buf;
}

/* Reads the buffer as a file: the header, then the check. */
static int check_buf(const char *buf, size_t len, bool force, long *records, char *release)
{
	struct gradeq_msgfile_reader r = {.name = "mem"};
	int rc;

	r.fp = fmemopen((void *)buf, len, "r");
	assert_non_null(r.fp);
	rc = gradeq_msgfile_read_header(&r, release, 80);
	if (!rc)
		rc = gradeq_msgfile_check(&r, force, records);
	gradeq_msgfile_reader_release(&r);
	fclose(r.fp);
	return rc;
}

static void test_whole_file(void **state)
{
	char release[80] = "", *buf;
	size_t len = 0;
	long records = -1;

	(void)state;
	buf = write_file(3, 3, &len);
	assert_int_equal(check_buf(buf, len, false, &records, release), 0);
	assert_int_equal(records, 3);
	assert_string_equal(release, "2026.11");
	free(buf);

	buf = write_file(0, 0, &len);
	assert_int_equal(check_buf(buf, len, false, &records, release), 0);
	assert_int_equal(records, 0);
	free(buf);

	/* cut short: refused unless forced */
	buf = write_file(2, -1, &len);
	assert_int_equal(check_buf(buf, len, false, &records, release), GRADEQ_ERR_INVALID);
	assert_non_null(strstr(gradeq_errmsg(GRADEQ_ERR_INVALID), "has no trailer"));
	assert_int_equal(check_buf(buf, len, true, &records, release), 0);
	assert_int_equal(records, 2);
	free(buf);

	buf = write_file(2, 5, &len);
	assert_int_equal(check_buf(buf, len, false, &records, release), GRADEQ_ERR_INVALID);
	assert_non_null(strstr(gradeq_errmsg(GRADEQ_ERR_INVALID), "holds 2 record(s)"));
	free(buf);
}

static void test_bad_files(void **state)
{
	static const char hdr[] = "{\"format\":\"gradeq-dead-letters\",\"version\":1}\n";
	static const char rec[] = "{\"properties\":{},\"body\":\"\"}\n";
	static const char end[] =
		"{\"format\":\"gradeq-dead-letters\",\"end\":true,\"records\":1}\n";
	char release[80], buf[512];
	long records;

	(void)state;
	snprintf(buf, sizeof(buf), "%s%s%s%s", hdr, rec, end, rec);
	assert_int_equal(check_buf(buf, strlen(buf), true, &records, release), GRADEQ_ERR_INVALID);
	assert_string_equal(gradeq_errmsg(GRADEQ_ERR_INVALID), "mem:4: record after the trailer");
	snprintf(buf, sizeof(buf), "%s%s{oops\n%s", hdr, rec, end);
	assert_int_equal(check_buf(buf, strlen(buf), true, &records, release), GRADEQ_ERR_INVALID);
	assert_string_equal(gradeq_errmsg(GRADEQ_ERR_INVALID), "mem:3: not JSON");
	snprintf(buf, sizeof(buf), "%s{\"body\":1}\n%s", hdr, end);
	assert_int_equal(check_buf(buf, strlen(buf), true, &records, release), GRADEQ_ERR_INVALID);
	assert_string_equal(gradeq_errmsg(GRADEQ_ERR_INVALID), "mem:2: malformed record");
	snprintf(buf, sizeof(buf), "{\"format\":\"gradeq-dead-letters\",\"version\":9}\n");
	assert_int_equal(check_buf(buf, strlen(buf), true, &records, release), GRADEQ_ERR_INVALID);
	assert_string_equal(gradeq_errmsg(GRADEQ_ERR_INVALID),
			    "'mem': version 9 is not supported (only 1)");
	assert_int_equal(check_buf("", 0, true, &records, release), GRADEQ_ERR_INVALID);
	assert_string_equal(gradeq_errmsg(GRADEQ_ERR_INVALID),
			    "'mem' is not a gradeq-dead-letters file");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_round_trip),
		cmocka_unit_test(test_empty_body_and_no_headers),
		cmocka_unit_test(test_malformed_lines),
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_whole_file),
		cmocka_unit_test(test_bad_files),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
