/* The store part of gradeq-admin seed: the generated courses, learners and
 * score rows (src/seed.c) streamed into the platform's input tables by COPY,
 * one transaction a course. Linked only into gradeq-admin. */
#include "gradeq/seed.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gradeq/log.h"

/* ---- COPY streaming ---- */

#define COPY_CHUNK 65536

struct copybuf {
	struct gradeq_store *st;
	char *data;
	size_t len, cap;
};

static int cb_flush(struct copybuf *b)
{
	if (b->len && PQputCopyData(gradeq_store_conn(b->st), b->data, (int)b->len) != 1)
		return gradeq_store_result_error(b->st, NULL, "COPY failed");
	b->len = 0;
	return 0;
}

/* Makes room for n more bytes, flushing a full chunk first. */
static int cb_need(struct copybuf *b, size_t n)
{
	int rc;

	if (b->len + n <= b->cap && b->len < COPY_CHUNK)
		return 0;
	rc = cb_flush(b);
	if (rc)
		return rc;
	if (n > b->cap) {
		char *nd = realloc(b->data, n);

		if (!nd)
			return GRADEQ_ERR_NOMEM;
		b->data = nd;
		b->cap = n;
	}
	return 0;
}

/* The caller made room with cb_need(). */
static void cb_raw(struct copybuf *b, const char *s, size_t n)
{
	memcpy(b->data + b->len, s, n);
	b->len += n;
}

static void cb_str(struct copybuf *b, const char *s)
{
	cb_raw(b, s, strlen(s));
}

static void cb_int(struct copybuf *b, long long v)
{
	b->len += (size_t)snprintf(b->data + b->len, 24, "%lld", v);
}

/* Integral values as integers, the rest with 17 significant digits: both
 * read back as the same double. */
static void cb_float(struct copybuf *b, bool has, double v)
{
	if (!has)
		cb_raw(b, "\\N", 2);
	else if (v == rint(v) && fabs(v) < 1e15)
		cb_int(b, (long long)v);
	else
		b->len += (size_t)snprintf(b->data + b->len, 32, "%.17g", v);
}

static void cb_ts(struct copybuf *b, int64_t us)
{
	b->len += gradeq_seed_format_ts(us, b->data + b->len, 40);
}

/* Escapes a value for COPY's text format. */
static char *copy_escape(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(2 * n + 1), *p = out;

	if (!out)
		return NULL;
	for (; *s; s++) {
		switch (*s) {
		case '\\':
			*p++ = '\\';
			*p++ = '\\';
			break;
		case '\t':
			*p++ = '\\';
			*p++ = 't';
			break;
		case '\n':
			*p++ = '\\';
			*p++ = 'n';
			break;
		case '\r':
			*p++ = '\\';
			*p++ = 'r';
			break;
		default: *p++ = *s;
		}
	}
	*p = '\0';
	return out;
}

struct copyctx {
	const struct gradeq_seed_course *c;
	struct copybuf buf;
	char *course_esc; /* course id, escaped */
	char *base_esc;   /* key base, escaped */
	size_t rowmax;    /* bound on one row's length */
	long rows;
};

static void put_key(struct copyctx *x, size_t i)
{
	cb_str(&x->buf, x->base_esc);
	cb_str(&x->buf, "+type@");
	cb_str(&x->buf, gradeq_seed_block_type_name(x->c->blocks[i].type));
	cb_str(&x->buf, "+block@");
	cb_raw(&x->buf, x->c->blocks[i].id, 32);
}

static int copy_begin(struct copyctx *x, const char *sql)
{
	PGresult *res = PQexec(gradeq_store_conn(x->buf.st), sql);
	int rc = 0;

	if (PQresultStatus(res) != PGRES_COPY_IN)
		rc = gradeq_store_result_error(x->buf.st, res, "cannot start COPY");
	PQclear(res);
	x->buf.len = 0;
	return rc;
}

/* Ends the COPY: sends the rest (or aborts it when failed is non-zero) and
 * reads the server's verdict. Returns failed, or the COPY's error. */
static int copy_end(struct copyctx *x, int failed)
{
	PGconn *conn = gradeq_store_conn(x->buf.st);
	PGresult *res;
	int rc = failed;

	if (!rc)
		rc = cb_flush(&x->buf);
	if (PQputCopyEnd(conn, rc ? "seed aborted" : NULL) != 1 && !rc)
		rc = gradeq_store_result_error(x->buf.st, NULL, "COPY end failed");
	while ((res = PQgetResult(conn)) != NULL) {
		if (!rc && PQresultStatus(res) != PGRES_COMMAND_OK)
			rc = gradeq_store_result_error(x->buf.st, res, "COPY failed");
		PQclear(res);
	}
	return rc;
}

static int copy_blocks(struct copyctx *x)
{
	const struct gradeq_seed_course *c = x->c;
	int rc;

	rc = copy_begin(x, "COPY course_blocks (course_id, usage_key, block_type, parent_key,"
			   " position, graded, format, weight, max_score) FROM STDIN");
	if (rc)
		return rc;
	for (size_t k = 0; k < c->nblocks && !rc; k++) {
		size_t i = c->order[k];
		const struct gradeq_seed_block *blk = &c->blocks[i];

		rc = cb_need(&x->buf, x->rowmax);
		if (rc)
			break;
		cb_str(&x->buf, x->course_esc);
		cb_raw(&x->buf, "\t", 1);
		put_key(x, i);
		cb_raw(&x->buf, "\t", 1);
		cb_str(&x->buf, gradeq_seed_block_type_name(blk->type));
		cb_raw(&x->buf, "\t", 1);
		if (blk->parent < 0)
			cb_raw(&x->buf, "\\N", 2);
		else
			put_key(x, (size_t)blk->parent);
		cb_raw(&x->buf, "\t", 1);
		cb_int(&x->buf, blk->position);
		cb_str(&x->buf, blk->graded ? "\tt\t" : "\tf\t");
		cb_str(&x->buf, blk->format ? blk->format : "\\N");
		cb_raw(&x->buf, "\t", 1);
		cb_float(&x->buf, blk->has_weight, blk->weight);
		cb_raw(&x->buf, "\t", 1);
		cb_float(&x->buf, blk->has_max_score, blk->max_score);
		cb_raw(&x->buf, "\n", 1);
		x->rows++;
	}
	return copy_end(x, rc);
}

static int copy_enrollments(struct copyctx *x)
{
	struct gradeq_seed_learner l;
	int rc;

	rc = copy_begin(x, "COPY student_courseenrollment (user_id, course_id, is_active, mode,"
			   " created) FROM STDIN");
	if (rc)
		return rc;
	for (int i = 0; i < x->c->learners && !rc; i++) {
		gradeq_seed_learner_init(x->c, i, &l);
		rc = cb_need(&x->buf, x->rowmax);
		if (rc)
			break;
		cb_int(&x->buf, l.user_id);
		cb_raw(&x->buf, "\t", 1);
		cb_str(&x->buf, x->course_esc);
		cb_str(&x->buf, l.is_active ? "\tt\t" : "\tf\t");
		cb_str(&x->buf, l.mode);
		cb_raw(&x->buf, "\t", 1);
		cb_ts(&x->buf, l.created_us);
		cb_raw(&x->buf, "\n", 1);
		x->rows++;
	}
	return copy_end(x, rc);
}

struct score_arg {
	struct copyctx *x;
	int user_id;
};

static int put_score(void *arg, const struct gradeq_seed_score *row)
{
	struct score_arg *a = arg;
	struct copyctx *x = a->x;
	int rc = cb_need(&x->buf, x->rowmax);

	if (rc)
		return rc;
	cb_int(&x->buf, a->user_id);
	cb_raw(&x->buf, "\t", 1);
	cb_str(&x->buf, x->course_esc);
	cb_raw(&x->buf, "\t", 1);
	put_key(x, row->block);
	cb_str(&x->buf, "\tproblem\t");
	cb_float(&x->buf, row->has_grade, row->grade);
	cb_raw(&x->buf, "\t", 1);
	cb_float(&x->buf, row->has_max_grade, row->max_grade);
	cb_raw(&x->buf, "\t", 1);
	cb_ts(&x->buf, row->created_us);
	cb_raw(&x->buf, "\t", 1);
	cb_ts(&x->buf, row->modified_us);
	cb_raw(&x->buf, "\n", 1);
	x->rows++;
	return 0;
}

static int copy_scores(struct copyctx *x)
{
	struct gradeq_seed_learner l;
	struct score_arg a = {x, 0};
	int rc;

	rc = copy_begin(x, "COPY courseware_studentmodule (student_id, course_id,"
			   " module_state_key, module_type, grade, max_grade, created, modified)"
			   " FROM STDIN");
	if (rc)
		return rc;
	/* in user id order: the rows then land at the right edge of the unique
	 * index (student_id first), which makes the COPY twice as fast as in
	 * enrollment order */
	for (int k = 0; k < x->c->learners && !rc; k++) {
		gradeq_seed_learner_init(x->c, gradeq_seed_learner_index(x->c, k), &l);
		a.user_id = l.user_id;
		rc = gradeq_seed_learner_scores(x->c, &l, put_score, &a);
	}
	return copy_end(x, rc);
}

/* ---- statements around the COPYs ---- */

static int exec_params(struct gradeq_store *st, const char *sql, int n, const char *const *params,
		       const char *what, PGresult **out)
{
	PGresult *res = PQexecParams(gradeq_store_conn(st), sql, n, NULL, params, NULL, NULL, 0);
	ExecStatusType s = PQresultStatus(res);
	int rc = 0;

	if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
		rc = gradeq_store_result_error(st, res, what);
	if (out && !rc)
		*out = res;
	else
		PQclear(res);
	return rc;
}

static int delete_course(struct gradeq_store *st, const char *course_id)
{
	static const char *const sql[] = {
		"DELETE FROM courseware_studentmodule WHERE course_id = $1",
		"DELETE FROM student_courseenrollment WHERE course_id = $1",
		"DELETE FROM course_blocks WHERE course_id = $1",
		"DELETE FROM courses WHERE course_id = $1",
	};
	int rc = 0;

	for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]) && !rc; i++)
		rc = exec_params(st, sql[i], 1, &course_id, "cannot delete course rows", NULL);
	return rc;
}

static int check_absent(struct gradeq_store *st, const char *course_id)
{
	PGresult *res = NULL;
	int rc;

	rc = exec_params(st,
			 "SELECT EXISTS (SELECT 1 FROM course_blocks WHERE course_id = $1)"
			 " OR EXISTS (SELECT 1 FROM student_courseenrollment WHERE course_id = $1)",
			 1, &course_id, "cannot look for course rows", &res);
	if (rc)
		return rc;
	if (strcmp(PQgetvalue(res, 0, 0), "t") == 0)
		rc = gradeq_error(
			GRADEQ_ERR_STATE,
			"course '%s' already has data (seed with replace to overwrite it)",
			course_id);
	PQclear(res);
	return rc;
}

static int upsert_course(struct gradeq_store *st, const struct gradeq_seed_course *c)
{
	char edited[40];
	const char *params[4];

	gradeq_seed_format_ts(c->edited_at_us, edited, sizeof(edited));
	params[0] = c->course_id;
	params[1] = c->version;
	params[2] = edited;
	params[3] = c->policy_json;
	return exec_params(st,
			   "INSERT INTO courses (course_id, version, edited_at, grading_policy)"
			   " VALUES ($1, $2, $3, $4)"
			   " ON CONFLICT (course_id) DO UPDATE SET version = EXCLUDED.version,"
			   " edited_at = EXCLUDED.edited_at,"
			   " grading_policy = EXCLUDED.grading_policy",
			   4, params, "cannot upsert course", NULL);
}

/* The course's rows, in the caller's transaction; counts go to stats. */
static int write_course(struct gradeq_store *st, const struct gradeq_seed_course *c, bool replace,
			struct gradeq_seed_stats *s)
{
	struct copyctx x;
	int rc;

	memset(&x, 0, sizeof(x));
	x.c = c;
	x.buf.st = st;
	x.course_esc = copy_escape(c->course_id);
	x.base_esc = copy_escape(c->key_base);
	x.rowmax = 2 * (strlen(c->course_id) + 2 * strlen(c->key_base)) + 512;
	x.buf.cap = COPY_CHUNK + x.rowmax;
	x.buf.data = malloc(x.buf.cap);
	if (!x.course_esc || !x.base_esc || !x.buf.data) {
		rc = GRADEQ_ERR_NOMEM;
		goto out;
	}
	rc = replace ? delete_course(st, c->course_id) : check_absent(st, c->course_id);
	if (!rc)
		rc = upsert_course(st, c);
	if (rc)
		goto out;
	rc = copy_blocks(&x);
	s->blocks = x.rows;
	x.rows = 0;
	if (!rc)
		rc = copy_enrollments(&x);
	s->enrollments = x.rows;
	x.rows = 0;
	if (!rc)
		rc = copy_scores(&x);
	s->score_rows = x.rows;
out:
	free(x.course_esc);
	free(x.base_esc);
	free(x.buf.data);
	return rc;
}

static int seed_one(struct gradeq_store *st, const struct gradeq_seed_course *c, bool replace,
		    struct gradeq_seed_stats *s)
{
	int rc;

	rc = gradeq_store_exec(st, "BEGIN");
	if (rc)
		return rc;
	rc = write_course(st, c, replace, s);
	if (!rc)
		rc = gradeq_store_exec(st, "COMMIT");
	if (rc && !gradeq_store_broken(st)) {
		char msg[600];

		snprintf(msg, sizeof(msg), "%s", gradeq_errmsg(rc));
		/* a failed rollback leaves the server to discard the transaction
		 * when the connection ends; the first error is the one to report */
		if (gradeq_store_exec(st, "ROLLBACK"))
			log_warn("event=seed_rollback_failed");
		rc = gradeq_error(rc, "%s", msg);
	}
	return rc;
}

/* The input tables are created only on request: say so rather than let the
 * first DELETE or COPY fail on a missing relation. */
static int check_tables(struct gradeq_store *st)
{
	PGresult *res = NULL;
	int rc;

	rc = exec_params(st,
			 "SELECT to_regclass('courses') IS NOT NULL"
			 " AND to_regclass('course_blocks') IS NOT NULL"
			 " AND to_regclass('student_courseenrollment') IS NOT NULL"
			 " AND to_regclass('courseware_studentmodule') IS NOT NULL",
			 0, NULL, "cannot look for the input tables", &res);
	if (rc)
		return rc;
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0)
		rc = gradeq_error(GRADEQ_ERR_STATE,
				  "the input tables do not exist (create them with"
				  " 'gradeq-admin migrate --with-input-tables')");
	PQclear(res);
	return rc;
}

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Ordinal of classes[i] within its class: 1 + earlier entries of the same. */
static int ordinal_of(const struct gradeq_seed_opts *o, size_t i)
{
	int n = 1;

	for (size_t j = 0; j < i; j++)
		n += strcmp(o->classes[j], o->classes[i]) == 0;
	return n;
}

int gradeq_seed_run(struct gradeq_store *st, const struct gradeq_seed_opts *o,
		    struct gradeq_seed_stats *stats)
{
	struct gradeq_seed_stats total;
	double t0 = now_seconds();
	int rc = 0;

	memset(&total, 0, sizeof(total));
	if (!o->classes || o->nclasses == 0)
		return gradeq_error(GRADEQ_ERR_INVALID, "no course class to seed");
	if (o->nclasses > 1000)
		return gradeq_error(GRADEQ_ERR_INVALID, "too many courses (%zu, at most 1000)",
				    o->nclasses);
	/* refuse a bad class before writing anything */
	for (size_t i = 0; i < o->nclasses; i++)
		if (!gradeq_seed_class_known(o->classes[i]))
			return gradeq_error(GRADEQ_ERR_INVALID,
					    "unknown course class '%s' (small, medium, large)",
					    o->classes[i] ? o->classes[i] : "");
	rc = check_tables(st);
	for (size_t i = 0; i < o->nclasses && !rc; i++) {
		struct gradeq_seed_course *c = NULL;
		struct gradeq_seed_stats s;
		double t1 = now_seconds();
		char q[256];

		memset(&s, 0, sizeof(s));
		rc = gradeq_seed_course_new(o->classes[i], (int)i, ordinal_of(o, i), o->learners,
					    o->seed, o->prefix, &c);
		if (!rc)
			rc = seed_one(st, c, o->replace, &s);
		if (!rc) {
			total.courses++;
			total.blocks += s.blocks;
			total.enrollments += s.enrollments;
			total.score_rows += s.score_rows;
			log_info("event=seeded course=%s version=%s blocks=%ld enrollments=%ld"
				 " score_rows=%ld ms=%.0f",
				 gradeq_log_quote(q, sizeof(q), c->course_id), c->version, s.blocks,
				 s.enrollments, s.score_rows, (now_seconds() - t1) * 1e3);
		}
		gradeq_seed_course_free(c);
	}
	/* fresh statistics, so that a benchmark run right after seeding gets the
	 * plans it would get on settled tables */
	if (!rc && total.courses)
		rc = gradeq_store_exec(st,
				       "ANALYZE courses, course_blocks, student_courseenrollment,"
				       " courseware_studentmodule");
	total.seconds = now_seconds() - t0;
	if (stats)
		*stats = total;
	return rc;
}
