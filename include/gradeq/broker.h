/* The broker: gradeq's only module that talks to RabbitMQ (rabbitmq-c).
 * One connection, channel 1. Reply kinds of rabbitmq-c are translated to
 * gradeq_err at this edge. */
#ifndef GRADEQ_BROKER_H
#define GRADEQ_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <amqp.h>

#include "gradeq/config.h"
#include "gradeq/err.h"
#include "gradeq/limits.h"

#define GRADEQ_EXCHANGE "gradeq"
#define GRADEQ_DEAD_EXCHANGE "gradeq.dead"
#define GRADEQ_EVENTS_EXCHANGE "gradeq.events"
#define GRADEQ_NAME_MAX 256

struct gradeq_broker;

/* What a connection is for; its name says it ("... role=consume"). */
enum gradeq_broker_role {
	GRADEQ_BROKER_PUBLISH,
	GRADEQ_BROKER_CONSUME,
};

/* The one identity of a process toward the broker,
 * "PROG release=R host=H pid=P" (release=- when NULL), written into buf:
 * in connection names, consumer tags and the gradeq-failed-by header.
 * Returns buf. */
const char *gradeq_identity(char *buf, size_t len, const char *prog, const char *release);

/* Connects as cfg says (amqp_url with amqp_password_file, heartbeat), logs
 * in with the client property connection_name = "<identity>
 * role=publish|consume" (shown by the management UI) and opens channel 1.
 * For an amqps:// URL the connection is TLS and verifies the broker's
 * certificate (against amqp_cacert, else the system's CAs) and host name,
 * showing amqp_cert and amqp_key when set. GRADEQ_ERR_BROKER when
 * unreachable, GRADEQ_ERR_ACCESS when the login is refused or the broker's
 * certificate is not trusted, GRADEQ_ERR_CONFIG when the TLS files cannot
 * be loaded, and gradeq_config_amqp_url()'s errors. */
int gradeq_broker_open(const struct gradeq_config *cfg, const char *prog, const char *release,
		       enum gradeq_broker_role role, struct gradeq_broker **out) GRADEQ_MUST_CHECK;
void gradeq_broker_free(struct gradeq_broker *b);
/* Sends a heartbeat frame when the connection negotiated heartbeats and
 * is usable: for a caller that spends long outside rabbitmq-c's calls
 * (which service heartbeats themselves). */
void gradeq_broker_heartbeat(struct gradeq_broker *b);

/* Keeps a connection that is only published to alive while it is not used:
 * reads without waiting what the broker sent (confirms, returns, its
 * heartbeats; an unread socket looks like a dead peer to rabbitmq-c) and
 * sends a heartbeat. Non-zero when the connection is gone: it is broken
 * from then on and must be reopened before use. Not for a consuming
 * connection, whose deliveries it would swallow. */
int gradeq_broker_service(struct gradeq_broker *b) GRADEQ_MUST_CHECK;
/* host:port of the node the connection went to, for logs ("" for NULL). */
const char *gradeq_broker_peer(const struct gradeq_broker *b);
/* True once the connection or channel is unusable (reconnect). */
bool gradeq_broker_broken(const struct gradeq_broker *b);

/* Release topology (DESIGN.md section 3). */
struct gradeq_topology {
	int delivery_limit;
	const int *retry_tiers; /* seconds */
	int nretry_tiers;
	/* Placement, given to queues when they are created only: a queue that
	 * exists keeps the arguments it was declared with. */
	int quorum_group_size;      /* x-quorum-initial-group-size; 0 = not sent */
	const char *leader_locator; /* x-queue-leader-locator; NULL = not sent */
};

/* Names of a release's objects, written into buf (GRADEQ_NAME_MAX). */
const char *gradeq_work_queue(char *buf, const char *release);
const char *gradeq_work_key(char *buf, const char *release);
const char *gradeq_retry_queue(char *buf, const char *release, int seconds);
const char *gradeq_retry_key(char *buf, const char *release, int seconds);
const char *gradeq_dead_queue(char *buf, const char *release);

/* Declares the exchanges, the events log queue (GRADEQ_EVENTS_LOG_QUEUE,
 * bound for job.#, run.# and release.#), the release's work, retry and dead
 * queues and their bindings. Idempotent. A release queue that exists is
 * only bound, never declared again: it keeps the arguments it was created
 * with (delivery limit, placement), so that changing a setting never makes
 * the declare fail with PRECONDITION_FAILED. The leader locator is sent only
 * to brokers that know it (RabbitMQ 3.10 and later). The events log queue
 * (classic: on one node) that cannot be declared because its node is down
 * is logged and passed over. */
int gradeq_broker_declare(struct gradeq_broker *b, const char *release,
			  const struct gradeq_topology *t) GRADEQ_MUST_CHECK;

/* Passive declare: *ready (ready messages only) and *consumers.
 * GRADEQ_ERR_NOT_FOUND when the queue does not exist. */
int gradeq_broker_queue_info(struct gradeq_broker *b, const char *queue, uint32_t *ready,
			     uint32_t *consumers) GRADEQ_MUST_CHECK;

/* Deletes a queue whatever it holds (quorum queues support no if-unused
 * or if-empty: check with gradeq_broker_queue_info first); *deleted gets
 * how many messages went with it (may be NULL). */
int gradeq_broker_queue_delete(struct gradeq_broker *b, const char *queue,
			       uint32_t *deleted) GRADEQ_MUST_CHECK;

/* Puts the channel in confirm mode; window = confirms kept in flight. */
int gradeq_broker_confirm_mode(struct gradeq_broker *b, int window) GRADEQ_MUST_CHECK;

/* Publishes persistent and mandatory. In confirm mode, waits only when the
 * window is full. A message the broker returned or nacked makes this or a
 * later call fail with GRADEQ_ERR_UNROUTABLE / GRADEQ_ERR_NACKED. */
int gradeq_broker_publish(struct gradeq_broker *b, const char *exchange, const char *key,
			  const amqp_basic_properties_t *props, const void *body,
			  size_t len) GRADEQ_MUST_CHECK;

/* Waits until every published message is confirmed (timeout_ms < 0: no
 * limit). 0 only when all were acked and none returned. */
int gradeq_broker_wait_confirms(struct gradeq_broker *b, int timeout_ms) GRADEQ_MUST_CHECK;

/* Number of messages confirmed (acked, not returned) so far. */
uint64_t gradeq_broker_confirmed(const struct gradeq_broker *b);

/* Confirm mode: the delivery tag the next publish gets (1, 2, ... on each
 * connection), and the highest tag up to which every publish is settled
 * (acked, nacked or returned). A publisher keeps what is above the latter
 * to publish it again on another connection when this one is lost. */
uint64_t gradeq_broker_next_tag(const struct gradeq_broker *b);
uint64_t gradeq_broker_settled_upto(const struct gradeq_broker *b);

/* Starts consuming 'queue' with a prefetch; tag names the consumer. */
int gradeq_broker_consume(struct gradeq_broker *b, const char *queue, int prefetch,
			  const char *tag) GRADEQ_MUST_CHECK;

/* Stops taking deliveries (basic.cancel); deliveries already sent remain. */
int gradeq_broker_cancel(struct gradeq_broker *b) GRADEQ_MUST_CHECK;

/* Waits up to timeout_ms for a delivery. 0 with *env filled (release it with
 * amqp_destroy_envelope), GRADEQ_ERR_TIMEOUT when none came, GRADEQ_ERR_BROKER
 * when the connection is lost, GRADEQ_ERR_NOT_FOUND when the broker
 * cancelled the consumer (queue deleted). */
int gradeq_broker_next(struct gradeq_broker *b, amqp_envelope_t *env,
		       int timeout_ms) GRADEQ_MUST_CHECK;

int gradeq_broker_ack(struct gradeq_broker *b, uint64_t tag) GRADEQ_MUST_CHECK;
/* Acks every delivery of the channel up to tag not yet acked (basic.ack
 * with multiple=true). */
int gradeq_broker_ack_upto(struct gradeq_broker *b, uint64_t tag) GRADEQ_MUST_CHECK;
/* basic.get one message (no_ack=false). GRADEQ_ERR_NOT_FOUND when empty. */
int gradeq_broker_get(struct gradeq_broker *b, const char *queue,
		      amqp_envelope_t *env) GRADEQ_MUST_CHECK;

/* Follows exchange through a queue that lives as long as the connection:
 * named name (NULL: a server-named amq.gen-* queue), exclusive and
 * auto-delete, bound for each of the nkeys routing keys and consumed
 * without acks under tag (NULL: one the broker chooses). Its deliveries
 * arrive through gradeq_broker_next(), with the exchange's name. */
int gradeq_broker_follow(struct gradeq_broker *b, const char *name, const char *exchange,
			 const char *const *keys, size_t nkeys, const char *tag) GRADEQ_MUST_CHECK;

/* Header helpers over an amqp_table_t of properties. Returned strings are
 * copied into buf (NUL-terminated); NULL when absent or not a string. */
const char *gradeq_header_str(const amqp_table_t *h, const char *key, char *buf, size_t len);
/* Integer header (any integer type); def when absent. */
int64_t gradeq_header_int(const amqp_table_t *h, const char *key, int64_t def);

/* A mutable header table for building messages: room for 32 entries and
 * 4 KiB of copied strings. What does not fit is not added and the first
 * such header makes gradeq_headers_finish() fail: a message is never sent
 * without a header its sender set. */
struct gradeq_headers {
	amqp_table_entry_t entries[32];
	int n;
	char strings[4096];
	size_t used;
	char overflow[64]; /* first header that did not fit; "" when none */
};
void gradeq_headers_init(struct gradeq_headers *h);
/* Copies the entries of t except those named in skip (NULL-terminated). */
void gradeq_headers_copy(struct gradeq_headers *h, const amqp_table_t *t, const char *const *skip);
/* Adds or replaces; strings are copied into h. */
void gradeq_headers_set_str(struct gradeq_headers *h, const char *key, const char *val);
void gradeq_headers_set_int(struct gradeq_headers *h, const char *key, int64_t val);
/* The table to publish, into *out (valid while h is). GRADEQ_ERR_INVALID,
 * naming the first header that did not fit, when one did not. */
int gradeq_headers_finish(struct gradeq_headers *h, amqp_table_t *out) GRADEQ_MUST_CHECK;

/* Publishes to the events exchange without mandatory: an event goes at
 * least to the events log queue once gradeq_broker_declare() ran, and is
 * never returned. */
int gradeq_broker_publish_event(struct gradeq_broker *b, const char *key,
				const amqp_basic_properties_t *props, const void *body,
				size_t len) GRADEQ_MUST_CHECK;

#endif
