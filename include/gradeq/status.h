/* What gradeq-admin status shows: the runs (one, or the last 20) with jobs
 * and learners by state, rates and ETA, and each live release's queue
 * depths. The JSON shape is documented in docs/status.md and kept stable.
 * The SQL lives in src/store/status.c. */
#ifndef GRADEQ_STATUS_H
#define GRADEQ_STATUS_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

#include "gradeq/cli.h"

/* The --follow iterations status shows (newest first). */
#define GRADEQ_STATUS_FOLLOW_ITERATIONS 10

/* 0 when run is a known run id, GRADEQ_ERR_NOT_FOUND when not (or not a
 * run id at all), else the database error. */
int gradeq_status_run_known(struct gradeq_store *st, const char *run) GRADEQ_MUST_CHECK;

/* The runs (run, or the last 20 when NULL) as a JSON array, malloc'd. */
int gradeq_status_runs_json(struct gradeq_store *st, const char *run, char **out) GRADEQ_MUST_CHECK;

/* Every release not retired with its queue depths as a JSON array,
 * malloc'd; "queues" is null for a release whose queues could not be
 * read (no broker, say). */
int gradeq_status_releases_json(struct gradeq_cli *cli, struct gradeq_store *st,
				char **out) GRADEQ_MUST_CHECK;

/* Prints the status once to out: one JSON document, or the two tables
 * (after clearing the terminal when clear is set). */
int gradeq_status_print(struct gradeq_cli *cli, struct gradeq_store *st, const char *run, bool json,
			bool clear, FILE *out) GRADEQ_MUST_CHECK;

/* Prints the status every second until *stop is set: redrawn on a
 * terminal, one block after another elsewhere. */
int gradeq_status_watch(struct gradeq_cli *cli, struct gradeq_store *st, const char *run, bool json,
			volatile sig_atomic_t *stop) GRADEQ_MUST_CHECK;

#endif
