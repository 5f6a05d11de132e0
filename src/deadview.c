/* What a dead message says about itself, which filters it passes, and how
 * gradeq-replay shows it (see deadview.h). */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "gradeq/broker.h"
#include "gradeq/deadview.h"
#include "gradeq/job.h"
#include "gradeq/log.h"
#include "gradeq/parse.h"

static void format_age(long s, char *buf, size_t len)
{
	if (s < 0)
		snprintf(buf, len, "-");
	else if (s < 120)
		snprintf(buf, len, "%lds", s);
	else if (s < 7200)
		snprintf(buf, len, "%ldm", s / 60);
	else if (s < 172800)
		snprintf(buf, len, "%ldh", s / 3600);
	else
		snprintf(buf, len, "%ldd", s / 86400);
}

/* Case-insensitive substring test. */
static bool contains_ci(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	for (; *hay; hay++)
		if (strncasecmp(hay, needle, n) == 0)
			return true;
	return n == 0;
}

static const amqp_table_t *headers_of(const amqp_envelope_t *env)
{
	return (env->message.properties._flags & AMQP_BASIC_HEADERS_FLAG)
		       ? &env->message.properties.headers
		       : NULL;
}

static const amqp_field_value_t *field(const amqp_table_t *t, const char *key)
{
	size_t n = strlen(key);

	for (int i = 0; t && i < t->num_entries; i++)
		if (t->entries[i].key.len == n && memcmp(t->entries[i].key.bytes, key, n) == 0)
			return &t->entries[i].value;
	return NULL;
}

/* The time of the broker's first dead-lettering (x-death's last entry is the
 * oldest); 0 when there is none. */
static time_t x_death_time(const amqp_table_t *h)
{
	const amqp_field_value_t *v = field(h, "x-death");
	const amqp_array_t *a;

	if (!v || v->kind != AMQP_FIELD_KIND_ARRAY)
		return 0;
	a = &v->value.array;
	for (int i = a->num_entries - 1; i >= 0; i--) {
		const amqp_field_value_t *e = &a->entries[i];
		const amqp_field_value_t *t;

		if (e->kind != AMQP_FIELD_KIND_TABLE)
			continue;
		t = field(&e->value.table, "time");
		if (t && t->kind == AMQP_FIELD_KIND_TIMESTAMP)
			return (time_t)t->value.u64;
	}
	return 0;
}

void gradeq_dl_view_fill(struct gradeq_dl_view *v, const amqp_envelope_t *env)
{
	const amqp_basic_properties_t *p = &env->message.properties;
	const amqp_table_t *h = headers_of(env);
	struct gradeq_job *job = NULL;
	char reason[64], queue[256];

	memset(v, 0, sizeof(*v));
	v->size = env->message.body.len;
	if (gradeq_job_decode(env->message.body.bytes, env->message.body.len, &job, v->decode_err,
			      sizeof(v->decode_err)) == 0) {
		v->decoded = true;
		snprintf(v->job_id, sizeof(v->job_id), "%s", job->job_id);
		snprintf(v->course, sizeof(v->course), "%s", job->course_id);
		snprintf(v->run, sizeof(v->run), "%s", job->run_id);
		gradeq_job_free(job);
	} else {
		if (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG)
			snprintf(v->job_id, sizeof(v->job_id), "%.*s", (int)p->message_id.len,
				 (const char *)p->message_id.bytes);
		gradeq_header_str(h, "gradeq-course", v->course, sizeof(v->course));
		gradeq_header_str(h, "gradeq-run", v->run, sizeof(v->run));
	}
	v->attempt = gradeq_header_int(h, "gradeq-attempt", 0);
	v->replays = gradeq_header_int(h, "gradeq-replay-count", 0);
	if (!gradeq_header_str(h, "gradeq-error-class", v->cls, sizeof(v->cls))) {
		if (gradeq_header_str(h, "x-first-death-reason", reason, sizeof(reason))) {
			snprintf(v->cls, sizeof(v->cls), "%s", reason);
			if (!gradeq_header_str(h, "x-first-death-queue", queue, sizeof(queue)))
				snprintf(queue, sizeof(queue), "?");
			snprintf(v->error, sizeof(v->error),
				 "dead-lettered by the broker (%s) from queue %s", reason, queue);
		} else {
			snprintf(v->cls, sizeof(v->cls), "unknown");
		}
	} else {
		gradeq_header_str(h, "gradeq-error", v->error, sizeof(v->error));
	}
	if (gradeq_header_str(h, "gradeq-failed-at", v->failed_at, sizeof(v->failed_at)))
		v->failed_ts = gradeq_parse_rfc3339(v->failed_at);
	if (!v->failed_ts)
		v->failed_ts = x_death_time(h);
	if (!v->failed_ts && (p->_flags & AMQP_BASIC_TIMESTAMP_FLAG))
		v->failed_ts = (time_t)p->timestamp;
	if (v->failed_ts && !v->failed_at[0])
		gradeq_rfc3339(v->failed_at, sizeof(v->failed_at), v->failed_ts);
}

bool gradeq_dl_matches(const struct gradeq_dl_filters *f, const struct gradeq_dl_view *v,
		       time_t now)
{
	if (f->ncourses) {
		bool any = false;

		for (int i = 0; i < f->ncourses; i++)
			if (strcmp(f->courses[i], v->course) == 0)
				any = true;
		if (!any)
			return false;
	}
	if (f->cls && strcmp(f->cls, v->cls) != 0)
		return false;
	if (f->run && strcasecmp(f->run, v->run) != 0)
		return false;
	if (f->reason && !contains_ci(v->error, f->reason))
		return false;
	if (f->older_than >= 0 && (!v->failed_ts || (long)(now - v->failed_ts) < f->older_than))
		return false;
	return true;
}

static void hex_head(const amqp_bytes_t *b, char *buf, size_t len)
{
	size_t n = b->len < 32 ? b->len : 32, o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && o + 3 < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%02x",
				      ((const unsigned char *)b->bytes)[i]);
}

static void headers_text(const amqp_table_t *h, char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = '\0';
	for (int i = 0; h && i < h->num_entries && o + 4 < len; i++) {
		const amqp_table_entry_t *e = &h->entries[i];
		char key[128], val[128];

		snprintf(key, sizeof(key), "%.*s", (int)e->key.len, (const char *)e->key.bytes);
		if (e->value.kind == AMQP_FIELD_KIND_UTF8 || e->value.kind == AMQP_FIELD_KIND_BYTES)
			snprintf(val, sizeof(val), "%.*s", (int)e->value.value.bytes.len,
				 (const char *)e->value.value.bytes.bytes);
		else if (e->value.kind == AMQP_FIELD_KIND_ARRAY)
			snprintf(val, sizeof(val), "[%d]", e->value.value.array.num_entries);
		else if (e->value.kind == AMQP_FIELD_KIND_TABLE)
			snprintf(val, sizeof(val), "{%d}", e->value.value.table.num_entries);
		else
			snprintf(val, sizeof(val), "%lld", (long long)gradeq_header_int(h, key, 0));
		o += (size_t)snprintf(buf + o, len - o, "%s%s=%s", i ? "," : "", key, val);
		if (o >= len)
			o = len - 1;
	}
}

json_t *gradeq_dl_view_json(const struct gradeq_dl_view *v, const amqp_envelope_t *env)
{
	json_t *o = json_object();
	long age = v->failed_ts ? (long)(time(NULL) - v->failed_ts) : -1;

	json_object_set_new(o, "job_id", json_string(v->job_id));
	json_object_set_new(o, "course", json_string(v->course));
	json_object_set_new(o, "run", json_string(v->run));
	json_object_set_new(o, "attempts", json_integer(v->attempt));
	json_object_set_new(o, "replays", json_integer(v->replays));
	json_object_set_new(o, "class", json_string(v->cls));
	json_object_set_new(o, "error", json_string(v->error));
	json_object_set_new(o, "failed_at",
			    v->failed_at[0] ? json_string(v->failed_at) : json_null());
	json_object_set_new(o, "age_s", age >= 0 ? json_integer(age) : json_null());
	json_object_set_new(o, "decodable", json_boolean(v->decoded));
	json_object_set_new(o, "size", json_integer((json_int_t)v->size));
	if (!v->decoded) {
		char hex[80], hdr[1024];

		hex_head(&env->message.body, hex, sizeof(hex));
		headers_text(headers_of(env), hdr, sizeof(hdr));
		json_object_set_new(o, "decode_error", json_string(v->decode_err));
		json_object_set_new(o, "head_hex", json_string(hex));
		json_object_set_new(o, "headers", json_string(hdr));
	}
	return o;
}

void gradeq_dl_view_print(const struct gradeq_dl_view *v, const amqp_envelope_t *env,
			  const char *prefix)
{
	char age[32];
	const char *err = v->error[0] ? v->error : "-";

	/* every value comes from the message: quoted and escaped, one line */
	format_age(v->failed_ts ? (long)(time(NULL) - v->failed_ts) : -1, age, sizeof(age));
	if (v->decoded) {
		gradeq_logfmt_print(stdout,
				    "%sjob=%s course=%s run=%s attempts=%lld class=%s failed_at=%s"
				    " age=%s error=%s",
				    prefix, v->job_id, v->course, v->run[0] ? v->run : "-",
				    (long long)v->attempt, v->cls,
				    v->failed_at[0] ? v->failed_at : "-", age, err);
	} else {
		char hex[80], hdr[1024];

		hex_head(&env->message.body, hex, sizeof(hex));
		headers_text(headers_of(env), hdr, sizeof(hdr));
		gradeq_logfmt_print(
			stdout,
			"%sundecodable message_id=%s size=%zu class=%s failed_at=%s age=%s"
			" error=%s decode_error=%s headers=%s head=%s",
			prefix, v->job_id[0] ? v->job_id : "-", v->size, v->cls,
			v->failed_at[0] ? v->failed_at : "-", age, err, v->decode_err, hdr,
			hex[0] ? hex : "-");
	}
}
