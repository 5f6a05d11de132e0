/* Groups of small jobs (consumer.c, worker.c): a consumer writes the small
 * jobs already in hand in one transaction, a savepoint each, commits once
 * and then acks them together. What joins a group, the order its jobs are
 * written in and how its deliveries are acked: pure. */
#ifndef GRADEQ_GROUP_H
#define GRADEQ_GROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gradeq_group_limits {
	int max_jobs;        /* group_jobs: 1 = no groups */
	size_t max_learners; /* group_learners: of a small job */
	size_t max_total;    /* of the group's jobs together */
};

/* Whether a job of nusers learners may join a group of njobs jobs holding
 * 'held' learners (njobs 0: whether it may start one). Only small jobs
 * group, never a redelivered one (a job that may have crashed a consumer
 * goes alone), and a group's learners stay within max_total. */
bool gradeq_group_admits(const struct gradeq_group_limits *l, int njobs, size_t held, size_t nusers,
			 bool redelivered);

/* The learners a group may hold (max_total) when its consumer paces at
 * rate learners a second (0: unlimited): those of paced_s seconds at that
 * rate, at most max (and 0 when the rate is below one learner in paced_s:
 * every job then goes alone). The pacing waits for a group's learners
 * at once: a larger group would be a burst above the budget. */
size_t gradeq_group_paced_total(double rate, double paced_s, size_t max);

/* order[] gets the indices 0..n-1 sorted by keys (strcmp), equal keys in
 * their order. A group writes its jobs in the order of their runs, so
 * that two groups take the run rows' locks in one order and never
 * deadlock. */
void gradeq_group_order(const char *const *keys, int *order, int n);

/* What became of a delivery of a group, for its ack. */
enum gradeq_group_settle {
	GRADEQ_SETTLE_ACK,   /* committed: to be acked now */
	GRADEQ_SETTLE_ACKED, /* acked already (its failure was parked, then acked) */
	GRADEQ_SETTLE_HELD,  /* left unacked: the broker delivers it again */
};

/* The delivery tag up to which one basic.ack with multiple=true acks the
 * deliveries to ack now and nothing else, or 0 when they must be acked one
 * by one (a delivery below the last of them is left unacked) or there is
 * nothing to ack. tags[] ascend, and every delivery of the channel before
 * the group's first is settled. */
uint64_t gradeq_group_ack_upto(const uint64_t *tags, const enum gradeq_group_settle *settle, int n);

#endif
