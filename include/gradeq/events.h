/* Pushed state changes on the gradeq.events topic exchange: routing keys
 * run.<id>.<state>, job.<state> and output.<id>.<state>, headers gradeq-run and gradeq-course,
 * a small JSON body. Best effort: an event nobody listens to is dropped. */
#ifndef GRADEQ_EVENTS_H
#define GRADEQ_EVENTS_H

#include <signal.h>
#include <stdbool.h>

#include "gradeq/broker.h"
#include "gradeq/err.h"

/* Publishes run.<run_id>.<state>. */
int gradeq_event_run(struct gradeq_broker *b, const char *run_id, const char *release,
		     const char *state) GRADEQ_MUST_CHECK;

/* The JSON bodies of the events (compact, every string escaped by jansson,
 * text that is not UTF-8 with '?' for its other bytes), in a new string the
 * caller frees; NULL when out of memory. release and detail may be NULL. */
char *gradeq_event_run_body(const char *run_id, const char *release, const char *state,
			    const char *at);
char *gradeq_event_job_body(const char *job_id, const char *run_id, const char *course,
			    const char *state, const char *detail, const char *at);
char *gradeq_event_release_body(const char *release, const char *state, const char *at);

/* Publishes job.<state> for a job of a run and course; detail may be NULL. */
int gradeq_event_job(struct gradeq_broker *b, const char *job_id, const char *run_id,
		     const char *course, const char *state, const char *detail) GRADEQ_MUST_CHECK;

/* Publishes output.<output_id>.<state> (ready when sealed, failed) for a
 * job output (gradeq-report): the output, its run and course, never a
 * link. */
int gradeq_event_output(struct gradeq_broker *b, const char *output_id, const char *run_id,
			const char *course, const char *state) GRADEQ_MUST_CHECK;

/* Follows the events (of one run when run_id is set) through an exclusive,
 * auto-delete queue and prints one line each (or the JSON body) to stdout
 * until *stop is set or max events were printed (max <= 0: no limit).
 * Returns 0 or the broker error. */
int gradeq_events_follow(struct gradeq_broker *b, const char *run_id, bool json, long max,
			 volatile sig_atomic_t *stop) GRADEQ_MUST_CHECK;

/* Publishes release.<name>.<state> (promoted, draining, retired). */
int gradeq_event_release(struct gradeq_broker *b, const char *release,
			 const char *state) GRADEQ_MUST_CHECK;

/* Publishes throttle.<release>.<state> (set, off) with the budget in the
 * body (learners_per_s, null when off): a hint to the release's consumers
 * to read the budget from the registry now. */
int gradeq_event_throttle(struct gradeq_broker *b, const char *release, const char *state,
			  double learners_per_s) GRADEQ_MUST_CHECK;
char *gradeq_event_throttle_body(const char *release, const char *state, double learners_per_s,
				 const char *at);

/* Subscribes channel 1 of b to release.<release>.* and
 * throttle.<release>.* through an exclusive, auto-delete queue, without
 * acks: its deliveries arrive among the others of gradeq_broker_next, from
 * the exchange GRADEQ_EVENTS_EXCHANGE. */
int gradeq_events_watch_release(struct gradeq_broker *b, const char *release) GRADEQ_MUST_CHECK;

#endif
