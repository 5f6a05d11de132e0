/* gradeq-publish --follow: the incremental regrade run periodically, one
 * run after the other (each waits for the previous run's jobs to finish,
 * and --every is the least period), each iteration recorded in
 * gradeq_follow_iterations with its data window, times and learners. The
 * SQL lives in src/store/follow.c. */
#ifndef GRADEQ_FOLLOW_H
#define GRADEQ_FOLLOW_H

#include <stdbool.h>
#include <stddef.h>

#include "gradeq/cli.h"
#include "gradeq/publisher.h"

struct gradeq_store;

/* Asks the loop to stop once the iteration in hand is over (its run
 * published and finished); a second call stops waiting for the run's jobs.
 * Async-signal-safe. */
void gradeq_follow_stop(void);

/* Runs iterations of o (incremental) until gradeq_follow_stop(); every_s
 * the least seconds from one iteration's start to the next. 0 when
 * stopped, else the error that made it give up (configuration, schema). */
int gradeq_follow_run(struct gradeq_cli *cli, const struct gradeq_publish_options *o,
		      long every_s) GRADEQ_MUST_CHECK;

/* Waiting for a run's jobs to be over (complete, failed or canceled): woken
 * by the run's settled event on gradeq.events (the consumer that settles it
 * sends it after its commit), followed through a server-named queue opened
 * before the run is published; the run's state in the database decides.
 * A user that may not declare that queue (gradeq-publisher) polls the
 * state every GRADEQ_FOLLOW_POLL_MS. */
struct gradeq_run_wait;
int gradeq_run_wait_open(struct gradeq_cli *cli, const char *release,
			 struct gradeq_run_wait **w) GRADEQ_MUST_CHECK;
/* Until the run is over: its state into state. The first
 * gradeq_follow_stop() lets it finish; a second ends the wait with
 * state "interrupted". */
int gradeq_run_wait(struct gradeq_run_wait *w, const char *run_id, char *state,
		    size_t len) GRADEQ_MUST_CHECK;
/* The waiter's database connection (lives as long as the waiter). */
struct gradeq_store *gradeq_run_wait_store(struct gradeq_run_wait *w);
void gradeq_run_wait_free(struct gradeq_run_wait *w);

/* The least-squares fit t = o + p * h over n iterations (h the data window
 * each read, t its time); 0, or GRADEQ_ERR_INVALID when n < 2 or every h is
 * the same. Pure. */
int gradeq_follow_fit(const double *h, const double *t, size_t n, double *o,
		      double *p) GRADEQ_MUST_CHECK;

/* Whether the last n iterations show a loop falling behind: each took
 * longer than the window it read (t > h) and longer than the one before,
 * the last at least GRADEQ_FOLLOW_TREND_GROWTH times the first and
 * GRADEQ_FOLLOW_TREND_MIN_GROWTH_S seconds more, and the fit
 * over them says P >= 1. Pure. */
bool gradeq_follow_behind(const double *h, const double *t, size_t n);

/* --- the store's side (src/store/follow.c) --- */

struct gradeq_follow_row {
	const char *release, *run_id;        /* run_id "" when no run was made */
	const char *window_from, *window_to; /* "" for NULL */
	double select_s, seconds;
	long learners, jobs;
	const char *state; /* complete, failed, interrupted */
};

/* A new iteration row (state running), its id into *id. */
int gradeq_follow_begin(struct gradeq_store *st, const char *release, const char *by,
			long long *id) GRADEQ_MUST_CHECK;
/* The iteration's end. */
int gradeq_follow_end(struct gradeq_store *st, long long id,
		      const struct gradeq_follow_row *r) GRADEQ_MUST_CHECK;
/* Whether the run is over (complete, failed or canceled): *done. */
int gradeq_follow_run_done(struct gradeq_store *st, const char *run_id, bool *done, char *state,
			   size_t len) GRADEQ_MUST_CHECK;
/* The release's complete iterations that published (learners > 0), the
 * last 1000: learners, seconds and the arrival rate of each (learners per
 * second since the previous iteration's start, 0 for the release's first),
 * malloc'd (the caller frees all three), *n of them. */
int gradeq_follow_samples(struct gradeq_store *st, const char *release, double **learners,
			  double **seconds, double **rates, size_t *n) GRADEQ_MUST_CHECK;
/* The last n iterations (all releases, newest first) as a JSON array,
 * malloc'd. */
int gradeq_follow_recent_json(struct gradeq_store *st, int n, char **out) GRADEQ_MUST_CHECK;
/* Prints one line an iteration of recent_json (rendered by the server). */
void gradeq_follow_recent_text(struct gradeq_store *st, const char *json, FILE *out);

#endif
