/* The dead letters of a release: scanning its dead queue, selecting by
 * course, class, run, age and reason, and listing, replaying, exporting,
 * importing or purging what matches (the work of gradeq-replay).
 *
 * Scanning a dead queue: every message is fetched with basic.get (no
 * auto-ack), one at a time, up to the count the queue had when the scan
 * began. A message the command takes (replayed, purged, exported with
 * remove) is acked only once its new home is confirmed (or the export file
 * synced); every other one is republished, unchanged, to the tail of the
 * same queue, confirmed, and then acked. Cycling through exactly the
 * initial count leaves the messages not taken in their original relative
 * order. (Holding them unacknowledged and returning them at the end would
 * avoid the republish, but a quorum queue returns more than 32 messages in
 * hash order, and so does a closed channel: seen on RabbitMQ 3.10.)
 * At most one message is unacknowledged at any time: if the process dies,
 * the broker returns it, and the worst case is a duplicate of a message
 * whose copy was confirmed but whose ack was lost. */
#ifndef GRADEQ_DEADLETTERS_H
#define GRADEQ_DEADLETTERS_H

#include <stdbool.h>

#include "gradeq/cli.h"
#include "gradeq/deadview.h"

enum gradeq_dl_cmd {
	GRADEQ_DL_LIST,
	GRADEQ_DL_REPLAY,
	GRADEQ_DL_EXPORT,
	GRADEQ_DL_IMPORT,
	GRADEQ_DL_PURGE,
	GRADEQ_DL_NCMDS
};

/* What a command did (for callers other than gradeq-replay). */
struct gradeq_dl_result {
	long scanned, matched, acted, skipped;
};

/* The request of one gradeq-replay command. */
struct gradeq_dl_options {
	enum gradeq_dl_cmd cmd;
	const char *release, *to_release, *to_dead, *file;
	struct gradeq_dl_filters f;
	long limit;  /* -1: none */
	double rate; /* messages a second, 0: none */
	bool dry_run, yes, force, remove, json, quiet;
	/* optional: who the job events name (NULL: "gradeq-replay host=H
	 * pid=P"), no summary on stdout (silent), the counts into *result */
	const char *by;
	bool silent;
	struct gradeq_dl_result *result;
};

/* The command's name ("list"...), and its parser (false when unknown). */
const char *gradeq_dl_cmd_name(enum gradeq_dl_cmd cmd);
bool gradeq_dl_cmd_parse(const char *name, enum gradeq_dl_cmd *out);

/* Asks the command in hand to stop: the first call stops taking messages
 * (the cycle is completed so the order holds), the second stops after the
 * message in hand. Async-signal-safe. */
void gradeq_dl_interrupt(void);
/* True once gradeq_dl_interrupt() was called. */
bool gradeq_dl_interrupted(void);

/* Runs the command: its output on stdout, progress on a terminal's stderr.
 * 0 or a gradeq_err with its detail in gradeq_errmsg(). */
int gradeq_dl_run(struct gradeq_cli *cli, const struct gradeq_dl_options *o) GRADEQ_MUST_CHECK;

#endif
