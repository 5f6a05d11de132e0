/* The store part of gradeq-admin seed: the generated courses, learners and
 * module rows (src/seed.c) streamed into the platform's input tables by
 * COPY, in one transaction. Linked only into gradeq-admin. */
#include "gradeq/seed.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gradeq/copy.h"
#include "gradeq/log.h"
#include "store/internal.h"

/* ---- COPY streaming, through the one COPY writer (gradeq/copy.h) ---- */

struct copyctx {
	struct gradeq_store *st;
	const struct gradeq_seed_course *c;
	struct gradeq_copy *copy;
	char *course_esc; /* course id, escaped */
	char *base_esc;   /* key base, escaped */
	char *key;        /* room for one usage key */
	long rows;
	long problem_rows;
};

/* Integral values as integers (cheaper to format), the rest with 17
 * significant digits: both read back as the same double. */
static int put_float(struct copyctx *x, bool has, double v)
{
	if (!has)
		return gradeq_copy_null(x->copy);
	if (v == rint(v) && fabs(v) < 1e15)
		return gradeq_copy_int(x->copy, (long long)v);
	return gradeq_copy_double(x->copy, v);
}

static int put_ts(struct copyctx *x, int64_t us)
{
	char buf[40];
	size_t n = gradeq_seed_format_ts(us, buf, sizeof(buf));

	return gradeq_copy_raw(x->copy, buf, n);
}

/* The usage key of block i: the escaped key base, its type and id. */
static int put_key(struct copyctx *x, size_t i)
{
	const char *type = x->c->blocks[i].type_name;
	size_t nb = strlen(x->base_esc), nt = strlen(type), n = 0;

	memcpy(x->key, x->base_esc, nb);
	n += nb;
	memcpy(x->key + n, "+type@", 6);
	n += 6;
	memcpy(x->key + n, type, nt);
	n += nt;
	memcpy(x->key + n, "+block@", 7);
	n += 7;
	memcpy(x->key + n, x->c->blocks[i].id, 32);
	return gradeq_copy_raw(x->copy, x->key, n + 32);
}

static int put_course(struct copyctx *x)
{
	return gradeq_copy_raw(x->copy, x->course_esc, strlen(x->course_esc));
}

static int copy_blocks(struct copyctx *x)
{
	const struct gradeq_seed_course *c = x->c;
	int rc;

	rc = gradeq_copy_begin(x->st,
			       "COPY course_blocks (course_id, usage_key, block_type, parent_key,"
			       " position, graded, format, weight, max_score) FROM STDIN",
			       "seeding course_blocks", &x->copy);
	for (size_t k = 0; k < c->nblocks && !rc; k++) {
		const struct gradeq_seed_block *blk = &c->blocks[c->order[k]];

		rc = put_course(x);
		if (!rc)
			rc = put_key(x, c->order[k]);
		if (!rc)
			rc = gradeq_copy_text(x->copy, blk->type_name);
		if (!rc)
			rc = blk->parent < 0 ? gradeq_copy_null(x->copy)
					     : put_key(x, (size_t)blk->parent);
		if (!rc)
			rc = gradeq_copy_int(x->copy, blk->position);
		if (!rc)
			rc = gradeq_copy_bool(x->copy, blk->graded);
		if (!rc)
			rc = blk->format ? gradeq_copy_text(x->copy, blk->format)
					 : gradeq_copy_null(x->copy);
		if (!rc)
			rc = put_float(x, blk->has_weight, blk->weight);
		if (!rc)
			rc = put_float(x, blk->has_max_score, blk->max_score);
		if (!rc)
			rc = gradeq_copy_row(x->copy);
		x->rows += !rc;
	}
	return gradeq_copy_end(x->copy, rc);
}

static int copy_enrollments(struct copyctx *x)
{
	struct gradeq_seed_learner l;
	int rc;

	rc = gradeq_copy_begin(x->st,
			       "COPY student_courseenrollment (user_id, course_id, is_active, mode,"
			       " created) FROM STDIN",
			       "seeding student_courseenrollment", &x->copy);
	for (int i = 0; i < x->c->learners && !rc; i++) {
		gradeq_seed_learner_init(x->c, i, &l);
		rc = gradeq_copy_int(x->copy, l.user_id);
		if (!rc)
			rc = put_course(x);
		if (!rc)
			rc = gradeq_copy_bool(x->copy, l.is_active);
		if (!rc)
			rc = gradeq_copy_text(x->copy, l.mode);
		if (!rc)
			rc = put_ts(x, l.created_us);
		if (!rc)
			rc = gradeq_copy_row(x->copy);
		x->rows += !rc;
	}
	return gradeq_copy_end(x->copy, rc);
}

struct score_arg {
	struct copyctx *x;
	int user_id;
};

static int put_score(void *arg, const struct gradeq_seed_score *row)
{
	struct score_arg *a = arg;
	struct copyctx *x = a->x;
	const char *type = x->c->blocks[row->block].type_name;
	int rc = gradeq_copy_int(x->copy, a->user_id);

	if (!rc)
		rc = put_course(x);
	if (!rc)
		rc = put_key(x, row->block);
	if (!rc)
		rc = gradeq_copy_raw(x->copy, type, strlen(type));
	if (!rc)
		rc = put_float(x, row->has_grade, row->grade);
	if (!rc)
		rc = put_float(x, row->has_max_grade, row->max_grade);
	if (!rc)
		rc = put_ts(x, row->created_us);
	if (!rc)
		rc = put_ts(x, row->modified_us);
	if (!rc)
		rc = gradeq_copy_row(x->copy);
	x->rows += !rc;
	x->problem_rows += !rc && x->c->blocks[row->block].type == GRADEQ_BLOCK_PROBLEM;
	return rc;
}

/* The module rows of every course in one COPY, learner by learner in user id
 * order across the courses: a learner's rows of the courses they take lie
 * side by side, as on the platform. User id order also puts the rows at the
 * right edge of the unique index (student_id first), which makes the COPY
 * twice as fast as enrollment order. xs[i] holds course i's escaped names;
 * the rows are counted in xs[0]. */
static int copy_scores(struct copyctx *xs, size_t n)
{
	struct gradeq_seed_learner l;
	struct score_arg a = {NULL, 0};
	struct gradeq_copy *copy = NULL;
	long lo = INT32_MAX, hi = 0, rows = 0, problem_rows = 0;
	int rc;

	rc = gradeq_copy_begin(
		xs[0].st,
		"COPY courseware_studentmodule (student_id, course_id,"
		" module_state_key, module_type, grade, max_grade, created, modified)"
		" FROM STDIN",
		"seeding courseware_studentmodule", &copy);
	for (size_t i = 0; i < n; i++) {
		const struct gradeq_seed_course *c = xs[i].c;

		xs[i].copy = copy;
		xs[i].rows = xs[i].problem_rows = 0;
		if (c->learners > 0) {
			lo = c->user_base < lo ? c->user_base : lo;
			hi = c->user_base + c->learners > hi ? c->user_base + c->learners : hi;
		}
	}
	for (long u = lo; u < hi && !rc; u++) {
		for (size_t i = 0; i < n && !rc; i++) {
			const struct gradeq_seed_course *c = xs[i].c;

			if (u < c->user_base || u >= (long)c->user_base + c->learners)
				continue;
			gradeq_seed_learner_init(
				c, gradeq_seed_learner_index(c, (int)(u - c->user_base)), &l);
			a.x = &xs[i];
			a.user_id = l.user_id;
			rc = gradeq_seed_learner_scores(c, &l, put_score, &a);
		}
	}
	rc = gradeq_copy_end(copy, rc);
	for (size_t i = 0; i < n; i++) {
		rows += xs[i].rows;
		problem_rows += xs[i].problem_rows;
		xs[i].copy = NULL;
	}
	xs[0].rows = rows;
	xs[0].problem_rows = problem_rows;
	return rc;
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
			"course '%s' already has data: give --replace to delete and seed it again",
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

/* s escaped for COPY's text format, malloc'd. */
static char *escape(const char *s)
{
	size_t cap = 2 * strlen(s) + 1;
	char *out = malloc(cap);

	if (out)
		gradeq_copy_escape(out, cap, s);
	return out;
}

static void ctx_free(struct copyctx *x)
{
	free(x->course_esc);
	free(x->base_esc);
	free(x->key);
	gradeq_seed_course_free((struct gradeq_seed_course *)x->c);
	memset(x, 0, sizeof(*x));
}

static double now_seconds(void);

static int ctx_init(struct gradeq_store *st, struct gradeq_seed_course *c, struct copyctx *x)
{
	memset(x, 0, sizeof(*x));
	x->c = c;
	x->st = st;
	x->course_esc = escape(c->course_id);
	x->base_esc = escape(c->key_base);
	x->key = malloc(2 * strlen(c->key_base) + 128);
	return x->course_esc && x->base_esc && x->key ? 0 : GRADEQ_ERR_NOMEM;
}

/* A course's courses row, blocks and enrollments, in the caller's
 * transaction; counts go to s. */
static int write_course(struct copyctx *x, bool replace, struct gradeq_seed_stats *s)
{
	const struct gradeq_seed_course *c = x->c;
	int rc;

	rc = replace ? delete_course(x->st, c->course_id) : check_absent(x->st, c->course_id);
	if (!rc)
		rc = upsert_course(x->st, c);
	if (rc)
		return rc;
	x->rows = 0;
	rc = copy_blocks(x);
	s->blocks += x->rows;
	x->rows = 0;
	if (!rc)
		rc = copy_enrollments(x);
	s->enrollments += x->rows;
	x->rows = 0;
	return rc;
}

/* A big load is much faster without the secondary indexes of
 * courseware_studentmodule (the platform's (course_id, modified): the rows
 * come in learner order, their modified times at random, so every row
 * lands somewhere else in that index): when the rows to come are at least
 * as many as the table holds, those indexes are dropped before the COPY and
 * built again after it, inside the transaction, so that nobody sees the
 * table without them. The unique index stays (it checks the rows, and they
 * come in its order). defs receives the CREATE INDEX statements to run
 * after the COPY. */
static int drop_secondary_indexes(struct gradeq_store *st, const struct copyctx *xs, size_t n,
				  PGresult **defs)
{
	double rows = 0, have;
	PGresult *res = NULL;
	int rc;

	*defs = NULL;
	for (size_t i = 0; i < n; i++) /* about one row per problem */
		rows += (double)xs[i].c->learners * (double)xs[i].c->nproblems;
	if (rows < 100000)
		return 0;
	rc = exec_params(st,
			 "SELECT reltuples FROM pg_class"
			 " WHERE oid = 'courseware_studentmodule'::regclass",
			 0, NULL, "cannot count the module rows", &res);
	if (rc)
		return rc;
	have = strtod(PQgetvalue(res, 0, 0), NULL);
	PQclear(res);
	if (rows < have)
		return 0;
	rc = exec_params(st,
			 "SELECT pg_get_indexdef(i.indexrelid), i.indexrelid::regclass::text"
			 " FROM pg_index i WHERE i.indrelid = 'courseware_studentmodule'::regclass"
			 " AND NOT i.indisunique AND NOT i.indisprimary",
			 0, NULL, "cannot list the indexes of courseware_studentmodule", &res);
	for (int i = 0; !rc && i < PQntuples(res); i++) {
		const char *name = PQgetvalue(res, i, 1);
		size_t len = strlen(name) + 16;
		char *sql = malloc(len);

		if (!sql) {
			rc = GRADEQ_ERR_NOMEM;
			break;
		}
		snprintf(sql, len, "DROP INDEX %s", name); /* regclass text is quoted */
		rc = gradeq_store_exec(st, sql);
		free(sql);
	}
	if (rc)
		PQclear(res);
	else
		*defs = res;
	return rc;
}

static int create_indexes(struct gradeq_store *st, PGresult *defs)
{
	int rc = 0;

	for (int i = 0; defs && !rc && i < PQntuples(defs); i++)
		rc = gradeq_store_exec(st, PQgetvalue(defs, i, 0));
	return rc;
}

/* Every course in one transaction: an error leaves the tables as they
 * were. */
static int seed_all(struct gradeq_store *st, struct copyctx *xs, size_t n, bool replace,
		    struct gradeq_seed_stats *s)
{
	PGresult *defs = NULL;
	double t1;
	int rc;

	rc = gradeq_store_exec(st, "BEGIN");
	if (rc)
		return rc;
	for (size_t i = 0; i < n && !rc; i++)
		rc = write_course(&xs[i], replace, s);
	t1 = now_seconds();
	if (!rc)
		rc = drop_secondary_indexes(st, xs, n, &defs);
	if (!rc)
		rc = copy_scores(xs, n);
	if (!rc)
		rc = create_indexes(st, defs);
	PQclear(defs);
	s->copy_seconds = now_seconds() - t1;
	s->score_rows = xs[0].rows;
	s->problem_rows = xs[0].problem_rows;
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
	if (rc)
		s->blocks = s->enrollments = s->score_rows = s->problem_rows = 0;
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
	struct copyctx *xs = NULL;
	double t0 = now_seconds();
	size_t built = 0;
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
	xs = calloc(o->nclasses, sizeof(*xs));
	if (!xs)
		return GRADEQ_ERR_NOMEM;
	/* the course structures (small: blocks only) are all in memory, the
	 * learners never more than one at a time */
	for (size_t i = 0; i < o->nclasses && !rc; i++) {
		struct gradeq_seed_course *c = NULL;

		rc = gradeq_seed_course_new(o->classes[i], (int)i, ordinal_of(o, i), o->learners,
					    o->seed, o->prefix, &c);
		if (!rc) {
			rc = ctx_init(st, c, &xs[i]);
			built++;
		}
	}
	/* the one COPY of every course's module rows (and a replace's
	 * DELETEs) run for minutes on big seeds: the configured
	 * statement_timeout is for the grading's statements, not for this
	 * connection of gradeq-admin seed */
	if (!rc)
		rc = gradeq_store_exec(st, "SET statement_timeout = 0");
	if (!rc)
		rc = check_tables(st);
	/* without replace, every course is checked before any is written: a
	 * refusal leaves the data as it was */
	for (size_t i = 0; i < o->nclasses && !rc && !o->replace; i++)
		rc = check_absent(st, xs[i].c->course_id);
	if (!rc)
		rc = seed_all(st, xs, o->nclasses, o->replace, &total);
	if (!rc) {
		total.courses = (int)o->nclasses;
		for (size_t i = 0; i < o->nclasses; i++)
			log_info("event=seeded course=%s version=%s learners=%d",
				 xs[i].c->course_id, xs[i].c->version, xs[i].c->learners);
		log_info("event=seeded_rows courses=%d blocks=%ld enrollments=%ld score_rows=%ld"
			 " problem_rows=%ld copy_ms=%.0f",
			 total.courses, total.blocks, total.enrollments, total.score_rows,
			 total.problem_rows, total.copy_seconds * 1e3);
	}
	/* fresh statistics, so that a benchmark run right after seeding gets the
	 * plans it would get on settled tables */
	if (!rc && total.courses)
		rc = gradeq_store_exec(st,
				       "ANALYZE courses, course_blocks, student_courseenrollment,"
				       " courseware_studentmodule");
	for (size_t i = 0; i < built; i++)
		ctx_free(&xs[i]);
	free(xs);
	total.seconds = now_seconds() - t0;
	if (stats)
		*stats = total;
	return rc;
}
