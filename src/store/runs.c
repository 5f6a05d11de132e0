/* The one door for run state changes: state and event in one statement. */
#include "gradeq/runs.h"

#include <stdio.h>
#include <string.h>

#include <libpq-fe.h>

#include "gradeq/store.h"
#include "store/internal.h"

/* $1 run (text), $2 from states, $3 to, $4 by, $5 jobs total, $6 learners
 * total (NULL: kept), $7 publishing ended. The run row is locked first, so
 * the event's from_state is the state the update replaced; the event's
 * to_state is the state after the triggers (a run whose jobs are all done
 * settles as it leaves publishing). */
static const char transition_sql[] =
	"WITH p AS (SELECT $1::text AS run_id, $2::text[] AS from_states, $3::text AS to_state,"
	"  $4::text AS by, $5::int AS jobs, $6::bigint AS learners, $7::bool AS published),"
	" o AS (SELECT r.run_id, r.state FROM gradeq_runs r, p WHERE r.run_id::text = p.run_id"
	"  FOR UPDATE OF r),"
	" u AS (UPDATE gradeq_runs r SET state = p.to_state,"
	"  jobs_total = coalesce(p.jobs, r.jobs_total),"
	"  learners_total = coalesce(p.learners, r.learners_total),"
	"  published_at = CASE WHEN p.published THEN now() ELSE r.published_at END,"
	"  finished_at = CASE WHEN p.to_state IN ('complete', 'failed', 'canceled') THEN now() END"
	"  FROM p, o WHERE r.run_id = o.run_id AND o.state = ANY (p.from_states)"
	"  RETURNING r.run_id, r.state, o.state AS old),"
	" ev AS (INSERT INTO gradeq_job_events (run_id, from_state, to_state, by)"
	"  SELECT u.run_id, u.old, u.state, coalesce(p.by, '') FROM u, p WHERE u.old <> u.state)"
	" SELECT o.state, u.state FROM (SELECT 1) one LEFT JOIN o ON true LEFT JOIN u ON true";

static int transition(struct gradeq_store *st, const char *run_id, unsigned from_mask,
		      enum gradeq_run_state to, const char *by, const char *const totals[2],
		      const char *what, struct gradeq_run_changed *out)
{
	char from[96];
	const char *params[7] = {run_id,
				 from,
				 gradeq_run_state_name(to),
				 by,
				 totals ? totals[0] : NULL,
				 totals ? totals[1] : NULL,
				 totals ? "t" : "f"};
	struct gradeq_run_changed ignored;
	PGresult *res = NULL;
	int rc = 0;

	if (!out)
		out = &ignored;
	memset(out, 0, sizeof(*out));
	gradeq_store_states_array(GRADEQ_STATE_RUN, from_mask, from, sizeof(from));
	res = PQexecParams(gradeq_store_conn(st), transition_sql, 7, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		rc = gradeq_store_result_error(st, res, what);
		goto out;
	}
	out->known =
		!PQgetisnull(res, 0, 0) && gradeq_run_state_parse(PQgetvalue(res, 0, 0), &out->old);
	out->state = out->old;
	out->changed = !PQgetisnull(res, 0, 1) &&
		       gradeq_run_state_parse(PQgetvalue(res, 0, 1), &out->state);
out:
	PQclear(res);
	return rc;
}

int gradeq_run_transition(struct gradeq_store *st, const char *run_id, unsigned from_mask,
			  enum gradeq_run_state to, const char *by, struct gradeq_run_changed *out)
{
	return transition(st, run_id, from_mask, to, by, NULL, "changing the run's state", out);
}

int gradeq_run_published(struct gradeq_store *st, const char *run_id, long jobs, long learners,
			 enum gradeq_run_state to, const char *by, struct gradeq_run_changed *out)
{
	char j[24], l[24];
	const char *totals[2] = {j, l};

	snprintf(j, sizeof(j), "%ld", jobs);
	snprintf(l, sizeof(l), "%ld", learners);
	return transition(st, run_id, GRADEQ_RUN_SET(GRADEQ_RUN_PUBLISHING), to, by, totals,
			  "finishing the run", out);
}

int gradeq_run_create(struct gradeq_store *st, const char *run_id, const char *release,
		      const char *options, int courses, const char *by)
{
	char nc[16];
	const char *params[5] = {run_id, release, options, nc, by};
	PGresult *res;
	int rc = 0;

	snprintf(nc, sizeof(nc), "%d", courses);
	res = PQexecParams(gradeq_store_conn(st),
			   "WITH r AS (INSERT INTO gradeq_runs (run_id, release, state, options,"
			   " courses) VALUES ($1::uuid, $2, 'publishing', $3::jsonb, $4::int)"
			   " RETURNING run_id)"
			   " INSERT INTO gradeq_job_events (run_id, to_state, by) SELECT run_id,"
			   " 'publishing', coalesce($5::text, '') FROM r",
			   5, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		rc = gradeq_store_result_error(st, res, "recording the run");
	PQclear(res);
	return rc;
}
