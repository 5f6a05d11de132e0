/* gradeq-web: the operators' dashboard (docs/web-api.md). The daemon is
 * src/web/; this program reads the command line. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "gradeq/cli.h"
#include "gradeq/web.h"

#define PROG "gradeq-web"

static const char usage[] =
	"Usage: gradeq-web [-c FILE] [--listen HOST:PORT] [--users FILE]\n"
	"\n"
	"Serve the operators' dashboard: runs, jobs, releases, consumers and dead\n"
	"jobs, live through Server-Sent Events fed by gradeq.events; the JSON API\n"
	"the page uses is documented in docs/web-api.md. Users log in with a\n"
	"password from the users file: 'viewer' reads, 'operator' also cancels runs\n"
	"and replays, purges or exports dead jobs (each recorded in the job events\n"
	"as web:NAME).\n"
	"\n"
	"Options:\n"
	"  -c, --config FILE      configuration file (default " GRADEQ_DEFAULT_CONF ")\n"
	"  -l, --listen HOST:PORT address to listen on (default web_listen, else\n"
	"                         " GRADEQ_WEB_DEFAULT_LISTEN ")\n"
	"  -u, --users FILE       users file (default web_users): one\n"
	"                         name:role:hash line per user, role viewer or\n"
	"                         operator, hash a crypt(3) string such as\n"
	"                         'openssl passwd -6' prints\n"
	"  -h, --help             this text\n"
	"  -V, --version          print the version\n"
	"\n"
	"Settings (gradeq.conf(5)): web_listen, web_users, web_tls_cert and\n"
	"web_tls_key (serve HTTPS), web_trusted_header and web_trusted_proxy (take\n"
	"the user from a reverse proxy's header), web_session_idle_s.\n"
	"\n"
	"Signals: SIGTERM or SIGINT stop the server; SIGHUP reopens the log file\n"
	"(other settings need a restart).\n"
	"\n"
	"Environment: GRADEQ_AMQP_URL, GRADEQ_PG_DSN and GRADEQ_MGMT_URL override the\n"
	"configuration.\n";

static volatile sig_atomic_t reopen_requested;

static void on_hup(int sig)
{
	(void)sig;
	reopen_requested = 1;
}

static const struct option opts[] = {
	{"config", required_argument, NULL, 'c'}, {"listen", required_argument, NULL, 'l'},
	{"users", required_argument, NULL, 'u'},  {"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},      {NULL, 0, NULL, 0},
};

int main(int argc, char **argv)
{
	struct gradeq_cli cli = {.prog = PROG};
	struct gradeq_web_options o = {NULL, NULL, &reopen_requested};
	volatile sig_atomic_t *stop;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, ":c:l:u:hV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			if (gradeq_cli_once(&cli, "--config", &cli.conf_path, optarg))
				return 2;
			break;
		case 'l':
			if (gradeq_cli_once(&cli, "--listen", &o.listen, optarg))
				return 2;
			break;
		case 'u':
			if (gradeq_cli_once(&cli, "--users", &o.users, optarg))
				return 2;
			break;
		case 'h': fputs(usage, stdout); return 0;
		case 'V': printf(PROG " " GRADEQ_VERSION "\n"); return 0;
		case ':':
			gradeq_cli_error(&cli, "%s needs a value (try '" PROG " --help')",
					 argv[optind - 1]);
			return 2;
		default:
			gradeq_cli_error(&cli, "unknown option '%s' (try '" PROG " --help')",
					 argv[optind - 1]);
			return 2;
		}
	}
	if (optind < argc) {
		gradeq_cli_error(&cli, "unexpected argument '%s' (try '" PROG " --help')",
				 argv[optind]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (gradeq_cli_init(&cli))
		return 1;
	stop = gradeq_cli_catch_stop();
	signal(SIGHUP, on_hup);
	rc = gradeq_web_run(&cli, &o, stop);
	gradeq_cli_release(&cli);
	if (rc == GRADEQ_ERR_INVALID)
		return 2;
	return rc ? 1 : 0;
}
