/* Reads from a hot standby: the primary's WAL position when a job starts,
 * and whether the standby has replayed up to it (so that what a job reads
 * there is no older than what the primary had when the job began). */
#ifndef GRADEQ_REPLICA_H
#define GRADEQ_REPLICA_H

#include <stdbool.h>
#include <stddef.h>

#include "gradeq/store.h"

/* The primary's WAL flush position (pg_current_wal_flush_lsn(): every
 * committed transaction is at or before it), as pg_lsn text, into lsn. */
int gradeq_replica_primary_lsn(struct gradeq_store *primary, char *lsn,
			       size_t len) GRADEQ_MUST_CHECK;

/* *yes: the standby has replayed lsn (a server not in recovery, i.e. a
 * primary, always has); *behind gets the bytes of WAL still to replay
 * (0 when caught up). */
int gradeq_replica_caught_up(struct gradeq_store *standby, const char *lsn, bool *yes,
			     double *behind) GRADEQ_MUST_CHECK;

#endif
