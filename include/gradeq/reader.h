/* Where a job reads its course and scores: a hot standby (pg_read_dsn)
 * once it has replayed the primary's WAL as of the job's start, else, per
 * read_fallback, the primary at once or after waiting for the standby.
 * Writes always go to the primary. The consumer's second connection. */
#ifndef GRADEQ_READER_H
#define GRADEQ_READER_H

#include "gradeq/config.h"
#include "gradeq/store.h"

struct gradeq_reader;

/* A reader for cfg's pg_read_dsn (kept: a reload changes max_read_lag_ms,
 * read_fallback and read_wait_max_s in place), connecting lazily as
 * appname; NULL when pg_read_dsn is not set or out of memory. */
struct gradeq_reader *gradeq_reader_new(const struct gradeq_config *cfg, const char *appname);
void gradeq_reader_free(struct gradeq_reader *r);

/* The store job_id reads from, into *out: the standby once it has replayed
 * primary's WAL flush position taken now (polled for up to max_read_lag_ms),
 * else the primary (read_fallback primary, or the standby cannot be
 * reached: logged), or, with read_fallback wait, the standby after it caught
 * up. GRADEQ_ERR_DB_TRANSIENT when waiting took read_wait_max_s, or an
 * error of the primary. */
int gradeq_reader_pick(struct gradeq_reader *r, struct gradeq_store *primary, const char *job_id,
		       struct gradeq_store **out) GRADEQ_MUST_CHECK;

/* The last pick's wait for the standby in ms, and whether the standby was
 * still behind when it gave up (read_fallback primary) or was waited for
 * past max_read_lag_ms. */
void gradeq_reader_last(const struct gradeq_reader *r, double *waited_ms, bool *behind);

#endif
