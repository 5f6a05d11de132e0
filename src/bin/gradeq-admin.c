/* gradeq-admin: schema, demo data, status and the release registry. Each
 * command is a row of the table below, which --help and dispatch both
 * read; the work is in the library (store, release, status, history,
 * plan, seed). */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gradeq/checkconfig.h"
#include "gradeq/cli.h"
#include "gradeq/events.h"
#include "gradeq/history.h"
#include "gradeq/inputcheck.h"
#include "gradeq/report.h"
#include "gradeq/log.h"
#include "gradeq/plan.h"
#include "gradeq/rebalance.h"
#include "gradeq/release_ops.h"
#include "gradeq/seed.h"
#include "gradeq/states.h"
#include "gradeq/status.h"
#include "gradeq/throttle_cmd.h"

#define PROG "gradeq-admin"

struct admin {
	struct gradeq_cli cli;
	bool json;
	struct gradeq_store *st;
};

/* Prints the error of rc and gives the exit status: 0 or 1. */
static int fail(struct admin *a, int rc)
{
	if (rc)
		gradeq_cli_error(&a->cli, "%s", gradeq_errmsg(rc));
	return rc ? 1 : 0;
}

static int cmd_migrate(struct admin *a, int argc, char **argv)
{
	bool with_input = false;
	const struct gradeq_cli_opt opts[] = {{"--with-input-tables", NULL, &with_input, NULL},
					      {NULL, NULL, NULL, NULL}};
	int applied = 0, version = 0, rc;

	if (gradeq_cli_scan(&a->cli, "migrate", "unknown option", argc, argv, 1, opts, NULL, false))
		return 2;
	rc = gradeq_store_migrate(a->st, with_input, &applied);
	if (!rc)
		rc = gradeq_store_schema_version(a->st, &version);
	if (rc)
		return fail(a, rc);
	if (a->json)
		printf("{\"applied\":%d,\"version\":%d}\n", applied, version);
	else
		printf("schema at version %d (%d migration%s applied)\n", version, applied,
		       applied == 1 ? "" : "s");
	return 0;
}

static int cmd_status(struct admin *a, int argc, char **argv)
{
	const char *run = NULL;
	bool watch = false;
	const struct gradeq_cli_opt opts[] = {{"--watch", "-w", &watch, NULL},
					      {NULL, NULL, NULL, NULL}};

	if (gradeq_cli_scan(&a->cli, "status", "unexpected argument", argc, argv, 1, opts, &run,
			    false))
		return 2;
	if (run && gradeq_status_run_known(a->st, run)) {
		gradeq_cli_error(&a->cli, "unknown run '%s'", run);
		return 1;
	}
	if (!watch)
		return fail(a, gradeq_status_print(&a->cli, a->st, run, a->json, false, stdout));
	return fail(a, gradeq_status_watch(&a->cli, a->st, run, a->json, gradeq_cli_catch_stop()));
}

/* The state machines, from the one table the code and the database's
 * transition trigger share (src/states.c). */
static int cmd_states(struct admin *a, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return fail(a, gradeq_states_print(stdout, a->json));
}

static int cmd_check_config(struct admin *a, int argc, char **argv)
{
	return gradeq_check_config(a->cli.prog, argc > 1 ? argv[1] : a->cli.conf_path, a->json,
				   stdout, stderr)
		       ? 1
		       : 0;
}

static int cmd_check_input(struct admin *a, int argc, char **argv)
{
	int missing = 0, rc;

	(void)argc;
	(void)argv;
	rc = gradeq_check_input(a->st, a->json, stdout, &missing);
	if (rc)
		return fail(a, rc);
	if (missing)
		gradeq_cli_error(&a->cli, "%d index%s gradeq relies on missing on the input tables",
				 missing, missing == 1 ? "" : "es");
	return missing ? 1 : 0;
}

static int cmd_seed(struct admin *a, int argc, char **argv)
{
	return gradeq_seed_main(&a->cli, a->st, argc, argv, a->json);
}

static int cmd_plan(struct admin *a, int argc, char **argv)
{
	return gradeq_plan_main(&a->cli, a->st, argc, argv, a->json);
}

static int cmd_throttle(struct admin *a, int argc, char **argv)
{
	return gradeq_throttle_main(&a->cli, a->st, argc, argv, a->json);
}

static int cmd_events(struct admin *a, int argc, char **argv)
{
	struct gradeq_broker *b = NULL;
	const char *run = NULL, *n = NULL;
	const struct gradeq_cli_opt opts[] = {
		{"--run", NULL, NULL, &run}, {"--count", NULL, NULL, &n}, {NULL, NULL, NULL, NULL}};
	long count = 0;
	int rc;

	if (gradeq_cli_scan(&a->cli, "events", "unexpected argument", argc, argv, 1, opts, NULL,
			    false) ||
	    (n && gradeq_cli_parse_long(&a->cli, "--count", n, 1, 1000000000L, &count)))
		return 2;
	rc = gradeq_broker_open(a->cli.cfg, a->cli.prog, NULL, GRADEQ_BROKER_CONSUME, &b);
	if (!rc)
		rc = gradeq_events_follow(b, run, a->json, count, gradeq_cli_catch_stop());
	gradeq_broker_free(b);
	return fail(a, rc);
}

static int cmd_cancel(struct admin *a, int argc, char **argv)
{
	enum gradeq_run_state was;
	const char *run = NULL;
	bool yes = false;
	const struct gradeq_cli_opt opts[] = {{"--yes", "-y", &yes, NULL},
					      {NULL, NULL, NULL, NULL}};
	int rc;

	if (gradeq_cli_scan(&a->cli, "cancel", "unexpected argument", argc, argv, 1, opts, &run,
			    true))
		return 2;
	if (!run) {
		gradeq_cli_error(&a->cli, "usage: gradeq-admin cancel RUN [--yes]");
		return 2;
	}
	if (!gradeq_cli_confirm(&a->cli, "Cancel the run's pending jobs?", yes))
		return isatty(STDIN_FILENO) ? 1 : 2; /* declined, or not asked */
	rc = gradeq_history_cancel(a->st, run, PROG, &was);
	if (rc)
		return fail(a, rc);
	if (a->json)
		printf("{\"run_id\":\"%s\",\"state\":\"canceled\"}\n", run);
	else
		printf("run %s canceled\n", run);
	return 0;
}

static int cmd_purge_history(struct admin *a, int argc, char **argv)
{
	const char *older = NULL;
	bool yes = false;
	const struct gradeq_cli_opt opts[] = {{"--yes", "-y", &yes, NULL},
					      {"--older-than", NULL, NULL, &older},
					      {NULL, NULL, NULL, NULL}};
	long secs = 0, runs = 0, outputs = 0;
	int rc;

	if (gradeq_cli_scan(&a->cli, "purge-history", "unexpected argument", argc, argv, 1, opts,
			    NULL, false))
		return 2;
	if (!older)
		secs = (long)a->cli.cfg->retention_days * 86400;
	else if (gradeq_parse_duration(older, &secs)) {
		gradeq_cli_error(&a->cli, "--older-than takes %s, not '%s'", GRADEQ_DURATION_RULE,
				 older);
		return 2;
	}
	if (!yes) {
		rc = gradeq_history_count(a->st, secs, &runs);
		if (!rc)
			printf("would delete %ld finished run(s) older than %ld seconds with their "
			       "jobs and events; run again with --yes\n",
			       runs, secs);
		return fail(a, rc);
	}
	/* outputs past keep-until first: their objects go with their rows */
	rc = gradeq_report_purge_expired(a->st, a->cli.cfg, &outputs);
	if (!rc)
		rc = gradeq_history_purge(a->st, secs, &runs);
	if (rc)
		return fail(a, rc);
	if (a->json)
		printf("{\"deleted_runs\":%ld,\"deleted_outputs\":%ld}\n", runs, outputs);
	else
		printf("deleted %ld run(s) older than %ld seconds and %ld output(s) past their "
		       "keep-until\n",
		       runs, secs, outputs);
	return 0;
}

static int release_list(struct admin *a, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return fail(a, gradeq_release_print_list(&a->cli, a->st, a->json, stdout));
}

static int release_promote(struct admin *a, int argc, char **argv)
{
	const char *name = argv[argc - 1];

	if (gradeq_cli_check_release(&a->cli, "release promote", name))
		return 2;
	return fail(a, gradeq_release_do_promote(&a->cli, a->st, name, stdout));
}

/* Parses "release VERB R [FLAG [VALUE]]" (the arguments drain and retire
 * share): *name gets R, *flag the flag's value (or the flag itself when it
 * takes none), NULL when absent. Prints one usage line and returns 2 on
 * anything else. */
static int release_args(struct admin *a, int argc, char **argv, const char *flagname,
			bool takes_value, const char **name, const char **flag)
{
	bool set = false;
	const struct gradeq_cli_opt opts[] = {{flagname, NULL, takes_value ? NULL : &set, flag},
					      {NULL, NULL, NULL, NULL}};
	char what[32];

	*name = *flag = NULL;
	snprintf(what, sizeof(what), "release %s", argv[1]);
	if (gradeq_cli_scan(&a->cli, what, "unexpected argument", argc, argv, 2, opts, name, false))
		return 2;
	if (set)
		*flag = flagname;
	if (!*name) {
		gradeq_cli_error(&a->cli, "usage: gradeq-admin release %s R [%s%s]", argv[1],
				 flagname, takes_value ? " R2" : "");
		return 2;
	}
	if (gradeq_cli_check_release(&a->cli, what, *name) ||
	    (takes_value && gradeq_cli_check_release(&a->cli, flagname, *flag)))
		return 2;
	return 0;
}

static int release_drain(struct admin *a, int argc, char **argv)
{
	const char *name, *flag;

	if (release_args(a, argc, argv, "--forward-retries", false, &name, &flag))
		return 2;
	return fail(a, gradeq_release_do_drain(&a->cli, a->st, name, flag != NULL, stdout));
}

static int release_retire(struct admin *a, int argc, char **argv)
{
	const char *name, *move_to;

	if (release_args(a, argc, argv, "--move-dead-to", true, &name, &move_to))
		return 2;
	return fail(a, gradeq_release_do_retire(&a->cli, a->st, name, move_to, stdout));
}

static int release_rebalance(struct admin *a, int argc, char **argv)
{
	const char *name, *flag;

	if (release_args(a, argc, argv, "--dry-run", false, &name, &flag))
		return 2;
	return fail(a, gradeq_release_do_rebalance(&a->cli, a->st, name, flag != NULL, a->json,
						   stdout));
}

enum needs { NEEDS_NOTHING, NEEDS_STORE };

struct command {
	const char *name, *sub; /* "release" "list" */
	int min_args, max_args; /* argc including name (and sub); max 0: any */
	enum needs needs;
	int (*run)(struct admin *a, int argc, char **argv);
	const char *usage; /* lines after the first start with their indent */
	const char *help;
};

static const struct command commands[] = {
	{"migrate", NULL, 1, 0, NEEDS_STORE, cmd_migrate, "migrate [--with-input-tables]",
	 "create or upgrade gradeq's tables (and, for\n"
	 "demos and tests, the platform's input tables)"},
	{"seed", NULL, 1, 0, NEEDS_STORE, cmd_seed,
	 "seed [--courses small,medium,large] [--learners N] [--seed N] [--prefix P]\n"
	 "     [--replace]",
	 "generate demo courses, learners and scores;\n"
	 "--replace to overwrite courses that have rows"},
	{"status", NULL, 1, 0, NEEDS_STORE, cmd_status, "status [RUN] [--watch]",
	 "runs with jobs and learners by state, rates\n"
	 "and ETA, and each release's queue depths\n"
	 "(unacked from management_url when set);\n"
	 "--json: the shape in docs/status.md"},
	{"states", NULL, 1, 1, NEEDS_NOTHING, cmd_states, "states [--json]",
	 "the run and job state machines"},
	{"check-config", NULL, 1, 2, NEEDS_NOTHING, cmd_check_config, "check-config [FILE]",
	 "validate the configuration (FILE, else -c or\n"
	 "the default) and print the effective settings,\n"
	 "secrets masked; errors name file, line, setting"},
	{"check-input", NULL, 1, 1, NEEDS_STORE, cmd_check_input, "check-input",
	 "whether the indexes gradeq relies on exist on\n"
	 "the platform's input tables; prints the CREATE\n"
	 "INDEX CONCURRENTLY a DBA may run for each one\n"
	 "missing (exit 1 then)"},
	{"events", NULL, 1, 0, NEEDS_STORE, cmd_events, "events [--run RUN] [--count N]",
	 "follow the pushed state changes live\n"
	 "(run.<id>.<state>, job.<state>); --json\n"
	 "prints each event's JSON body"},
	{"release", "list", 2, 2, NEEDS_STORE, release_list, "release list",
	 "releases with their states and queues, and\n"
	 "where each queue lives: members and leader"},
	{"release", "promote", 3, 3, NEEDS_STORE, release_promote, "release promote R",
	 "make R the release publishers use; the\n"
	 "previous one starts draining"},
	{"release", "drain", 3, 0, NEEDS_STORE, release_drain,
	 "release drain R [--forward-retries]",
	 "mark R draining (its consumers exit once\n"
	 "its queues are empty); --forward-retries\n"
	 "moves jobs waiting in its retry tiers to the\n"
	 "promoted release, confirmed"},
	{"release", "retire", 3, 0, NEEDS_STORE, release_retire,
	 "release retire R [--move-dead-to R2]",
	 "delete a drained release's queues and mark\n"
	 "it retired; refuses while its queues hold\n"
	 "work or consumers, or dead letters (unless\n"
	 "moved, confirmed, to R2's dead queue)"},
	{"throttle", NULL, 1, 0, NEEDS_STORE, cmd_throttle, GRADEQ_THROTTLE_USAGE,
	 "the release's throughput budget, shared by all\n"
	 "its consumers (applied within 2 s); show: the\n"
	 "budgets, achieved rates and back-off states"},
	{"release", "rebalance", 3, 0, NEEDS_STORE, release_rebalance,
	 "release rebalance R [--dry-run]",
	 "grow R's queues onto running nodes (up to\n"
	 "quorum_group_size) and spread their leaders,\n"
	 "with rabbitmq-queues; --dry-run prints the\n"
	 "commands"},
	{"cancel", NULL, 1, 0, NEEDS_STORE, cmd_cancel, "cancel RUN [--yes]",
	 "cancel a run: consumers ack its pending jobs\n"
	 "without grading them; committed grades stay"},
	{"purge-history", NULL, 1, 0, NEEDS_STORE, cmd_purge_history,
	 "purge-history [--older-than DUR] [--yes]",
	 "delete finished runs, their jobs and events\n"
	 "older than DUR (e.g. 90d, 12h; default\n"
	 "retention_days); never grades; without --yes\n"
	 "says what it would delete"},
	{"plan", NULL, 1, 0, NEEDS_STORE, cmd_plan,
	 "plan [--course ID | --size-class S] [--consumers N] [--plot FILE]\n"
	 "     [--overhead-share 0.05] [--failure-cost 60] [--arrival-rate R]\n"
	 "     [--loop-overhead SEC] [--iterations RELEASE]",
	 "fit batch ms = O + p * learners over recorded\n"
	 "jobs, recommend a batch size per size class,\n"
	 "predict the backfill; with R (learners/s\n"
	 "changing) the periodic run's T = O/(1-P), O\n"
	 "the batch overhead plus SEC (the --follow\n"
	 "loop's own: an idle iteration's seconds);\n"
	 "--iterations: O and P fitted over RELEASE's\n"
	 "recorded --follow iterations (seconds =\n"
	 "O + c * learners, P = c * R)"},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))
static void print_usage(FILE *out)
{
	fputs("Usage: gradeq-admin [-c FILE] [--json] COMMAND [ARGS]\n\nCommands:\n", out);
	for (size_t i = 0; i < NCOMMANDS; i++)
		gradeq_cli_print_command(out, commands[i].usage, commands[i].help);
	fputs("\nOptions:\n"
	      "  -c, --config FILE   configuration file (default " GRADEQ_DEFAULT_CONF ")\n"
	      "      --json          machine-readable output\n"
	      "  -h, --help          this text\n"
	      "  -V, --version       print the version\n"
	      "\n"
	      "Environment: GRADEQ_AMQP_URL (one URL, or a comma-separated list of a cluster's\n"
	      "nodes) and GRADEQ_PG_DSN override the configuration.\n",
	      out);
}

/* The command argv names, or NULL; *known tells whether its name is one
 * (then a NULL answer is a usage error of a subcommand). */
static const struct command *find_command(int argc, char **argv, bool *known)
{
	*known = false;
	for (size_t i = 0; i < NCOMMANDS; i++) {
		const struct command *c = &commands[i];

		if (strcmp(argv[0], c->name) != 0)
			continue;
		*known = true;
		if (c->sub && (argc < 2 || strcmp(argv[1], c->sub) != 0))
			continue;
		if (argc >= c->min_args && (!c->max_args || argc <= c->max_args))
			return c;
	}
	return NULL;
}

/* "usage: gradeq-admin USAGE" of command name. */
static void usage_of(const struct gradeq_cli *cli, const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0) {
			gradeq_cli_usage_error(cli, commands[i].usage);
			return;
		}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const struct command *c;
	struct admin a;
	bool known;
	int opt, rc, status = 1;

	memset(&a, 0, sizeof(a));
	a.cli.prog = PROG;
	/* stop at the command: its options are its own */
	while ((opt = getopt_long(argc, argv, "+c:hV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': a.cli.conf_path = optarg; break;
		case 'j': a.json = true; break;
		case 'h': print_usage(stdout); return 0;
		case 'V': puts(PROG " " GRADEQ_VERSION); return 0;
		default: fputs("Try 'gradeq-admin --help'.\n", stderr); return 2;
		}
	}
	if (optind >= argc) {
		print_usage(stderr);
		return 2;
	}
	argc -= optind;
	argv += optind;
	/* --json may follow the command too */
	argc = gradeq_cli_take_flag(argc, argv, "--json", &a.json);
	c = find_command(argc, argv, &known);
	if (!c) {
		if (known && strcmp(argv[0], "release") != 0)
			usage_of(&a.cli, argv[0]);
		else if (known)
			gradeq_cli_error(&a.cli, "usage: gradeq-admin release (list | promote R | "
						 "drain R | retire R | rebalance R)");
		else
			gradeq_cli_error(&a.cli, "unknown command '%s' (see gradeq-admin --help)",
					 argv[0]);
		return 2;
	}
	if (c->needs == NEEDS_NOTHING)
		return c->run(&a, argc, argv);
	if (gradeq_cli_init(&a.cli))
		return 1;
	rc = gradeq_cli_store(&a.cli, &a.st);
	if (rc)
		gradeq_cli_error(&a.cli, "%s", gradeq_errmsg(rc));
	else
		status = c->run(&a, argc, argv);
	gradeq_store_free(a.st);
	gradeq_cli_release(&a.cli);
	return status;
}
