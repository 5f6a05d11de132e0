/* What the programs share: configuration, one-line errors, connections
 * that name themselves (the release registry is in gradeq/release.h). */
#ifndef GRADEQ_CLI_H
#define GRADEQ_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <signal.h>

#include "gradeq/broker.h"
#include "gradeq/config.h"
#include "gradeq/err.h"
#include "gradeq/mgmt.h"
#include "gradeq/parse.h"
#include "gradeq/release.h"
#include "gradeq/store.h"

struct gradeq_cli {
	const char *prog;
	const char *conf_path; /* -c FILE, NULL for the default */
	struct gradeq_config *cfg;
};

/* Prints "prog: error: ..." on one line to stderr. */
void gradeq_cli_error(const struct gradeq_cli *cli, const char *fmt, ...) GRADEQ_PRINTF(2, 3);

/* Writes "prog: kind: msg" as exactly one line: line breaks and tabs in msg
 * become spaces and other control bytes \xNN, so that no value (a course
 * or message id read from the network) can start a line of its own. */
void gradeq_cli_print_line(FILE *out, const char *prog, const char *kind, const char *msg);

/* Prints "prog: error: usage: prog USAGE" on one line (USAGE's lines
 * joined, their indent dropped). */
void gradeq_cli_usage_error(const struct gradeq_cli *cli, const char *usage);

/* Sets *slot to value unless an option OPT took one already: then prints
 * "prog: error: OPT given twice" and returns 2 (the usage status). For
 * options that take one value; repeatable ones (--course) go through
 * gradeq_cli_add_unique. */
int gradeq_cli_once(const struct gradeq_cli *cli, const char *opt, const char **slot,
		    const char *value);

/* Appends value to list[*n] unless it is there already (a repeated
 * --course X counts once). */
void gradeq_cli_add_unique(const char **list, int *n, const char *value);

/* Checks a release name given by WHAT ("--release", "release retire"...)
 * with gradeq_release_name_ok() (DESIGN §3): 0 (NULL is fine: not given),
 * else one error line naming it and the rule, and 2 (the usage status). */
int gradeq_cli_check_release(const struct gradeq_cli *cli, const char *what, const char *name);

/* Parse an option's value with gradeq/parse.h; on a bad one print
 * "prog: error: WHAT must be an integer from MIN to MAX, not 'S'" (or "a
 * number") and return GRADEQ_ERR_INVALID, leaving *out alone. */
int gradeq_cli_parse_long(const struct gradeq_cli *cli, const char *what, const char *s, long min,
			  long max, long *out) GRADEQ_MUST_CHECK;
int gradeq_cli_parse_int(const struct gradeq_cli *cli, const char *what, const char *s, int min,
			 int max, int *out) GRADEQ_MUST_CHECK;
int gradeq_cli_parse_double(const struct gradeq_cli *cli, const char *what, const char *s,
			    double min, double max, double *out) GRADEQ_MUST_CHECK;

/* An option of a command: a flag (*set becomes true) or one that takes the
 * next word (*value gets it; it must start NULL, and a second one is
 * refused). */
struct gradeq_cli_opt {
	const char *name, *alias; /* alias may be NULL */
	bool *set;
	const char **value;
};

/* Reads argv[from..] of command what: the options of opts (ended by a NULL
 * name) and, when word is not NULL, one word into *word (which may begin
 * with '-' when dash_words). An option that wants a value and has none
 * counts as a word. Anything else prints "prog: error: WHAT: COMPLAINT 'X'"
 * and returns 2; else 0. */
int gradeq_cli_scan(const struct gradeq_cli *cli, const char *what, const char *complaint, int argc,
		    char **argv, int from, const struct gradeq_cli_opt *opts, const char **word,
		    bool dash_words) GRADEQ_MUST_CHECK;

/* Asks question on stderr and reads the answer when stdin is a terminal;
 * true when yes is set or the answer starts with y. When stdin is no
 * terminal (a script) and yes is not set, prints one error line saying to
 * give --yes and returns false: nothing destructive happens unasked. */
bool gradeq_cli_confirm(const struct gradeq_cli *cli, const char *question, bool yes);

/* Prints one command of a --help text: its usage (lines after the first
 * carry their own indent) and its help (one line or more) from column 34,
 * beside the usage's last line when that is short enough. */
void gradeq_cli_print_command(FILE *out, const char *usage, const char *help);

/* Loads the configuration and sets up the log; prints the error itself.
 * Returns 0 or the error. */
int gradeq_cli_init(struct gradeq_cli *cli) GRADEQ_MUST_CHECK;
void gradeq_cli_release(struct gradeq_cli *cli);

int gradeq_cli_store(struct gradeq_cli *cli, struct gradeq_store **st) GRADEQ_MUST_CHECK;
/* A connection named for publishing (gradeq_broker_open()). */
int gradeq_cli_broker(struct gradeq_cli *cli, const char *release,
		      struct gradeq_broker **b) GRADEQ_MUST_CHECK;
/* The topology settings of the configuration. */
struct gradeq_topology gradeq_cli_topology(const struct gradeq_cli *cli);

/* Queue figures from the management API when management_url is set: *out
 * is NULL (and 0 returned) when it is not set; when the API cannot be read
 * *out is NULL too and the reason is logged as a warning once per process,
 * so status still shows what AMQP reports. */
void gradeq_cli_mgmt(struct gradeq_cli *cli, struct gradeq_mgmt **out);

/* Takes every FLAG out of argv[1..argc) (an option that may stand after a
 * command's name), setting *set when there was one; returns the new argc. */
int gradeq_cli_take_flag(int argc, char **argv, const char *flag, bool *set);

/* Catches SIGINT and SIGTERM into a flag the caller's loop polls, and
 * returns the flag (the same for every call). */
volatile sig_atomic_t *gradeq_cli_catch_stop(void);

#endif
