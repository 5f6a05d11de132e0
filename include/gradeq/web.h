/* gradeq-web: the operators' dashboard over HTTP (docs/web-api.md). The
 * daemon lives in src/web/: http.c (routing, responses, the server),
 * auth.c (users file, passwords, sessions, CSRF, login rate limit), api.c
 * (the JSON routes), sse.c (Server-Sent Events fed by gradeq.events). The
 * pure parts below take no sockets, so that unit tests reach them. */
#ifndef GRADEQ_WEB_H
#define GRADEQ_WEB_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "gradeq/cli.h"
#include "gradeq/err.h"

#define GRADEQ_WEB_DEFAULT_LISTEN "127.0.0.1:8470"

/* What the program's command line asked for (NULL: the configuration's
 * value, then the default). */
struct gradeq_web_options {
	const char *listen; /* HOST:PORT */
	const char *users;  /* users file */
	/* set by SIGHUP: the log file is reopened (logrotate); NULL: none */
	volatile sig_atomic_t *reopen;
};

/* Runs the daemon until *stop is set: 0, or an error already printed. */
int gradeq_web_run(struct gradeq_cli *cli, const struct gradeq_web_options *o,
		   volatile sig_atomic_t *stop) GRADEQ_MUST_CHECK;

/* ---- routing (http.c) ---- */

/* Matches path against pattern, whose segments are literal or ":" (one
 * segment, a parameter). Up to maxp parameters are copied into params
 * (each at most GRADEQ_WEB_PARAM_MAX - 1 bytes; a longer one does not
 * match). Returns the number of parameters, or -1 when it does not match. */
#define GRADEQ_WEB_PARAM_MAX 128
int gradeq_web_match(const char *pattern, const char *path, char params[][GRADEQ_WEB_PARAM_MAX],
		     int maxp);

/* Splits "HOST:PORT" ("[::1]:8470" for IPv6): 0, or GRADEQ_ERR_INVALID. */
int gradeq_web_parse_listen(const char *s, char *host, size_t hostlen,
			    uint16_t *port) GRADEQ_MUST_CHECK;

/* ---- users, passwords (auth.c) ---- */

enum gradeq_web_role { GRADEQ_WEB_VIEWER = 0, GRADEQ_WEB_OPERATOR = 1 };

const char *gradeq_web_role_name(enum gradeq_web_role r);

#define GRADEQ_WEB_NAME_MAX 64

struct gradeq_web_user {
	char name[GRADEQ_WEB_NAME_MAX];
	enum gradeq_web_role role;
	char *hash;            /* crypt(3) string */
	int32_t platform_user; /* the platform's user id; 0: none given */
};

struct gradeq_web_users {
	struct gradeq_web_user *v;
	size_t n;
};

/* Parses a users file's text: one "name:role:hash" line per user, or
 * "name:role:hash:PLATFORM_USER_ID" to map the dashboard user to a platform
 * user (whose course team roles and output_operators membership decide
 * which outputs the user may download); '#' comments and blank lines
 * skipped. On a bad line returns
 * GRADEQ_ERR_CONFIG with why = "line N: ...". */
int gradeq_web_users_parse(const char *text, struct gradeq_web_users *out, char *why,
			   size_t whylen) GRADEQ_MUST_CHECK;
int gradeq_web_users_load(const char *path, struct gradeq_web_users *out, char *why,
			  size_t whylen) GRADEQ_MUST_CHECK;
void gradeq_web_users_release(struct gradeq_web_users *u);
const struct gradeq_web_user *gradeq_web_users_find(const struct gradeq_web_users *u,
						    const char *name);

/* True when password matches the crypt(3) hash (SHA-512 "$6$", yescrypt
 * "$y$"...), compared in constant time. A hash crypt cannot read (a
 * locked "!" or "*") never matches. */
bool gradeq_web_password_ok(const char *hash, const char *password);

/* Constant-time comparison of a CSRF token given by a request with the
 * session's (false when given is NULL or empty). */
bool gradeq_web_csrf_ok(const char *expected, const char *given);

/* ---- sessions (auth.c) ---- */

#define GRADEQ_WEB_TOKEN_HEX 64 /* 256 random bits */

struct gradeq_web_session {
	char token[GRADEQ_WEB_TOKEN_HEX + 1];
	char csrf[GRADEQ_WEB_TOKEN_HEX + 1];
	char user[GRADEQ_WEB_NAME_MAX];
	enum gradeq_web_role role;
	time_t last_seen;
};

struct gradeq_web_sessions {
	struct gradeq_web_session *v;
	size_t n, cap;
	long idle_s;
};

/* Fills buf with 2 * bytes hex digits of RAND_bytes: 0, or
 * GRADEQ_ERR_IO when the generator fails. */
int gradeq_web_random_hex(char *buf, size_t bytes) GRADEQ_MUST_CHECK;

/* Opens a session for user (new tokens), dropping expired ones first and
 * the least recently seen when cap sessions are open; *out is a copy. */
int gradeq_web_session_open(struct gradeq_web_sessions *s, const char *user,
			    enum gradeq_web_role role, time_t now,
			    struct gradeq_web_session *out) GRADEQ_MUST_CHECK;
/* Finds the session of token that was seen less than idle_s ago, marks it
 * seen at now and copies it into *out: true; false (and an expired one
 * removed) otherwise. */
bool gradeq_web_session_find(struct gradeq_web_sessions *s, const char *token, time_t now,
			     struct gradeq_web_session *out);
void gradeq_web_session_close(struct gradeq_web_sessions *s, const char *token);
void gradeq_web_sessions_release(struct gradeq_web_sessions *s);

/* ---- login rate limit (auth.c) ---- */

#define GRADEQ_WEB_LOGIN_FAILURES 5  /* failures in a window before a block */
#define GRADEQ_WEB_LOGIN_WINDOW_S 60 /* the window, and the block's length */

struct gradeq_web_ratelimit {
	struct gradeq_web_rl_entry {
		char key[GRADEQ_WEB_NAME_MAX + 8];
		int failures;
		time_t first, blocked_until;
	} v[256];
};

/* Seconds until key may try again (0: now). */
long gradeq_web_rl_wait(struct gradeq_web_ratelimit *r, const char *key, time_t now);
/* Counts a failed login of key: GRADEQ_WEB_LOGIN_FAILURES in
 * GRADEQ_WEB_LOGIN_WINDOW_S seconds block it for that long. */
void gradeq_web_rl_fail(struct gradeq_web_ratelimit *r, const char *key, time_t now);
void gradeq_web_rl_ok(struct gradeq_web_ratelimit *r, const char *key);

/* ---- Server-Sent Events framing (sse.c) ---- */

/* The frame of one gradeq.events message: "event: gradeq\ndata: " then
 * {"routing_key": KEY, "body": BODY} on one line, then a blank line; a body
 * that is not JSON is sent as a string. malloc'd; NULL when out of memory. */
char *gradeq_web_sse_frame(const char *key, size_t keylen, const char *body, size_t bodylen);

#endif
