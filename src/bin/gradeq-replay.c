/* gradeq-replay: inspect, replay, export, import and purge the dead letters
 * of a release, selectively and at a controlled rate. The work is the
 * dead-letter module's (deadletters.h); this program reads the command line
 * and reports. */
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradeq/cli.h"
#include "gradeq/deadletters.h"
#include "gradeq/msgfile.h"
#include "gradeq/parse.h"

#define PROG "gradeq-replay"
#define FILE_FORMAT GRADEQ_MSGFILE_FORMAT

static const char usage[] =
	"Usage: gradeq-replay [OPTIONS] list --release R [FILTERS]\n"
	"       gradeq-replay [OPTIONS] replay --release R [FILTERS] [--to-release R2]\n"
	"                     [--limit N] [--rate N/s] [--dry-run] [--yes] [--force]\n"
	"       gradeq-replay [OPTIONS] export --release R [FILTERS] [--remove] FILE\n"
	"       gradeq-replay [OPTIONS] import FILE [--to-release R2 | --to-dead R]\n"
	"       gradeq-replay [OPTIONS] purge --release R [FILTERS] [--yes]\n"
	"\n"
	"Inspect and act on the dead letters of a release: the messages parked in\n"
	"gradeq.grades.R.dead by the consumers (with the headers gradeq-error,\n"
	"gradeq-error-class, gradeq-failed-at, gradeq-failed-by, gradeq-attempt) or\n"
	"by the broker on the work queue's delivery limit (x-first-death-reason).\n"
	"\n"
	"Commands:\n"
	"  list      one line per parked message (job, course, run, attempts, error\n"
	"            class, error, failed at, age) and a summary by error class and\n"
	"            course. Messages whose body is no job are listed too (size,\n"
	"            headers, first bytes in hex). The queue is left as it was;\n"
	"            a job the broker parked on the delivery limit, whose row\n"
	"            still says pending, is recorded dead (every subcommand does).\n"
	"  replay    publish each matching message to the work queue of the release\n"
	"            (or of --to-release R2), confirmed and mandatory, with\n"
	"            gradeq-attempt reset to 1 and gradeq-replayed-at and\n"
	"            gradeq-replay-count added; the dead copy is acked only after the\n"
	"            broker confirmed the new one. The job goes back to 'pending'\n"
	"            (recorded in gradeq_job_events). A retired or draining release's\n"
	"            jobs go to the promoted release; an unknown release (no registry\n"
	"            entry and no queue) is an error and nothing moves. Messages whose\n"
	"            body is no job are never replayed unless --force.\n"
	"  export    write the matching messages to FILE (a new file; '-': standard\n"
	"            output), one JSON line each with properties, typed headers and\n"
	"            the body in base64, after a header line\n"
	"            {\"format\":\"" FILE_FORMAT "\",\"version\":1,...} and before a\n"
	"            trailer with the record count. The messages stay parked unless\n"
	"            --remove (each is acked once its record is synced to FILE).\n"
	"  import    publish every record of FILE, each confirmed, to the dead queue\n"
	"            of the release named in the file (default), of --to-dead R, or to\n"
	"            the work queue of --to-release R2 (as replay does). Prints the\n"
	"            count, which equals the file's. A job that was purged stays\n"
	"            'discarded' (a final state): consumers ack it without grading.\n"
	"  purge     ack the matching dead messages and mark their jobs 'discarded'.\n"
	"            Without --yes, only says what it would do.\n"
	"\n"
	"Filters (all given must match):\n"
	"      --course ID        the job's course (repeatable: any of them)\n"
	"      --class C          error class: permanent, exhausted, transient, or the\n"
	"                         broker's reason (delivery_limit, rejected, expired)\n"
	"      --run ID           the job's run id\n"
	"      --older-than DUR   failed at least DUR ago: 90s, 15m, 2h, 7d\n"
	"      --reason TEXT      TEXT occurs in the error (case-insensitive)\n"
	"\n"
	"Options:\n"
	"  -c, --config FILE      configuration file (default " GRADEQ_DEFAULT_CONF ")\n"
	"  -r, --release R        release whose dead queue to read\n"
	"      --to-release R2    replay or import into R2's work queue\n"
	"      --to-dead R        import into R's dead queue\n"
	"  -l, --limit N          act on at most N messages\n"
	"      --rate N[/s]       at most N messages a second (a token bucket without\n"
	"                         burst: never more than N in any second)\n"
	"  -n, --dry-run          say what would be done, change nothing\n"
	"  -y, --yes              do not ask (replay asks on a terminal; purge does\n"
	"                         nothing without it)\n"
	"  -f, --force            replay messages whose body is no job too; import a\n"
	"                         file that has no trailer (cut short)\n"
	"      --remove           export: remove the exported messages from the queue\n"
	"      --json             one JSON object on stdout\n"
	"  -q, --quiet            no progress on the terminal\n"
	"  -h, --help             this text\n"
	"  -V, --version          print the version\n"
	"\n"
	"Progress (count, rate, ETA) goes to standard error when it is a terminal.\n"
	"Every command cycles through the messages present when it starts: those it\n"
	"does not take are put back at the tail of the queue, unchanged and in their\n"
	"order (a message is acked only after its copy was confirmed). SIGINT or\n"
	"SIGTERM: nothing more is taken after the message in hand, and the rest of\n"
	"the cycle is completed (fast, no rate limit) so the order holds; a second\n"
	"one stops after the message in hand (nothing lost, but the messages not\n"
	"yet cycled then sit ahead of those that were).\n"
	"\n"
	"Environment: GRADEQ_AMQP_URL (one URL, or a comma-separated list of a cluster's\n"
	"nodes) and GRADEQ_PG_DSN override the configuration.\n"
	"Exit status: 0 on success, 1 on error (one line on stderr), 2 on bad usage,\n"
	"130 when interrupted.\n";

static void on_signal(int sig)
{
	(void)sig;
	gradeq_dl_interrupt();
}

enum {
	OPT_TO_RELEASE = 256,
	OPT_TO_DEAD,
	OPT_COURSE,
	OPT_CLASS,
	OPT_RUN,
	OPT_OLDER,
	OPT_REASON,
	OPT_RATE,
	OPT_REMOVE,
	OPT_JSON,
};

static int usage_error(const struct gradeq_cli *cli, const char *fmt, const char *arg)
{
	char msg[512];

	snprintf(msg, sizeof(msg), fmt, arg);
	gradeq_cli_error(cli, "%s (try '" PROG " --help')", msg);
	return 2;
}

static const struct option opts[] = {
	{"config", required_argument, NULL, 'c'},
	{"release", required_argument, NULL, 'r'},
	{"to-release", required_argument, NULL, OPT_TO_RELEASE},
	{"to-dead", required_argument, NULL, OPT_TO_DEAD},
	{"course", required_argument, NULL, OPT_COURSE},
	{"class", required_argument, NULL, OPT_CLASS},
	{"run", required_argument, NULL, OPT_RUN},
	{"older-than", required_argument, NULL, OPT_OLDER},
	{"reason", required_argument, NULL, OPT_REASON},
	{"limit", required_argument, NULL, 'l'},
	{"rate", required_argument, NULL, OPT_RATE},
	{"dry-run", no_argument, NULL, 'n'},
	{"yes", no_argument, NULL, 'y'},
	{"force", no_argument, NULL, 'f'},
	{"remove", no_argument, NULL, OPT_REMOVE},
	{"json", no_argument, NULL, OPT_JSON},
	{"quiet", no_argument, NULL, 'q'},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},
	{NULL, 0, NULL, 0},
};

/* One option into o; 0, or the exit status of a bad one. */
static int parse_opt(struct gradeq_cli *cli, struct gradeq_dl_options *o, int opt)
{
	switch (opt) {
	case 'c': return gradeq_cli_once(cli, "--config", &cli->conf_path, optarg);
	case 'r': return gradeq_cli_once(cli, "--release", &o->release, optarg);
	case OPT_TO_RELEASE: return gradeq_cli_once(cli, "--to-release", &o->to_release, optarg);
	case OPT_TO_DEAD: return gradeq_cli_once(cli, "--to-dead", &o->to_dead, optarg);
	case OPT_COURSE:
		if (o->f.ncourses == GRADEQ_DL_MAX_COURSES)
			return usage_error(cli, "at most %s --course filters", "64");
		gradeq_cli_add_unique(o->f.courses, &o->f.ncourses, optarg);
		break;
	case OPT_CLASS: return gradeq_cli_once(cli, "--class", &o->f.cls, optarg);
	case OPT_RUN: return gradeq_cli_once(cli, "--run", &o->f.run, optarg);
	case OPT_REASON: return gradeq_cli_once(cli, "--reason", &o->f.reason, optarg);
	case OPT_OLDER:
		if (o->f.older_than >= 0)
			return usage_error(cli, "%s given twice: give it once", "--older-than");
		if (gradeq_parse_duration(optarg, &o->f.older_than))
			return usage_error(cli,
					   "--older-than wants " GRADEQ_DURATION_RULE ", not '%s'",
					   optarg);
		break;
	case 'l':
		if (o->limit >= 0)
			return usage_error(cli, "%s given twice: give it once", "--limit");
		if (gradeq_parse_long(optarg, 0, LONG_MAX, &o->limit))
			return usage_error(cli, "--limit wants a count, not '%s'", optarg);
		break;
	case OPT_RATE:
		if (o->rate > 0)
			return usage_error(cli, "%s given twice: give it once", "--rate");
		if (gradeq_parse_double(optarg, "/s", 0, 1e6, &o->rate) || !(o->rate > 0))
			return usage_error(cli,
					   "--rate wants messages a second like 50 or 50/s, "
					   "not '%s'",
					   optarg);
		break;
	case 'n': o->dry_run = true; break;
	case 'y': o->yes = true; break;
	case 'f': o->force = true; break;
	case OPT_REMOVE: o->remove = true; break;
	case OPT_JSON: o->json = true; break;
	case 'q': o->quiet = true; break;
	case 'h': fputs(usage, stdout); exit(0);
	case 'V': puts(PROG " " GRADEQ_VERSION); exit(0);
	default: fputs("Try '" PROG " --help'.\n", stderr); return 2;
	}
	return 0;
}

/* The combinations the commands refuse; 0 or 2. */
static int check_args(const struct gradeq_cli *cli, const struct gradeq_dl_options *o)
{
	enum gradeq_dl_cmd c = o->cmd;

	if ((c == GRADEQ_DL_EXPORT || c == GRADEQ_DL_IMPORT) != (o->file != NULL))
		return usage_error(cli, "%s",
				   o->file ? "only export and import take a FILE"
					   : "export and import need a FILE");
	if (c != GRADEQ_DL_IMPORT && !o->release)
		return usage_error(cli, "%s", "--release R is needed");
	if (gradeq_cli_check_release(cli, "--release", o->release) ||
	    gradeq_cli_check_release(cli, "--to-release", o->to_release))
		return 2;
	if (o->to_release && o->to_dead)
		return usage_error(cli, "%s", "--to-release and --to-dead exclude each other");
	if (o->to_dead && c != GRADEQ_DL_IMPORT)
		return usage_error(cli, "%s", "--to-dead is for import");
	if (o->to_release && c != GRADEQ_DL_REPLAY && c != GRADEQ_DL_IMPORT)
		return usage_error(cli, "%s", "--to-release is for replay and import");
	if (o->remove && c != GRADEQ_DL_EXPORT)
		return usage_error(cli, "%s", "--remove is for export");
	if (c == GRADEQ_DL_IMPORT && (o->f.ncourses || o->f.cls || o->f.run || o->f.reason ||
				      o->f.older_than >= 0 || o->limit >= 0))
		return usage_error(cli, "%s", "import takes no filters: it imports the whole file");
	return 0;
}

static int parse_args(struct gradeq_cli *cli, struct gradeq_dl_options *o, int argc, char **argv)
{
	const char *cmd = NULL;
	int opt, npos = 0, status;

	o->f.older_than = -1;
	o->limit = -1;
	while ((opt = getopt_long(argc, argv, "c:r:l:nyfqhV", opts, NULL)) != -1)
		if ((status = parse_opt(cli, o, opt)))
			return status;
	for (int i = optind; i < argc; i++) {
		if (npos == 0)
			cmd = argv[i];
		else if (npos == 1)
			o->file = argv[i];
		else
			return usage_error(cli, "unexpected argument '%s'", argv[i]);
		npos++;
	}
	if (!cmd)
		return usage_error(cli, "%s",
				   "a command is needed: list, replay, export, import or purge");
	if (!gradeq_dl_cmd_parse(cmd, &o->cmd))
		return usage_error(cli, "unknown command '%s'", cmd);
	return check_args(cli, o);
}

int main(int argc, char **argv)
{
	struct gradeq_cli cli = {.prog = PROG};
	struct gradeq_dl_options o;
	struct sigaction sa;
	int rc, status;

	memset(&o, 0, sizeof(o));
	status = parse_args(&cli, &o, argc, argv);
	if (status)
		return status;
	if (gradeq_cli_init(&cli))
		return 1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	rc = gradeq_dl_run(&cli, &o);
	if (rc) {
		gradeq_cli_error(&cli, "%s", gradeq_errmsg(rc));
		status = 1;
	} else {
		status = gradeq_dl_interrupted() ? 130 : 0;
	}
	gradeq_cli_release(&cli);
	return status;
}
