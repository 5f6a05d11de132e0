/* The --follow loop's records (see follow.h): gradeq_follow_iterations,
 * and the state of the run an iteration waits for. */
#include "gradeq/follow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"

int gradeq_follow_begin(struct gradeq_store *st, const char *release, const char *by, long long *id)
{
	const char *params[2] = {release, by};
	PGresult *res = PQexecParams(gradeq_store_conn(st),
				     "INSERT INTO gradeq_follow_iterations (release, started_at,"
				     " created_by) VALUES ($1, clock_timestamp(), $2) RETURNING id",
				     2, NULL, params, NULL, NULL, 0);
	int rc = 0;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		rc = gradeq_store_result_error(st, res, "recording the iteration");
	else
		*id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return rc;
}

int gradeq_follow_end(struct gradeq_store *st, long long id, const struct gradeq_follow_row *r)
{
	char sid[24], sel[32], secs[32], lrn[24], jobs[24];
	const char *params[10] = {sid,
				  r->release,
				  r->run_id && *r->run_id ? r->run_id : NULL,
				  r->window_from && *r->window_from ? r->window_from : NULL,
				  r->window_to && *r->window_to ? r->window_to : NULL,
				  sel,
				  secs,
				  lrn,
				  jobs,
				  r->state};
	PGresult *res;
	int rc = 0;

	snprintf(sid, sizeof(sid), "%lld", id);
	snprintf(sel, sizeof(sel), "%.6f", r->select_s);
	snprintf(secs, sizeof(secs), "%.6f", r->seconds);
	snprintf(lrn, sizeof(lrn), "%ld", r->learners);
	snprintf(jobs, sizeof(jobs), "%ld", r->jobs);
	res = PQexecParams(
		gradeq_store_conn(st),
		"UPDATE gradeq_follow_iterations SET release = $2, run_id = $3,"
		" window_from = $4, window_to = $5, select_seconds = $6, seconds = $7,"
		" learners = $8, jobs = $9, state = $10, finished_at = clock_timestamp(),"
		" published_at = (SELECT published_at FROM gradeq_runs WHERE run_id = $3)"
		" WHERE id = $1",
		10, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		rc = gradeq_store_result_error(st, res, "recording the iteration");
	PQclear(res);
	return rc;
}

int gradeq_follow_run_done(struct gradeq_store *st, const char *run_id, bool *done, char *state,
			   size_t len)
{
	const char *params[1] = {run_id};
	PGresult *res = PQexecParams(gradeq_store_conn(st),
				     "SELECT state FROM gradeq_runs WHERE run_id = $1", 1, NULL,
				     params, NULL, NULL, 0);
	int rc = 0;

	*done = false;
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		rc = gradeq_store_result_error(st, res, "reading the run");
	} else {
		const char *s = PQgetvalue(res, 0, 0);

		*done = strcmp(s, "complete") == 0 || strcmp(s, "failed") == 0 ||
			strcmp(s, "canceled") == 0;
		snprintf(state, len, "%s", s);
	}
	PQclear(res);
	return rc;
}

int gradeq_follow_samples(struct gradeq_store *st, const char *release, double **learners,
			  double **seconds, double **rates, size_t *n)
{
	const char *params[1] = {release};
	/* the rate: learners over the seconds since the previous iteration's
	 * start (what arrived while it ran), over the release's last
	 * iterations of every kind (an empty one starts a window too) */
	PGresult *res = PQexecParams(
		gradeq_store_conn(st),
		"SELECT learners, seconds, coalesce(learners / nullif(extract(epoch FROM gap), 0), 0)"
		" FROM (SELECT id, learners, seconds, state,"
		"  started_at - lag(started_at) OVER (ORDER BY id) AS gap"
		"  FROM (SELECT * FROM gradeq_follow_iterations WHERE release = $1"
		"   ORDER BY id DESC LIMIT 20000) last) s"
		" WHERE state = 'complete' AND learners > 0 AND seconds IS NOT NULL"
		" ORDER BY id DESC LIMIT 1000",
		1, NULL, params, NULL, NULL, 0);
	double **cols[3] = {learners, seconds, rates};
	int rc = 0;

	for (int c = 0; c < 3; c++)
		*cols[c] = NULL;
	*n = 0;
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = gradeq_store_result_error(st, res, "reading the iterations");
	} else if (PQntuples(res) > 0) {
		size_t k = (size_t)PQntuples(res);

		for (int c = 0; c < 3; c++)
			if (!(*cols[c] = malloc(k * sizeof(double))))
				rc = GRADEQ_ERR_NOMEM;
		for (size_t i = 0; !rc && i < k; i++)
			for (int c = 0; c < 3; c++)
				(*cols[c])[i] = strtod(PQgetvalue(res, (int)i, c), NULL);
		if (!rc)
			*n = k;
	}
	PQclear(res);
	if (rc)
		for (int c = 0; c < 3; c++) {
			free(*cols[c]);
			*cols[c] = NULL;
		}
	return rc;
}

int gradeq_follow_recent_json(struct gradeq_store *st, int n, char **out)
{
	char sn[16];
	const char *params[1] = {sn};
	PGresult *res;
	int rc = 0;

	*out = NULL;
	snprintf(sn, sizeof(sn), "%d", n);
	res = PQexecParams(
		gradeq_store_conn(st),
		"SELECT coalesce(json_agg(json_build_object('id', i.id, 'release', i.release,"
		" 'run_id', i.run_id, 'state', i.state, 'started_at', i.started_at,"
		" 'finished_at', i.finished_at, 'seconds', i.seconds,"
		" 'select_seconds', i.select_seconds, 'learners', i.learners, 'jobs', i.jobs,"
		" 'window', json_build_object('from', i.window_from, 'to', i.window_to))"
		" ORDER BY i.id DESC), '[]') FROM (SELECT * FROM gradeq_follow_iterations"
		" ORDER BY id DESC LIMIT $1::int) i",
		1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = gradeq_store_result_error(st, res, "status");
	else if (!(*out = strdup(PQgetvalue(res, 0, 0))))
		rc = GRADEQ_ERR_NOMEM;
	PQclear(res);
	return rc;
}

void gradeq_follow_recent_text(struct gradeq_store *st, const char *json, FILE *out)
{
	const char *params[1] = {json};
	PGresult *t = PQexecParams(
		gradeq_store_conn(st),
		"SELECT format('%-8s  %-16s  %-11s  %-19s  %9s  %8s  %8s  %s',"
		" i->>'id', i->>'release', i->>'state',"
		" to_char((i->>'started_at')::timestamptz, 'YYYY-MM-DD HH24:MI:SS'),"
		" coalesce(round((i->>'seconds')::numeric, 2)::text, '-'),"
		" coalesce(round((i->>'select_seconds')::numeric, 3)::text, '-'),"
		" i->>'learners', coalesce(to_char((i->'window'->>'from')::timestamptz,"
		" 'HH24:MI:SS.MS'), 'all') || ' .. ' || coalesce(to_char((i->'window'->>'to')"
		"::timestamptz, 'HH24:MI:SS.MS'), '-'))"
		" FROM json_array_elements($1::json) i",
		1, NULL, params, NULL, NULL, 0);

	for (int i = 0; PQresultStatus(t) == PGRES_TUPLES_OK && i < PQntuples(t); i++) {
		fputs(PQgetvalue(t, i, 0), out);
		fputc('\n', out);
	}
	PQclear(t);
}
