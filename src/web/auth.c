/* gradeq-web's users, passwords, sessions, CSRF tokens and login rate
 * limit: no sockets here (see web.h). */
#include <crypt.h>
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "gradeq/web.h"

#define SESSIONS_MAX 1024

const char *gradeq_web_role_name(enum gradeq_web_role r)
{
	return r == GRADEQ_WEB_OPERATOR ? "operator" : "viewer";
}

static bool name_ok(const char *s, size_t n)
{
	if (n == 0 || n >= GRADEQ_WEB_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("._-@", s[i]))
			return false;
	return true;
}

/* One "name:role:hash[:platform_user_id]" line into *u; NULL or what is
 * wrong. */
static const char *parse_line(const char *line, size_t len, struct gradeq_web_user *u)
{
	const char *c1 = memchr(line, ':', len), *c2, *c3;
	size_t rlen;

	if (!c1)
		return "expected name:role:hash";
	c2 = memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - line));
	if (!c2)
		return "expected name:role:hash";
	if (!name_ok(line, (size_t)(c1 - line)))
		return "the name must be 1 to 63 letters, digits, '.', '_', '-' or '@'";
	rlen = (size_t)(c2 - c1 - 1);
	if (rlen == 6 && memcmp(c1 + 1, "viewer", 6) == 0)
		u->role = GRADEQ_WEB_VIEWER;
	else if (rlen == 8 && memcmp(c1 + 1, "operator", 8) == 0)
		u->role = GRADEQ_WEB_OPERATOR;
	else
		return "the role must be viewer or operator";
	if (c2 + 1 >= line + len)
		return "the password hash is empty";
	/* crypt(3) strings hold no ':' ([./0-9A-Za-z$]): a fourth field is
	 * the platform user id */
	c3 = memchr(c2 + 1, ':', len - (size_t)(c2 + 1 - line));
	if (c3) {
		long long id = 0;

		if (c3 == c2 + 1)
			return "the password hash is empty";
		if (c3 + 1 >= line + len || line + len - c3 - 1 > 10)
			return "the platform user id must be a number from 1 to 2147483647";
		for (const char *p = c3 + 1; p < line + len; p++) {
			if (*p < '0' || *p > '9')
				return "the platform user id must be a number from 1 to "
				       "2147483647";
			id = id * 10 + (*p - '0');
		}
		if (id < 1 || id > INT32_MAX)
			return "the platform user id must be a number from 1 to 2147483647";
		u->platform_user = (int32_t)id;
	}
	memcpy(u->name, line, (size_t)(c1 - line));
	u->name[c1 - line] = '\0';
	u->hash = strndup(c2 + 1, (size_t)((c3 ? c3 : line + len) - c2 - 1));
	return u->hash ? NULL : "out of memory";
}

int gradeq_web_users_parse(const char *text, struct gradeq_web_users *out, char *why, size_t whylen)
{
	int lineno = 0;

	memset(out, 0, sizeof(*out));
	while (*text) {
		const char *nl = strchr(text, '\n');
		size_t len = nl ? (size_t)(nl - text) : strlen(text);
		struct gradeq_web_user u;
		const char *bad;
		void *nv;

		lineno++;
		while (len && (text[len - 1] == '\r' || text[len - 1] == ' '))
			len--;
		if (len == 0 || text[0] == '#')
			goto next;
		memset(&u, 0, sizeof(u));
		bad = parse_line(text, len, &u);
		if (!bad && gradeq_web_users_find(out, u.name))
			bad = "the user is listed twice";
		if (!bad && !(nv = realloc(out->v, (out->n + 1) * sizeof(*out->v))))
			bad = "out of memory";
		if (bad) {
			free(u.hash);
			snprintf(why, whylen, "line %d: %s", lineno, bad);
			gradeq_web_users_release(out);
			return GRADEQ_ERR_CONFIG;
		}
		out->v = nv;
		out->v[out->n++] = u;
	next:
		text += len;
		while (*text && *text != '\n')
			text++;
		if (*text == '\n')
			text++;
	}
	return 0;
}

int gradeq_web_users_load(const char *path, struct gradeq_web_users *out, char *why, size_t whylen)
{
	FILE *f = fopen(path, "r");
	char *text = NULL;
	size_t len = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!f) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return GRADEQ_ERR_IO;
	}
	text = malloc(1 << 20);
	if (!text) {
		fclose(f);
		return GRADEQ_ERR_NOMEM;
	}
	len = fread(text, 1, (1 << 20) - 1, f);
	text[len] = '\0';
	fclose(f);
	rc = gradeq_web_users_parse(text, out, why, whylen);
	if (rc) {
		char tmp[256];

		snprintf(tmp, sizeof(tmp), "%s", why);
		snprintf(why, whylen, "%s: %s", path, tmp);
	}
	free(text);
	return rc;
}

void gradeq_web_users_release(struct gradeq_web_users *u)
{
	for (size_t i = 0; i < u->n; i++)
		free(u->v[i].hash);
	free(u->v);
	memset(u, 0, sizeof(*u));
}

const struct gradeq_web_user *gradeq_web_users_find(const struct gradeq_web_users *u,
						    const char *name)
{
	for (size_t i = 0; i < u->n; i++)
		if (strcmp(u->v[i].name, name) == 0)
			return &u->v[i];
	return NULL;
}

bool gradeq_web_password_ok(const char *hash, const char *password)
{
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	const char *h;
	bool ok = false;
	size_t n;

	if (!cd || !hash || !password || hash[0] != '$')
		goto out;
	h = crypt_rn(password, hash, cd, sizeof(*cd));
	/* crypt_rn gives NULL or a string starting with '*' on failure */
	if (!h || h[0] == '*')
		goto out;
	n = strlen(hash);
	ok = strlen(h) == n && CRYPTO_memcmp(h, hash, n) == 0;
out:
	if (cd)
		OPENSSL_cleanse(cd, sizeof(*cd));
	free(cd);
	return ok;
}

bool gradeq_web_csrf_ok(const char *expected, const char *given)
{
	size_t n;

	if (!expected || !given || !given[0])
		return false;
	n = strlen(expected);
	return n > 0 && strlen(given) == n && CRYPTO_memcmp(expected, given, n) == 0;
}

int gradeq_web_random_hex(char *buf, size_t bytes)
{
	unsigned char raw[64];

	if (bytes > sizeof(raw) || RAND_bytes(raw, (int)bytes) != 1)
		return GRADEQ_ERR_IO;
	for (size_t i = 0; i < bytes; i++)
		snprintf(buf + 2 * i, 3, "%02x", raw[i]);
	OPENSSL_cleanse(raw, sizeof(raw));
	return 0;
}

static void session_drop(struct gradeq_web_sessions *s, size_t i)
{
	OPENSSL_cleanse(&s->v[i], sizeof(s->v[i]));
	s->v[i] = s->v[--s->n];
}

static void sessions_expire(struct gradeq_web_sessions *s, time_t now)
{
	for (size_t i = 0; i < s->n;)
		if (now - s->v[i].last_seen >= s->idle_s)
			session_drop(s, i);
		else
			i++;
}

int gradeq_web_session_open(struct gradeq_web_sessions *s, const char *user,
			    enum gradeq_web_role role, time_t now, struct gradeq_web_session *out)
{
	struct gradeq_web_session ns;

	memset(&ns, 0, sizeof(ns));
	if (gradeq_web_random_hex(ns.token, GRADEQ_WEB_TOKEN_HEX / 2) ||
	    gradeq_web_random_hex(ns.csrf, GRADEQ_WEB_TOKEN_HEX / 2))
		return GRADEQ_ERR_IO;
	snprintf(ns.user, sizeof(ns.user), "%s", user);
	ns.role = role;
	ns.last_seen = now;
	sessions_expire(s, now);
	if (s->n >= SESSIONS_MAX) {
		size_t oldest = 0;

		for (size_t i = 1; i < s->n; i++)
			if (s->v[i].last_seen < s->v[oldest].last_seen)
				oldest = i;
		session_drop(s, oldest);
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		void *nv = realloc(s->v, cap * sizeof(*s->v));

		if (!nv)
			return GRADEQ_ERR_NOMEM;
		s->v = nv;
		s->cap = cap;
	}
	s->v[s->n++] = ns;
	*out = ns;
	return 0;
}

bool gradeq_web_session_find(struct gradeq_web_sessions *s, const char *token, time_t now,
			     struct gradeq_web_session *out)
{
	if (!token || strlen(token) != GRADEQ_WEB_TOKEN_HEX)
		return false;
	for (size_t i = 0; i < s->n; i++) {
		if (CRYPTO_memcmp(s->v[i].token, token, GRADEQ_WEB_TOKEN_HEX) != 0)
			continue;
		if (now - s->v[i].last_seen >= s->idle_s) {
			session_drop(s, i);
			return false;
		}
		s->v[i].last_seen = now;
		*out = s->v[i];
		return true;
	}
	return false;
}

void gradeq_web_session_close(struct gradeq_web_sessions *s, const char *token)
{
	for (size_t i = 0; token && i < s->n; i++)
		if (strcmp(s->v[i].token, token) == 0) {
			session_drop(s, i);
			return;
		}
}

void gradeq_web_sessions_release(struct gradeq_web_sessions *s)
{
	if (s->v)
		OPENSSL_cleanse(s->v, s->cap * sizeof(*s->v));
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}

static struct gradeq_web_rl_entry *rl_find(struct gradeq_web_ratelimit *r, const char *key,
					   bool add, time_t now)
{
	struct gradeq_web_rl_entry *free_slot = NULL;
	size_t n = sizeof(r->v) / sizeof(r->v[0]);

	for (size_t i = 0; i < n; i++) {
		struct gradeq_web_rl_entry *e = &r->v[i];
		bool stale = !e->key[0] || (now - e->first >= GRADEQ_WEB_LOGIN_WINDOW_S &&
					    now >= e->blocked_until);

		if (e->key[0] && strcmp(e->key, key) == 0)
			return e;
		if (stale && !free_slot)
			free_slot = e;
	}
	if (!add)
		return NULL;
	if (!free_slot) /* full of fresh entries: reuse the oldest */
		for (size_t i = 0; i < n; i++)
			if (!free_slot || r->v[i].first < free_slot->first)
				free_slot = &r->v[i];
	memset(free_slot, 0, sizeof(*free_slot));
	snprintf(free_slot->key, sizeof(free_slot->key), "%s", key);
	free_slot->first = now;
	return free_slot;
}

long gradeq_web_rl_wait(struct gradeq_web_ratelimit *r, const char *key, time_t now)
{
	struct gradeq_web_rl_entry *e = rl_find(r, key, false, now);

	return e && e->blocked_until > now ? (long)(e->blocked_until - now) : 0;
}

void gradeq_web_rl_fail(struct gradeq_web_ratelimit *r, const char *key, time_t now)
{
	struct gradeq_web_rl_entry *e = rl_find(r, key, true, now);

	if (now - e->first >= GRADEQ_WEB_LOGIN_WINDOW_S) {
		e->first = now;
		e->failures = 0;
	}
	if (++e->failures >= GRADEQ_WEB_LOGIN_FAILURES) {
		e->blocked_until = now + GRADEQ_WEB_LOGIN_WINDOW_S;
		e->failures = 0;
		e->first = now;
	}
}

void gradeq_web_rl_ok(struct gradeq_web_ratelimit *r, const char *key)
{
	struct gradeq_web_rl_entry *e = rl_find(r, key, false, 0);

	if (e && e->blocked_until == 0)
		memset(e, 0, sizeof(*e));
}
