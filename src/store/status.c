#include "store/status.h"

#include <stdlib.h>
#include <string.h>

/* One JSON document per run; the shape is documented in
 * docs/status.md and kept stable. */
static const char runs_json_sql[] =
	"WITH r AS (SELECT * FROM gradeq_runs WHERE ($1::uuid IS NULL OR run_id = $1::uuid)"
	"  ORDER BY created_at DESC LIMIT 20),"
	" live AS (SELECT j.run_id, count(*) FILTER (WHERE j.state = 'in_progress') AS in_progress,"
	"  count(*) FILTER (WHERE j.state = 'retrying') AS retrying"
	"  FROM gradeq_jobs j JOIN r USING (run_id)"
	"  WHERE j.state IN ('in_progress', 'retrying') GROUP BY j.run_id),"
	" recent AS (SELECT j.run_id, sum(j.learners) AS learners FROM gradeq_jobs j JOIN r"
	"  USING (run_id) WHERE j.state = 'complete' AND j.finished_at > now() - interval '1 minute'"
	"  GROUP BY j.run_id)"
	" SELECT coalesce(json_agg(x ORDER BY x.created_at DESC), '[]')::text FROM ("
	" SELECT r.run_id, r.release, r.state, r.created_at, r.published_at, r.finished_at,"
	"  r.courses, r.learners_total, r.learners_complete,"
	"  json_build_object('total', r.jobs_total, 'complete', r.jobs_complete,"
	"   'dead', r.jobs_dead, 'canceled', r.jobs_canceled, 'discarded', r.jobs_discarded,"
	"   'in_progress', coalesce(l.in_progress, 0), 'retrying', coalesce(l.retrying, 0),"
	"   'pending', greatest(r.jobs_total - r.jobs_complete - r.jobs_dead - r.jobs_canceled"
	"    - r.jobs_discarded - coalesce(l.in_progress, 0) - coalesce(l.retrying, 0), 0)) AS jobs,"
	"  json_build_object('last_minute', round(coalesce(rc.learners, 0) / 60.0, 1),"
	"   'overall', round((r.learners_complete / greatest(extract(epoch FROM"
	"    coalesce(r.finished_at, now()) - r.created_at), 0.001))::numeric, 1)) AS learners_per_s,"
	"  CASE WHEN r.state IN ('publishing', 'running') AND coalesce(rc.learners, 0) > 0 THEN"
	"   round((r.learners_total - r.learners_complete) / (rc.learners / 60.0)) END AS eta_seconds,"
	"  (SELECT json_build_object('course_id', j.course_id, 'ms_per_learner',"
	"    round((avg(j.ms_total / greatest(j.learners, 1)))::numeric, 3))"
	"   FROM gradeq_jobs j WHERE j.run_id = r.run_id AND j.state = 'complete'"
	"   AND j.ms_total IS NOT NULL GROUP BY j.course_id"
	"   ORDER BY avg(j.ms_total / greatest(j.learners, 1)) DESC LIMIT 1) AS slowest_course,"
	"  coalesce((SELECT json_agg(e) FROM (SELECT ev.job_id, ev.at, ev.to_state AS state,"
	"    ev.detail AS error FROM gradeq_job_events ev WHERE ev.run_id = r.run_id"
	"    AND ev.detail IS NOT NULL ORDER BY ev.at DESC LIMIT 5) e), '[]') AS last_errors"
	" FROM r LEFT JOIN live l USING (run_id) LEFT JOIN recent rc USING (run_id)) x";

int gradeq_store_run_known(struct gradeq_store *st, const char *run)
{
	const char *params[1] = {run};
	PGresult *res = PQexecParams(gradeq_store_conn(st),
				     "SELECT 1 FROM gradeq_runs WHERE run_id::text = $1", 1, NULL,
				     params, NULL, NULL, 0);
	bool found = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;

	PQclear(res);
	return found ? 0 : GRADEQ_ERR_NOT_FOUND;
}

int gradeq_store_status_runs(struct gradeq_store *st, const char *run, char **out)
{
	const char *params[1] = {run};
	PGresult *res =
		PQexecParams(gradeq_store_conn(st), runs_json_sql, 1, NULL, params, NULL, NULL, 0);
	int rc = 0;

	*out = NULL;
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = gradeq_store_result_error(st, res, "status");
	else if (!(*out = strdup(PQgetvalue(res, 0, 0))))
		rc = GRADEQ_ERR_NOMEM;
	PQclear(res);
	return rc;
}

static void print_lines(struct gradeq_store *st, const char *sql, const char *json, FILE *out)
{
	const char *params[1] = {json};
	PGresult *t = PQexecParams(gradeq_store_conn(st), sql, 1, NULL, params, NULL, NULL, 0);

	for (int i = 0; PQresultStatus(t) == PGRES_TUPLES_OK && i < PQntuples(t); i++) {
		fputs(PQgetvalue(t, i, 0), out);
		fputc('\n', out);
	}
	PQclear(t);
}

void gradeq_store_status_runs_text(struct gradeq_store *st, const char *runs_json, FILE *out)
{
	print_lines(
		st,
		"SELECT format('%-36s  %-10s  %-9s  %5s/%-5s  %4s  %4s  %4s  %9s/%-9s  %7s  %s',"
		" r->>'run_id', r->>'release', r->>'state', r->'jobs'->>'complete',"
		" r->'jobs'->>'total', r->'jobs'->>'dead', r->'jobs'->>'retrying',"
		" r->'jobs'->>'canceled', r->>'learners_complete', r->>'learners_total',"
		" r->'learners_per_s'->>'last_minute', coalesce(r->>'eta_seconds' || ' s', '-'))"
		" FROM json_array_elements($1::json) r",
		runs_json, out);
}

void gradeq_store_status_releases_text(struct gradeq_store *st, const char *releases_json,
				       FILE *out)
{
	print_lines(st,
		    "SELECT format('%-16s  %-9s  work ready=%s unacked=%s consumers=%s  retry=%s"
		    "  dead=%s',"
		    " r->>'name', r->>'state', coalesce(r->'queues'->'work'->>'ready', '-'),"
		    " coalesce(r->'queues'->'work'->>'unacked', '-'),"
		    " coalesce(r->'queues'->'work'->>'consumers', '-'),"
		    " coalesce((SELECT string_agg(t->>'ready', '/') FROM"
		    "  json_array_elements(r->'queues'->'retry') t), '-'),"
		    " coalesce(r->'queues'->'dead'->>'ready', '-'))"
		    " FROM json_array_elements($1::json) r",
		    releases_json, out);
}
