/* The job rows of the dead letters (see deadletters.h). */
#include <stdio.h>
#include <string.h>

#include "store/deadletters.h"

/* The set as a text[] literal of state names: "{dead,pending}". */
static void states_literal(gradeq_job_states_t set, char *buf, size_t len)
{
	size_t o = 0;

	o += (size_t)snprintf(buf, len, "{");
	for (int s = 0; s < GRADEQ_JOB_NSTATES && o < len; s++)
		if (set & GRADEQ_JOB_SET(s))
			o += (size_t)snprintf(buf + o, len - o, "%s%s", o > 1 ? "," : "",
					      gradeq_job_state_name((enum gradeq_job_state)s));
	if (o < len)
		snprintf(buf + o, len - o, "}");
}

int gradeq_store_deadletter_move(struct gradeq_store *st, const char *job_id,
				 gradeq_job_states_t from, enum gradeq_job_state to, const char *by,
				 const char *detail)
{
	char set[256];
	const char *params[5] = {job_id, set, gradeq_job_state_name(to), by, detail};
	PGresult *res;
	int rc = 0;

	states_literal(from, set, sizeof(set));
	res = PQexecParams(gradeq_store_conn(st),
			   "WITH j AS (UPDATE gradeq_jobs g SET state = $3,"
			   "  finished_at = CASE WHEN $3 = 'pending' THEN NULL ELSE now() END"
			   "  FROM (SELECT state FROM gradeq_jobs WHERE job_id = $1::uuid) o"
			   "  WHERE g.job_id = $1::uuid AND g.state = ANY ($2::text[])"
			   "  RETURNING g.run_id, o.state AS old),"
			   " ev AS (INSERT INTO gradeq_job_events"
			   "  (job_id, run_id, from_state, to_state, by, detail)"
			   "  SELECT $1::uuid, run_id, old, $3, $4, $5 FROM j)"
			   " UPDATE gradeq_runs r SET"
			   "  jobs_dead = r.jobs_dead - (j.old = 'dead')::int + ($3 = 'dead')::int,"
			   "  jobs_discarded = r.jobs_discarded - (j.old = 'discarded')::int"
			   "   + ($3 = 'discarded')::int,"
			   /* a job recorded dead here may be the run's last one: the
			    * trigger gradeq_runs_settle settles it */
			   "  state = CASE WHEN $3 = 'pending' AND r.state = 'failed'"
			   "   THEN 'running' ELSE r.state END,"
			   "  finished_at = CASE WHEN $3 = 'pending' AND r.state = 'failed'"
			   "   THEN NULL ELSE r.finished_at END"
			   " FROM j WHERE r.run_id = j.run_id",
			   5, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		rc = gradeq_store_result_error(st, res, "updating the job row");
	PQclear(res);
	return rc;
}
