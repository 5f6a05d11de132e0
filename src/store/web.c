/* What gradeq-web reads from the database, each answer one JSON text
 * built by PostgreSQL (docs/web-api.md gives the shapes). */
#include "gradeq/webstore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"

/* One job row as the API's JOB object (j is gradeq_jobs). */
#define JOB_JSON                                                                                   \
	"json_build_object('job_id', j.job_id, 'run_id', j.run_id, 'course_id', j.course_id,"      \
	" 'seq', j.seq, 'learners', j.learners, 'state', j.state, 'attempts', j.attempts,"         \
	" 'last_error', j.last_error, 'error_class', j.error_class, 'consumer', j.consumer,"       \
	" 'created_at', j.created_at, 'started_at', j.started_at, 'finished_at', j.finished_at,"   \
	" 'timings', json_build_object('load_ms', j.ms_load, 'fetch_ms', j.ms_fetch,"              \
	" 'compute_ms', j.ms_compute, 'write_ms', j.ms_write, 'total_ms', j.ms_total))"

/* Runs sql with n text parameters; *out gets the first column of the
 * first row (malloc'd), or NULL when there is no row. */
static int one_json(struct gradeq_store *st, const char *what, const char *sql, int n,
		    const char *const *params, char **out)
{
	PGresult *res = PQexecParams(gradeq_store_conn(st), sql, n, NULL, params, NULL, NULL, 0);
	int rc = 0;

	*out = NULL;
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = gradeq_store_result_error(st, res, what);
	else if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0) &&
		 !(*out = strdup(PQgetvalue(res, 0, 0))))
		rc = GRADEQ_ERR_NOMEM;
	PQclear(res);
	return rc;
}

int gradeq_webstore_states(struct gradeq_store *st, char **out)
{
	static const char sql[] =
		"SELECT json_object_agg(kind, json_build_object('states', states,"
		" 'transitions', transitions))::text FROM ("
		" SELECT kind, (SELECT json_agg(DISTINCT s) FROM (SELECT from_state AS s FROM"
		"  gradeq_state_transitions x WHERE x.kind = t.kind UNION SELECT to_state FROM"
		"  gradeq_state_transitions x WHERE x.kind = t.kind) u) AS states,"
		"  json_agg(json_build_array(from_state, to_state) ORDER BY from_state, to_state)"
		"  AS transitions FROM gradeq_state_transitions t GROUP BY kind) k";

	return one_json(st, "states", sql, 0, NULL, out);
}

int gradeq_webstore_run(struct gradeq_store *st, const char *run, char **out)
{
	static const char sql[] =
		"SELECT json_build_object('jobs_by_state', (SELECT coalesce(json_object_agg(state, n),"
		"  '{}') FROM (SELECT state, count(*) AS n FROM gradeq_jobs WHERE run_id = r.run_id"
		"  GROUP BY state) s),"
		" 'jobs_by_course', (SELECT coalesce(json_agg(c ORDER BY c.course_id), '[]') FROM"
		"  (SELECT course_id, count(*) AS jobs, count(*) FILTER (WHERE state = 'complete')"
		"   AS complete, count(*) FILTER (WHERE state = 'dead') AS dead,"
		"   sum(learners) AS learners FROM gradeq_jobs WHERE run_id = r.run_id"
		"   GROUP BY course_id) c))::text"
		" FROM gradeq_runs r WHERE r.run_id::text = $1";
	const char *params[1] = {run};

	return one_json(st, "run", sql, 1, params, out);
}

int gradeq_webstore_jobs(struct gradeq_store *st, const char *run, const char *state,
			 const char *course, long limit, long offset, char **out)
{
	static const char sql[] =
		"WITH m AS (SELECT * FROM gradeq_jobs j WHERE j.run_id::text = $1"
		" AND ($2::text IS NULL OR j.state = $2) AND ($3::text IS NULL OR j.course_id = $3))"
		" SELECT json_build_object('total', (SELECT count(*) FROM m), 'jobs',"
		" coalesce((SELECT json_agg(" JOB_JSON " ORDER BY j.course_id, j.seq) FROM"
		" (SELECT * FROM m ORDER BY course_id, seq LIMIT $4::bigint OFFSET $5::bigint) j),"
		" '[]'))::text";
	char lim[24], off[24];
	const char *params[5] = {run, state, course, lim, off};

	snprintf(lim, sizeof(lim), "%ld", limit);
	snprintf(off, sizeof(off), "%ld", offset);
	return one_json(st, "jobs", sql, 5, params, out);
}

int gradeq_webstore_job(struct gradeq_store *st, const char *job, char **out)
{
	static const char sql[] =
		"SELECT json_build_object('job', " JOB_JSON ","
		" 'first_user_ids', coalesce(to_json(j.first_user_ids), '[]'),"
		" 'events', coalesce((SELECT json_agg(json_build_object('from_state', e.from_state,"
		"  'to_state', e.to_state, 'at', e.at, 'by', e.by, 'detail', e.detail)"
		"  ORDER BY e.at, e.id) FROM gradeq_job_events e WHERE e.job_id = j.job_id),"
		"  '[]'))::text FROM gradeq_jobs j WHERE j.job_id::text = $1";
	const char *params[1] = {job};

	return one_json(st, "job", sql, 1, params, out);
}

int gradeq_webstore_dead(struct gradeq_store *st, const char *release, const char *course,
			 const char *reason, long limit, char **out)
{
	static const char sql[] =
		"WITH m AS (SELECT j.*, r.release FROM gradeq_jobs j JOIN gradeq_runs r"
		" USING (run_id) WHERE j.state = 'dead' AND ($1::text IS NULL OR r.release = $1)"
		" AND ($2::text IS NULL OR j.course_id = $2)"
		" AND ($3::text IS NULL OR strpos(coalesce(j.last_error, ''), $3) > 0))"
		" SELECT json_build_object('total', (SELECT count(*) FROM m), 'dead',"
		" coalesce((SELECT json_agg(json_build_object('job_id', d.job_id, 'run_id',"
		"  d.run_id, 'release', d.release, 'course_id', d.course_id, 'learners',"
		"  d.learners, 'first_user_ids', coalesce(to_json(d.first_user_ids), '[]'),"
		"  'attempts', d.attempts, 'error_class', d.error_class, 'last_error', d.last_error,"
		"  'failed_by', d.consumer, 'at', d.finished_at) ORDER BY d.finished_at DESC,"
		"  d.job_id) FROM (SELECT * FROM m ORDER BY finished_at DESC, job_id"
		"  LIMIT $4::bigint) d), '[]'))::text";
	char lim[24];
	const char *params[4] = {release, course, reason, lim};

	snprintf(lim, sizeof(lim), "%ld", limit);
	return one_json(st, "dead", sql, 4, params, out);
}

int gradeq_webstore_consumer_jobs(struct gradeq_store *st, const char *consumer, const char *since,
				  char **out)
{
	static const char sql[] =
		"SELECT json_build_object("
		" 'job', (SELECT json_build_object('job_id', j.job_id, 'course_id', j.course_id,"
		"  'holding_s', round(extract(epoch FROM now() - j.started_at)::numeric, 1))"
		"  FROM gradeq_jobs j WHERE j.consumer = $1 AND j.state = 'in_progress'"
		"  ORDER BY j.started_at DESC LIMIT 1),"
		" 'done', (SELECT count(*) FROM gradeq_jobs j WHERE j.consumer = $1"
		"  AND j.state = 'complete' AND j.finished_at >= to_timestamp($2::float8 / 1000)),"
		" 'failed', (SELECT count(*) FROM gradeq_job_events e JOIN gradeq_jobs j"
		"  USING (job_id) WHERE j.consumer = $1 AND e.to_state IN ('retrying', 'dead')"
		"  AND e.at >= to_timestamp($2::float8 / 1000)))::text";
	const char *params[2] = {consumer, since};

	return one_json(st, "consumers", sql, 2, params, out);
}

int gradeq_webstore_unfinished_jobs(struct gradeq_store *st, const char *run, long *n)
{
	static const char sql[] = "SELECT count(*)::text FROM gradeq_jobs WHERE run_id::text = $1"
				  " AND state IN ('pending', 'in_progress', 'retrying')";
	const char *params[1] = {run};
	char *out = NULL;
	int rc = one_json(st, "cancel", sql, 1, params, &out);

	*n = rc || !out ? 0 : strtol(out, NULL, 10);
	free(out);
	return rc;
}
