/* Courses and enrollments for gradeq-publish (see enroll.h). */
#include "gradeq/enroll.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "gradeq/store.h"
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

int gradeq_enroll_open(struct gradeq_store *st, const struct gradeq_enroll_query *q)
{
	const char *params[5] = {q->course, q->active_only ? "t" : "f", q->version, q->policy_hash,
				 q->changed_since};
	PGresult *res;
	int rc = gradeq_store_exec(st, "BEGIN");

	if (rc)
		return rc;
	if (q->incremental)
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
