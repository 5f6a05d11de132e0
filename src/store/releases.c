#include "store/releases.h"

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

	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		rc = gradeq_store_result_error(st, res, what);
	PQclear(res);
	return rc;
}

int gradeq_store_release_state(struct gradeq_store *st, const char *name, char *state)
{
	const char *params[1] = {name};
	PGresult *res = PQexecParams(gradeq_store_conn(st),
				     "SELECT state FROM gradeq_releases WHERE name = $1", 1, NULL,
				     params, NULL, NULL, 0);
	int rc = 0;

	state[0] = '\0';
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = gradeq_store_result_error(st, res, "reading the release registry");
	else if (PQntuples(res) == 0)
		rc = gradeq_error(GRADEQ_ERR_NOT_FOUND, "unknown release '%s'", name);
	else
		snprintf(state, 16, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return rc;
}

int gradeq_store_release_promoted(struct gradeq_store *st, char *out, size_t len)
{
	PGresult *res = PQexec(gradeq_store_conn(st),
			       "SELECT name FROM gradeq_releases WHERE state = 'promoted'");
	int rc = 0;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = gradeq_store_result_error(st, res, "reading the release registry");
	else if (PQntuples(res) == 0)
		rc = GRADEQ_ERR_NOT_FOUND;
	else
		snprintf(out, len, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return rc;
}

int gradeq_store_release_record(struct gradeq_store *st, const char *name, int schema_version)
{
	char ver[16];
	const char *params[2] = {name, ver};

	snprintf(ver, sizeof(ver), "%d", schema_version);
	return command(st,
		       "INSERT INTO gradeq_releases (name, schema_version) VALUES ($1, $2)"
		       " ON CONFLICT (name) DO NOTHING",
		       2, params, "recording the release");
}

int gradeq_store_release_list(struct gradeq_store *st, bool live_only,
			      struct gradeq_release_info **out, size_t *n)
{
	static const char sql[] =
		"SELECT name, state, schema_version, to_char(updated_at, 'YYYY-MM-DD HH24:MI:SS'),"
		" (SELECT count(*) FROM gradeq_runs r WHERE r.release = g.name)"
		" FROM gradeq_releases g WHERE NOT ($1::bool AND state = 'retired')"
		" ORDER BY created_at";
	const char *params[1] = {live_only ? "true" : "false"};
	PGresult *res = PQexecParams(gradeq_store_conn(st), sql, 1, NULL, params, NULL, NULL, 0);
	struct gradeq_release_info *v = NULL;
	int rc = 0, rows;

	*out = NULL;
	*n = 0;
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = gradeq_store_result_error(st, res, "reading releases");
		goto out;
	}
	rows = PQntuples(res);
	v = calloc(rows ? (size_t)rows : 1, sizeof(*v));
	if (!v) {
		rc = GRADEQ_ERR_NOMEM;
		goto out;
	}
	for (int i = 0; i < rows; i++) {
		int s = gradeq_release_state_parse(PQgetvalue(res, i, 1));

		snprintf(v[i].name, sizeof(v[i].name), "%s", PQgetvalue(res, i, 0));
		v[i].state = s < 0 ? GRADEQ_RELEASE_ACTIVE : (enum gradeq_release_state)s;
		if (gradeq_parse_int(PQgetvalue(res, i, 2), 0, INT_MAX, &v[i].schema_version))
			v[i].schema_version = 0;
		snprintf(v[i].updated_at, sizeof(v[i].updated_at), "%s", PQgetvalue(res, i, 3));
		if (gradeq_parse_long(PQgetvalue(res, i, 4), 0, LONG_MAX, &v[i].runs))
			v[i].runs = 0;
	}
	*out = v;
	*n = (size_t)rows;
out:
	PQclear(res);
	return rc;
}

int gradeq_store_release_promote(struct gradeq_store *st, const char *name, int schema_version,
				 char **drained)
{
	char ver[16];
	const char *params[2] = {name, ver};
	PGresult *res;
	int rc = 0;

	*drained = NULL;
	snprintf(ver, sizeof(ver), "%d", schema_version);
	res = PQexecParams(
		gradeq_store_conn(st),
		"WITH cur AS (SELECT state FROM gradeq_releases WHERE name = $1),"
		" bad AS (SELECT 1 FROM cur WHERE state = 'retired'),"
		" old AS (UPDATE gradeq_releases SET state = 'draining', updated_at = now()"
		"  WHERE state = 'promoted' AND name <> $1 AND NOT EXISTS (SELECT 1 FROM bad)"
		"  RETURNING name)"
		" SELECT (SELECT state FROM cur), (SELECT string_agg(name, ',') FROM old)",
		1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = gradeq_store_result_error(st, res, "promote");
		goto out;
	}
	if (!PQgetisnull(res, 0, 0) && strcmp(PQgetvalue(res, 0, 0), "retired") == 0) {
		rc = gradeq_error(GRADEQ_ERR_STATE, "release '%s' is retired", name);
		goto out;
	}
	*drained = strdup(PQgetisnull(res, 0, 1) ? "" : PQgetvalue(res, 0, 1));
	if (!*drained) {
		rc = GRADEQ_ERR_NOMEM;
		goto out;
	}
	rc = command(st,
		     "INSERT INTO gradeq_releases (name, state, schema_version) VALUES ($1,"
		     " 'promoted', $2::int) ON CONFLICT (name) DO UPDATE SET state = 'promoted',"
		     " updated_at = now()",
		     2, params, "promote");
	if (rc) {
		free(*drained);
		*drained = NULL;
	}
out:
	PQclear(res);
	return rc;
}

int gradeq_store_release_mark_draining(struct gradeq_store *st, const char *name)
{
	const char *params[1] = {name};

	return command(st,
		       "UPDATE gradeq_releases SET state = 'draining', updated_at = now()"
		       " WHERE name = $1 AND state = 'active'",
		       1, params, "drain");
}

int gradeq_store_release_mark_retired(struct gradeq_store *st, const char *name)
{
	const char *params[1] = {name};

	return command(st,
		       "UPDATE gradeq_releases SET state = 'retired', updated_at = now()"
		       " WHERE name = $1",
		       1, params, "retire");
}
