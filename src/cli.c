#include "gradeq/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gradeq/job.h"
#include "gradeq/log.h"
#include "gradeq/parse.h"
#include "gradeq/urls.h"

void gradeq_cli_print_line(FILE *out, const char *prog, const char *kind, const char *msg)
{
	fprintf(out, "%s: %s: ", prog, kind);
	for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
		if (*p == '\n' || *p == '\r' || *p == '\t')
			fputc(' ', out);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(out, "\\x%02x", *p);
		else
			fputc(*p, out);
	}
	fputc('\n', out);
}

void gradeq_cli_error(const struct gradeq_cli *cli, const char *fmt, ...)
{
	char msg[1200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	gradeq_cli_print_line(stderr, cli->prog, "error", msg);
}

void gradeq_cli_usage_error(const struct gradeq_cli *cli, const char *usage)
{
	char line[256];
	size_t n = 0;

	for (; *usage && n + 1 < sizeof(line); usage++) {
		if (*usage == '\n') {
			line[n++] = ' ';
			usage += strspn(usage + 1, " ");
		} else {
			line[n++] = *usage;
		}
	}
	line[n] = '\0';
	gradeq_cli_error(cli, "usage: %s %s", cli->prog, line);
}

int gradeq_cli_once(const struct gradeq_cli *cli, const char *opt, const char **slot,
		    const char *value)
{
	if (*slot) {
		gradeq_cli_error(cli, "%s given twice ('%s', '%s'): give it once", opt, *slot,
				 value);
		return 2;
	}
	*slot = value;
	return 0;
}

void gradeq_cli_add_unique(const char **list, int *n, const char *value)
{
	for (int i = 0; i < *n; i++)
		if (strcmp(list[i], value) == 0)
			return;
	list[(*n)++] = value;
}

int gradeq_cli_check_release(const struct gradeq_cli *cli, const char *what, const char *name)
{
	if (!name || gradeq_release_name_ok(name))
		return 0;
	gradeq_cli_error(cli, "bad release name '%s' for %s (%s)", name, what,
			 GRADEQ_RELEASE_NAME_RULE);
	return 2;
}

int gradeq_cli_parse_long(const struct gradeq_cli *cli, const char *what, const char *s, long min,
			  long max, long *out)
{
	if (!gradeq_parse_long(s, min, max, out))
		return 0;
	gradeq_cli_error(cli, "%s must be an integer from %ld to %ld, not '%s'", what, min, max, s);
	return GRADEQ_ERR_INVALID;
}

int gradeq_cli_parse_int(const struct gradeq_cli *cli, const char *what, const char *s, int min,
			 int max, int *out)
{
	long v;
	int rc = gradeq_cli_parse_long(cli, what, s, min, max, &v);

	if (!rc)
		*out = (int)v;
	return rc;
}

int gradeq_cli_parse_double(const struct gradeq_cli *cli, const char *what, const char *s,
			    double min, double max, double *out)
{
	if (!gradeq_parse_double(s, NULL, min, max, out))
		return 0;
	gradeq_cli_error(cli, "%s must be a number from %g to %g, not '%s'", what, min, max, s);
	return GRADEQ_ERR_INVALID;
}

int gradeq_cli_scan(const struct gradeq_cli *cli, const char *what, const char *complaint, int argc,
		    char **argv, int from, const struct gradeq_cli_opt *opts, const char **word,
		    bool dash_words)
{
	for (int i = from; i < argc; i++) {
		const struct gradeq_cli_opt *o = opts;

		while (o->name && strcmp(argv[i], o->name) != 0 &&
		       !(o->alias && strcmp(argv[i], o->alias) == 0))
			o++;
		if (o->name && o->set) {
			*o->set = true;
		} else if (o->name && i + 1 < argc) {
			if (*o->value) {
				gradeq_cli_error(cli, "%s: %s given twice: give it once", what,
						 o->name);
				return 2;
			}
			*o->value = argv[++i];
		} else if (word && !*word && (dash_words || argv[i][0] != '-')) {
			*word = argv[i];
		} else {
			gradeq_cli_error(cli, "%s: %s '%s'", what, complaint, argv[i]);
			return 2;
		}
	}
	return 0;
}

bool gradeq_cli_confirm(const struct gradeq_cli *cli, const char *question, bool yes)
{
	char line[16];

	if (yes)
		return true;
	if (!isatty(STDIN_FILENO)) {
		gradeq_cli_error(cli, "%s Give --yes: standard input is not a terminal to ask",
				 question);
		return false;
	}
	fprintf(stderr, "%s [y/N] ", question);
	if (!fgets(line, sizeof(line), stdin))
		return false;
	return line[0] == 'y' || line[0] == 'Y';
}

#define HELP_COLUMN 34

/* Prints the lines of text from HELP_COLUMN, the first after "  first"
 * when first is not NULL. */
static void help_lines(FILE *out, const char *text, const char *first)
{
	for (const char *p = text; *p;) {
		size_t n = strcspn(p, "\n");

		if (first)
			fprintf(out, "  %-*s%.*s\n", HELP_COLUMN - 2, first, (int)n, p);
		else
			fprintf(out, "%*s%.*s\n", HELP_COLUMN, "", (int)n, p);
		first = NULL;
		p += n + (p[n] == '\n');
	}
}

void gradeq_cli_print_command(FILE *out, const char *usage, const char *help)
{
	const char *last = strrchr(usage, '\n');
	char line[128];

	if (last)
		fprintf(out, "  %.*s\n", (int)(last - usage), usage);
	snprintf(line, sizeof(line), "%s", last ? last + 1 : usage);
	if (strlen(line) < HELP_COLUMN - 3) {
		help_lines(out, help, line);
	} else {
		fprintf(out, "  %s\n", line);
		help_lines(out, help, NULL);
	}
}

int gradeq_cli_init(struct gradeq_cli *cli)
{
	char err[600] = "";
	int rc, level;

	rc = gradeq_config_load(cli->conf_path, &cli->cfg, err, sizeof(err));
	if (rc) {
		gradeq_cli_error(cli, "%s", err[0] ? err : gradeq_errmsg(rc));
		return rc;
	}
	level = gradeq_log_level_parse(cli->cfg->log_level);
	rc = gradeq_log_init(cli->prog, level < 0 ? GRADEQ_LOG_INFO : level, cli->cfg->log_file);
	if (rc) {
		/* an operator who set log_file reads that file: carrying on to
		 * stderr would lose every line where nobody looks */
		int e = errno;

		gradeq_cli_error(cli, "%s: %s", gradeq_errmsg(rc), strerror(e));
		gradeq_config_free(cli->cfg);
		cli->cfg = NULL;
		return rc;
	}
	return 0;
}

void gradeq_cli_release(struct gradeq_cli *cli)
{
	gradeq_config_free(cli->cfg);
	cli->cfg = NULL;
}

int gradeq_cli_store(struct gradeq_cli *cli, struct gradeq_store **st)
{
	return gradeq_store_connect(cli->cfg->pg_dsn, cli->prog, cli->cfg->statement_timeout_ms,
				    st);
}

int gradeq_cli_broker(struct gradeq_cli *cli, const char *release, struct gradeq_broker **b)
{
	return gradeq_broker_open(cli->cfg, cli->prog, release, GRADEQ_BROKER_PUBLISH, b);
}

void gradeq_cli_mgmt(struct gradeq_cli *cli, struct gradeq_mgmt **out)
{
	static bool warned;
	struct gradeq_urls nodes = {0}, apis = {0};
	char *url = NULL;
	int rc;

	*out = NULL;
	if (!cli->cfg->management_url)
		return;
	rc = gradeq_config_amqp_url(cli->cfg, &url);
	if (!rc)
		rc = gradeq_urls_split(url, &nodes, NULL, 0) ? GRADEQ_ERR_CONFIG : 0;
	if (!rc)
		rc = gradeq_urls_split(cli->cfg->management_url, &apis, NULL, 0) ? GRADEQ_ERR_CONFIG
										 : 0;
	/* the login is the same on every node (config.c checks it): the
	 * first entry's; the next API is tried when one cannot be reached */
	for (int i = 0; !rc && i < apis.n; i++) {
		rc = gradeq_mgmt_fetch(apis.url[i], nodes.url[0], cli->cfg->amqp_cacert, 5000, out);
		if (rc != GRADEQ_ERR_BROKER || i + 1 == apis.n)
			break;
		log_debug("event=management_unreachable url=%s error=\"%s\"", apis.url[i],
			  gradeq_errmsg(rc));
		rc = 0;
	}
	gradeq_urls_release(&nodes);
	gradeq_urls_release(&apis);
	if (url)
		explicit_bzero(url, strlen(url));
	free(url);
	if (rc && !warned) {
		log_warn("event=management_unavailable error=\"%s\" unacked=unknown",
			 gradeq_errmsg(rc));
		warned = true;
	}
}

struct gradeq_topology gradeq_cli_topology(const struct gradeq_cli *cli)
{
	struct gradeq_topology t = {cli->cfg->delivery_limit, cli->cfg->retry_tiers,
				    cli->cfg->nretry_tiers, cli->cfg->quorum_group_size,
				    cli->cfg->queue_leader_locator};

	return t;
}

int gradeq_cli_take_flag(int argc, char **argv, const char *flag, bool *set)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], flag) == 0) {
			*set = true;
			memmove(&argv[i], &argv[i + 1], (size_t)(argc - i) * sizeof(*argv));
			argc--;
			i--;
		}
	return argc;
}

static volatile sig_atomic_t stop_flag;

static void on_stop(int sig)
{
	(void)sig;
	stop_flag = 1;
}

volatile sig_atomic_t *gradeq_cli_catch_stop(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	return &stop_flag;
}
