#include "gradeq/history.h"

#include <limits.h>
#include <stdio.h>

#include "gradeq/parse.h"
#include "gradeq/runs.h"
#include "store/internal.h"

int gradeq_history_cancel(struct gradeq_store *st, const char *run, const char *by,
			  enum gradeq_run_state *was)
{
	struct gradeq_run_changed c;
	int rc = gradeq_run_transition(
		st, run, GRADEQ_RUN_SET(GRADEQ_RUN_PUBLISHING) | GRADEQ_RUN_SET(GRADEQ_RUN_RUNNING),
		GRADEQ_RUN_CANCELED, by, &c);

	if (rc)
		return rc;
	if (!c.known)
		return gradeq_error(GRADEQ_ERR_NOT_FOUND, "unknown run '%s'", run);
	*was = c.old;
	if (!c.changed && c.old != GRADEQ_RUN_CANCELED)
		return gradeq_error(GRADEQ_ERR_STATE, "run '%s' is already %s", run,
				    gradeq_run_state_name(c.old));
	return 0;
}

static int count_query(struct gradeq_store *st, const char *sql, long secs, long *n)
{
	char interval[32];
	const char *params[1] = {interval};
	PGresult *res;
	int rc = 0;

	snprintf(interval, sizeof(interval), "%ld seconds", secs);
	res = PQexecParams(gradeq_store_conn(st), sql, 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = gradeq_store_result_error(st, res, "purge-history");
	else if (gradeq_parse_long(PQgetvalue(res, 0, 0), 0, LONG_MAX, n))
		rc = gradeq_error(GRADEQ_ERR_DB, "purge-history: bad count '%s'",
				  PQgetvalue(res, 0, 0));
	PQclear(res);
	return rc;
}

int gradeq_history_count(struct gradeq_store *st, long secs, long *runs)
{
	return count_query(
		st,
		"SELECT count(*) FROM gradeq_runs WHERE finished_at < now() - $1::interval"
		" AND state IN ('complete', 'failed', 'canceled')",
		secs, runs);
}

int gradeq_history_purge(struct gradeq_store *st, long secs, long *runs)
{
	long n = 0;
	int rc;

	*runs = 0;
	do {
		rc = count_query(
			st,
			"WITH r AS (SELECT run_id FROM gradeq_runs WHERE finished_at < now() -"
			" $1::interval AND state IN ('complete', 'failed', 'canceled') LIMIT 100),"
			" ev AS (DELETE FROM gradeq_job_events WHERE run_id IN (SELECT run_id FROM r)),"
			" d AS (DELETE FROM gradeq_runs WHERE run_id IN (SELECT run_id FROM r)"
			" RETURNING 1) SELECT count(*) FROM d",
			secs, &n);
		if (!rc)
			*runs += n;
	} while (!rc && n > 0);
	return rc;
}
