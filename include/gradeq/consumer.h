/* The consume loop of gradeq-consumer, for its main() to run: a consumer's
 * settings, connections and counters, and the program's hooks (its signal
 * flags and what a SIGHUP does). */
#ifndef GRADEQ_CONSUMER_H
#define GRADEQ_CONSUMER_H

#include <signal.h>
#include <stdbool.h>
#include <time.h>

#include "gradeq/cli.h"
#include "gradeq/err.h"
#include "gradeq/store.h"
#include "gradeq/worker.h"

struct gradeq_consumer {
	struct gradeq_cli cli;
	char release[80];
	int prefetch;
	bool drain;
	char host[128];
	char consumer_id[200];
	struct gradeq_store *st;
	struct gradeq_broker *in;  /* consuming */
	struct gradeq_broker *out; /* republishing to retry and dead, confirmed */
	struct gradeq_worker *w;
	long done, failed;
	bool draining;                        /* the release was superseded: drain, then exit */
	time_t registry_checked;              /* last look at the release registry */
	struct timespec db_lost, broker_lost; /* start of an outage; 0 when none */
	struct timespec kept_alive;           /* last heartbeat sent on both connections */
	struct gradeq_beat *beat;             /* heartbeats while in the database (consumer.c) */
	struct gradeq_throttle_agent *thr;    /* budget, pacing, back-off (throttle_agent.c) */
	/* Test hook: a job of this course aborts the process, the way a poison
	 * message crashes a consumer (GRADEQ_TEST_ABORT_COURSE; NULL when unset). */
	const char *abort_course;
	/* Test hook: the process aborts after a group's commit, before its ack,
	 * the way a consumer killed there does (GRADEQ_TEST_ABORT_AFTER_COMMIT). */
	bool abort_after_commit;
	/* the program's: set by its signal handlers, read by the loop */
	volatile sig_atomic_t *stop_requested, *reload_requested;
	/* called by the loop when *reload_requested is set (it clears it) */
	void (*reload)(struct gradeq_consumer *c);
};

/* (Re)connects to the database with capped, jittered backoff until it
 * succeeds, a permanent error, or a stop request (GRADEQ_ERR_INTERRUPTED). */
int gradeq_consumer_connect_db(struct gradeq_consumer *c) GRADEQ_MUST_CHECK;

/* Consumes c->release until a stop request (0), a drain that is complete
 * (0), or a permanent error. */
int gradeq_consumer_run(struct gradeq_consumer *c) GRADEQ_MUST_CHECK;

/* Closes the broker connections (the store stays). */
void gradeq_consumer_disconnect(struct gradeq_consumer *c);

#endif
