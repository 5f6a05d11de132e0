/* Batch-size planning: fits over recorded jobs and the advice drawn from
 * them (see plan.h). */
#include "gradeq/plan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The fitted line's residuals: rmse and r2 set, the sum of squares
 * returned (syy: y's centred sum of squares). */
static double fit_residuals(const double *x, const double *y, size_t n, double syy,
			    struct gradeq_fit *out)
{
	double ssr = 0;

	for (size_t i = 0; i < n; i++) {
		double r = y[i] - (out->o + out->p * x[i]);

		ssr += r * r;
	}
	out->rmse = sqrt(ssr / (double)n);
	out->r2 = syy > 0 ? 1 - ssr / syy : 1;
	return ssr;
}

int gradeq_fit_linear(const double *x, const double *y, size_t n, struct gradeq_fit *out)
{
	double mx = 0, my = 0, sxx = 0, sxy = 0, syy = 0, ssr;

	memset(out, 0, sizeof(*out));
	if (n < 2)
		return GRADEQ_ERR_INVALID;
	for (size_t i = 0; i < n; i++) {
		mx += x[i];
		my += y[i];
	}
	mx /= (double)n;
	my /= (double)n;
	/* centred sums: stable when x is large and its spread small */
	for (size_t i = 0; i < n; i++) {
		sxx += (x[i] - mx) * (x[i] - mx);
		sxy += (x[i] - mx) * (y[i] - my);
		syy += (y[i] - my) * (y[i] - my);
	}
	if (!(sxx > 0))
		return GRADEQ_ERR_INVALID;
	out->n = n;
	out->p = sxy / sxx;
	out->o = my - out->p * mx;
	ssr = fit_residuals(x, y, n, syy, out);
	if (n > 2) {
		double s2 = ssr / (double)(n - 2);

		out->se_p = sqrt(s2 / sxx);
		out->se_o = sqrt(s2 * (1.0 / (double)n + mx * mx / sxx));
	}
	return 0;
}

int gradeq_fit_iv(const double *x, const double *y, const double *z, size_t n,
		  struct gradeq_fit *out)
{
	double mx = 0, my = 0, mz = 0, szx = 0, szy = 0, szz = 0, sxx = 0, syy = 0, s2;

	memset(out, 0, sizeof(*out));
	if (n < 3)
		return GRADEQ_ERR_INVALID;
	for (size_t i = 0; i < n; i++) {
		mx += x[i];
		my += y[i];
		mz += z[i];
	}
	mx /= (double)n;
	my /= (double)n;
	mz /= (double)n;
	for (size_t i = 0; i < n; i++) {
		szx += (z[i] - mz) * (x[i] - mx);
		szy += (z[i] - mz) * (y[i] - my);
		szz += (z[i] - mz) * (z[i] - mz);
		sxx += (x[i] - mx) * (x[i] - mx);
		syy += (y[i] - my) * (y[i] - my);
	}
	/* the first stage's r2, szx^2 / (szz sxx), at least 0.1 */
	if (!(szx > 0) || !(szz > 0) || !(sxx > 0) || szx * szx < 0.1 * szz * sxx)
		return GRADEQ_ERR_INVALID;
	out->n = n;
	out->p = szy / szx;
	out->o = my - out->p * mx;
	s2 = fit_residuals(x, y, n, syy, out) / (double)(n - 2);
	out->se_p = sqrt(s2 * szz) / szx;
	out->se_o = sqrt(s2 / (double)n + mx * mx * out->se_p * out->se_p);
	return 0;
}

const char *gradeq_size_class(long sequentials)
{
	if (sequentials < GRADEQ_PLAN_SMALL_MAX)
		return "small";
	if (sequentials < GRADEQ_PLAN_MEDIUM_MAX)
		return "medium";
	return "large";
}

double gradeq_plan_full_share(const long *enrollments, size_t ncourses, long batch)
{
	double full = 0, all = 0;

	if (batch < 1)
		return 0;
	for (size_t i = 0; i < ncourses; i++) {
		full += (double)(enrollments[i] / batch);
		all += (double)((enrollments[i] + batch - 1) / batch);
	}
	return all > 0 ? full / all : 1;
}

/* The smallest of 1, 2, 2.5, 5 x 10^k that is >= v (v >= 1). */
static long round_up_nice(double v)
{
	static const double steps[] = {1, 2, 2.5, 5};

	for (double scale = 1; scale < 1e12; scale *= 10)
		for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
			if (steps[i] * scale >= v && steps[i] * scale == floor(steps[i] * scale))
				return (long)(steps[i] * scale);
	return (long)v;
}

/* The largest of 1, 2, 2.5, 5 x 10^k that is <= v, at least 1. */
static long round_down_nice(double v)
{
	long best = 1;

	/* strictly increasing: round_up_nice(b + 1) > b */
	for (long b = 1; b > 0 && (double)b <= v;) {
		best = b;
		b = round_up_nice((double)b + 1);
	}
	return best;
}

int gradeq_plan_batch(const struct gradeq_fit *f, const struct gradeq_plan_criteria *c,
		      const long *enrollments, size_t ncourses, struct gradeq_batch_advice *out)
{
	double s = c->overhead_share, o = f->o > 0 ? f->o : 0, need, cap;
	/* the overhead target on O's upper bound (O + 2 standard errors): an
	 * overhead too small to measure must not recommend batches of one */
	double o_hi = f->o + 2 * f->se_o > 0 ? f->o + 2 * f->se_o : 0;

	memset(out, 0, sizeof(*out));
	if (!(f->p > 0) || !(s > 0 && s < 1) || !(c->failure_cost_s > 0) ||
	    !(c->full_share >= 0 && c->full_share <= 1))
		return GRADEQ_ERR_INVALID;
	/* O / (O + p b) <= s  <=>  b >= O (1 - s) / (s p) */
	need = o_hi * (1 - s) / (s * f->p);
	out->min_overhead = round_up_nice(need < 1 ? 1 : need);
	/* O + p b <= F */
	cap = (c->failure_cost_s * 1000 - o) / f->p;
	out->max_failure = cap >= 1 ? round_down_nice(cap) : 1;
	out->batch = out->min_overhead;
	if (out->batch > out->max_failure) {
		out->batch = out->max_failure;
		out->conflict = true;
	}
	out->batch_ms = o + f->p * (double)out->batch;
	out->overhead = out->batch_ms > 0 ? o / out->batch_ms : 0;
	out->full = gradeq_plan_full_share(enrollments, ncourses, out->batch);
	out->few_full = ncourses > 0 && out->full < c->full_share;
	return 0;
}

double gradeq_plan_backfill_s(const struct gradeq_fit *f, const long *enrollments, size_t ncourses,
			      long batch, int consumers)
{
	double ms = 0, o = f->o > 0 ? f->o : 0;

	if (batch < 1 || consumers < 1)
		return 0;
	for (size_t i = 0; i < ncourses; i++)
		ms += (double)((enrollments[i] + batch - 1) / batch) * o +
		      (double)enrollments[i] * f->p;
	return ms / 1000 / consumers;
}

int gradeq_plan_cycle(double o_s, double P, double *t)
{
	if (!(P < 1)) {
		*t = INFINITY;
		return GRADEQ_ERR_STATE;
	}
	*t = o_s / (1 - P);
	return 0;
}

/* One fit over the points whose x lies in [lo, hi] (all when hi is 0):
 * instrumented when z can, else least squares (only when allow_ls). */
static int fit_range(const double *x, const double *y, const double *z, size_t n, double lo,
		     double hi, bool allow_ls, struct gradeq_fit *f, bool *iv)
{
	double *buf = malloc(3 * (n ? n : 1) * sizeof(double));
	double *xs = buf, *ys = buf + n, *zs = buf + 2 * n;
	size_t m = 0;
	int rc;

	if (!buf)
		return GRADEQ_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		if (hi > 0 && (x[i] < lo || x[i] > hi))
			continue;
		if (z[i] > 0) {
			xs[m] = x[i];
			ys[m] = y[i];
			zs[m++] = z[i];
		}
	}
	*iv = true;
	rc = gradeq_fit_iv(xs, ys, zs, m, f);
	if ((rc || f->p <= 0) && allow_ls) {
		*iv = false;
		m = 0;
		for (size_t i = 0; i < n; i++)
			if (hi <= 0 || (x[i] >= lo && x[i] <= hi)) {
				xs[m] = x[i];
				ys[m++] = y[i];
			}
		rc = gradeq_fit_linear(xs, ys, m, f);
	}
	if (!rc && f->p <= 0)
		rc = GRADEQ_ERR_INVALID;
	free(buf);
	return rc;
}

static void loop_solve(struct gradeq_loop_fit *out, double arrival)
{
	out->O = out->fit.o > 0 ? out->fit.o / 1000 : 0;
	out->P = out->fit.p / 1000 * arrival;
	out->doom = gradeq_plan_cycle(out->O, out->P, &out->T) != 0;
}

int gradeq_fit_loop(const double *x, const double *y, const double *z, size_t n, double arrival,
		    struct gradeq_loop_fit *out)
{
	int rc;

	memset(out, 0, sizeof(*out));
	rc = fit_range(x, y, z, n, 0, 0, true, &out->fit, &out->iv);
	if (rc)
		return rc;
	loop_solve(out, arrival);
	for (int round = 0; round < 10 && !out->doom && arrival > 0; round++) {
		struct gradeq_loop_fit local = *out;
		double near = arrival * out->T;

		if (!(near > 0) ||
		    fit_range(x, y, z, n, near / GRADEQ_LOOP_NEAR, near * GRADEQ_LOOP_NEAR, false,
			      &local.fit, &local.iv) ||
		    local.fit.n < 10)
			break;
		loop_solve(&local, arrival);
		if (local.doom)
			break;
		local.near = near;
		*out = local;
		if (fabs(local.T - near / arrival) <= 0.01 * local.T)
			break;
	}
	return 0;
}
