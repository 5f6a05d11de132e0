/* What the programs share: configuration, one-line errors, connections
 * that name themselves, the release registry. */
#ifndef GRADEQ_CLI_H
#define GRADEQ_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "gradeq/broker.h"
#include "gradeq/config.h"
#include "gradeq/err.h"
#include "gradeq/mgmt.h"
#include "gradeq/store.h"

struct gradeq_cli {
	const char *prog;
	const char *conf_path; /* -c FILE, NULL for the default */
	struct gradeq_config *cfg;
};

/* Prints "prog: error: ..." on one line to stderr. */
void gradeq_cli_error(const struct gradeq_cli *cli, const char *fmt, ...) GRADEQ_PRINTF(2, 3);

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

/* Release registry. Resolves the release to publish to: an explicit name
 * is recorded as 'active' when new and refused when draining or retired;
 * NULL means the promoted one (error with how to promote when none).
 * Writes the name into out. */
int gradeq_release_resolve(struct gradeq_store *st, const char *explicit_name, char *out,
			   size_t len) GRADEQ_MUST_CHECK;
/* Reads a release's state into state[16]; GRADEQ_ERR_NOT_FOUND if unknown. */
int gradeq_release_state(struct gradeq_store *st, const char *name, char *state) GRADEQ_MUST_CHECK;

/* Validates a release name: 1-64 of [A-Za-z0-9._-]. */
bool gradeq_release_name_ok(const char *name);

#endif
