/* The report part job's codec and handler ("report.part", jobtype.h). */
#include "gradeq/report_job.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "gradeq/broker.h"
#include "gradeq/courses.h"
#include "gradeq/events.h"
#include "gradeq/limits.h"
#include "gradeq/grading.h"
#include "gradeq/job.h"
#include "gradeq/jobs.h"
#include "gradeq/jobtype.h"
#include "gradeq/log.h"
#include "gradeq/outputs.h"
#include "gradeq/reportfmt.h"
#include "gradeq/storage.h"
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

/* ---- the handler ---- */

#define JOB_UNFINISHED                                                                             \
	(GRADEQ_JOB_SET(GRADEQ_JOB_PENDING) | GRADEQ_JOB_SET(GRADEQ_JOB_RETRYING) |                \
	 GRADEQ_JOB_SET(GRADEQ_JOB_IN_PROGRESS))

struct part_ctx {
	const struct gradeq_report_layout *layout;
	struct gradeq_buf *buf;
	int rows;
};

static int add_row(void *arg, const struct gradeq_output_grade *g)
{
	struct part_ctx *p = arg;

	gradeq_report_row(p->buf, p->layout, g);
	p->rows++;
	return p->buf->failed ? GRADEQ_ERR_NOMEM : 0;
}

/* A body must match its recorded job row (DESIGN.md section 4). */
static int check_record(struct gradeq_store *st, const struct gradeq_job *job,
			struct gradeq_job_stats *stats)
{
	struct gradeq_job_record rec;
	int rc = gradeq_job_record_read(st, job->job_id, job->run_id, &rec);

	if (!rc) {
		rc = gradeq_job_check_record(job, &rec);
		stats->forged = rc != 0;
	}
	gradeq_job_record_release(&rec);
	return rc;
}

/* The output the part names must be the one its run built for its course,
 * with as many parts as the body says. */
static int check_output(const struct gradeq_job *job, const struct gradeq_report_part *a,
			const struct gradeq_output *o, bool found)
{
	if (!found)
		return gradeq_error(GRADEQ_ERR_NOT_FOUND, "unknown output %s (job %s)",
				    a->output_id, job->job_id);
	if (strcmp(o->run_id, job->run_id) != 0 || strcmp(o->course_id, job->course_id) != 0 ||
	    o->parts != (int)a->parts || job->seq >= a->parts)
		return gradeq_error(
			GRADEQ_ERR_INVALID,
			"job body does not match its output: run, course or parts differ"
			" (job %s, output %s)",
			job->job_id, a->output_id);
	/* a failed output still takes its parts: a replayed dead part seals it */
	if (strcmp(o->state, "deleted") == 0)
		return gradeq_error(GRADEQ_ERR_STATE, "output %s is %s (job %s)", a->output_id,
				    o->state, job->job_id);
	return 0;
}

/* The course's columns, from its stored structure and policy. */
static int load_layout(struct gradeq_store *st, const char *course_id, struct gradeq_course **c,
		       struct gradeq_report_layout *l, struct gradeq_keys **keys)
{
	struct gradeq_course_src src;
	char err[512] = "";
	int rc = gradeq_courses_load(st, course_id, &src);

	*c = NULL;
	*keys = NULL;
	if (!rc) {
		rc = gradeq_course_new(src.blocks, src.nblocks, src.policy, strlen(src.policy), c,
				       err, sizeof(err));
		if (rc)
			rc = gradeq_error(rc, "course '%s': %s", course_id,
					  err[0] ? err : gradeq_strerror(rc));
	}
	gradeq_course_src_release(&src);
	if (!rc)
		rc = gradeq_report_layout_init(l, *c);
	if (!rc) {
		*keys = gradeq_keys_new(l->sub_keys, l->nsubs);
		if (!*keys)
			rc = GRADEQ_ERR_NOMEM;
	}
	return rc;
}

static void sha256_hex(const void *data, size_t len, char out[65])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned n = 0;

	out[0] = '\0';
	if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1 || n != 32)
		return;
	for (unsigned i = 0; i < n; i++) {
		out[2 * i] = digits[md[i] >> 4];
		out[2 * i + 1] = digits[md[i] & 0xf];
	}
	out[64] = '\0';
}

/* output.<id>.<state> (ready, failed) on gradeq.events, confirmed; best
 * effort (the row says sealed or failed whatever happens to the event). */
static void announce(const struct gradeq_jobctx *ctx, const char *output_id,
		     const struct gradeq_job *job, const char *state)
{
	int rc = GRADEQ_ERR_BROKER;

	if (ctx->events && !gradeq_broker_broken(ctx->events)) {
		rc = gradeq_event_output(ctx->events, output_id, job->run_id, job->course_id,
					 state);
		if (!rc)
			rc = gradeq_broker_wait_confirms(ctx->events, GRADEQ_CONFIRM_WAIT_MS);
	}
	if (rc)
		log_warn("event=event_lost output=%s event_key=output.%s.%s error=\"%s\"",
			 output_id, output_id, state, gradeq_errmsg(rc));
}

/* In one transaction: the part recorded once, the job complete, and, when
 * this part finds every part in with the output still pending under the
 * output's row lock, the output sealed. *sealed says whether this part
 * sealed it. */
static int record_part(const struct gradeq_jobctx *ctx, const struct gradeq_job *job,
		       const struct gradeq_report_part *a, struct gradeq_storage *stg,
		       const struct gradeq_report_layout *l, int rows,
		       const struct gradeq_buf *part, struct gradeq_job_stats *stats, bool *sealed)
{
	const struct gradeq_job_completion done = {
		.graded = rows, .skipped = (int)job->nusers - rows, .subsections = (int)l->nsubs};
	const struct gradeq_job_change change = {
		.job_id = job->job_id,
		.from = GRADEQ_JOB_SET(GRADEQ_JOB_IN_PROGRESS),
		.to = GRADEQ_JOB_COMPLETE,
		.by = gradeq_worker_name(ctx->worker),
		.completion = &done,
	};
	struct gradeq_job_changed changed;
	struct gradeq_output o;
	struct gradeq_buf header = {0};
	char sha[65];
	bool fresh = false, found = false;
	int ndone = 0, rc;
	long long size = 0;

	*sealed = false;
	sha256_hex(part->data ? part->data : "", part->len, sha);
	rc = gradeq_output_part_begin(ctx->st);
	if (rc)
		return rc;
	rc = gradeq_output_part_record(ctx->st, a->output_id, (int)job->seq, job->job_id, rows,
				       (long long)part->len, sha, &fresh, &ndone);
	if (!rc)
		rc = gradeq_output_get(ctx->st, a->output_id, true, &o, &found);
	if (!rc && !found)
		rc = gradeq_error(GRADEQ_ERR_NOT_FOUND, "output %s is gone", a->output_id);
	if (!rc)
		rc = gradeq_job_transition(ctx->st, &change, &changed);
	if (!rc && found && ndone == o.parts &&
	    (strcmp(o.state, "pending") == 0 || strcmp(o.state, "failed") == 0)) {
		gradeq_report_header(&header, l);
		rc = header.failed ? GRADEQ_ERR_NOMEM
				   : gradeq_storage_seal(stg, o.key, header.data, header.len,
							 (uint32_t)o.parts, &size, sha);
		if (!rc)
			rc = gradeq_output_mark_sealed(ctx->st, a->output_id, size, sha);
		*sealed = rc == 0;
	}
	if (!rc)
		rc = gradeq_store_commit(ctx->st);
	else
		gradeq_store_rollback(ctx->st);
	if (!rc) {
		snprintf(stats->run_settled, sizeof(stats->run_settled), "%s", changed.run_settled);
		if (*sealed) {
			gradeq_storage_drop_parts(stg, o.key, (uint32_t)o.parts);
			announce(ctx, a->output_id, job, "ready");
			log_info(
				"event=output_sealed output=%s job=%s course=%s parts=%d size=%lld "
				"sha256=%s",
				a->output_id, job->job_id, job->course_id, o.parts, size, sha);
		}
	} else {
		*sealed = false;
	}
	(void)fresh;
	gradeq_buf_release(&header);
	gradeq_output_release(&o);
	return rc;
}

int gradeq_report_part_handle(const struct gradeq_jobctx *ctx, const struct gradeq_job *job,
			      struct gradeq_job_stats *stats)
{
	const struct gradeq_report_part *a = job->args;
	const struct gradeq_job_change begin = {
		.job_id = job->job_id,
		.from = JOB_UNFINISHED,
		.to = GRADEQ_JOB_IN_PROGRESS,
		.by = gradeq_worker_name(ctx->worker),
		.run_id = job->run_id,
	};
	struct gradeq_job_changed began;
	struct gradeq_output o = {0};
	struct gradeq_report_layout l = {0};
	struct gradeq_course *course = NULL;
	struct gradeq_keys *keys = NULL;
	struct gradeq_storage *stg = NULL;
	struct gradeq_buf part = {0};
	struct part_ctx pc = {.layout = &l, .buf = &part};
	bool found = false, sealed = false;
	int rc;

	memset(stats, 0, sizeof(*stats));
	stats->body_bytes = (long)job->body_bytes;
	rc = check_record(ctx->st, job, stats);
	if (!rc)
		rc = gradeq_job_transition(ctx->st, &begin, &began);
	if (rc)
		goto out;
	if (began.known && (began.old == GRADEQ_JOB_COMPLETE || began.old == GRADEQ_JOB_CANCELED ||
			    began.old == GRADEQ_JOB_DISCARDED)) {
		stats->outcome = GRADEQ_ALREADY_DONE;
		goto out;
	}
	if (began.run_known && began.run_state == GRADEQ_RUN_CANCELED) {
		const struct gradeq_job_change cancel = {.job_id = job->job_id,
							 .from = JOB_UNFINISHED,
							 .to = GRADEQ_JOB_CANCELED,
							 .by = begin.by};

		stats->outcome = GRADEQ_SKIPPED_CANCELED;
		rc = gradeq_job_transition(ctx->st, &cancel, NULL);
		goto out;
	}
	rc = gradeq_output_get(ctx->st, a->output_id, false, &o, &found);
	if (!rc)
		rc = check_output(job, a, &o, found);
	if (!rc)
		rc = gradeq_storage_open(ctx->cfg, &stg);
	if (!rc)
		rc = load_layout(ctx->st, job->course_id, &course, &l, &keys);
	if (!rc)
		rc = gradeq_output_grades_read(ctx->st, job->course_id, job->user_ids, job->nusers,
					       keys, add_row, &pc);
	if (rc)
		goto out;
	/* a part of a sealed output (a replay) changes nothing stored */
	if (strcmp(o.state, "pending") == 0 || strcmp(o.state, "failed") == 0)
		rc = gradeq_storage_put_part(stg, o.key, job->seq, part.data ? part.data : "",
					     part.len);
	if (!rc)
		rc = record_part(ctx, job, a, stg, &l, pc.rows, &part, stats, &sealed);
	if (!rc) {
		stats->outcome = GRADEQ_DONE;
		stats->graded = pc.rows;
		stats->skipped = (int)job->nusers - pc.rows;
		stats->subsections = (int)l.nsubs;
	}
out:
	gradeq_buf_release(&part);
	gradeq_keys_free(keys);
	gradeq_report_layout_release(&l);
	gradeq_course_free(course);
	gradeq_storage_free(stg);
	gradeq_output_release(&o);
	return rc;
}

void gradeq_report_part_dead(const struct gradeq_jobctx *ctx, const struct gradeq_job *job,
			     const char *error)
{
	const struct gradeq_report_part *a = job->args;
	bool changed = false;
	int rc;

	if (!a || !ctx->st)
		return;
	rc = gradeq_output_mark_failed(ctx->st, a->output_id, &changed);
	if (rc) {
		log_warn("event=output_failed_not_recorded output=%s job=%s error=\"%s\"",
			 a->output_id, job->job_id, gradeq_errmsg(rc));
		return;
	}
	if (!changed)
		return; /* sealed, deleted, or failed by another part already */
	log_error("event=output_failed output=%s job=%s course=%s part=%u error=\"%s\"",
		  a->output_id, job->job_id, job->course_id, (unsigned)job->seq, error);
	announce(ctx, a->output_id, job, "failed");
}
