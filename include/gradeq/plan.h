/* Batch-size planning from recorded job timings (the backfill strategy's
 * experiment): a least-squares fit of batch time = O + p * learners, a batch
 * size recommended from stated criteria, the backfill's predicted duration,
 * and the stable iteration time of a periodic run, T = O / (1 - P).
 *
 * The fitting and recommendation functions are pure (no I/O, src/plan.c);
 * gradeq_plan_main() reads gradeq_jobs and prints the plan
 * (src/plan_report.c over src/store/plan.c). */
#ifndef GRADEQ_PLAN_H
#define GRADEQ_PLAN_H

#include <stdbool.h>
#include <stddef.h>

#include "gradeq/cli.h"
#include "gradeq/err.h"

/* Size classes by number of sequentials (subsections): small below
 * GRADEQ_PLAN_SMALL_MAX, medium below GRADEQ_PLAN_MEDIUM_MAX, large above. */
#define GRADEQ_PLAN_SMALL_MAX 25
#define GRADEQ_PLAN_MEDIUM_MAX 80

/* y = o + p * x with standard errors, r2 and the residuals' RMS. */
struct gradeq_fit {
	double o, p;
	double se_o, se_p;
	double r2, rmse;
	size_t n;
};

/* Least squares over n points. GRADEQ_ERR_INVALID when n < 2 or every x is
 * the same (no slope to fit); standard errors are 0 when n == 2. */
int gradeq_fit_linear(const double *x, const double *y, size_t n,
		      struct gradeq_fit *out) GRADEQ_MUST_CHECK;

/* y = o + p * x fitted with an instrument z (instrumental variables: p =
 * Szy / Szx over centred sums), for a loop whose x depends on its own past
 * y: a --follow iteration reads the learners that arrived while the last
 * one ran, so a slow stretch (noise that lasts) makes both x and y large
 * and least squares overstates p. The arrival rate of each iteration's
 * window (learners / seconds since the previous iteration's start) moves x
 * but not the noise. se and r2 as for least squares (r2 may be negative).
 * GRADEQ_ERR_INVALID when n < 3 or z explains less than a tenth of x's
 * spread (a weak instrument: its p would be noise). */
int gradeq_fit_iv(const double *x, const double *y, const double *z, size_t n,
		  struct gradeq_fit *out) GRADEQ_MUST_CHECK;

/* "small", "medium" or "large" for a course with this many sequentials. */
const char *gradeq_size_class(long sequentials);

struct gradeq_plan_criteria {
	double overhead_share; /* O / batch time at most this (0 < s < 1) */
	double failure_cost_s; /* one batch's time at most this, seconds */
	double full_share;     /* at least this share of batches full (0.5) */
};

struct gradeq_batch_advice {
	long batch;        /* recommended batch size */
	long min_overhead; /* smallest batch meeting the overhead target */
	long max_failure;  /* largest batch meeting the failure-cost target */
	double batch_ms;   /* predicted time of a full batch */
	double overhead;   /* O / batch_ms at the recommendation */
	double full;       /* share of full batches over the enrollments */
	bool conflict;     /* the two targets cannot both hold: the failure
			      * target won */
	bool few_full;     /* fewer full batches than the criterion asks */
};

/* Recommends a batch size for a fit in milliseconds (o ms, p ms per
 * learner): the smallest round size (1, 2, 2.5, 5 x 10^k) whose overhead
 * share is under target for O's upper bound (o + 2 se_o), capped by the
 * failure cost; 'full' is measured
 * on the given enrollments (may be NULL/0). GRADEQ_ERR_INVALID when
 * p <= 0 or the criteria are out of range. */
int gradeq_plan_batch(const struct gradeq_fit *f, const struct gradeq_plan_criteria *c,
		      const long *enrollments, size_t ncourses,
		      struct gradeq_batch_advice *out) GRADEQ_MUST_CHECK;

/* Share of full batches when each course's enrollments are cut at batch. */
double gradeq_plan_full_share(const long *enrollments, size_t ncourses, long batch);

/* Predicted seconds to back-fill the given courses at batch with
 * 'consumers' processes sharing the work evenly. */
double gradeq_plan_backfill_s(const struct gradeq_fit *f, const long *enrollments, size_t ncourses,
			      long batch, int consumers);

/* Stable iteration time of a periodic run that processes what arrived
 * while the previous one ran: T = O + P * T, T = O / (1 - P), o_s the
 * run's overhead in seconds and P the seconds of processing per second of
 * arrivals. GRADEQ_ERR_STATE when P >= 1 (the cycle of doom: T grows
 * without bound); *t is then INFINITY. */
int gradeq_plan_cycle(double o_s, double P, double *t) GRADEQ_MUST_CHECK;

/* The loop's fit for an arrival rate (learners a second): seconds =
 * O + c * learners over recorded iterations (x learners, y milliseconds,
 * z arrival rate, 0 when unknown), instrumented by z (gradeq_fit_iv), least
 * squares when z cannot instrument. An iteration's cost is not linear over
 * all sizes (a learner costs less in a larger iteration), so the line is
 * then fitted again over the iterations near the operating point (learners
 * within a factor GRADEQ_LOOP_NEAR of R * T), until T moves by less than
 * 1%; the global fit stays when too few iterations are near or they cannot
 * instrument. */
#define GRADEQ_LOOP_NEAR 4.0
struct gradeq_loop_fit {
	struct gradeq_fit fit; /* ms and ms a learner */
	bool iv;               /* instrumented (else least squares) */
	double near;           /* learners an iteration it was fitted around, 0: all */
	double O, P, T;        /* seconds, share, seconds (INFINITY when P >= 1) */
	bool doom;             /* P >= 1 */
};
/* GRADEQ_ERR_INVALID when no line can be fitted (too few iterations, or
 * all of one size). */
int gradeq_fit_loop(const double *x, const double *y, const double *z, size_t n, double arrival,
		    struct gradeq_loop_fit *out) GRADEQ_MUST_CHECK;

/* gradeq-admin plan [--course ID | --size-class S] [--consumers N] [--json]
 * [--plot FILE] [--overhead-share S] [--failure-cost SEC]
 * [--arrival-rate R]: argv[0] is "plan". Returns the exit status and
 * prints its own errors. */
int gradeq_plan_main(struct gradeq_cli *cli, struct gradeq_store *st, int argc, char **argv,
		     bool json);

#endif
