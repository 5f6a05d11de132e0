/* gradeq-report: job outputs (DESIGN.md section 6). Creates grade reports
 * built by part jobs, lists and deletes them. The work is report.c's; this
 * program reads the command line. */
#include <getopt.h>
#include <stdint.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gradeq/cli.h"
#include "gradeq/job.h"
#include "gradeq/report.h"

static const char usage[] =
	"Usage: gradeq-report [OPTIONS] --course ID [--course ID ...]\n"
	"       gradeq-report list --course ID [--json]\n"
	"       gradeq-report delete OUTPUT\n"
	"       gradeq-report url OUTPUT --user UID [--expires DUR]\n"
	"\n"
	"Create a grade report per course: one output, built by one part job per\n"
	"batch of the course's graded learners on the release's queues, sealed\n"
	"(parts joined in order, header first, SHA-256 and size recorded) when\n"
	"the last part is in. Prints the output id (one per course).\n"
	"\n"
	"Options:\n"
	"  -c, --config FILE     configuration file (default " GRADEQ_DEFAULT_CONF ")\n"
	"  -r, --release R       release whose consumers build it (default: the promoted one)\n"
	"  -C, --course ID       a course to report on (repeatable; counted once)\n"
	"  -b, --batch-size N    learners per part (default: batch_size in the config)\n"
	"      --format csv      the output's format (csv, the only one)\n"
	"      --keep-until DATE purge-history deletes it after DATE (YYYY-MM-DD or RFC 3339)\n"
	"      --use-once        deleted after its first complete download\n"
	"      --json            one JSON object {output_id, output_ids, run_id} on stdout\n"
	"  -h, --help            this text\n"
	"  -V, --version         print the version\n"
	"\n"
	"Commands:\n"
	"  list --course ID [--json]  the course's outputs, newest first\n"
	"  delete OUTPUT              delete an output and its stored object\n"
	"  url OUTPUT --user UID [--expires DUR]\n"
	"                             print one absolute download link signed for UID\n"
	"                             (HMAC-SHA256, key from output_link_key_file),\n"
	"                             valid for DUR (default 15m); refused when UID is\n"
	"                             not on the course team (staff or instructor)\n"
	"                             nor a global operator (output_operators)\n"
	"\n"
	"Environment: GRADEQ_AMQP_URL, GRADEQ_PG_DSN and GRADEQ_OUTPUT_DIR override the\n"
	"configuration. Exit status: 0 on success, 1 on error (one line on stderr), 2 on\n"
	"bad usage.\n";

static const struct option opts[] = {
	{"config", required_argument, NULL, 'c'},
	{"release", required_argument, NULL, 'r'},
	{"course", required_argument, NULL, 'C'},
	{"batch-size", required_argument, NULL, 'b'},
	{"format", required_argument, NULL, 'f'},
	{"keep-until", required_argument, NULL, 'k'},
	{"use-once", no_argument, NULL, 'u'},
	{"json", no_argument, NULL, 'j'},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},
	{NULL, 0, NULL, 0},
};

struct args {
	struct gradeq_report_options o;
	const char **courses;
	const char *batch, *format, *keep;
	bool json;
};

static int parse_create(struct gradeq_cli *cli, struct args *a, int argc, char **argv)
{
	int opt, bad = 0;

	while (!bad && (opt = getopt_long(argc, argv, "c:r:C:b:hV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': bad = gradeq_cli_once(cli, "--config", &cli->conf_path, optarg); break;
		case 'r': bad = gradeq_cli_once(cli, "--release", &a->o.release, optarg); break;
		case 'C': gradeq_cli_add_unique(a->courses, &a->o.ncourses, optarg); break;
		case 'b': bad = gradeq_cli_once(cli, "--batch-size", &a->batch, optarg); break;
		case 'f': bad = gradeq_cli_once(cli, "--format", &a->format, optarg); break;
		case 'k': bad = gradeq_cli_once(cli, "--keep-until", &a->keep, optarg); break;
		case 'u': a->o.use_once = true; break;
		case 'j': a->json = true; break;
		case 'h': fputs(usage, stdout); return 0;
		case 'V': puts("gradeq-report " GRADEQ_VERSION); return 0;
		default: fputs("Try 'gradeq-report --help'.\n", stderr); return 2;
		}
	}
	if (bad)
		return bad;
	if (optind < argc || a->o.ncourses == 0) {
		gradeq_cli_error(cli,
				 optind < argc ? "unexpected argument '%s'" : "give --course ID%s",
				 optind < argc ? argv[optind] : " (repeatable)");
		return 2;
	}
	if (a->format && strcmp(a->format, "csv") != 0) {
		gradeq_cli_error(cli, "--format must be csv, not '%s'", a->format);
		return 2;
	}
	if (a->keep && a->o.use_once) {
		gradeq_cli_error(cli, "give --keep-until or --use-once, not both");
		return 2;
	}
	return gradeq_cli_check_release(cli, "--release", a->o.release) ? 2 : -1;
}

static void print_created(const struct gradeq_report_result *r, bool json)
{
	if (!json) {
		for (int i = 0; i < r->noutputs; i++)
			printf("%s\n", r->output_ids[i]);
		return;
	}
	printf("{\"output_id\":\"%s\",\"output_ids\":[", r->noutputs ? r->output_ids[0] : "");
	for (int i = 0; i < r->noutputs; i++)
		printf("%s\"%s\"", i ? "," : "", r->output_ids[i]);
	printf("],\"run_id\":\"%s\",\"release\":\"%s\",\"parts\":%ld,\"learners\":%ld}\n",
	       r->run_id, r->release, r->parts, r->learners);
}

static int cmd_create(struct gradeq_cli *cli, int argc, char **argv)
{
	struct args a = {0};
	struct gradeq_report_result r = {0};
	char keep[64];
	struct passwd *pw = getpwuid(getuid());
	int status, rc;

	a.courses = calloc((size_t)argc + 1, sizeof(*a.courses));
	if (!a.courses)
		return 1;
	a.o.courses = a.courses;
	status = parse_create(cli, &a, argc, argv);
	if (status >= 0)
		goto out;
	status = 1;
	if (gradeq_cli_init(cli))
		goto out;
	a.o.batch_size = cli->cfg->batch_size;
	if (a.batch && gradeq_cli_parse_int(cli, "--batch-size", a.batch, 1, GRADEQ_JOB_MAX_USERS,
					    &a.o.batch_size)) {
		status = 2;
		goto out;
	}
	if (a.keep && gradeq_report_keep_until(a.keep, keep, sizeof(keep))) {
		gradeq_cli_error(cli, "%s", gradeq_errmsg(GRADEQ_ERR_INVALID));
		status = 2;
		goto out;
	}
	a.o.keep_until = a.keep ? keep : NULL;
	a.o.created_by = pw ? pw->pw_name : "";
	rc = gradeq_report_create(cli, &a.o, &r);
	if (rc) {
		gradeq_cli_error(cli, "%s", gradeq_errmsg(rc));
		goto out;
	}
	print_created(&r, a.json);
	status = 0;
out:
	gradeq_report_result_release(&r);
	free(a.courses);
	return status;
}

/* url OUTPUT --user UID [--expires DUR] */
static int cmd_url(struct gradeq_cli *cli, int argc, char **argv)
{
	const char *word = NULL, *user = NULL, *expires = NULL;
	const struct gradeq_cli_opt uopts[] = {{"--user", "-u", NULL, &user},
					       {"--expires", NULL, NULL, &expires},
					       {"--config", "-c", NULL, &cli->conf_path},
					       {NULL, NULL, NULL, NULL}};
	long secs = 15 * 60, uid = 0;
	int rc;

	if (gradeq_cli_scan(cli, "url", "unexpected argument", argc, argv, 2, uopts, &word, false))
		return 2;
	if (!word || !user) {
		gradeq_cli_error(cli, "url: give OUTPUT and --user UID");
		return 2;
	}
	if (expires && (gradeq_parse_duration(expires, &secs) || secs < 1)) {
		gradeq_cli_error(cli, "--expires takes %s, not '%s'", GRADEQ_DURATION_RULE,
				 expires);
		return 2;
	}
	if (gradeq_cli_parse_long(cli, "--user", user, 1, INT32_MAX, &uid))
		return 2;
	if (gradeq_cli_init(cli))
		return 1;
	rc = gradeq_report_url(cli, word, (int32_t)uid, secs, stdout);
	if (rc) {
		gradeq_cli_error(cli, "%s", gradeq_errmsg(rc));
		return 1;
	}
	return 0;
}

/* list --course ID [--json] and delete OUTPUT share -c FILE. */
static int cmd_other(struct gradeq_cli *cli, int argc, char **argv)
{
	const char *course = NULL, *word = NULL;
	bool json = false, list = strcmp(argv[1], "list") == 0;
	const struct gradeq_cli_opt lopts[] = {{"--course", "-C", NULL, &course},
					       {"--json", NULL, &json, NULL},
					       {"--config", "-c", NULL, &cli->conf_path},
					       {NULL, NULL, NULL, NULL}};
	const struct gradeq_cli_opt dopts[] = {{"--config", "-c", NULL, &cli->conf_path},
					       {NULL, NULL, NULL, NULL}};
	int rc;

	if (gradeq_cli_scan(cli, argv[1], "unexpected argument", argc, argv, 2,
			    list ? lopts : dopts, list ? NULL : &word, false))
		return 2;
	if (list ? !course : !word) {
		gradeq_cli_error(cli, list ? "list: give --course ID" : "delete: give OUTPUT");
		return 2;
	}
	if (gradeq_cli_init(cli))
		return 1;
	rc = list ? gradeq_report_list(cli, course, json, stdout) : gradeq_report_delete(cli, word);
	if (rc) {
		gradeq_cli_error(cli, "%s", gradeq_errmsg(rc));
		return 1;
	}
	if (!list)
		printf("deleted %s\n", word);
	return 0;
}

/* "gradeq-report -c FILE url ..." as "gradeq-report url ... -c FILE": the
 * commands read their own options, --config among them. */
static void command_first(int argc, char **argv)
{
	char *opt, *file;

	if (argc < 4 || (strcmp(argv[1], "-c") != 0 && strcmp(argv[1], "--config") != 0))
		return;
	if (strcmp(argv[3], "url") != 0 && strcmp(argv[3], "list") != 0 &&
	    strcmp(argv[3], "delete") != 0)
		return;
	opt = argv[1];
	file = argv[2];
	memmove(&argv[1], &argv[3], (size_t)(argc - 3) * sizeof(*argv));
	argv[argc - 2] = opt;
	argv[argc - 1] = file;
}

int main(int argc, char **argv)
{
	struct gradeq_cli cli = {.prog = "gradeq-report"};
	int status;

	command_first(argc, argv);
	if (argc > 1 && strcmp(argv[1], "url") == 0)
		status = cmd_url(&cli, argc, argv);
	else if (argc > 1 && (strcmp(argv[1], "list") == 0 || strcmp(argv[1], "delete") == 0))
		status = cmd_other(&cli, argc, argv);
	else
		status = cmd_create(&cli, argc, argv);
	gradeq_cli_release(&cli);
	return status;
}
