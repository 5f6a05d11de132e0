/* gradeq-consumer: the daemon that grades a release's jobs. Commits the
 * grades, then acks; transient failures go to the next retry tier,
 * permanent ones to the dead queue with the reason; survives the broker
 * and the database going away. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gradeq/cli.h"
#include "gradeq/consumer.h"
#include "gradeq/log.h"
#include "gradeq/notify.h"
#include "gradeq/reader.h"
#include "gradeq/release.h"
#include "gradeq/worker.h"

static const char usage[] =
	"Usage: gradeq-consumer [OPTIONS] --release R\n"
	"\n"
	"Consume the release's work queue: grade each job's learners, commit their\n"
	"grade rows, then ack. Failed jobs go to the retry tiers, then to the dead\n"
	"queue gradeq.grades.R.dead with the reason in their headers.\n"
	"\n"
	"Options:\n"
	"  -c, --config FILE   configuration file (default " GRADEQ_DEFAULT_CONF ")\n"
	"  -r, --release R     release whose queue to consume (default: release in the\n"
	"                      config, else the promoted one)\n"
	"  -p, --prefetch N    deliveries in flight (default: prefetch in the config, 1)\n"
	"  -d, --drain         exit 0 once the work queue and its retry tiers hold no\n"
	"                      ready and no unacknowledged messages\n"
	"  -h, --help          this text\n"
	"  -V, --version       print the version\n"
	"\n"
	"Signals: SIGTERM or SIGINT finish the job in hand, ack it and exit 0; a\n"
	"second one exits at once (the broker redelivers). SIGHUP reopens the log\n"
	"file and applies the settings gradeq.conf(5) marks reload (statement_timeout_ms,\n"
	"log_level, job_events, ...); the others are logged as needing a restart.\n"
	"\n"
	"Environment: GRADEQ_AMQP_URL (one URL, or a comma-separated list of a cluster's\n"
	"nodes) and GRADEQ_PG_DSN override the configuration.\n"
	"GRADEQ_TEST_ABORT_COURSE=ID (tests only) aborts the process on a job of course ID.\n"
	"GRADEQ_TEST_ABORT_AFTER_COMMIT=1 (tests only) aborts it after a group's commit, before\n"
	"its ack.\n";

static volatile sig_atomic_t stop_requested, reload_requested;

static void on_stop(int sig)
{
	(void)sig;
	if (stop_requested)
		_exit(1);
	stop_requested = 1;
}

static void on_hup(int sig)
{
	(void)sig;
	reload_requested = 1;
}

/* SIGHUP: reopens the log file and applies every setting a reload may
 * change; the others keep their value until a restart, and a file that
 * does not load keeps the whole old configuration. A new statement timeout
 * takes a new database session, which sets it when it connects. */
static void reload(struct gradeq_consumer *c)
{
	struct gradeq_config *cfg = NULL;
	char err[600] = "", applied[400], restart[400];
	int level, timeout = c->cli.cfg->statement_timeout_ms;

	reload_requested = 0;
	gradeq_notify("RELOADING=1");
	if (gradeq_config_load(c->cli.conf_path, &cfg, err, sizeof(err))) {
		log_error("event=reload_failed error=\"%s\" keeping=old", err);
		gradeq_notify("READY=1");
		return;
	}
	gradeq_config_reload(c->cli.cfg, cfg, applied, sizeof(applied), restart, sizeof(restart));
	gradeq_config_free(cfg);
	level = gradeq_log_level_parse(c->cli.cfg->log_level);
	if (gradeq_log_init(c->cli.prog, level < 0 ? GRADEQ_LOG_INFO : level, c->cli.cfg->log_file))
		log_error("event=log_reopen_failed error=\"%s\"", gradeq_errmsg(GRADEQ_ERR_IO));
	if (restart[0])
		log_warn("event=reload_needs_restart settings=%s keeping=old", restart);
	log_info("event=reloaded changed=%s", applied[0] ? applied : "none");
	if (c->cli.cfg->statement_timeout_ms != timeout && c->st) {
		int rc;

		gradeq_store_free(c->st);
		c->st = NULL;
		rc = gradeq_consumer_connect_db(c);
		if (rc)
			log_warn("event=reconnect_failed what=database error=\"%s\"",
				 gradeq_errmsg(rc));
	}
	gradeq_notify("READY=1");
}

/* A release the registry has never seen is most likely a typo: nothing
 * publishes to it until someone promotes it or publishes to it by name. */
static void warn_unknown(struct gradeq_consumer *c)
{
	enum gradeq_release_state state;

	if (gradeq_release_get(c->st, c->release, &state) == GRADEQ_ERR_NOT_FOUND)
		log_warn("event=release_unknown release=%s msg=\"the release registry has never "
			 "seen this release: check the name, or promote it\"",
			 c->release);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"release", required_argument, NULL, 'r'},
		{"prefetch", required_argument, NULL, 'p'},
		{"drain", no_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct gradeq_consumer c;
	const char *release = NULL, *prefetch = NULL;
	struct sigaction sa;
	int opt, rc, status = 1, bad = 0;

	memset(&c, 0, sizeof(c));
	c.cli.prog = "gradeq-consumer";
	c.stop_requested = &stop_requested;
	c.reload_requested = &reload_requested;
	c.reload = reload;
	while (!bad && (opt = getopt_long(argc, argv, "c:r:p:dhV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			bad = gradeq_cli_once(&c.cli, "--config", &c.cli.conf_path, optarg);
			break;
		case 'r': bad = gradeq_cli_once(&c.cli, "--release", &release, optarg); break;
		case 'p': bad = gradeq_cli_once(&c.cli, "--prefetch", &prefetch, optarg); break;
		case 'd': c.drain = true; break;
		case 'h': fputs(usage, stdout); return 0;
		case 'V': puts("gradeq-consumer " GRADEQ_VERSION); return 0;
		default: fputs("Try 'gradeq-consumer --help'.\n", stderr); return 2;
		}
	}
	if (bad)
		return bad;
	if (optind < argc) {
		gradeq_cli_error(&c.cli, "unexpected argument '%s'", argv[optind]);
		return 2;
	}
	if (gradeq_cli_check_release(&c.cli, "--release", release))
		return 2;
	if (gradeq_cli_init(&c.cli))
		return 1;
	c.prefetch = c.cli.cfg->prefetch;
	if (prefetch &&
	    gradeq_cli_parse_int(&c.cli, "--prefetch", prefetch, 1, 65535, &c.prefetch)) {
		status = 2;
		goto out;
	}
	if (!release)
		release = c.cli.cfg->release;
	gethostname(c.host, sizeof(c.host) - 1);
	snprintf(c.consumer_id, sizeof(c.consumer_id), "%s:%ld", c.host, (long)getpid());
	srand((unsigned)(time(NULL) ^ getpid()));
	memset(&sa, 0, sizeof(sa));
	sa.sa_flags = SA_RESTART;
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	c.abort_course = getenv("GRADEQ_TEST_ABORT_COURSE");
	if (c.abort_course && !*c.abort_course)
		c.abort_course = NULL;
	c.abort_after_commit = getenv("GRADEQ_TEST_ABORT_AFTER_COMMIT") != NULL;
	c.w = gradeq_worker_new(c.cli.cfg->course_cache, c.consumer_id);
	if (!c.w)
		goto out;
	/* pg_read_dsn: course loads and score reads from a hot standby */
	gradeq_worker_set_reader(c.w, gradeq_reader_new(c.cli.cfg, "gradeq-consumer-standby"));
	if (release) {
		snprintf(c.release, sizeof(c.release), "%s", release);
		rc = gradeq_consumer_connect_db(&c);
		if (rc) {
			gradeq_cli_error(&c.cli, "%s", gradeq_errmsg(rc));
			goto out;
		}
		warn_unknown(&c);
	} else {
		rc = gradeq_consumer_connect_db(&c);
		if (!rc)
			rc = gradeq_release_resolve(c.st, NULL, c.release, sizeof(c.release));
		if (rc) {
			gradeq_cli_error(&c.cli, "%s", gradeq_errmsg(rc));
			goto out;
		}
	}
	rc = gradeq_consumer_run(&c);
	if (rc && !(rc == GRADEQ_ERR_INTERRUPTED && stop_requested)) {
		gradeq_cli_error(&c.cli, "%s", gradeq_errmsg(rc));
		goto out;
	}
	status = 0;
out:
	gradeq_consumer_disconnect(&c);
	gradeq_store_free(c.st);
	gradeq_worker_free(c.w);
	gradeq_cli_release(&c.cli);
	return status;
}
