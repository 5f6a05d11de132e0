/* A consumer's side of the throttle: its share of the release's budget
 * (read from the registry, at a throttle.<R>.* event at once and every few
 * seconds as a fallback; the release's consumer count from the broker),
 * the pacing of its jobs, the database health samples and the AIMD
 * back-off, its log lines (event=throttle_applied, event=throttled) and
 * its report for status. The consume loop calls the hooks below; the
 * arithmetic is the pure core in throttle.h. */
#ifndef GRADEQ_THROTTLE_AGENT_H
#define GRADEQ_THROTTLE_AGENT_H

#include <stdbool.h>
#include <stddef.h>

#include "gradeq/broker.h"
#include "gradeq/config.h"
#include "gradeq/store.h"
#include "gradeq/worker.h"

struct gradeq_throttle_agent;

/* A new agent for a consumer of release; cfg (kept: a reload changes it in
 * place) gives the thresholds. NULL when out of memory. */
struct gradeq_throttle_agent *gradeq_throttle_agent_new(const char *release, const char *consumer,
							const struct gradeq_config *cfg);
void gradeq_throttle_agent_free(struct gradeq_throttle_agent *a);

/* A throttle.<release>.* event arrived: the next tick reads the registry
 * (the event is only a hint: the registry says what the budget is). */
void gradeq_throttle_agent_hint(struct gradeq_throttle_agent *a);

/* Does what is due: reads the budget (at a hint, every few seconds, every
 * second while waiting), counts the release's consumers on b's work queue,
 * samples the database's health and steps the back-off, reports to the
 * database. st and b may be NULL or broken: what needs them waits. Never
 * fails: errors are logged once and retried later. */
void gradeq_throttle_agent_tick(struct gradeq_throttle_agent *a, struct gradeq_store *st,
				struct gradeq_broker *b, bool waiting);

/* Seconds to wait before the next job may start (0: at once). */
double gradeq_throttle_agent_wait(const struct gradeq_throttle_agent *a);

/* The learners a second it paces with now, 0: unlimited. */
double gradeq_throttle_agent_rate(const struct gradeq_throttle_agent *a);

/* A job of learners starts now. */
void gradeq_throttle_agent_take(struct gradeq_throttle_agent *a, size_t learners);

/* A job finished: its latencies feed the baselines (and may show
 * distress), its learners the achieved rate. */
void gradeq_throttle_agent_done(struct gradeq_throttle_agent *a, const struct gradeq_job_stats *s,
				size_t learners);

#endif
