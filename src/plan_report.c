/* gradeq-admin plan: reads the recorded job timings (src/store/plan.c),
 * groups them by size class or course, and prints the plan of the pure
 * fit (src/plan.c) as a table or JSON, with an optional gnuplot chart. */
#include "gradeq/plan.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradeq/follow.h"
#include "store/plan.h"

struct group {
	char name[160]; /* class name, or the course id with --course */
	double *x, *y;  /* learners graded, batch ms of each job */
	size_t n, cap;
	long *enr; /* enrollments of the group's courses */
	size_t ncourses, enr_cap;
};

struct plan_opts {
	const char *course, *cls, *plot;
	int consumers;
	double arrival;           /* learners changed per second, < 0 when not given */
	double loop_s;            /* the periodic loop's own overhead per iteration, s */
	const char *iter_release; /* --iterations: O and P from its --follow iterations */
	struct gradeq_plan_criteria crit;
};

static int push_double(double **a, double **b, size_t *n, size_t *cap, double x, double y)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 256;
		double *na = realloc(*a, nc * sizeof(**a)), *nb;

		if (!na)
			return GRADEQ_ERR_NOMEM;
		*a = na;
		nb = realloc(*b, nc * sizeof(**b));
		if (!nb)
			return GRADEQ_ERR_NOMEM;
		*b = nb;
		*cap = nc;
	}
	(*a)[*n] = x;
	(*b)[*n] = y;
	(*n)++;
	return 0;
}

static struct group *group_get(struct group *g, size_t *ng, const char *name)
{
	for (size_t i = 0; i < *ng; i++)
		if (strcmp(g[i].name, name) == 0)
			return &g[i];
	if (*ng == 3)
		return NULL;
	memset(&g[*ng], 0, sizeof(g[*ng]));
	snprintf(g[*ng].name, sizeof(g[*ng].name), "%s", name);
	return &g[(*ng)++];
}

/* Reads the courses (class, enrollments) and the jobs into groups. */
static int load_groups(struct gradeq_store *st, const struct plan_opts *o, struct group *g,
		       size_t *ng)
{
	struct gradeq_plan_samples s;
	int rc = gradeq_store_plan_samples(st, o->course, &s);

	if (rc)
		return rc;
	for (size_t i = 0; i < s.ncourses && !rc; i++) {
		const char *cls = gradeq_size_class(s.courses[i].sequentials);
		struct group *gr;

		if (o->cls && strcmp(o->cls, cls) != 0)
			continue;
		gr = group_get(g, ng, o->course ? o->course : cls);
		if (!gr)
			continue;
		if (gr->ncourses == gr->enr_cap) {
			size_t nc = gr->enr_cap ? gr->enr_cap * 2 : 16;
			long *ne = realloc(gr->enr, nc * sizeof(*ne));

			if (!ne) {
				rc = GRADEQ_ERR_NOMEM;
				break;
			}
			gr->enr = ne;
			gr->enr_cap = nc;
		}
		gr->enr[gr->ncourses++] = s.courses[i].enrollments;
	}
	for (size_t i = 0; i < s.njobs && !rc; i++) {
		const struct gradeq_plan_course *c = &s.courses[s.jobs[i].course];
		const char *name = o->course ? o->course : gradeq_size_class(c->sequentials);

		for (size_t k = 0; k < *ng; k++)
			if (strcmp(g[k].name, name) == 0)
				rc = push_double(&g[k].x, &g[k].y, &g[k].n, &g[k].cap,
						 s.jobs[i].graded, s.jobs[i].ms);
	}
	gradeq_plan_samples_release(&s);
	return rc;
}

static void print_group(const struct plan_opts *o, const struct group *g, bool json, bool first)
{
	struct gradeq_fit f;
	struct gradeq_batch_advice a;
	double backfill = 0, T = 0, P = 0, orun = 0;
	long learners = 0;
	int cyc = 0;

	for (size_t i = 0; i < g->ncourses; i++)
		learners += g->enr[i];
	if (gradeq_fit_linear(g->x, g->y, g->n, &f) ||
	    gradeq_plan_batch(&f, &o->crit, g->enr, g->ncourses, &a)) {
		if (json)
			printf("%s{\"group\":\"%s\",\"courses\":%zu,\"learners\":%ld,\"jobs\":%zu,"
			       "\"fit\":null}",
			       first ? "" : ",", g->name, g->ncourses, learners, g->n);
		else
			printf("%-10s %7zu %9ld %6zu  not enough jobs at different batch sizes to fit"
			       " (run tools/bench or a backfill at two batch sizes)\n",
			       g->name, g->ncourses, learners, g->n);
		return;
	}
	backfill = gradeq_plan_backfill_s(&f, g->enr, g->ncourses, a.batch, o->consumers);
	if (o->arrival >= 0) {
		/* per run: each course with changes costs at least one batch's
		 * overhead, spread over the consumers; P is the processing time of
		 * one second of arrivals */
		orun = o->loop_s + (f.o > 0 ? f.o : 0) / 1000 *
					   (double)((g->ncourses + (size_t)o->consumers - 1) /
						    (size_t)o->consumers);
		P = f.p / 1000 * o->arrival / o->consumers;
		cyc = gradeq_plan_cycle(orun, P, &T);
	}
	if (json) {
		printf("%s{\"group\":\"%s\",\"courses\":%zu,\"learners\":%ld,\"jobs\":%zu,"
		       "\"fit\":{\"overhead_ms\":%.3f,\"overhead_se\":%.3f,\"per_learner_ms\":%.5f,"
		       "\"per_learner_se\":%.5f,\"r2\":%.4f,\"rmse_ms\":%.3f},"
		       "\"batch\":%ld,\"min_batch_overhead\":%ld,\"max_batch_failure\":%ld,"
		       "\"batch_ms\":%.1f,\"overhead_share\":%.4f,\"full_share\":%.3f,"
		       "\"conflict\":%s,\"few_full\":%s,\"consumers\":%d,\"backfill_s\":%.1f",
		       first ? "" : ",", g->name, g->ncourses, learners, g->n, f.o, f.se_o, f.p,
		       f.se_p, f.r2, f.rmse, a.batch, a.min_overhead, a.max_failure, a.batch_ms,
		       a.overhead, a.full, a.conflict ? "true" : "false",
		       a.few_full ? "true" : "false", o->consumers, backfill);
		if (o->arrival >= 0)
			printf(",\"cycle\":{\"arrival_per_s\":%g,\"O_s\":%.3f,\"P\":%.4f,"
			       "\"doom\":%s,\"T_s\":%.1f}",
			       o->arrival, orun, P, cyc ? "true" : "false", cyc ? -1.0 : T);
		printf("}");
		return;
	}
	printf("%-10s %7zu %9ld %6zu %8.1f±%-6.1f %7.4f±%-7.4f %5.3f %7ld %7ld %7ld %8.1f %6.1f%% "
	       "%5.0f%% %10.0f\n",
	       g->name, g->ncourses, learners, g->n, f.o, f.se_o, f.p, f.se_p, f.r2, a.batch,
	       a.min_overhead, a.max_failure, a.batch_ms / 1000, a.overhead * 100, a.full * 100,
	       backfill);
	if (a.conflict)
		printf("  %s: overhead under %.0f%% needs batches of %ld or more, but a failure"
		       " under %.0f s allows at most %ld: the failure target wins\n",
		       g->name, o->crit.overhead_share * 100, a.min_overhead,
		       o->crit.failure_cost_s, a.max_failure);
	if (a.few_full)
		printf("  %s: only %.0f%% of batches would be full at %ld (enrollments too small"
		       " for the batch)\n",
		       g->name, a.full * 100, a.batch);
	if (o->arrival >= 0) {
		if (cyc)
			printf("  %s: WARNING cycle of doom: P = %.3f ms/learner x %g learners/s / %d"
			       " consumers = %.2f >= 1; a periodic run never catches up (add"
			       " consumers or cut per-learner time)\n",
			       g->name, f.p, o->arrival, o->consumers, P);
		else
			printf("  %s: periodic run: O = %.2f s, P = %.3f, stable T = O/(1-P) = %.1f s\n",
			       g->name, orun, P, T);
	}
}

/* --iterations R: the loop's own T = O + c * learners fitted over R's
 * recorded --follow iterations (what the jobs' fit misses: the selection,
 * publishing, the wait, and how the consumers share an iteration's jobs);
 * P = c * the arrival rate (gradeq_fit_loop: instrumented by each
 * iteration's arrival rate, then fitted again near the operating point). */
static int print_loop(struct gradeq_store *st, const struct plan_opts *o, bool json)
{
	double *x = NULL, *y = NULL, *z = NULL;
	struct gradeq_loop_fit lf;
	const struct gradeq_fit *f = &lf.fit;
	const char *how;
	char near[64] = "";
	size_t n = 0;
	int rc = gradeq_follow_samples(st, o->iter_release, &x, &y, &z, &n);

	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++)
		y[i] *= 1000; /* ms, as the jobs' fit */
	rc = gradeq_fit_loop(x, y, z, n, o->arrival, &lf);
	if (rc == GRADEQ_ERR_NOMEM)
		goto out;
	if (rc) {
		rc = 0;
		if (json)
			printf(",\"loop\":{\"release\":\"%s\",\"iterations\":%zu,\"fit\":null}",
			       o->iter_release, n);
		else
			printf("loop %s: %zu iterations that published: not enough to fit (they"
			       " need different sizes: run --follow under two arrival rates)\n",
			       o->iter_release, n);
		goto out;
	}
	how = lf.iv ? "instrumented by arrival rate" : "least squares";
	if (lf.near > 0)
		snprintf(near, sizeof(near), ", near %.0f learners an iteration", lf.near);
	if (json)
		printf(",\"loop\":{\"release\":\"%s\",\"iterations\":%zu,\"fit\":{\"O_s\":%.4f,"
		       "\"O_se_s\":%.4f,\"per_learner_ms\":%.5f,\"per_learner_se\":%.5f,\"r2\":%.4f,"
		       "\"method\":\"%s\",\"points\":%zu,\"near_learners\":%.1f},"
		       "\"arrival_per_s\":%g,\"P\":%.4f,\"doom\":%s,\"T_s\":%.3f}",
		       o->iter_release, n, lf.O, f->se_o / 1000, f->p, f->se_p, f->r2,
		       lf.iv ? "iv" : "ols", f->n, lf.near, o->arrival, lf.P,
		       lf.doom ? "true" : "false", lf.doom ? -1.0 : lf.T);
	else if (lf.doom)
		printf("loop %s (%zu iterations, %s%s: seconds = %.3f + %.4f ms x learners, r2 %.2f):"
		       " WARNING cycle of doom: P = %.3f >= 1 at %g learners/s; a periodic run never"
		       " catches up (add consumers or cut per-learner time)\n",
		       o->iter_release, n, how, near, lf.O, f->p, f->r2, lf.P, o->arrival);
	else
		printf("loop %s (%zu iterations, %s%s: seconds = %.3f + %.4f ms x learners, r2 %.2f):"
		       " O = %.3f s, P = %.3f at %g learners/s, stable T = O/(1-P) = %.3f s\n",
		       o->iter_release, n, how, near, lf.O, f->p, f->r2, lf.O, lf.P, o->arrival,
		       lf.T);
out:
	free(x);
	free(y);
	free(z);
	return rc;
}

static int write_plot(const struct plan_opts *o, const struct group *g, size_t ng)
{
	FILE *gp = popen("gnuplot", "w");
	int st;

	if (!gp)
		return gradeq_error(GRADEQ_ERR_IO, "cannot run gnuplot");
	fprintf(gp,
		"set terminal pngcairo size 1000,650 noenhanced\nset output '%s'\n"
		"set xlabel 'learners in batch'\nset ylabel 'batch ms'\nset key left top\n"
		"plot ",
		o->plot);
	for (size_t i = 0; i < ng; i++) {
		struct gradeq_fit f;

		fprintf(gp, "%s'-' with points title '%s'", i ? ", " : "", g[i].name);
		if (gradeq_fit_linear(g[i].x, g[i].y, g[i].n, &f) == 0)
			fprintf(gp, ", %g + %g * x with lines title '%s fit'", f.o, f.p, g[i].name);
	}
	fputc('\n', gp);
	for (size_t i = 0; i < ng; i++) {
		for (size_t k = 0; k < g[i].n; k++)
			fprintf(gp, "%g %g\n", g[i].x[k], g[i].y[k]);
		fputs("e\n", gp);
	}
	st = pclose(gp);
	if (st != 0)
		return gradeq_error(GRADEQ_ERR_IO, "gnuplot failed writing '%s'", o->plot);
	return 0;
}

int gradeq_plan_main(struct gradeq_cli *cli, struct gradeq_store *st, int argc, char **argv,
		     bool json)
{
	static const struct option opts[] = {
		{"course", required_argument, NULL, 'C'},
		{"size-class", required_argument, NULL, 'S'},
		{"consumers", required_argument, NULL, 'n'},
		{"plot", required_argument, NULL, 'P'},
		{"overhead-share", required_argument, NULL, 'o'},
		{"failure-cost", required_argument, NULL, 'f'},
		{"arrival-rate", required_argument, NULL, 'a'},
		{"loop-overhead", required_argument, NULL, 'L'},
		{"iterations", required_argument, NULL, 'I'},
		{NULL, 0, NULL, 0},
	};
	struct plan_opts o;
	struct group g[3];
	size_t ng = 0;
	double v;
	int opt, rc, status = 1;

	memset(&o, 0, sizeof(o));
	memset(g, 0, sizeof(g));
	o.consumers = 2;
	o.arrival = -1;
	o.crit.overhead_share = 0.05;
	o.crit.failure_cost_s = 60;
	o.crit.full_share = 0.5;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'C': o.course = optarg; break;
		case 'S':
			if (strcmp(optarg, "small") && strcmp(optarg, "medium") &&
			    strcmp(optarg, "large")) {
				gradeq_cli_error(cli,
						 "--size-class must be small, medium or large");
				return 2;
			}
			o.cls = optarg;
			break;
		case 'n':
			if (gradeq_cli_parse_double(cli, "--consumers", optarg, 1, 100000, &v))
				return 2;
			o.consumers = (int)v;
			break;
		case 'P': o.plot = optarg; break;
		case 'o':
			if (gradeq_cli_parse_double(cli, "--overhead-share", optarg, 0.0001, 0.9999,
						    &o.crit.overhead_share))
				return 2;
			break;
		case 'f':
			if (gradeq_cli_parse_double(cli, "--failure-cost", optarg, 0.001, 1e7,
						    &o.crit.failure_cost_s))
				return 2;
			break;
		case 'a':
			if (gradeq_cli_parse_double(cli, "--arrival-rate", optarg, 0, 1e9,
						    &o.arrival))
				return 2;
			break;
		case 'L':
			if (gradeq_cli_parse_double(cli, "--loop-overhead", optarg, 0, 1e6,
						    &o.loop_s))
				return 2;
			break;
		case 'I': o.iter_release = optarg; break;
		default: return 2;
		}
	}
	if (o.iter_release && o.arrival < 0) {
		gradeq_cli_error(cli, "plan: --iterations goes with --arrival-rate");
		return 2;
	}
	if (optind < argc || (o.course && o.cls)) {
		gradeq_cli_error(cli,
				 optind < argc ? "plan: unexpected argument '%s'"
					       : "plan: give --course or --size-class, not both%s",
				 optind < argc ? argv[optind] : "");
		return 2;
	}
	rc = load_groups(st, &o, g, &ng);
	if (rc) {
		gradeq_cli_error(cli, "%s", gradeq_errmsg(rc));
		goto out;
	}
	if (json) {
		printf("{\"criteria\":{\"overhead_share\":%g,\"failure_cost_s\":%g,\"full_share\":%g},"
		       "\"classes\":{\"small\":\"< %d sequentials\",\"medium\":\"< %d\","
		       "\"large\":\">= %d\"},\"groups\":[",
		       o.crit.overhead_share, o.crit.failure_cost_s, o.crit.full_share,
		       GRADEQ_PLAN_SMALL_MAX, GRADEQ_PLAN_MEDIUM_MAX, GRADEQ_PLAN_MEDIUM_MAX);
	} else {
		printf("criteria: overhead under %.0f%% of a batch, one failure costs under %.0f s,"
		       " at least %.0f%% of batches full; %d consumers\n"
		       "classes by sequentials: small < %d, medium < %d, large >= %d\n"
		       "fit: batch ms = O + p * learners over complete jobs (± standard error)\n\n",
		       o.crit.overhead_share * 100, o.crit.failure_cost_s, o.crit.full_share * 100,
		       o.consumers, GRADEQ_PLAN_SMALL_MAX, GRADEQ_PLAN_MEDIUM_MAX,
		       GRADEQ_PLAN_MEDIUM_MAX);
		printf("%-10s %7s %9s %6s %15s %16s %5s %7s %7s %7s %8s %7s %6s %10s\n", "group",
		       "courses", "learners", "jobs", "O_ms", "p_ms/learner", "r2", "batch",
		       ">=ovh", "<=fail", "batch_s", "ovh", "full", "backfill_s");
	}
	for (size_t i = 0; i < ng; i++)
		print_group(&o, &g[i], json, i == 0);
	if (json)
		printf("]");
	else if (ng == 0)
		printf("(no courses)\n");
	if (o.iter_release) {
		rc = print_loop(st, &o, json);
		if (rc) {
			if (json)
				printf("}\n");
			gradeq_cli_error(cli, "%s", gradeq_errmsg(rc));
			goto out;
		}
	}
	if (json)
		printf("}\n");
	if (o.plot) {
		rc = write_plot(&o, g, ng);
		if (rc) {
			gradeq_cli_error(cli, "%s", gradeq_errmsg(rc));
			goto out;
		}
	}
	status = 0;
out:
	for (size_t i = 0; i < ng; i++) {
		free(g[i].x);
		free(g[i].y);
		free(g[i].enr);
	}
	return status;
}
