/* The report part job's codec and handler ("report.part", jobtype.h). */
#include "gradeq/report_job.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradeq/job.h"
#include "gradeq/jobtype.h"
#include "gradeq/worker.h"

static int part_fail(char *err, size_t errlen, const char *fmt, ...) GRADEQ_PRINTF(3, 4);

static int part_fail(char *err, size_t errlen, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (err && errlen)
		snprintf(err, errlen, "%s", msg);
	return gradeq_error(GRADEQ_ERR_DECODE, "%s", msg);
}

static bool is_uuid(const char *s, size_t n)
{
	if (n != 36)
		return false;
	for (size_t i = 0; i < 36; i++) {
		char c = s[i];
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
	}
	return true;
}

static bool key_is(const msgpack_object *k, const char *name)
{
	size_t n = strlen(name);

	return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
	       memcmp(k->via.str.ptr, name, n) == 0;
}

int gradeq_report_part_decode(const msgpack_object *args, void **out, char *err, size_t errlen)
{
	struct gradeq_report_part part = {.output_id = "", .parts = 0};
	bool have_output = false, have_parts = false;

	*out = NULL;
	if (!args)
		return part_fail(err, errlen, "missing key 'args' (job type %s)",
				 GRADEQ_REPORT_PART_TYPE);
	if (args->type != MSGPACK_OBJECT_MAP)
		return part_fail(err, errlen, "'args' is not a map");
	for (uint32_t i = 0; i < args->via.map.size; i++) {
		const msgpack_object *k = &args->via.map.ptr[i].key, *v = &args->via.map.ptr[i].val;

		if (key_is(k, "output")) {
			if (have_output)
				return part_fail(err, errlen, "duplicate key 'args.output'");
			/* one spelling: the id is a database key and a storage name */
			if (v->type != MSGPACK_OBJECT_STR ||
			    !is_uuid(v->via.str.ptr, v->via.str.size))
				return part_fail(err, errlen,
						 "'args.output' is not a lower-case UUID");
			memcpy(part.output_id, v->via.str.ptr, 36);
			part.output_id[36] = '\0';
			have_output = true;
		} else if (key_is(k, "parts")) {
			if (have_parts)
				return part_fail(err, errlen, "duplicate key 'args.parts'");
			if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 == 0 ||
			    v->via.u64 > GRADEQ_REPORT_MAX_PARTS)
				return part_fail(err, errlen, "'args.parts' is not 1..%d",
						 GRADEQ_REPORT_MAX_PARTS);
			part.parts = (uint32_t)v->via.u64;
			have_parts = true;
		}
		/* other keys belong to later releases: ignored */
	}
	if (!have_output || !have_parts)
		return part_fail(err, errlen, "missing key 'args.%s'",
				 have_output ? "parts" : "output");
	*out = malloc(sizeof(part));
	if (!*out) {
		if (err && errlen)
			snprintf(err, errlen, "out of memory decoding 'args'");
		return gradeq_error(GRADEQ_ERR_NOMEM, "out of memory decoding 'args'");
	}
	memcpy(*out, &part, sizeof(part));
	return 0;
}

static int pack_key(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);

	return msgpack_pack_str(pk, n) < 0 || msgpack_pack_str_body(pk, s, n) < 0 ? -1 : 0;
}

int gradeq_report_part_encode(msgpack_packer *pk, const void *args)
{
	const struct gradeq_report_part *p = args;

	if (msgpack_pack_map(pk, 2) < 0 || pack_key(pk, "output") < 0 ||
	    pack_key(pk, p->output_id) < 0 || pack_key(pk, "parts") < 0 ||
	    msgpack_pack_uint32(pk, p->parts) < 0)
		return -1;
	return 0;
}

int gradeq_report_part_check(const void *args)
{
	const struct gradeq_report_part *p = args;

	if (!is_uuid(p->output_id, strnlen(p->output_id, sizeof(p->output_id))))
		return gradeq_error(GRADEQ_ERR_INVALID, "report part: output id is not a UUID");
	if (p->parts == 0 || p->parts > GRADEQ_REPORT_MAX_PARTS)
		return gradeq_error(GRADEQ_ERR_INVALID, "report part: %" PRIu32 " parts, not 1..%d",
				    p->parts, GRADEQ_REPORT_MAX_PARTS);
	return 0;
}

void gradeq_report_part_free(void *args)
{
	free(args);
}

int gradeq_report_part_handle(const struct gradeq_jobctx *ctx, const struct gradeq_job *job,
			      struct gradeq_job_stats *stats)
{
	(void)ctx;
	memset(stats, 0, sizeof(*stats));
	/* gradeq-report, which records report runs, is not part of this
	 * release: no genuine part job exists, so the row it names is not
	 * this message's to change */
	stats->forged = true;
	return gradeq_error(GRADEQ_ERR_NOT_FOUND,
			    "unknown job: report part %s was never recorded (output %s)",
			    job->job_id, ((const struct gradeq_report_part *)job->args)->output_id);
}
