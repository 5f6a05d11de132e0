/* Job outputs and their parts (migration 8), and the stored grades a
 * report part reads. */
#include "gradeq/outputs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"

#define OUTPUT_COLUMNS                                                                                \
	"output_id, run_id, course_id, name, format, backend, key, state, created_by, parts,"         \
	" coalesce(size, -1), coalesce(sha256, ''),"                                                  \
	" coalesce(to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), ''),"    \
	" coalesce(to_char(sealed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), ''),"     \
	" coalesce(to_char(keep_until AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), ''),"    \
	" coalesce(to_char(downloaded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '')," \
	" coalesce(to_char(deleted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), ''),"    \
	" use_once"

void gradeq_output_release(struct gradeq_output *o)
{
	if (!o)
		return;
	free(o->course_id);
	free(o->name);
	free(o->format);
	free(o->backend);
	free(o->key);
	free(o->state);
	free(o->created_by);
	memset(o, 0, sizeof(*o));
}

static int read_row(const PGresult *res, int r, struct gradeq_output *o)
{
	memset(o, 0, sizeof(*o));
	snprintf(o->output_id, sizeof(o->output_id), "%s", PQgetvalue(res, r, 0));
	snprintf(o->run_id, sizeof(o->run_id), "%s", PQgetvalue(res, r, 1));
	o->course_id = strdup(PQgetvalue(res, r, 2));
	o->name = strdup(PQgetvalue(res, r, 3));
	o->format = strdup(PQgetvalue(res, r, 4));
	o->backend = strdup(PQgetvalue(res, r, 5));
	o->key = strdup(PQgetvalue(res, r, 6));
	o->state = strdup(PQgetvalue(res, r, 7));
	o->created_by = strdup(PQgetvalue(res, r, 8));
	o->parts = atoi(PQgetvalue(res, r, 9));
	o->size = strtoll(PQgetvalue(res, r, 10), NULL, 10);
	snprintf(o->sha256, sizeof(o->sha256), "%s", PQgetvalue(res, r, 11));
	snprintf(o->created_at, sizeof(o->created_at), "%s", PQgetvalue(res, r, 12));
	snprintf(o->sealed_at, sizeof(o->sealed_at), "%s", PQgetvalue(res, r, 13));
	snprintf(o->keep_until, sizeof(o->keep_until), "%s", PQgetvalue(res, r, 14));
	snprintf(o->downloaded_at, sizeof(o->downloaded_at), "%s", PQgetvalue(res, r, 15));
	snprintf(o->deleted_at, sizeof(o->deleted_at), "%s", PQgetvalue(res, r, 16));
	o->use_once = PQgetvalue(res, r, 17)[0] == 't';
	if (!o->course_id || !o->name || !o->format || !o->backend || !o->key || !o->state ||
	    !o->created_by) {
		gradeq_output_release(o);
		return GRADEQ_ERR_NOMEM;
	}
	return 0;
}

int gradeq_output_create(struct gradeq_store *st, const struct gradeq_output *o)
{
	char parts[16];
	const char *params[11] = {o->output_id,
				  o->run_id,
				  o->course_id,
				  o->name,
				  o->format,
				  o->backend,
				  o->key,
				  parts,
				  o->created_by,
				  o->keep_until[0] ? o->keep_until : NULL,
				  o->use_once ? "true" : "false"};
	PGresult *res;
	int rc = 0;

	snprintf(parts, sizeof(parts), "%d", o->parts);
	res = PQexecParams(gradeq_store_conn(st),
			   "INSERT INTO gradeq_outputs (output_id, run_id, course_id, name, format,"
			   " backend, key, parts, created_by, keep_until, use_once)"
			   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::int, $9, $10::timestamptz,"
			   " $11::boolean)",
			   11, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		rc = gradeq_store_result_error(st, res, "recording an output");
	PQclear(res);
	return rc;
}

int gradeq_output_get(struct gradeq_store *st, const char *output_id, bool lock,
		      struct gradeq_output *o, bool *found)
{
	const char *params[1] = {output_id};
	PGresult *res;
	int rc = 0;

	memset(o, 0, sizeof(*o));
	*found = false;
	res = PQexecParams(gradeq_store_conn(st),
			   lock ? "SELECT " OUTPUT_COLUMNS " FROM gradeq_outputs"
				  " WHERE output_id::text = lower($1) FOR UPDATE"
				: "SELECT " OUTPUT_COLUMNS " FROM gradeq_outputs"
				  " WHERE output_id::text = lower($1)",
			   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = gradeq_store_result_error(st, res, "reading an output");
	} else if (PQntuples(res) == 1) {
		rc = read_row(res, 0, o);
		*found = rc == 0;
	}
	PQclear(res);
	return rc;
}

static int list_rows(struct gradeq_store *st, const char *sql, int nparams,
		     const char *const *params, struct gradeq_output **out, size_t *n)
{
	PGresult *res =
		PQexecParams(gradeq_store_conn(st), sql, nparams, NULL, params, NULL, NULL, 0);
	int rc = 0, rows;

	*out = NULL;
	*n = 0;
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = gradeq_store_result_error(st, res, "listing outputs");
		goto out;
	}
	rows = PQntuples(res);
	*out = calloc(rows ? (size_t)rows : 1, sizeof(**out));
	if (!*out) {
		rc = GRADEQ_ERR_NOMEM;
		goto out;
	}
	for (int r = 0; r < rows && !rc; r++) {
		rc = read_row(res, r, &(*out)[r]);
		if (!rc)
			(*n)++;
	}
out:
	PQclear(res);
	return rc;
}

int gradeq_output_list(struct gradeq_store *st, const char *course_id, struct gradeq_output **out,
		       size_t *n)
{
	const char *params[1] = {course_id};

	return list_rows(st,
			 "SELECT " OUTPUT_COLUMNS " FROM gradeq_outputs WHERE course_id = $1"
			 " ORDER BY created_at DESC, output_id",
			 1, params, out, n);
}

int gradeq_output_list_expired(struct gradeq_store *st, struct gradeq_output **out, size_t *n)
{
	return list_rows(st,
			 "SELECT " OUTPUT_COLUMNS " FROM gradeq_outputs WHERE deleted_at IS NULL"
			 " AND keep_until IS NOT NULL AND keep_until < now() ORDER BY output_id",
			 0, NULL, out, n);
}

/* Runs sql, an UPDATE of the output whose id is $1: 0 with *changed (when
 * not NULL) true when it changed that row, or the error of step what. */
static int update_output(struct gradeq_store *st, const char *sql, const char *output_id,
			 const char *what, bool *changed)
{
	const char *params[1] = {output_id};
	PGresult *res = PQexecParams(gradeq_store_conn(st), sql, 1, NULL, params, NULL, NULL, 0);
	int rc = 0;

	if (changed)
		*changed = false;
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		rc = gradeq_store_result_error(st, res, what);
	else if (changed)
		*changed = strcmp(PQcmdTuples(res), "1") == 0;
	PQclear(res);
	return rc;
}

int gradeq_output_mark_deleted(struct gradeq_store *st, const char *output_id, bool *found)
{
	return update_output(st,
			     "UPDATE gradeq_outputs SET state = 'deleted', deleted_at = now()"
			     " WHERE output_id::text = lower($1) AND deleted_at IS NULL",
			     output_id, "deleting an output", found);
}

int gradeq_output_part_begin(struct gradeq_store *st)
{
	return gradeq_store_exec(st, "BEGIN");
}

int gradeq_output_part_record(struct gradeq_store *st, const char *output_id, int part,
			      const char *job_id, int rows, long long size, const char *sha256,
			      bool *fresh, int *done)
{
	char spart[16], srows[16], ssize[24];
	const char *params[6] = {output_id, spart, job_id, srows, ssize, sha256};
	PGconn *conn = gradeq_store_conn(st);
	PGresult *res;
	int rc = 0;

	snprintf(spart, sizeof(spart), "%d", part);
	snprintf(srows, sizeof(srows), "%d", rows);
	snprintf(ssize, sizeof(ssize), "%lld", size);
	*fresh = false;
	*done = 0;
	res = PQexecParams(conn,
			   "INSERT INTO gradeq_output_parts (output_id, part, job_id, rows, size,"
			   " sha256) VALUES ($1, $2::int, $3, $4::int, $5::bigint, $6)"
			   " ON CONFLICT (output_id, part) DO NOTHING",
			   6, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		rc = gradeq_store_result_error(st, res, "recording a part");
		goto out;
	}
	*fresh = strcmp(PQcmdTuples(res), "1") == 0;
	PQclear(res);
	/* the lock first, then the count: a part that committed while this
	 * one waited is counted */
	res = PQexecParams(conn,
			   "WITH o AS (SELECT output_id FROM gradeq_outputs WHERE output_id = $1"
			   " FOR UPDATE) SELECT (SELECT count(*) FROM gradeq_output_parts p"
			   " WHERE p.output_id = $1) FROM o",
			   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		rc = gradeq_store_result_error(st, res, "counting parts");
		goto out;
	}
	*done = atoi(PQgetvalue(res, 0, 0));
out:
	PQclear(res);
	return rc;
}

int gradeq_output_mark_sealed(struct gradeq_store *st, const char *output_id, long long size,
			      const char *sha256)
{
	char ssize[24];
	const char *params[3] = {output_id, ssize, sha256};
	PGresult *res;
	int rc = 0;

	snprintf(ssize, sizeof(ssize), "%lld", size);
	res = PQexecParams(gradeq_store_conn(st),
			   "UPDATE gradeq_outputs SET state = 'sealed', sealed_at = now(),"
			   " size = $2::bigint, sha256 = $3 WHERE output_id = $1"
			   " AND state IN ('pending', 'failed')",
			   3, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		rc = gradeq_store_result_error(st, res, "sealing an output");
	PQclear(res);
	return rc;
}

int gradeq_output_mark_failed(struct gradeq_store *st, const char *output_id, bool *changed)
{
	return update_output(st,
			     "UPDATE gradeq_outputs SET state = 'failed'"
			     " WHERE output_id = $1 AND state = 'pending'",
			     output_id, "marking an output failed", changed);
}

int gradeq_output_learners(struct gradeq_store *st, const char *course_id, int32_t **ids, size_t *n)
{
	const char *params[1] = {course_id};
	PGresult *res = PQexecParams(
		gradeq_store_conn(st),
		"SELECT g.user_id FROM grades_persistentcoursegrade g WHERE g.course_id = $1"
		" AND EXISTS (SELECT 1 FROM student_courseenrollment e WHERE e.course_id = $1"
		" AND e.user_id = g.user_id) ORDER BY g.user_id",
		1, NULL, params, NULL, NULL, 0);
	int rc = 0, rows;

	*ids = NULL;
	*n = 0;
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = gradeq_store_result_error(st, res, "reading the course's graded learners");
		goto out;
	}
	rows = PQntuples(res);
	*ids = malloc((rows ? (size_t)rows : 1) * sizeof(**ids));
	if (!*ids) {
		rc = GRADEQ_ERR_NOMEM;
		goto out;
	}
	for (int r = 0; r < rows; r++)
		(*ids)[r] = (int32_t)strtol(PQgetvalue(res, r, 0), NULL, 10);
	*n = (size_t)rows;
out:
	PQclear(res);
	return rc;
}

/* The subsection grades of the batch, one query, into arrays indexed
 * [learner row][key]. */
static int read_subs(struct gradeq_store *st, const char *const *params, const int32_t *users,
		     size_t nusers, size_t nkeys, double *earned, double *possible, bool *has)
{
	PGresult *res = PQexecParams(
		gradeq_store_conn(st),
		"SELECT s.user_id, k.idx, s.earned_graded, s.possible_graded"
		" FROM grades_persistentsubsectiongrade s"
		" JOIN unnest($3::text[]) WITH ORDINALITY AS k(key, idx) ON k.key = s.usage_key"
		" WHERE s.course_id = $1 AND s.user_id = ANY($2::int4[]) ORDER BY 1, 2",
		3, NULL, params, NULL, NULL, 0);
	size_t u = 0;
	int rc = 0;

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = gradeq_store_result_error(st, res, "reading subsection grades");
		goto out;
	}
	for (int r = 0; r < PQntuples(res); r++) {
		int32_t uid = (int32_t)strtol(PQgetvalue(res, r, 0), NULL, 10);
		long idx = strtol(PQgetvalue(res, r, 1), NULL, 10) - 1;

		while (u < nusers && users[u] < uid)
			u++;
		if (u == nusers || users[u] != uid || idx < 0 || (size_t)idx >= nkeys)
			continue;
		earned[u * nkeys + (size_t)idx] = strtod(PQgetvalue(res, r, 2), NULL);
		possible[u * nkeys + (size_t)idx] = strtod(PQgetvalue(res, r, 3), NULL);
		has[u * nkeys + (size_t)idx] = true;
	}
out:
	PQclear(res);
	return rc;
}

static int cmp_i32(const void *a, const void *b)
{
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;

	return (x > y) - (x < y);
}

int gradeq_output_grades_read(struct gradeq_store *st, const char *course_id,
			      const int32_t *user_ids, size_t n, const struct gradeq_keys *keys,
			      gradeq_output_grade_fn fn, void *ctx)
{
	size_t nkeys = gradeq_keys_count(keys), cells = (n ? n : 1) * (nkeys ? nkeys : 1);
	int32_t *users = malloc((n ? n : 1) * sizeof(*users));
	double *earned = calloc(cells, sizeof(*earned)),
	       *possible = calloc(cells, sizeof(*possible));
	bool *has = calloc(cells, sizeof(*has));
	char *array = NULL;
	const char *params[3];
	PGresult *res = NULL;
	size_t u = 0;
	int rc;

	if (!users || !earned || !possible || !has) {
		rc = GRADEQ_ERR_NOMEM;
		goto out;
	}
	memcpy(users, user_ids, n * sizeof(*users));
	qsort(users, n, sizeof(*users), cmp_i32);
	array = gradeq_store_int_array(users, n);
	if (!array) {
		rc = GRADEQ_ERR_NOMEM;
		goto out;
	}
	params[0] = course_id;
	params[1] = array;
	params[2] = gradeq_keys_array(keys);
	rc = gradeq_store_exec(st, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
	if (rc)
		goto out;
	rc = read_subs(st, params, users, n, nkeys, earned, possible, has);
	if (rc)
		goto done;
	res = PQexecParams(
		gradeq_store_conn(st),
		"SELECT user_id, percent_grade, letter_grade, passed_timestamp IS NOT NULL"
		" FROM grades_persistentcoursegrade WHERE course_id = $1"
		" AND user_id = ANY($2::int4[]) ORDER BY user_id",
		2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = gradeq_store_result_error(st, res, "reading course grades");
		goto done;
	}
	for (int r = 0; r < PQntuples(res) && !rc; r++) {
		struct gradeq_output_grade g = {
			.user_id = (int32_t)strtol(PQgetvalue(res, r, 0), NULL, 10),
			.percent = strtod(PQgetvalue(res, r, 1), NULL),
			.letter = PQgetvalue(res, r, 2),
			.passed = PQgetvalue(res, r, 3)[0] == 't',
		};

		while (u < n && users[u] < g.user_id)
			u++;
		if (u == n || users[u] != g.user_id)
			continue;
		g.earned = earned + u * nkeys;
		g.possible = possible + u * nkeys;
		g.has = has + u * nkeys;
		rc = fn(ctx, &g);
	}
done:
	gradeq_store_rollback(st);
out:
	PQclear(res);
	free(array);
	free(users);
	free(earned);
	free(possible);
	free(has);
	return rc;
}

int gradeq_output_team_member(struct gradeq_store *st, const char *course_id, int32_t user_id,
			      bool *member)
{
	char uid[16];
	const char *params[2] = {course_id, uid};
	PGresult *res;
	int rc = 0;

	snprintf(uid, sizeof(uid), "%d", (int)user_id);
	*member = false;
	res = PQexecParams(
		gradeq_store_conn(st),
		"SELECT EXISTS (SELECT 1 FROM student_courseaccessrole WHERE course_id = $1"
		" AND user_id = $2::int AND role IN ('staff', 'instructor'))",
		2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		rc = gradeq_store_result_error(st, res, "reading the course team");
	else
		*member = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	return rc;
}

int gradeq_output_courses(struct gradeq_store *st, int32_t user_id, char ***courses, size_t *n)
{
	char uid[16];
	const char *params[1] = {uid};
	PGresult *res;
	int rc = 0;

	*courses = NULL;
	*n = 0;
	snprintf(uid, sizeof(uid), "%d", (int)user_id);
	if (user_id > 0)
		res = PQexecParams(gradeq_store_conn(st),
				   "SELECT DISTINCT course_id FROM student_courseaccessrole"
				   " WHERE user_id = $1::int AND role IN ('staff', 'instructor')"
				   " ORDER BY course_id",
				   1, NULL, params, NULL, NULL, 0);
	else
		res = PQexec(gradeq_store_conn(st),
			     "SELECT DISTINCT course_id FROM gradeq_outputs ORDER BY course_id");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = gradeq_store_result_error(st, res, "reading the courses with outputs");
		PQclear(res);
		return rc;
	}
	*courses = calloc((size_t)PQntuples(res) + 1, sizeof(char *));
	if (!*courses)
		rc = GRADEQ_ERR_NOMEM;
	for (int i = 0; !rc && i < PQntuples(res); i++) {
		(*courses)[i] = strdup(PQgetvalue(res, i, 0));
		if (!(*courses)[i])
			rc = GRADEQ_ERR_NOMEM;
		else
			(*n)++;
	}
	PQclear(res);
	if (rc) {
		for (size_t i = 0; i < *n; i++)
			free((*courses)[i]);
		free(*courses);
		*courses = NULL;
		*n = 0;
	}
	return rc;
}

int gradeq_output_mark_downloaded(struct gradeq_store *st, const char *output_id)
{
	return update_output(st,
			     "UPDATE gradeq_outputs SET downloaded_at = now()"
			     " WHERE output_id::text = lower($1)",
			     output_id, "recording a download", NULL);
}
