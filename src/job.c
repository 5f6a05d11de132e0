/* The job codec (DESIGN.md section 4). One table of per-schema field specs
 * drives both the encoder and the decoder, so a new schema is a new row. */
#include "gradeq/job.h"

#include <errno.h>
#include <inttypes.h>
#include <msgpack.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "gradeq/jobtype.h"
#include "gradeq/limits.h"

enum field_kind {
	F_SCHEMA, /* positive integer, the version itself */
	F_UUID,   /* 36-char UUID text into a char[37] */
	F_STR,    /* non-empty string without NUL into a char * */
	F_USERS,  /* array of positive int32 into user_ids/nusers */
	F_INT64,  /* signed 64-bit integer */
	F_UINT32, /* unsigned 32-bit integer */
	F_TYPE,   /* a registered job type's name into a jobtype pointer */
	F_ARGS,   /* the type's own map, read by the type's decoder */
};

struct field {
	const char *key;
	enum field_kind kind;
	size_t offset; /* into struct gradeq_job */
	bool optional; /* may be absent (F_ARGS: only types with args have it) */
};

struct schema {
	int version;
	const struct field *fields;
	size_t nfields;
};

#define FIELD(k, kind, member)                                                                     \
	{                                                                                          \
		k, kind, offsetof(struct gradeq_job, member), false                                \
	}
#define OPTFIELD(k, kind, member)                                                                  \
	{                                                                                          \
		k, kind, offsetof(struct gradeq_job, member), true                                 \
	}

/* Release N-1: users under "user_ids", no creation time or sequence. */
static const struct field schema1_fields[] = {
	FIELD("schema", F_SCHEMA, schema), FIELD("job", F_UUID, job_id),
	FIELD("run", F_UUID, run_id),      FIELD("course", F_STR, course_id),
	FIELD("release", F_STR, release),  FIELD("user_ids", F_USERS, user_ids),
};

static const struct field schema2_fields[] = {
	FIELD("schema", F_SCHEMA, schema),     FIELD("job", F_UUID, job_id),
	FIELD("run", F_UUID, run_id),          FIELD("course", F_STR, course_id),
	FIELD("release", F_STR, release),      FIELD("users", F_USERS, user_ids),
	FIELD("created", F_INT64, created_us), FIELD("seq", F_UINT32, seq),
};

/* Release N: the job type, and the type's own fields under "args". */
static const struct field schema3_fields[] = {
	FIELD("schema", F_SCHEMA, schema),     FIELD("job", F_UUID, job_id),
	FIELD("run", F_UUID, run_id),          FIELD("course", F_STR, course_id),
	FIELD("release", F_STR, release),      FIELD("users", F_USERS, user_ids),
	FIELD("created", F_INT64, created_us), FIELD("seq", F_UINT32, seq),
	FIELD("type", F_TYPE, type),           OPTFIELD("args", F_ARGS, args),
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_FIELDS 16

/* Every schema this release reads, GRADEQ_SCHEMA_MIN..GRADEQ_SCHEMA_VERSION. */
static const struct schema schemas[] = {
	{1, schema1_fields, NELEM(schema1_fields)},
	{2, schema2_fields, NELEM(schema2_fields)},
	{3, schema3_fields, NELEM(schema3_fields)},
};

_Static_assert(NELEM(schema1_fields) <= MAX_FIELDS && NELEM(schema2_fields) <= MAX_FIELDS &&
		       NELEM(schema3_fields) <= MAX_FIELDS,
	       "raise MAX_FIELDS");

const struct gradeq_jobtype *gradeq_job_type(const struct gradeq_job *job)
{
	return job->type ? job->type : gradeq_jobtype_default();
}

const char *gradeq_job_type_name(const struct gradeq_job *job)
{
	return gradeq_job_type(job)->name;
}

static const struct schema *schema_find(int64_t version)
{
	for (size_t i = 0; i < NELEM(schemas); i++)
		if (schemas[i].version == version)
			return &schemas[i];
	return NULL;
}

/* Fills err (when given) and the error model's detail; returns code. */
static int job_fail(int code, char *err, size_t errlen, const char *fmt, ...) GRADEQ_PRINTF(4, 5);

static int job_fail(int code, char *err, size_t errlen, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (err && errlen)
		snprintf(err, errlen, "%s", msg);
	return gradeq_error(code, "%s", msg);
}

static bool uuid_valid(const char *s, size_t len)
{
	if (len != 36)
		return false;
	for (size_t i = 0; i < 36; i++) {
		char c = s[i];

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return false;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			     (c >= 'A' && c <= 'F'))) {
			return false;
		}
	}
	return true;
}

/* ---- encoding ---- */

/* The encoder refuses what the decoder would refuse, so every body we
 * publish is one the consumers read. */
static int job_check(const struct gradeq_job *job, int schema)
{
	const struct gradeq_jobtype *type = gradeq_job_type(job);

	if (schema < 3 && type != gradeq_jobtype_default())
		return gradeq_error(GRADEQ_ERR_INVALID,
				    "a job of type %s needs schema 3 or later (asked: %d)",
				    type->name, schema);
	if (type->decode_args && !job->args)
		return gradeq_error(GRADEQ_ERR_INVALID, "a job of type %s needs its args",
				    type->name);
	if (!type->decode_args && job->args)
		return gradeq_error(GRADEQ_ERR_INVALID, "a job of type %s has no args", type->name);
	if (job->args && type->check_args) {
		int rc = type->check_args(job->args);

		if (rc < 0)
			return rc;
	}
	if (!uuid_valid(job->job_id, strnlen(job->job_id, sizeof(job->job_id))))
		return gradeq_error(GRADEQ_ERR_INVALID, "job id is not a UUID");
	if (!uuid_valid(job->run_id, strnlen(job->run_id, sizeof(job->run_id))))
		return gradeq_error(GRADEQ_ERR_INVALID, "run id is not a UUID");
	if (!job->course_id || !*job->course_id)
		return gradeq_error(GRADEQ_ERR_INVALID, "job has no course");
	if (!job->release || !*job->release)
		return gradeq_error(GRADEQ_ERR_INVALID, "job has no release");
	if (job->nusers > GRADEQ_JOB_MAX_USERS)
		return gradeq_error(GRADEQ_ERR_INVALID, "job has %zu users, more than %d",
				    job->nusers, GRADEQ_JOB_MAX_USERS);
	if (job->nusers && !job->user_ids)
		return gradeq_error(GRADEQ_ERR_INVALID, "job has no user id array");
	for (size_t i = 0; i < job->nusers; i++)
		if (job->user_ids[i] <= 0)
			return gradeq_error(GRADEQ_ERR_INVALID,
					    "user id %" PRId32 " is not positive",
					    job->user_ids[i]);
	return 0;
}

static int pack_cstr(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);

	if (msgpack_pack_str(pk, n) < 0 || msgpack_pack_str_body(pk, s, n) < 0)
		return -1;
	return 0;
}

static int pack_field(msgpack_packer *pk, const struct field *f, const struct gradeq_job *job,
		      int schema)
{
	const char *base = (const char *)job;

	if (pack_cstr(pk, f->key) < 0)
		return -1;
	switch (f->kind) {
	case F_SCHEMA: return msgpack_pack_int(pk, schema);
	case F_UUID: return pack_cstr(pk, base + f->offset);
	case F_STR: return pack_cstr(pk, *(char *const *)(const void *)(base + f->offset));
	case F_USERS:
		if (msgpack_pack_array(pk, job->nusers) < 0)
			return -1;
		for (size_t i = 0; i < job->nusers; i++)
			if (msgpack_pack_int32(pk, job->user_ids[i]) < 0)
				return -1;
		return 0;
	case F_INT64:
		return msgpack_pack_int64(pk, *(const int64_t *)(const void *)(base + f->offset));
	case F_UINT32:
		return msgpack_pack_uint32(pk, *(const uint32_t *)(const void *)(base + f->offset));
	case F_TYPE: return pack_cstr(pk, gradeq_job_type_name(job));
	case F_ARGS: return gradeq_job_type(job)->encode_args(pk, job->args);
	}
	return -1;
}

static uint32_t nopt(const struct schema *spec)
{
	uint32_t n = 0;

	for (size_t i = 0; i < spec->nfields; i++)
		n += spec->fields[i].optional;
	return n;
}

int gradeq_job_encode(const struct gradeq_job *job, int schema, char **buf, size_t *len)
{
	const struct schema *spec;
	msgpack_sbuffer sbuf;
	msgpack_packer pk;
	int ret = GRADEQ_ERR_NOMEM;

	*buf = NULL;
	*len = 0;
	spec = schema_find(schema);
	if (!spec)
		return gradeq_error(GRADEQ_ERR_SCHEMA,
				    "schema %d not written (this release writes %d..%d)", schema,
				    GRADEQ_SCHEMA_MIN, GRADEQ_SCHEMA_VERSION);
	ret = job_check(job, schema);
	if (ret < 0)
		return ret;

	msgpack_sbuffer_init(&sbuf);
	msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
	ret = GRADEQ_ERR_NOMEM;
	if (msgpack_pack_map(&pk, spec->nfields - (job->args ? 0 : nopt(spec))) < 0)
		goto out;
	for (size_t i = 0; i < spec->nfields; i++) {
		/* the only optional field is the args, written when there are some */
		if (spec->fields[i].optional && !job->args)
			continue;
		if (pack_field(&pk, &spec->fields[i], job, schema) < 0)
			goto out;
	}
	*len = sbuf.size;
	*buf = msgpack_sbuffer_release(&sbuf);
	ret = 0;
out:
	msgpack_sbuffer_destroy(&sbuf);
	if (ret < 0)
		gradeq_error(ret, "cannot encode job: out of memory");
	return ret;
}

/* ---- decoding ---- */

/* Length of the raw payload (str, bin, ext) after a header, from the bytes
 * that follow the type byte. */
static uint64_t be_read(const unsigned char *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

/* Walks one msgpack object without building it. msgpack-c allocates
 * arrays and maps by their declared length before it sees the elements,
 * so five hostile bytes could ask for gigabytes: this pass refuses a body
 * unless everything it declares fits in the bytes that are there (each
 * pending element needs at least one byte), nests no deeper than
 * GRADEQ_JOB_MAX_DEPTH (msgpack-c would report a deeper one as out of
 * memory, which is no reason to retry), and finds trailing bytes. */
static int msgpack_prescan(const unsigned char *p, size_t len, const char **why)
{
	/* left[d]: elements still to read in the container at depth d */
	uint64_t left[GRADEQ_JOB_MAX_DEPTH + 1];
	uint64_t pending = 1;
	size_t pos = 0;
	int depth = 0;

	left[0] = 1;
	while (pending > 0) {
		unsigned char t;
		uint64_t skip = 0, children = 0;
		int hdr = 0; /* bytes of length field after the type byte */

		while (left[depth] == 0)
			depth--;
		if (pos >= len) {
			*why = "body is not a job: truncated msgpack";
			return -1;
		}
		t = p[pos++];
		pending--;
		left[depth]--;
		if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) {
			/* fixint, nil, bool */
		} else if (t >= 0x80 && t <= 0x8f) {
			children = 2u * (t & 0x0fu);
		} else if (t >= 0x90 && t <= 0x9f) {
			children = t & 0x0fu;
		} else if (t >= 0xa0 && t <= 0xbf) {
			skip = t & 0x1fu;
		} else {
			switch (t) {
			case 0xcc:
			case 0xd0: skip = 1; break;
			case 0xcd:
			case 0xd1: skip = 2; break;
			case 0xca:
			case 0xce:
			case 0xd2: skip = 4; break;
			case 0xcb:
			case 0xcf:
			case 0xd3: skip = 8; break;
			case 0xd4: skip = 2; break;
			case 0xd5: skip = 3; break;
			case 0xd6: skip = 5; break;
			case 0xd7: skip = 9; break;
			case 0xd8: skip = 17; break;
			case 0xc4:
			case 0xd9: hdr = 1; break;
			case 0xc5:
			case 0xda: hdr = 2; break;
			case 0xc6:
			case 0xdb: hdr = 4; break;
			case 0xc7: hdr = 1; break; /* ext 8: length, then type byte */
			case 0xc8: hdr = 2; break;
			case 0xc9: hdr = 4; break;
			case 0xdc:
			case 0xde: hdr = 2; break;
			case 0xdd:
			case 0xdf: hdr = 4; break;
			default: *why = "body is not a job: not msgpack (reserved byte)"; return -1;
			}
			if (hdr) {
				uint64_t n;

				if (len - pos < (size_t)hdr) {
					*why = "body is not a job: truncated msgpack";
					return -1;
				}
				n = be_read(p + pos, hdr);
				pos += (size_t)hdr;
				if (t == 0xdc || t == 0xdd)
					children = n;
				else if (t == 0xde || t == 0xdf)
					children = 2 * n;
				else
					skip = n + (t >= 0xc7 && t <= 0xc9 ? 1 : 0);
			}
		}
		if (skip > len - pos) {
			*why = "body is not a job: truncated msgpack";
			return -1;
		}
		pos += (size_t)skip;
		pending += children;
		if (pending > len - pos) {
			*why = "body is not a job: it declares more elements than it holds";
			return -1;
		}
		if (children) {
			if (depth + 1 > GRADEQ_JOB_MAX_DEPTH) {
				*why = "body is not a job: msgpack nested deeper than " GRADEQ_STR(
					GRADEQ_JOB_MAX_DEPTH) " levels";
				return -1;
			}
			left[++depth] = children;
		}
	}
	if (pos != len) {
		*why = "body is not a job: trailing bytes after its msgpack object";
		return -1;
	}
	return 0;
}

static bool key_is(const msgpack_object *k, const char *name)
{
	size_t n = strlen(name);

	return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
	       memcmp(k->via.str.ptr, name, n) == 0;
}

/* Reads any msgpack integer as int64; false when it is not one or does
 * not fit. */
static bool obj_int64(const msgpack_object *o, int64_t *v)
{
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		if (o->via.u64 > INT64_MAX)
			return false;
		*v = (int64_t)o->via.u64;
		return true;
	}
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		*v = o->via.i64;
		return true;
	}
	return false;
}

static int decode_str(const struct field *f, const msgpack_object *v, char **dst, char *err,
		      size_t errlen)
{
	if (v->type != MSGPACK_OBJECT_STR)
		return job_fail(GRADEQ_ERR_DECODE, err, errlen, "'%s' is not a string", f->key);
	if (v->via.str.size == 0)
		return job_fail(GRADEQ_ERR_DECODE, err, errlen, "'%s' is empty", f->key);
	if (memchr(v->via.str.ptr, '\0', v->via.str.size))
		return job_fail(GRADEQ_ERR_DECODE, err, errlen, "'%s' contains a NUL byte", f->key);
	*dst = malloc(v->via.str.size + 1);
	if (!*dst)
		return job_fail(GRADEQ_ERR_NOMEM, err, errlen, "out of memory decoding '%s'",
				f->key);
	memcpy(*dst, v->via.str.ptr, v->via.str.size);
	(*dst)[v->via.str.size] = '\0';
	return 0;
}

static int decode_uuid(const struct field *f, const msgpack_object *v, char *dst, char *err,
		       size_t errlen)
{
	if (v->type != MSGPACK_OBJECT_STR)
		return job_fail(GRADEQ_ERR_DECODE, err, errlen, "'%s' is not a string", f->key);
	if (!uuid_valid(v->via.str.ptr, v->via.str.size))
		return job_fail(GRADEQ_ERR_DECODE, err, errlen, "'%s' is not a 36-character UUID",
				f->key);
	/* One spelling per id: ids become message ids and database keys. */
	for (size_t i = 0; i < 36; i++) {
		char c = v->via.str.ptr[i];

		dst[i] = (c >= 'A' && c <= 'F') ? (char)(c - 'A' + 'a') : c;
	}
	dst[36] = '\0';
	return 0;
}

static int decode_users(const struct field *f, const msgpack_object *v, struct gradeq_job *job,
			char *err, size_t errlen)
{
	const msgpack_object_array *a = &v->via.array;

	if (v->type != MSGPACK_OBJECT_ARRAY)
		return job_fail(GRADEQ_ERR_DECODE, err, errlen, "'%s' is not an array", f->key);
	if (a->size > GRADEQ_JOB_MAX_USERS)
		return job_fail(GRADEQ_ERR_DECODE, err, errlen,
				"'%s' has %" PRIu32 " user ids, more than %d", f->key, a->size,
				GRADEQ_JOB_MAX_USERS);
	for (uint32_t i = 0; i < a->size; i++) {
		const msgpack_object *e = &a->ptr[i];

		if (e->type != MSGPACK_OBJECT_POSITIVE_INTEGER &&
		    e->type != MSGPACK_OBJECT_NEGATIVE_INTEGER)
			return job_fail(GRADEQ_ERR_DECODE, err, errlen,
					"'%s' element %" PRIu32 " is not an integer", f->key, i);
		if (e->type == MSGPACK_OBJECT_NEGATIVE_INTEGER || e->via.u64 == 0 ||
		    e->via.u64 > INT32_MAX)
			return job_fail(GRADEQ_ERR_DECODE, err, errlen,
					"'%s' element %" PRIu32 " is not a positive int32", f->key,
					i);
	}
	job->nusers = a->size;
	if (a->size == 0)
		return 0;
	job->user_ids = malloc(a->size * sizeof(*job->user_ids));
	if (!job->user_ids)
		return job_fail(GRADEQ_ERR_NOMEM, err, errlen, "out of memory decoding '%s'",
				f->key);
	for (uint32_t i = 0; i < a->size; i++)
		job->user_ids[i] = (int32_t)a->ptr[i].via.u64;
	return 0;
}

static int decode_type(const struct field *f, const msgpack_object *v, struct gradeq_job *job,
		       char *err, size_t errlen)
{
	if (v->type != MSGPACK_OBJECT_STR)
		return job_fail(GRADEQ_ERR_DECODE, err, errlen, "'%s' is not a string", f->key);
	job->type = gradeq_jobtype_find(v->via.str.ptr, v->via.str.size);
	if (!job->type) {
		/* the name is the sender's: shown only when it is plain text */
		bool plain = v->via.str.size <= GRADEQ_JOBTYPE_NAME_MAX;

		for (uint32_t i = 0; plain && i < v->via.str.size; i++)
			plain = v->via.str.ptr[i] > ' ' && v->via.str.ptr[i] < 0x7f;
		if (plain)
			return job_fail(GRADEQ_ERR_DECODE, err, errlen, "unknown job type '%.*s'",
					(int)v->via.str.size, v->via.str.ptr);
		return job_fail(GRADEQ_ERR_DECODE, err, errlen, "unknown job type");
	}
	return 0;
}

static int decode_field(const struct field *f, const msgpack_object *v, struct gradeq_job *job,
			char *err, size_t errlen)
{
	char *base = (char *)job;
	int64_t n;

	switch (f->kind) {
	case F_SCHEMA: return 0; /* read before the spec was chosen */
	case F_UUID: return decode_uuid(f, v, base + f->offset, err, errlen);
	case F_STR: return decode_str(f, v, (char **)(void *)(base + f->offset), err, errlen);
	case F_USERS: return decode_users(f, v, job, err, errlen);
	case F_INT64:
		if (!obj_int64(v, &n))
			return job_fail(GRADEQ_ERR_DECODE, err, errlen,
					"'%s' is not a 64-bit integer", f->key);
		*(int64_t *)(void *)(base + f->offset) = n;
		return 0;
	case F_UINT32:
		if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 > UINT32_MAX)
			return job_fail(GRADEQ_ERR_DECODE, err, errlen,
					"'%s' is not an unsigned 32-bit integer", f->key);
		*(uint32_t *)(void *)(base + f->offset) = (uint32_t)v->via.u64;
		return 0;
	case F_TYPE: return decode_type(f, v, job, err, errlen);
	case F_ARGS: return 0; /* read by the type, once the type is known */
	}
	return job_fail(GRADEQ_ERR_DECODE, err, errlen, "'%s' has an unknown kind", f->key);
}

/* Finds the schema version: every key must be a string, "schema" must be
 * there once and be an integer this release reads. */
static int decode_schema(const msgpack_object_map *m, const struct schema **spec, char *err,
			 size_t errlen)
{
	const msgpack_object *val = NULL;
	int64_t v;

	for (uint32_t i = 0; i < m->size; i++) {
		if (m->ptr[i].key.type != MSGPACK_OBJECT_STR)
			return job_fail(GRADEQ_ERR_DECODE, err, errlen,
					"map key %" PRIu32 " is not a string", i);
		if (!key_is(&m->ptr[i].key, "schema"))
			continue;
		if (val)
			return job_fail(GRADEQ_ERR_DECODE, err, errlen, "duplicate key 'schema'");
		val = &m->ptr[i].val;
	}
	if (!val)
		return job_fail(GRADEQ_ERR_DECODE, err, errlen, "missing key 'schema'");
	if (!obj_int64(val, &v)) {
		if (val->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
			return job_fail(GRADEQ_ERR_SCHEMA, err, errlen,
					"schema %" PRIu64
					" not accepted (this release reads %d..%d)",
					val->via.u64, GRADEQ_SCHEMA_MIN, GRADEQ_SCHEMA_VERSION);
		return job_fail(GRADEQ_ERR_DECODE, err, errlen, "'schema' is not an integer");
	}
	*spec = schema_find(v);
	if (!*spec)
		return job_fail(GRADEQ_ERR_SCHEMA, err, errlen,
				"schema %" PRId64 " not accepted (this release reads %d..%d)", v,
				GRADEQ_SCHEMA_MIN, GRADEQ_SCHEMA_VERSION);
	return 0;
}

/* The type's own fields, by the type's own decoder. */
static int decode_args(struct gradeq_job *job, const msgpack_object *args, char *err, size_t errlen)
{
	const struct gradeq_jobtype *type;

	if (!job->type)
		job->type = gradeq_jobtype_default(); /* schemas 1 and 2 */
	type = job->type;
	if (!type->decode_args) {
		if (args)
			return job_fail(GRADEQ_ERR_DECODE, err, errlen,
					"job type %s takes no 'args'", type->name);
		return 0;
	}
	return type->decode_args(args, &job->args, err, errlen);
}

static int decode_map(const msgpack_object_map *m, struct gradeq_job *job, char *err, size_t errlen)
{
	const struct schema *spec = NULL;
	const msgpack_object *args = NULL;
	bool seen[MAX_FIELDS] = {false};
	int ret;

	ret = decode_schema(m, &spec, err, errlen);
	if (ret < 0)
		return ret;
	job->schema = spec->version;
	for (uint32_t i = 0; i < m->size; i++) {
		for (size_t j = 0; j < spec->nfields; j++) {
			const struct field *f = &spec->fields[j];

			if (!key_is(&m->ptr[i].key, f->key))
				continue;
			if (seen[j])
				return job_fail(GRADEQ_ERR_DECODE, err, errlen,
						"duplicate key '%s'", f->key);
			seen[j] = true;
			if (f->kind == F_ARGS)
				args = &m->ptr[i].val;
			ret = decode_field(f, &m->ptr[i].val, job, err, errlen);
			if (ret < 0)
				return ret;
			break;
		}
		/* Other keys belong to later schemas: ignored. */
	}
	for (size_t j = 0; j < spec->nfields; j++)
		if (!seen[j] && !spec->fields[j].optional)
			return job_fail(GRADEQ_ERR_DECODE, err, errlen, "missing key '%s'",
					spec->fields[j].key);
	return decode_args(job, args, err, errlen);
}

int gradeq_job_decode(const void *buf, size_t len, struct gradeq_job **out, char *err,
		      size_t errlen)
{
	msgpack_unpacked msg;
	struct gradeq_job *job = NULL;
	const char *why = NULL;
	size_t off = 0;
	int ret;

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	if (!buf || len == 0)
		return job_fail(GRADEQ_ERR_DECODE, err, errlen, "body is empty");
	if (msgpack_prescan(buf, len, &why) < 0)
		return job_fail(GRADEQ_ERR_DECODE, err, errlen, "%s", why);

	msgpack_unpacked_init(&msg);
	switch (msgpack_unpack_next(&msg, buf, len, &off)) {
	case MSGPACK_UNPACK_SUCCESS: break;
	case MSGPACK_UNPACK_NOMEM_ERROR:
		ret = job_fail(GRADEQ_ERR_NOMEM, err, errlen, "out of memory unpacking body");
		goto out;
	default:
		ret = job_fail(GRADEQ_ERR_DECODE, err, errlen,
			       "body is not a job: not valid msgpack");
		goto out;
	}
	if (off != len) {
		ret = job_fail(GRADEQ_ERR_DECODE, err, errlen,
			       "body is not a job: trailing bytes after its msgpack object");
		goto out;
	}
	if (msg.data.type != MSGPACK_OBJECT_MAP) {
		ret = job_fail(GRADEQ_ERR_DECODE, err, errlen,
			       "body is not a job: not a msgpack map");
		goto out;
	}
	job = calloc(1, sizeof(*job));
	if (!job) {
		ret = job_fail(GRADEQ_ERR_NOMEM, err, errlen, "out of memory decoding job");
		goto out;
	}
	ret = decode_map(&msg.data.via.map, job, err, errlen);
	if (ret < 0)
		goto out;
	job->body_bytes = len;
	*out = job;
	job = NULL;
out:
	gradeq_job_free(job);
	msgpack_unpacked_destroy(&msg);
	return ret;
}

void gradeq_job_free(struct gradeq_job *job)
{
	if (!job)
		return;
	free(job->course_id);
	free(job->release);
	free(job->user_ids);
	if (job->args && job->type && job->type->free_args)
		job->type->free_args(job->args);
	free(job);
}

static int random_bytes(unsigned char *p, size_t n)
{
	if (RAND_bytes(p, (int)n) == 1)
		return 0;
	while (n > 0) {
		ssize_t r = getrandom(p, n, 0);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

void gradeq_uuid(char out[37])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[16];
	size_t o = 0;

	if (random_bytes(b, sizeof(b)) < 0) {
		/* A guessable or repeated id would merge distinct jobs. */
		fprintf(stderr, "gradeq: no random source for UUIDs\n");
		abort();
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 0x0f];
	}
	out[o] = '\0';
}

void gradeq_job_users_digest(const int32_t *ids, size_t n, char out[GRADEQ_JOB_DIGEST_HEX])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE], le[4 * 256];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;

	/* in chunks of 256 ids, each as four bytes, least significant first */
	for (size_t i = 0; ok && i < n; i += 256) {
		size_t k = n - i < 256 ? n - i : 256;

		for (size_t j = 0; j < k; j++) {
			uint32_t v = (uint32_t)ids[i + j];

			le[4 * j] = (unsigned char)(v & 0xff);
			le[4 * j + 1] = (unsigned char)(v >> 8 & 0xff);
			le[4 * j + 2] = (unsigned char)(v >> 16 & 0xff);
			le[4 * j + 3] = (unsigned char)(v >> 24 & 0xff);
		}
		ok = EVP_DigestUpdate(ctx, le, 4 * k) == 1;
	}
	ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 32;
	EVP_MD_CTX_free(ctx);
	if (!ok) {
		/* libcrypto failing on SHA-256 leaves nothing to compare against:
		 * an empty digest never matches a recorded one */
		out[0] = '\0';
		return;
	}
	for (unsigned int i = 0; i < mdlen; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 0xf];
	}
	out[2 * mdlen] = '\0';
}

void gradeq_job_record_release(struct gradeq_job_record *rec)
{
	if (!rec)
		return;
	free(rec->course_id);
	rec->course_id = NULL;
}

int gradeq_job_check_record(const struct gradeq_job *job, const struct gradeq_job_record *rec)
{
	char digest[GRADEQ_JOB_DIGEST_HEX];

	if (!rec->run_known && (!rec->known || strcmp(rec->run_id, job->run_id) != 0))
		return gradeq_error(GRADEQ_ERR_NOT_FOUND,
				    "unknown job: run %s was never recorded (job %s)", job->run_id,
				    job->job_id);
	if (!rec->known)
		return gradeq_error(GRADEQ_ERR_NOT_FOUND,
				    "unknown job: job %s was never recorded (run %s)", job->job_id,
				    job->run_id);
	if (strcmp(rec->run_id, job->run_id) != 0)
		return gradeq_error(GRADEQ_ERR_INVALID,
				    "job body does not match its record: run differs (job %s: body "
				    "%s, recorded %s)",
				    job->job_id, job->run_id, rec->run_id);
	if (!rec->course_id || strcmp(rec->course_id, job->course_id) != 0)
		return gradeq_error(GRADEQ_ERR_INVALID,
				    "job body does not match its record: course differs (job %s)",
				    job->job_id);
	if (rec->learners < 0 || (unsigned long long)rec->learners != job->nusers)
		return gradeq_error(GRADEQ_ERR_INVALID,
				    "job body does not match its record: learner count differs "
				    "(job %s: body %zu, recorded %lld)",
				    job->job_id, job->nusers, rec->learners);
	if (!rec->digest[0])
		return 0; /* recorded before digests: run, course and count only */
	gradeq_job_users_digest(job->user_ids, job->nusers, digest);
	if (strcmp(digest, rec->digest) != 0)
		return gradeq_error(GRADEQ_ERR_INVALID,
				    "job body does not match its record: user ids differ (job %s)",
				    job->job_id);
	return 0;
}
