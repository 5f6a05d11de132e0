/* A batch's grade rows: COPY into temporary tables, then one round of
 * inserts or upserts into the output tables. */
#include "gradeq/grades.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gradeq/copy.h"
#include "gradeq/log.h"
#include "store/internal.h"

static void format_ts(char *buf, size_t len, int64_t us)
{
	time_t secs = (time_t)(us / 1000000);
	int64_t frac = us % 1000000;
	struct tm tm;

	if (frac < 0) {
		frac += 1000000;
		secs -= 1;
	}
	gmtime_r(&secs, &tm);
	snprintf(buf, len, "%04d-%02d-%02d %02d:%02d:%02d.%06d+00", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
}

static int copy_rows(struct gradeq_store *st, const struct gradeq_grades_batch *b)
{
	size_t ns = gradeq_keys_count(b->subsections);
	struct gradeq_copy *cp = NULL;
	char ts[64];
	int rc;

	rc = gradeq_copy_begin(st, "COPY gq_tmp_sub FROM STDIN", "writing grades", &cp);
	for (size_t l = 0; !rc && l < b->nlearners; l++) {
		for (size_t i = 0; !rc && i < ns; i++) {
			const struct gradeq_subsection_row *r = &b->subs[l * ns + i];

			if (r->attempted)
				format_ts(ts, sizeof(ts), r->first_attempted_us);
			gradeq_copy_int(cp, b->learners[l].user_id);
			gradeq_copy_int(cp, (long long)(i + 1));
			gradeq_copy_double(cp, r->earned_all);
			gradeq_copy_double(cp, r->possible_all);
			gradeq_copy_double(cp, r->earned_graded);
			gradeq_copy_double(cp, r->possible_graded);
			if (r->attempted)
				gradeq_copy_raw(cp, ts, strlen(ts));
			else
				gradeq_copy_null(cp);
			rc = gradeq_copy_row(cp);
		}
	}
	rc = gradeq_copy_end(cp, rc);
	if (rc)
		return rc;
	rc = gradeq_copy_begin(st, "COPY gq_tmp_course FROM STDIN", "writing grades", &cp);
	for (size_t l = 0; !rc && l < b->nlearners; l++) {
		const struct gradeq_course_row *r = &b->learners[l];

		gradeq_copy_int(cp, r->user_id);
		gradeq_copy_double(cp, r->percent);
		gradeq_copy_text(cp, r->letter ? r->letter : "");
		gradeq_copy_bool(cp, r->passed);
		rc = gradeq_copy_row(cp);
	}
	return gradeq_copy_end(cp, rc);
}

/* The grade rows of a batch go in by plain INSERT when none of its learners
 * has a row of this course yet (a first backfill), by upsert otherwise:
 * ON CONFLICT's speculative insertion costs about a third more per row.
 * A concurrent writer that adds rows after the check makes the plain INSERT
 * fail on the unique key; the savepoint takes it back and the upsert runs. */
static const char sub_insert_sql[] =
	"INSERT INTO grades_persistentsubsectiongrade AS g (user_id, course_id, usage_key,"
	" course_version, earned_all, possible_all, earned_graded, possible_graded,"
	" first_attempted, created, modified)"
	" SELECT t.user_id, %s, k.key, %s, t.earned_all, t.possible_all, t.earned_graded,"
	" t.possible_graded, t.first_attempted, now(), now()"
	" FROM gq_tmp_sub t JOIN unnest(%s::text[]) WITH ORDINALITY AS k(key, idx)"
	" ON k.idx = t.sub_idx ORDER BY t.user_id, k.key";
static const char sub_upsert_sql[] =
	" ON CONFLICT (course_id, user_id, usage_key) DO UPDATE SET"
	" course_version = EXCLUDED.course_version, earned_all = EXCLUDED.earned_all,"
	" possible_all = EXCLUDED.possible_all, earned_graded = EXCLUDED.earned_graded,"
	" possible_graded = EXCLUDED.possible_graded,"
	" first_attempted = LEAST(g.first_attempted, EXCLUDED.first_attempted),"
	" modified = now()"
	" WHERE (g.course_version, g.earned_all, g.possible_all, g.earned_graded,"
	" g.possible_graded, g.first_attempted) IS DISTINCT FROM (EXCLUDED.course_version,"
	" EXCLUDED.earned_all, EXCLUDED.possible_all, EXCLUDED.earned_graded,"
	" EXCLUDED.possible_graded, LEAST(g.first_attempted, EXCLUDED.first_attempted))";
static const char course_insert_sql[] =
	"INSERT INTO grades_persistentcoursegrade AS g (user_id, course_id, course_version,"
	" grading_policy_hash, percent_grade, letter_grade, passed_timestamp,"
	" course_edited_timestamp, created, modified)"
	" SELECT t.user_id, %s, %s, %s, t.percent, t.letter,"
	" CASE WHEN t.passed THEN now() END, %s::timestamptz, now(), now()"
	" FROM gq_tmp_course t ORDER BY t.user_id";
static const char course_upsert_sql[] =
	" ON CONFLICT (course_id, user_id) DO UPDATE SET"
	" course_version = EXCLUDED.course_version,"
	" grading_policy_hash = EXCLUDED.grading_policy_hash,"
	" percent_grade = EXCLUDED.percent_grade, letter_grade = EXCLUDED.letter_grade,"
	" passed_timestamp = COALESCE(g.passed_timestamp, EXCLUDED.passed_timestamp),"
	" course_edited_timestamp = EXCLUDED.course_edited_timestamp, modified = now()"
	" WHERE (g.course_version, g.grading_policy_hash, g.percent_grade, g.letter_grade,"
	" g.course_edited_timestamp, g.passed_timestamp IS NULL) IS DISTINCT FROM"
	" (EXCLUDED.course_version, EXCLUDED.grading_policy_hash, EXCLUDED.percent_grade,"
	" EXCLUDED.letter_grade, EXCLUDED.course_edited_timestamp,"
	" g.passed_timestamp IS NULL AND EXCLUDED.passed_timestamp IS NULL)";

/* The int4[] text of the learners graded (not the job's skipped ones),
 * malloc'd; NULL when out of memory. */
static char *graded_ids(const struct gradeq_grades_batch *b)
{
	int32_t *ids = malloc((b->nlearners + 1) * sizeof(*ids));
	char *s;

	if (!ids)
		return NULL;
	for (size_t i = 0; i < b->nlearners; i++)
		ids[i] = (int32_t)b->learners[i].user_id;
	s = gradeq_store_int_array(ids, b->nlearners);
	free(ids);
	return s;
}

/* How many of the graded learners' rows exist already: 0 none (a first
 * backfill), 1 some, 2 all (a regrade: no row to insert), negative on
 * error. Both unique indexes answer it, index only. */
static int grades_exist(struct gradeq_store *st, const struct gradeq_grades_batch *b)
{
	char *ids = graded_ids(b);
	const char *params[2] = {b->course_id, ids};
	long long nsub, ncourse;
	PGresult *res;
	int rc;

	if (!ids)
		return GRADEQ_ERR_NOMEM;
	res = PQexecParams(gradeq_store_conn(st),
			   "SELECT (SELECT count(*) FROM grades_persistentsubsectiongrade"
			   "  WHERE course_id = $1 AND user_id = ANY($2::int4[])),"
			   " (SELECT count(*) FROM grades_persistentcoursegrade"
			   "  WHERE course_id = $1 AND user_id = ANY($2::int4[]))",
			   2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		rc = gradeq_store_result_error(st, res, "writing grades");
	} else {
		nsub = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		ncourse = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
		rc = nsub + ncourse == 0 ? 0 : 1;
		/* every learner graded has a course row and one row a subsection */
		if (ncourse == (long long)b->nlearners &&
		    nsub == (long long)(b->nlearners * gradeq_keys_count(b->subsections)))
			rc = 2;
	}
	PQclear(res);
	free(ids);
	return rc;
}

/* A regrade (rows exist): rows whose values change are updated by a join on
 * the batch's learners, through the (course_id, user_id, ...) unique
 * indexes; unchanged rows are only read. ON CONFLICT DO UPDATE would lock
 * (and so write) every conflicting row, even one its WHERE leaves alone:
 * a regrade where few rows change paid for all of them. Rows still missing
 * go in by the upsert (a writer that adds them meanwhile is updated). */
static const char sub_update_sql[] =
	"UPDATE grades_persistentsubsectiongrade g SET course_version = %s,"
	" earned_all = t.earned_all, possible_all = t.possible_all,"
	" earned_graded = t.earned_graded, possible_graded = t.possible_graded,"
	" first_attempted = LEAST(g.first_attempted, t.first_attempted), modified = now()"
	" FROM gq_tmp_sub t JOIN unnest(%s::text[]) WITH ORDINALITY AS k(key, idx)"
	"  ON k.idx = t.sub_idx"
	" WHERE g.course_id = %s AND g.user_id = ANY(%s::int4[]) AND g.user_id = t.user_id"
	" AND g.usage_key = k.key"
	" AND (g.course_version, g.earned_all, g.possible_all, g.earned_graded,"
	" g.possible_graded, g.first_attempted) IS DISTINCT FROM (%s::text, t.earned_all,"
	" t.possible_all, t.earned_graded, t.possible_graded,"
	" LEAST(g.first_attempted, t.first_attempted));";
static const char sub_missing_sql[] =
	" AND NOT EXISTS (SELECT 1 FROM grades_persistentsubsectiongrade e"
	" WHERE e.course_id = %s AND e.user_id = t.user_id AND e.usage_key = k.key)";
static const char course_update_sql[] =
	"UPDATE grades_persistentcoursegrade g SET course_version = %s,"
	" grading_policy_hash = %s, percent_grade = t.percent, letter_grade = t.letter,"
	" passed_timestamp = COALESCE(g.passed_timestamp, CASE WHEN t.passed THEN now() END),"
	" course_edited_timestamp = %s::timestamptz, modified = now()"
	" FROM gq_tmp_course t"
	" WHERE g.course_id = %s AND g.user_id = ANY(%s::int4[]) AND g.user_id = t.user_id"
	" AND (g.course_version, g.grading_policy_hash, g.percent_grade, g.letter_grade,"
	" g.course_edited_timestamp, g.passed_timestamp IS NULL) IS DISTINCT FROM"
	" (%s::text, %s::text, t.percent, t.letter, %s::timestamptz,"
	" g.passed_timestamp IS NULL AND NOT t.passed);";
static const char course_missing_sql[] =
	" AND NOT EXISTS (SELECT 1 FROM grades_persistentcoursegrade e"
	" WHERE e.course_id = %s AND e.user_id = t.user_id)";

/* The plain INSERT ... SELECT text with "WHERE true" before its ORDER BY
 * replaced by the missing-rows filter: the statements share their
 * select lists. */
static size_t with_filter(char *out, size_t cap, const char *insert, const char *filter)
{
	const char *order = strstr(insert, " ORDER BY");
	size_t head = order ? (size_t)(order - insert) : strlen(insert);

	return (size_t)snprintf(out, cap, "%.*s WHERE true%s%s", (int)head, insert, filter,
				order ? order : "");
}

/* Runs the two grade statements, as plain inserts (fresh), or as updates of
 * the changed rows followed (unless complete: every row exists) by the
 * upsert of the missing ones. Sets *conflict when a plain insert met a row
 * added meanwhile. */
static int insert_grades(struct gradeq_store *st, const char *sub_keys, const char *course,
			 const char *version, const char *hash, const char *edited, const char *ids,
			 bool fresh, bool complete, bool *conflict)
{
	size_t cap = 2 * (sizeof(sub_insert_sql) + sizeof(sub_upsert_sql) +
			  sizeof(course_insert_sql) + sizeof(course_upsert_sql)) +
		     sizeof(sub_update_sql) + sizeof(course_update_sql) + sizeof(sub_missing_sql) +
		     sizeof(course_missing_sql) + 2 * strlen(sub_keys) + 8 * strlen(course) +
		     6 * strlen(version) + 3 * strlen(hash) + 3 * strlen(edited) + 3 * strlen(ids) +
		     256;
	char *sql = malloc(cap), *part = malloc(cap), *filter = malloc(cap);
	size_t len = 0;
	PGresult *res;
	int rc = 0;

	*conflict = false;
	if (!sql || !part || !filter) {
		free(sql);
		free(part);
		free(filter);
		return GRADEQ_ERR_NOMEM;
	}
	if (fresh) {
		len += (size_t)snprintf(sql + len, cap - len, "SAVEPOINT gq_fresh;");
		len += (size_t)snprintf(sql + len, cap - len, sub_insert_sql, course, version,
					sub_keys);
		len += (size_t)snprintf(sql + len, cap - len, ";");
		len += (size_t)snprintf(sql + len, cap - len, course_insert_sql, course, version,
					hash, edited);
		snprintf(sql + len, cap - len, ";RELEASE SAVEPOINT gq_fresh");
	} else {
		len += (size_t)snprintf(sql + len, cap - len, sub_update_sql, version, sub_keys,
					course, ids, version);
		if (!complete) {
			snprintf(part, cap, sub_insert_sql, course, version, sub_keys);
			snprintf(filter, cap, sub_missing_sql, course);
			len += with_filter(sql + len, cap - len, part, filter);
			len += (size_t)snprintf(sql + len, cap - len, "%s;", sub_upsert_sql);
		}
		len += (size_t)snprintf(sql + len, cap - len, course_update_sql, version, hash,
					edited, course, ids, version, hash, edited);
		if (!complete) {
			snprintf(part, cap, course_insert_sql, course, version, hash, edited);
			snprintf(filter, cap, course_missing_sql, course);
			len += with_filter(sql + len, cap - len, part, filter);
			snprintf(sql + len, cap - len, "%s", course_upsert_sql);
		}
	}
	res = PQexec(gradeq_store_conn(st), sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		if (fresh && state && strcmp(state, "23505") == 0) {
			PQclear(res);
			res = PQexec(gradeq_store_conn(st), "ROLLBACK TO SAVEPOINT gq_fresh");
			if (PQresultStatus(res) == PGRES_COMMAND_OK)
				*conflict = true;
			else
				rc = gradeq_store_result_error(st, res, "writing grades");
		} else {
			rc = gradeq_store_result_error(st, res, "writing grades");
		}
	}
	PQclear(res);
	free(sql);
	free(part);
	free(filter);
	return rc;
}

/* The batch's learners as a quoted int4[] literal (PQfreemem), or NULL. */
static char *quoted_ids(PGconn *conn, const struct gradeq_grades_batch *b)
{
	char *arr = graded_ids(b), *q;

	if (!arr)
		return NULL;
	q = PQescapeLiteral(conn, arr, strlen(arr));
	free(arr);
	return q;
}

static const char tmp_tables_sql[] =
	"CREATE TEMP TABLE IF NOT EXISTS gq_tmp_sub (user_id int, sub_idx int,"
	" earned_all float8, possible_all float8, earned_graded float8,"
	" possible_graded float8, first_attempted timestamptz)"
	" ON COMMIT DELETE ROWS;"
	"CREATE TEMP TABLE IF NOT EXISTS gq_tmp_course (user_id int,"
	" percent float8, letter text, passed bool) ON COMMIT DELETE ROWS";

int gradeq_grades_write(struct gradeq_store *st, const struct gradeq_grades_batch *b)
{
	PGconn *conn = gradeq_store_conn(st);
	char *course = NULL, *version = NULL, *hash = NULL, *edited = NULL;
	const char *sub_keys = NULL;
	char *ids = NULL, begin[sizeof(tmp_tables_sql) + 256];
	bool conflict = false;
	int rc, exist;

	/* in a group of jobs (store.h) the transaction is the group's: the
	 * job's writes go under its savepoint, and the temp tables still hold
	 * the rows of the group's job before */
	if ((size_t)snprintf(
		    begin, sizeof(begin), "%s;%s%s", gradeq_store_begin_sql(st), tmp_tables_sql,
		    gradeq_store_in_group(st) ? ";DELETE FROM gq_tmp_sub;DELETE FROM gq_tmp_course"
					      : "") >= sizeof(begin))
		rc = gradeq_error(GRADEQ_ERR_INVALID, "writing grades: statement too long");
	else
		rc = gradeq_store_exec(st, begin);
	if (rc)
		goto fail;
	rc = copy_rows(st, b);
	if (rc)
		goto fail;
	course = PQescapeLiteral(conn, b->course_id, strlen(b->course_id));
	version = PQescapeLiteral(conn, b->version, strlen(b->version));
	hash = PQescapeLiteral(conn, b->policy_hash, strlen(b->policy_hash));
	edited = b->edited ? PQescapeLiteral(conn, b->edited, strlen(b->edited)) : NULL;
	sub_keys = gradeq_keys_quoted(st, b->subsections);
	ids = quoted_ids(conn, b);
	if (!course || !version || !hash || (b->edited && !edited) || !sub_keys || !ids) {
		rc = gradeq_store_result_error(st, NULL, "escaping");
		goto fail;
	}
	exist = grades_exist(st, b);
	if (exist < 0) {
		rc = exist;
		goto fail;
	}
	rc = insert_grades(st, sub_keys, course, version, hash, edited ? edited : "NULL", ids,
			   exist == 0, exist == 2, &conflict);
	if (!rc && conflict) {
		log_debug("event=fresh_insert_conflict job=%s", b->job_id);
		rc = insert_grades(st, sub_keys, course, version, hash, edited ? edited : "NULL",
				   ids, false, false, &conflict);
	}
	if (!rc)
		goto out;
fail:
	gradeq_store_rollback(st);
out:
	PQfreemem(course);
	PQfreemem(version);
	PQfreemem(hash);
	PQfreemem(edited);
	PQfreemem(ids);
	return rc;
}
