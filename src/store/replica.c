/* The SQL of reads from a hot standby (gradeq/replica.h). */
#include "gradeq/replica.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradeq/parse.h"
#include "store/internal.h"

int gradeq_replica_primary_lsn(struct gradeq_store *primary, char *lsn, size_t len)
{
	PGresult *res = PQexec(gradeq_store_conn(primary), "SELECT pg_current_wal_flush_lsn()");
	int rc = 0;

	lsn[0] = '\0';
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = gradeq_store_result_error(primary, res, "reading the primary's WAL position");
	else
		snprintf(lsn, len, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return rc;
}

int gradeq_replica_caught_up(struct gradeq_store *standby, const char *lsn, bool *yes,
			     double *behind)
{
	const char *params[1] = {lsn};
	PGresult *res = PQexecParams(
		gradeq_store_conn(standby),
		"SELECT NOT pg_is_in_recovery() OR coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn,"
		" false), greatest(coalesce(pg_wal_lsn_diff($1::pg_lsn, pg_last_wal_replay_lsn()),"
		" 0), 0)",
		1, NULL, params, NULL, NULL, 0);
	int rc = 0;

	*yes = false;
	*behind = 0;
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = gradeq_store_result_error(standby, res,
					       "reading the standby's replay position");
	} else {
		*yes = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
		if (gradeq_parse_double(PQgetvalue(res, 0, 1), NULL, 0, 1e18, behind))
			*behind = 0;
	}
	PQclear(res);
	return rc;
}
