/* gradeq-publish --follow (see follow.h). */
#include "gradeq/follow.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gradeq/broker.h"
#include "gradeq/limits.h"
#include "gradeq/log.h"
#include "gradeq/store.h"

static volatile sig_atomic_t stops;

void gradeq_follow_stop(void)
{
	if (stops < 2)
		stops++;
}

int gradeq_follow_fit(const double *h, const double *t, size_t n, double *o, double *p)
{
	double sh = 0, st = 0, shh = 0, sht = 0, d;

	if (n < 2)
		return GRADEQ_ERR_INVALID;
	for (size_t i = 0; i < n; i++) {
		sh += h[i];
		st += t[i];
		shh += h[i] * h[i];
		sht += h[i] * t[i];
	}
	d = (double)n * shh - sh * sh;
	if (d <= 1e-12 * (double)n * shh || d <= 0)
		return GRADEQ_ERR_INVALID;
	*p = ((double)n * sht - sh * st) / d;
	*o = (st - *p * sh) / (double)n;
	return 0;
}

bool gradeq_follow_behind(const double *h, const double *t, size_t n)
{
	double o, p;

	if (n < 2)
		return false;
	for (size_t i = 0; i < n; i++)
		if (t[i] <= h[i] || (i > 0 && t[i] <= t[i - 1]))
			return false;
	/* back to back, each window is the previous time: growth alone is
	 * also noise; the trend must be large and its fit say P >= 1 */
	return t[n - 1] >= GRADEQ_FOLLOW_TREND_GROWTH * t[0] &&
	       t[n - 1] - t[0] >= GRADEQ_FOLLOW_TREND_MIN_GROWTH_S &&
	       gradeq_follow_fit(h, t, n, &o, &p) == 0 && p >= 1;
}

static double mono(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Sleeps ms unless more than 'level' stops came (before or meanwhile). */
static void nap(long ms, int level)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (stops <= level && nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

struct gradeq_run_wait {
	struct gradeq_store *st;
	/* gradeq.events' run.# through a server-named queue; NULL when this
	 * user may not declare one (gradeq-publisher) or the connection was
	 * lost: the run's state is then polled */
	struct gradeq_broker *ev;
};

int gradeq_run_wait_open(struct gradeq_cli *cli, const char *release, struct gradeq_run_wait **out)
{
	static const char *const keys[1] = {"run.#"};
	struct gradeq_run_wait *w = calloc(1, sizeof(*w));
	int rc;

	*out = NULL;
	if (!w)
		return gradeq_error(GRADEQ_ERR_NOMEM, "out of memory");
	rc = gradeq_cli_store(cli, &w->st);
	if (rc) {
		free(w);
		return rc;
	}
	/* best effort: the database's state decides, the event only wakes */
	if (gradeq_cli_broker(cli, release, &w->ev) == 0 &&
	    gradeq_broker_follow(w->ev, NULL, GRADEQ_EVENTS_EXCHANGE, keys, 1, NULL) == 0) {
		log_debug("event=run_wait mode=events");
	} else {
		log_info("event=run_wait mode=poll poll_ms=%d reason=\"%s\"", GRADEQ_FOLLOW_POLL_MS,
			 "cannot follow gradeq.events (a user that may not declare a queue?)");
		gradeq_broker_free(w->ev);
		w->ev = NULL;
	}
	*out = w;
	return 0;
}

void gradeq_run_wait_free(struct gradeq_run_wait *w)
{
	if (!w)
		return;
	gradeq_broker_free(w->ev);
	gradeq_store_free(w->st);
	free(w);
}

struct gradeq_store *gradeq_run_wait_store(struct gradeq_run_wait *w)
{
	return w->st;
}

/* Waits for the next event of run_id (or GRADEQ_FOLLOW_EVENT_RECHECK_MS:
 * an event is best effort); without events, GRADEQ_FOLLOW_POLL_MS. */
static void wake(struct gradeq_run_wait *w, const char *run_id)
{
	char prefix[64];
	size_t plen = (size_t)snprintf(prefix, sizeof(prefix), "run.%s.", run_id);

	while (w->ev && stops < 2) {
		amqp_envelope_t env;
		bool ours;
		int rc = gradeq_broker_next(w->ev, &env, GRADEQ_FOLLOW_EVENT_RECHECK_MS);

		if (rc == GRADEQ_ERR_TIMEOUT)
			return;
		if (rc) {
			log_warn("event=run_wait mode=poll reason=\"%s\"", gradeq_errmsg(rc));
			gradeq_broker_free(w->ev);
			w->ev = NULL;
			break;
		}
		ours = env.routing_key.len > plen &&
		       memcmp(env.routing_key.bytes, prefix, plen) == 0;
		amqp_destroy_envelope(&env);
		if (ours)
			return;
	}
	nap(GRADEQ_FOLLOW_POLL_MS, 1);
}

int gradeq_run_wait(struct gradeq_run_wait *w, const char *run_id, char *state, size_t len)
{
	bool done = false;
	int rc;

	/* the run's state first: events sent before the subscription, or
	 * lost, are not waited for */
	while (!(rc = gradeq_follow_run_done(w->st, run_id, &done, state, len)) && !done) {
		if (stops > 1) {
			snprintf(state, len, "interrupted");
			return 0;
		}
		/* the first stop lets the run finish: only a second ends the wait */
		wake(w, run_id);
	}
	return rc;
}

struct loop {
	struct gradeq_cli *cli;
	const struct gradeq_publish_options *o;
	struct gradeq_publish_conns conns; /* kept from one iteration to the next */
	struct gradeq_store *st;
	struct gradeq_run_wait *w;
	long iteration;
	/* the recent iterations: data window (s between selections), time */
	double h[GRADEQ_FOLLOW_TREND * 2], t[GRADEQ_FOLLOW_TREND * 2];
	size_t n;
	double last_start; /* 0 before the first iteration */
	bool warned;
};

/* Keeps the iteration's window and time; warns once when the loop falls
 * behind (each iteration longer than its window, and growing). */
static void trend(struct loop *l, double h, double t, long learners, const char *release)
{
	const size_t cap = sizeof(l->h) / sizeof(l->h[0]);
	double o = 0, p = 0;

	if (l->n == cap) {
		memmove(l->h, l->h + 1, (cap - 1) * sizeof(l->h[0]));
		memmove(l->t, l->t + 1, (cap - 1) * sizeof(l->t[0]));
		l->n--;
	}
	l->h[l->n] = h;
	l->t[l->n] = t;
	l->n++;
	if (l->n < GRADEQ_FOLLOW_TREND)
		return;
	if (!gradeq_follow_behind(l->h + l->n - GRADEQ_FOLLOW_TREND,
				  l->t + l->n - GRADEQ_FOLLOW_TREND, GRADEQ_FOLLOW_TREND)) {
		l->warned = false;
		return;
	}
	if (l->warned)
		return;
	l->warned = true;
	if (gradeq_follow_fit(l->h, l->t, l->n, &o, &p))
		o = p = -1;
	log_warn("event=follow_falling_behind release=%s iterations=%d last_seconds=%.3f"
		 " last_window_seconds=%.3f learners=%ld O_seconds=%.3f P=%.3f"
		 " advice=\"%s\"",
		 release, GRADEQ_FOLLOW_TREND, t, h, learners, o, p,
		 "each iteration takes longer than the data it reads (P >= 1): add consumers"
		 " or cut per-learner time; see gradeq-admin plan --arrival-rate");
}

/* One iteration: recorded, published (incremental), waited for. */
static int iterate(struct loop *l, bool *failed)
{
	struct gradeq_publish_result r;
	struct gradeq_follow_row row = {0};
	double t0 = mono(), h = l->last_start > 0 ? t0 - l->last_start : 0, secs;
	char state[32] = "complete";
	long long id = 0;
	int rc, prc;

	l->last_start = t0;
	l->iteration++;
	rc = gradeq_follow_begin(l->st, l->o->release ? l->o->release : "", l->cli->prog, &id);
	if (rc)
		return rc;
	prc = gradeq_publish_run(l->cli, l->o, &r);
	*failed = prc != 0;
	if (prc)
		snprintf(state, sizeof(state), "failed");
	else if (r.jobs > 0)
		rc = gradeq_run_wait(l->w, r.run_id, state, sizeof(state));
	secs = mono() - t0;
	row.release = r.release;
	row.run_id = r.run_id;
	row.window_from = r.window_from;
	row.window_to = r.window_to;
	row.select_s = r.select_seconds;
	row.seconds = secs;
	row.learners = r.learners;
	row.jobs = r.jobs;
	row.state = state;
	if (!rc)
		rc = gradeq_follow_end(l->st, id, &row);
	if (prc)
		log_warn("event=follow_iteration iteration=%ld release=%s state=failed"
			 " seconds=%.3f error=\"%s\"",
			 l->iteration, r.release, secs, gradeq_errmsg(prc));
	else
		log_info("event=follow_iteration iteration=%ld release=%s run=%s state=%s"
			 " learners=%ld jobs=%ld seconds=%.3f select_seconds=%.4f"
			 " window_seconds=%.3f from=\"%s\" to=\"%s\"",
			 l->iteration, r.release, r.run_id[0] ? r.run_id : "none", state,
			 r.learners, r.jobs, secs, r.select_seconds, h, r.window_from, r.window_to);
	if (!prc && h > 0)
		trend(l, h, secs, r.learners, r.release);
	return rc;
}

int gradeq_follow_run(struct gradeq_cli *cli, const struct gradeq_publish_options *opts,
		      long every_s)
{
	struct gradeq_publish_options oo = *opts, *o = &oo;
	struct loop l = {.cli = cli, .o = o};
	/* an idle broker connection lives through pauses well under the
	 * heartbeat; the database connections through any */
	double keep_s = cli->cfg->heartbeat > 0 ? cli->cfg->heartbeat / 2.0 : 1e9;
	/* subscribed before the first run is published: its end is not missed */
	int rc = gradeq_run_wait_open(cli, o->release, &l.w);

	if (rc)
		return rc;
	l.st = gradeq_run_wait_store(l.w);
	/* each iteration's selection, run records and publishing reuse the
	 * previous one's connections: opening them is most of an idle
	 * iteration's time */
	oo.keep = &l.conns;
	log_info("event=follow_started every_seconds=%ld batch_size=%d", every_s, o->batch_size);
	while (!rc && !stops) {
		double start = mono(), left;

		bool failed = false;

		rc = iterate(&l, &failed);
		left = (double)(failed && every_s < GRADEQ_FOLLOW_RETRY_S ? GRADEQ_FOLLOW_RETRY_S
									  : every_s) -
		       (mono() - start);
		if (left > keep_s)
			gradeq_publish_conns_close_broker(&l.conns);
		if (!rc && left > 0)
			nap((long)(left * 1000), 0);
	}
	log_info("event=follow_stopped iterations=%ld", l.iteration);
	gradeq_publish_conns_close(&l.conns);
	gradeq_run_wait_free(l.w);
	return rc;
}
