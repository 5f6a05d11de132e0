/* Publishing a run: cuts each course's enrollments into batches of
 * explicit user ids, records the jobs (committed) and publishes one job per
 * batch to the release's work queue, confirmed by the broker; records the
 * run and its end (the work of gradeq-publish). */
#ifndef GRADEQ_PUBLISHER_H
#define GRADEQ_PUBLISHER_H

#include <stdbool.h>

#include "gradeq/cli.h"

/* Connections kept from one run to the next (gradeq-publish --follow):
 * zeroed before the first run; a run takes them (opening what is missing)
 * and gives back the ones still sound when it succeeded; close them with
 * gradeq_publish_conns_close(). A kept broker connection is idle between
 * runs: keep it only across pauses well under the heartbeat. */
struct gradeq_publish_conns {
	struct gradeq_store *st, *wr;
	struct gradeq_broker *b; /* the release's queues declared, confirm mode on */
	char release[80];        /* what b was opened for */
	uint64_t sent;           /* messages published on b, confirmed or to be */
};
void gradeq_publish_conns_close(struct gradeq_publish_conns *c);
/* Closes only the broker connection (before a long pause). */
void gradeq_publish_conns_close_broker(struct gradeq_publish_conns *c);

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
	/* --incremental (without --changed-since) selects from each course's
	 * watermark (watermarks.h) and records the next one once the run's
	 * jobs are confirmed; rescan compares every learner with the stored
	 * grades instead, as when a course has no watermark yet */
	bool rescan;
	/* the run is recorded (and the broker connected) with its first job:
	 * nothing to publish records no run (run_id "" in the result) */
	bool lazy_run;
	struct gradeq_publish_conns *keep; /* NULL: the run's own connections */
};

struct gradeq_publish_result {
	char run_id[37]; /* "" on a dry run */
	char release[80];
	long courses, jobs, learners;
	long republished;      /* jobs published again after a lost connection */
	double seconds;        /* from the first course to the end */
	double select_seconds; /* reading the enrollments to publish */
	/* incremental: the data window, score rows modified from (the oldest
	 * watermark selected from; "" when a course was compared in full) to
	 * (the newest selection's clock) */
	char window_from[64], window_to[64];
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
