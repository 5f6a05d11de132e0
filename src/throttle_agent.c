/* The consumer's side of the throttle (see include/gradeq/throttle_agent.h):
 * registry, broker and database samples on a schedule, the pure core of
 * throttle.c for the arithmetic, one log line a change. */
#include "gradeq/throttle_agent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gradeq/limits.h"
#include "gradeq/log.h"
#include "gradeq/throttle.h"
#include "store/throttle.h"

struct gradeq_throttle_agent {
	char release[GRADEQ_NAME_MAX], consumer[200];
	const struct gradeq_config *cfg;
	double budget;      /* the release's, 0: none */
	unsigned consumers; /* the release's, this one included */
	double rate;        /* paced with, 0: unlimited */
	struct gradeq_pace pace;
	struct gradeq_aimd aimd;
	double recover_to; /* no budget: the rate before the first decrease */
	struct gradeq_latency latency;
	enum gradeq_distress pending; /* distress seen since the last step */
	enum gradeq_distress reason;  /* of the last decrease, while backing off */
	double budget_at, count_at, health_at, report_at; /* last done (monotonic s) */
	bool hint, budget_known, dirty, budget_failed, health_failed, report_failed;
	double learners; /* graded since the last step */
	double achieved; /* learners a second, moving mean */
	/* learners a second while grading (idle time left out), moving mean
	 * of the jobs that showed no distress: where a decrease starts when
	 * there is no budget, so that an idle consumer does not fall to the
	 * floor at its first distress */
	double capacity;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct gradeq_throttle_agent *gradeq_throttle_agent_new(const char *release, const char *consumer,
							const struct gradeq_config *cfg)
{
	struct gradeq_throttle_agent *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	snprintf(a->release, sizeof(a->release), "%s", release);
	snprintf(a->consumer, sizeof(a->consumer), "%s", consumer);
	a->cfg = cfg;
	a->consumers = 1;
	gradeq_pace_init(&a->pace, 0);
	a->hint = true; /* read the budget before the first job */
	a->health_at = a->report_at = now_s();
	return a;
}

void gradeq_throttle_agent_free(struct gradeq_throttle_agent *a)
{
	free(a);
}

void gradeq_throttle_agent_hint(struct gradeq_throttle_agent *a)
{
	if (a)
		a->hint = true;
}

static const char *rate_text(char *buf, size_t len, double r)
{
	if (r <= 0)
		snprintf(buf, len, "unlimited");
	else
		snprintf(buf, len, "%.1f", r);
	return buf;
}

/* Paces with min(share, cap) from now on; says whether that changed. */
static bool apply_rate(struct gradeq_throttle_agent *a, double now)
{
	double rate =
		gradeq_throttle_rate(gradeq_throttle_share(a->budget, a->consumers), a->aimd.cap);

	if (rate == a->rate)
		return false;
	a->rate = rate;
	gradeq_pace_set_rate(&a->pace, rate, now);
	a->dirty = true;
	return true;
}

static void read_budget(struct gradeq_throttle_agent *a, struct gradeq_store *st, double now)
{
	const char *source = a->hint ? "event" : "registry";
	double budget = 0;
	char b[32], r[32];
	int rc;

	if (!st || gradeq_store_broken(st))
		return;
	rc = gradeq_store_throttle_get(st, a->release, &budget);
	a->budget_at = now;
	a->hint = false;
	if (rc && !a->budget_failed) /* once, until a read works again */
		log_warn("event=throttle_read_failed release=%s error=\"%s\"", a->release,
			 gradeq_errmsg(rc));
	a->budget_failed = rc != 0;
	if (rc)
		return;
	if (a->budget_known && budget == a->budget)
		return;
	if (!a->budget_known && budget <= 0) {
		a->budget_known = true;
		return; /* no budget, as assumed: nothing to say */
	}
	a->budget_known = true;
	a->budget = budget;
	apply_rate(a, now);
	a->dirty = true;
	log_info("event=throttle_applied release=%s budget=%s consumers=%u rate=%s source=%s",
		 a->release, rate_text(b, sizeof(b), budget), a->consumers,
		 rate_text(r, sizeof(r), a->rate), source);
}

static void count_consumers(struct gradeq_throttle_agent *a, struct gradeq_store *st,
			    struct gradeq_broker *b, double now)
{
	char queue[GRADEQ_NAME_MAX];
	uint32_t ready = 0, n = 0;
	unsigned live = 0;

	if (!b || gradeq_broker_broken(b))
		return;
	a->count_at = now;
	if (gradeq_broker_queue_info(b, gradeq_work_queue(queue, a->release), &ready, &n))
		return; /* the loop sees a broken connection itself */
	/* A quorum queue counts a basic.get not yet acked as a consumer of
	 * its own: a group's jobs inflate the count. The consumers' reports
	 * of the last 30 s, which count a consumer gone for a while, are the
	 * other bound; the smaller of two counts that never miss a live
	 * consumer is the better. */
	if (a->budget > 0 && !a->report_failed && st && !gradeq_store_broken(st) &&
	    !gradeq_store_throttle_live(st, a->release, &live) && live > 0 && live < n)
		n = live;
	if (n < 1)
		n = 1; /* this one, at least */
	if (n == a->consumers)
		return;
	a->consumers = n;
	if (a->budget > 0 && apply_rate(a, now)) {
		char r[32];

		log_info("event=throttle_share release=%s consumers=%u rate=%s", a->release, n,
			 rate_text(r, sizeof(r), a->rate));
	}
	a->dirty = true;
}

static struct gradeq_distress_limits limits(const struct gradeq_config *cfg)
{
	return (struct gradeq_distress_limits){
		.lock_waiters = cfg->distress_lock_waiters,
		.backends_pct = cfg->distress_backends_pct,
		.latency_factor = cfg->distress_latency_factor,
		.latency_min_samples = cfg->distress_latency_samples,
		.latency_min_ms = cfg->distress_latency_min_ms,
		.replica_lag_ms = cfg->pg_read_dsn ? cfg->max_replica_lag_ms : 0,
	};
}

/* One back-off step: a health sample, then the AIMD controller. */
static void step(struct gradeq_throttle_agent *a, struct gradeq_store *st, double now)
{
	const struct gradeq_config *cfg = a->cfg;
	struct gradeq_distress_limits lim = limits(cfg);
	struct gradeq_db_health h;
	enum gradeq_distress d = a->pending;
	double dt = now - a->health_at;
	char r[32];
	int rc;

	a->health_at = now;
	if (dt > 0)
		a->achieved += (a->learners / dt - a->achieved) * 0.5;
	a->learners = 0;
	a->pending = GRADEQ_DISTRESS_NONE;
	if (!cfg->throttle_backoff) {
		if (a->aimd.cap > 0) {
			a->aimd.cap = 0;
			a->reason = GRADEQ_DISTRESS_NONE;
			apply_rate(a, now);
			log_info("event=throttled reason=backoff_off rate=%s",
				 rate_text(r, sizeof(r), a->rate));
		}
		return;
	}
	if (st && !gradeq_store_broken(st)) {
		rc = gradeq_store_db_health(st, &h);
		if (rc && !a->health_failed)
			log_warn("event=health_sample_failed error=\"%s\"", gradeq_errmsg(rc));
		a->health_failed = rc != 0;
		if (!rc && d == GRADEQ_DISTRESS_NONE)
			d = gradeq_distress_classify(&h, &lim);
	}
	a->aimd.decrease = cfg->backoff_factor_pct / 100.0;
	a->aimd.increase = cfg->backoff_increase;
	a->aimd.min_rate = cfg->backoff_min_rate;
	if (!gradeq_aimd_step(&a->aimd, d != GRADEQ_DISTRESS_NONE,
			      gradeq_throttle_share(a->budget, a->consumers), a->capacity,
			      &a->recover_to))
		return;
	if (d != GRADEQ_DISTRESS_NONE)
		a->reason = d;
	else if (a->aimd.cap <= 0)
		a->reason = GRADEQ_DISTRESS_NONE;
	apply_rate(a, now);
	a->dirty = true;
	if (d != GRADEQ_DISTRESS_NONE)
		log_warn("event=throttled reason=%s rate=%s", gradeq_distress_name(d),
			 rate_text(r, sizeof(r), a->rate));
	else
		log_info("event=throttled reason=%s rate=%s",
			 a->aimd.cap > 0 ? "recovering" : "recovered",
			 rate_text(r, sizeof(r), a->rate));
}

static void report(struct gradeq_throttle_agent *a, struct gradeq_store *st, double now)
{
	struct gradeq_throttle_report r = {
		.consumer = a->consumer,
		.release = a->release,
		.budget = a->budget,
		.consumers = a->consumers,
		.share = gradeq_throttle_share(a->budget, a->consumers),
		.rate = a->rate,
		.state = a->aimd.cap > 0 ? "backoff" : "normal",
		.reason = a->aimd.cap > 0 ? gradeq_distress_name(a->reason) : "",
		.achieved = a->achieved,
	};
	int rc;

	if (!st || gradeq_store_broken(st))
		return;
	a->report_at = now;
	rc = gradeq_store_throttle_report(st, &r);
	if (rc && !a->report_failed) /* once: e.g. a schema before migration 9 */
		log_warn("event=throttle_report_failed error=\"%s\"", gradeq_errmsg(rc));
	a->report_failed = rc != 0;
	if (!rc)
		a->dirty = false;
}

void gradeq_throttle_agent_tick(struct gradeq_throttle_agent *a, struct gradeq_store *st,
				struct gradeq_broker *b, bool waiting)
{
	double now;

	if (!a)
		return;
	now = now_s();
	if (a->hint || now - a->budget_at >= (waiting ? 1 : GRADEQ_THROTTLE_CHECK_S))
		read_budget(a, st, now);
	if (now - a->count_at >= GRADEQ_THROTTLE_COUNT_S)
		count_consumers(a, st, b, now);
	if (now - a->health_at >= a->cfg->distress_interval_s)
		step(a, st, now);
	if ((a->dirty && now - a->report_at >= 1) || now - a->report_at >= GRADEQ_THROTTLE_REPORT_S)
		report(a, st, now);
}

double gradeq_throttle_agent_wait(const struct gradeq_throttle_agent *a)
{
	return a ? gradeq_pace_wait(&a->pace, now_s()) : 0;
}

double gradeq_throttle_agent_rate(const struct gradeq_throttle_agent *a)
{
	return a ? a->rate : 0;
}

void gradeq_throttle_agent_take(struct gradeq_throttle_agent *a, size_t learners)
{
	if (a)
		gradeq_pace_take(&a->pace, (double)learners, now_s());
}

void gradeq_throttle_agent_done(struct gradeq_throttle_agent *a, const struct gradeq_job_stats *s,
				size_t learners)
{
	struct gradeq_distress_limits lim;
	enum gradeq_distress d;

	if (!a)
		return;
	lim = limits(a->cfg);
	a->learners += (double)s->graded;
	(void)learners;
	d = gradeq_replica_distress(&lim, s->ms_standby_wait, s->standby_behind);
	if (d == GRADEQ_DISTRESS_NONE)
		d = gradeq_latency_add(&a->latency, &lim, s->subsections, s->graded, s->ms_fetch,
				       s->ms_write + s->ms_commit);
	if (d != GRADEQ_DISTRESS_NONE && a->pending == GRADEQ_DISTRESS_NONE)
		a->pending = d;
	if (d == GRADEQ_DISTRESS_NONE && s->graded > 0 && s->ms_total > 0) {
		double inst = s->graded / (s->ms_total / 1000);

		a->capacity = a->capacity > 0 ? a->capacity + (inst - a->capacity) * 0.2 : inst;
	}
}
