/* The standby reader (see include/gradeq/reader.h). The LSN comparison is
 * exact: a standby that replayed the primary's flush position as of the
 * job's start holds every transaction committed before it. */
#include "gradeq/reader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gradeq/log.h"
#include "gradeq/replica.h"

/* How often a job polls the standby's replay position, and how long a
 * standby that could not be reached is left alone. */
#define POLL_MS 20
#define RECONNECT_S 5

struct gradeq_reader {
	const struct gradeq_config *cfg;
	char *appname;
	struct gradeq_store *st;
	time_t failed_at; /* last failed connect; 0 when none */
	double waited_ms; /* the last pick's */
	bool behind;
};

struct gradeq_reader *gradeq_reader_new(const struct gradeq_config *cfg, const char *appname)
{
	struct gradeq_reader *r;

	if (!cfg->pg_read_dsn)
		return NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->cfg = cfg;
	r->appname = strdup(appname);
	if (!r->appname) {
		free(r);
		return NULL;
	}
	return r;
}

void gradeq_reader_free(struct gradeq_reader *r)
{
	if (!r)
		return;
	gradeq_store_free(r->st);
	free(r->appname);
	free(r);
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* The standby's connection, (re)opened when gone; NULL while it cannot be
 * reached (one line when that starts, one when it ends). */
static struct gradeq_store *standby(struct gradeq_reader *r)
{
	int rc;

	if (r->st && !gradeq_store_broken(r->st))
		return r->st;
	gradeq_store_free(r->st);
	r->st = NULL;
	if (r->failed_at && time(NULL) - r->failed_at < RECONNECT_S)
		return NULL;
	rc = gradeq_store_connect(r->cfg->pg_read_dsn, r->appname, r->cfg->statement_timeout_ms,
				  &r->st);
	if (rc) {
		if (!r->failed_at)
			log_warn("event=standby_unavailable error=\"%s\" reading_from=primary",
				 gradeq_errmsg(rc));
		r->failed_at = time(NULL);
		r->st = NULL;
		return NULL;
	}
	if (r->failed_at)
		log_info("event=reconnected what=standby");
	r->failed_at = 0;
	return r->st;
}

int gradeq_reader_pick(struct gradeq_reader *r, struct gradeq_store *primary, const char *job_id,
		       struct gradeq_store **out)
{
	const struct gradeq_config *cfg = r->cfg;
	struct gradeq_store *sb;
	struct timespec t0;
	char lsn[64];
	bool yes = false, waiting = false;
	double behind = 0;
	int rc;

	*out = primary;
	r->waited_ms = 0;
	r->behind = false;
	sb = standby(r);
	if (!sb)
		return 0;
	rc = gradeq_replica_primary_lsn(primary, lsn, sizeof(lsn));
	if (rc)
		return rc;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct timespec nap = {0, POLL_MS * 1000000L};
		double ms;

		rc = gradeq_replica_caught_up(sb, lsn, &yes, &behind);
		if (rc) {
			log_warn("event=standby_lost job=%s error=\"%s\" reading_from=primary",
				 job_id, gradeq_errmsg(rc));
			return 0;
		}
		ms = ms_since(&t0);
		r->waited_ms = ms;
		if (yes) {
			if (waiting)
				log_info("event=standby_caught_up job=%s waited_ms=%.0f", job_id,
					 ms);
			*out = sb;
			return 0;
		}
		if (ms >= cfg->max_read_lag_ms)
			r->behind = true;
		if (ms >= cfg->max_read_lag_ms && strcmp(cfg->read_fallback, "primary") == 0) {
			log_warn(
				"event=read_fallback job=%s reading_from=primary reason=standby_behind "
				"behind_bytes=%.0f waited_ms=%.0f",
				job_id, behind, ms);
			return 0;
		}
		if (ms >= cfg->max_read_lag_ms && !waiting) {
			waiting = true;
			log_warn("event=read_wait job=%s reason=standby_behind behind_bytes=%.0f "
				 "max_read_lag_ms=%d",
				 job_id, behind, cfg->max_read_lag_ms);
		}
		if (ms >= (double)cfg->read_wait_max_s * 1000)
			return gradeq_error(
				GRADEQ_ERR_DB_TRANSIENT,
				"the standby stayed %.0f bytes behind the primary for %d s", behind,
				cfg->read_wait_max_s);
		nanosleep(&nap, NULL);
	}
}

void gradeq_reader_last(const struct gradeq_reader *r, double *waited_ms, bool *behind)
{
	*waited_ms = r ? r->waited_ms : 0;
	*behind = r ? r->behind : false;
}
