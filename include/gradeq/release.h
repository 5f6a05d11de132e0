/* Releases: the registry of which release publishers use and which are
 * draining or retired (gradeq_releases), and the exact list of a release's
 * queues from its topology (DESIGN §3) -- known by exact name, never by
 * prefix. The SQL lives in src/store/releases.c. */
#ifndef GRADEQ_RELEASE_H
#define GRADEQ_RELEASE_H

#include <stdbool.h>
#include <stddef.h>

#include "gradeq/broker.h"
#include "gradeq/config.h"
#include "gradeq/err.h"
#include "gradeq/mgmt.h"
#include "gradeq/parse.h"
#include "gradeq/registry.h"
#include "gradeq/store.h"

/* Reads a release's state; GRADEQ_ERR_NOT_FOUND if unknown. */
int gradeq_release_get(struct gradeq_store *st, const char *name,
		       enum gradeq_release_state *state) GRADEQ_MUST_CHECK;
/* The same as text into state[16], for callers that print it. */
int gradeq_release_state(struct gradeq_store *st, const char *name, char *state) GRADEQ_MUST_CHECK;

/* Resolves the release to publish to: an explicit name is recorded as
 * 'active' when new and refused when draining or retired; NULL means the
 * promoted one (error with how to promote when none). Writes the name
 * into out. */
int gradeq_release_resolve(struct gradeq_store *st, const char *explicit_name, char *out,
			   size_t len) GRADEQ_MUST_CHECK;
/* The same, recording nothing (a dry run): a name never seen is fine, as
 * it would be recorded as active. */
int gradeq_release_peek(struct gradeq_store *st, const char *explicit_name, char *out,
			size_t len) GRADEQ_MUST_CHECK;

/* Every release, oldest first, into a malloc'd array the caller frees;
 * with live_only, the retired ones are left out. */
int gradeq_release_list(struct gradeq_store *st, bool live_only, struct gradeq_release_info **out,
			size_t *n) GRADEQ_MUST_CHECK;

/* Makes name the promoted release (recording it when new) and the
 * previously promoted one draining; GRADEQ_ERR_STATE when name is retired.
 * *drained gets the comma-separated names now draining (malloc'd, "" for
 * none; the caller frees it). */
int gradeq_release_promote(struct gradeq_store *st, const char *name,
			   char **drained) GRADEQ_MUST_CHECK;
/* Marks an active release draining (a no-op in any other state). */
int gradeq_release_mark_draining(struct gradeq_store *st, const char *name) GRADEQ_MUST_CHECK;
/* Marks a release retired. */
int gradeq_release_mark_retired(struct gradeq_store *st, const char *name) GRADEQ_MUST_CHECK;

enum gradeq_queue_kind {
	GRADEQ_QUEUE_WORK,
	GRADEQ_QUEUE_RETRY,
	GRADEQ_QUEUE_DEAD,
};

struct gradeq_release_queue {
	enum gradeq_queue_kind kind;
	int seconds; /* a retry tier's delay; 0 for the others */
	char name[GRADEQ_NAME_MAX];
};

/* The largest number of queues a release can have: work, dead and the
 * retry tiers a configuration allows. */
#define GRADEQ_RELEASE_QUEUES_MAX (GRADEQ_MAX_RETRY_TIERS + 2)

/* Writes the exact names of release's durable queues into out (at most
 * GRADEQ_RELEASE_QUEUES_MAX): the work queue first, then each retry tier
 * in the topology's order, then the dead queue; returns how many. The
 * per-process events queues (exclusive, deleted with their connection)
 * are not in it: nothing outlives them to drain or retire. */
size_t gradeq_release_queues(const char *release, const struct gradeq_topology *t,
			     struct gradeq_release_queue *out);

/* Queue figures of one release: ready messages and consumers from passive
 * declares (exact, now), unacknowledged ones from the management API when
 * m is given (its last statistics sample), else -1. */
struct gradeq_release_depths {
	bool have; /* the work and dead queues could be read */
	uint32_t work_ready, consumers, dead_ready;
	int64_t work_unacked, dead_unacked;
	int nretry;
	uint32_t retry_ready[GRADEQ_MAX_RETRY_TIERS];
};

/* Reads release's queue figures; out->have is false when the broker
 * could not answer for the work or dead queue. A retry tier that cannot
 * be read counts 0. Never fails: b may be NULL (nothing known). */
void gradeq_release_depths(struct gradeq_broker *b, const struct gradeq_mgmt *m,
			   const char *release, const struct gradeq_topology *t,
			   struct gradeq_release_depths *out);

/* GRADEQ_ERR_STATE (with the queue named) unless release's work queue and
 * retry tiers are all empty with no consumers; missing queues count as
 * empty. *dead_ready gets what waits in its dead queue. */
int gradeq_release_check_drained(struct gradeq_broker *b, const char *release,
				 const struct gradeq_topology *t,
				 uint32_t *dead_ready) GRADEQ_MUST_CHECK;

/* Moves every message of queue 'from' (on src) to exchange/key (on dst, in
 * confirm mode), each confirmed before the original is acked. *moved
 * counts those moved, also on error. */
int gradeq_release_move(struct gradeq_broker *src, struct gradeq_broker *dst, const char *from,
			const char *exchange, const char *key, long *moved) GRADEQ_MUST_CHECK;

/* Moves what waits in release's retry tiers to to_release's work queue;
 * *moved counts the messages. */
int gradeq_release_forward_retries(struct gradeq_broker *src, struct gradeq_broker *dst,
				   const char *release, const char *to_release,
				   const struct gradeq_topology *t, long *moved) GRADEQ_MUST_CHECK;

/* Deletes every queue of release (dead queue first); a message that
 * arrived since the last check is logged as lost. Missing queues are
 * fine. */
int gradeq_release_delete_queues(struct gradeq_broker *b, const char *release,
				 const struct gradeq_topology *t) GRADEQ_MUST_CHECK;

#endif
