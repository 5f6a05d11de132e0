/* The throttle's pure core: pacing, the budget's split, distress and AIMD
 * (see include/gradeq/throttle.h). */
#include "gradeq/throttle.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gradeq/err.h"
#include "gradeq/parse.h"

void gradeq_pace_init(struct gradeq_pace *p, double rate)
{
	p->rate = rate;
	p->free_at = 0;
}

void gradeq_pace_set_rate(struct gradeq_pace *p, double rate, double now)
{
	if (rate <= 0 || p->rate <= 0)
		p->free_at = now; /* no limit now, or none before: no debt */
	else if (p->free_at > now)
		p->free_at = now + (p->free_at - now) * p->rate / rate;
	p->rate = rate;
}

double gradeq_pace_wait(const struct gradeq_pace *p, double now)
{
	if (p->rate <= 0 || p->free_at <= now)
		return 0;
	return p->free_at - now;
}

void gradeq_pace_take(struct gradeq_pace *p, double learners, double now)
{
	if (p->rate <= 0)
		return;
	/* idle time is not saved up: no burst after a pause */
	if (p->free_at < now)
		p->free_at = now;
	p->free_at += learners / p->rate;
}

double gradeq_throttle_share(double budget, unsigned consumers)
{
	if (budget <= 0)
		return 0;
	return budget / (consumers ? consumers : 1);
}

double gradeq_throttle_rate(double share, double cap)
{
	if (share <= 0)
		return cap > 0 ? cap : 0;
	if (cap <= 0)
		return share;
	return cap < share ? cap : share;
}

const char *gradeq_distress_name(enum gradeq_distress d)
{
	switch (d) {
	case GRADEQ_DISTRESS_LOCK_WAITS: return "lock_waits";
	case GRADEQ_DISTRESS_BACKENDS: return "active_backends";
	case GRADEQ_DISTRESS_READ_LATENCY: return "read_latency";
	case GRADEQ_DISTRESS_WRITE_LATENCY: return "write_latency";
	case GRADEQ_DISTRESS_REPLICA_LAG: return "replica_lag";
	case GRADEQ_DISTRESS_NONE: break;
	}
	return "none";
}

enum gradeq_distress gradeq_distress_classify(const struct gradeq_db_health *h,
					      const struct gradeq_distress_limits *lim)
{
	if (lim->lock_waiters > 0 && h->lock_waiters >= lim->lock_waiters)
		return GRADEQ_DISTRESS_LOCK_WAITS;
	if (lim->backends_pct > 0 && h->max_connections > 0 &&
	    (long)h->active_backends * 100 >= (long)lim->backends_pct * h->max_connections)
		return GRADEQ_DISTRESS_BACKENDS;
	return GRADEQ_DISTRESS_NONE;
}

enum gradeq_distress gradeq_replica_distress(const struct gradeq_distress_limits *lim,
					     double waited_ms, bool behind)
{
	if (lim->replica_lag_ms <= 0)
		return GRADEQ_DISTRESS_NONE;
	if (behind || waited_ms >= lim->replica_lag_ms)
		return GRADEQ_DISTRESS_REPLICA_LAG;
	return GRADEQ_DISTRESS_NONE;
}

static int size_class(int subsections)
{
	int c = 0;

	while (subsections > 1 && c < GRADEQ_LATENCY_CLASSES - 1) {
		subsections >>= 1;
		c++;
	}
	return c;
}

/* The weight of a new sample in the baselines' moving mean. */
#define LATENCY_ALPHA 0.2

enum gradeq_distress gradeq_latency_add(struct gradeq_latency *l,
					const struct gradeq_distress_limits *lim, int subsections,
					int learners, double read_ms, double write_ms)
{
	int c = size_class(subsections);
	double r, w;
	enum gradeq_distress d = GRADEQ_DISTRESS_NONE;

	if (learners <= 0)
		return d;
	r = read_ms / learners;
	w = write_ms / learners;
	if (lim->latency_factor > 0 && l->n[c] >= lim->latency_min_samples) {
		/* a floor of 0.01 ms a learner, and of latency_min_ms a job:
		 * noise on a tiny baseline is no distress */
		if (w > lim->latency_factor * fmax(l->write[c], 0.01) &&
		    write_ms >= lim->latency_min_ms)
			d = GRADEQ_DISTRESS_WRITE_LATENCY;
		else if (r > lim->latency_factor * fmax(l->read[c], 0.01) &&
			 read_ms >= lim->latency_min_ms)
			d = GRADEQ_DISTRESS_READ_LATENCY;
	}
	if (d != GRADEQ_DISTRESS_NONE)
		return d; /* a slow job does not move the baseline */
	if (l->n[c] == 0) {
		l->read[c] = r;
		l->write[c] = w;
	} else {
		l->read[c] += LATENCY_ALPHA * (r - l->read[c]);
		l->write[c] += LATENCY_ALPHA * (w - l->write[c]);
	}
	if (l->n[c] < 1000000)
		l->n[c]++;
	return d;
}

bool gradeq_aimd_step(struct gradeq_aimd *a, bool distressed, double ceiling, double observed,
		      double *recover_to)
{
	double old = a->cap;

	if (distressed) {
		double base = a->cap;

		if (base <= 0) {
			base = ceiling > 0 ? ceiling : observed;
			*recover_to = base > a->min_rate ? base : a->min_rate;
		}
		a->cap = base * a->decrease;
		if (a->cap < a->min_rate)
			a->cap = a->min_rate;
		return a->cap != old;
	}
	if (a->cap <= 0)
		return false;
	a->cap += a->increase;
	if (ceiling > 0 ? a->cap >= ceiling : a->cap >= *recover_to)
		a->cap = 0;
	return a->cap != old;
}

/* "HH:MM" at s (exactly five characters): 0 and the minutes of the day. */
static int hhmm(const char *s, int *minutes)
{
	int h, m;

	if (!(s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9' && s[2] == ':' &&
	      s[3] >= '0' && s[3] <= '9' && s[4] >= '0' && s[4] <= '9'))
		return -1;
	h = (s[0] - '0') * 10 + (s[1] - '0');
	m = (s[3] - '0') * 10 + (s[4] - '0');
	if (h > 23 || m > 59)
		return -1;
	*minutes = h * 60 + m;
	return 0;
}

int gradeq_throttle_window_parse(const char *s, struct gradeq_throttle_window *w)
{
	int a, b;

	memset(w, 0, sizeof(*w));
	if (strlen(s) < 13 || hhmm(s, &a) || s[5] != '-' || hhmm(s + 6, &b) || s[11] != '=' ||
	    a == b)
		return GRADEQ_ERR_INVALID;
	memcpy(w->starts, s, 5);
	memcpy(w->ends, s + 6, 5);
	if (strcmp(s + 12, "off") == 0)
		return 0;
	if (gradeq_parse_double(s + 12, NULL, 0.001, 1e9, &w->learners_per_s))
		return GRADEQ_ERR_INVALID;
	return 0;
}
