/* gradeq-admin throttle: set, off and show a release's throughput budget
 * (learners a second shared by all its consumers). */
#ifndef GRADEQ_THROTTLE_CMD_H
#define GRADEQ_THROTTLE_CMD_H

#include <stdbool.h>
#include <stdio.h>

#include "gradeq/cli.h"
#include "gradeq/store.h"

#define GRADEQ_THROTTLE_USAGE                                                                      \
	"throttle set --learners-per-s N [--release R] | throttle off [--release R]\n"             \
	"     | throttle schedule [--release R] (--clear | HH:MM-HH:MM=N|off ...)\n"               \
	"     | throttle show [--release R]"

/* Runs "throttle VERB [OPTIONS]" (argv[0] is "throttle"): set records the
 * budget and announces throttle.<R>.set on gradeq.events, off removes it
 * (throttle.<R>.off), schedule replaces the quiet-hours windows (budgets
 * per time of day in the server's time zone, over the budget while they
 * last; throttle.<R>.schedule), show prints the budgets, achieved rates and the
 * consumers' states (--json: the "throttle" array of docs/status.md).
 * The release is --release, else the configuration's, else the promoted
 * one. Returns the exit status: 0, 1 (failure) or 2 (usage). */
int gradeq_throttle_main(struct gradeq_cli *cli, struct gradeq_store *st, int argc, char **argv,
			 bool json);

/* The throttle of each release (of release only when not NULL) for status:
 * a JSON array in a new string, and its text lines. */
int gradeq_throttle_status_json(struct gradeq_store *st, const char *release,
				char **out) GRADEQ_MUST_CHECK;
void gradeq_throttle_status_text(struct gradeq_store *st, const char *json, FILE *out);

#endif
