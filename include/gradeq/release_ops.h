/* The operator's release commands (gradeq-admin release ...): each
 * combines the registry, the broker and the release's exact queue list
 * (gradeq/release.h), prints what it did to out and returns 0 or the error,
 * which the caller prints. */
#ifndef GRADEQ_RELEASE_OPS_H
#define GRADEQ_RELEASE_OPS_H

#include <stdbool.h>
#include <stdio.h>

#include "gradeq/cli.h"

/* Every release with its state, schema, runs and queue figures (empty
 * without a broker), as a table or as one JSON array. */
int gradeq_release_print_list(struct gradeq_cli *cli, struct gradeq_store *st, bool json,
			      FILE *out) GRADEQ_MUST_CHECK;

/* Declares name's queues, then makes it the promoted release; the one
 * promoted before starts draining. Both are announced on gradeq.events. */
int gradeq_release_do_promote(struct gradeq_cli *cli, struct gradeq_store *st, const char *name,
			      FILE *out) GRADEQ_MUST_CHECK;

/* Marks an active release draining (refused when promoted or retired)
 * and, with forward, moves what waits in its retry tiers to the promoted
 * release's work queue, each message confirmed before it is removed. */
int gradeq_release_do_drain(struct gradeq_cli *cli, struct gradeq_store *st, const char *name,
			    bool forward, FILE *out) GRADEQ_MUST_CHECK;

/* Deletes a drained release's queues and marks it retired; refused when
 * promoted, while any queue holds work or consumers, or while its dead
 * queue holds letters, unless move_dead_to names the release whose dead
 * queue takes them (each confirmed). */
int gradeq_release_do_retire(struct gradeq_cli *cli, struct gradeq_store *st, const char *name,
			     const char *move_dead_to, FILE *out) GRADEQ_MUST_CHECK;

#endif
