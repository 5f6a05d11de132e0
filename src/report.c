/* gradeq-report's commands (report.h). */
#include "gradeq/report.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "gradeq/cli.h"
#include "gradeq/enroll.h"
#include "gradeq/events.h"
#include "gradeq/job.h"
#include "gradeq/jobrows.h"
#include "gradeq/jobtype.h"
#include "gradeq/limits.h"
#include "gradeq/log.h"
#include "gradeq/outputs.h"
#include "gradeq/outputlink.h"
#include "gradeq/parse.h"
#include "gradeq/report_job.h"
#include "gradeq/runs.h"
#include "gradeq/storage.h"

void gradeq_report_result_release(struct gradeq_report_result *r)
{
	free(r->output_ids);
	r->output_ids = NULL;
}

int gradeq_report_keep_until(const char *s, char *out, size_t len)
{
	char buf[64];
	time_t t;

	if (strlen(s) == 10 && s[4] == '-' && s[7] == '-') {
		snprintf(buf, sizeof(buf), "%sT00:00:00Z", s);
		s = buf;
	}
	t = gradeq_parse_rfc3339(s);
	if (t <= 0)
		return gradeq_error(GRADEQ_ERR_INVALID,
				    "--keep-until must be a date (2026-12-31) or an RFC 3339 time,"
				    " not '%s'",
				    s);
	if (t <= time(NULL))
		return gradeq_error(GRADEQ_ERR_INVALID, "--keep-until %s is in the past", s);
	gradeq_rfc3339(out, len, t);
	return 0;
}

struct rep {
	struct gradeq_cli *cli;
	const struct gradeq_report_options *o;
	struct gradeq_report_result *r;
	struct gradeq_store *st;
	struct gradeq_broker *b;
	struct gradeq_storage *stg;
	char key[GRADEQ_NAME_MAX];
	long events;
};

static int publish_part(struct rep *p, const struct gradeq_job *j)
{
	amqp_basic_properties_t props;
	struct gradeq_headers h;
	char *body = NULL;
	size_t len = 0;
	int rc = gradeq_job_encode(j, GRADEQ_SCHEMA_VERSION, &body, &len);

	if (rc)
		return rc;
	gradeq_headers_init(&h);
	gradeq_headers_set_int(&h, "gradeq-schema", GRADEQ_SCHEMA_VERSION);
	gradeq_headers_set_str(&h, "gradeq-course", j->course_id);
	gradeq_headers_set_str(&h, "gradeq-run", j->run_id);
	gradeq_headers_set_int(&h, "gradeq-attempt", 1);
	memset(&props, 0, sizeof(props));
	props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
		       AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TYPE_FLAG |
		       AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_APP_ID_FLAG | AMQP_BASIC_HEADERS_FLAG;
	props.content_type = amqp_cstring_bytes("application/msgpack");
	props.delivery_mode = 2;
	props.message_id = amqp_cstring_bytes(j->job_id);
	props.type = amqp_cstring_bytes(gradeq_job_type_name(j));
	props.timestamp = (uint64_t)time(NULL);
	props.app_id = amqp_cstring_bytes("gradeq-report/" GRADEQ_VERSION);
	rc = gradeq_headers_finish(&h, &props.headers);
	if (!rc)
		rc = gradeq_broker_publish(p->b, GRADEQ_EXCHANGE, p->key, &props, body, len);
	free(body);
	return rc;
}

/* One course: its output row, then its parts recorded (one COPY,
 * committed) before any is published. */
static int report_course(struct rep *p, const char *course, char output_id[37])
{
	const struct gradeq_jobtype *type =
		gradeq_jobtype_find(GRADEQ_REPORT_PART_TYPE, strlen(GRADEQ_REPORT_PART_TYPE));
	int32_t *ids = NULL;
	size_t n = 0, nparts, batch = (size_t)p->o->batch_size;
	struct gradeq_job *jobs = NULL;
	struct gradeq_report_part args;
	struct gradeq_output out = {0};
	char name[300], key[64];
	struct timespec ts;
	int rc;

	rc = gradeq_output_learners(p->st, course, &ids, &n);
	if (rc)
		return rc;
	nparts = n ? (n + batch - 1) / batch : 1;
	if (nparts > GRADEQ_REPORT_MAX_PARTS) {
		rc = gradeq_error(GRADEQ_ERR_INVALID,
				  "course '%s': %zu parts of %zu learners, more than %d: raise"
				  " --batch-size",
				  course, nparts, batch, GRADEQ_REPORT_MAX_PARTS);
		goto out;
	}
	gradeq_uuid(output_id);
	snprintf(key, sizeof(key), "%s.csv", output_id);
	snprintf(name, sizeof(name), "grade report %.200s", course);
	memcpy(out.output_id, output_id, 37);
	memcpy(out.run_id, p->r->run_id, 37);
	out.course_id = (char *)course;
	out.name = name;
	out.format = "csv";
	out.backend = (char *)gradeq_storage_backend(p->stg);
	out.key = key;
	out.parts = (int)nparts;
	out.created_by = (char *)(p->o->created_by ? p->o->created_by : "");
	snprintf(out.keep_until, sizeof(out.keep_until), "%s",
		 p->o->keep_until ? p->o->keep_until : "");
	out.use_once = p->o->use_once;
	rc = gradeq_output_create(p->st, &out);
	if (rc)
		goto out;
	memcpy(args.output_id, output_id, 37);
	args.parts = (uint32_t)nparts;
	jobs = calloc(nparts, sizeof(*jobs));
	if (!jobs) {
		rc = GRADEQ_ERR_NOMEM;
		goto out;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	for (size_t i = 0; i < nparts; i++) {
		struct gradeq_job *j = &jobs[i];

		j->schema = GRADEQ_SCHEMA_VERSION;
		gradeq_uuid(j->job_id);
		memcpy(j->run_id, p->r->run_id, 37);
		j->course_id = (char *)course;
		j->release = p->r->release;
		j->user_ids = n ? ids + i * batch : NULL;
		j->nusers = n ? (i + 1 < nparts ? batch : n - i * batch) : 0;
		j->seq = (uint32_t)i;
		j->created_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
		j->type = type;
		j->args = &args;
	}
	rc = gradeq_jobrows_record(p->st, jobs, (int)nparts);
	for (size_t i = 0; i < nparts && !rc; i++)
		rc = publish_part(p, &jobs[i]);
	if (!rc) {
		p->r->parts += (long)nparts;
		p->r->learners += (long)n;
		log_info("event=report_published output=%s run=%s course=%s parts=%zu learners=%zu",
			 output_id, p->r->run_id, course, nparts, n);
	}
out:
	free(jobs);
	free(ids);
	return rc;
}

static int begin(struct rep *p, int ncourses)
{
	struct gradeq_topology topo;
	char opts[128];
	int rc = gradeq_cli_broker(p->cli, p->r->release, &p->b);

	if (rc)
		return rc;
	topo = gradeq_cli_topology(p->cli);
	rc = gradeq_broker_declare(p->b, p->r->release, &topo);
	if (!rc)
		rc = gradeq_broker_confirm_mode(p->b, p->cli->cfg->confirm_window);
	if (rc)
		return rc;
	gradeq_work_key(p->key, p->r->release);
	snprintf(opts, sizeof(opts), "{\"report\": true, \"batch_size\": %d}", p->o->batch_size);
	return gradeq_run_create(p->st, p->r->run_id, p->r->release, opts, ncourses,
				 p->o->created_by);
}

static int end(struct rep *p, int rc)
{
	struct gradeq_run_changed ch;

	if (!rc)
		rc = gradeq_broker_wait_confirms(p->b, GRADEQ_PUBLISH_CONFIRM_WAIT_MS);
	if (!rc && gradeq_broker_confirmed(p->b) != (uint64_t)p->r->parts)
		rc = gradeq_error(GRADEQ_ERR_NACKED, "%llu of %ld parts confirmed",
				  (unsigned long long)gradeq_broker_confirmed(p->b), p->r->parts);
	if (!gradeq_store_broken(p->st)) {
		int rc2 = gradeq_run_published(p->st, p->r->run_id, p->r->parts, p->r->learners,
					       rc ? GRADEQ_RUN_FAILED : GRADEQ_RUN_RUNNING, NULL,
					       &ch);

		if (!rc)
			rc = rc2;
	}
	return rc;
}

int gradeq_report_create(struct gradeq_cli *cli, const struct gradeq_report_options *o,
			 struct gradeq_report_result *r)
{
	struct rep p = {.cli = cli, .o = o, .r = r};
	struct gradeq_enroll_courses courses = {0};
	int rc;

	memset(r, 0, sizeof(*r));
	r->output_ids = calloc((size_t)o->ncourses + 1, sizeof(*r->output_ids));
	if (!r->output_ids)
		return GRADEQ_ERR_NOMEM;
	rc = gradeq_cli_store(cli, &p.st);
	if (!rc)
		rc = gradeq_storage_open(cli->cfg, &p.stg);
	if (!rc)
		rc = gradeq_release_resolve(p.st, o->release, r->release, sizeof(r->release));
	if (!rc)
		rc = gradeq_enroll_courses_resolve(p.st, (char *const *)o->courses, o->ncourses,
						   false, &courses);
	if (rc)
		goto out;
	gradeq_uuid(r->run_id);
	rc = begin(&p, courses.n);
	if (rc)
		goto out;
	for (int i = 0; i < courses.n && !rc; i++) {
		rc = report_course(&p, courses.ids[i], r->output_ids[i]);
		if (!rc)
			r->noutputs++;
	}
	rc = end(&p, rc);
out:
	gradeq_enroll_courses_release(&courses);
	gradeq_storage_free(p.stg);
	gradeq_broker_free(p.b);
	gradeq_store_free(p.st);
	return rc;
}

static json_t *output_json(const struct gradeq_output *o)
{
	json_t *j = json_object();

#define OPT_STR(v) ((v)[0] ? json_string(v) : json_null())
	json_object_set_new(j, "output_id", json_string(o->output_id));
	json_object_set_new(j, "run_id", OPT_STR(o->run_id));
	json_object_set_new(j, "course_id", json_string(o->course_id));
	json_object_set_new(j, "name", json_string(o->name));
	json_object_set_new(j, "state", json_string(o->state));
	json_object_set_new(j, "backend", json_string(o->backend));
	json_object_set_new(j, "parts", json_integer(o->parts));
	json_object_set_new(j, "size", o->size >= 0 ? json_integer(o->size) : json_null());
	json_object_set_new(j, "sha256", OPT_STR(o->sha256));
	json_object_set_new(j, "created_by", json_string(o->created_by));
	json_object_set_new(j, "created_at", OPT_STR(o->created_at));
	json_object_set_new(j, "sealed_at", OPT_STR(o->sealed_at));
	json_object_set_new(j, "keep_until", OPT_STR(o->keep_until));
	json_object_set_new(j, "use_once", json_boolean(o->use_once));
	json_object_set_new(j, "downloaded_at", OPT_STR(o->downloaded_at));
	json_object_set_new(j, "deleted_at", OPT_STR(o->deleted_at));
#undef OPT_STR
	return j;
}

int gradeq_report_list_json(struct gradeq_store *st, const char *course_id, char **out)
{
	struct gradeq_output *list = NULL;
	size_t n = 0;
	json_t *a;
	int rc = gradeq_output_list(st, course_id, &list, &n);

	*out = NULL;
	if (!rc) {
		a = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(a, output_json(&list[i]));
		*out = json_dumps(a, JSON_COMPACT);
		json_decref(a);
		if (!*out)
			rc = GRADEQ_ERR_NOMEM;
	}
	for (size_t i = 0; i < n; i++)
		gradeq_output_release(&list[i]);
	free(list);
	return rc;
}

int gradeq_report_list(struct gradeq_cli *cli, const char *course_id, bool json, FILE *out)
{
	struct gradeq_store *st = NULL;
	struct gradeq_output *list = NULL;
	size_t n = 0;
	int rc = gradeq_cli_store(cli, &st);

	if (!rc)
		rc = gradeq_output_list(st, course_id, &list, &n);
	if (!rc && json) {
		json_t *a = json_array();
		char *text;

		for (size_t i = 0; i < n; i++)
			json_array_append_new(a, output_json(&list[i]));
		text = json_dumps(a, JSON_COMPACT);
		json_decref(a);
		if (!text)
			rc = GRADEQ_ERR_NOMEM;
		else
			fprintf(out, "%s\n", text);
		free(text);
	} else if (!rc) {
		fprintf(out, "%-36s  %-8s  %10s  %-20s  %s\n", "OUTPUT", "STATE", "SIZE", "CREATED",
			"SHA256");
		for (size_t i = 0; i < n; i++)
			fprintf(out, "%-36s  %-8s  %10lld  %-20s  %s\n", list[i].output_id,
				list[i].state, list[i].size, list[i].created_at,
				list[i].sha256[0] ? list[i].sha256 : "-");
	}
	for (size_t i = 0; i < n; i++)
		gradeq_output_release(&list[i]);
	free(list);
	gradeq_store_free(st);
	return rc;
}

/* The object first: a row marked deleted never points at a file left
 * behind, and a failed removal leaves the row to try again. */
static int delete_one(struct gradeq_store *st, struct gradeq_storage *stg,
		      const struct gradeq_output *o)
{
	bool found = false;
	int rc;

	/* an output lives where it was written: never remove through another
	 * backend than the row names (the configuration may have changed) */
	if (o->backend && strcmp(o->backend, gradeq_storage_backend(stg)) != 0)
		return gradeq_error(GRADEQ_ERR_CONFIG,
				    "output %s is on the %s backend; output_backend is %s",
				    o->output_id, o->backend, gradeq_storage_backend(stg));
	rc = gradeq_storage_remove(stg, o->key, (uint32_t)o->parts);
	if (!rc)
		rc = gradeq_output_mark_deleted(st, o->output_id, &found);
	if (!rc)
		log_info("event=output_deleted output=%s course=%s", o->output_id, o->course_id);
	return rc;
}

int gradeq_report_delete_by(struct gradeq_store *st, const struct gradeq_config *cfg,
			    const char *output_id, int32_t user_id)
{
	struct gradeq_storage *stg = NULL;
	struct gradeq_output o = {0};
	bool found = false, ok = user_id < 0;
	int rc = gradeq_output_get(st, output_id, false, &o, &found);

	if (!rc && (!found || strcmp(o.state, "deleted") == 0))
		rc = gradeq_error(GRADEQ_ERR_NOT_FOUND, "no output '%s'", output_id);
	if (!rc && !ok)
		rc = gradeq_report_may_read(st, cfg, o.course_id, user_id, &ok);
	if (!rc && !ok)
		rc = gradeq_error(GRADEQ_ERR_ACCESS,
				  "user %d is not on the course team of %s nor an operator",
				  (int)user_id, o.course_id);
	if (!rc)
		rc = gradeq_storage_open(cfg, &stg);
	if (!rc)
		rc = delete_one(st, stg, &o);
	gradeq_output_release(&o);
	gradeq_storage_free(stg);
	return rc;
}

int gradeq_report_delete(struct gradeq_cli *cli, const char *output_id)
{
	struct gradeq_store *st = NULL;
	int rc = gradeq_cli_store(cli, &st);

	if (!rc)
		rc = gradeq_report_delete_by(st, cli->cfg, output_id, -1);
	gradeq_store_free(st);
	return rc;
}

int gradeq_report_purge_expired(struct gradeq_store *st, const struct gradeq_config *cfg, long *n)
{
	struct gradeq_storage *stg = NULL;
	struct gradeq_output *list = NULL;
	size_t cnt = 0;
	int rc = gradeq_output_list_expired(st, &list, &cnt);

	*n = 0;
	if (!rc && cnt)
		rc = gradeq_storage_open(cfg, &stg);
	for (size_t i = 0; i < cnt && !rc; i++) {
		if (list[i].backend && strcmp(list[i].backend, gradeq_storage_backend(stg)) != 0) {
			/* left for a purge configured with its backend */
			log_warn("event=output_purge_skipped output=%s backend=%s "
				 "output_backend=%s",
				 list[i].output_id, list[i].backend, gradeq_storage_backend(stg));
			continue;
		}
		rc = delete_one(st, stg, &list[i]);
		if (!rc)
			(*n)++;
	}
	for (size_t i = 0; i < cnt; i++)
		gradeq_output_release(&list[i]);
	free(list);
	gradeq_storage_free(stg);
	return rc;
}

/* A global operator (output_operators) may read any course's outputs. */
bool gradeq_report_is_operator(const struct gradeq_config *cfg, int32_t user)
{
	for (int i = 0; i < cfg->noutput_operators; i++)
		if (cfg->output_operators[i] == user)
			return true;
	return false;
}

/* *ok: user may read course's outputs: a global operator, or on the course
 * team now. */
int gradeq_report_may_read(struct gradeq_store *st, const struct gradeq_config *cfg,
			   const char *course_id, int32_t user, bool *ok)
{
	*ok = user > 0 && gradeq_report_is_operator(cfg, user);
	if (user <= 0)
		return 0;
	return *ok ? 0 : gradeq_output_team_member(st, course_id, user, ok);
}

int gradeq_report_link(struct gradeq_store *st, const struct gradeq_config *cfg,
		       const char *output_id, int32_t user_id, long expires_s, char *path,
		       size_t len, int64_t *expires)
{
	struct gradeq_output o = {0};
	unsigned char key[GRADEQ_LINK_KEY_MAX];
	char sig[GRADEQ_LINK_SIG_HEX];
	bool found = false, member = false;
	size_t keylen = 0;
	int rc = gradeq_link_key_read(cfg->output_link_key_file, key, &keylen);

	*expires = (int64_t)time(NULL) + expires_s;
	if (!rc)
		rc = gradeq_output_get(st, output_id, false, &o, &found);
	if (!rc && (!found || strcmp(o.state, "deleted") == 0))
		rc = gradeq_error(GRADEQ_ERR_NOT_FOUND, "no output '%s'", output_id);
	if (!rc)
		rc = gradeq_report_may_read(st, cfg, o.course_id, user_id, &member);
	if (!rc && !member)
		rc = gradeq_error(GRADEQ_ERR_ACCESS,
				  "user %d is not on the course team of %s nor an operator",
				  (int)user_id, o.course_id);
	if (!rc && strcmp(o.state, "sealed") != 0)
		rc = gradeq_error(GRADEQ_ERR_STATE, "output %s is %s, not sealed yet", o.output_id,
				  o.state);
	if (!rc) {
		gradeq_link_sign(key, keylen, o.output_id, user_id, *expires, sig);
		rc = gradeq_link_path(path, len, o.output_id, user_id, *expires, sig);
		OPENSSL_cleanse(sig, sizeof(sig));
	}
	if (!rc)
		log_info("event=output_link output=%s user=%d expires=%lld", o.output_id,
			 (int)user_id, (long long)*expires);
	OPENSSL_cleanse(key, sizeof(key));
	gradeq_output_release(&o);
	return rc;
}

int gradeq_report_url(struct gradeq_cli *cli, const char *output_id, int32_t user_id,
		      long expires_s, FILE *out)
{
	struct gradeq_store *st = NULL;
	char path[256];
	const char *base = cli->cfg->output_link_base;
	int64_t expires = 0;
	int rc = gradeq_cli_store(cli, &st);

	if (!rc)
		rc = gradeq_report_link(st, cli->cfg, output_id, user_id, expires_s, path,
					sizeof(path), &expires);
	if (!rc) {
		size_t n = strlen(base);

		fprintf(out, "%.*s%s\n", (int)(n && base[n - 1] == '/' ? n - 1 : n), base, path);
	}
	OPENSSL_cleanse(path, sizeof(path));
	gradeq_store_free(st);
	return rc;
}

/* A decimal in range, all digits, or false. */
static bool parse_int64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	int64_t v = 0;

	if (!s || !*s || strlen(s) > 18)
		return false;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		v = v * 10 + (*p - '0');
	}
	if (v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* A use-once s3 output copied from the bucket into an unlinked temporary
 * file, checked against the SHA-256 and size of its seal before a byte is
 * sent: *fd, at its start. */
static int spool_s3(struct gradeq_storage *stg, const struct gradeq_output *o, int *fd)
{
	unsigned char md[EVP_MAX_MD_SIZE], buf[65536];
	unsigned mdlen = 0;
	char got[65];
	long long n = 0;
	FILE *fp = tmpfile();
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int rc = 0;

	if (!fp || !ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		rc = gradeq_error(GRADEQ_ERR_IO, "temporary file for output %s: %s", o->output_id,
				  strerror(errno));
	if (!rc)
		rc = gradeq_storage_fetch(stg, o->key, fp);
	if (rc && rc != GRADEQ_ERR_NOT_FOUND && rc != GRADEQ_ERR_IO) {
		/* the service's refusal or absence is no verdict on the link */
		char why[256];

		snprintf(why, sizeof(why), "%s", gradeq_errmsg(rc));
		rc = gradeq_error(GRADEQ_ERR_IO, "%s", why);
	}
	if (!rc && fflush(fp) != 0)
		rc = gradeq_error(GRADEQ_ERR_IO, "temporary file: %s", strerror(errno));
	if (!rc) {
		size_t r;

		rewind(fp);
		while ((r = fread(buf, 1, sizeof(buf), fp)) > 0) {
			EVP_DigestUpdate(ctx, buf, r);
			n += (long long)r;
		}
		if (ferror(fp) || EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32)
			rc = gradeq_error(GRADEQ_ERR_IO, "reading back output %s", o->output_id);
	}
	if (!rc) {
		for (unsigned i = 0; i < 32; i++)
			snprintf(got + 2 * i, 3, "%02x", md[i]);
		if (n != o->size || strcmp(got, o->sha256) != 0)
			rc = gradeq_error(GRADEQ_ERR_IO,
					  "output %s in the bucket is not what was sealed"
					  " (%lld bytes, sha256 %.12s)",
					  o->output_id, n, got);
	}
	if (!rc) {
		*fd = dup(fileno(fp));
		if (*fd < 0 || lseek(*fd, 0, SEEK_SET) < 0)
			rc = gradeq_error(GRADEQ_ERR_IO, "temporary file: %s", strerror(errno));
	}
	if (fp)
		fclose(fp);
	EVP_MD_CTX_free(ctx);
	return rc;
}

int gradeq_report_open_download(struct gradeq_store *st, const struct gradeq_config *cfg,
				const char *output_id, const char *user, const char *expires,
				const char *sig, int *fd, long long *size, bool *use_once,
				char *redirect, size_t rlen)
{
	unsigned char key[GRADEQ_LINK_KEY_MAX];
	struct gradeq_storage *stg = NULL;
	struct gradeq_output o = {0};
	struct stat sb;
	char path[4096];
	int64_t uid = 0, exp = 0;
	size_t keylen = 0;
	bool found = false, member = false;
	int rc;

	*fd = -1;
	if (rlen)
		redirect[0] = '\0';
	if (!parse_int64(user, 1, INT32_MAX, &uid) || !parse_int64(expires, 0, INT64_MAX / 2, &exp))
		return gradeq_error(GRADEQ_ERR_ACCESS, "link has no valid user or expiry");
	rc = gradeq_link_key_read(cfg->output_link_key_file, key, &keylen);
	if (!rc)
		rc = gradeq_link_verify(key, keylen, output_id, (int32_t)uid, exp, sig, time(NULL));
	OPENSSL_cleanse(key, sizeof(key));
	if (!rc)
		rc = gradeq_output_get(st, output_id, false, &o, &found);
	if (!rc && (!found || strcmp(o.state, "sealed") != 0))
		rc = gradeq_error(GRADEQ_ERR_NOT_FOUND, "no sealed output '%s'", output_id);
	if (!rc)
		rc = gradeq_report_may_read(st, cfg, o.course_id, (int32_t)uid, &member);
	if (!rc && !member)
		rc = gradeq_error(GRADEQ_ERR_ACCESS,
				  "user %d is no longer on the course team of %s nor an operator",
				  (int)uid, o.course_id);
	if (!rc)
		rc = gradeq_storage_open(cfg, &stg);
	if (!rc && strcmp(gradeq_storage_backend(stg), "s3") == 0 && !o.use_once) {
		/* the bytes go from the bucket: a short-lived presigned GET */
		rc = gradeq_storage_presign(stg, o.key, cfg->s3_link_ttl_s, redirect, rlen);
		gradeq_storage_free(stg);
		gradeq_output_release(&o);
		return rc;
	}
	if (!rc && strcmp(gradeq_storage_backend(stg), "s3") == 0) {
		/* use-once on s3: the bucket cannot say when a presigned
		 * transfer ended, so gradeq-web sends the bytes itself and
		 * deletes the object after the last one went out */
		rc = spool_s3(stg, &o, fd);
	} else if (!rc) {
		rc = gradeq_storage_path(stg, o.key, path, sizeof(path));
		if (!rc && (*fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			rc = gradeq_error(GRADEQ_ERR_NOT_FOUND, "output %s: %s", o.output_id,
					  strerror(errno));
	}
	if (!rc) {
		if (fstat(*fd, &sb) < 0)
			rc = gradeq_error(GRADEQ_ERR_IO, "output %s: %s", o.output_id,
					  strerror(errno));
	}
	if (!rc) {
		*size = (long long)sb.st_size;
		*use_once = o.use_once;
	} else if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
	gradeq_storage_free(stg);
	gradeq_output_release(&o);
	return rc;
}

int gradeq_report_downloaded(struct gradeq_store *st, const struct gradeq_config *cfg,
			     const char *output_id)
{
	struct gradeq_storage *stg = NULL;
	struct gradeq_output o = {0};
	bool found = false;
	int rc = gradeq_output_mark_downloaded(st, output_id);

	if (!rc)
		rc = gradeq_output_get(st, output_id, false, &o, &found);
	if (!rc && found && o.use_once && strcmp(o.state, "deleted") != 0) {
		rc = gradeq_storage_open(cfg, &stg);
		if (!rc)
			rc = delete_one(st, stg, &o);
	}
	gradeq_storage_free(stg);
	gradeq_output_release(&o);
	return rc;
}
