/* gradeq-web's JSON routes (docs/web-api.md): sessions, the reads and the
 * actions, each through the same library code as the command-line
 * programs. The library is used under lib_lock, one request at a time. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "gradeq/deadletters.h"
#include "gradeq/history.h"
#include "gradeq/log.h"
#include "gradeq/parse.h"
#include "gradeq/status.h"
#include "gradeq/webstore.h"
#include "web/internal.h"

/* status's release depths (an AMQP connection and a management API read
 * each) are kept this long: the page re-reads status on every event */
#define RELEASES_CACHE_MS 1000

/* ---- forms ---- */

static int hexval(int c)
{
	return isdigit(c) ? c - '0' : isxdigit(c) ? (tolower(c) - 'a' + 10) : -1;
}

/* The value of name in an application/x-www-form-urlencoded body, decoded
 * into buf; false when absent or too long. */
static bool form_value(const char *body, const char *name, char *buf, size_t len)
{
	size_t nl = strlen(name);

	for (const char *p = body; p && *p; p = strchr(p, '&'), p = p ? p + 1 : NULL) {
		size_t o = 0;

		if (strncmp(p, name, nl) != 0 || p[nl] != '=')
			continue;
		for (p += nl + 1; *p && *p != '&'; p++) {
			int c = (unsigned char)*p;

			if (c == '+') {
				c = ' ';
			} else if (c == '%' && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
				c = hexval(p[1]) * 16 + hexval(p[2]);
				p += 2;
			}
			if (o + 1 >= len)
				return false;
			buf[o++] = (char)c;
		}
		buf[o] = '\0';
		return true;
	}
	return false;
}

static char *session_json(const struct gradeq_web_session *s)
{
	json_t *o = json_pack("{s:s,s:s,s:s}", "user", s->user, "role",
			      gradeq_web_role_name(s->role), "csrf_token", s->csrf);
	char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return t;
}

/* A fixed SHA-512 setting: an unknown user costs what a known one does. */
static const char dummy_hash[] = "$6$gradeqwebdummy$";

int api_login(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r)
{
	struct web *w = q->w;
	char user[GRADEQ_WEB_NAME_MAX] = "", pw[1024] = "", kaddr[80], kuser[80];
	const struct gradeq_web_user *u;
	struct gradeq_web_session s;
	time_t now = time(NULL);
	long wait;
	bool ok;

	(void)p;
	if (!q->body || !form_value(q->body, "user", user, sizeof(user)) ||
	    !form_value(q->body, "password", pw, sizeof(pw)))
		return reply_error(r, 400, "expected a form body user=NAME&password=PW");
	snprintf(kaddr, sizeof(kaddr), "addr:%s", q->addr);
	snprintf(kuser, sizeof(kuser), "user:%s", user);
	pthread_mutex_lock(&w->auth_lock);
	wait = gradeq_web_rl_wait(&w->rl, kaddr, now);
	if (!wait)
		wait = gradeq_web_rl_wait(&w->rl, kuser, now);
	pthread_mutex_unlock(&w->auth_lock);
	if (wait) {
		OPENSSL_cleanse(pw, sizeof(pw));
		r->retry_after = wait;
		log_warn("event=login_throttled user=%s addr=%s retry_after=%ld", user, q->addr,
			 wait);
		return reply_error(r, 429, "too many failed logins: try again in %ld s", wait);
	}
	u = gradeq_web_users_find(&w->users, user);
	ok = gradeq_web_password_ok(u ? u->hash : dummy_hash, pw) && u;
	OPENSSL_cleanse(pw, sizeof(pw));
	pthread_mutex_lock(&w->auth_lock);
	if (!ok) {
		gradeq_web_rl_fail(&w->rl, kaddr, now);
		gradeq_web_rl_fail(&w->rl, kuser, now);
	} else {
		gradeq_web_rl_ok(&w->rl, kuser);
		ok = gradeq_web_session_open(&w->sessions, u->name, u->role, now, &s) == 0;
	}
	pthread_mutex_unlock(&w->auth_lock);
	if (!ok) {
		log_warn("event=login_failed user=%s addr=%s", user, q->addr);
		return reply_error(r, 401, "wrong user or password");
	}
	q->authed = true;
	q->s = s;
	snprintf(r->cookie, sizeof(r->cookie),
		 "gradeq_session=%s; Path=/; HttpOnly; SameSite=Strict%s", s.token,
		 w->tls ? "; Secure" : "");
	log_info("event=login user=%s role=%s addr=%s", u->name, gradeq_web_role_name(u->role),
		 q->addr);
	return reply_json(r, 200, session_json(&s));
}

int api_session(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r)
{
	(void)p;
	return reply_json(r, 200, session_json(&q->s));
}

int api_logout(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r)
{
	(void)p;
	pthread_mutex_lock(&q->w->auth_lock);
	gradeq_web_session_close(&q->w->sessions, q->s.token);
	pthread_mutex_unlock(&q->w->auth_lock);
	snprintf(r->cookie, sizeof(r->cookie),
		 "gradeq_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0%s",
		 q->w->tls ? "; Secure" : "");
	return reply_json(r, 200, strdup("{}"));
}

/* ---- reads ---- */

static bool uuid_ok(const char *s)
{
	static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";

	if (strlen(s) != sizeof(shape) - 1)
		return false;
	for (size_t i = 0; shape[i]; i++)
		if (shape[i] == '-' ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
			return false;
	return true;
}

long ms_between(const struct timespec *a, const struct timespec *b)
{
	return (long)(b->tv_sec - a->tv_sec) * 1000 + (b->tv_nsec - a->tv_nsec) / 1000000;
}

/* The document of gradeq-admin status --json (runs of run, or the last
 * 20), with lib_lock held. */
static int status_doc(struct web *w, struct gradeq_store *st, const char *run, char **out)
{
	struct timespec now;
	char *runs = NULL, *rel = NULL;
	size_t n;
	int rc;

	*out = NULL;
	rc = gradeq_status_runs_json(st, run, &runs);
	if (rc)
		return rc;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (w->releases_cache && ms_between(&w->releases_at, &now) < RELEASES_CACHE_MS) {
		rel = strdup(w->releases_cache);
		rc = rel ? 0 : GRADEQ_ERR_NOMEM;
	} else {
		rc = gradeq_status_releases_json(w->cli, st, &rel);
		if (!rc) {
			free(w->releases_cache);
			w->releases_cache = strdup(rel);
			w->releases_at = now;
		}
	}
	if (!rc) {
		n = strlen(runs) + strlen(rel) + 32;
		*out = malloc(n);
		if (*out)
			snprintf(*out, n, "{\"runs\":%s,\"releases\":%s}", runs, rel);
		else
			rc = GRADEQ_ERR_NOMEM;
	}
	free(runs);
	free(rel);
	return rc;
}

static int db_error(struct reply *r, int rc)
{
	if (rc == GRADEQ_ERR_DB_TRANSIENT || rc == GRADEQ_ERR_BROKER)
		return reply_error(r, 503, "the database or the broker cannot be reached");
	return reply_error(r, 500, "%s", gradeq_errmsg(rc));
}

int api_status(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r)
{
	const char *run = req_arg(q, "run");
	struct gradeq_store *st;
	char *doc = NULL;
	int rc;

	(void)p;
	if (run && !uuid_ok(run))
		return reply_error(r, 400, "run must be a run id");
	pthread_mutex_lock(&q->w->lib_lock);
	rc = web_store(q->w, &st);
	if (!rc && run && gradeq_status_run_known(st, run) == GRADEQ_ERR_NOT_FOUND) {
		pthread_mutex_unlock(&q->w->lib_lock);
		return reply_error(r, 404, "no such run");
	}
	if (!rc)
		rc = status_doc(q->w, st, run, &doc);
	pthread_mutex_unlock(&q->w->lib_lock);
	if (rc)
		return db_error(r, rc);
	return reply_json(r, 200, doc);
}

/* Runs one webstore read under lib_lock; 404 when it found nothing. */
#define STORE_READ(q, r, call, what)                                                               \
	do {                                                                                       \
		struct gradeq_store *st;                                                           \
		char *out = NULL;                                                                  \
		int rc_;                                                                           \
		pthread_mutex_lock(&(q)->w->lib_lock);                                             \
		rc_ = web_store((q)->w, &st);                                                      \
		if (!rc_)                                                                          \
			rc_ = call;                                                                \
		pthread_mutex_unlock(&(q)->w->lib_lock);                                           \
		if (rc_)                                                                           \
			return db_error(r, rc_);                                                   \
		if (!out)                                                                          \
			return reply_error(r, 404, "no such %s", what);                            \
		return reply_json(r, 200, out);                                                    \
	} while (0)

int api_states(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r)
{
	(void)p;
	STORE_READ(q, r, gradeq_webstore_states(st, &out), "state machine");
}

int api_run(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r)
{
	struct gradeq_store *st;
	char *runs = NULL, *extra = NULL, *text = NULL;
	json_t *arr = NULL, *doc = NULL;
	int rc;

	if (!uuid_ok(p[0]))
		return reply_error(r, 404, "no such run");
	pthread_mutex_lock(&q->w->lib_lock);
	rc = web_store(q->w, &st);
	if (!rc)
		rc = gradeq_status_runs_json(st, p[0], &runs);
	if (!rc)
		rc = gradeq_webstore_run(st, p[0], &extra);
	pthread_mutex_unlock(&q->w->lib_lock);
	if (rc) {
		free(runs);
		return db_error(r, rc);
	}
	arr = runs ? json_loads(runs, 0, NULL) : NULL;
	doc = extra ? json_loads(extra, 0, NULL) : NULL;
	if (!extra || !json_is_array(arr) || json_array_size(arr) != 1 || !doc) {
		reply_error(r, 404, "no such run");
	} else {
		json_object_set(doc, "run", json_array_get(arr, 0));
		text = json_dumps(doc, JSON_COMPACT);
		reply_json(r, 200, text);
	}
	json_decref(arr);
	json_decref(doc);
	free(runs);
	free(extra);
	return 0;
}

/* An integer query argument from min to max, def when absent: false when
 * malformed. */
static bool arg_long(struct req *q, const char *name, long def, long min, long max, long *out)
{
	const char *s = req_arg(q, name);

	*out = def;
	return !s || gradeq_parse_long(s, min, max, out) == 0;
}

int api_run_jobs(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r)
{
	const char *state = req_arg(q, "state"), *course = req_arg(q, "course");
	enum gradeq_job_state js;
	long limit, offset;

	if (!uuid_ok(p[0]))
		return reply_error(r, 404, "no such run");
	if (state && !*state)
		state = NULL;
	if (course && !*course)
		course = NULL;
	if (state && !gradeq_job_state_parse(state, &js))
		return reply_error(r, 400, "state must be a job state");
	if (!arg_long(q, "limit", 100, 1, 1000, &limit) ||
	    !arg_long(q, "offset", 0, 0, 1000000000, &offset))
		return reply_error(r, 400, "limit must be 1 to 1000 and offset 0 or more");
	STORE_READ(q, r, gradeq_webstore_jobs(st, p[0], state, course, limit, offset, &out), "run");
}

int api_job(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r)
{
	if (!uuid_ok(p[0]))
		return reply_error(r, 404, "no such job");
	STORE_READ(q, r, gradeq_webstore_job(st, p[0], &out), "job");
}

int api_dead(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r)
{
	const char *release = req_arg(q, "release"), *course = req_arg(q, "course"),
		   *reason = req_arg(q, "reason");
	long limit;

	(void)p;
	if (release && !*release)
		release = NULL;
	if (course && !*course)
		course = NULL;
	if (reason && !*reason)
		reason = NULL;
	if (!arg_long(q, "limit", 100, 1, 1000, &limit))
		return reply_error(r, 400, "limit must be 1 to 1000");
	STORE_READ(q, r, gradeq_webstore_dead(st, release, course, reason, limit, &out), "job");
}

/* ---- actions ---- */

/* The action's JSON body, with "confirm": true; NULL after a 400. */
static json_t *action_body(struct req *q, struct reply *r)
{
	json_t *o = q->body ? json_loads(q->body, 0, NULL) : NULL;

	if (!json_is_object(o)) {
		json_decref(o);
		reply_error(r, 400, "the body must be a JSON object");
		return NULL;
	}
	if (!json_is_true(json_object_get(o, "confirm"))) {
		json_decref(o);
		reply_error(r, 400, "the action is not confirmed: send \"confirm\": true");
		return NULL;
	}
	return o;
}

int api_cancel(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r)
{
	struct gradeq_store *st;
	enum gradeq_run_state was;
	json_t *body = action_body(q, r), *o;
	char by[GRADEQ_WEB_NAME_MAX + 8];
	long canceled = 0;
	int rc;

	if (!body)
		return 0;
	json_decref(body);
	if (!uuid_ok(p[0]))
		return reply_error(r, 404, "no such run");
	snprintf(by, sizeof(by), "web:%s", q->s.user);
	pthread_mutex_lock(&q->w->lib_lock);
	rc = web_store(q->w, &st);
	if (!rc)
		rc = gradeq_webstore_unfinished_jobs(st, p[0], &canceled);
	if (!rc)
		rc = gradeq_history_cancel(st, p[0], by, &was);
	if (rc == GRADEQ_ERR_NOT_FOUND || rc == GRADEQ_ERR_STATE) {
		char msg[300];

		snprintf(msg, sizeof(msg), "%s", gradeq_errmsg(rc));
		pthread_mutex_unlock(&q->w->lib_lock);
		return reply_error(r, rc == GRADEQ_ERR_STATE ? 409 : 404, "%s", msg);
	}
	pthread_mutex_unlock(&q->w->lib_lock);
	if (rc)
		return db_error(r, rc);
	log_info("event=run_canceled run=%s by=%s was=%s", p[0], by, gradeq_run_state_name(was));
	o = json_pack("{s:s,s:I}", "run_id", p[0], "canceled_jobs",
		      (json_int_t)(was == GRADEQ_RUN_CANCELED ? 0 : canceled));
	reply_json(r, 200, o ? json_dumps(o, JSON_COMPACT) : NULL);
	json_decref(o);
	return 0;
}

/* ---- consumers ---- */

/* Parses "gradeq-consumer release=R host=H pid=P role=consume" into its
 * parts and id, the jobs' consumer column ("H:P"); false for other
 * connections. */
static bool consumer_name(const char *name, char *id, size_t idlen, char *release, char *host,
			  long *pid)
{
	const char *role;

	if (!name || strncmp(name, "gradeq-consumer release=", 24) != 0)
		return false;
	if (sscanf(name, "gradeq-consumer release=%63s host=%127s pid=%ld", release, host, pid) !=
	    3)
		return false;
	role = strstr(name, " role=");
	/* a consumer also has a publishing connection: list it once */
	if (role && strcmp(role, " role=consume") != 0)
		return false;
	/* what the consumer records as its jobs' consumer */
	snprintf(id, idlen, "%s:%ld", host, *pid);
	return true;
}

static json_t *consumer_entry(struct gradeq_store *st, json_t *conn)
{
	json_t *props = json_object_get(conn, "client_properties");
	const char *name = json_string_value(json_object_get(conn, "user_provided_name"));
	json_t *at = json_object_get(conn, "connected_at"), *e = NULL, *db = NULL, *job;
	char id[300], release[64], host[128], since[32], *extra = NULL, iso[40] = "";
	long pid;

	if (!name)
		name = json_string_value(json_object_get(props, "connection_name"));
	if (!consumer_name(name, id, sizeof(id), release, host, &pid))
		return NULL;
	snprintf(since, sizeof(since), "%lld", (long long)json_integer_value(at));
	if (json_is_integer(at)) {
		time_t t = (time_t)(json_integer_value(at) / 1000);
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	if (gradeq_webstore_consumer_jobs(st, id, since, &extra) == 0 && extra)
		db = json_loads(extra, 0, NULL);
	free(extra);
	job = json_object_get(db, "job");
	e = json_pack("{s:s,s:s,s:I,s:s,s:s*,s:O?,s:O?,s:O?,s:O?,s:O?}", "connection", name, "host",
		      host, "pid", (json_int_t)pid, "release", release, "connected_at",
		      iso[0] ? iso : NULL, "job_id", json_object_get(job, "job_id"), "course_id",
		      json_object_get(job, "course_id"), "holding_s",
		      json_object_get(job, "holding_s"), "done", json_object_get(db, "done"),
		      "failed", json_object_get(db, "failed"));
	json_decref(db);
	return e;
}

int api_consumers(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r)
{
	const struct gradeq_config *cfg = q->w->cli->cfg;
	struct gradeq_store *st;
	char *url = NULL, *conns = NULL;
	json_t *arr = NULL, *list = json_array(), *o;
	size_t i;
	int rc;

	(void)p;
	if (!cfg->management_url) {
		json_decref(list);
		return reply_error(r, 503, "management_url is not set: consumers are unknown");
	}
	pthread_mutex_lock(&q->w->lib_lock);
	rc = gradeq_config_amqp_url(cfg, &url);
	if (!rc)
		rc = gradeq_mgmt_connections(cfg->management_url, url, cfg->amqp_cacert, 5000,
					     &conns);
	if (url)
		OPENSSL_cleanse(url, strlen(url));
	free(url);
	if (!rc)
		rc = web_store(q->w, &st);
	if (!rc && (arr = json_loads(conns, 0, NULL)) && json_is_array(arr)) {
		json_t *c;

		json_array_foreach(arr, i, c)
		{
			json_t *e = consumer_entry(st, c);

			if (e)
				json_array_append_new(list, e);
		}
	}
	pthread_mutex_unlock(&q->w->lib_lock);
	free(conns);
	json_decref(arr);
	if (rc) {
		json_decref(list);
		return reply_error(r, 503, "%s", gradeq_errmsg(rc));
	}
	o = json_pack("{s:o}", "consumers", list);
	reply_json(r, 200, o ? json_dumps(o, JSON_COMPACT) : NULL);
	json_decref(o);
	return 0;
}

/* ---- dead jobs ---- */

/* Reads the filters of a dead-jobs action into o: 0, or a 400 in r. */
static int dead_options(json_t *body, struct gradeq_dl_options *o, struct reply *r)
{
	const char *course = json_string_value(json_object_get(body, "course"));
	json_t *limit = json_object_get(body, "limit"), *rate = json_object_get(body, "rate");

	o->release = json_string_value(json_object_get(body, "release"));
	o->to_release = json_string_value(json_object_get(body, "to_release"));
	o->f.reason = json_string_value(json_object_get(body, "reason"));
	o->f.older_than = -1;
	o->limit = -1;
	if (!o->release || !gradeq_release_name_ok(o->release))
		return reply_error(r, 400, "release must be a release name"), -1;
	if (o->to_release && !gradeq_release_name_ok(o->to_release))
		return reply_error(r, 400, "to_release must be a release name"), -1;
	if (course && *course) {
		o->f.courses[0] = course;
		o->f.ncourses = 1;
	}
	if (o->f.reason && !*o->f.reason)
		o->f.reason = NULL;
	if (limit && !json_is_null(limit)) {
		if (!json_is_integer(limit) || json_integer_value(limit) < 0)
			return reply_error(r, 400, "limit must be a whole number"), -1;
		o->limit = (long)json_integer_value(limit);
	}
	if (rate && !json_is_null(rate)) {
		if (!json_is_number(rate) || json_number_value(rate) < 0 ||
		    json_number_value(rate) > 100000)
			return reply_error(r, 400, "rate must be a number of messages a second"),
			       -1;
		o->rate = json_number_value(rate);
	}
	o->yes = true;
	o->silent = true;
	return 0;
}

/* Runs a gradeq-replay command for the operator: 0, or the error in r. */
static int dead_run(struct req *q, struct gradeq_dl_options *o, struct reply *r)
{
	char by[GRADEQ_WEB_NAME_MAX + 8];
	int rc;

	snprintf(by, sizeof(by), "web:%s", q->s.user);
	o->by = by;
	pthread_mutex_lock(&q->w->lib_lock);
	rc = gradeq_dl_run(q->w->cli, o);
	if (rc) {
		char msg[400];

		snprintf(msg, sizeof(msg), "%s", gradeq_errmsg(rc));
		pthread_mutex_unlock(&q->w->lib_lock);
		log_warn("event=dead_action_failed cmd=%s release=%s by=%s error=%s",
			 gradeq_dl_cmd_name(o->cmd), o->release, by, msg);
		if (rc == GRADEQ_ERR_NOT_FOUND)
			return reply_error(r, 404, "%s", msg), -1;
		if (rc == GRADEQ_ERR_BROKER || rc == GRADEQ_ERR_DB_TRANSIENT)
			return reply_error(r, 503, "%s", msg), -1;
		return reply_error(r, 409, "%s", msg), -1;
	}
	pthread_mutex_unlock(&q->w->lib_lock);
	log_info("event=dead_action cmd=%s release=%s by=%s acted=%ld matched=%ld",
		 gradeq_dl_cmd_name(o->cmd), o->release, by, o->result->acted, o->result->matched);
	return 0;
}

/* The request of dead-jobs action cmd: its body, with o read from it (o's
 * strings point into the body: the caller frees it after o), or NULL with
 * the answer (400) in r. */
static json_t *dead_request(struct req *q, enum gradeq_dl_cmd cmd, struct gradeq_dl_options *o,
			    struct gradeq_dl_result *res, struct reply *r)
{
	json_t *body = action_body(q, r);

	if (!body)
		return NULL;
	memset(o, 0, sizeof(*o));
	o->cmd = cmd;
	o->result = res;
	if (dead_options(body, o, r)) {
		json_decref(body);
		return NULL;
	}
	return body;
}

/* Dead-jobs action cmd as the request asks: 0 with *res filled in, or -1
 * with the answer in r. */
static int dead_action(struct req *q, enum gradeq_dl_cmd cmd, struct gradeq_dl_result *res,
		       struct reply *r)
{
	struct gradeq_dl_options o;
	json_t *body = dead_request(q, cmd, &o, res, r);
	int rc;

	if (!body)
		return -1;
	rc = dead_run(q, &o, r);
	json_decref(body);
	return rc;
}

int api_dead_replay(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r)
{
	struct gradeq_dl_result res = {0, 0, 0, 0};
	json_t *out;

	(void)p;
	if (dead_action(q, GRADEQ_DL_REPLAY, &res, r))
		return 0;
	out = json_pack("{s:I,s:I,s:I}", "replayed", (json_int_t)res.acted, "skipped",
			(json_int_t)res.skipped, "matched", (json_int_t)res.matched);
	reply_json(r, 200, out ? json_dumps(out, JSON_COMPACT) : NULL);
	json_decref(out);
	return 0;
}

int api_dead_purge(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r)
{
	struct gradeq_dl_result res = {0, 0, 0, 0};
	json_t *out;

	(void)p;
	if (dead_action(q, GRADEQ_DL_PURGE, &res, r))
		return 0;
	out = json_pack("{s:I}", "purged", (json_int_t)res.acted);
	reply_json(r, 200, out ? json_dumps(out, JSON_COMPACT) : NULL);
	json_decref(out);
	return 0;
}

/* The export file goes to a private directory, is read back as the
 * answer, and removed. */
int api_dead_export(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r)
{
	struct gradeq_dl_result res = {0, 0, 0, 0};
	struct gradeq_dl_options o;
	json_t *body = dead_request(q, GRADEQ_DL_EXPORT, &o, &res, r);
	char dir[] = "/tmp/gradeq-web.XXXXXX", path[64];
	FILE *f = NULL;
	long n;

	(void)p;
	if (!body)
		return 0;
	if (!mkdtemp(dir)) {
		reply_error(r, 500, "cannot create a private directory for the export");
		goto out;
	}
	snprintf(path, sizeof(path), "%s/export", dir);
	o.file = path;
	if (dead_run(q, &o, r))
		goto clean;
	f = fopen(path, "rb");
	if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
		reply_error(r, 500, "cannot read the export back");
		goto clean;
	}
	free(r->body);
	r->body = malloc((size_t)n + 1);
	if (!r->body || fread(r->body, 1, (size_t)n, f) != (size_t)n) {
		reply_error(r, 500, "cannot read the export back");
		goto clean;
	}
	r->body[n] = '\0';
	r->len = (size_t)n;
	r->status = 200;
	r->ctype = "application/octet-stream";
	snprintf(r->disposition, sizeof(r->disposition),
		 "attachment; filename=\"gradeq-dead-%s.jsonl\"", o.release);
clean:
	if (f)
		fclose(f);
	unlink(path);
	rmdir(dir);
out:
	json_decref(body);
	return 0;
}
