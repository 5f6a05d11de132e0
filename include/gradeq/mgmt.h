/* The RabbitMQ management HTTP API, read for what AMQP does not report:
 * each queue's unacknowledged messages. One GET of a vhost's queues
 * (libcurl), parsed with jansson; lookups by name afterwards. Only the
 * operator's status commands use it, never the daemons. */
#ifndef GRADEQ_MGMT_H
#define GRADEQ_MGMT_H

#include <stddef.h>
#include <stdint.h>

#include "gradeq/err.h"

struct gradeq_mgmt;

/* Parses the body of GET /api/queues/VHOST (a JSON array of objects with
 * "name" and, once the broker has statistics for the queue,
 * "messages_unacknowledged"; "leader", "members" and "node" tell where the
 * queue lives). GRADEQ_ERR_DECODE naming what is wrong when
 * it is not such an array; entries without a string name are skipped. */
int gradeq_mgmt_parse(const char *json, size_t len, struct gradeq_mgmt **out) GRADEQ_MUST_CHECK;

/* Fetches the queues of amqp_url's vhost from the management API at
 * base_url (http:// or https://; with https the server's certificate must
 * chain to cacert, NULL: the system's CAs), logging in as amqp_url's user
 * and password. Gives up after timeout_ms. GRADEQ_ERR_BROKER when the API
 * cannot be reached or answers other than 200, GRADEQ_ERR_ACCESS on 401 or
 * 403, GRADEQ_ERR_DECODE on a body that is not the expected JSON. */
int gradeq_mgmt_fetch(const char *base_url, const char *amqp_url, const char *cacert,
		      int timeout_ms, struct gradeq_mgmt **out) GRADEQ_MUST_CHECK;

/* The connections to amqp_url's vhost (GET /api/vhosts/VHOST/connections):
 * the JSON array as the API gives it, malloc'd into *out. Errors as
 * gradeq_mgmt_fetch(). */
int gradeq_mgmt_connections(const char *base_url, const char *amqp_url, const char *cacert,
			    int timeout_ms, char **out) GRADEQ_MUST_CHECK;

/* Unacknowledged messages of 'queue', or -1 when the API did not list it
 * or has no figure for it yet. m may be NULL (then -1). */
int64_t gradeq_mgmt_unacked(const struct gradeq_mgmt *m, const char *queue);

/* Where 'queue' lives on a cluster: *leader gets its leader node (a quorum
 * queue's "leader", a classic queue's "node"; NULL when unknown) and
 * members[0..] its member nodes (a quorum queue's "members", a classic
 * queue's node), at most max of them; returns how many, or -1 when the API
 * did not list the queue's placement. The strings belong to m. */
int gradeq_mgmt_placement(const struct gradeq_mgmt *m, const char *queue, const char **leader,
			  const char **members, size_t max);

/* The cluster's running nodes (GET /api/nodes): names into a malloc'd
 * array (*n of them) that gradeq_mgmt_free_nodes frees. Errors as
 * gradeq_mgmt_fetch. _parse_nodes reads such a body (a JSON array of
 * objects with "name" and "running"; the others are left out). */
int gradeq_mgmt_fetch_nodes(const char *base_url, const char *amqp_url, const char *cacert,
			    int timeout_ms, char ***names, size_t *n) GRADEQ_MUST_CHECK;
int gradeq_mgmt_parse_nodes(const char *json, size_t len, char ***names,
			    size_t *n) GRADEQ_MUST_CHECK;
void gradeq_mgmt_free_nodes(char **names, size_t n);

/* Queues listed. */
size_t gradeq_mgmt_count(const struct gradeq_mgmt *m);

void gradeq_mgmt_free(struct gradeq_mgmt *m);

#endif
