/* gradeq-web's HTTP layer over libmicrohttpd: a thread per connection
 * (so that a Server-Sent Events reader may wait), one route table, the
 * session and CSRF checks every route gets, security headers on every
 * answer and one log line per request. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "gradeq/log.h"
#include "gradeq/notify.h"
#include "gradeq/status.h"
#include "web/internal.h"

#define BODY_MAX (64 * 1024)

int gradeq_web_match(const char *pattern, const char *path, char params[][GRADEQ_WEB_PARAM_MAX],
		     int maxp)
{
	int np = 0;

	while (*pattern && *path) {
		if (*pattern != '/' || *path != '/')
			return -1;
		pattern++;
		path++;
		if (*pattern == ':') {
			size_t n = strcspn(path, "/");

			if (n == 0 || n >= GRADEQ_WEB_PARAM_MAX || np >= maxp)
				return -1;
			memcpy(params[np], path, n);
			params[np][n] = '\0';
			np++;
			pattern++;
			path += n;
		} else {
			size_t n = strcspn(pattern, "/");

			if (strncmp(pattern, path, n) != 0 || (path[n] && path[n] != '/'))
				return -1;
			pattern += n;
			path += n;
		}
	}
	return *pattern || *path ? -1 : np;
}

int gradeq_web_parse_listen(const char *s, char *host, size_t hostlen, uint16_t *port)
{
	const char *colon, *h = s;
	size_t hl;
	long p;
	char *end;

	if (!s || !*s)
		return GRADEQ_ERR_INVALID;
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':')
			return GRADEQ_ERR_INVALID;
		h = s + 1;
		hl = (size_t)(rb - h);
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || memchr(s, ':', (size_t)(colon - s)))
			return GRADEQ_ERR_INVALID;
		hl = (size_t)(colon - s);
	}
	if (hl == 0 || hl >= hostlen)
		return GRADEQ_ERR_INVALID;
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || p < 1 || p > 65535)
		return GRADEQ_ERR_INVALID;
	memcpy(host, h, hl);
	host[hl] = '\0';
	*port = (uint16_t)p;
	return 0;
}

int reply_error(struct reply *r, int status, const char *fmt, ...)
{
	char msg[512];
	json_t *o;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	o = json_pack("{s:s}", "error", msg);
	r->status = status;
	free(r->body);
	r->body = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	r->len = r->body ? strlen(r->body) : 0;
	return 0;
}

int reply_json(struct reply *r, int status, char *body)
{
	if (!body)
		return reply_error(r, 500, "out of memory");
	free(r->body);
	r->status = status;
	r->body = body;
	r->len = strlen(body);
	return 0;
}

const char *req_arg(struct req *q, const char *name)
{
	return MHD_lookup_connection_value(q->c, MHD_GET_ARGUMENT_KIND, name);
}

int web_store(struct web *w, struct gradeq_store **st)
{
	int rc;

	if (w->st && gradeq_store_broken(w->st)) {
		gradeq_store_free(w->st);
		w->st = NULL;
	}
	if (!w->st) {
		rc = gradeq_cli_store(w->cli, &w->st);
		if (rc) {
			w->st = NULL;
			log_warn("event=store_unavailable error=%s", gradeq_errmsg(rc));
			return rc;
		}
	}
	*st = w->st;
	return 0;
}

/* ---- the page ---- */

static int page_file(struct reply *r, const char *name, const char *ctype)
{
	for (size_t i = 0; i < gradeq_web_nfiles; i++)
		if (strcmp(gradeq_web_files[i].name, name) == 0) {
			r->status = 200;
			r->static_body = gradeq_web_files[i].data;
			r->len = gradeq_web_files[i].len;
			r->ctype = ctype;
			return 0;
		}
	return reply_error(r, 404, "no such file");
}

static int page_index(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r)
{
	(void)q, (void)p;
	return page_file(r, "index.html", "text/html; charset=utf-8");
}

static int page_js(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r)
{
	(void)q, (void)p;
	return page_file(r, "app.js", "text/javascript; charset=utf-8");
}

static int page_css(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r)
{
	(void)q, (void)p;
	return page_file(r, "style.css", "text/css; charset=utf-8");
}

/* ---- the route table ---- */

enum {
	PUBLIC = 1,   /* no session needed */
	ACTION = 2,   /* a POST that needs the CSRF token */
	OPERATOR = 4, /* and the operator role */
	SHARED = 8,   /* a read whose answer is the same for every user */
};

static const struct route {
	const char *method, *pattern;
	route_fn fn;
	unsigned flags;
} routes[] = {
	{"GET", "/", page_index, PUBLIC},
	{"GET", "/static/app.js", page_js, PUBLIC},
	{"GET", "/static/style.css", page_css, PUBLIC},
	{"POST", "/api/login", api_login, PUBLIC},
	{"GET", "/api/session", api_session, 0},
	{"POST", "/api/logout", api_logout, ACTION},
	{"GET", "/api/status", api_status, SHARED},
	{"GET", "/api/states", api_states, SHARED},
	{"GET", "/api/runs/:", api_run, SHARED},
	{"GET", "/api/runs/:/jobs", api_run_jobs, SHARED},
	{"GET", "/api/jobs/:", api_job, SHARED},
	{"GET", "/api/consumers", api_consumers, SHARED},
	{"GET", "/api/dead", api_dead, SHARED},
	{"GET", "/api/events", api_events, 0},
	{"POST", "/api/runs/:/cancel", api_cancel, ACTION | OPERATOR},
	{"POST", "/api/dead/replay", api_dead_replay, ACTION | OPERATOR},
	{"POST", "/api/dead/purge", api_dead_purge, ACTION | OPERATOR},
	{"POST", "/api/dead/export", api_dead_export, ACTION | OPERATOR},
	{"GET", "/api/outputs", api_outputs, 0},
	{"GET", "/api/outputs/courses", api_output_courses, 0},
	{"POST", "/api/outputs/:/link", api_output_link, ACTION},
	{"POST", "/api/outputs/:/delete", api_output_delete, ACTION},
	{"GET", "/outputs/:", api_output_download, PUBLIC},
};

/* The session of the request, from the trusted proxy's header or the
 * cookie. */
static bool authenticate(struct req *q)
{
	struct web *w = q->w;
	const char *tok;
	time_t now = time(NULL);
	bool ok = false;

	if (w->trusted_header && w->trusted_proxy && strcmp(q->addr, w->trusted_proxy) == 0) {
		const char *name =
			MHD_lookup_connection_value(q->c, MHD_HEADER_KIND, w->trusted_header);
		const struct gradeq_web_user *u =
			name ? gradeq_web_users_find(&w->users, name) : NULL;

		if (u) {
			/* no cookie behind the proxy: the CSRF token is a MAC of
			 * the user under a secret of this process */
			unsigned char mac[32];
			unsigned int n = 0;

			memset(&q->s, 0, sizeof(q->s));
			snprintf(q->s.user, sizeof(q->s.user), "%s", u->name);
			q->s.role = u->role;
			HMAC(EVP_sha256(), w->proxy_secret, sizeof(w->proxy_secret),
			     (const unsigned char *)u->name, strlen(u->name), mac, &n);
			for (unsigned i = 0; i < n && i < 32; i++)
				snprintf(q->s.csrf + 2 * i, 3, "%02x", mac[i]);
			return true;
		}
	}
	tok = MHD_lookup_connection_value(q->c, MHD_COOKIE_KIND, "gradeq_session");
	if (!tok)
		return false;
	pthread_mutex_lock(&w->auth_lock);
	ok = gradeq_web_session_find(&w->sessions, tok, now, &q->s);
	pthread_mutex_unlock(&w->auth_lock);
	return ok;
}

/* ---- the shared reads' answers, kept READ_CACHE_MS ----
 * Every open page re-reads status on each event: under many pages the
 * same answer would be computed again and again by the database the
 * consumers write to. */

static enum MHD_Result cache_key_add(void *cls, enum MHD_ValueKind kind, const char *key,
				     const char *value)
{
	char *k = cls;
	size_t n = strlen(k);

	(void)kind;
	snprintf(k + n, READ_CACHE_KEY - n, "%c%s=%s", strchr(k, '?') ? '&' : '?', key,
		 value ? value : "");
	return MHD_YES;
}

static bool cache_key(struct req *q, char *key)
{
	snprintf(key, READ_CACHE_KEY, "%s", q->path);
	MHD_get_connection_values(q->c, MHD_GET_ARGUMENT_KIND, cache_key_add, key);
	return strlen(key) < READ_CACHE_KEY - 1;
}

static bool cache_get(struct web *w, const char *key, struct reply *r)
{
	struct timespec now;
	bool hit = false;

	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&w->cache_lock);
	for (size_t i = 0; i < READ_CACHE_N && !hit; i++) {
		struct read_cache *c = &w->cache[i];

		if (!c->body || strcmp(c->key, key) != 0 ||
		    ms_between(&c->at, &now) >= READ_CACHE_MS)
			continue;
		r->body = strdup(c->body);
		hit = r->body != NULL;
		if (hit) {
			r->status = 200;
			r->len = strlen(r->body);
		}
	}
	pthread_mutex_unlock(&w->cache_lock);
	return hit;
}

static void cache_put(struct web *w, const char *key, const struct reply *r)
{
	struct read_cache *slot = NULL;
	char *copy = r->body ? strdup(r->body) : NULL;

	if (!copy)
		return;
	pthread_mutex_lock(&w->cache_lock);
	for (size_t i = 0; i < READ_CACHE_N; i++) {
		struct read_cache *c = &w->cache[i];

		if (!c->body || strcmp(c->key, key) == 0) {
			slot = c;
			break;
		}
		if (!slot || (c->at.tv_sec < slot->at.tv_sec || (c->at.tv_sec == slot->at.tv_sec &&
								 c->at.tv_nsec < slot->at.tv_nsec)))
			slot = c;
	}
	free(slot->body);
	slot->body = copy;
	snprintf(slot->key, sizeof(slot->key), "%s", key);
	clock_gettime(CLOCK_MONOTONIC, &slot->at);
	pthread_mutex_unlock(&w->cache_lock);
}

static int dispatch(struct req *q, struct reply *r)
{
	char p[4][GRADEQ_WEB_PARAM_MAX];
	bool path_known = false;

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const struct route *rt = &routes[i];
		const char *given;

		if (gradeq_web_match(rt->pattern, q->path, p, 4) < 0)
			continue;
		path_known = true;
		if (strcmp(rt->method, q->method) != 0)
			continue;
		if (q->too_big)
			return reply_error(r, 413, "request body too large");
		q->authed = authenticate(q);
		if (!(rt->flags & PUBLIC) && !q->authed)
			return reply_error(r, 401, "no session: log in first");
		if (rt->flags & ACTION) {
			given = MHD_lookup_connection_value(q->c, MHD_HEADER_KIND, "X-CSRF-Token");
			if (!gradeq_web_csrf_ok(q->s.csrf, given))
				return reply_error(r, 403, "missing or wrong X-CSRF-Token");
		}
		if ((rt->flags & OPERATOR) && q->s.role != GRADEQ_WEB_OPERATOR)
			return reply_error(r, 403, "this action needs the operator role");
		if (rt->flags & SHARED) {
			char key[READ_CACHE_KEY];

			if (!cache_key(q, key))
				return rt->fn(q, p, r);
			if (cache_get(q->w, key, r))
				return 0;
			rt->fn(q, p, r);
			if (r->status == 200 && r->body)
				cache_put(q->w, key, r);
			return 0;
		}
		return rt->fn(q, p, r);
	}
	if (path_known)
		return reply_error(r, 405, "method not allowed");
	return reply_error(r, 404, "no such route");
}

static void add_headers(struct web *w, struct MHD_Response *resp, const struct reply *r)
{
	char ra[32];

	MHD_add_response_header(resp, "Content-Security-Policy",
				"default-src 'self'; frame-ancestors 'none'");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(resp, "Cache-Control", "no-cache");
	if (w->tls)
		MHD_add_response_header(resp, "Strict-Transport-Security", "max-age=31536000");
	if (r->raw)
		return;
	MHD_add_response_header(resp, "Content-Type", r->ctype ? r->ctype : "application/json");
	if (r->cookie[0])
		MHD_add_response_header(resp, "Set-Cookie", r->cookie);
	if (r->disposition[0])
		MHD_add_response_header(resp, "Content-Disposition", r->disposition);
	if (r->retry_after > 0) {
		snprintf(ra, sizeof(ra), "%ld", r->retry_after);
		MHD_add_response_header(resp, "Retry-After", ra);
	}
	if (r->status == 405)
		MHD_add_response_header(resp, "Allow", "GET, POST");
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

static void client_addr(struct MHD_Connection *c, char *buf, size_t len)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

	snprintf(buf, len, "-");
	if (ci && ci->client_addr) {
		socklen_t sl = ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
								      : sizeof(struct sockaddr_in);

		if (getnameinfo(ci->client_addr, sl, buf, (socklen_t)len, NULL, 0, NI_NUMERICHOST))
			snprintf(buf, len, "-");
	}
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct web *w = cls;
	struct req *q = *con_cls;
	struct reply r;
	struct MHD_Response *resp;
	enum MHD_Result ret;

	(void)version;
	if (!q) {
		q = calloc(1, sizeof(*q));
		if (!q)
			return MHD_NO;
		q->w = w;
		q->c = c;
		clock_gettime(CLOCK_MONOTONIC, &q->t0);
		client_addr(c, q->addr, sizeof(q->addr));
		*con_cls = q;
		return MHD_YES;
	}
	if (*upload_size) {
		if (q->len + *upload_size > BODY_MAX) {
			q->too_big = true;
		} else {
			if (q->len + *upload_size + 1 > q->cap) {
				size_t cap = q->len + *upload_size + 1;
				char *nb = realloc(q->body, cap);

				if (!nb)
					return MHD_NO;
				q->body = nb;
				q->cap = cap;
			}
			memcpy(q->body + q->len, upload, *upload_size);
			q->len += *upload_size;
			q->body[q->len] = '\0';
		}
		*upload_size = 0;
		return MHD_YES;
	}
	q->method = method;
	q->path = url;
	memset(&r, 0, sizeof(r));
	dispatch(q, &r);
	if (r.raw) {
		resp = r.raw;
	} else {
		resp = MHD_create_response_from_buffer(r.len,
						       (void *)(r.body          ? r.body
								: r.static_body ? r.static_body
										: ""),
						       r.body ? MHD_RESPMEM_MUST_FREE
							      : MHD_RESPMEM_PERSISTENT);
		if (resp)
			r.body = NULL;
	}
	if (!resp) {
		free(r.body);
		return MHD_NO;
	}
	add_headers(w, resp, &r);
	ret = MHD_queue_response(c, (unsigned)r.status, resp);
	MHD_destroy_response(resp);
	/* the path only: query strings are not logged (MHD gives url without
	 * them); never the body, a cookie or a token */
	log_info("event=request method=%s path=%s status=%d user=%s addr=%s ms=%.1f", method, url,
		 r.status, q->authed ? q->s.user : "-", q->addr, ms_since(&q->t0));
	return ret;
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
		    enum MHD_RequestTerminationCode toe)
{
	struct req *q = *con_cls;

	(void)cls, (void)c;
	if (!q)
		return;
	if (q->downloaded[0])
		web_output_done(q->w, q->downloaded, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK,
				q->once_claim);
	free(q->body);
	free(q);
	*con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct web *w = cls;
	char msg[512];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	/* before listening, the error line that follows says it */
	if (w->listening)
		log_warn("event=http_error error=%s", msg);
	else
		log_debug("event=http_error error=%s", msg);
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 1 << 20;

	if (!f)
		return NULL;
	buf = malloc(cap);
	if (buf) {
		*len = fread(buf, 1, cap - 1, f);
		buf[*len] = '\0';
	}
	fclose(f);
	return buf;
}

static const char *conf_or(const char *given, const char *conf, const char *def)
{
	return given ? given : conf ? conf : def;
}

int gradeq_web_run(struct gradeq_cli *cli, const struct gradeq_web_options *o,
		   volatile sig_atomic_t *stop)
{
	const struct gradeq_config *cfg = cli->cfg;
	const char *listen = conf_or(o->listen, cfg->web_listen, GRADEQ_WEB_DEFAULT_LISTEN);
	const char *users = conf_or(o->users, cfg->web_users, NULL);
	struct sockaddr_storage sa;
	struct addrinfo hints, *ai = NULL;
	struct MHD_Daemon *d = NULL;
	char host[256], why[512], portstr[8];
	char *cert = NULL, *key = NULL;
	unsigned flags =
		MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	struct web w;
	uint16_t port;
	size_t len;
	int rc = GRADEQ_ERR_CONFIG;

	memset(&w, 0, sizeof(w));
	w.cli = cli;
	w.sessions.idle_s = cfg->web_session_idle_s;
	pthread_mutex_init(&w.auth_lock, NULL);
	pthread_mutex_init(&w.lib_lock, NULL);
	pthread_mutex_init(&w.cache_lock, NULL);
	if (gradeq_web_parse_listen(listen, host, sizeof(host), &port)) {
		gradeq_cli_error(cli, "--listen takes HOST:PORT, not '%s'", listen);
		rc = GRADEQ_ERR_INVALID;
		goto out;
	}
	if (!users) {
		gradeq_cli_error(cli, "no users file: give --users FILE or set web_users");
		goto out;
	}
	if (!cfg->web_trusted_header != !cfg->web_trusted_proxy) {
		gradeq_cli_error(cli, "web_trusted_header and web_trusted_proxy go together");
		goto out;
	}
	if (users && gradeq_web_users_load(users, &w.users, why, sizeof(why))) {
		gradeq_cli_error(cli, "users file %s", why);
		goto out;
	}
	w.trusted_header = cfg->web_trusted_header;
	w.trusted_proxy = cfg->web_trusted_proxy;
	if (RAND_bytes(w.proxy_secret, sizeof(w.proxy_secret)) != 1) {
		gradeq_cli_error(cli, "no random bytes for the session secrets");
		goto out;
	}
	if (cfg->web_tls_cert) {
		cert = read_file(cfg->web_tls_cert, &len);
		key = cfg->web_tls_key ? read_file(cfg->web_tls_key, &len) : NULL;
		if (!cert || !key) {
			gradeq_cli_error(cli, "cannot read web_tls_cert '%s' or web_tls_key",
					 cfg->web_tls_cert);
			goto out;
		}
		w.tls = true;
		flags |= MHD_USE_TLS;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(portstr, sizeof(portstr), "%u", port);
	if (getaddrinfo(host, portstr, &hints, &ai) || !ai) {
		gradeq_cli_error(cli, "--listen: '%s' is not a numeric IPv4 or IPv6 address", host);
		goto out;
	}
	memset(&sa, 0, sizeof(sa));
	memcpy(&sa, ai->ai_addr, ai->ai_addrlen);
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	freeaddrinfo(ai);
	rc = sse_hub_new(&w, &w.hub);
	if (rc) {
		gradeq_cli_error(cli, "out of memory");
		goto out;
	}
	d = MHD_start_daemon(flags, port, NULL, NULL, on_request, &w, MHD_OPTION_EXTERNAL_LOGGER,
			     on_mhd_log, &w, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_NOTIFY_COMPLETED,
			     on_done, &w, MHD_OPTION_CONNECTION_LIMIT, (unsigned)256,
			     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
			     MHD_OPTION_THREAD_STACK_SIZE, (size_t)(256 * 1024),
			     cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, cert,
			     MHD_OPTION_HTTPS_MEM_KEY, key, MHD_OPTION_END);
	if (!d) {
		gradeq_cli_error(cli, "cannot listen on %s: %s", listen, strerror(errno));
		rc = GRADEQ_ERR_IO;
		goto out;
	}
	w.listening = true;
	rc = sse_hub_start(w.hub);
	if (rc) {
		gradeq_cli_error(cli, "cannot start the events thread: %s", gradeq_errmsg(rc));
		goto out;
	}
	log_info("event=listening listen=%s tls=%s users=%zu", listen, w.tls ? "yes" : "no",
		 w.users.n);
	gradeq_notify("READY=1");
	while (!*stop) {
		usleep(200 * 1000);
		if (o->reopen && *o->reopen) {
			int level = gradeq_log_level_parse(cfg->log_level);

			*o->reopen = 0;
			if (gradeq_log_init(cli->prog, level < 0 ? GRADEQ_LOG_INFO : level,
					    cfg->log_file))
				log_error("event=log_reopen_failed file=%s", cfg->log_file);
			else
				log_info("event=log_reopened");
		}
	}
	gradeq_notify("STOPPING=1");
	log_info("event=stopping");
	rc = 0;
out:
	if (w.hub)
		sse_hub_stop(w.hub);
	if (d)
		MHD_stop_daemon(d);
	sse_hub_free(w.hub);
	gradeq_store_free(w.st);
	free(w.releases_cache);
	gradeq_web_sessions_release(&w.sessions);
	gradeq_web_users_release(&w.users);
	free(cert);
	if (key)
		OPENSSL_cleanse(key, strlen(key));
	free(key);
	pthread_mutex_destroy(&w.auth_lock);
	pthread_mutex_destroy(&w.lib_lock);
	for (size_t i = 0; i < READ_CACHE_N; i++)
		free(w.cache[i].body);
	pthread_mutex_destroy(&w.cache_lock);
	return rc;
}
