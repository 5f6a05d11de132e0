/* Server-Sent Events: one thread follows gradeq.events through an
 * exclusive, auto-delete queue of this process (reconnecting with backoff)
 * and appends each event's frame to every connected client's buffer. A
 * client's buffer is bounded: one that falls behind by more than
 * SSE_CLIENT_BUF is dropped, never slowing the others nor growing memory.
 * Each client's connection thread (libmicrohttpd's thread per connection)
 * waits in its content reader for frames, or sends ": ping" every 15 s. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "gradeq/broker.h"
#include "gradeq/limits.h"
#include "gradeq/log.h"
#include "web/internal.h"

#define SSE_CLIENT_BUF (64 * 1024) /* bytes a client may fall behind */
#define SSE_PING_S 15
#define SSE_CLIENTS_MAX 200

struct sse_client {
	struct sse_hub *hub;
	struct sse_client *next;
	char *buf;
	size_t len;
	bool dropped;
	time_t last_sent;
	char user[GRADEQ_WEB_NAME_MAX];
};

struct sse_hub {
	struct web *w;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct sse_client *clients;
	size_t nclients;
	volatile bool stop;
	bool started;
	pthread_t thread;
	unsigned long events;
};

char *gradeq_web_sse_frame(const char *key, size_t keylen, const char *body, size_t bodylen)
{
	json_t *b = json_loadb(body, bodylen, JSON_DECODE_ANY, NULL);
	json_t *o;
	char *data, *frame = NULL;
	size_t n;

	if (!b)
		b = json_stringn_nocheck(body, bodylen);
	o = json_pack("{s:s%,s:o}", "routing_key", key, keylen, "body", b);
	/* JSON_COMPACT escapes line breaks inside strings: one data: line */
	data = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	json_decref(o);
	if (!data)
		return NULL;
	n = strlen(data) + 32;
	frame = malloc(n);
	if (frame)
		snprintf(frame, n, "event: gradeq\ndata: %s\n\n", data);
	free(data);
	return frame;
}

/* Appends text to every client; one without room is dropped. */
static void broadcast(struct sse_hub *h, const char *text)
{
	size_t n = strlen(text);

	pthread_mutex_lock(&h->mu);
	for (struct sse_client *c = h->clients; c; c = c->next) {
		if (c->dropped)
			continue;
		if (c->len + n > SSE_CLIENT_BUF) {
			c->dropped = true;
			continue;
		}
		memcpy(c->buf + c->len, text, n);
		c->len += n;
	}
	h->events++;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

/* Sleeps ms unless the hub stops. */
static void nap(struct sse_hub *h, long ms)
{
	for (long t = 0; t < ms && !h->stop; t += 100)
		usleep(100 * 1000);
}

static void *follow(void *arg)
{
	struct sse_hub *h = arg;
	const char *keys[1] = {"#"};
	long backoff = GRADEQ_BACKOFF_FIRST_MS;

	while (!h->stop) {
		struct gradeq_broker *b = NULL;
		int rc;

		rc = gradeq_broker_open(h->w->cli->cfg, "gradeq-web", NULL, GRADEQ_BROKER_CONSUME,
					&b);
		if (!rc)
			rc = gradeq_broker_follow(b, NULL, GRADEQ_EVENTS_EXCHANGE, keys, 1, NULL);
		if (rc)
			log_warn("event=events_unavailable error=%s retry_ms=%ld",
				 gradeq_errmsg(rc), backoff);
		if (rc) {
			gradeq_broker_free(b);
			nap(h, backoff);
			/* the same cap as every reconnect (reconnect_max_ms) */
			backoff = backoff * 2 > h->w->cli->cfg->reconnect_max_ms
					  ? h->w->cli->cfg->reconnect_max_ms
					  : backoff * 2;
			continue;
		}
		log_info("event=events_following exchange=%s", GRADEQ_EVENTS_EXCHANGE);
		backoff = GRADEQ_BACKOFF_FIRST_MS;
		while (!h->stop) {
			amqp_envelope_t env;
			char *frame;

			rc = gradeq_broker_next(b, &env, 500);
			if (rc == GRADEQ_ERR_TIMEOUT)
				continue;
			if (rc)
				break;
			frame = gradeq_web_sse_frame(
				(const char *)env.routing_key.bytes, env.routing_key.len,
				(const char *)env.message.body.bytes, env.message.body.len);
			if (frame)
				broadcast(h, frame);
			free(frame);
			amqp_destroy_envelope(&env);
		}
		if (!h->stop)
			log_warn("event=events_lost error=%s", gradeq_errmsg(rc));
		gradeq_broker_free(b);
	}
	return NULL;
}

int sse_hub_new(struct web *w, struct sse_hub **out)
{
	struct sse_hub *h = calloc(1, sizeof(*h));

	*out = NULL;
	if (!h)
		return GRADEQ_ERR_NOMEM;
	h->w = w;
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	*out = h;
	return 0;
}

int sse_hub_start(struct sse_hub *h)
{
	if (pthread_create(&h->thread, NULL, follow, h) != 0)
		return gradeq_error(GRADEQ_ERR_IO, "pthread_create: %s", strerror(errno));
	h->started = true;
	return 0;
}

void sse_hub_stop(struct sse_hub *h)
{
	pthread_mutex_lock(&h->mu);
	h->stop = true;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	if (h->started)
		pthread_join(h->thread, NULL);
	h->started = false;
}

void sse_hub_free(struct sse_hub *h)
{
	if (!h)
		return;
	pthread_mutex_destroy(&h->mu);
	pthread_cond_destroy(&h->cv);
	free(h);
}

/* libmicrohttpd's content reader: in thread-per-connection mode it may
 * wait, which is what a stream does between events. */
static ssize_t reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct sse_client *c = cls;
	struct sse_hub *h = c->hub;
	ssize_t n;

	(void)pos;
	pthread_mutex_lock(&h->mu);
	while (!c->len && !c->dropped && !h->stop) {
		struct timespec until = {c->last_sent + SSE_PING_S, 0};

		if (pthread_cond_timedwait(&h->cv, &h->mu, &until) == ETIMEDOUT && !c->len) {
			static const char ping[] = ": ping\n\n";

			memcpy(c->buf, ping, sizeof(ping) - 1);
			c->len = sizeof(ping) - 1;
		}
	}
	if (c->dropped || h->stop) {
		pthread_mutex_unlock(&h->mu);
		if (c->dropped)
			log_warn("event=sse_client_dropped user=%s reason=too_slow", c->user);
		return c->dropped ? MHD_CONTENT_READER_END_WITH_ERROR
				  : MHD_CONTENT_READER_END_OF_STREAM;
	}
	n = (ssize_t)(c->len < max ? c->len : max);
	memcpy(buf, c->buf, (size_t)n);
	memmove(c->buf, c->buf + n, c->len - (size_t)n);
	c->len -= (size_t)n;
	c->last_sent = time(NULL);
	pthread_mutex_unlock(&h->mu);
	return n;
}

static void reader_free(void *cls)
{
	struct sse_client *c = cls;
	struct sse_hub *h = c->hub;

	pthread_mutex_lock(&h->mu);
	for (struct sse_client **pp = &h->clients; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			h->nclients--;
			break;
		}
	pthread_mutex_unlock(&h->mu);
	free(c->buf);
	free(c);
}

int api_events(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r)
{
	struct sse_hub *h = q->w->hub;
	struct sse_client *c = calloc(1, sizeof(*c));
	static const char first[] = "retry: 3000\n\n";

	(void)p;
	if (!c || !(c->buf = malloc(SSE_CLIENT_BUF))) {
		free(c);
		return reply_error(r, 500, "out of memory");
	}
	c->hub = h;
	memcpy(c->buf, first, sizeof(first) - 1);
	c->len = sizeof(first) - 1;
	c->last_sent = time(NULL);
	snprintf(c->user, sizeof(c->user), "%s", q->s.user);
	pthread_mutex_lock(&h->mu);
	if (h->nclients >= SSE_CLIENTS_MAX) {
		pthread_mutex_unlock(&h->mu);
		free(c->buf);
		free(c);
		return reply_error(r, 503, "too many event streams");
	}
	c->next = h->clients;
	h->clients = c;
	h->nclients++;
	pthread_mutex_unlock(&h->mu);
	r->raw = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, reader, c, reader_free);
	if (!r->raw) {
		reader_free(c);
		return reply_error(r, 500, "out of memory");
	}
	MHD_add_response_header(r->raw, "Content-Type", "text/event-stream");
	r->status = 200;
	return 0;
}
