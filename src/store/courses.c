/* Reads of the platform's input tables: courses, their blocks, and a
 * batch's enrollments and score rows. */
#include "gradeq/courses.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradeq/copy.h"
#include "store/internal.h"

struct gradeq_keys {
	char *array;  /* text[] literal */
	char *quoted; /* array as an SQL literal, or NULL until needed */
	size_t n;
	/* key -> index: open addressing over a power-of-two table of
	 * index + 1 (0 empty), the keys NUL-separated in text */
	char *text;
	size_t *off; /* n: where key i starts in text */
	uint32_t *slot;
	size_t mask;
};

/* FNV-1a over n bytes. */
static uint32_t key_hash(const char *s, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h;
}

static int keys_index_build(struct gradeq_keys *k, const char *const *keys)
{
	size_t size = 8, len = 0;

	for (size_t i = 0; i < k->n; i++)
		len += strlen(keys[i]) + 1;
	while (size < 2 * k->n)
		size *= 2;
	k->text = malloc(len ? len : 1);
	k->off = calloc(k->n ? k->n : 1, sizeof(*k->off));
	k->slot = calloc(size, sizeof(*k->slot));
	if (!k->text || !k->off || !k->slot)
		return GRADEQ_ERR_NOMEM;
	k->mask = size - 1;
	len = 0;
	for (size_t i = 0; i < k->n; i++) {
		size_t kl = strlen(keys[i]);
		size_t h = key_hash(keys[i], kl) & k->mask;

		memcpy(k->text + len, keys[i], kl + 1);
		k->off[i] = len;
		len += kl + 1;
		/* a repeated key keeps its first index, as a join would not */
		if (gradeq_keys_index(k, keys[i], kl) >= 0)
			continue;
		while (k->slot[h])
			h = (h + 1) & k->mask;
		k->slot[h] = (uint32_t)i + 1;
	}
	return 0;
}

int gradeq_keys_index(const struct gradeq_keys *k, const char *key, size_t len)
{
	size_t h = key_hash(key, len) & k->mask;

	for (uint32_t v; (v = k->slot[h]); h = (h + 1) & k->mask) {
		const char *s = k->text + k->off[v - 1];

		if (strncmp(s, key, len) == 0 && s[len] == '\0')
			return (int)(v - 1);
	}
	return -1;
}

/* Holds the results the strings of a gradeq_course_src point into. */
struct course_results {
	PGresult *course, *blocks;
};

char *gradeq_store_int_array(const int32_t *ids, size_t n)
{
	size_t cap = n * 12 + 3, len = 0;
	char *buf = malloc(cap);

	if (!buf)
		return NULL;
	buf[len++] = '{';
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, cap - len, "%s%d", i ? "," : "", (int)ids[i]);
	buf[len++] = '}';
	buf[len] = '\0';
	return buf;
}

/* Builds "{"k1","k2"}". */
struct gradeq_keys *gradeq_keys_new(const char *const *keys, size_t n)
{
	struct gradeq_keys *k = calloc(1, sizeof(*k));
	size_t cap = 3, len = 0;

	for (size_t i = 0; i < n; i++)
		cap += 2 * strlen(keys[i]) + 3;
	if (k)
		k->array = malloc(cap);
	if (!k || !k->array) {
		gradeq_keys_free(k);
		return NULL;
	}
	k->n = n;
	k->array[len++] = '{';
	for (size_t i = 0; i < n; i++) {
		if (i)
			k->array[len++] = ',';
		k->array[len++] = '"';
		for (const char *s = keys[i]; *s; s++) {
			if (*s == '"' || *s == '\\')
				k->array[len++] = '\\';
			k->array[len++] = *s;
		}
		k->array[len++] = '"';
	}
	k->array[len++] = '}';
	k->array[len] = '\0';
	if (keys_index_build(k, keys)) {
		gradeq_keys_free(k);
		return NULL;
	}
	return k;
}

void gradeq_keys_free(struct gradeq_keys *k)
{
	if (!k)
		return;
	free(k->array);
	free(k->text);
	free(k->off);
	free(k->slot);
	PQfreemem(k->quoted);
	free(k);
}

const char *gradeq_keys_key(const struct gradeq_keys *k, size_t i)
{
	return k->text + k->off[i];
}

const char *gradeq_keys_array(const struct gradeq_keys *k)
{
	return k->array;
}

size_t gradeq_keys_count(const struct gradeq_keys *k)
{
	return k->n;
}

const char *gradeq_keys_quoted(struct gradeq_store *st, struct gradeq_keys *k)
{
	if (!k->quoted)
		k->quoted = PQescapeLiteral(gradeq_store_conn(st), k->array, strlen(k->array));
	return k->quoted;
}

void gradeq_course_src_release(struct gradeq_course_src *s)
{
	struct course_results *r = s->priv;

	if (r) {
		PQclear(r->course);
		PQclear(r->blocks);
		free(r);
	}
	free(s->blocks);
	memset(s, 0, sizeof(*s));
}

static void read_blocks(const PGresult *bres, struct gradeq_block_in *blocks, int n)
{
	for (int i = 0; i < n; i++) {
		struct gradeq_block_in *b = &blocks[i];

		b->usage_key = PQgetvalue(bres, i, 0);
		b->parent_key = PQgetisnull(bres, i, 1) ? NULL : PQgetvalue(bres, i, 1);
		b->type = gradeq_block_type_parse(PQgetvalue(bres, i, 2));
		b->position = (int)strtol(PQgetvalue(bres, i, 3), NULL, 10);
		b->graded = PQgetvalue(bres, i, 4)[0] == 't';
		b->format = PQgetisnull(bres, i, 5) ? NULL : PQgetvalue(bres, i, 5);
		b->has_weight = !PQgetisnull(bres, i, 6);
		b->weight = b->has_weight ? strtod(PQgetvalue(bres, i, 6), NULL) : 0;
		b->has_max_score = !PQgetisnull(bres, i, 7);
		b->max_score = b->has_max_score ? strtod(PQgetvalue(bres, i, 7), NULL) : 0;
	}
}

int gradeq_courses_load(struct gradeq_store *st, const char *course_id,
			struct gradeq_course_src *out)
{
	PGconn *conn = gradeq_store_conn(st);
	const char *params[1] = {course_id};
	struct course_results *r = NULL;
	int n;

	memset(out, 0, sizeof(*out));
	r = calloc(1, sizeof(*r));
	if (!r)
		return GRADEQ_ERR_NOMEM;
	out->priv = r;
	r->course =
		PQexecParams(conn,
			     "SELECT version, edited_at::text, grading_policy::text FROM courses"
			     " WHERE course_id = $1",
			     1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r->course) != PGRES_TUPLES_OK)
		return gradeq_store_result_error(st, r->course, "loading course");
	if (PQntuples(r->course) == 0)
		return gradeq_error(GRADEQ_ERR_NOT_FOUND, "unknown course '%s'", course_id);
	r->blocks =
		PQexecParams(conn,
			     "SELECT usage_key, parent_key, block_type, position, graded, format,"
			     " weight, max_score FROM course_blocks WHERE course_id = $1",
			     1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r->blocks) != PGRES_TUPLES_OK)
		return gradeq_store_result_error(st, r->blocks, "loading course blocks");
	n = PQntuples(r->blocks);
	out->blocks = calloc(n ? (size_t)n : 1, sizeof(*out->blocks));
	if (!out->blocks)
		return GRADEQ_ERR_NOMEM;
	read_blocks(r->blocks, out->blocks, n);
	out->nblocks = (size_t)n;
	out->version = PQgetvalue(r->course, 0, 0);
	out->edited = PQgetisnull(r->course, 0, 1) ? NULL : PQgetvalue(r->course, 0, 1);
	out->policy = PQgetvalue(r->course, 0, 2);
	return 0;
}

int gradeq_courses_version(struct gradeq_store *st, const char *course_id, char **version)
{
	const char *params[1] = {course_id};
	PGresult *res = NULL;
	int rc = 0;

	*version = NULL;
	res = PQexecParams(gradeq_store_conn(st),
			   "SELECT version FROM courses WHERE course_id = $1", 1, NULL, params,
			   NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = gradeq_store_result_error(st, res, "starting job");
		goto out;
	}
	if (PQntuples(res) == 0) {
		rc = gradeq_error(GRADEQ_ERR_NOT_FOUND, "unknown course '%s'", course_id);
		goto out;
	}
	*version = strdup(PQgetvalue(res, 0, 0));
	if (!*version)
		rc = GRADEQ_ERR_NOMEM;
out:
	PQclear(res);
	return rc;
}

/* Microseconds from the Unix epoch to PostgreSQL's (2000-01-01). */
#define PG_EPOCH_US 946684800000000LL

static int cmp_i32(const void *a, const void *b)
{
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;

	return (x > y) - (x < y);
}

/* The batch's learners enrolled in the course, sorted, into enrolled
 * (nusers entries); *n how many. */
static int read_enrollments(struct gradeq_store *st, const char *course_id, const char *users,
			    int32_t *enrolled, size_t nusers, size_t *n)
{
	const char *params[2] = {course_id, users};
	PGresult *res;
	int rc = 0, rows;

	*n = 0;
	res = gradeq_store_exec_prepared_as(st, GRADEQ_PREP_ENROLLED,
					    "SELECT user_id FROM student_courseenrollment"
					    " WHERE course_id = $1 AND user_id = ANY($2::int4[])",
					    2, params, 1);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) != 1 || PQfsize(res, 0) != 4) {
		rc = gradeq_store_result_error(st, res, "reading enrollments");
		goto out;
	}
	rows = PQntuples(res);
	for (int i = 0; i < rows && (size_t)i < nusers; i++)
		enrolled[(*n)++] = gradeq_copy_i32(PQgetvalue(res, i, 0));
	qsort(enrolled, *n, sizeof(*enrolled), cmp_i32);
out:
	PQclear(res);
	return rc;
}

/* The batch's score rows, ordered by learner, read along the
 * (student_id, course_id, module_state_key) index: its order is the
 * learner order, so nothing is sorted, and each row's problem is found in
 * C by a hash lookup of its key in the course's problem keys (rows of other
 * blocks miss it and are skipped). Measured on platform-shaped data
 * (EXPLAIN ANALYZE, a batch of 1000 learners, the consumer's settings): on
 * the large course 470 ms against 904 ms for the join with the keys and its
 * sort, which spilled to disk; on the medium course 182 against 253 ms.
 * Rows without a max_grade (chapters, videos, problems never scored) count
 * for nothing in grading: they are dropped at the heap. */
static char *scores_sql(struct gradeq_store *st, const char *course_id, const char *users)
{
	PGconn *conn = gradeq_store_conn(st);
	char *course = PQescapeLiteral(conn, course_id, strlen(course_id));
	size_t cap;
	char *sql = NULL;

	if (course) {
		cap = strlen(course) + strlen(users) + 512;
		sql = malloc(cap);
	}
	if (sql)
		snprintf(sql, cap,
			 "COPY (SELECT m.student_id, m.module_state_key, m.grade, m.max_grade,"
			 " m.created FROM courseware_studentmodule m"
			 " WHERE m.student_id = ANY('%s'::int4[]) AND m.course_id = %s"
			 " AND m.max_grade IS NOT NULL ORDER BY m.student_id)"
			 " TO STDOUT (FORMAT binary)",
			 users, course);
	PQfreemem(course);
	return sql;
}

/* Delivers the enrollments of learners before 'upto' (all when upto is
 * INT32_MAX and last), the read's merge of the two ordered streams. */
static int deliver_enrollments(const int32_t *enrolled, size_t n, size_t *next, int64_t upto,
			       gradeq_score_fn fn, void *ctx)
{
	struct gradeq_score_row row;
	int rc = 0;

	memset(&row, 0, sizeof(row));
	row.enrollment = true;
	while (!rc && *next < n && enrolled[*next] <= upto) {
		row.user_id = enrolled[(*next)++];
		rc = fn(ctx, &row);
	}
	return rc;
}

/* One score row of the COPY to fn, when its learner is enrolled (the last
 * enrollment delivered). */
static int deliver_score(const struct gradeq_copy_field *f, const struct gradeq_keys *problems,
			 int32_t enrolled_last, gradeq_score_fn fn, void *ctx)
{
	struct gradeq_score_row row;
	struct gradeq_score *sc = &row.score;
	int idx;

	if (f[0].len != 4 || f[1].len < 0 || (f[2].len != 8 && f[2].len != -1) ||
	    (f[3].len != 8 && f[3].len != -1) || f[4].len != 8)
		return gradeq_error(GRADEQ_ERR_DB, "reading scores: unexpected field sizes");
	memset(&row, 0, sizeof(row));
	row.user_id = gradeq_copy_i32(f[0].p);
	if (row.user_id != enrolled_last)
		return 0;
	idx = gradeq_keys_index(problems, f[1].p, (size_t)f[1].len);
	if (idx < 0)
		return 0; /* not a problem of the course */
	sc->problem = idx;
	sc->has_grade = f[2].len == 8;
	sc->grade = sc->has_grade ? gradeq_copy_f64(f[2].p) : 0;
	sc->has_max_grade = f[3].len == 8;
	sc->max_grade = sc->has_max_grade ? gradeq_copy_f64(f[3].p) : 0;
	sc->created_us = gradeq_copy_i64(f[4].p) + PG_EPOCH_US;
	return fn(ctx, &row);
}

/* The enrollments (one small query) and the score rows (one binary COPY,
 * no cursor round trips, no result built) in one read-only snapshot,
 * merged by learner in C; memory is one row at a time plus the batch's
 * enrollments. */
int gradeq_scores_read(struct gradeq_store *st, const char *course_id, const int32_t *user_ids,
		       size_t nusers, const struct gradeq_keys *problems, gradeq_score_fn fn,
		       void *ctx)
{
	struct gradeq_copy_field f[5];
	struct gradeq_copy_out *cp = NULL;
	int32_t *enrolled = NULL, last = INT32_MIN;
	char *users = NULL, *sql = NULL;
	size_t nenrolled = 0, next = 0;
	int rc;

	users = gradeq_store_int_array(user_ids, nusers);
	enrolled = malloc((nusers ? nusers : 1) * sizeof(*enrolled));
	if (users)
		sql = scores_sql(st, course_id, users);
	if (!users || !enrolled || !sql) {
		free(users);
		free(enrolled);
		free(sql);
		return GRADEQ_ERR_NOMEM;
	}
	/* jit off: compiling the scan's expressions cost about 100 ms a batch
	 * of 1000 learners, more than it saved */
	rc = gradeq_store_exec(st, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;"
				   "SET LOCAL jit = off");
	if (rc)
		goto out;
	rc = read_enrollments(st, course_id, users, enrolled, nusers, &nenrolled);
	if (!rc)
		rc = gradeq_copy_out_begin(st, sql, "reading scores", &cp);
	while (!rc) {
		int32_t uid;

		rc = gradeq_copy_out_next(cp, f, 5);
		if (rc <= 0)
			break;
		rc = 0;
		if (f[0].len != 4) {
			rc = gradeq_error(GRADEQ_ERR_DB, "reading scores: unexpected field sizes");
			break;
		}
		uid = gradeq_copy_i32(f[0].p);
		if (uid < last) {
			rc = gradeq_error(GRADEQ_ERR_DB, "reading scores: rows out of order");
			break;
		}
		if (next < nenrolled && enrolled[next] <= uid) {
			rc = deliver_enrollments(enrolled, nenrolled, &next, uid, fn, ctx);
			if (rc)
				break;
		}
		last = uid;
		rc = deliver_score(f, problems, next ? enrolled[next - 1] : INT32_MIN, fn, ctx);
	}
	rc = gradeq_copy_out_end(cp, rc);
	if (!rc)
		rc = deliver_enrollments(enrolled, nenrolled, &next, INT64_MAX, fn, ctx);
	{
		/* read only: nothing to flush; after an error this rolls back */
		int rc2 = gradeq_store_exec(st, "COMMIT");

		if (!rc)
			rc = rc2;
	}
out:
	free(sql);
	free(enrolled);
	free(users);
	return rc;
}
