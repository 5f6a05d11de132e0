/* Reads of the platform's input tables: courses, their blocks, and a
 * batch's enrollments and score rows. */
#include "gradeq/courses.h"

#include <arpa/inet.h>
#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"

/* Score rows come in chunks of this many through a cursor: bounded memory
 * (a few hundred KiB a chunk) and a handful of round trips per batch. */
#define SCORE_CHUNK 4096

#define GRADEQ_STR_(x) #x
#define GRADEQ_STR(x) GRADEQ_STR_(x)

struct gradeq_keys {
	char *array;  /* text[] literal */
	char *quoted; /* array as an SQL literal, or NULL until needed */
	size_t n;
};

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
	return k;
}

void gradeq_keys_free(struct gradeq_keys *k)
{
	if (!k)
		return;
	free(k->array);
	PQfreemem(k->quoted);
	free(k);
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

/* Binary (network order) values of a FETCH in binary format. */
static int32_t bin_i32(const char *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return (int32_t)ntohl(v);
}

static int64_t bin_i64(const char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return (int64_t)be64toh(v);
}

static double bin_f64(const char *p)
{
	uint64_t v;
	double d;

	memcpy(&v, p, sizeof(v));
	v = be64toh(v);
	memcpy(&d, &v, sizeof(d));
	return d;
}

/* One chunk of rows to fn. */
static int deliver(const PGresult *res, int n, gradeq_score_fn fn, void *ctx)
{
	struct gradeq_score_row row;
	int rc = 0;

	for (int i = 0; i < n && !rc; i++) {
		int64_t idx = bin_i64(PQgetvalue(res, i, 1));

		memset(&row, 0, sizeof(row));
		row.user_id = bin_i32(PQgetvalue(res, i, 0));
		row.enrollment = idx == 0;
		if (!row.enrollment) {
			struct gradeq_score *sc = &row.score;

			sc->problem = idx > 0 && idx <= INT32_MAX ? (int)(idx - 1) : -1;
			sc->has_grade = !PQgetisnull(res, i, 2);
			sc->grade = sc->has_grade ? bin_f64(PQgetvalue(res, i, 2)) : 0;
			sc->has_max_grade = !PQgetisnull(res, i, 3);
			sc->max_grade = sc->has_max_grade ? bin_f64(PQgetvalue(res, i, 3)) : 0;
			sc->created_us = bin_i64(PQgetvalue(res, i, 4));
		}
		rc = fn(ctx, &row);
	}
	return rc;
}

/* The enrollments and score rows in one query, ordered by learner, through
 * a cursor in binary chunks. Single-row mode cost a PGresult and three
 * strtod per row; a chunk costs one PGresult per SCORE_CHUNK rows and no
 * parsing. */
int gradeq_scores_read(struct gradeq_store *st, const char *course_id, const int32_t *user_ids,
		       size_t nusers, const struct gradeq_keys *problems, gradeq_score_fn fn,
		       void *ctx)
{
	PGconn *conn = gradeq_store_conn(st);
	char *users = NULL;
	const char *params[3];
	PGresult *res = NULL;
	int rc;

	users = gradeq_store_int_array(user_ids, nusers);
	if (!users)
		return GRADEQ_ERR_NOMEM;
	params[0] = course_id;
	params[1] = users;
	params[2] = problems->array;
	rc = gradeq_store_exec(st, "BEGIN READ ONLY");
	if (rc)
		goto out;
	res = PQexecParams(conn,
			   "DECLARE gq_scores NO SCROLL CURSOR FOR"
			   " SELECT e.user_id, 0::int8, NULL::float8, NULL::float8, NULL::int8"
			   " FROM student_courseenrollment e"
			   " WHERE e.course_id = $1 AND e.user_id = ANY($2::int4[])"
			   " UNION ALL"
			   " SELECT m.student_id, k.idx, m.grade, m.max_grade,"
			   "  (extract(epoch FROM m.created) * 1000000)::int8"
			   " FROM courseware_studentmodule m"
			   " JOIN unnest($3::text[]) WITH ORDINALITY AS k(key, idx)"
			   "  ON k.key = m.module_state_key"
			   " WHERE m.course_id = $1 AND m.student_id = ANY($2::int4[])"
			   " ORDER BY 1, 2",
			   3, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		rc = gradeq_store_result_error(st, res, "reading scores");
	for (int n = SCORE_CHUNK; !rc && n == SCORE_CHUNK;) {
		PQclear(res);
		res = PQexecParams(conn, "FETCH " GRADEQ_STR(SCORE_CHUNK) " FROM gq_scores", 0,
				   NULL, NULL, NULL, NULL, 1);
		if (PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) != 5 ||
		    PQfsize(res, 0) != 4 || PQfsize(res, 1) != 8 || PQfsize(res, 4) != 8) {
			rc = gradeq_store_result_error(st, res, "reading scores");
			break;
		}
		n = PQntuples(res);
		rc = deliver(res, n, fn, ctx);
	}
	PQclear(res);
	res = NULL;
	{
		/* read only: nothing to flush; after an error this rolls back */
		int rc2 = gradeq_store_exec(st, "COMMIT");

		if (!rc)
			rc = rc2;
	}
out:
	PQclear(res);
	free(users);
	return rc;
}
