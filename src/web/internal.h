/* gradeq-web's private parts, shared by the modules of src/web/. */
#ifndef GRADEQ_WEB_INTERNAL_H
#define GRADEQ_WEB_INTERNAL_H

#include <microhttpd.h>
#include <pthread.h>
#include <time.h>

#include "gradeq/cli.h"
#include "gradeq/web.h"

struct sse_hub;

/* The shared reads' answers are kept this long (see http.c). */
#define READ_CACHE_MS 250
#define READ_CACHE_N 32
#define READ_CACHE_KEY 512

struct read_cache {
	char key[READ_CACHE_KEY]; /* path?query */
	char *body;
	struct timespec at;
};

struct web {
	struct gradeq_cli *cli;
	struct gradeq_web_users users;
	bool tls;
	const char *trusted_header; /* NULL: none */
	const char *trusted_proxy;  /* the address it is taken from */
	unsigned char proxy_secret[32];

	pthread_mutex_t auth_lock; /* sessions and rl */
	struct gradeq_web_sessions sessions;
	struct gradeq_web_ratelimit rl;

	/* the library (store, broker, gradeq_errmsg) is used by one request
	 * at a time */
	pthread_mutex_t lib_lock;
	struct gradeq_store *st;
	char *releases_cache; /* status's releases, briefly kept */
	struct timespec releases_at;

	pthread_mutex_t cache_lock;
	struct read_cache cache[READ_CACHE_N];

	/* use-once outputs being sent (outputs.c): one download at a time */
	char once_busy[16][37];

	struct sse_hub *hub;
	volatile bool listening; /* libmicrohttpd's messages before are ours too */
};

/* Milliseconds from a to b (CLOCK_MONOTONIC). */
long ms_between(const struct timespec *a, const struct timespec *b);

/* The answer a route gives; http.c sends it. */
struct reply {
	int status;
	char *body; /* malloc'd, or static_body */
	const char *static_body;
	size_t len;
	const char *ctype; /* NULL: application/json */
	char cookie[200];
	char disposition[160];
	long retry_after;
	struct MHD_Response *raw; /* a response built by the route (SSE) */
};

/* One request as the routes see it. */
struct req {
	struct web *w;
	struct MHD_Connection *c;
	const char *method, *path;
	char *body;
	size_t len, cap;
	bool too_big;
	bool authed;
	struct gradeq_web_session s;
	char addr[64];
	struct timespec t0;
	char downloaded[40]; /* an output being sent (outputs.c) */
	bool once_claim;     /* it is use-once, claimed in w->once_busy */
};

/* Sets r to status and {"error": msg}. Returns 0. */
int reply_error(struct reply *r, int status, const char *fmt, ...) GRADEQ_PRINTF(3, 4);
/* Sets r to 200 (or status) and body (taken: freed by the sender; NULL
 * means out of memory: 500). */
int reply_json(struct reply *r, int status, char *body);
/* A query argument of the request, or NULL. */
const char *req_arg(struct req *q, const char *name);

/* The store of the web process, connected on first use and again when
 * broken; call with lib_lock held. 0 or an error (reply 503). */
int web_store(struct web *w, struct gradeq_store **st) GRADEQ_MUST_CHECK;

/* api.c: the routes. p holds the path's parameters. */
typedef int (*route_fn)(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r);
int api_login(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r);
int api_session(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r);
int api_logout(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r);
int api_status(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r);
int api_states(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r);
int api_run(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r);
int api_run_jobs(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r);
int api_job(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r);
int api_consumers(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r);
int api_dead(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r);
int api_cancel(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r);
int api_dead_replay(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r);
int api_dead_purge(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r);
int api_dead_export(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r);

/* outputs.c: a signed link's download, and what follows its completion */
int api_output_download(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r);
void web_output_done(struct web *w, const char *output_id, bool complete, bool once_claim);
int api_outputs(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r);
int api_output_courses(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r);
int api_output_link(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r);
int api_output_delete(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r);

/* sse.c */
/* A hub without its thread, then the thread that follows gradeq.events. */
int sse_hub_new(struct web *w, struct sse_hub **out) GRADEQ_MUST_CHECK;
int sse_hub_start(struct sse_hub *h) GRADEQ_MUST_CHECK;
void sse_hub_stop(struct sse_hub *h);
void sse_hub_free(struct sse_hub *h);
int api_events(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r);

/* The page's files, embedded at build time (cmake/web.cmake). */
struct gradeq_web_file {
	const char *name; /* "index.html" */
	const char *data;
	size_t len;
};
extern const struct gradeq_web_file gradeq_web_files[];
extern const size_t gradeq_web_nfiles;

#endif
