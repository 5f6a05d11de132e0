/* The throttle's SQL: budgets, consumer reports, health samples, status. */
#include "store/throttle.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradeq/parse.h"
#include "store/internal.h"

static int command(struct gradeq_store *st, const char *sql, int n, const char *const *params,
		   const char *what)
{
	PGresult *res = PQexecParams(gradeq_store_conn(st), sql, n, NULL, params, NULL, NULL, 0);
	int rc = 0;

	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = gradeq_store_result_error(st, res, what);
	PQclear(res);
	return rc;
}

/* The schema is older than migration 9 (undefined_table): no budget and no
 * reports, which is what status and consumers then see. */
static bool no_tables(const PGresult *res)
{
	const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	return code && strcmp(code, "42P01") == 0;
}

/* A float8 parameter: the number, or NULL (SQL NULL) when v <= 0. */
static const char *num_or_null(char *buf, size_t len, double v)
{
	if (v <= 0)
		return NULL;
	snprintf(buf, len, "%.6f", v);
	return buf;
}

int gradeq_store_throttle_set(struct gradeq_store *st, const char *release, double learners_per_s,
			      const char *by)
{
	char rate[64];
	const char *params[3] = {release, num_or_null(rate, sizeof(rate), learners_per_s), by};

	return command(st,
		       "INSERT INTO gradeq_throttle (release, learners_per_s, updated_by)"
		       " VALUES ($1, $2::float8, $3) ON CONFLICT (release) DO UPDATE SET"
		       " learners_per_s = EXCLUDED.learners_per_s, updated_at = now(),"
		       " updated_by = EXCLUDED.updated_by",
		       3, params, "setting the throttle");
}

/* The window of release $1 that the server's local time is in, if any
 * (ends before starts wraps past midnight). */
#define WINDOW_NOW                                                                                 \
	"SELECT x.learners_per_s FROM gradeq_throttle_windows x WHERE x.release = $1 AND"          \
	" CASE WHEN x.starts < x.ends THEN localtime >= x.starts AND localtime < x.ends"           \
	" ELSE localtime >= x.starts OR localtime < x.ends END ORDER BY x.starts LIMIT 1"

int gradeq_store_throttle_schedule(struct gradeq_store *st, const char *release,
				   const struct gradeq_throttle_window *w, size_t n)
{
	size_t cap = 16 + n * 48;
	char *starts = malloc(cap), *ends = malloc(cap), *rates = malloc(cap);
	const char *params[4] = {release, starts, ends, rates};
	size_t a = 0, b = 0, c = 0;
	int rc;

	if (!starts || !ends || !rates) {
		rc = GRADEQ_ERR_NOMEM;
		goto out;
	}
	a += (size_t)snprintf(starts, cap, "{");
	b += (size_t)snprintf(ends, cap, "{");
	c += (size_t)snprintf(rates, cap, "{");
	for (size_t i = 0; i < n; i++) {
		a += (size_t)snprintf(starts + a, cap - a, "%s%s", i ? "," : "", w[i].starts);
		b += (size_t)snprintf(ends + b, cap - b, "%s%s", i ? "," : "", w[i].ends);
		if (w[i].learners_per_s > 0)
			c += (size_t)snprintf(rates + c, cap - c, "%s%.6f", i ? "," : "",
					      w[i].learners_per_s);
		else
			c += (size_t)snprintf(rates + c, cap - c, "%sNULL", i ? "," : "");
	}
	snprintf(starts + a, cap - a, "}");
	snprintf(ends + b, cap - b, "}");
	snprintf(rates + c, cap - c, "}");
	rc = gradeq_store_exec(st, "BEGIN");
	if (!rc)
		rc = command(st, "DELETE FROM gradeq_throttle_windows WHERE release = $1", 1,
			     params, "clearing the schedule");
	if (!rc)
		rc = command(
			st,
			"INSERT INTO gradeq_throttle_windows (release, starts, ends, learners_per_s)"
			" SELECT $1, s, e, r FROM unnest($2::time[], $3::time[], $4::float8[])"
			" AS u(s, e, r)",
			4, params, "setting the schedule");
	if (!rc)
		rc = gradeq_store_commit(st);
	else
		gradeq_store_rollback(st);
out:
	free(starts);
	free(ends);
	free(rates);
	return rc;
}

int gradeq_store_throttle_get(struct gradeq_store *st, const char *release, double *learners_per_s)
{
	const char *params[1] = {release};
	PGresult *res = PQexecParams(
		gradeq_store_conn(st),
		"SELECT CASE WHEN w.found THEN w.learners_per_s ELSE t.learners_per_s END"
		" FROM (SELECT 1) one LEFT JOIN gradeq_throttle t ON t.release = $1"
		" LEFT JOIN LATERAL (SELECT true AS found, y.learners_per_s FROM (" WINDOW_NOW
		") y)"
		" w ON true",
		1, NULL, params, NULL, NULL, 0);
	int rc = 0;

	*learners_per_s = 0;
	if (PQresultStatus(res) != PGRES_TUPLES_OK && no_tables(res))
		rc = 0;
	else if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = gradeq_store_result_error(st, res, "reading the throttle");
	else if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0) &&
		 gradeq_parse_double(PQgetvalue(res, 0, 0), NULL, 0, 1e12, learners_per_s))
		*learners_per_s = 0;
	PQclear(res);
	return rc;
}

int gradeq_store_throttle_report(struct gradeq_store *st, const struct gradeq_throttle_report *r)
{
	char budget[64], n[16], share[64], rate[64], achieved[64];
	const char *params[9] = {r->consumer,
				 r->release,
				 num_or_null(budget, sizeof(budget), r->budget),
				 n,
				 num_or_null(share, sizeof(share), r->share),
				 num_or_null(rate, sizeof(rate), r->rate),
				 r->state,
				 r->reason,
				 achieved};

	snprintf(n, sizeof(n), "%u", r->consumers);
	snprintf(achieved, sizeof(achieved), "%.3f", r->achieved);
	return command(
		st,
		"INSERT INTO gradeq_throttle_consumers AS c (consumer, release, budget,"
		" consumers, share, rate, state, reason, achieved) VALUES ($1, $2,"
		" $3::float8, $4::int, $5::float8, $6::float8, $7, $8, $9::float8)"
		" ON CONFLICT (consumer) DO UPDATE SET release = EXCLUDED.release,"
		" budget = EXCLUDED.budget, consumers = EXCLUDED.consumers,"
		" share = EXCLUDED.share, rate = EXCLUDED.rate, state = EXCLUDED.state,"
		" reason = EXCLUDED.reason, achieved = EXCLUDED.achieved, updated_at = now()",
		9, params, "reporting the throttle");
}

int gradeq_store_throttle_live(struct gradeq_store *st, const char *release, unsigned *n)
{
	const char *params[1] = {release};
	PGresult *res =
		PQexecParams(gradeq_store_conn(st),
			     "SELECT count(*) FROM gradeq_throttle_consumers"
			     " WHERE release = $1 AND updated_at > now() - interval '30 seconds'",
			     1, NULL, params, NULL, NULL, 0);
	int rc = 0, v = 0;

	*n = 0;
	if (PQresultStatus(res) != PGRES_TUPLES_OK && no_tables(res))
		rc = 0;
	else if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = gradeq_store_result_error(st, res, "counting the consumers' reports");
	else if (PQntuples(res) == 1 && !gradeq_parse_int(PQgetvalue(res, 0, 0), 0, 1000000, &v))
		*n = (unsigned)v;
	PQclear(res);
	return rc;
}

int gradeq_store_db_health(struct gradeq_store *st, struct gradeq_db_health *h)
{
	/* cheap: pg_locks and pg_stat_activity are in shared memory; sampled
	 * every few seconds, not a job */
	PGresult *res = PQexec(
		gradeq_store_conn(st),
		"SELECT (SELECT count(DISTINCT l.pid) FROM pg_locks l JOIN pg_class c"
		"  ON c.oid = l.relation WHERE NOT l.granted AND c.relname LIKE 'grades\\_%'"
		"  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())),"
		" (SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
		"  AND backend_type = 'client backend'),"
		" current_setting('max_connections')::int");
	int rc = 0;

	memset(h, 0, sizeof(*h));
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = gradeq_store_result_error(st, res, "sampling the database's health");
	} else if (gradeq_parse_int(PQgetvalue(res, 0, 0), 0, INT_MAX, &h->lock_waiters) ||
		   gradeq_parse_int(PQgetvalue(res, 0, 1), 0, INT_MAX, &h->active_backends) ||
		   gradeq_parse_int(PQgetvalue(res, 0, 2), 0, INT_MAX, &h->max_connections)) {
		rc = gradeq_error(GRADEQ_ERR_DB, "unexpected health sample");
	}
	PQclear(res);
	return rc;
}

/* Releases with a budget row or a consumer that reported in the last 30 s;
 * the achieved rate from the jobs that finished in the last minute (over
 * the part of the minute since the first of them started). */
static const char throttle_json_sql[] =
	"WITH rel AS (SELECT release FROM gradeq_throttle UNION SELECT release FROM"
	"  gradeq_throttle_windows UNION SELECT release FROM"
	"  gradeq_throttle_consumers WHERE updated_at > now() - interval '30 seconds'),"
	" x AS (SELECT rel.release, t.learners_per_s, t.updated_at, t.updated_by,"
	"  (SELECT round((coalesce(sum(j.learners), 0) / greatest(extract(epoch FROM now() -"
	"    greatest(min(j.started_at), now() - interval '1 minute')), 1))::numeric, 1)"
	"   FROM gradeq_jobs j JOIN gradeq_runs r USING (run_id) WHERE r.release = rel.release"
	"   AND j.state = 'complete' AND j.finished_at > now() - interval '1 minute')"
	"   AS achieved_learners_per_s,"
	"  (SELECT CASE WHEN w.found THEN w.learners_per_s ELSE t.learners_per_s END FROM"
	"   (SELECT 1) one LEFT JOIN LATERAL (SELECT true AS found, x.learners_per_s FROM"
	"   gradeq_throttle_windows x WHERE x.release = rel.release AND CASE WHEN x.starts < x.ends"
	"   THEN localtime >= x.starts AND localtime < x.ends ELSE localtime >= x.starts OR"
	"   localtime < x.ends END ORDER BY x.starts LIMIT 1) w ON true) AS effective_learners_per_s,"
	"  coalesce((SELECT json_agg(json_build_object('starts', to_char(x.starts, 'HH24:MI'),"
	"    'ends', to_char(x.ends, 'HH24:MI'), 'learners_per_s', x.learners_per_s)"
	"    ORDER BY x.starts) FROM gradeq_throttle_windows x WHERE x.release = rel.release),"
	"   '[]') AS schedule,"
	"  coalesce((SELECT json_agg(json_build_object('consumer', c.consumer, 'consumers',"
	"    c.consumers, 'share', round(c.share::numeric, 1), 'rate', round(c.rate::numeric, 1),"
	"    'state', c.state, 'reason', c.reason, 'achieved', round(c.achieved::numeric, 1),"
	"    'updated_at', c.updated_at) ORDER BY c.consumer)"
	"   FROM gradeq_throttle_consumers c WHERE c.release = rel.release"
	"   AND c.updated_at > now() - interval '30 seconds'), '[]') AS consumers"
	"  FROM rel LEFT JOIN gradeq_throttle t USING (release)"
	"  WHERE $1::text IS NULL OR rel.release = $1)"
	" SELECT coalesce(json_agg(x ORDER BY x.release), '[]')::text FROM x";

int gradeq_store_throttle_json(struct gradeq_store *st, const char *release, char **out)
{
	const char *params[1] = {release};
	PGresult *res = PQexecParams(gradeq_store_conn(st), throttle_json_sql, 1, NULL, params,
				     NULL, NULL, 0);
	int rc = 0;

	*out = NULL;
	if (PQresultStatus(res) != PGRES_TUPLES_OK && no_tables(res))
		rc = (*out = strdup("[]")) ? 0 : GRADEQ_ERR_NOMEM;
	else if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = gradeq_store_result_error(st, res, "reading the throttle");
	else if (!(*out = strdup(PQgetvalue(res, 0, 0))))
		rc = GRADEQ_ERR_NOMEM;
	PQclear(res);
	return rc;
}

void gradeq_store_throttle_text(struct gradeq_store *st, const char *json, FILE *out)
{
	const char *params[1] = {json};
	PGresult *t = PQexecParams(
		gradeq_store_conn(st),
		"SELECT format('%-16s  budget=%s%s  achieved=%s learners/s  consumers=%s%s',"
		" r->>'release', coalesce(r->>'learners_per_s' || ' learners/s', 'off'),"
		" CASE WHEN json_array_length(r->'schedule') > 0 THEN format('  schedule=%s  now=%s',"
		"  (SELECT string_agg(format('%s-%s=%s', w->>'starts', w->>'ends',"
		"   coalesce(w->>'learners_per_s', 'off')), ',') FROM json_array_elements(r->'schedule') w),"
		"  coalesce(r->>'effective_learners_per_s', 'off')) ELSE '' END,"
		" coalesce(r->>'achieved_learners_per_s', '0'),"
		" json_array_length(r->'consumers'),"
		" coalesce((SELECT string_agg(format(E'\\n  %s  rate=%s state=%s%s', c->>'consumer',"
		"  coalesce(c->>'rate', 'unlimited'), c->>'state',"
		"  CASE WHEN c->>'reason' <> '' THEN ' reason=' || (c->>'reason') ELSE '' END), '')"
		"  FROM json_array_elements(r->'consumers') c), ''))"
		" FROM json_array_elements($1::json) r",
		1, NULL, params, NULL, NULL, 0);

	for (int i = 0; PQresultStatus(t) == PGRES_TUPLES_OK && i < PQntuples(t); i++) {
		fputs(PQgetvalue(t, i, 0), out);
		fputc('\n', out);
	}
	PQclear(t);
}
