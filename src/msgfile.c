/* The JSON-lines message file of gradeq-replay (see msgfile.h). */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "gradeq/base64.h"
#include "gradeq/msgfile.h"

static const struct {
	uint8_t kind;
	const char *name;
} kinds[] = {
	{AMQP_FIELD_KIND_BOOLEAN, "bool"},
	{AMQP_FIELD_KIND_I8, "i8"},
	{AMQP_FIELD_KIND_U8, "u8"},
	{AMQP_FIELD_KIND_I16, "i16"},
	{AMQP_FIELD_KIND_U16, "u16"},
	{AMQP_FIELD_KIND_I32, "i32"},
	{AMQP_FIELD_KIND_U32, "u32"},
	{AMQP_FIELD_KIND_I64, "i64"},
	{AMQP_FIELD_KIND_U64, "u64"},
	{AMQP_FIELD_KIND_F32, "f32"},
	{AMQP_FIELD_KIND_F64, "f64"},
	{AMQP_FIELD_KIND_DECIMAL, "decimal"},
	{AMQP_FIELD_KIND_UTF8, "string"},
	{AMQP_FIELD_KIND_ARRAY, "array"},
	{AMQP_FIELD_KIND_TIMESTAMP, "timestamp"},
	{AMQP_FIELD_KIND_TABLE, "table"},
	{AMQP_FIELD_KIND_VOID, "void"},
	{AMQP_FIELD_KIND_BYTES, "bytes"},
};

static const char *kind_name(uint8_t kind)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (kinds[i].kind == kind)
			return kinds[i].name;
	return NULL;
}

static int kind_of(const char *name)
{
	for (size_t i = 0; name && i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(kinds[i].name, name) == 0)
			return kinds[i].kind;
	return -1;
}

/* --- encoding -------------------------------------------------------------- */

/* Bytes as a JSON string when they are UTF-8, else NULL. */
static json_t *bytes_json(amqp_bytes_t b)
{
	return json_stringn(b.len ? (const char *)b.bytes : "", b.len);
}

static json_t *table_json(const amqp_table_t *t);

static json_t *float_json(json_t *o, double d)
{
	char s[16];

	if (isfinite(d))
		return json_real(d);
	snprintf(s, sizeof(s), "%s", isnan(d) ? "nan" : d > 0 ? "inf" : "-inf");
	json_object_set_new(o, "special", json_string(s));
	return NULL;
}

static json_t *string_json(json_t *o, const amqp_field_value_t *v)
{
	json_t *val = v->kind == AMQP_FIELD_KIND_UTF8 ? bytes_json(v->value.bytes) : NULL;
	char *b;

	if (val)
		return val;
	b = gradeq_base64_encode(v->value.bytes.bytes, v->value.bytes.len);
	json_object_set_new(o, "base64", json_string(b ? b : ""));
	free(b);
	return NULL;
}

/* A typed field: {"type": ..., "value": ...}. */
static json_t *field_json(const amqp_field_value_t *v)
{
	const char *name = kind_name(v->kind);
	json_t *o, *val = NULL;

	if (!name)
		return NULL;
	o = json_object();
	json_object_set_new(o, "type", json_string(name));
	switch (v->kind) {
	case AMQP_FIELD_KIND_BOOLEAN: val = json_boolean(v->value.boolean); break;
	case AMQP_FIELD_KIND_I8: val = json_integer(v->value.i8); break;
	case AMQP_FIELD_KIND_U8: val = json_integer(v->value.u8); break;
	case AMQP_FIELD_KIND_I16: val = json_integer(v->value.i16); break;
	case AMQP_FIELD_KIND_U16: val = json_integer(v->value.u16); break;
	case AMQP_FIELD_KIND_I32: val = json_integer(v->value.i32); break;
	case AMQP_FIELD_KIND_U32: val = json_integer(v->value.u32); break;
	case AMQP_FIELD_KIND_I64: val = json_integer(v->value.i64); break;
	case AMQP_FIELD_KIND_U64:
	case AMQP_FIELD_KIND_TIMESTAMP: val = json_integer((json_int_t)v->value.u64); break;
	case AMQP_FIELD_KIND_F32: val = float_json(o, (double)v->value.f32); break;
	case AMQP_FIELD_KIND_F64: val = float_json(o, v->value.f64); break;
	case AMQP_FIELD_KIND_DECIMAL:
		json_object_set_new(o, "decimals", json_integer(v->value.decimal.decimals));
		val = json_integer(v->value.decimal.value);
		break;
	case AMQP_FIELD_KIND_UTF8:
	case AMQP_FIELD_KIND_BYTES: val = string_json(o, v); break;
	case AMQP_FIELD_KIND_ARRAY:
		val = json_array();
		for (int i = 0; i < v->value.array.num_entries; i++)
			json_array_append_new(val, field_json(&v->value.array.entries[i]));
		break;
	case AMQP_FIELD_KIND_TABLE: val = table_json(&v->value.table); break;
	default: break;
	}
	if (val)
		json_object_set_new(o, "value", val);
	return o;
}

/* A table as an array of {"name": ..., "type": ..., "value": ...}: order and
 * repeated names are kept. */
static json_t *table_json(const amqp_table_t *t)
{
	json_t *a = json_array();

	for (int i = 0; t && i < t->num_entries; i++) {
		json_t *f = field_json(&t->entries[i].value);
		json_t *k = bytes_json(t->entries[i].key);

		if (!f)
			f = json_object();
		json_object_set_new(f, "name", k ? k : json_string("?"));
		json_array_append_new(a, f);
	}
	return a;
}

/* The string properties, in the order they are written and read. */
static const struct {
	amqp_flags_t flag;
	size_t offset;
	const char *name;
} str_props[] = {
#define STR_PROP(flag, field)                                                                      \
	{                                                                                          \
		flag, offsetof(amqp_basic_properties_t, field), #field                             \
	}
	STR_PROP(AMQP_BASIC_CONTENT_TYPE_FLAG, content_type),
	STR_PROP(AMQP_BASIC_CONTENT_ENCODING_FLAG, content_encoding),
	STR_PROP(AMQP_BASIC_MESSAGE_ID_FLAG, message_id),
	STR_PROP(AMQP_BASIC_CORRELATION_ID_FLAG, correlation_id),
	STR_PROP(AMQP_BASIC_REPLY_TO_FLAG, reply_to),
	STR_PROP(AMQP_BASIC_EXPIRATION_FLAG, expiration),
	STR_PROP(AMQP_BASIC_TYPE_FLAG, type),
	STR_PROP(AMQP_BASIC_USER_ID_FLAG, user_id),
	STR_PROP(AMQP_BASIC_APP_ID_FLAG, app_id),
	STR_PROP(AMQP_BASIC_CLUSTER_ID_FLAG, cluster_id),
#undef STR_PROP
};

#define NSTR_PROPS (sizeof(str_props) / sizeof(str_props[0]))

static amqp_bytes_t *prop_bytes(const amqp_basic_properties_t *p, size_t i)
{
	return (amqp_bytes_t *)((char *)p + str_props[i].offset);
}

static json_t *props_json(const amqp_basic_properties_t *p)
{
	json_t *o = json_object();

	for (size_t i = 0; i < NSTR_PROPS; i++) {
		json_t *s;

		if (!(p->_flags & str_props[i].flag))
			continue;
		s = bytes_json(*prop_bytes(p, i));
		if (s) /* not UTF-8: left out, as the broker would refuse it anyway */
			json_object_set_new(o, str_props[i].name, s);
	}
	if (p->_flags & AMQP_BASIC_DELIVERY_MODE_FLAG)
		json_object_set_new(o, "delivery_mode", json_integer(p->delivery_mode));
	if (p->_flags & AMQP_BASIC_PRIORITY_FLAG)
		json_object_set_new(o, "priority", json_integer(p->priority));
	if (p->_flags & AMQP_BASIC_TIMESTAMP_FLAG)
		json_object_set_new(o, "timestamp", json_integer((json_int_t)p->timestamp));
	return o;
}

static int dump_line(json_t *o, char **out)
{
	*out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
	return *out ? 0 : GRADEQ_ERR_NOMEM;
}

int gradeq_msgfile_record_line(const amqp_bytes_t *routing_key,
			       const amqp_basic_properties_t *props, const void *body, size_t len,
			       char **out)
{
	char *b64 = gradeq_base64_encode(body, len);
	const amqp_table_t *h = (props->_flags & AMQP_BASIC_HEADERS_FLAG) ? &props->headers : NULL;
	json_t *o;
	int rc;

	*out = NULL;
	if (!b64)
		return GRADEQ_ERR_NOMEM;
	o = json_object();
	json_object_set_new(o, "routing_key", bytes_json(*routing_key));
	json_object_set_new(o, "properties", props_json(props));
	json_object_set_new(o, "headers", table_json(h));
	json_object_set_new(o, "body", json_string(b64));
	free(b64);
	rc = dump_line(o, out);
	json_decref(o);
	return rc;
}

/* --- decoding -------------------------------------------------------------- */

static int field_from_json(json_t *o, amqp_field_value_t *v, amqp_pool_t *pool);

static int table_from_json(json_t *a, amqp_table_t *t, amqp_pool_t *pool)
{
	size_t n = json_is_array(a) ? json_array_size(a) : 0;

	if (!json_is_array(a))
		return -1;
	t->num_entries = (int)n;
	t->entries = n ? amqp_pool_alloc(pool, n * sizeof(*t->entries)) : NULL;
	if (n && !t->entries)
		return -1;
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(a, i);
		json_t *name = json_object_get(e, "name");

		if (!json_is_string(name))
			return -1;
		t->entries[i].key.bytes = (void *)json_string_value(name);
		t->entries[i].key.len = json_string_length(name);
		if (field_from_json(e, &t->entries[i].value, pool))
			return -1;
	}
	return 0;
}

static int bytes_from_json(json_t *o, amqp_bytes_t *b, amqp_pool_t *pool)
{
	json_t *val = json_object_get(o, "value"), *enc = json_object_get(o, "base64");
	long n;

	if (json_is_string(val)) {
		b->bytes = (void *)json_string_value(val);
		b->len = json_string_length(val);
		return 0;
	}
	if (!json_is_string(enc))
		return -1;
	b->bytes = amqp_pool_alloc(pool, gradeq_base64_decoded_max(json_string_length(enc)));
	if (!b->bytes)
		return -1;
	n = gradeq_base64_decode(json_string_value(enc), b->bytes);
	if (n < 0)
		return -1;
	b->len = (size_t)n;
	return 0;
}

static double float_from_json(json_t *o, json_t *val)
{
	const char *sp = json_string_value(json_object_get(o, "special"));

	if (!sp)
		return json_number_value(val);
	return strcmp(sp, "nan") == 0 ? NAN : strcmp(sp, "inf") == 0 ? INFINITY : -INFINITY;
}

static int array_from_json(json_t *val, amqp_array_t *a, amqp_pool_t *pool)
{
	size_t n = json_is_array(val) ? json_array_size(val) : 0;

	if (!json_is_array(val))
		return -1;
	a->num_entries = (int)n;
	a->entries = n ? amqp_pool_alloc(pool, n * sizeof(amqp_field_value_t)) : NULL;
	if (n && !a->entries)
		return -1;
	for (size_t k = 0; k < n; k++)
		if (field_from_json(json_array_get(val, k), &a->entries[k], pool))
			return -1;
	return 0;
}

static int field_from_json(json_t *o, amqp_field_value_t *v, amqp_pool_t *pool)
{
	int kind = kind_of(json_string_value(json_object_get(o, "type")));
	json_t *val = json_object_get(o, "value");
	json_int_t i = json_is_integer(val) ? json_integer_value(val) : 0;

	if (kind < 0)
		return -1;
	v->kind = (uint8_t)kind;
	switch (kind) {
	case AMQP_FIELD_KIND_BOOLEAN: v->value.boolean = json_is_true(val); break;
	case AMQP_FIELD_KIND_I8: v->value.i8 = (int8_t)i; break;
	case AMQP_FIELD_KIND_U8: v->value.u8 = (uint8_t)i; break;
	case AMQP_FIELD_KIND_I16: v->value.i16 = (int16_t)i; break;
	case AMQP_FIELD_KIND_U16: v->value.u16 = (uint16_t)i; break;
	case AMQP_FIELD_KIND_I32: v->value.i32 = (int32_t)i; break;
	case AMQP_FIELD_KIND_U32: v->value.u32 = (uint32_t)i; break;
	case AMQP_FIELD_KIND_I64: v->value.i64 = (int64_t)i; break;
	case AMQP_FIELD_KIND_U64:
	case AMQP_FIELD_KIND_TIMESTAMP: v->value.u64 = (uint64_t)i; break;
	case AMQP_FIELD_KIND_F32: v->value.f32 = (float)float_from_json(o, val); break;
	case AMQP_FIELD_KIND_F64: v->value.f64 = float_from_json(o, val); break;
	case AMQP_FIELD_KIND_DECIMAL:
		v->value.decimal.decimals =
			(uint8_t)json_integer_value(json_object_get(o, "decimals"));
		v->value.decimal.value = (uint32_t)i;
		break;
	case AMQP_FIELD_KIND_UTF8:
	case AMQP_FIELD_KIND_BYTES: return bytes_from_json(o, &v->value.bytes, pool);
	case AMQP_FIELD_KIND_ARRAY: return array_from_json(val, &v->value.array, pool);
	case AMQP_FIELD_KIND_TABLE: return table_from_json(val, &v->value.table, pool);
	default: break;
	}
	return 0;
}

static int props_from_json(json_t *p, amqp_basic_properties_t *props)
{
	json_t *n;

	for (size_t i = 0; i < NSTR_PROPS; i++) {
		json_t *s = json_object_get(p, str_props[i].name);
		amqp_bytes_t *dst = prop_bytes(props, i);

		if (!s)
			continue;
		if (!json_is_string(s))
			return -1;
		dst->bytes = (void *)json_string_value(s);
		dst->len = json_string_length(s);
		props->_flags |= str_props[i].flag;
	}
	if ((n = json_object_get(p, "delivery_mode"))) {
		props->delivery_mode = (uint8_t)json_integer_value(n);
		props->_flags |= AMQP_BASIC_DELIVERY_MODE_FLAG;
	}
	if ((n = json_object_get(p, "priority"))) {
		props->priority = (uint8_t)json_integer_value(n);
		props->_flags |= AMQP_BASIC_PRIORITY_FLAG;
	}
	if ((n = json_object_get(p, "timestamp"))) {
		props->timestamp = (uint64_t)json_integer_value(n);
		props->_flags |= AMQP_BASIC_TIMESTAMP_FLAG;
	}
	return 0;
}

/* Fills rec's properties (pointing into rec's JSON and pool) and body
 * (malloc'd) from a record object; -1 when it is malformed. */
static int record_from_json(json_t *o, struct gradeq_msgfile_record *rec)
{
	json_t *p = json_object_get(o, "properties"), *h = json_object_get(o, "headers");
	json_t *rk = json_object_get(o, "routing_key");
	const char *b = json_string_value(json_object_get(o, "body"));
	long len;

	if (!json_is_object(p) || !b || props_from_json(p, &rec->props))
		return -1;
	if (json_is_string(rk)) {
		rec->routing_key.bytes = (void *)json_string_value(rk);
		rec->routing_key.len = json_string_length(rk);
	}
	if (h && json_array_size(h)) {
		if (table_from_json(h, &rec->props.headers, &rec->pool))
			return -1;
		rec->props._flags |= AMQP_BASIC_HEADERS_FLAG;
	}
	rec->body.bytes = malloc(gradeq_base64_decoded_max(strlen(b)));
	if (!rec->body.bytes)
		return -1;
	len = gradeq_base64_decode(b, rec->body.bytes);
	if (len < 0)
		return -1;
	rec->body.len = (size_t)len;
	return 0;
}

void gradeq_msgfile_record_release(struct gradeq_msgfile_record *rec)
{
	if (rec->pool_ready)
		empty_amqp_pool(&rec->pool);
	free(rec->body.bytes);
	json_decref(rec->json);
	memset(rec, 0, sizeof(*rec));
}

int gradeq_msgfile_parse_line(const char *line, size_t len, struct gradeq_msgfile_record *rec)
{
	json_error_t e;
	json_t *o;

	gradeq_msgfile_record_release(rec);
	o = json_loadb(line, len, 0, &e);
	if (!o)
		return GRADEQ_ERR_DECODE;
	rec->json = o;
	if (json_is_true(json_object_get(o, "end"))) {
		rec->end = true;
		rec->records = (long)json_integer_value(json_object_get(o, "records"));
		return 0;
	}
	init_amqp_pool(&rec->pool, 4096);
	rec->pool_ready = true;
	if (record_from_json(o, rec)) {
		gradeq_msgfile_record_release(rec);
		return GRADEQ_ERR_INVALID;
	}
	return 0;
}

int gradeq_msgfile_parse_header(const char *line, size_t len, char *release, size_t rlen,
				long *version_seen)
{
	json_error_t e;
	json_t *o = json_loadb(line, len, 0, &e);
	const char *format = json_string_value(json_object_get(o, "format"));
	int rc = 0;

	*version_seen = 0;
	if (!o || !format || strcmp(format, GRADEQ_MSGFILE_FORMAT) != 0) {
		rc = GRADEQ_ERR_INVALID;
		goto out;
	}
	*version_seen = (long)json_integer_value(json_object_get(o, "version"));
	if (*version_seen != GRADEQ_MSGFILE_VERSION) {
		rc = GRADEQ_ERR_SCHEMA;
		goto out;
	}
	snprintf(release, rlen, "%s", json_string_value(json_object_get(o, "release")) ?: "");
out:
	json_decref(o);
	return rc;
}

/* --- files ----------------------------------------------------------------- */

static int write_text(struct gradeq_msgfile_writer *w, const char *s)
{
	if (fputs(s, w->fp) == EOF || fputc('\n', w->fp) == EOF)
		return gradeq_error(GRADEQ_ERR_IO, "writing '%s': %s", w->name, strerror(errno));
	return 0;
}

static int write_json(struct gradeq_msgfile_writer *w, json_t *o)
{
	char *s = NULL;
	int rc = dump_line(o, &s);

	json_decref(o);
	if (rc)
		return gradeq_error(rc, "cannot write a record");
	rc = write_text(w, s);
	free(s);
	return rc;
}

int gradeq_msgfile_write_header(struct gradeq_msgfile_writer *w, const char *release,
				const char *queue, const char *at, const char *by)
{
	json_t *o = json_object();

	json_object_set_new(o, "format", json_string(GRADEQ_MSGFILE_FORMAT));
	json_object_set_new(o, "version", json_integer(GRADEQ_MSGFILE_VERSION));
	json_object_set_new(o, "release", json_string(release));
	json_object_set_new(o, "queue", json_string(queue));
	json_object_set_new(o, "exported_at", json_string(at));
	json_object_set_new(o, "exported_by", json_string(by));
	return write_json(w, o);
}

int gradeq_msgfile_write_record(struct gradeq_msgfile_writer *w, const amqp_bytes_t *routing_key,
				const amqp_basic_properties_t *props, const void *body, size_t len)
{
	char *s = NULL;
	int rc = gradeq_msgfile_record_line(routing_key, props, body, len, &s);

	if (rc)
		return gradeq_error(rc, "out of memory");
	rc = write_text(w, s);
	free(s);
	return rc;
}

int gradeq_msgfile_write_trailer(struct gradeq_msgfile_writer *w, long records)
{
	json_t *o = json_object();

	json_object_set_new(o, "format", json_string(GRADEQ_MSGFILE_FORMAT));
	json_object_set_new(o, "end", json_true());
	json_object_set_new(o, "records", json_integer(records));
	return write_json(w, o);
}

int gradeq_msgfile_sync(struct gradeq_msgfile_writer *w)
{
	if (fflush(w->fp) || (w->fp != stdout && fsync(fileno(w->fp))))
		return gradeq_error(GRADEQ_ERR_IO, "writing '%s': %s", w->name, strerror(errno));
	return 0;
}

void gradeq_msgfile_reader_release(struct gradeq_msgfile_reader *r)
{
	free(r->line);
	r->line = NULL;
	r->cap = 0;
}

/* The next line into r->line: its length, or -1 at the end. */
static ssize_t next_line(struct gradeq_msgfile_reader *r)
{
	ssize_t n = getline(&r->line, &r->cap, r->fp);

	if (n >= 0)
		r->lineno++;
	return n;
}

int gradeq_msgfile_read_header(struct gradeq_msgfile_reader *r, char *release, size_t rlen)
{
	ssize_t n = next_line(r);
	long version = 0;
	int rc = n < 0 ? GRADEQ_ERR_INVALID
		       : gradeq_msgfile_parse_header(r->line, (size_t)n, release, rlen, &version);

	if (rc == 0)
		return 0;
	if (rc == GRADEQ_ERR_SCHEMA)
		return gradeq_error(GRADEQ_ERR_INVALID,
				    "'%s': version %ld is not supported (only %d)", r->name,
				    version, GRADEQ_MSGFILE_VERSION);
	return gradeq_error(GRADEQ_ERR_INVALID, "'%s' is not a " GRADEQ_MSGFILE_FORMAT " file",
			    r->name);
}

int gradeq_msgfile_read(struct gradeq_msgfile_reader *r, struct gradeq_msgfile_record *rec,
			bool *eof)
{
	ssize_t n = next_line(r);
	int rc;

	gradeq_msgfile_record_release(rec);
	*eof = n < 0;
	if (n < 0)
		return 0;
	rc = gradeq_msgfile_parse_line(r->line, (size_t)n, rec);
	if (rc == GRADEQ_ERR_DECODE)
		return gradeq_error(GRADEQ_ERR_INVALID, "%s:%ld: not JSON", r->name, r->lineno);
	if (rc)
		return gradeq_error(GRADEQ_ERR_INVALID, "%s:%ld: malformed record", r->name,
				    r->lineno);
	return 0;
}

int gradeq_msgfile_check(struct gradeq_msgfile_reader *r, bool force, long *records)
{
	struct gradeq_msgfile_record rec;
	long n = 0, want = -1;
	ssize_t len;
	int rc = 0;

	memset(&rec, 0, sizeof(rec));
	while ((len = next_line(r)) >= 0) {
		rc = gradeq_msgfile_parse_line(r->line, (size_t)len, &rec);
		if (rc == GRADEQ_ERR_DECODE) {
			rc = gradeq_error(GRADEQ_ERR_INVALID, "%s:%ld: not JSON", r->name,
					  r->lineno);
			break;
		}
		if (!rc && rec.end) {
			want = rec.records;
			continue;
		}
		if (want >= 0) {
			rc = gradeq_error(GRADEQ_ERR_INVALID, "%s:%ld: record after the trailer",
					  r->name, r->lineno);
			break;
		}
		if (rc) {
			rc = gradeq_error(GRADEQ_ERR_INVALID, "%s:%ld: malformed record", r->name,
					  r->lineno);
			break;
		}
		n++;
	}
	gradeq_msgfile_record_release(&rec);
	if (rc)
		return rc;
	if (want < 0 && !force)
		return gradeq_error(GRADEQ_ERR_INVALID,
				    "'%s' has no trailer (cut short?): nothing imported; --force "
				    "imports its %ld record(s)",
				    r->name, n);
	if (want >= 0 && want != n)
		return gradeq_error(
			GRADEQ_ERR_INVALID,
			"'%s' holds %ld record(s) but its trailer says %ld: nothing imported",
			r->name, n, want);
	*records = n;
	return 0;
}
