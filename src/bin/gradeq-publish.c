/* gradeq-publish: cuts each course's enrollments into batches of explicit
 * user ids and publishes one job per batch, confirmed by the broker. The
 * work is the publisher module's (publisher.h); this program reads the
 * command line and reports. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gradeq/cli.h"
#include "gradeq/follow.h"
#include "gradeq/job.h"
#include "gradeq/parse.h"
#include "gradeq/publisher.h"

static const char usage[] =
	"Usage: gradeq-publish [OPTIONS] (--course ID [--course ID ...] | --all-courses)\n"
	"\n"
	"Cut each course's enrollments into batches of explicit user ids and publish\n"
	"one grading job per batch to the release's work queue. A job counts as\n"
	"published only once the broker confirmed it. Prints the run id.\n"
	"\n"
	"Options:\n"
	"  -c, --config FILE     configuration file (default " GRADEQ_DEFAULT_CONF ")\n"
	"  -r, --release R       release to publish to (default: the promoted one);\n"
	"                        a release never seen before is recorded as active\n"
	"  -C, --course ID       a course to grade (repeatable; counted once)\n"
	"  -a, --all-courses     every course of the courses table\n"
	"  -b, --batch-size N    learners per job (default: batch_size in the config, 100)\n"
	"      --active-only     only active enrollments (default: all, as the platform)\n"
	"      --incremental     only learners whose score rows changed since the\n"
	"                        previous incremental run of this release (its\n"
	"                        watermark, per course, recorded once every job is\n"
	"                        confirmed), and new enrollments; every learner of a\n"
	"                        course whose version or grading policy changed, or\n"
	"                        that has no watermark yet, is compared with the\n"
	"                        stored grades: no grade, another version or policy,\n"
	"                        or score rows modified after it\n"
	"      --rescan          with --incremental: compare every learner, as for a\n"
	"                        course without a watermark (grade rows deleted by\n"
	"                        hand), and record a new watermark\n"
	"      --changed-since T as --incremental, but score rows modified after T (a\n"
	"                        PostgreSQL timestamp, e.g. '2026-01-31 04:00Z')\n"
	"      --follow          run --incremental again and again as a daemon: each\n"
	"                        run waits for the previous one's jobs to finish;\n"
	"                        each iteration recorded (gradeq-admin status) and\n"
	"                        logged; SIGTERM finishes the iteration in hand\n"
	"      --every DUR       with --follow: the least time from one iteration's\n"
	"                        start to the next (default 60s; 0: back to back)\n"
	"      --wait            after publishing, wait until the run's jobs are over\n"
	"                        (consumers running elsewhere grade them); exit 1\n"
	"                        unless the run completed\n"
	"  -n, --dry-run         count jobs and learners, publish and record nothing\n"
	"                        (no run: run_id null in --json)\n"
	"      --json            one JSON object on stdout (republished: jobs published\n"
	"                        again after a lost connection)\n"
	"  -q, --quiet           no progress lines\n"
	"  -h, --help            this text\n"
	"  -V, --version         print the version\n"
	"\n"
	"Environment: GRADEQ_AMQP_URL (one URL, or a comma-separated list of a cluster's\n"
	"nodes) and GRADEQ_PG_DSN override the configuration.\n"
	"Exit status: 0 when every job was confirmed, 1 on error (one line on stderr),\n"
	"2 on bad usage.\n";

static bool following, waiting;

static void on_signal(int sig)
{
	(void)sig;
	if (following)
		gradeq_follow_stop();
	else if (waiting) { /* stop waiting */
		gradeq_follow_stop();
		gradeq_follow_stop();
	} else
		gradeq_publish_interrupt();
}

static const struct option opts[] = {
	{"config", required_argument, NULL, 'c'},
	{"release", required_argument, NULL, 'r'},
	{"course", required_argument, NULL, 'C'},
	{"all-courses", no_argument, NULL, 'a'},
	{"batch-size", required_argument, NULL, 'b'},
	{"active-only", no_argument, NULL, 'A'},
	{"dry-run", no_argument, NULL, 'n'},
	{"json", no_argument, NULL, 'j'},
	{"quiet", no_argument, NULL, 'q'},
	{"help", no_argument, NULL, 'h'},
	{"incremental", no_argument, NULL, 'I'},
	{"changed-since", required_argument, NULL, 'S'},
	{"rescan", no_argument, NULL, 'R'},
	{"follow", no_argument, NULL, 'F'},
	{"every", required_argument, NULL, 'E'},
	{"wait", no_argument, NULL, 'W'},
	{"version", no_argument, NULL, 'V'},
	{NULL, 0, NULL, 0},
};

/* A course named twice is graded once. */
static void add_course(struct gradeq_publish_options *o, char **want, char *course)
{
	int i = 0;

	while (i < o->ncourses && strcmp(want[i], course) != 0)
		i++;
	if (i == o->ncourses)
		want[o->ncourses++] = course;
}

/* Reads the options into o; -1 to go on, else the exit status. */
static int parse_args(struct gradeq_cli *cli, struct gradeq_publish_options *o, char **want,
		      bool *json, const char **batch, const char **every, int argc, char **argv)
{
	int opt, bad = 0;

	while (!bad && (opt = getopt_long(argc, argv, "c:r:C:ab:nqhV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': bad = gradeq_cli_once(cli, "--config", &cli->conf_path, optarg); break;
		case 'r': bad = gradeq_cli_once(cli, "--release", &o->release, optarg); break;
		case 'C': add_course(o, want, optarg); break;
		case 'a': o->all = true; break;
		case 'b': bad = gradeq_cli_once(cli, "--batch-size", batch, optarg); break;
		case 'A': o->active_only = true; break;
		case 'I': o->incremental = true; break;
		case 'S':
			o->incremental = true;
			bad = gradeq_cli_once(cli, "--changed-since", &o->changed_since, optarg);
			break;
		case 'R': o->rescan = true; break;
		case 'F': following = true; break;
		case 'E': bad = gradeq_cli_once(cli, "--every", every, optarg); break;
		case 'W': waiting = true; break;
		case 'n': o->dry_run = true; break;
		case 'j': *json = true; break;
		case 'q': o->quiet = true; break;
		case 'h': fputs(usage, stdout); return 0;
		case 'V': puts("gradeq-publish " GRADEQ_VERSION); return 0;
		default: fputs("Try 'gradeq-publish --help'.\n", stderr); return 2;
		}
	}
	if (bad)
		return bad;
	if (following && (o->changed_since || o->rescan || o->dry_run || *json)) {
		gradeq_cli_error(cli, "--follow goes without --changed-since, --rescan, --dry-run"
				      " and --json");
		return 2;
	}
	if (waiting && (following || o->dry_run)) {
		gradeq_cli_error(cli, "--wait goes without --follow and --dry-run");
		return 2;
	}
	if (*every && !following) {
		gradeq_cli_error(cli, "--every goes with --follow");
		return 2;
	}
	o->incremental = o->incremental || following;
	o->lazy_run = following;
	if (o->rescan && (!o->incremental || o->changed_since)) {
		gradeq_cli_error(cli, "--rescan goes with --incremental (not --changed-since)");
		return 2;
	}
	if (optind < argc || (o->all == (o->ncourses > 0))) {
		gradeq_cli_error(cli,
				 optind < argc ? "unexpected argument '%s'"
					       : "give --course ID (repeatable) or --all-courses",
				 optind < argc ? argv[optind] : "");
		return 2;
	}
	/* before anything is read, registered or declared */
	if (gradeq_cli_check_release(cli, "--release", o->release))
		return 2;
	return -1;
}

/* state and done_s: the run's end with --wait (else NULL). */
static void report(const struct gradeq_publish_options *o, const struct gradeq_publish_result *r,
		   bool json, const char *state, double done_s)
{
	if (json && state)
		printf("{\"state\":\"%s\",\"done_seconds\":%.4f,", state, done_s);
	else if (json)
		putchar('{');
	if (json)
		printf("\"run_id\":%s%s%s,\"release\":\"%s\",\"courses\":%ld,\"jobs\":%ld,"
		       "\"learners\":%ld,\"batch_size\":%d,\"dry_run\":%s,\"republished\":%ld,\"seconds\":%.3f,"
		       "\"select_seconds\":%.4f,\"window_from\":%s%s%s,\"window_to\":%s%s%s}\n",
		       o->dry_run ? "" : "\"", o->dry_run ? "null" : r->run_id,
		       o->dry_run ? "" : "\"", r->release, r->courses, r->jobs, r->learners,
		       o->batch_size, o->dry_run ? "true" : "false", r->republished, r->seconds,
		       r->select_seconds, r->window_from[0] ? "\"" : "",
		       r->window_from[0] ? r->window_from : "null", r->window_from[0] ? "\"" : "",
		       r->window_to[0] ? "\"" : "", r->window_to[0] ? r->window_to : "null",
		       r->window_to[0] ? "\"" : "");
	else if (o->dry_run)
		printf("dry run: %ld courses, %ld jobs, %ld learners for release %s\n", r->courses,
		       r->jobs, r->learners, r->release);
	else
		printf("%s\npublished %ld jobs (%ld learners, %ld courses) to release %s\n",
		       r->run_id, r->jobs, r->learners, r->courses, r->release);
	if (!json && state)
		printf("run %s after %.3f s\n", state, done_s);
}

static double mono(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Publishes, and with --wait waits for the run's end: the exit status. */
static int publish(struct gradeq_cli *cli, const struct gradeq_publish_options *o, bool json)
{
	struct gradeq_publish_result r;
	struct gradeq_run_wait *w = NULL;
	char state[32] = "";
	double t0 = mono();
	int rc = waiting ? gradeq_run_wait_open(cli, o->release, &w) : 0;

	if (!rc)
		rc = gradeq_publish_run(cli, o, &r);
	if (!rc && w)
		rc = gradeq_run_wait(w, r.run_id, state, sizeof(state));
	gradeq_run_wait_free(w);
	if (rc) {
		gradeq_cli_error(cli, "%s", gradeq_errmsg(rc));
		return 1;
	}
	report(o, &r, json, waiting ? state : NULL, mono() - t0);
	return !waiting || strcmp(state, "complete") == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct gradeq_cli cli = {.prog = "gradeq-publish"};
	struct gradeq_publish_options o = {0};
	char **want = calloc((size_t)argc + 1, sizeof(*want));
	const char *batch = NULL, *every = NULL;
	long every_s = 60;
	struct sigaction sa;
	bool json = false;
	int status = 1, rc;

	if (!want)
		return 1;
	o.courses = want;
	status = parse_args(&cli, &o, want, &json, &batch, &every, argc, argv);
	if (status >= 0)
		goto out;
	status = 1;
	if (gradeq_cli_init(&cli))
		goto out;
	o.batch_size = cli.cfg->batch_size;
	if (batch && gradeq_cli_parse_int(&cli, "--batch-size", batch, 1, GRADEQ_JOB_MAX_USERS,
					  &o.batch_size)) {
		status = 2;
		goto out;
	}
	if (every && gradeq_parse_duration(every, &every_s)) {
		gradeq_cli_error(&cli, "--every: expected %s, got '%s'", GRADEQ_DURATION_RULE,
				 every);
		status = 2;
		goto out;
	}
	o.quiet = o.quiet || json || following;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (following) {
		rc = gradeq_follow_run(&cli, &o, every_s);
		if (rc)
			gradeq_cli_error(&cli, "%s", gradeq_errmsg(rc));
		status = rc ? 1 : 0;
		goto out;
	}
	status = publish(&cli, &o, json);
out:
	gradeq_cli_release(&cli);
	free(want);
	return status;
}
