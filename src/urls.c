/* Lists of broker and management URLs (see urls.h): pure functions. */
#include "gradeq/urls.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <amqp.h>

static void why_set(char *why, size_t whylen, const char *fmt, ...) GRADEQ_PRINTF(3, 4);

static void why_set(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (!why || !whylen)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

void gradeq_urls_release(struct gradeq_urls *u)
{
	for (int i = 0; i < u->n; i++) {
		explicit_bzero(u->url[i], strlen(u->url[i]));
		free(u->url[i]);
		u->url[i] = NULL;
	}
	u->n = 0;
	u->cur = 0;
}

int gradeq_urls_split(const char *list, struct gradeq_urls *u, char *why, size_t whylen)
{
	const char *p = list ? list : "";

	memset(u, 0, sizeof(*u));
	for (;;) {
		const char *start, *end = p + strcspn(p, ",");

		for (start = p; start < end && isspace((unsigned char)*start); start++)
			;
		while (end > start && isspace((unsigned char)end[-1]))
			end--;
		if (end == start) {
			if (u->n || p[strcspn(p, ",")])
				why_set(why, whylen, "entry %d is empty", u->n + 1);
			else
				why_set(why, whylen, "is empty");
			return GRADEQ_ERR_CONFIG;
		}
		if (u->n == GRADEQ_URLS_MAX) {
			why_set(why, whylen, "has more than %d entries", GRADEQ_URLS_MAX);
			return GRADEQ_ERR_CONFIG;
		}
		u->url[u->n] = strndup(start, (size_t)(end - start));
		if (!u->url[u->n])
			return GRADEQ_ERR_NOMEM;
		u->order[u->n] = u->n;
		u->n++;
		p += strcspn(p, ",");
		if (!*p)
			return 0;
		p++;
	}
}

/* rabbitmq-c's reading of one entry: user and vhost, copied. */
static int amqp_who(const char *url, char *user, size_t ulen, char *vhost, size_t vlen)
{
	struct amqp_connection_info ci;
	char *copy = strdup(url);
	int ok;

	if (!copy)
		return GRADEQ_ERR_NOMEM;
	amqp_default_connection_info(&ci);
	ok = amqp_parse_url(copy, &ci) == AMQP_STATUS_OK;
	if (ok) {
		snprintf(user, ulen, "%s", ci.user);
		snprintf(vhost, vlen, "%s", ci.vhost);
	}
	explicit_bzero(copy, strlen(copy));
	free(copy);
	return ok ? 0 : GRADEQ_ERR_CONFIG;
}

int gradeq_urls_parse_amqp(const char *list, struct gradeq_urls *u, char *why, size_t whylen)
{
	char user0[256] = "", vhost0[256] = "";
	int rc = gradeq_urls_split(list, u, why, whylen);

	for (int i = 0; !rc && i < u->n; i++) {
		char user[256], vhost[256];
		const char *s = u->url[i];

		if (strncmp(s, "amqp://", 7) != 0 && strncmp(s, "amqps://", 8) != 0) {
			why_set(why, whylen, "%s%d must be a URL starting with amqp:// or amqps://",
				u->n > 1 ? "entry " : "", i + 1);
			rc = GRADEQ_ERR_CONFIG;
		} else if ((rc = amqp_who(s, user, sizeof(user), vhost, sizeof(vhost))) ==
			   GRADEQ_ERR_CONFIG) {
			why_set(why, whylen,
				"%s%d is malformed (expected amqp[s]://user@host:port/vhost)",
				u->n > 1 ? "entry " : "", i + 1);
		} else if (!rc && i == 0) {
			snprintf(user0, sizeof(user0), "%s", user);
			snprintf(vhost0, sizeof(vhost0), "%s", vhost);
		} else if (!rc && strcmp(user, user0) != 0) {
			why_set(why, whylen,
				"entry %d logs in as '%s' but entry 1 as '%s': every node of the "
				"list must take the same user",
				i + 1, user, user0);
			rc = GRADEQ_ERR_CONFIG;
		} else if (!rc && strcmp(vhost, vhost0) != 0) {
			why_set(why, whylen,
				"entry %d names vhost '%s' but entry 1 '%s': every node of the "
				"list must serve the same vhost",
				i + 1, vhost, vhost0);
			rc = GRADEQ_ERR_CONFIG;
		}
	}
	/* "entry 1" reads oddly for a single URL: "'amqp_url' 1 must..." */
	if (rc == GRADEQ_ERR_CONFIG && u->n == 1 && why && strncmp(why, "1 ", 2) == 0)
		memmove(why, why + 2, strlen(why + 2) + 1);
	return rc;
}

/* splitmix64: a good spread from any seed, no state outside the call. */
static uint64_t mix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void gradeq_urls_shuffle(struct gradeq_urls *u, uint64_t seed)
{
	for (int i = 0; i < u->n; i++)
		u->order[i] = i;
	/* Fisher-Yates */
	for (int i = u->n - 1; i > 0; i--) {
		int j = (int)(mix(&seed) % (uint64_t)(i + 1)), t = u->order[i];

		u->order[i] = u->order[j];
		u->order[j] = t;
	}
	u->cur = 0;
}

int gradeq_urls_at(const struct gradeq_urls *u, int step)
{
	if (u->n <= 0)
		return 0;
	return u->order[((u->cur + step) % u->n + u->n) % u->n];
}

void gradeq_urls_use(struct gradeq_urls *u, int step)
{
	if (u->n > 0)
		u->cur = ((u->cur + step) % u->n + u->n) % u->n;
}

void gradeq_urls_lost(struct gradeq_urls *u, int lost)
{
	if (u->n > 0 && u->order[u->cur] == lost)
		u->cur = (u->cur + 1) % u->n;
}

int gradeq_backoff_ms(int attempt, int cap_ms, uint32_t jitter)
{
	int base = GRADEQ_BACKOFF_FIRST_MS;

	if (attempt <= 0)
		return 0;
	if (cap_ms < 1)
		cap_ms = 1;
	for (int i = 1; i < attempt && base < cap_ms; i++)
		base *= 2;
	if (base > cap_ms)
		base = cap_ms;
	return base / 2 + (int)(jitter % (uint32_t)(base - base / 2 + 1));
}
