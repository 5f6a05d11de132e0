/* gradeq-web's job outputs (grade reports). /outputs/ID serves signed,
 * expiring links (gradeq-report url, or minted for a signed-in user by
 * POST /api/outputs/ID/link). No session there: the link is the
 * credential, checked with the course team at download time (report.c);
 * a file goes out by sendfile (MHD_create_response_from_fd); a kept s3
 * output by redirect to a presigned GET; a use-once s3 output from a
 * checked temporary copy, so that the object can be deleted after the
 * last byte. A refused link is a 403 and a log line.
 *
 * The /api/outputs routes act for the platform user the dashboard user
 * maps to (the users file's fourth field): its course team roles or its
 * place in output_operators decide what it may download or delete. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "gradeq/log.h"
#include "gradeq/outputs.h"
#include "gradeq/report.h"
#include "web/internal.h"

/* Claims a use-once output for one download (lib_lock held): false when
 * another download of it is under way here, or too many are. */
static bool once_claim(struct web *w, const char *id, bool *busy)
{
	int free_slot = -1;

	*busy = false;
	for (int i = 0; i < (int)(sizeof(w->once_busy) / sizeof(w->once_busy[0])); i++) {
		if (strcmp(w->once_busy[i], id) == 0) {
			*busy = true;
			return false;
		}
		if (!w->once_busy[i][0] && free_slot < 0)
			free_slot = i;
	}
	if (free_slot < 0)
		return false;
	snprintf(w->once_busy[free_slot], sizeof(w->once_busy[free_slot]), "%s", id);
	return true;
}

static void once_release(struct web *w, const char *id)
{
	for (size_t i = 0; i < sizeof(w->once_busy) / sizeof(w->once_busy[0]); i++)
		if (strcmp(w->once_busy[i], id) == 0)
			w->once_busy[i][0] = '\0';
}

int api_output_download(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r)
{
	const char *user = req_arg(q, "user"), *expires = req_arg(q, "expires"),
		   *sig = req_arg(q, "sig");
	struct gradeq_store *st;
	long long size = 0;
	bool use_once = false, busy = false;
	char disp[128], redirect[2048] = "";
	int fd = -1, rc;

	pthread_mutex_lock(&q->w->lib_lock);
	rc = web_store(q->w, &st);
	if (!rc)
		rc = gradeq_report_open_download(st, q->w->cli->cfg, p[0], user, expires, sig, &fd,
						 &size, &use_once, redirect, sizeof(redirect));
	if (rc == GRADEQ_ERR_ACCESS)
		log_warn("event=output_link_refused output=%s user=%s addr=%s reason=\"%s\"", p[0],
			 user ? user : "-", q->addr, gradeq_errmsg(rc));
	else if (rc && rc != GRADEQ_ERR_NOT_FOUND)
		log_warn("event=output_unreadable output=%s error=\"%s\"", p[0], gradeq_errmsg(rc));
	if (!rc && use_once) {
		/* one download at a time: the first to complete deletes it */
		q->once_claim = once_claim(q->w, p[0], &busy);
		if (!q->once_claim) {
			close(fd);
			rc = GRADEQ_ERR_STATE;
		}
	}
	pthread_mutex_unlock(&q->w->lib_lock);
	if (rc == GRADEQ_ERR_ACCESS)
		return reply_error(r, 403, "this link is not valid");
	if (rc == GRADEQ_ERR_NOT_FOUND)
		return reply_error(r, 404, "no such output");
	if (rc == GRADEQ_ERR_STATE && busy)
		return reply_error(r, 409, "this use-once output is being downloaded");
	if (rc == GRADEQ_ERR_STATE) {
		r->retry_after = 5;
		return reply_error(r, 503, "too many use-once downloads under way");
	}
	if (rc == GRADEQ_ERR_IO)
		return reply_error(r, 502, "the output cannot be read now");
	if (rc)
		return reply_error(r, 503, "the database cannot be reached");
	if (redirect[0]) {
		/* s3 backend, kept output: the bucket serves the bytes through a
		 * short-lived presigned GET (a use-once one came as a file) */
		r->raw = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
		if (!r->raw)
			return reply_error(r, 500, "out of memory");
		r->status = 302;
		MHD_add_response_header(r->raw, "Location", redirect);
		MHD_add_response_header(r->raw, "Cache-Control", "no-store");
		snprintf(q->downloaded, sizeof(q->downloaded), "%s", p[0]);
		return 0;
	}
	/* sendfile from the output (file backend) or from the checked copy of
	 * a use-once s3 object */
	snprintf(q->downloaded, sizeof(q->downloaded), "%s", p[0]);
	r->raw = MHD_create_response_from_fd((uint64_t)size, fd);
	if (!r->raw) {
		close(fd);
		return reply_error(r, 500, "out of memory");
	}
	r->status = 200;
	MHD_add_response_header(r->raw, "Content-Type", "text/csv; charset=utf-8");
	snprintf(disp, sizeof(disp), "attachment; filename=\"%s.csv\"", p[0]);
	MHD_add_response_header(r->raw, "Content-Disposition", disp);
	if (use_once)
		MHD_add_response_header(r->raw, "Cache-Control", "no-store");
	/* on_done() records the download once it is complete */
	return 0;
}

void web_output_done(struct web *w, const char *output_id, bool complete, bool once)
{
	struct gradeq_store *st;
	int rc = 0;

	pthread_mutex_lock(&w->lib_lock);
	if (complete) {
		rc = web_store(w, &st);
		if (!rc)
			rc = gradeq_report_downloaded(st, w->cli->cfg, output_id);
		if (rc)
			log_warn("event=output_download_not_recorded output=%s error=\"%s\"",
				 output_id, gradeq_errmsg(rc));
		else
			log_info("event=output_downloaded output=%s use_once=%s", output_id,
				 once ? "true" : "false");
	} else {
		log_info("event=output_download_incomplete output=%s", output_id);
	}
	/* released after the delete: a request meanwhile got 409, one after
	 * gets 404 */
	if (once)
		once_release(w, output_id);
	pthread_mutex_unlock(&w->lib_lock);
}

/* The platform user a dashboard user acts as when it reads outputs: the
 * users file's fourth field (0: none). Users are read once at start. */
static int32_t platform_user(const struct req *q)
{
	const struct gradeq_web_user *u = gradeq_web_users_find(&q->w->users, q->s.user);

	return u ? u->platform_user : 0;
}

#define NO_PLATFORM_USER                                                                           \
	"your dashboard user is mapped to no platform user: ask the administrator to add your"     \
	" platform user id to the users file (name:role:hash:PLATFORM_USER_ID)"

/* A download link lives this long: minted on each click, used at once. */
#define WEB_OUTPUT_LINK_TTL_S 300

/* The start of a route that acts on an output for the dashboard user's
 * platform user: that user's id, with lib_lock taken and *rc set to
 * web_store()'s result (the route goes on while *rc is 0, then unlocks);
 * or 0, lib_lock not taken and r a 403, when it maps to no platform user. */
static int32_t platform_user_begin(struct req *q, struct reply *r, struct gradeq_store **st,
				   int *rc)
{
	int32_t uid = platform_user(q);

	if (uid <= 0) {
		reply_error(r, 403, "%s", NO_PLATFORM_USER);
		return 0;
	}
	pthread_mutex_lock(&q->w->lib_lock);
	*rc = web_store(q->w, st);
	return uid;
}

/* The answers of those routes to what the report module refuses: 403 when
 * platform user uid is not on the output's course team, 404 when there is
 * no such output. True when rc is one of those (r holds the answer). */
static bool output_refused(struct reply *r, int rc, int32_t uid)
{
	if (rc == GRADEQ_ERR_ACCESS)
		reply_error(r, 403, "platform user %d is not on this output's course team",
			    (int)uid);
	else if (rc == GRADEQ_ERR_NOT_FOUND)
		reply_error(r, 404, "no such output");
	else
		return false;
	return true;
}

int api_outputs(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r)
{
	const char *course = req_arg(q, "course");
	int32_t uid = platform_user(q);
	struct gradeq_store *st;
	char *out = NULL;
	bool may = false;
	json_t *a = NULL, *o;
	size_t i;
	int rc;

	(void)p;
	if (!course || !*course || strlen(course) > 255)
		return reply_error(r, 400, "give course=ID");
	pthread_mutex_lock(&q->w->lib_lock);
	rc = web_store(q->w, &st);
	if (!rc)
		rc = gradeq_report_list_json(st, course, &out);
	if (!rc && uid > 0)
		rc = gradeq_report_may_read(st, q->w->cli->cfg, course, uid, &may);
	pthread_mutex_unlock(&q->w->lib_lock);
	if (rc) {
		free(out);
		return reply_error(r, 503, "the database cannot be reached");
	}
	/* each output says whether this user may download it (and delete it):
	 * sealed, and the user's platform user on the course team or an
	 * operator */
	a = json_loads(out, 0, NULL);
	free(out);
	if (!a)
		return reply_error(r, 500, "out of memory");
	json_array_foreach(a, i, o)
	{
		const char *state = json_string_value(json_object_get(o, "state"));

		json_object_set_new(o, "can_download",
				    json_boolean(may && state && strcmp(state, "sealed") == 0));
		json_object_set_new(o, "can_delete",
				    json_boolean(may && state && strcmp(state, "deleted") != 0));
	}
	out = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	return reply_json(r, 200, out);
}

int api_output_courses(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r)
{
	int32_t uid = platform_user(q);
	bool op = uid > 0 && gradeq_report_is_operator(q->w->cli->cfg, uid);
	struct gradeq_store *st;
	char **courses = NULL;
	size_t n = 0;
	json_t *o, *a;
	int rc = 0;

	(void)p;
	if (uid > 0) {
		pthread_mutex_lock(&q->w->lib_lock);
		rc = web_store(q->w, &st);
		if (!rc)
			rc = gradeq_output_courses(st, op ? 0 : uid, &courses, &n);
		pthread_mutex_unlock(&q->w->lib_lock);
	}
	if (rc)
		return reply_error(r, 503, "the database cannot be reached");
	a = json_array();
	for (size_t i = 0; i < n; i++) {
		json_array_append_new(a, json_string(courses[i]));
		free(courses[i]);
	}
	free(courses);
	o = json_pack(
		"{s:s,s:o,s:b,s:o,s:o}", "user", q->s.user, "platform_user",
		uid > 0 ? json_integer(uid) : json_null(), "operator", op, "courses", a, "message",
		uid > 0 ? (n ? json_null() : json_string("your platform user is on no course team"))
			: json_string(NO_PLATFORM_USER));
	if (!o)
		return reply_error(r, 500, "out of memory");
	{
		char *text = json_dumps(o, JSON_COMPACT);

		json_decref(o);
		return reply_json(r, 200, text);
	}
}

int api_output_link(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r)
{
	struct gradeq_store *st;
	char path[256];
	int64_t expires = 0;
	json_t *o;
	char *text;
	int32_t uid;
	int rc;

	uid = platform_user_begin(q, r, &st, &rc);
	if (uid <= 0)
		return 0; /* r holds the 403 */
	if (!rc)
		rc = gradeq_report_link(st, q->w->cli->cfg, p[0], uid, WEB_OUTPUT_LINK_TTL_S, path,
					sizeof(path), &expires);
	if (rc == GRADEQ_ERR_ACCESS)
		log_warn("event=output_link_refused output=%s user=%s platform_user=%d addr=%s",
			 p[0], q->s.user, (int)uid, q->addr);
	else if (!rc)
		log_info("event=output_link_minted output=%s user=%s platform_user=%d", p[0],
			 q->s.user, (int)uid);
	pthread_mutex_unlock(&q->w->lib_lock);
	if (output_refused(r, rc, uid))
		return 0;
	if (rc == GRADEQ_ERR_STATE)
		return reply_error(r, 409, "the output is not sealed yet");
	if (rc == GRADEQ_ERR_CONFIG || rc == GRADEQ_ERR_IO)
		return reply_error(r, 500, "download links are not configured on this server");
	if (rc)
		return reply_error(r, 503, "the database cannot be reached");
	o = json_pack("{s:s,s:I}", "url", path, "expires", (json_int_t)expires);
	OPENSSL_cleanse(path, sizeof(path));
	text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return reply_json(r, 200, text);
}

int api_output_delete(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r)
{
	struct gradeq_store *st;
	char *text;
	int32_t uid;
	int rc;

	uid = platform_user_begin(q, r, &st, &rc);
	if (uid <= 0)
		return 0; /* r holds the 403 */
	if (!rc)
		rc = gradeq_report_delete_by(st, q->w->cli->cfg, p[0], uid);
	if (!rc)
		log_info("event=output_deleted_by output=%s user=%s platform_user=%d", p[0],
			 q->s.user, (int)uid);
	else if (rc != GRADEQ_ERR_NOT_FOUND)
		log_warn("event=output_delete_refused output=%s user=%s platform_user=%d "
			 "error=\"%s\"",
			 p[0], q->s.user, (int)uid, gradeq_errmsg(rc));
	pthread_mutex_unlock(&q->w->lib_lock);
	if (output_refused(r, rc, uid))
		return 0;
	if (rc == GRADEQ_ERR_DB || rc == GRADEQ_ERR_DB_TRANSIENT || rc == GRADEQ_ERR_TIMEOUT)
		return reply_error(r, 503, "the database cannot be reached");
	if (rc)
		return reply_error(r, 500, "the output could not be deleted");
	{
		json_t *o = json_pack("{s:s}", "deleted", p[0]);

		text = o ? json_dumps(o, JSON_COMPACT) : NULL;
		json_decref(o);
	}
	return reply_json(r, 200, text);
}
