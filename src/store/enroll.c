/* Courses and enrollments for gradeq-publish (see enroll.h). */
#include "gradeq/enroll.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "gradeq/limits.h"
#include "gradeq/store.h"
#include "gradeq/watermarks.h"
#include "store/internal.h"

void gradeq_enroll_courses_release(struct gradeq_enroll_courses *c)
{
	for (int i = 0; c && i < c->n; i++)
		free(c->ids[i]);
	if (c)
		free(c->ids);
	if (c)
		memset(c, 0, sizeof(*c));
}

/* The ids as a JSON array, which the server turns into rows: no quoting of
 * array literals in C. */
static char *ids_json(char *const *want, int nwant)
{
	json_t *a = json_array();
	char *s;

	for (int i = 0; i < nwant; i++)
		json_array_append_new(a, json_string(want[i]));
	s = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	return s;
}

static int read_courses(PGresult *res, int col, struct gradeq_enroll_courses *out)
{
	int n = PQntuples(res);

	for (int i = 0; i < n; i++)
		if (PQgetisnull(res, i, col))
			return gradeq_error(GRADEQ_ERR_NOT_FOUND,
					    "unknown course '%s': nothing published",
					    PQgetvalue(res, i, 0));
	out->ids = calloc((size_t)n + 1, sizeof(*out->ids));
	if (!out->ids)
		return GRADEQ_ERR_NOMEM;
	for (int i = 0; i < n; i++) {
		out->ids[i] = strdup(PQgetvalue(res, i, col));
		if (!out->ids[i])
			return GRADEQ_ERR_NOMEM;
		out->n++;
	}
	return 0;
}

int gradeq_enroll_courses_resolve(struct gradeq_store *st, char *const *want, int nwant, bool all,
				  struct gradeq_enroll_courses *out)
{
	PGconn *conn = gradeq_store_conn(st);
	PGresult *res = NULL;
	char *arr = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if (all) {
		res = PQexec(conn, "SELECT course_id FROM courses ORDER BY course_id");
	} else {
		const char *params[1];

		arr = ids_json(want, nwant);
		if (!arr)
			return GRADEQ_ERR_NOMEM;
		params[0] = arr;
		res = PQexecParams(
			conn,
			"SELECT w.id, c.course_id FROM jsonb_array_elements_text($1::jsonb)"
			" WITH ORDINALITY AS w(id, n)"
			" LEFT JOIN courses c ON c.course_id = w.id ORDER BY w.n",
			1, NULL, params, NULL, NULL, 0);
	}
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = gradeq_store_result_error(st, res, "reading courses");
	else
		rc = read_courses(res, all ? 0 : 1, out);
	if (rc)
		gradeq_enroll_courses_release(out);
	PQclear(res);
	free(arr);
	return rc;
}

int gradeq_enroll_course_policy(struct gradeq_store *st, const char *course, char **version,
				char **policy)
{
	const char *params[1] = {course};
	PGresult *res;
	int rc = 0;

	*version = *policy = NULL;
	res = PQexecParams(gradeq_store_conn(st),
			   "SELECT version, grading_policy::text FROM courses WHERE course_id = $1",
			   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = gradeq_store_result_error(st, res, "reading the course");
	} else if (PQntuples(res) == 1) {
		/* a NULL column reads as "" (no policy: no hash to compare) */
		*version = strdup(PQgetvalue(res, 0, 0));
		*policy = strdup(PQgetvalue(res, 0, 1));
		if (!*version || !*policy)
			rc = GRADEQ_ERR_NOMEM;
	}
	PQclear(res);
	return rc;
}

/* The incremental cursor. A learner whose scores change without changing
 * the grade keeps an old 'modified' and is sent again by later runs:
 * bounded extra work, never a missed change. */
static const char changed_sql[] =
	"DECLARE gq_enr NO SCROLL CURSOR FOR SELECT e.user_id FROM student_courseenrollment e"
	" LEFT JOIN grades_persistentcoursegrade g ON g.course_id = e.course_id"
	"  AND g.user_id = e.user_id"
	" WHERE e.course_id = $1 AND (NOT $2::bool OR e.is_active)"
	" AND (g.user_id IS NULL OR g.course_version IS DISTINCT FROM $3::text"
	"  OR ($4::text IS NOT NULL AND g.grading_policy_hash <> $4::text)"
	"  OR EXISTS (SELECT 1 FROM courseware_studentmodule m WHERE m.student_id = e.user_id"
	"   AND m.course_id = e.course_id"
	"   AND m.modified > coalesce($5::timestamptz, g.modified)))"
	" ORDER BY e.id";

/* The watermark selection: score rows changed since the watermark, through
 * the index range on (course_id, modified), joined to the enrollments by
 * their (user_id, course_id) key, and the enrollments added since. A row
 * whose writer the previous selection's snapshot ($4) saw was selected by
 * that run (the overlap's rows, mostly): it is not selected again. Its
 * 32-bit xmin becomes a full transaction id in the epoch of the present
 * one ($6, the current snapshot's xmax): a row of the window is far
 * younger than 2^31 transactions. Each learner's enrollment is a scalar
 * subquery, one index probe per learner, so that no row estimate can make
 * the planner hash every enrollment of the course instead. */
static const char since_sql[] = "DECLARE gq_enr NO SCROLL CURSOR FOR SELECT x.user_id FROM"
				" (SELECT c.user_id, (SELECT e.id FROM student_courseenrollment e"
				"   WHERE e.user_id = c.user_id AND e.course_id = $1"
				"   AND (NOT $2::bool OR e.is_active)) AS enrollment FROM"
				"  (SELECT m.student_id AS user_id FROM courseware_studentmodule m"
				"   WHERE m.course_id = $1 AND m.modified >= $3::timestamptz"
				"   AND NOT pg_visible_in_snapshot((((($6::int8 >> 32)"
				"    - (m.xmin::text::int8 > ($6::int8 & 4294967295))::int) << 32)"
				"    | m.xmin::text::int8)::text::xid8, $4::pg_snapshot)"
				"   UNION SELECT n.user_id FROM student_courseenrollment n"
				"   WHERE n.course_id = $1 AND n.id > $5::int8) c OFFSET 0) x"
				" WHERE x.enrollment IS NOT NULL ORDER BY x.enrollment";

/* The next watermark and the snapshot the selection reads, its first
 * statement in a repeatable-read transaction (see enroll.h). */
static const char next_sql[] = "SELECT least(clock_timestamp() - interval '" GRADEQ_STR(
	GRADEQ_WATERMARK_OVERLAP_MS) " milliseconds',"
				     " (SELECT min(a.xact_start) FROM pg_stat_activity a"
				     "  WHERE a.datname = current_database()"
				     "  AND a.pid <> pg_backend_pid() AND a.state <> 'idle'"
				     "  AND a.backend_type = 'client backend'"
				     "  AND a.application_name NOT LIKE 'gradeq%')),"
				     " clock_timestamp(), (SELECT coalesce(max(id), 0)"
				     "  FROM student_courseenrollment WHERE course_id = $1),"
				     " pg_current_snapshot()::text,"
				     " pg_snapshot_xmax(pg_current_snapshot())::text";

static int take_next(struct gradeq_store *st, const char *course, struct gradeq_watermark *next,
		     char *xmax, size_t xmax_len)
{
	const char *params[1] = {course};
	PGresult *res =
		PQexecParams(gradeq_store_conn(st), next_sql, 1, NULL, params, NULL, NULL, 0);
	int rc = 0;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		rc = gradeq_store_result_error(st, res, "taking the watermark");
	} else {
		snprintf(next->watermark, sizeof(next->watermark), "%s", PQgetvalue(res, 0, 0));
		snprintf(next->selected_at, sizeof(next->selected_at), "%s", PQgetvalue(res, 0, 1));
		next->last_enrollment_id = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
		free(next->snapshot);
		next->snapshot = strdup(PQgetvalue(res, 0, 3));
		snprintf(xmax, xmax_len, "%s", PQgetvalue(res, 0, 4));
		if (!next->snapshot)
			rc = GRADEQ_ERR_NOMEM;
	}
	PQclear(res);
	return rc;
}

int gradeq_enroll_open(struct gradeq_store *st, const struct gradeq_enroll_query *q)
{
	const char *params[6] = {q->course, q->active_only ? "t" : "f", q->version, q->policy_hash,
				 q->changed_since};
	struct gradeq_watermark scratch = {0};
	char last[32], xmax[32];
	PGresult *res;
	/* one snapshot for the watermark taken and the selection read */
	int rc = gradeq_store_exec(st, q->incremental && (q->since || q->next)
					       ? "BEGIN ISOLATION LEVEL REPEATABLE READ"
					       : "BEGIN");

	if (rc)
		return rc;
	if (q->incremental && (q->since || q->next)) {
		rc = take_next(st, q->course, q->next ? q->next : &scratch, xmax, sizeof(xmax));
		gradeq_watermark_clear(&scratch);
		if (rc) {
			gradeq_enroll_close(st);
			return rc;
		}
	}
	if (q->incremental && q->since) {
		snprintf(last, sizeof(last), "%lld", q->since->last_enrollment_id);
		params[2] = q->since->watermark;
		params[3] = q->since->snapshot;
		params[4] = last;
		params[5] = xmax;
		res = PQexecParams(gradeq_store_conn(st), since_sql, 6, NULL, params, NULL, NULL,
				   0);
	} else if (q->incremental)
		res = PQexecParams(gradeq_store_conn(st), changed_sql, 5, NULL, params, NULL, NULL,
				   0);
	else
		res = PQexecParams(
			gradeq_store_conn(st),
			q->active_only
				? "DECLARE gq_enr NO SCROLL CURSOR FOR SELECT user_id FROM"
				  " student_courseenrollment WHERE course_id = $1 AND"
				  " is_active ORDER BY id"
				: "DECLARE gq_enr NO SCROLL CURSOR FOR SELECT user_id FROM"
				  " student_courseenrollment WHERE course_id = $1 ORDER BY id",
			1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		rc = gradeq_store_result_error(st, res, "reading enrollments");
	PQclear(res);
	if (rc)
		gradeq_enroll_close(st);
	return rc;
}

int gradeq_enroll_fetch(struct gradeq_store *st, int32_t *ids, size_t *n)
{
	PGresult *res = PQexec(gradeq_store_conn(st), "FETCH 10000 FROM gq_enr");
	int rc = 0;

	*n = 0;
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = gradeq_store_result_error(st, res, "reading enrollments");
	for (int i = 0; !rc && i < PQntuples(res) && i < GRADEQ_ENROLL_FETCH; i++)
		ids[(*n)++] = (int32_t)strtol(PQgetvalue(res, i, 0), NULL, 10);
	PQclear(res);
	return rc;
}

void gradeq_enroll_close(struct gradeq_store *st)
{
	PQclear(PQexec(gradeq_store_conn(st), "ROLLBACK"));
}
