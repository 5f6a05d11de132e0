#include "gradeq/history.h"

#include <limits.h>
#include <stdio.h>

#include "gradeq/parse.h"

int gradeq_history_cancel(struct gradeq_store *st, const char *run, const char *by,
			  enum gradeq_run_state *was)
{
	/* the event row names the state the run really left: the row is
	 * locked before it changes, so what 'old' read is what was replaced */
	static const char sql[] =
		"WITH old AS (SELECT run_id, state FROM gradeq_runs WHERE run_id::text = $1"
		"  AND state IN ('publishing', 'running') FOR UPDATE),"
		" r AS (UPDATE gradeq_runs g SET state = 'canceled', finished_at = now()"
		"  FROM old WHERE g.run_id = old.run_id RETURNING g.run_id, old.state),"
		" ev AS (INSERT INTO gradeq_job_events (run_id, from_state, to_state, by)"
		"  SELECT run_id, state, 'canceled', $2 FROM r)"
		" SELECT (SELECT state FROM r),"
		" (SELECT state FROM gradeq_runs WHERE run_id::text = $1)";
	const char *params[2] = {run, by};
	PGresult *res = PQexecParams(gradeq_store_conn(st), sql, 2, NULL, params, NULL, NULL, 0);
	const char *state;
	int rc = 0;

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = gradeq_store_result_error(st, res, "cancel");
		goto out;
	}
	if (PQgetisnull(res, 0, 1)) {
		rc = gradeq_error(GRADEQ_ERR_NOT_FOUND, "unknown run '%s'", run);
		goto out;
	}
	state = PQgetvalue(res, 0, PQgetisnull(res, 0, 0) ? 1 : 0);
	if (!gradeq_run_state_parse(state, was)) {
		rc = gradeq_error(GRADEQ_ERR_DB, "run '%s' has unknown state '%s'", run, state);
		goto out;
	}
	if (PQgetisnull(res, 0, 0) && *was != GRADEQ_RUN_CANCELED)
		rc = gradeq_error(GRADEQ_ERR_STATE, "run '%s' is already %s", run, state);
out:
	PQclear(res);
	return rc;
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
