/* A batch's grade rows: COPYed straight into the output tables on a first
 * backfill; on a regrade only the rows that change are written (compared in
 * C with the rows read back), updated by id or upserted. */
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

/* The upsert of rows missing from the output tables: a concurrent writer
 * that adds one meanwhile is updated by ON CONFLICT. */
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

/* After a first backfill's COPY met a row a concurrent writer added: the
 * whole batch (in the temp tables) as updates of the rows that exist and
 * change, then the upsert of the missing ones. */
static int upsert_grades(struct gradeq_store *st, const char *sub_keys, const char *course,
			 const char *version, const char *hash, const char *edited, const char *ids)
{
	size_t cap = 2 * (sizeof(sub_insert_sql) + sizeof(sub_upsert_sql) +
			  sizeof(course_insert_sql) + sizeof(course_upsert_sql)) +
		     sizeof(sub_update_sql) + sizeof(course_update_sql) + sizeof(sub_missing_sql) +
		     sizeof(course_missing_sql) + 2 * strlen(sub_keys) + 8 * strlen(course) +
		     6 * strlen(version) + 3 * strlen(hash) + 3 * strlen(edited) + 3 * strlen(ids) +
		     256;
	char *sql = malloc(cap), *part = malloc(cap), *filter = malloc(cap);
	size_t len = 0;
	int rc = GRADEQ_ERR_NOMEM;

	if (sql && part && filter) {
		len += (size_t)snprintf(sql + len, cap - len, sub_update_sql, version, sub_keys,
					course, ids, version);
		snprintf(part, cap, sub_insert_sql, course, version, sub_keys);
		snprintf(filter, cap, sub_missing_sql, course);
		len += with_filter(sql + len, cap - len, part, filter);
		len += (size_t)snprintf(sql + len, cap - len, "%s;", sub_upsert_sql);
		len += (size_t)snprintf(sql + len, cap - len, course_update_sql, version, hash,
					edited, course, ids, version, hash, edited);
		snprintf(part, cap, course_insert_sql, course, version, hash, edited);
		snprintf(filter, cap, course_missing_sql, course);
		len += with_filter(sql + len, cap - len, part, filter);
		snprintf(sql + len, cap - len, "%s", course_upsert_sql);
		rc = gradeq_store_exec(st, sql);
	}
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

/* Microseconds from the Unix epoch to PostgreSQL's (2000-01-01). */
#define PG_EPOCH_US 946684800000000LL

/* The batch's rows as they stand in the output tables, read in one pass
 * along their unique indexes: which exist (their ids) and which of those
 * already hold the values computed. */
struct existing {
	int64_t *sub_id; /* nlearners x subsections: row id, 0 none */
	bool *sub_same;
	int64_t *course_id; /* nlearners */
	bool *course_same;
	size_t nsub, ncourse;               /* rows found */
	size_t sub_changed, course_changed; /* found and different */
	struct {
		int32_t uid;
		int32_t l;
	} * by_uid;   /* sorted, for the lookup */
	char now[64]; /* the transaction's now() */
};

static int cmp_uid(const void *a, const void *b)
{
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;

	return (x > y) - (x < y);
}

static void existing_free(struct existing *e)
{
	free(e->sub_id);
	free(e->sub_same);
	free(e->course_id);
	free(e->course_same);
	free(e->by_uid);
}

static int existing_init(struct existing *e, const struct gradeq_grades_batch *b)
{
	size_t n = b->nlearners, ns = gradeq_keys_count(b->subsections);

	memset(e, 0, sizeof(*e));
	e->sub_id = calloc(n * ns + 1, sizeof(*e->sub_id));
	e->sub_same = calloc(n * ns + 1, sizeof(*e->sub_same));
	e->course_id = calloc(n + 1, sizeof(*e->course_id));
	e->course_same = calloc(n + 1, sizeof(*e->course_same));
	e->by_uid = calloc(n + 1, sizeof(*e->by_uid));
	if (!e->sub_id || !e->sub_same || !e->course_id || !e->course_same || !e->by_uid)
		return GRADEQ_ERR_NOMEM;
	for (size_t l = 0; l < n; l++) {
		e->by_uid[l].uid = b->learners[l].user_id;
		e->by_uid[l].l = (int32_t)l;
	}
	qsort(e->by_uid, n, sizeof(*e->by_uid), cmp_uid);
	return 0;
}

/* The batch's index of learner uid, -1 when not in it. */
static long learner_of(const struct existing *e, size_t n, int32_t uid)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (e->by_uid[mid].uid == uid)
			return e->by_uid[mid].l;
		if (e->by_uid[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static bool text_is(const struct gradeq_copy_field *f, const char *s)
{
	if (!s)
		return f->len == -1;
	return f->len >= 0 && strlen(s) == (size_t)f->len && memcmp(f->p, s, (size_t)f->len) == 0;
}

static bool f64_is(const struct gradeq_copy_field *f, double v)
{
	return f->len == 8 && gradeq_copy_f64(f->p) == v;
}

/* A stored subsection row equals the computed one after the update's
 * LEAST(first_attempted): the update would change nothing. */
static bool sub_same(const struct gradeq_copy_field *f, const struct gradeq_grades_batch *b,
		     const struct gradeq_subsection_row *r)
{
	bool had = f[8].len == 8;
	int64_t old = had ? gradeq_copy_i64(f[8].p) + PG_EPOCH_US : 0;

	if (!text_is(&f[3], b->version) || !f64_is(&f[4], r->earned_all) ||
	    !f64_is(&f[5], r->possible_all) || !f64_is(&f[6], r->earned_graded) ||
	    !f64_is(&f[7], r->possible_graded))
		return false;
	/* LEAST ignores NULLs: the stored value stays unless the new one is
	 * earlier or the stored one is NULL */
	if (!r->attempted)
		return true;
	return had && old <= r->first_attempted_us;
}

static bool course_same(const struct gradeq_copy_field *f, const struct gradeq_grades_batch *b,
			const struct gradeq_course_row *r)
{
	bool no_passed = f[6].len == 1 && f[6].p[0];

	return text_is(&f[2], b->version) && text_is(&f[3], b->policy_hash) &&
	       f64_is(&f[4], r->percent) && text_is(&f[5], r->letter ? r->letter : "") &&
	       text_is(&f[7], b->edited) && !(no_passed && r->passed);
}

/* The batch's existing grade rows, one index probe a learner: the lateral
 * subquery (OFFSET 0 keeps it one) leaves the planner no plan but the
 * (course_id, user_id) lookup. With "user_id = ANY(...)" and the grade
 * tables' statistics missing or stale (just truncated, say), it read the
 * course's whole range of the unique index and filtered it: 707 ms for a
 * batch of 100 learners of the large course against 76 ms for 1000 this
 * way (EXPLAIN ANALYZE, 2.4 million rows in the table). */
static int read_existing(struct gradeq_store *st, const struct gradeq_grades_batch *b,
			 const char *course, const char *ids, struct existing *e)
{
	size_t ns = gradeq_keys_count(b->subsections), cap = strlen(course) + strlen(ids) + 512;
	struct gradeq_copy_field f[9];
	struct gradeq_copy_out *cp = NULL;
	char *sql = malloc(cap);
	int rc;

	if (!sql)
		return GRADEQ_ERR_NOMEM;
	snprintf(sql, cap,
		 "COPY (SELECT g.* FROM unnest(%s::int4[]) AS u(id) CROSS JOIN LATERAL"
		 " (SELECT id, user_id, usage_key, course_version, earned_all, possible_all,"
		 " earned_graded, possible_graded, first_attempted"
		 " FROM grades_persistentsubsectiongrade"
		 " WHERE course_id = %s AND user_id = u.id OFFSET 0) g) TO STDOUT (FORMAT binary)",
		 ids, course);
	rc = gradeq_copy_out_begin(st, sql, "reading grades", &cp);
	while (!rc && (rc = gradeq_copy_out_next(cp, f, 9)) == 1) {
		long l;
		int i;

		rc = 0;
		if (f[0].len != 8 || f[1].len != 4 || f[2].len < 0)
			continue;
		l = learner_of(e, b->nlearners, gradeq_copy_i32(f[1].p));
		i = gradeq_keys_index(b->subsections, f[2].p, (size_t)f[2].len);
		if (l < 0 || i < 0)
			continue;
		e->nsub++;
		e->sub_id[(size_t)l * ns + (size_t)i] = gradeq_copy_i64(f[0].p);
		e->sub_same[(size_t)l * ns + (size_t)i] =
			sub_same(f, b, &b->subs[(size_t)l * ns + (size_t)i]);
		if (!e->sub_same[(size_t)l * ns + (size_t)i])
			e->sub_changed++;
	}
	rc = gradeq_copy_out_end(cp, rc);
	/* no subsection row: a first backfill; a course row that exists all
	 * the same (a concurrent writer's) makes the COPY fail on the unique
	 * key and the batch take the upsert path, so its read is saved */
	if (rc || (e->nsub == 0 && ns > 0))
		goto out;
	snprintf(sql, cap,
		 "COPY (SELECT g.* FROM unnest(%s::int4[]) AS u(id) CROSS JOIN LATERAL"
		 " (SELECT id, user_id, course_version, grading_policy_hash, percent_grade,"
		 " letter_grade, passed_timestamp IS NULL, course_edited_timestamp::text"
		 " FROM grades_persistentcoursegrade"
		 " WHERE course_id = %s AND user_id = u.id OFFSET 0) g) TO STDOUT (FORMAT binary)",
		 ids, course);
	rc = gradeq_copy_out_begin(st, sql, "reading grades", &cp);
	while (!rc && (rc = gradeq_copy_out_next(cp, f, 8)) == 1) {
		long l;

		rc = 0;
		if (f[0].len != 8 || f[1].len != 4)
			continue;
		l = learner_of(e, b->nlearners, gradeq_copy_i32(f[1].p));
		if (l < 0)
			continue;
		e->ncourse++;
		e->course_id[l] = gradeq_copy_i64(f[0].p);
		e->course_same[l] = course_same(f, b, &b->learners[l]);
		if (!e->course_same[l])
			e->course_changed++;
	}
	rc = gradeq_copy_out_end(cp, rc);
out:
	free(sql);
	return rc;
}

static void sub_fields(struct gradeq_copy *cp, const struct gradeq_subsection_row *r)
{
	char ts[64];

	gradeq_copy_double(cp, r->earned_all);
	gradeq_copy_double(cp, r->possible_all);
	gradeq_copy_double(cp, r->earned_graded);
	gradeq_copy_double(cp, r->possible_graded);
	if (r->attempted) {
		format_ts(ts, sizeof(ts), r->first_attempted_us);
		gradeq_copy_raw(cp, ts, strlen(ts));
	} else {
		gradeq_copy_null(cp);
	}
}

/* A first backfill: the rows COPYed straight into the output tables under
 * a savepoint. The course rows go first, in the statement that opens the
 * savepoint: a concurrent writer's uncommitted row of a learner makes it
 * wait there, then fail on the unique key (23505), which the caller turns
 * into a rollback to the savepoint and the upsert path. */
static int copy_fresh(struct gradeq_store *st, const struct gradeq_grades_batch *b, const char *now,
		      char sqlstate[6])
{
	size_t ns = gradeq_keys_count(b->subsections);
	struct gradeq_copy *cp = NULL;
	int rc;

	rc = gradeq_copy_begin(st,
			       "SAVEPOINT gq_fresh;COPY grades_persistentcoursegrade (user_id,"
			       " course_id, course_version, grading_policy_hash, percent_grade,"
			       " letter_grade, passed_timestamp, course_edited_timestamp, created,"
			       " modified) FROM STDIN",
			       "writing grades", &cp);
	for (size_t l = 0; !rc && l < b->nlearners; l++) {
		const struct gradeq_course_row *r = &b->learners[l];

		gradeq_copy_int(cp, r->user_id);
		gradeq_copy_text(cp, b->course_id);
		gradeq_copy_text(cp, b->version);
		gradeq_copy_text(cp, b->policy_hash);
		gradeq_copy_double(cp, r->percent);
		gradeq_copy_text(cp, r->letter ? r->letter : "");
		if (r->passed)
			gradeq_copy_raw(cp, now, strlen(now));
		else
			gradeq_copy_null(cp);
		if (b->edited)
			gradeq_copy_text(cp, b->edited);
		else
			gradeq_copy_null(cp);
		gradeq_copy_raw(cp, now, strlen(now));
		gradeq_copy_raw(cp, now, strlen(now));
		rc = gradeq_copy_row(cp);
	}
	rc = gradeq_copy_finish(cp, rc, sqlstate);
	if (rc)
		return rc;
	rc = gradeq_copy_begin(
		st,
		"COPY grades_persistentsubsectiongrade (user_id, course_id, usage_key,"
		" course_version, earned_all, possible_all, earned_graded,"
		" possible_graded, first_attempted, created, modified) FROM STDIN",
		"writing grades", &cp);
	for (size_t l = 0; !rc && l < b->nlearners; l++) {
		for (size_t i = 0; !rc && i < ns; i++) {
			gradeq_copy_int(cp, b->learners[l].user_id);
			gradeq_copy_text(cp, b->course_id);
			gradeq_copy_text(cp, gradeq_keys_key(b->subsections, i));
			gradeq_copy_text(cp, b->version);
			sub_fields(cp, &b->subs[l * ns + i]);
			gradeq_copy_raw(cp, now, strlen(now));
			gradeq_copy_raw(cp, now, strlen(now));
			rc = gradeq_copy_row(cp);
		}
	}
	/* the savepoint is left to the commit: a RELEASE would cost a round
	 * trip and change nothing */
	return gradeq_copy_finish(cp, rc, sqlstate);
}

/* The rows that exist and changed, by id, into the update tables; the
 * missing ones into the insert tables. */
static int copy_changes(struct gradeq_store *st, const struct gradeq_grades_batch *b,
			const struct existing *e)
{
	size_t ns = gradeq_keys_count(b->subsections);
	struct gradeq_copy *cp = NULL;
	int rc = 0;

	if (e->sub_changed) {
		rc = gradeq_copy_begin(st, "COPY gq_upd_sub FROM STDIN", "writing grades", &cp);
		for (size_t k = 0; !rc && k < b->nlearners * ns; k++) {
			if (!e->sub_id[k] || e->sub_same[k])
				continue;
			gradeq_copy_int(cp, e->sub_id[k]);
			sub_fields(cp, &b->subs[k]);
			rc = gradeq_copy_row(cp);
		}
		rc = gradeq_copy_end(cp, rc);
	}
	if (!rc && e->course_changed) {
		rc = gradeq_copy_begin(st, "COPY gq_upd_course FROM STDIN", "writing grades", &cp);
		for (size_t l = 0; !rc && l < b->nlearners; l++) {
			const struct gradeq_course_row *r = &b->learners[l];

			if (!e->course_id[l] || e->course_same[l])
				continue;
			gradeq_copy_int(cp, e->course_id[l]);
			gradeq_copy_double(cp, r->percent);
			gradeq_copy_text(cp, r->letter ? r->letter : "");
			gradeq_copy_bool(cp, r->passed);
			rc = gradeq_copy_row(cp);
		}
		rc = gradeq_copy_end(cp, rc);
	}
	if (!rc && e->nsub < b->nlearners * ns) {
		rc = gradeq_copy_begin(st, "COPY gq_tmp_sub FROM STDIN", "writing grades", &cp);
		for (size_t k = 0; !rc && k < b->nlearners * ns; k++) {
			if (e->sub_id[k])
				continue;
			gradeq_copy_int(cp, b->learners[k / ns].user_id);
			gradeq_copy_int(cp, (long long)(k % ns + 1));
			sub_fields(cp, &b->subs[k]);
			rc = gradeq_copy_row(cp);
		}
		rc = gradeq_copy_end(cp, rc);
	}
	if (!rc && e->ncourse < b->nlearners) {
		rc = gradeq_copy_begin(st, "COPY gq_tmp_course FROM STDIN", "writing grades", &cp);
		for (size_t l = 0; !rc && l < b->nlearners; l++) {
			const struct gradeq_course_row *r = &b->learners[l];

			if (e->course_id[l])
				continue;
			gradeq_copy_int(cp, r->user_id);
			gradeq_copy_double(cp, r->percent);
			gradeq_copy_text(cp, r->letter ? r->letter : "");
			gradeq_copy_bool(cp, r->passed);
			rc = gradeq_copy_row(cp);
		}
		rc = gradeq_copy_end(cp, rc);
	}
	return rc;
}

/* A regrade: the changed rows updated by id (the batch's range of the
 * unique index restricts the scan of the output table; the id joins), the
 * missing ones upserted (a concurrent writer that added one meanwhile is
 * updated by ON CONFLICT). Unchanged rows cost only their read. */
static const char sub_byid_sql[] =
	"UPDATE grades_persistentsubsectiongrade g SET course_version = %s,"
	" earned_all = t.earned_all, possible_all = t.possible_all,"
	" earned_graded = t.earned_graded, possible_graded = t.possible_graded,"
	" first_attempted = LEAST(g.first_attempted, t.first_attempted), modified = now()"
	" FROM gq_upd_sub t WHERE g.course_id = %s AND g.user_id = ANY(%s::int4[])"
	" AND g.id = t.id;";
static const char course_byid_sql[] =
	"UPDATE grades_persistentcoursegrade g SET course_version = %s,"
	" grading_policy_hash = %s, percent_grade = t.percent, letter_grade = t.letter,"
	" passed_timestamp = COALESCE(g.passed_timestamp, CASE WHEN t.passed THEN now() END),"
	" course_edited_timestamp = %s::timestamptz, modified = now()"
	" FROM gq_upd_course t WHERE g.course_id = %s AND g.user_id = ANY(%s::int4[])"
	" AND g.id = t.id;";

static int apply_changes(struct gradeq_store *st, const struct gradeq_grades_batch *b,
			 const struct existing *e, const char *sub_keys, const char *course,
			 const char *version, const char *hash, const char *edited, const char *ids)
{
	size_t ns = gradeq_keys_count(b->subsections);
	size_t cap = sizeof(sub_byid_sql) + sizeof(course_byid_sql) + sizeof(sub_insert_sql) +
		     sizeof(sub_upsert_sql) + sizeof(course_insert_sql) +
		     sizeof(course_upsert_sql) + strlen(sub_keys) + 4 * strlen(course) +
		     4 * strlen(version) + 2 * strlen(hash) + 2 * strlen(edited) + 2 * strlen(ids) +
		     64;
	char *sql = malloc(cap);
	size_t len = 0;
	int rc;

	if (!sql)
		return GRADEQ_ERR_NOMEM;
	sql[0] = '\0';
	if (e->sub_changed)
		len += (size_t)snprintf(sql + len, cap - len, sub_byid_sql, version, course, ids);
	if (e->course_changed)
		len += (size_t)snprintf(sql + len, cap - len, course_byid_sql, version, hash,
					edited, course, ids);
	if (e->nsub < b->nlearners * ns) {
		len += (size_t)snprintf(sql + len, cap - len, sub_insert_sql, course, version,
					sub_keys);
		len += (size_t)snprintf(sql + len, cap - len, "%s;", sub_upsert_sql);
	}
	if (e->ncourse < b->nlearners) {
		len += (size_t)snprintf(sql + len, cap - len, course_insert_sql, course, version,
					hash, edited);
		snprintf(sql + len, cap - len, "%s", course_upsert_sql);
	}
	rc = sql[0] ? gradeq_store_exec(st, sql) : 0;
	free(sql);
	return rc;
}

static const char work_tables_sql[] =
	"CREATE TEMP TABLE IF NOT EXISTS gq_tmp_sub (user_id int, sub_idx int,"
	" earned_all float8, possible_all float8, earned_graded float8,"
	" possible_graded float8, first_attempted timestamptz) ON COMMIT DELETE ROWS;"
	"CREATE TEMP TABLE IF NOT EXISTS gq_tmp_course (user_id int,"
	" percent float8, letter text, passed bool) ON COMMIT DELETE ROWS;"
	"CREATE TEMP TABLE IF NOT EXISTS gq_upd_sub (id int8,"
	" earned_all float8, possible_all float8, earned_graded float8,"
	" possible_graded float8, first_attempted timestamptz) ON COMMIT DELETE ROWS;"
	"CREATE TEMP TABLE IF NOT EXISTS gq_upd_course (id int8,"
	" percent float8, letter text, passed bool) ON COMMIT DELETE ROWS;";

/* In a group of jobs (store.h) the transaction is the group's: the job's
 * writes go under its savepoint, and the work tables still hold the rows
 * of the group's job before. */
static const char work_tables_empty_sql[] = "DELETE FROM gq_tmp_sub;DELETE FROM gq_tmp_course;"
					    "DELETE FROM gq_upd_sub;DELETE FROM gq_upd_course;";

/* Opens the job's transaction, or its savepoint in a group (with the work
 * tables, created once a session), and reads its now() for the rows
 * COPYed in. */
static int begin_write(struct gradeq_store *st, char *now, size_t len)
{
	char sql[sizeof(work_tables_sql) + sizeof(work_tables_empty_sql) + 128];
	PGresult *res;
	int rc = 0;

	if ((size_t)snprintf(sql, sizeof(sql), "%s;%s%sSELECT now()::text",
			     gradeq_store_begin_sql(st), work_tables_sql,
			     gradeq_store_in_group(st) ? work_tables_empty_sql : "") >= sizeof(sql))
		return gradeq_error(GRADEQ_ERR_INVALID, "writing grades: statement too long");
	res = PQexec(gradeq_store_conn(st), sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		rc = gradeq_store_result_error(st, res, "writing grades");
	else
		snprintf(now, len, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return rc;
}

/* The batch's existing rows are read first (one pass along the unique
 * indexes). None: a first backfill, COPYed straight into the output tables
 * (a writer that inserts a row meanwhile sends it down the upsert path).
 * Some: only the rows that change are written, updated by id, the missing
 * ones upserted; nothing is written when nothing changed. */
int gradeq_grades_write(struct gradeq_store *st, const struct gradeq_grades_batch *b)
{
	PGconn *conn = gradeq_store_conn(st);
	char *course = NULL, *version = NULL, *hash = NULL, *edited = NULL;
	const char *sub_keys = NULL;
	char *ids = NULL, state[6] = "";
	struct existing e;
	int rc;

	rc = existing_init(&e, b);
	if (rc) {
		existing_free(&e);
		return rc;
	}
	rc = begin_write(st, e.now, sizeof(e.now));
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
	rc = read_existing(st, b, course, ids, &e);
	if (rc)
		goto fail;
	if (e.nsub + e.ncourse == 0) {
		rc = copy_fresh(st, b, e.now, state);
		if (rc && strcmp(state, "23505") == 0) {
			log_debug("event=fresh_insert_conflict job=%s", b->job_id);
			rc = gradeq_store_exec(st, "ROLLBACK TO SAVEPOINT gq_fresh");
			if (!rc)
				rc = copy_rows(st, b);
			if (!rc)
				rc = upsert_grades(st, sub_keys, course, version, hash,
						   edited ? edited : "NULL", ids);
		}
	} else {
		rc = copy_changes(st, b, &e);
		if (!rc)
			rc = apply_changes(st, b, &e, sub_keys, course, version, hash,
					   edited ? edited : "NULL", ids);
	}
	if (!rc)
		goto out;
fail:
	gradeq_store_rollback(st);
out:
	existing_free(&e);
	PQfreemem(course);
	PQfreemem(version);
	PQfreemem(hash);
	PQfreemem(edited);
	PQfreemem(ids);
	return rc;
}
