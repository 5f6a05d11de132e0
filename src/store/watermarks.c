/* The incremental regrade's watermarks (see watermarks.h). */
#include "gradeq/watermarks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"

void gradeq_watermark_clear(struct gradeq_watermark *w)
{
	if (!w)
		return;
	free(w->version);
	free(w->policy_hash);
	free(w->snapshot);
	memset(w, 0, sizeof(*w));
}

int gradeq_watermark_load(struct gradeq_store *st, const char *release, const char *course,
			  struct gradeq_watermark *out, bool *found)
{
	const char *params[2] = {release, course};
	PGresult *res;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	*found = false;
	res = PQexecParams(gradeq_store_conn(st),
			   "SELECT watermark, selected_at, last_enrollment_id, course_version,"
			   " policy_hash, snapshot FROM gradeq_watermarks WHERE release = $1"
			   " AND course_id = $2",
			   2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = gradeq_store_result_error(st, res, "reading the watermark");
	} else if (PQntuples(res) == 1) {
		snprintf(out->watermark, sizeof(out->watermark), "%s", PQgetvalue(res, 0, 0));
		snprintf(out->selected_at, sizeof(out->selected_at), "%s", PQgetvalue(res, 0, 1));
		out->last_enrollment_id = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
		out->version = strdup(PQgetvalue(res, 0, 3));
		out->policy_hash = strdup(PQgetvalue(res, 0, 4));
		out->snapshot = strdup(PQgetvalue(res, 0, 5));
		if (!out->version || !out->policy_hash || !out->snapshot) {
			gradeq_watermark_clear(out);
			rc = GRADEQ_ERR_NOMEM;
		} else {
			*found = true;
		}
	}
	PQclear(res);
	return rc;
}

static int save_one(struct gradeq_store *st, const char *release, const char *run_id,
		    const char *course, const struct gradeq_watermark *w)
{
	char last[32];
	const char *params[9] = {release,
				 course,
				 w->watermark,
				 w->selected_at,
				 last,
				 w->version ? w->version : "",
				 w->policy_hash ? w->policy_hash : "",
				 run_id && *run_id ? run_id : NULL,
				 w->snapshot};
	PGresult *res;
	int rc = 0;

	snprintf(last, sizeof(last), "%lld", w->last_enrollment_id);
	res = PQexecParams(
		gradeq_store_conn(st),
		"INSERT INTO gradeq_watermarks AS w (release, course_id, watermark, selected_at,"
		" last_enrollment_id, course_version, policy_hash, run_id, snapshot)"
		" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
		" ON CONFLICT (release, course_id) DO UPDATE SET watermark = EXCLUDED.watermark,"
		" selected_at = EXCLUDED.selected_at, snapshot = EXCLUDED.snapshot,"
		" last_enrollment_id = EXCLUDED.last_enrollment_id,"
		" course_version = EXCLUDED.course_version, policy_hash = EXCLUDED.policy_hash,"
		" run_id = EXCLUDED.run_id, updated_at = now()",
		9, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		rc = gradeq_store_result_error(st, res, "recording the watermark");
	PQclear(res);
	return rc;
}

int gradeq_watermark_save(struct gradeq_store *st, const char *release, const char *run_id,
			  char *const *courses, const struct gradeq_watermark *w, int n)
{
	int rc = gradeq_store_exec(st, "BEGIN");

	for (int i = 0; i < n && !rc; i++)
		if (w[i].watermark[0] && w[i].snapshot)
			rc = save_one(st, release, run_id, courses[i], &w[i]);
	if (!rc)
		return gradeq_store_exec(st, "COMMIT");
	gradeq_store_rollback(st);
	return rc;
}

int gradeq_watermark_reset(struct gradeq_store *st, const char *release)
{
	const char *params[1] = {release};
	PGresult *res = PQexecParams(gradeq_store_conn(st),
				     "DELETE FROM gradeq_watermarks WHERE release = $1", 1, NULL,
				     params, NULL, NULL, 0);
	int rc = 0;

	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		rc = gradeq_store_result_error(st, res, "forgetting the watermarks");
	PQclear(res);
	return rc;
}
