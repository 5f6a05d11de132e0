/* Publishing a run: cuts each course's enrollments into batches of
 * explicit user ids, records the jobs (committed) and publishes one job per
 * batch to the release's work queue, confirmed by the broker; records the
 * run and its end (the work of gradeq-publish). */
#ifndef GRADEQ_PUBLISHER_H
#define GRADEQ_PUBLISHER_H

#include <stdbool.h>

#include "gradeq/cli.h"

struct gradeq_publish_options {
	const char *release;  /* NULL: the promoted one */
	char *const *courses; /* the courses asked for, unless all */
	int ncourses;
	bool all; /* every course of the courses table */
	int batch_size;
	bool active_only, dry_run;
	bool quiet;                /* no progress (--quiet or --json) */
	bool incremental;          /* --incremental or --changed-since */
	const char *changed_since; /* NULL: after each learner's stored grade */
};

struct gradeq_publish_result {
	char run_id[37]; /* "" on a dry run */
	char release[80];
	long courses, jobs, learners;
	long republished; /* jobs published again after a lost connection */
	double seconds;   /* from the first course to the end */
};

/* Asks the run in hand to stop after the current fetch of enrollments
 * (GRADEQ_ERR_INTERRUPTED). Async-signal-safe. */
void gradeq_publish_interrupt(void);

/* Publishes (or, on a dry run, counts) the run o asks for. 0 when every
 * job was confirmed; else a gradeq_err with its detail in gradeq_errmsg(),
 * the run recorded failed when publishing had begun. out is filled in
 * either case. */
int gradeq_publish_run(struct gradeq_cli *cli, const struct gradeq_publish_options *o,
		       struct gradeq_publish_result *out) GRADEQ_MUST_CHECK;

#endif
