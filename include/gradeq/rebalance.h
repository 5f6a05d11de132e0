/* Placement of a release's quorum queues on a RabbitMQ cluster, for the
 * operator (gradeq-admin release list / release rebalance): where each
 * queue lives (from the management API), and growing the queues onto
 * nodes that joined after the release was promoted, then spreading their
 * leaders. RabbitMQ 3.10's management API can neither add a member nor
 * move a leader of chosen queues: that goes through the rabbitmq-queues
 * command (add_member, rebalance quorum), run here without a shell. */
#ifndef GRADEQ_REBALANCE_H
#define GRADEQ_REBALANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "gradeq/cli.h"

#define GRADEQ_REBALANCE_MEMBERS_MAX 16

/* One quorum queue as the management API places it. */
struct gradeq_rebalance_queue {
	const char *name;
	const char *members[GRADEQ_REBALANCE_MEMBERS_MAX];
	int nmembers;
};

struct gradeq_rebalance_add {
	const char *queue, *node;
};

/* Pure: the members to add so that each queue has min(want, nrunning)
 * members. Only running nodes are added, those holding the fewest of
 * these queues first (ties in running's order); a member that is down
 * still counts (it comes back). Writes at most max additions to out and
 * returns how many there are in all. */
size_t gradeq_rebalance_plan(int want, const char *const *running, size_t nrunning,
			     const struct gradeq_rebalance_queue *q, size_t nq,
			     struct gradeq_rebalance_add *out, size_t max);

/* Prints where each queue of release lives (members and leader; nothing
 * for queues the listing does not place): table lines, or with json a
 * ,"queues":[...] member to append to an object. */
void gradeq_rebalance_print_placement(const struct gradeq_mgmt *m, const char *release,
				      const struct gradeq_topology *t, bool json, FILE *out);

/* gradeq-admin release rebalance R: grows R's quorum queues to
 * quorum_group_size members on the running nodes (rabbitmq-queues
 * add_member), then rebalances the leaders of R's queues over the cluster
 * (rabbitmq-queues rebalance quorum, restricted to R's queues by name).
 * The command is $GRADEQ_RABBITMQ_QUEUES, else rabbitmq-queues from PATH;
 * it must reach the cluster (a broker host's Erlang cookie). With dry_run,
 * prints the commands instead of running them. Needs management_url. */
int gradeq_release_do_rebalance(struct gradeq_cli *cli, struct gradeq_store *st,
				const char *release, bool dry_run, bool json,
				FILE *out) GRADEQ_MUST_CHECK;

#endif
