/* rabbitmq-c behind gradeq's error model: connection, topology, publishing
 * with confirms and mandatory returns, consuming with a finite timeout. */
#include "gradeq/broker.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <amqp_framing.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <openssl/err.h>

#include "gradeq/confirms.h"
#include "gradeq/limits.h"
#include "gradeq/log.h"
#include "gradeq/urls.h"

#define CHANNEL 1

/* TLS files for amqps:// URLs (PEM); NULL members mean none. */
struct gradeq_broker_tls {
	const char *cacert; /* CAs that sign the broker's certificate; NULL: the system's */
	const char *cert;   /* client certificate, with key */
	const char *key;
};

struct gradeq_broker {
	amqp_connection_state_t conn;
	bool broken;
	bool confirm;
	int window;
	struct gradeq_confirms cf; /* confirm mode: the publishes' tags settled */
	uint64_t returned_total;
	uint64_t returned; /* basic.return seen since the last wait */
	uint64_t nacked;   /* basic.nack'ed since the last wait */
	char consumer_tag[128];
	bool event_publish;  /* not mandatory: an event nobody listens to is fine */
	int node;            /* index in the process's node list (nodes) */
	unsigned generation; /* of the node list it was chosen from */
	char peer[300];      /* host:port of the node, for logs */
};

static int reply_error(struct gradeq_broker *b, amqp_rpc_reply_t r, const char *what)
{
	char text[300] = "";

	switch (r.reply_type) {
	case AMQP_RESPONSE_NORMAL: return 0;
	case AMQP_RESPONSE_NONE:
		b->broken = true;
		return gradeq_error(GRADEQ_ERR_BROKER, "%s: missing reply from broker", what);
	case AMQP_RESPONSE_LIBRARY_EXCEPTION:
		/* a synchronous method past the RPC timeout leaves the connection in
		 * an unknown state: it is not used again */
		b->broken = true;
		if (r.library_error == AMQP_STATUS_TIMEOUT)
			return gradeq_error(GRADEQ_ERR_TIMEOUT, "%s: no answer from the broker",
					    what);
		return gradeq_error(GRADEQ_ERR_BROKER, "%s: %s", what,
				    amqp_error_string2(r.library_error));
	case AMQP_RESPONSE_SERVER_EXCEPTION: break;
	}
	if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
		amqp_connection_close_t *m = r.reply.decoded;
		int len = (int)m->reply_text.len;

		snprintf(text, sizeof(text), "%.*s", len, (char *)m->reply_text.bytes);
		amqp_connection_close_ok_t ok = {0};
		amqp_send_method(b->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
		b->broken = true;
		return gradeq_error(m->reply_code == AMQP_ACCESS_REFUSED ? GRADEQ_ERR_ACCESS
									 : GRADEQ_ERR_BROKER,
				    "%s: connection closed by broker: %s", what, text);
	}
	if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
		amqp_channel_close_t *m = r.reply.decoded;
		int code = GRADEQ_ERR_BROKER;
		amqp_channel_close_ok_t ok = {0};
		uint16_t rc = m->reply_code;

		snprintf(text, sizeof(text), "%.*s", (int)m->reply_text.len,
			 (char *)m->reply_text.bytes);
		amqp_send_method(b->conn, CHANNEL, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
		/* reopen the channel so the connection stays usable, in confirm mode
		 * again when it was (a new channel numbers its publishes from 1;
		 * what was in flight on the old one is not confirmed, and the caller
		 * gets this error) */
		if (!amqp_channel_open(b->conn, CHANNEL) ||
		    amqp_get_rpc_reply(b->conn).reply_type != AMQP_RESPONSE_NORMAL) {
			b->broken = true;
		} else if (b->confirm) {
			amqp_confirm_select(b->conn, CHANNEL);
			if (amqp_get_rpc_reply(b->conn).reply_type != AMQP_RESPONSE_NORMAL)
				b->broken = true;
			gradeq_confirms_reset(&b->cf);
		}
		if (b->broken)
			b->confirm = false;
		if (rc == AMQP_ACCESS_REFUSED)
			code = GRADEQ_ERR_ACCESS;
		else if (rc == AMQP_NOT_FOUND)
			code = GRADEQ_ERR_NOT_FOUND;
		else if (rc == AMQP_PRECONDITION_FAILED)
			code = GRADEQ_ERR_PRECONDITION;
		else if (rc == AMQP_RESOURCE_LOCKED)
			code = GRADEQ_ERR_STATE;
		return gradeq_error(code, "%s: %s", what, text);
	}
	b->broken = true;
	return gradeq_error(GRADEQ_ERR_BROKER, "%s: unexpected server reply 0x%08x", what,
			    r.reply.id);
}

static int status_error(struct gradeq_broker *b, int status, const char *what)
{
	if (status == AMQP_STATUS_OK)
		return 0;
	if (status == AMQP_STATUS_TIMEOUT)
		return gradeq_error(GRADEQ_ERR_TIMEOUT, "%s: timed out", what);
	b->broken = true;
	return gradeq_error(GRADEQ_ERR_BROKER, "%s: %s", what, amqp_error_string2(status));
}

/* Debian's bundle of the system's trusted CAs (ca-certificates). */
#define SYSTEM_CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt"

/* An SSL socket that checks the broker's certificate chain against
 * tls->cacert (NULL: the system's CAs) and its name against the URL's host,
 * and shows tls->cert and tls->key when given. */
static int tls_socket(amqp_connection_state_t conn, const struct gradeq_broker_tls *tls,
		      amqp_socket_t **out)
{
	const char *ca = tls && tls->cacert ? tls->cacert : SYSTEM_CA_BUNDLE;
	amqp_socket_t *s = amqp_ssl_socket_new(conn);
	int st;

	*out = NULL;
	if (!s)
		return gradeq_error(GRADEQ_ERR_NOMEM, "cannot create a TLS socket");
	amqp_ssl_socket_set_verify_peer(s, 1);
	amqp_ssl_socket_set_verify_hostname(s, 1);
	st = amqp_ssl_socket_set_cacert(s, ca);
	if (st != AMQP_STATUS_OK)
		return gradeq_error(GRADEQ_ERR_CONFIG,
				    "amqp_cacert '%s': cannot load CA certificates: %s", ca,
				    amqp_error_string2(st));
	if (tls && (tls->cert || tls->key)) {
		if (!tls->cert || !tls->key)
			return gradeq_error(GRADEQ_ERR_CONFIG,
					    "amqp_cert and amqp_key go together");
		st = amqp_ssl_socket_set_key(s, tls->cert, tls->key);
		if (st != AMQP_STATUS_OK)
			return gradeq_error(GRADEQ_ERR_CONFIG,
					    "amqp_cert '%s' / amqp_key '%s': cannot load: %s",
					    tls->cert, tls->key, amqp_error_string2(st));
	}
	*out = s;
	return 0;
}

/* A failed TLS handshake: an untrusted certificate is permanent (ACCESS, no
 * retry), with OpenSSL's reason, e.g. "certificate verify failed". */
static int tls_open_error(const struct amqp_connection_info *ci, int st,
			  const struct gradeq_broker_tls *tls)
{
	unsigned long e = ERR_peek_last_error();
	const char *why = e ? ERR_reason_error_string(e) : NULL;
	bool untrusted = st == AMQP_STATUS_SSL_PEER_VERIFY_FAILED ||
			 st == AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED ||
			 (why && strstr(why, "certificate verify failed"));

	ERR_clear_error();
	if (untrusted)
		return gradeq_error(
			GRADEQ_ERR_ACCESS,
			"TLS handshake with RabbitMQ at %s:%d failed: %s: its certificate"
			" does not chain to a CA in '%s' (amqp_cacert) or does not name"
			" '%s'",
			ci->host, ci->port, amqp_error_string2(st),
			tls && tls->cacert ? tls->cacert : SYSTEM_CA_BUNDLE, ci->host);
	return gradeq_error(GRADEQ_ERR_BROKER,
			    "TLS handshake with RabbitMQ at %s:%d failed: %s%s%s%s", ci->host,
			    ci->port, amqp_error_string2(st), why ? " (" : "", why ? why : "",
			    why ? ")" : "");
}

static int connect_tls(const char *url, const char *name, int heartbeat, int timeout_s,
		       const struct gradeq_broker_tls *tls, struct gradeq_broker **out)
{
	struct amqp_connection_info ci;
	struct gradeq_broker *b = NULL;
	amqp_socket_t *sock = NULL;
	char *copy = NULL;
	struct timeval tv = {timeout_s, 0}, rpc = {GRADEQ_RPC_TIMEOUT_S, 0};
	amqp_table_entry_t props[3], caps[2];
	amqp_table_t table;
	amqp_rpc_reply_t r;
	int rc, st;

	*out = NULL;
	copy = strdup(url ? url : "");
	b = calloc(1, sizeof(*b));
	if (!copy || !b) {
		rc = GRADEQ_ERR_NOMEM;
		goto fail;
	}
	amqp_default_connection_info(&ci);
	if (*copy && amqp_parse_url(copy, &ci) != AMQP_STATUS_OK) {
		rc = gradeq_error(GRADEQ_ERR_CONFIG,
				  "malformed AMQP URL (expected amqp://user:pass@host:port/vhost)");
		goto fail;
	}
	b->conn = amqp_new_connection();
	if (b->conn && ci.ssl) {
		rc = tls_socket(b->conn, tls, &sock);
		if (rc)
			goto fail;
	} else if (b->conn) {
		sock = amqp_tcp_socket_new(b->conn);
	}
	if (!sock) {
		rc = GRADEQ_ERR_NOMEM;
		goto fail;
	}
	st = amqp_socket_open_noblock(sock, ci.host, ci.port, &tv);
	if (st != AMQP_STATUS_OK && ci.ssl) {
		rc = tls_open_error(&ci, st, tls);
		goto fail;
	}
	if (st != AMQP_STATUS_OK) {
		rc = gradeq_error(GRADEQ_ERR_BROKER, "cannot connect to RabbitMQ at %s:%d: %s",
				  ci.host, ci.port, amqp_error_string2(st));
		goto fail;
	}
	/* no synchronous call may block for ever: the login and every RPC
	 * (declare, qos, consume, cancel, get) give up after a bound, which
	 * marks the connection broken */
	if (amqp_set_handshake_timeout(b->conn, &tv) != AMQP_STATUS_OK ||
	    amqp_set_rpc_timeout(b->conn, &rpc) != AMQP_STATUS_OK) {
		rc = gradeq_error(GRADEQ_ERR_BROKER, "cannot set the broker timeouts");
		goto fail;
	}
	props[0].key = amqp_cstring_bytes("connection_name");
	props[0].value.kind = AMQP_FIELD_KIND_UTF8;
	props[0].value.value.bytes = amqp_cstring_bytes(name ? name : "gradeq");
	props[1].key = amqp_cstring_bytes("product");
	props[1].value.kind = AMQP_FIELD_KIND_UTF8;
	props[1].value.value.bytes = amqp_cstring_bytes("gradeq " GRADEQ_VERSION);
	/* merged by rabbitmq-c into its own capabilities: without
	 * consumer_cancel_notify the broker drops a consumer whose queue was
	 * deleted (or whose leader moved away) without a word; with
	 * connection.blocked it says when a resource alarm holds publishes */
	caps[0].key = amqp_cstring_bytes("consumer_cancel_notify");
	caps[0].value.kind = AMQP_FIELD_KIND_BOOLEAN;
	caps[0].value.value.boolean = 1;
	caps[1].key = amqp_cstring_bytes("connection.blocked");
	caps[1].value.kind = AMQP_FIELD_KIND_BOOLEAN;
	caps[1].value.value.boolean = 1;
	props[2].key = amqp_cstring_bytes("capabilities");
	props[2].value.kind = AMQP_FIELD_KIND_TABLE;
	props[2].value.value.table.num_entries = 2;
	props[2].value.value.table.entries = caps;
	table.num_entries = 3;
	table.entries = props;
	r = amqp_login_with_properties(b->conn, ci.vhost, 0, 131072, heartbeat, &table,
				       AMQP_SASL_METHOD_PLAIN, ci.user, ci.password);
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
		    r.library_error == AMQP_STATUS_CONNECTION_CLOSED)
			rc = gradeq_error(GRADEQ_ERR_ACCESS,
					  "RabbitMQ at %s:%d refused login as '%s' to vhost '%s'",
					  ci.host, ci.port, ci.user, ci.vhost);
		else
			rc = reply_error(b, r, "login");
		/* a vhost the user has no permissions in: NOT_ALLOWED, not worth retrying */
		if (rc == GRADEQ_ERR_BROKER && r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
		    r.reply.id == AMQP_CONNECTION_CLOSE_METHOD &&
		    ((amqp_connection_close_t *)r.reply.decoded)->reply_code == AMQP_NOT_ALLOWED) {
			char msg[400];

			snprintf(msg, sizeof(msg), "%s", gradeq_errmsg(rc));
			rc = gradeq_error(GRADEQ_ERR_ACCESS, "%s", msg);
		}
		goto fail;
	}
	amqp_channel_open(b->conn, CHANNEL);
	rc = reply_error(b, amqp_get_rpc_reply(b->conn), "channel open");
	if (rc)
		goto fail;
	gradeq_confirms_reset(&b->cf);
	snprintf(b->peer, sizeof(b->peer), "%s:%d", ci.host, ci.port);
	free(copy);
	*out = b;
	return 0;
fail:
	free(copy);
	gradeq_broker_free(b);
	return rc;
}

const char *gradeq_identity(char *buf, size_t len, const char *prog, const char *release)
{
	char host[128] = "unknown";

	gethostname(host, sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	snprintf(buf, len, "%s release=%s host=%s pid=%ld", prog, release ? release : "-", host,
		 (long)getpid());
	return buf;
}

/* The process's nodes: amqp_url's list in this process's shuffled order,
 * and which one is in use. Every connection of the process (consuming,
 * publishing, events) starts at the node in use, so a consumer's two
 * connections meet on one node, and moves on together after a loss.
 * Guarded by nodes_mu: the consumer's heartbeat thread never opens
 * connections, but nothing here relies on that. */
static pthread_mutex_t nodes_mu = PTHREAD_MUTEX_INITIALIZER;
static struct gradeq_urls nodes;
static char *nodes_list;          /* the list nodes came from (with passwords) */
static unsigned nodes_generation; /* changes with the list */

/* Makes nodes the list of url (parsed and shuffled once per process and
 * list). Called with nodes_mu held. */
static int nodes_load(const char *url)
{
	struct timespec ts;
	char why[300];
	int rc;

	if (nodes_list && strcmp(nodes_list, url) == 0)
		return 0;
	gradeq_urls_release(&nodes);
	if (nodes_list) {
		explicit_bzero(nodes_list, strlen(nodes_list));
		free(nodes_list);
	}
	nodes_list = NULL;
	nodes_generation++;
	rc = gradeq_urls_parse_amqp(url, &nodes, why, sizeof(why));
	if (rc == GRADEQ_ERR_CONFIG)
		return gradeq_error(rc, "amqp_url %s", why);
	if (rc)
		return gradeq_error(rc, "out of memory");
	nodes_list = strdup(url);
	if (!nodes_list) {
		gradeq_urls_release(&nodes);
		return gradeq_error(GRADEQ_ERR_NOMEM, "out of memory");
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	gradeq_urls_shuffle(&nodes, ((uint64_t)getpid() << 32) ^ (uint64_t)ts.tv_nsec ^
					    (uint64_t)ts.tv_sec);
	return 0;
}

int gradeq_broker_open(const struct gradeq_config *cfg, const char *prog, const char *release,
		       enum gradeq_broker_role role, struct gradeq_broker **out)
{
	struct gradeq_broker_tls tls = {cfg->amqp_cacert, cfg->amqp_cert, cfg->amqp_key};
	char id[GRADEQ_NAME_MAX], name[GRADEQ_NAME_MAX + 16], first[512] = "";
	char *url = NULL, *node = NULL;
	unsigned gen;
	int rc, n, step;

	*out = NULL;
	rc = gradeq_config_amqp_url(cfg, &url);
	if (rc)
		return rc;
	snprintf(name, sizeof(name), "%s role=%s", gradeq_identity(id, sizeof(id), prog, release),
		 role == GRADEQ_BROKER_CONSUME ? "consume" : "publish");
	pthread_mutex_lock(&nodes_mu);
	rc = nodes_load(url);
	n = nodes.n;
	gen = nodes_generation;
	pthread_mutex_unlock(&nodes_mu);
	explicit_bzero(url, strlen(url));
	free(url);
	if (rc)
		return rc;
	/* the node in use first, then each other once: the first that takes us
	 * becomes the one in use */
	for (step = 0; step < n; step++) {
		int idx;

		pthread_mutex_lock(&nodes_mu);
		if (gen != nodes_generation) {
			pthread_mutex_unlock(&nodes_mu);
			return gradeq_error(GRADEQ_ERR_BROKER, "amqp_url changed while connecting");
		}
		idx = gradeq_urls_at(&nodes, step);
		node = strdup(nodes.url[idx]);
		pthread_mutex_unlock(&nodes_mu);
		if (!node)
			return gradeq_error(GRADEQ_ERR_NOMEM, "out of memory");
		rc = connect_tls(node, name, cfg->heartbeat,
				 n > 1 ? GRADEQ_FAILOVER_CONNECT_TIMEOUT_S
				       : GRADEQ_CONNECT_TIMEOUT_S,
				 &tls, out);
		explicit_bzero(node, strlen(node));
		free(node);
		if (!rc) {
			pthread_mutex_lock(&nodes_mu);
			if (gen == nodes_generation)
				gradeq_urls_use(&nodes, step);
			pthread_mutex_unlock(&nodes_mu);
			(*out)->node = idx;
			(*out)->generation = gen;
			if (step)
				log_info("event=broker_node node=%d nodes=%d skipped=%d", idx + 1,
					 n, step);
			return 0;
		}
		/* only a node that cannot be reached is worth passing over: a
		 * refused login or an untrusted certificate is the cluster's */
		if (rc != GRADEQ_ERR_BROKER && rc != GRADEQ_ERR_TIMEOUT)
			return rc;
		if (!step)
			snprintf(first, sizeof(first), "%s", gradeq_errmsg(rc));
		log_debug("event=broker_node_unreachable node=%d nodes=%d error=\"%s\"", idx + 1, n,
			  gradeq_errmsg(rc));
	}
	if (n > 1)
		return gradeq_error(rc, "no node of amqp_url (%d) can be reached: %s; the last: %s",
				    n, first, gradeq_errmsg(rc));
	return rc;
}

void gradeq_broker_free(struct gradeq_broker *b)
{
	if (!b)
		return;
	if (b->broken) {
		/* a lost node: the next connection starts at the one after it */
		pthread_mutex_lock(&nodes_mu);
		if (b->generation == nodes_generation)
			gradeq_urls_lost(&nodes, b->node);
		pthread_mutex_unlock(&nodes_mu);
	}
	if (b->conn) {
		if (!b->broken) {
			amqp_channel_close(b->conn, CHANNEL, AMQP_REPLY_SUCCESS);
			amqp_connection_close(b->conn, AMQP_REPLY_SUCCESS);
		}
		amqp_destroy_connection(b->conn);
	}
	gradeq_confirms_free(&b->cf);
	free(b);
}

const char *gradeq_broker_peer(const struct gradeq_broker *b)
{
	return b ? b->peer : "";
}

bool gradeq_broker_broken(const struct gradeq_broker *b)
{
	return !b || b->broken;
}

const char *gradeq_work_queue(char *buf, const char *release)
{
	snprintf(buf, GRADEQ_NAME_MAX, "gradeq.grades.%s", release);
	return buf;
}

const char *gradeq_work_key(char *buf, const char *release)
{
	snprintf(buf, GRADEQ_NAME_MAX, "grades.%s", release);
	return buf;
}

const char *gradeq_retry_queue(char *buf, const char *release, int seconds)
{
	snprintf(buf, GRADEQ_NAME_MAX, "gradeq.grades.%s.retry.%ds", release, seconds);
	return buf;
}

const char *gradeq_retry_key(char *buf, const char *release, int seconds)
{
	snprintf(buf, GRADEQ_NAME_MAX, "grades.%s.retry.%ds", release, seconds);
	return buf;
}

const char *gradeq_dead_queue(char *buf, const char *release)
{
	snprintf(buf, GRADEQ_NAME_MAX, "gradeq.grades.%s.dead", release);
	return buf;
}

static void arg_str(amqp_table_entry_t *e, const char *k, const char *v)
{
	e->key = amqp_cstring_bytes(k);
	e->value.kind = AMQP_FIELD_KIND_UTF8;
	e->value.value.bytes = amqp_cstring_bytes(v);
}

static void arg_int(amqp_table_entry_t *e, const char *k, int64_t v)
{
	e->key = amqp_cstring_bytes(k);
	e->value.kind = AMQP_FIELD_KIND_I64;
	e->value.value.i64 = v;
}

/* A passive declare first: it needs no permission, so roles without
 * configure on the exchanges (packaging/rabbitmq/setup creates them) work
 * once they exist. Only a missing exchange is declared for real. */
static int declare_exchange(struct gradeq_broker *b, const char *name, const char *type)
{
	char what[300];
	int rc;

	snprintf(what, sizeof(what), "declaring exchange '%s'", name);
	amqp_exchange_declare(b->conn, CHANNEL, amqp_cstring_bytes(name), amqp_cstring_bytes(type),
			      1, 1, 0, 0, amqp_empty_table);
	rc = reply_error(b, amqp_get_rpc_reply(b->conn), what);
	if (rc != GRADEQ_ERR_NOT_FOUND)
		return rc;
	amqp_exchange_declare(b->conn, CHANNEL, amqp_cstring_bytes(name), amqp_cstring_bytes(type),
			      0, 1, 0, 0, amqp_empty_table);
	return reply_error(b, amqp_get_rpc_reply(b->conn), what);
}

/* The broker's version (server-properties "version", "3.10.8") is at
 * least major.minor. An unknown version counts as recent. */
static bool broker_at_least(struct gradeq_broker *b, int major, int minor)
{
	const amqp_table_t *p = amqp_get_server_properties(b->conn);
	int ma = 0, mi = 0;
	char v[32];

	for (int i = 0; p && i < p->num_entries; i++) {
		const amqp_table_entry_t *e = &p->entries[i];

		if (e->key.len != 7 || memcmp(e->key.bytes, "version", 7) != 0 ||
		    (e->value.kind != AMQP_FIELD_KIND_UTF8 &&
		     e->value.kind != AMQP_FIELD_KIND_BYTES))
			continue;
		snprintf(v, sizeof(v), "%.*s", (int)e->value.value.bytes.len,
			 (const char *)e->value.value.bytes.bytes);
		if (sscanf(v, "%d.%d", &ma, &mi) != 2)
			return true;
		return ma > major || (ma == major && mi >= minor);
	}
	return true;
}

/* Appends the placement arguments of a new quorum queue at a[n]; returns the
 * new count. */
static int placement_args(struct gradeq_broker *b, amqp_table_entry_t *a, int n,
			  const struct gradeq_topology *t)
{
	if (t->quorum_group_size > 0)
		arg_int(&a[n++], "x-quorum-initial-group-size", t->quorum_group_size);
	/* x-queue-leader-locator came with RabbitMQ 3.10; older brokers
	 * refuse unknown x- arguments of quorum queues */
	if (t->leader_locator && *t->leader_locator && broker_at_least(b, 3, 10))
		arg_str(&a[n++], "x-queue-leader-locator", t->leader_locator);
	return n;
}

/* A passive declare first: a queue that exists is left as it is (its
 * arguments are fixed at creation; declaring it again with different ones
 * fails with PRECONDITION_FAILED) and only bound. */
static int declare_queue(struct gradeq_broker *b, const char *name, amqp_table_entry_t *args,
			 int nargs, const char *exchange, const char *key)
{
	amqp_table_t t = {nargs, args};
	char what[300];
	int rc;

	snprintf(what, sizeof(what), "declaring queue '%s'", name);
	amqp_queue_declare(b->conn, CHANNEL, amqp_cstring_bytes(name), 1, 0, 0, 0,
			   amqp_empty_table);
	rc = reply_error(b, amqp_get_rpc_reply(b->conn), what);
	if (rc == GRADEQ_ERR_NOT_FOUND) {
		amqp_queue_declare(b->conn, CHANNEL, amqp_cstring_bytes(name), 0, 1, 0, 0, t);
		rc = reply_error(b, amqp_get_rpc_reply(b->conn), what);
	}
	if (rc)
		return rc;
	amqp_queue_bind(b->conn, CHANNEL, amqp_cstring_bytes(name), amqp_cstring_bytes(exchange),
			amqp_cstring_bytes(key), amqp_empty_table);
	snprintf(what, sizeof(what), "binding queue '%s'", name);
	return reply_error(b, amqp_get_rpc_reply(b->conn), what);
}

/* The bounded queue every event is routed to (limits.h says why). */
static int declare_events_log(struct gradeq_broker *b)
{
	static const char *const keys[] = {"job.#", "run.#", "release.#"};
	amqp_table_entry_t a[3];
	char what[300];
	int rc;

	arg_str(&a[0], "x-queue-type", "classic");
	arg_int(&a[1], "x-max-length", GRADEQ_EVENTS_LOG_MAX_LENGTH);
	arg_int(&a[2], "x-message-ttl", GRADEQ_EVENTS_LOG_TTL_MS);
	rc = declare_queue(b, GRADEQ_EVENTS_LOG_QUEUE, a, 3, GRADEQ_EVENTS_EXCHANGE, keys[0]);
	for (size_t i = 1; !rc && i < sizeof(keys) / sizeof(keys[0]); i++) {
		amqp_queue_bind(b->conn, CHANNEL, amqp_cstring_bytes(GRADEQ_EVENTS_LOG_QUEUE),
				amqp_cstring_bytes(GRADEQ_EVENTS_EXCHANGE),
				amqp_cstring_bytes(keys[i]), amqp_empty_table);
		snprintf(what, sizeof(what), "binding queue '%s'", GRADEQ_EVENTS_LOG_QUEUE);
		rc = reply_error(b, amqp_get_rpc_reply(b->conn), what);
	}
	return rc;
}

int gradeq_broker_declare(struct gradeq_broker *b, const char *release,
			  const struct gradeq_topology *t)
{
	char q[GRADEQ_NAME_MAX], key[GRADEQ_NAME_MAX], rkey[GRADEQ_NAME_MAX];
	amqp_table_entry_t a[8];
	int rc, n;

	if ((rc = declare_exchange(b, GRADEQ_EXCHANGE, "direct")) ||
	    (rc = declare_exchange(b, GRADEQ_DEAD_EXCHANGE, "direct")) ||
	    (rc = declare_exchange(b, GRADEQ_EVENTS_EXCHANGE, "topic")))
		return rc;
	rc = declare_events_log(b);
	if (rc == GRADEQ_ERR_NOT_FOUND && !b->broken) {
		/* a classic queue lives on one node of a cluster: with that node
		 * down the broker refuses to declare it ("home node ... is down").
		 * The log of events is a convenience (events are not mandatory):
		 * the release's own queues, replicated, are what the work needs */
		log_warn("event=events_log_unavailable queue=%s error=\"%s\"",
			 GRADEQ_EVENTS_LOG_QUEUE, gradeq_errmsg(rc));
		rc = 0;
	}
	if (rc)
		return rc;
	gradeq_work_key(key, release);

	/* dead queue: where jobs that failed for good wait, with why */
	arg_str(&a[0], "x-queue-type", "quorum");
	n = placement_args(b, a, 1, t);
	rc = declare_queue(b, gradeq_dead_queue(q, release), a, n, GRADEQ_DEAD_EXCHANGE, key);
	if (rc)
		return rc;

	/* work queue: the broker parks a message past the delivery limit */
	arg_str(&a[0], "x-queue-type", "quorum");
	arg_int(&a[1], "x-delivery-limit", t->delivery_limit);
	arg_str(&a[2], "x-dead-letter-exchange", GRADEQ_DEAD_EXCHANGE);
	arg_str(&a[3], "x-dead-letter-routing-key", key);
	arg_str(&a[4], "x-dead-letter-strategy", "at-least-once");
	arg_str(&a[5], "x-overflow", "reject-publish");
	n = placement_args(b, a, 6, t);
	rc = declare_queue(b, gradeq_work_queue(q, release), a, n, GRADEQ_EXCHANGE, key);
	if (rc)
		return rc;

	/* retry tiers: a queue-level TTL each, expiring back to the work queue */
	for (int i = 0; i < t->nretry_tiers; i++) {
		arg_str(&a[0], "x-queue-type", "quorum");
		arg_int(&a[1], "x-message-ttl", (int64_t)t->retry_tiers[i] * 1000);
		arg_str(&a[2], "x-dead-letter-exchange", GRADEQ_EXCHANGE);
		arg_str(&a[3], "x-dead-letter-routing-key", key);
		arg_str(&a[4], "x-dead-letter-strategy", "at-least-once");
		arg_str(&a[5], "x-overflow", "reject-publish");
		n = placement_args(b, a, 6, t);
		rc = declare_queue(b, gradeq_retry_queue(q, release, t->retry_tiers[i]), a, n,
				   GRADEQ_EXCHANGE,
				   gradeq_retry_key(rkey, release, t->retry_tiers[i]));
		if (rc)
			return rc;
	}
	return 0;
}

int gradeq_broker_queue_info(struct gradeq_broker *b, const char *queue, uint32_t *ready,
			     uint32_t *consumers)
{
	amqp_queue_declare_ok_t *ok;
	char what[300];
	int rc;

	ok = amqp_queue_declare(b->conn, CHANNEL, amqp_cstring_bytes(queue), 1, 0, 0, 0,
				amqp_empty_table);
	snprintf(what, sizeof(what), "queue '%s'", queue);
	rc = reply_error(b, amqp_get_rpc_reply(b->conn), what);
	if (rc == GRADEQ_ERR_NOT_FOUND)
		return gradeq_error(rc, "queue '%s' does not exist", queue);
	if (rc)
		return rc;
	if (ready)
		*ready = ok->message_count;
	if (consumers)
		*consumers = ok->consumer_count;
	return 0;
}

int gradeq_broker_queue_delete(struct gradeq_broker *b, const char *queue, uint32_t *deleted)
{
	amqp_queue_delete_ok_t *ok;
	char what[300];
	int rc;

	/* quorum queues refuse if-unused and if-empty: callers check first */
	ok = amqp_queue_delete(b->conn, CHANNEL, amqp_cstring_bytes(queue), 0, 0);
	snprintf(what, sizeof(what), "deleting queue '%s'", queue);
	rc = reply_error(b, amqp_get_rpc_reply(b->conn), what);
	if (!rc && deleted)
		*deleted = ok ? ok->message_count : 0;
	return rc;
}

int gradeq_broker_confirm_mode(struct gradeq_broker *b, int window)
{
	amqp_confirm_select(b->conn, CHANNEL);
	int rc = reply_error(b, amqp_get_rpc_reply(b->conn), "confirm.select");

	if (rc)
		return rc;
	b->window = window > 0 ? window : 1;
	{
		uint64_t acked = b->cf.acked, nacked = b->cf.nacked;

		gradeq_confirms_free(&b->cf);
		rc = gradeq_confirms_init(&b->cf, b->window);
		if (rc)
			return gradeq_error(rc, "out of memory");
		b->cf.acked = acked; /* counts go on over the connection's life */
		b->cf.nacked = nacked;
	}
	b->confirm = true;
	return 0;
}

/* connection.blocked / unblocked (the capability is advertised): a
 * resource alarm holds this connection's publishes; said in the log, since
 * confirms stop meanwhile. True when the method was one of them. */
static bool blocked_notice(struct gradeq_broker *b, const amqp_method_t *m)
{
	if (m->id == AMQP_CONNECTION_BLOCKED_METHOD) {
		const amqp_connection_blocked_t *x = m->decoded;

		log_warn("event=broker_blocked node=%s reason=\"%.*s\"", b->peer,
			 (int)x->reason.len, (const char *)x->reason.bytes);
		return true;
	}
	if (m->id == AMQP_CONNECTION_UNBLOCKED_METHOD) {
		log_info("event=broker_unblocked node=%s", b->peer);
		return true;
	}
	return false;
}

/* Reads one frame (waiting up to tv, NULL: forever) and settles confirms.
 * GRADEQ_ERR_TIMEOUT when none came. */
static int read_confirm_frame(struct gradeq_broker *b, struct timeval *tv)
{
	amqp_frame_t f;
	int st = amqp_simple_wait_frame_noblock(b->conn, &f, tv);

	if (st != AMQP_STATUS_OK)
		return status_error(b, st, "waiting for publisher confirms");
	if (f.frame_type != AMQP_FRAME_METHOD || blocked_notice(b, &f.payload.method))
		return 0;
	switch (f.payload.method.id) {
	case AMQP_BASIC_ACK_METHOD: {
		amqp_basic_ack_t *m = f.payload.method.decoded;

		/* in any order: a transient event may be confirmed before the
		 * persistent jobs published ahead of it */
		(void)gradeq_confirms_settle(&b->cf, m->delivery_tag, m->multiple, true);
		break;
	}
	case AMQP_BASIC_NACK_METHOD: {
		amqp_basic_nack_t *m = f.payload.method.decoded;

		b->nacked += gradeq_confirms_settle(&b->cf, m->delivery_tag, m->multiple, false);
		break;
	}
	case AMQP_BASIC_RETURN_METHOD: {
		amqp_message_t msg;
		amqp_rpc_reply_t r = amqp_read_message(b->conn, f.channel, &msg, 0);

		if (r.reply_type != AMQP_RESPONSE_NORMAL)
			return reply_error(b, r, "reading returned message");
		amqp_destroy_message(&msg);
		/* the broker acks a returned message too: it is not confirmed */
		b->returned++;
		b->returned_total++;
		break;
	}
	case AMQP_CHANNEL_CLOSE_METHOD:
	case AMQP_CONNECTION_CLOSE_METHOD: {
		amqp_rpc_reply_t r = {0};

		r.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION;
		r.reply = f.payload.method;
		return reply_error(b, r, "publishing");
	}
	default: break;
	}
	return 0;
}

static int settle_errors(struct gradeq_broker *b)
{
	if (b->returned) {
		uint64_t n = b->returned;

		b->returned = 0;
		return gradeq_error(GRADEQ_ERR_UNROUTABLE,
				    "%llu message(s) unroutable: no queue is bound for the routing "
				    "key (is the release's topology declared?)",
				    (unsigned long long)n);
	}
	if (b->nacked) {
		uint64_t n = b->nacked;

		b->nacked = 0;
		return gradeq_error(GRADEQ_ERR_NACKED, "%llu message(s) refused by the broker",
				    (unsigned long long)n);
	}
	return 0;
}

int gradeq_broker_publish(struct gradeq_broker *b, const char *exchange, const char *key,
			  const amqp_basic_properties_t *props, const void *body, size_t len)
{
	amqp_bytes_t bytes = {len, (void *)body};
	struct timeval zero = {0, 0};
	int st, rc;

	st = amqp_basic_publish(b->conn, CHANNEL, amqp_cstring_bytes(exchange),
				amqp_cstring_bytes(key), b->event_publish ? 0 : 1, 0, props, bytes);
	if (st != AMQP_STATUS_OK)
		return status_error(b, st, "publishing");
	if (!b->confirm)
		return 0;
	(void)gradeq_confirms_publish(&b->cf);
	/* settle what already arrived, then block only while the window is full */
	while (amqp_frames_enqueued(b->conn) || amqp_data_in_buffer(b->conn)) {
		rc = read_confirm_frame(b, &zero);
		if (rc == GRADEQ_ERR_TIMEOUT)
			break;
		if (rc)
			return rc;
	}
	while (gradeq_confirms_outstanding(&b->cf) >= (uint64_t)b->window) {
		struct timeval tv = {GRADEQ_RPC_TIMEOUT_S, 0};

		rc = read_confirm_frame(b, &tv);
		if (rc == GRADEQ_ERR_TIMEOUT)
			return gradeq_error(GRADEQ_ERR_TIMEOUT, "no publisher confirm for %d s",
					    GRADEQ_RPC_TIMEOUT_S);
		if (rc)
			return rc;
	}
	return settle_errors(b);
}

int gradeq_broker_wait_confirms(struct gradeq_broker *b, int timeout_ms)
{
	struct timespec start, now;
	int rc;

	if (!b->confirm)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (gradeq_confirms_outstanding(&b->cf) > 0) {
		struct timeval tv = {1, 0};

		rc = read_confirm_frame(b, &tv);
		if (rc && rc != GRADEQ_ERR_TIMEOUT)
			return rc;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (timeout_ms >= 0 &&
		    (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 >
			    timeout_ms)
			return gradeq_error(GRADEQ_ERR_TIMEOUT,
					    "%llu publisher confirm(s) still missing after %d ms",
					    (unsigned long long)gradeq_confirms_outstanding(&b->cf),
					    timeout_ms);
	}
	return settle_errors(b);
}

uint64_t gradeq_broker_confirmed(const struct gradeq_broker *b)
{
	return b->cf.acked > b->returned_total ? b->cf.acked - b->returned_total : 0;
}

uint64_t gradeq_broker_next_tag(const struct gradeq_broker *b)
{
	return b->cf.next_tag;
}

uint64_t gradeq_broker_settled_upto(const struct gradeq_broker *b)
{
	return b->cf.upto;
}

int gradeq_broker_consume(struct gradeq_broker *b, const char *queue, int prefetch, const char *tag)
{
	char what[300];
	int rc;

	amqp_basic_qos(b->conn, CHANNEL, 0, (uint16_t)prefetch, 0);
	rc = reply_error(b, amqp_get_rpc_reply(b->conn), "basic.qos");
	if (rc)
		return rc;
	snprintf(b->consumer_tag, sizeof(b->consumer_tag), "%s", tag);
	amqp_basic_consume(b->conn, CHANNEL, amqp_cstring_bytes(queue),
			   amqp_cstring_bytes(b->consumer_tag), 0, 0, 0, amqp_empty_table);
	snprintf(what, sizeof(what), "consuming from '%s'", queue);
	return reply_error(b, amqp_get_rpc_reply(b->conn), what);
}

int gradeq_broker_cancel(struct gradeq_broker *b)
{
	if (!b->consumer_tag[0])
		return 0;
	amqp_basic_cancel(b->conn, CHANNEL, amqp_cstring_bytes(b->consumer_tag));
	b->consumer_tag[0] = '\0';
	return reply_error(b, amqp_get_rpc_reply(b->conn), "basic.cancel");
}

int gradeq_broker_next(struct gradeq_broker *b, amqp_envelope_t *env, int timeout_ms)
{
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	amqp_rpc_reply_t r;
	amqp_frame_t f;
	int st;

	amqp_maybe_release_buffers(b->conn);
	r = amqp_consume_message(b->conn, env, &tv, 0);
	if (r.reply_type == AMQP_RESPONSE_NORMAL) {
		log_debug("event=delivery tag=%llu exchange=%.*s key=%.*s bytes=%zu redelivered=%d",
			  (unsigned long long)env->delivery_tag, (int)env->exchange.len,
			  (const char *)env->exchange.bytes, (int)env->routing_key.len,
			  (const char *)env->routing_key.bytes, env->message.body.len,
			  env->redelivered ? 1 : 0);
		return 0;
	}
	if (r.reply_type != AMQP_RESPONSE_LIBRARY_EXCEPTION)
		return reply_error(b, r, "consuming");
	if (r.library_error == AMQP_STATUS_TIMEOUT)
		return GRADEQ_ERR_TIMEOUT;
	if (r.library_error != AMQP_STATUS_UNEXPECTED_STATE)
		return reply_error(b, r, "consuming");
	/* a frame that is not a delivery (put back for us): see what the broker
	 * said */
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	st = amqp_simple_wait_frame_noblock(b->conn, &f, &tv);
	if (st == AMQP_STATUS_TIMEOUT)
		return GRADEQ_ERR_TIMEOUT;
	if (st != AMQP_STATUS_OK)
		return status_error(b, st, "consuming");
	if (f.frame_type != AMQP_FRAME_METHOD || blocked_notice(b, &f.payload.method))
		return GRADEQ_ERR_TIMEOUT;
	switch (f.payload.method.id) {
	case AMQP_BASIC_CANCEL_METHOD:
		b->consumer_tag[0] = '\0';
		return gradeq_error(GRADEQ_ERR_NOT_FOUND, "the broker cancelled the consumer "
							  "(queue deleted?)");
	case AMQP_CHANNEL_CLOSE_METHOD:
	case AMQP_CONNECTION_CLOSE_METHOD:
		r.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION;
		r.reply = f.payload.method;
		return reply_error(b, r, "consuming");
	default: return GRADEQ_ERR_TIMEOUT;
	}
}

int gradeq_broker_ack(struct gradeq_broker *b, uint64_t tag)
{
	return status_error(b, amqp_basic_ack(b->conn, CHANNEL, tag, 0), "basic.ack");
}

int gradeq_broker_ack_upto(struct gradeq_broker *b, uint64_t tag)
{
	return status_error(b, amqp_basic_ack(b->conn, CHANNEL, tag, 1), "basic.ack");
}

int gradeq_broker_get(struct gradeq_broker *b, const char *queue, amqp_envelope_t *env)
{
	amqp_rpc_reply_t r;
	amqp_basic_get_ok_t *ok;
	char what[300];

	memset(env, 0, sizeof(*env));
	amqp_maybe_release_buffers(b->conn);
	r = amqp_basic_get(b->conn, CHANNEL, amqp_cstring_bytes(queue), 0);
	snprintf(what, sizeof(what), "basic.get from '%s'", queue);
	if (r.reply_type != AMQP_RESPONSE_NORMAL)
		return reply_error(b, r, what);
	if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD)
		return GRADEQ_ERR_NOT_FOUND;
	ok = r.reply.decoded;
	env->channel = CHANNEL;
	env->delivery_tag = ok->delivery_tag;
	env->redelivered = ok->redelivered;
	env->exchange = amqp_bytes_malloc_dup(ok->exchange);
	env->routing_key = amqp_bytes_malloc_dup(ok->routing_key);
	r = amqp_read_message(b->conn, CHANNEL, &env->message, 0);
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		amqp_bytes_free(env->exchange);
		amqp_bytes_free(env->routing_key);
		memset(env, 0, sizeof(*env));
		return reply_error(b, r, what);
	}
	return 0;
}

static const amqp_field_value_t *header_find(const amqp_table_t *h, const char *key)
{
	size_t klen = strlen(key);

	for (int i = 0; h && i < h->num_entries; i++)
		if (h->entries[i].key.len == klen &&
		    memcmp(h->entries[i].key.bytes, key, klen) == 0)
			return &h->entries[i].value;
	return NULL;
}

const char *gradeq_header_str(const amqp_table_t *h, const char *key, char *buf, size_t len)
{
	const amqp_field_value_t *v = header_find(h, key);

	if (!v || (v->kind != AMQP_FIELD_KIND_UTF8 && v->kind != AMQP_FIELD_KIND_BYTES) || !len)
		return NULL;
	snprintf(buf, len, "%.*s", (int)v->value.bytes.len, (char *)v->value.bytes.bytes);
	return buf;
}

int64_t gradeq_header_int(const amqp_table_t *h, const char *key, int64_t def)
{
	const amqp_field_value_t *v = header_find(h, key);

	if (!v)
		return def;
	switch (v->kind) {
	case AMQP_FIELD_KIND_I8: return v->value.i8;
	case AMQP_FIELD_KIND_U8: return v->value.u8;
	case AMQP_FIELD_KIND_I16: return v->value.i16;
	case AMQP_FIELD_KIND_U16: return v->value.u16;
	case AMQP_FIELD_KIND_I32: return v->value.i32;
	case AMQP_FIELD_KIND_U32: return v->value.u32;
	case AMQP_FIELD_KIND_I64: return v->value.i64;
	case AMQP_FIELD_KIND_U64: return (int64_t)v->value.u64;
	case AMQP_FIELD_KIND_TIMESTAMP: return (int64_t)v->value.u64;
	default: return def;
	}
}

void gradeq_headers_init(struct gradeq_headers *h)
{
	h->n = 0;
	h->used = 0;
	h->overflow[0] = '\0';
}

/* Remembers the first header that did not fit. */
static void headers_overflow(struct gradeq_headers *h, const void *key, size_t klen)
{
	if (!h->overflow[0])
		snprintf(h->overflow, sizeof(h->overflow), "%.*s", (int)klen, (const char *)key);
}

/* A copy of s in h's string space; NULL when it does not fit. */
static char *headers_dup(struct gradeq_headers *h, const char *s)
{
	size_t n = strlen(s) + 1;
	char *p;

	if (n > sizeof(h->strings) - h->used)
		return NULL;
	p = h->strings + h->used;
	memcpy(p, s, n);
	h->used += n;
	return p;
}

static bool headers_full(const struct gradeq_headers *h)
{
	return h->n >= (int)(sizeof(h->entries) / sizeof(h->entries[0]));
}

static amqp_table_entry_t *headers_slot(struct gradeq_headers *h, const char *key)
{
	size_t klen = strlen(key);
	char *k;

	for (int i = 0; i < h->n; i++)
		if (h->entries[i].key.len == klen &&
		    memcmp(h->entries[i].key.bytes, key, klen) == 0)
			return &h->entries[i];
	if (headers_full(h) || !(k = headers_dup(h, key))) {
		headers_overflow(h, key, klen);
		return NULL;
	}
	h->entries[h->n].key = amqp_cstring_bytes(k);
	return &h->entries[h->n++];
}

void gradeq_headers_copy(struct gradeq_headers *h, const amqp_table_t *t, const char *const *skip)
{
	for (int i = 0; t && i < t->num_entries; i++) {
		bool skipped = false;

		for (const char *const *s = skip; s && *s; s++)
			if (t->entries[i].key.len == strlen(*s) &&
			    memcmp(t->entries[i].key.bytes, *s, strlen(*s)) == 0)
				skipped = true;
		if (skipped)
			continue;
		if (headers_full(h)) {
			headers_overflow(h, t->entries[i].key.bytes, t->entries[i].key.len);
			continue;
		}
		h->entries[h->n++] = t->entries[i];
	}
}

void gradeq_headers_set_str(struct gradeq_headers *h, const char *key, const char *val)
{
	amqp_table_entry_t *e = headers_slot(h, key);
	char *v;

	if (!e)
		return;
	v = headers_dup(h, val ? val : "");
	if (!v) {
		/* no half-set entry: an empty one would pass for the value */
		headers_overflow(h, key, strlen(key));
		e->value.kind = AMQP_FIELD_KIND_VOID;
		return;
	}
	e->value.kind = AMQP_FIELD_KIND_UTF8;
	e->value.value.bytes = amqp_cstring_bytes(v);
}

void gradeq_headers_set_int(struct gradeq_headers *h, const char *key, int64_t val)
{
	amqp_table_entry_t *e = headers_slot(h, key);

	if (!e)
		return;
	e->value.kind = AMQP_FIELD_KIND_I64;
	e->value.value.i64 = val;
}

int gradeq_headers_finish(struct gradeq_headers *h, amqp_table_t *out)
{
	out->num_entries = h->n;
	out->entries = h->entries;
	if (h->overflow[0])
		return gradeq_error(GRADEQ_ERR_INVALID,
				    "message header '%s' does not fit (at most %zu headers and %zu "
				    "bytes of their strings)",
				    h->overflow, sizeof(h->entries) / sizeof(h->entries[0]),
				    sizeof(h->strings));
	return 0;
}

int gradeq_broker_publish_event(struct gradeq_broker *b, const char *key,
				const amqp_basic_properties_t *props, const void *body, size_t len)
{
	int rc;

	b->event_publish = true;
	rc = gradeq_broker_publish(b, GRADEQ_EVENTS_EXCHANGE, key, props, body, len);
	b->event_publish = false;
	return rc;
}

int gradeq_broker_follow(struct gradeq_broker *b, const char *name, const char *exchange,
			 const char *const *keys, size_t nkeys, const char *tag)
{
	amqp_queue_declare_ok_t *ok;
	amqp_bytes_t queue;
	char what[GRADEQ_NAME_MAX + 32];
	int rc;

	ok = amqp_queue_declare(b->conn, CHANNEL,
				name ? amqp_cstring_bytes(name) : amqp_empty_bytes, 0, 0, 1, 1,
				amqp_empty_table);
	snprintf(what, sizeof(what), "declaring queue '%s'", name ? name : "amq.gen-*");
	rc = reply_error(b, amqp_get_rpc_reply(b->conn), what);
	if (rc)
		return rc;
	queue = amqp_bytes_malloc_dup(ok->queue);
	if (!queue.bytes)
		return gradeq_error(GRADEQ_ERR_NOMEM, "out of memory");
	snprintf(what, sizeof(what), "binding queue '%.*s'", (int)queue.len,
		 (const char *)queue.bytes);
	for (size_t i = 0; !rc && i < nkeys; i++) {
		amqp_queue_bind(b->conn, CHANNEL, queue, amqp_cstring_bytes(exchange),
				amqp_cstring_bytes(keys[i]), amqp_empty_table);
		rc = reply_error(b, amqp_get_rpc_reply(b->conn), what);
	}
	if (!rc) {
		amqp_basic_consume(b->conn, CHANNEL, queue,
				   tag ? amqp_cstring_bytes(tag) : amqp_empty_bytes, 0, 1, 1,
				   amqp_empty_table);
		snprintf(what, sizeof(what), "consuming from '%.*s'", (int)queue.len,
			 (const char *)queue.bytes);
		rc = reply_error(b, amqp_get_rpc_reply(b->conn), what);
	}
	amqp_bytes_free(queue);
	return rc;
}

void gradeq_broker_heartbeat(struct gradeq_broker *b)
{
	amqp_frame_t f;

	if (!b || b->broken || amqp_get_heartbeat(b->conn) <= 0)
		return;
	memset(&f, 0, sizeof(f));
	f.frame_type = AMQP_FRAME_HEARTBEAT;
	f.channel = 0;
	(void)amqp_send_frame(b->conn, &f);
}

int gradeq_broker_service(struct gradeq_broker *b)
{
	struct timeval zero = {0, 0};
	int rc = 0;

	if (!b || b->broken)
		return gradeq_error(GRADEQ_ERR_BROKER, "the connection to the broker is gone");
	/* what the broker sent meanwhile: confirms, returns, its heartbeats
	 * (reading them is what tells rabbitmq-c that the peer is alive) */
	for (int i = 0; i < GRADEQ_SERVICE_MAX_FRAMES; i++) {
		rc = read_confirm_frame(b, &zero);
		if (rc == GRADEQ_ERR_TIMEOUT) {
			rc = 0;
			break;
		}
		if (rc)
			break;
	}
	gradeq_broker_heartbeat(b);
	if (!rc && b->broken)
		rc = gradeq_error(GRADEQ_ERR_BROKER, "the connection to the broker is gone");
	return rc;
}
