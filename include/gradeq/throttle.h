/* Never hurt the site: the pure core of the consumers' throttle. A shared
 * budget of learners a second is split evenly among the release's
 * consumers (their number from the broker), each paces its jobs with a
 * bucket of its share, and an AIMD controller lowers the rate further while
 * the database shows distress. No I/O and no clock of its own: the caller
 * passes the time in (seconds, any monotonic origin), so all of it is
 * tested without sleeping. The consumer's side (registry, broker, health
 * samples, logs) is throttle_agent.h. */
#ifndef GRADEQ_THROTTLE_H
#define GRADEQ_THROTTLE_H

#include <stdbool.h>
#include <stddef.h>

/* --- pacing -------------------------------------------------------------- */

/* Pacing without burst: a job of k learners may start once the bucket is
 * free; it then keeps the bucket busy for k / rate seconds. Over any
 * interval T a consumer starts at most rate * T + k_max learners. */
struct gradeq_pace {
	double rate;    /* learners a second; <= 0: no limit */
	double free_at; /* when the next job may start */
};

void gradeq_pace_init(struct gradeq_pace *p, double rate);
/* Changes the rate at time now; the wait that is left is rescaled to the
 * new rate (a raise shortens it at once, unlimited ends it). */
void gradeq_pace_set_rate(struct gradeq_pace *p, double rate, double now);
/* Seconds to wait at time now before the next job may start (0: at once). */
double gradeq_pace_wait(const struct gradeq_pace *p, double now);
/* A job of learners starts at time now (after its wait). */
void gradeq_pace_take(struct gradeq_pace *p, double learners, double now);

/* One consumer's share of budget among consumers (0 counts as 1); a budget
 * <= 0 (none) gives 0, unlimited. */
double gradeq_throttle_share(double budget, unsigned consumers);

/* The rate to pace with: the smaller limit of the share and the AIMD cap,
 * where 0 is no limit. */
double gradeq_throttle_rate(double share, double cap);

/* --- quiet hours --------------------------------------------------------- */

/* A time window of the day (the database server's time zone) with its own
 * budget: from starts up to ends ("HH:MM"; ends before starts wraps past
 * midnight), learners_per_s <= 0 meaning no limit (full speed). */
struct gradeq_throttle_window {
	char starts[6], ends[6];
	double learners_per_s;
};

/* Parses "HH:MM-HH:MM=N" (N learners a second) or "HH:MM-HH:MM=off" (no
 * limit). GRADEQ_ERR_INVALID when malformed, out of range or empty
 * (starts equal to ends). */
int gradeq_throttle_window_parse(const char *s, struct gradeq_throttle_window *w);

/* --- distress ------------------------------------------------------------ */

enum gradeq_distress {
	GRADEQ_DISTRESS_NONE,
	GRADEQ_DISTRESS_LOCK_WAITS,    /* sessions wait for locks on grades_* */
	GRADEQ_DISTRESS_BACKENDS,      /* active backends near max_connections */
	GRADEQ_DISTRESS_READ_LATENCY,  /* score reads slow against their baseline */
	GRADEQ_DISTRESS_WRITE_LATENCY, /* grade writes slow against their baseline */
	GRADEQ_DISTRESS_REPLICA_LAG,   /* the standby replays too slowly */
};

/* "none", "lock_waits", "active_backends", "read_latency", "write_latency",
 * "replica_lag". */
const char *gradeq_distress_name(enum gradeq_distress d);

/* The thresholds (the configuration's, see config.c). */
struct gradeq_distress_limits {
	int lock_waiters;        /* waiting sessions on the output tables; 0: ignored */
	int backends_pct;        /* active backends as % of max_connections; 0: ignored */
	int latency_factor;      /* x the baseline; 0: ignored */
	int latency_min_samples; /* jobs of a course size before its baseline counts */
	int latency_min_ms;      /* a read or write shorter than this is never slow */
	int replica_lag_ms;      /* a job's wait for the standby; 0: ignored */
};

/* What one sample of the database saw. */
struct gradeq_db_health {
	int lock_waiters;    /* sessions waiting for a lock on grades_* tables */
	int active_backends; /* state = 'active' */
	int max_connections;
};

/* The distress a health sample shows (NONE, LOCK_WAITS or BACKENDS; lock
 * waits first). */
enum gradeq_distress gradeq_distress_classify(const struct gradeq_db_health *h,
					      const struct gradeq_distress_limits *lim);

/* Latency baselines per course size (log2 of its subsections): an
 * exponentially weighted mean of milliseconds per learner of the score read
 * and of the grade write, from jobs that were not themselves slow. */
#define GRADEQ_LATENCY_CLASSES 12
struct gradeq_latency {
	double read[GRADEQ_LATENCY_CLASSES], write[GRADEQ_LATENCY_CLASSES];
	int n[GRADEQ_LATENCY_CLASSES];
};

/* Adds one job (its subsections, learners, read and write ms) and says
 * whether it was slow: READ_LATENCY or WRITE_LATENCY when above
 * latency_factor x its class's baseline (with enough samples) and at least
 * latency_min_ms long (noise on a tiny job is no distress), else NONE. */
enum gradeq_distress gradeq_latency_add(struct gradeq_latency *l,
					const struct gradeq_distress_limits *lim, int subsections,
					int learners, double read_ms, double write_ms);

/* REPLICA_LAG when a job waited replica_lag_ms or more for the standby to
 * replay the primary's WAL as of its start, or the standby was still
 * behind when the job gave up on it; else NONE. */
enum gradeq_distress gradeq_replica_distress(const struct gradeq_distress_limits *lim,
					     double waited_ms, bool behind);

/* --- AIMD ---------------------------------------------------------------- */

struct gradeq_aimd {
	double cap;      /* learners a second; 0: no cap */
	double decrease; /* multiplicative decrease, e.g. 0.5 */
	double increase; /* additive increase a step, learners a second */
	double min_rate; /* never below this */
};

/* One control step. distressed: the database showed distress since the
 * last step; ceiling: the share of the budget (0: none); observed: the
 * rate this consumer grades at while busy (the start of a decrease when
 * there is neither cap nor ceiling). On distress the cap falls to decrease x (the cap, else
 * the ceiling, else observed); without it, it climbs by
 * increase and is lifted (0) once it reaches the ceiling, or, when there
 * is no ceiling, once it reaches the rate observed before the first
 * decrease (recover_to). Returns true when the cap changed. */
bool gradeq_aimd_step(struct gradeq_aimd *a, bool distressed, double ceiling, double observed,
		      double *recover_to);

#endif
