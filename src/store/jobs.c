/* The one door for job state changes: row, event and run counters in one
 * statement. */
#include "gradeq/jobs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "gradeq/limits.h"
#include "gradeq/store.h"
#include "store/internal.h"

/* $1 job, $2 from states, $3 to, $4 by, $5 detail, $6 error, $7 run hint,
 * $8..$14 completion stats (NULL: kept), $15 error class (NULL: kept), $16
 * true: commit asynchronously (the statement is its own transaction), $17
 * a course whose version is returned too (NULL: none), $18 true: the run
 * row is left alone (a group counts its completions at its end). The job row is locked first, so the
 * event's from_state is the state the update replaced. The run row is
 * touched only when a counter moves or a failed run comes back: a consumer
 * taking a job does not queue behind the others on its run. */
static const char transition_sql[] =
	"WITH p AS (SELECT $1::uuid AS job_id, $2::text[] AS from_states, $3::text AS to_state,"
	"  $4::text AS by, $5::text AS detail, $6::text AS error,"
	"  CASE WHEN $16::bool THEN set_config('synchronous_commit', 'off', true) END AS sync),"
	" o AS (SELECT g.run_id, g.state, g.learners FROM gradeq_jobs g, p"
	"  WHERE g.job_id = p.job_id FOR UPDATE OF g),"
	" j AS (UPDATE gradeq_jobs g SET state = p.to_state,"
	"  attempts = g.attempts + (p.to_state = 'in_progress')::int,"
	"  started_at = CASE WHEN p.to_state = 'in_progress' THEN now() ELSE g.started_at END,"
	"  consumer = CASE WHEN p.to_state = 'in_progress' THEN p.by ELSE g.consumer END,"
	"  finished_at = CASE WHEN p.to_state = 'in_progress' THEN g.finished_at"
	"   WHEN p.to_state IN ('pending', 'retrying') THEN NULL ELSE now() END,"
	"  last_error = coalesce(p.error, g.last_error),"
	"  error_class = coalesce($15::text, g.error_class),"
	"  ms_load = coalesce($8::float8, g.ms_load), ms_fetch = coalesce($9::float8, g.ms_fetch),"
	"  ms_compute = coalesce($10::float8, g.ms_compute),"
	"  graded = coalesce($11::int, g.graded), skipped = coalesce($12::int, g.skipped),"
	"  subsections = coalesce($13::int, g.subsections),"
	"  score_rows = coalesce($14::int, g.score_rows)"
	"  FROM p, o WHERE g.job_id = p.job_id AND o.state = ANY (p.from_states)"
	"  RETURNING g.run_id, g.learners, o.state AS old),"
	" ev AS (INSERT INTO gradeq_job_events (job_id, run_id, from_state, to_state, by, detail)"
	"  SELECT p.job_id, j.run_id, j.old, p.to_state, coalesce(p.by, ''), p.detail FROM j, p"
	"  WHERE j.old <> p.to_state OR p.detail IS NOT NULL),"
	/* the run row, locked before it changes: its true previous state */
	" ro AS (SELECT r.run_id, r.state FROM gradeq_runs r, j, p"
	"  WHERE r.run_id = j.run_id AND j.old <> p.to_state AND NOT $18::bool"
	"  AND (p.to_state IN ('complete', 'dead', 'canceled', 'discarded', 'pending')"
	"   OR j.old IN ('complete', 'dead', 'canceled', 'discarded'))"
	"  FOR UPDATE OF r),"
	" r AS (UPDATE gradeq_runs r SET"
	"  jobs_complete = r.jobs_complete + (p.to_state = 'complete')::int"
	"   - (j.old = 'complete')::int,"
	"  learners_complete = r.learners_complete"
	"   + j.learners * ((p.to_state = 'complete')::int - (j.old = 'complete')::int),"
	"  jobs_dead = r.jobs_dead + (p.to_state = 'dead')::int - (j.old = 'dead')::int,"
	"  jobs_canceled = r.jobs_canceled + (p.to_state = 'canceled')::int"
	"   - (j.old = 'canceled')::int,"
	"  jobs_discarded = r.jobs_discarded + (p.to_state = 'discarded')::int"
	"   - (j.old = 'discarded')::int,"
	/* a job sent back makes its failed run running again; the last job
	 * counted settles the run (trigger gradeq_runs_settle), which sets
	 * finished_at = now() only in the transaction that settled it */
	"  state = CASE WHEN p.to_state = 'pending' AND r.state = 'failed' THEN 'running'"
	"   ELSE r.state END,"
	"  finished_at = CASE WHEN p.to_state = 'pending' AND r.state = 'failed' THEN NULL"
	"   ELSE r.finished_at END"
	"  FROM j, p, ro WHERE r.run_id = ro.run_id"
	"  RETURNING r.run_id, r.state, r.finished_at = now() AS settled),"
	/* the run's own change (settled, or running again) is a run event */
	" rev AS (INSERT INTO gradeq_job_events (run_id, from_state, to_state, by)"
	"  SELECT r.run_id, ro.state, r.state, coalesce(p.by, '') FROM r, ro, p"
	"  WHERE r.state <> ro.state)"
	" SELECT o.state, (SELECT count(*) FROM j), o.run_id, o.learners,"
	"  (SELECT state FROM r), (SELECT settled FROM r),"
	"  (SELECT x.state FROM gradeq_runs x WHERE x.run_id = coalesce(o.run_id, $7::uuid)),"
	"  (SELECT c.version FROM courses c WHERE c.course_id = $17::text)"
	" FROM (SELECT 1) one LEFT JOIN o ON true";

static const char *what(enum gradeq_job_state to)
{
	switch (to) {
	case GRADEQ_JOB_IN_PROGRESS: return "starting job";
	case GRADEQ_JOB_COMPLETE: return "writing grades";
	case GRADEQ_JOB_CANCELED: return "canceling job";
	case GRADEQ_JOB_RETRYING:
	case GRADEQ_JOB_DEAD: return "recording failure";
	default: return "updating the job row";
	}
}

static void read_changed(const PGresult *res, struct gradeq_job_changed *out)
{
	out->known =
		!PQgetisnull(res, 0, 0) && gradeq_job_state_parse(PQgetvalue(res, 0, 0), &out->old);
	out->changed = strcmp(PQgetvalue(res, 0, 1), "0") != 0;
	snprintf(out->run_id, sizeof(out->run_id), "%s", PQgetvalue(res, 0, 2));
	out->learners = (int)strtol(PQgetvalue(res, 0, 3), NULL, 10);
	if (!PQgetisnull(res, 0, 5) && PQgetvalue(res, 0, 5)[0] == 't')
		snprintf(out->run_settled, sizeof(out->run_settled), "%s", PQgetvalue(res, 0, 4));
	out->run_known = !PQgetisnull(res, 0, 6) &&
			 gradeq_run_state_parse(PQgetvalue(res, 0, 6), &out->run_state);
}

/* The transition, committed asynchronously when async (outside any
 * transaction only), and the version of course_id when given (*version
 * malloc'd, NULL for an unknown course). */
static int transition(struct gradeq_store *st, const struct gradeq_job_change *c, bool async,
		      const char *course_id, struct gradeq_job_changed *out, char **version)
{
	/* a completion in a group of jobs: the run's counters move once for
	 * the group, at its end (gradeq_jobs_count_group): the run row stays
	 * locked from then to the commit only, not through the group */
	bool defer = c->to == GRADEQ_JOB_COMPLETE && gradeq_store_in_group(st);
	char from[128], stat[7][32];
	const char *params[18] = {c->job_id, from,      gradeq_job_state_name(c->to),
				  c->by,     c->detail, c->error,
				  c->run_id};
	const struct gradeq_job_completion *k = c->completion;
	struct gradeq_job_changed ignored;
	PGresult *res = NULL;
	int rc = 0;

	if (!out)
		out = &ignored;
	memset(out, 0, sizeof(*out));
	gradeq_store_states_array(GRADEQ_STATE_JOB, c->from, from, sizeof(from));
	if (k) {
		snprintf(stat[0], sizeof(stat[0]), "%.3f", k->ms_load);
		snprintf(stat[1], sizeof(stat[1]), "%.3f", k->ms_fetch);
		snprintf(stat[2], sizeof(stat[2]), "%.3f", k->ms_compute);
		snprintf(stat[3], sizeof(stat[3]), "%d", k->graded);
		snprintf(stat[4], sizeof(stat[4]), "%d", k->skipped);
		snprintf(stat[5], sizeof(stat[5]), "%d", k->subsections);
		snprintf(stat[6], sizeof(stat[6]), "%ld", k->score_rows);
		for (int i = 0; i < 7; i++)
			params[7 + i] = stat[i];
	}
	params[14] = c->error_class;
	params[15] = async ? "t" : "f";
	params[16] = course_id;
	params[17] = defer ? "t" : "f";
	res = gradeq_store_exec_prepared(st, GRADEQ_PREP_JOB_TRANSITION, transition_sql, 18,
					 params);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		rc = gradeq_store_result_error(st, res, what(c->to));
		goto out;
	}
	read_changed(res, out);
	if (defer && out->changed && out->old != GRADEQ_JOB_COMPLETE)
		rc = gradeq_store_group_note(st, out->run_id, out->learners);
	if (!rc && version && !PQgetisnull(res, 0, 7)) {
		*version = strdup(PQgetvalue(res, 0, 7));
		if (!*version)
			rc = GRADEQ_ERR_NOMEM;
	}
out:
	PQclear(res);
	return rc;
}

int gradeq_job_transition(struct gradeq_store *st, const struct gradeq_job_change *c,
			  struct gradeq_job_changed *out)
{
	return transition(st, c, false, NULL, out, NULL);
}

int gradeq_job_begin(struct gradeq_store *st, const struct gradeq_job_change *c,
		     const char *course_id, struct gradeq_job_changed *out, char **version)
{
	*version = NULL;
	return transition(st, c, true, course_id, out, version);
}

/* A group's jobs taken at once: $1 the jobs (uuid[]), $2 the from states,
 * $3 by. What the transition to in_progress does to each (row, attempt,
 * event), committed asynchronously; the run rows are left alone, as a
 * transition from an unfinished state to in_progress leaves them. One
 * row a job, in $1's order: the old state, whether it changed, its run,
 * learners, the run's state and the version of the job's course. */
static const char begin_group_sql[] =
	"WITH p AS (SELECT x.job_id, x.ord, set_config('synchronous_commit', 'off', true) AS sync"
	"  FROM unnest($1::uuid[]) WITH ORDINALITY AS x(job_id, ord)),"
	" o AS (SELECT g.job_id, g.run_id, g.state, g.learners, g.course_id FROM gradeq_jobs g"
	"  WHERE g.job_id IN (SELECT job_id FROM p) ORDER BY g.job_id FOR UPDATE OF g),"
	" j AS (UPDATE gradeq_jobs g SET state = 'in_progress', attempts = g.attempts + 1,"
	"  started_at = now(), consumer = $3::text"
	"  FROM o WHERE g.job_id = o.job_id AND o.state = ANY ($2::text[])"
	"  RETURNING g.job_id, o.run_id, o.state AS old),"
	" ev AS (INSERT INTO gradeq_job_events (job_id, run_id, from_state, to_state, by)"
	"  SELECT j.job_id, j.run_id, j.old, 'in_progress', coalesce($3::text, '') FROM j"
	"  WHERE j.old <> 'in_progress')"
	" SELECT o.state, j.job_id IS NOT NULL, o.run_id, o.learners, x.state, c.version, p.sync"
	" FROM p LEFT JOIN o ON o.job_id = p.job_id LEFT JOIN j ON j.job_id = p.job_id"
	" LEFT JOIN gradeq_runs x ON x.run_id = o.run_id"
	" LEFT JOIN courses c ON c.course_id = o.course_id ORDER BY p.ord";

/* Appends v to the array literal being built in *buf (of *len bytes,
 * *cap allocated), with its separator; -1 when out of memory. */
static int array_add(char **buf, size_t *len, size_t *cap, const char *v, bool last)
{
	size_t l = strlen(v);

	if (*len + l + 3 > *cap) {
		size_t c = (*cap ? *cap * 2 : 256) + l;
		char *n = realloc(*buf, c);

		if (!n)
			return -1;
		*buf = n;
		*cap = c;
	}
	if (*len == 0)
		(*buf)[(*len)++] = '{';
	memcpy(*buf + *len, v, l);
	*len += l;
	(*buf)[(*len)++] = last ? '}' : ',';
	(*buf)[*len] = '\0';
	return 0;
}

/* The columns a group statement returns first for job i: its old state,
 * whether it changed, its run and learners. */
static void read_group_row(const PGresult *res, int i, struct gradeq_job_changed *c)
{
	c->known =
		!PQgetisnull(res, i, 0) && gradeq_job_state_parse(PQgetvalue(res, i, 0), &c->old);
	c->changed = PQgetvalue(res, i, 1)[0] == 't';
	snprintf(c->run_id, sizeof(c->run_id), "%s", PQgetvalue(res, i, 2));
	c->learners = (int)strtol(PQgetvalue(res, i, 3), NULL, 10);
}

int gradeq_job_begin_group(struct gradeq_store *st, int n, const char *const *job_ids,
			   unsigned from, const char *by, struct gradeq_job_changed *out,
			   char **versions)
{
	char states[128], *ids = NULL;
	const char *params[3] = {NULL, states, by};
	size_t len = 0, cap = 0;
	PGresult *res = NULL;
	int rc = 0;

	for (int i = 0; i < n; i++) {
		memset(&out[i], 0, sizeof(out[i]));
		versions[i] = NULL;
	}
	if (n <= 0)
		return 0;
	/* uuids: nothing to quote, and a malformed one fails the cast */
	for (int i = 0; i < n; i++)
		if (array_add(&ids, &len, &cap, job_ids[i], i + 1 == n)) {
			free(ids);
			return GRADEQ_ERR_NOMEM;
		}
	params[0] = ids;
	gradeq_store_states_array(GRADEQ_STATE_JOB, from, states, sizeof(states));
	res = gradeq_store_exec_prepared(st, GRADEQ_PREP_JOB_BEGIN_GROUP, begin_group_sql, 3,
					 params);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != n) {
		rc = gradeq_store_result_error(st, res, "starting jobs");
		goto out;
	}
	for (int i = 0; i < n && !rc; i++) {
		struct gradeq_job_changed *c = &out[i];

		read_group_row(res, i, c);
		c->run_known = !PQgetisnull(res, i, 4) &&
			       gradeq_run_state_parse(PQgetvalue(res, i, 4), &c->run_state);
		if (!PQgetisnull(res, i, 5) && !(versions[i] = strdup(PQgetvalue(res, i, 5))))
			rc = GRADEQ_ERR_NOMEM;
	}
	if (rc)
		for (int i = 0; i < n; i++) {
			free(versions[i]);
			versions[i] = NULL;
		}
out:
	PQclear(res);
	free(ids);
	return rc;
}

/* A group's completions at once, inside its transaction: $1 the jobs,
 * $2..$8 their statistics (arrays in $1's order), $9 by, $10 the from
 * states. What the transition to complete does to each (row, statistics,
 * event); the run rows are counted at the group's end
 * (gradeq_jobs_count_group). One row a job, in $1's order: the old
 * state, whether it changed, its run and learners. */
static const char complete_group_sql[] =
	"WITH p AS (SELECT * FROM unnest($1::uuid[], $2::float8[], $3::float8[], $4::float8[],"
	"  $5::int[], $6::int[], $7::int[], $8::int[]) WITH ORDINALITY"
	"  AS x(job_id, ms_load, ms_fetch, ms_compute, graded, skipped, subsections, score_rows,"
	"  ord)),"
	" o AS (SELECT g.job_id, g.run_id, g.state, g.learners FROM gradeq_jobs g"
	"  WHERE g.job_id IN (SELECT job_id FROM p) ORDER BY g.job_id FOR UPDATE OF g),"
	" j AS (UPDATE gradeq_jobs g SET state = 'complete', finished_at = now(),"
	"  ms_load = p.ms_load, ms_fetch = p.ms_fetch, ms_compute = p.ms_compute,"
	"  graded = p.graded, skipped = p.skipped, subsections = p.subsections,"
	"  score_rows = p.score_rows"
	"  FROM o, p WHERE g.job_id = o.job_id AND p.job_id = o.job_id"
	"  AND o.state = ANY ($10::text[])"
	"  RETURNING g.job_id, o.run_id, o.state AS old),"
	" ev AS (INSERT INTO gradeq_job_events (job_id, run_id, from_state, to_state, by)"
	"  SELECT j.job_id, j.run_id, j.old, 'complete', coalesce($9::text, '') FROM j"
	"  WHERE j.old <> 'complete')"
	" SELECT o.state, j.job_id IS NOT NULL, o.run_id, o.learners"
	" FROM p LEFT JOIN o ON o.job_id = p.job_id LEFT JOIN j ON j.job_id = p.job_id"
	" ORDER BY p.ord";

int gradeq_job_complete_group(struct gradeq_store *st, int n, const char *const *job_ids,
			      const struct gradeq_job_completion *const *done, unsigned from,
			      const char *by, struct gradeq_job_changed *out)
{
	enum { NARR = 8 };
	char *arr[NARR] = {NULL}, states[128];
	size_t len[NARR] = {0}, cap[NARR] = {0};
	const char *params[10];
	PGresult *res = NULL;
	int rc = 0;

	for (int i = 0; i < n; i++)
		memset(&out[i], 0, sizeof(out[i]));
	if (n <= 0)
		return 0;
	for (int i = 0; i < n && !rc; i++) {
		const struct gradeq_job_completion *k = done[i];
		char v[NARR][32];
		bool last = i + 1 == n;

		snprintf(v[1], sizeof(v[1]), "%.3f", k->ms_load);
		snprintf(v[2], sizeof(v[2]), "%.3f", k->ms_fetch);
		snprintf(v[3], sizeof(v[3]), "%.3f", k->ms_compute);
		snprintf(v[4], sizeof(v[4]), "%d", k->graded);
		snprintf(v[5], sizeof(v[5]), "%d", k->skipped);
		snprintf(v[6], sizeof(v[6]), "%d", k->subsections);
		snprintf(v[7], sizeof(v[7]), "%ld", k->score_rows);
		/* uuids and numbers: nothing to quote */
		if (array_add(&arr[0], &len[0], &cap[0], job_ids[i], last))
			rc = GRADEQ_ERR_NOMEM;
		for (int a = 1; a < NARR && !rc; a++)
			if (array_add(&arr[a], &len[a], &cap[a], v[a], last))
				rc = GRADEQ_ERR_NOMEM;
	}
	if (rc)
		goto out;
	gradeq_store_states_array(GRADEQ_STATE_JOB, from, states, sizeof(states));
	for (int a = 0; a < NARR; a++)
		params[a] = arr[a];
	params[8] = by;
	params[9] = states;
	res = gradeq_store_exec_prepared(st, GRADEQ_PREP_JOB_COMPLETE_GROUP, complete_group_sql, 10,
					 params);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != n) {
		rc = gradeq_store_result_error(st, res, "writing grades");
		goto out;
	}
	for (int i = 0; i < n && !rc; i++) {
		struct gradeq_job_changed *c = &out[i];

		read_group_row(res, i, c);
		if (c->changed && c->old != GRADEQ_JOB_COMPLETE)
			rc = gradeq_store_group_note(st, c->run_id, c->learners);
	}
out:
	PQclear(res);
	for (int a = 0; a < NARR; a++)
		free(arr[a]);
	return rc;
}

int gradeq_job_record_read(struct gradeq_store *st, const char *job_id, const char *run_id,
			   struct gradeq_job_record *out)
{
	const char *params[2] = {job_id, run_id};
	PGresult *res;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	res = gradeq_store_exec_prepared(
		st, GRADEQ_PREP_JOB_RECORD,
		"SELECT j.run_id, j.course_id, j.learners, encode(j.users_digest, 'hex'),"
		" EXISTS (SELECT 1 FROM gradeq_runs r WHERE r.run_id = $2::uuid)"
		" FROM (SELECT 1) one LEFT JOIN gradeq_jobs j ON j.job_id = $1::uuid",
		2, params);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		rc = gradeq_store_result_error(st, res, "reading the job's record");
		goto out;
	}
	out->run_known = PQgetvalue(res, 0, 4)[0] == 't';
	out->known = !PQgetisnull(res, 0, 0);
	if (!out->known)
		goto out;
	snprintf(out->run_id, sizeof(out->run_id), "%s", PQgetvalue(res, 0, 0));
	out->course_id = strdup(PQgetvalue(res, 0, 1));
	if (!out->course_id) {
		rc = GRADEQ_ERR_NOMEM;
		goto out;
	}
	out->learners = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
	if (!PQgetisnull(res, 0, 3))
		snprintf(out->digest, sizeof(out->digest), "%s", PQgetvalue(res, 0, 3));
out:
	PQclear(res);
	return rc;
}

int gradeq_job_record_timings(struct gradeq_store *st, const char *job_id,
			      const struct gradeq_job_timings *t)
{
	char ms[3][32], bytes[24];
	const char *params[5] = {job_id, ms[0], ms[1], ms[2], bytes};
	PGresult *res;
	int rc = 0;

	snprintf(ms[0], sizeof(ms[0]), "%.3f", t->ms_write);
	snprintf(ms[1], sizeof(ms[1]), "%.3f", t->ms_commit);
	snprintf(ms[2], sizeof(ms[2]), "%.3f", t->ms_total);
	snprintf(bytes, sizeof(bytes), "%ld", t->body_bytes);
	res = PQexecParams(gradeq_store_conn(st),
			   "WITH s AS (SELECT set_config('synchronous_commit', 'off', true))"
			   " UPDATE gradeq_jobs SET ms_write = $2::float8, ms_commit = $3::float8,"
			   " ms_total = $4::float8, body_bytes = $5::int FROM s"
			   " WHERE job_id = $1::uuid",
			   5, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		rc = gradeq_store_result_error(st, res, "recording timings");
	PQclear(res);
	return rc;
}

/* A group's completions of one run counted at once: the counters move,
 * the trigger gradeq_runs_settle settles the run when they reach its
 * total, and a run that changed state gets its event (as the transition's
 * own run part does). */
static const char count_sql[] =
	"WITH ro AS (SELECT run_id, state FROM gradeq_runs WHERE run_id = $1::uuid FOR UPDATE),"
	" r AS (UPDATE gradeq_runs r SET jobs_complete = r.jobs_complete + $2::int,"
	"  learners_complete = r.learners_complete + $3::bigint FROM ro"
	"  WHERE r.run_id = ro.run_id RETURNING r.run_id, r.state, r.finished_at = now() AS settled),"
	" rev AS (INSERT INTO gradeq_job_events (run_id, from_state, to_state, by)"
	"  SELECT r.run_id, ro.state, r.state, coalesce($4::text, '') FROM r, ro"
	"  WHERE r.state <> ro.state)"
	" SELECT r.state, r.settled FROM r";

int gradeq_jobs_count_group(struct gradeq_store *st, const char *by,
			    void (*settled)(void *ctx, const char *run_id, const char *state),
			    void *ctx)
{
	const struct gradeq_group_run *runs;
	int n = gradeq_store_group_runs(st, &runs), rc = 0;

	for (int i = 0; i < n && !rc; i++) {
		char jobs[16], learners[24];
		const char *params[4] = {runs[i].run_id, jobs, learners, by};
		PGresult *res;

		snprintf(jobs, sizeof(jobs), "%d", runs[i].jobs);
		snprintf(learners, sizeof(learners), "%lld", runs[i].learners);
		res = gradeq_store_exec_prepared(st, GRADEQ_PREP_JOB_COUNT, count_sql, 4, params);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			rc = gradeq_store_result_error(st, res, "writing grades");
		else if (PQntuples(res) == 1 && PQgetvalue(res, 0, 1)[0] == 't' && settled)
			settled(ctx, runs[i].run_id, PQgetvalue(res, 0, 0));
		PQclear(res);
	}
	return rc;
}

int gradeq_jobs_record_timings(struct gradeq_store *st, int n, const char *const *job_ids,
			       const struct gradeq_job_timings *t)
{
	/* five arrays in one statement: uuid text is 36 characters, the
	 * numbers at most 32 */
	size_t cap = (size_t)n * 40 + 8, ncap = (size_t)n * 34 + 8;
	char *arr[5] = {malloc(cap), malloc(ncap), malloc(ncap), malloc(ncap), malloc(ncap)};
	size_t len[5] = {0};
	PGresult *res;
	int rc = 0;

	for (int k = 0; k < 5; k++)
		if (!arr[k])
			rc = GRADEQ_ERR_NOMEM;
	for (int i = 0; i < n && !rc; i++) {
		const char *sep = i ? "," : "{";

		len[0] +=
			(size_t)snprintf(arr[0] + len[0], cap - len[0], "%s%.36s", sep, job_ids[i]);
		len[1] += (size_t)snprintf(arr[1] + len[1], ncap - len[1], "%s%.3f", sep,
					   t[i].ms_write);
		len[2] += (size_t)snprintf(arr[2] + len[2], ncap - len[2], "%s%.3f", sep,
					   t[i].ms_commit);
		len[3] += (size_t)snprintf(arr[3] + len[3], ncap - len[3], "%s%.3f", sep,
					   t[i].ms_total);
		len[4] += (size_t)snprintf(arr[4] + len[4], ncap - len[4], "%s%ld", sep,
					   t[i].body_bytes);
		for (int k = 0; k < 5; k++)
			if (len[k] >= (k ? ncap : cap) - 2)
				rc = GRADEQ_ERR_INVALID;
	}
	if (!rc && n > 0) {
		for (int k = 0; k < 5; k++)
			snprintf(arr[k] + len[k], (k ? ncap : cap) - len[k], "}");
		res = PQexecParams(
			gradeq_store_conn(st),
			"WITH s AS (SELECT set_config('synchronous_commit', 'off', true))"
			" UPDATE gradeq_jobs g SET ms_write = t.w, ms_commit = t.c,"
			" ms_total = t.total, body_bytes = t.b FROM s,"
			" unnest($1::uuid[], $2::float8[], $3::float8[], $4::float8[],"
			" $5::int[]) AS t(id, w, c, total, b) WHERE g.job_id = t.id",
			5, NULL, (const char *const *)arr, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			rc = gradeq_store_result_error(st, res, "recording timings");
		PQclear(res);
	}
	for (int k = 0; k < 5; k++)
		free(arr[k]);
	return rc;
}

int gradeq_jobs_in_progress(struct gradeq_store *st, const char *release, long *n)
{
	const char *params[1] = {release};
	PGresult *res;
	int rc = 0;

	*n = 0;
	res = PQexecParams(gradeq_store_conn(st),
			   "SELECT count(*) FROM gradeq_jobs j JOIN gradeq_runs r USING (run_id)"
			   " WHERE r.release = $1 AND j.state = 'in_progress'"
			   " AND j.started_at > now() - make_interval(secs => " GRADEQ_STR(
				   GRADEQ_IN_PROGRESS_STALE_S) ")",
			   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = gradeq_store_result_error(st, res, "checking jobs in progress");
	else
		*n = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return rc;
}
