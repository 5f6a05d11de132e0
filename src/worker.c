/* One job: course from cache, scores in one streamed query, grades written
 * by COPY into temporary tables and one round of upserts, committed together
 * with the job's completion. */
#include "gradeq/worker.h"

#include <arpa/inet.h>
#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gradeq/copy.h"
#include "gradeq/jobs.h"
#include "gradeq/log.h"

/* Score rows come in chunks of this many through a cursor: bounded memory
 * (a few hundred KiB a chunk) and a handful of round trips per batch. */
#define SCORE_CHUNK 4096

#define GRADEQ_STR_(x) #x
#define GRADEQ_STR(x) GRADEQ_STR_(x)

struct cached_course {
	char *course_id;
	char *version;
	char *edited; /* edited_at as text, NULL when none */
	struct gradeq_course *course;
	struct gradeq_grader *grader;
	char *problem_keys; /* text[] literal of problem keys, in index order */
	char *sub_keys_lit; /* escaped SQL literal of the subsection keys array */
	uint64_t used;
};

struct sub_row {
	double ea, pa, eg, pg;
	int64_t fa_us;
	bool att;
};

struct course_row {
	int32_t uid;
	double percent;
	const char *letter;
	bool passed;
};

struct gradeq_worker {
	struct cached_course *cache;
	int ncache, cap;
	uint64_t clock;
	char *consumer;
	char settled[16]; /* run state the job in hand settled, or "" */
	/* batch buffers, grown to the largest batch seen */
	struct gradeq_score *scores;
	size_t scores_cap;
	struct sub_row *subs;
	size_t subs_cap;
	struct course_row *courses;
	size_t courses_cap;
	double compute_ms; /* grading time of the current job, summed per learner */
};

static double ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

struct gradeq_worker *gradeq_worker_new(int cache_size, const char *consumer)
{
	struct gradeq_worker *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->cap = cache_size > 0 ? cache_size : 1;
	w->cache = calloc((size_t)w->cap, sizeof(*w->cache));
	w->consumer = strdup(consumer ? consumer : "");
	if (!w->cache || !w->consumer) {
		gradeq_worker_free(w);
		return NULL;
	}
	return w;
}

static void cached_release(struct cached_course *c)
{
	free(c->course_id);
	free(c->version);
	free(c->edited);
	gradeq_grader_free(c->grader);
	gradeq_course_free(c->course);
	free(c->problem_keys);
	PQfreemem(c->sub_keys_lit);
	memset(c, 0, sizeof(*c));
}

void gradeq_worker_free(struct gradeq_worker *w)
{
	if (!w)
		return;
	for (int i = 0; i < w->ncache; i++)
		cached_release(&w->cache[i]);
	free(w->cache);
	free(w->consumer);
	free(w->scores);
	free(w->subs);
	free(w->courses);
	free(w);
}

/* Builds "{"k1","k2"}" from n keys given by an accessor. */
static char *keys_literal(const struct gradeq_course *c, bool subsections,
			  const char *const *problem_keys, size_t n)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;

	buf = malloc(3);
	if (!buf)
		return NULL;
	cap = 3;
	buf[0] = '{';
	len = 1;
	for (size_t i = 0; i < n; i++) {
		const char *k = subsections ? gradeq_course_subsection_key(c, i) : problem_keys[i];
		size_t need = len + 2 * strlen(k) + 4;

		if (need > cap) {
			char *nb = realloc(buf, need * 2);

			if (!nb) {
				free(buf);
				return NULL;
			}
			buf = nb;
			cap = need * 2;
		}
		if (i)
			buf[len++] = ',';
		buf[len++] = '"';
		for (; *k; k++) {
			if (*k == '"' || *k == '\\')
				buf[len++] = '\\';
			buf[len++] = *k;
		}
		buf[len++] = '"';
	}
	if (len + 2 > cap) {
		char *nb = realloc(buf, len + 2);

		if (!nb) {
			free(buf);
			return NULL;
		}
		buf = nb;
	}
	buf[len++] = '}';
	buf[len] = '\0';
	return buf;
}

static struct cached_course *cache_find(struct gradeq_worker *w, const char *course_id,
					const char *version)
{
	for (int i = 0; i < w->ncache; i++)
		if (strcmp(w->cache[i].course_id, course_id) == 0 &&
		    strcmp(w->cache[i].version, version) == 0) {
			w->cache[i].used = ++w->clock;
			return &w->cache[i];
		}
	return NULL;
}

/* A free slot: a stale version of the same course, an empty one, or the
 * least recently used. */
static struct cached_course *cache_slot(struct gradeq_worker *w, const char *course_id)
{
	struct cached_course *victim = NULL;

	for (int i = 0; i < w->ncache; i++)
		if (strcmp(w->cache[i].course_id, course_id) == 0) {
			victim = &w->cache[i];
			break;
		}
	if (!victim && w->ncache < w->cap)
		victim = &w->cache[w->ncache++];
	for (int i = 0; !victim && i < w->ncache; i++)
		if (!victim || w->cache[i].used < victim->used)
			victim = &w->cache[i];
	if (!victim) {
		victim = &w->cache[0];
		for (int i = 1; i < w->ncache; i++)
			if (w->cache[i].used < victim->used)
				victim = &w->cache[i];
	}
	if (victim->course_id)
		cached_release(victim);
	return victim;
}

static int load_course(struct gradeq_worker *w, struct gradeq_store *st, const char *course_id,
		       struct cached_course **out)
{
	PGconn *conn = gradeq_store_conn(st);
	const char *params[1] = {course_id};
	PGresult *cres = NULL, *bres = NULL;
	struct gradeq_block_in *blocks = NULL;
	const char **pkeys = NULL;
	struct cached_course *c = NULL;
	char err[300] = "";
	int rc = 0, n;

	cres = PQexecParams(conn,
			    "SELECT version, edited_at::text, grading_policy::text FROM courses"
			    " WHERE course_id = $1",
			    1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(cres) != PGRES_TUPLES_OK) {
		rc = gradeq_store_result_error(st, cres, "loading course");
		goto out;
	}
	if (PQntuples(cres) == 0) {
		rc = gradeq_error(GRADEQ_ERR_NOT_FOUND, "unknown course '%s'", course_id);
		goto out;
	}
	bres = PQexecParams(conn,
			    "SELECT usage_key, parent_key, block_type, position, graded, format,"
			    " weight, max_score FROM course_blocks WHERE course_id = $1",
			    1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(bres) != PGRES_TUPLES_OK) {
		rc = gradeq_store_result_error(st, bres, "loading course blocks");
		goto out;
	}
	n = PQntuples(bres);
	blocks = calloc(n ? (size_t)n : 1, sizeof(*blocks));
	if (!blocks) {
		rc = GRADEQ_ERR_NOMEM;
		goto out;
	}
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
	c = cache_slot(w, course_id);
	{
		const char *policy = PQgetvalue(cres, 0, 2);

		rc = gradeq_course_new(blocks, (size_t)n, policy, strlen(policy), &c->course, err,
				       sizeof(err));
	}
	if (rc) {
		rc = gradeq_error(rc, "course '%s': %s", course_id,
				  err[0] ? err : gradeq_strerror(rc));
		goto fail_slot;
	}
	c->course_id = strdup(course_id);
	c->version = strdup(PQgetvalue(cres, 0, 0));
	c->edited = PQgetisnull(cres, 0, 1) ? NULL : strdup(PQgetvalue(cres, 0, 1));
	c->grader = gradeq_grader_new(c->course);
	{
		size_t np = gradeq_course_nproblems(c->course);
		size_t k = 0;
		char *subs = NULL;

		/* problem keys in index order: invert the lookup over all blocks */
		pkeys = calloc(np ? np : 1, sizeof(*pkeys));
		for (int i = 0; pkeys && i < n; i++) {
			int idx = gradeq_course_problem_index(c->course, blocks[i].usage_key);

			if (idx >= 0 && (size_t)idx < np && !pkeys[idx]) {
				pkeys[idx] = blocks[i].usage_key;
				k++;
			}
		}
		if (pkeys && k == np)
			c->problem_keys = keys_literal(c->course, false, pkeys, np);
		subs = keys_literal(c->course, true, NULL, gradeq_course_nsubsections(c->course));
		if (subs) {
			c->sub_keys_lit = PQescapeLiteral(conn, subs, strlen(subs));
			free(subs);
		}
	}
	if (!c->course_id || !c->version || !c->grader || !c->problem_keys || !c->sub_keys_lit) {
		rc = GRADEQ_ERR_NOMEM;
		goto fail_slot;
	}
	c->used = ++w->clock;
	*out = c;
	goto out;
fail_slot:
	cached_release(c);
	/* keep the cache dense: move the last entry into the hole */
	if (c != &w->cache[w->ncache - 1]) {
		*c = w->cache[w->ncache - 1];
		memset(&w->cache[w->ncache - 1], 0, sizeof(*c));
	}
	w->ncache--;
out:
	free(pkeys);
	free(blocks);
	PQclear(cres);
	PQclear(bres);
	return rc;
}

/* Marks the job in progress (an attempt), then reads the course's current
 * version. */
static int begin_job(struct gradeq_worker *w, struct gradeq_store *st, const struct gradeq_job *job,
		     struct gradeq_job_changed *began, char **version)
{
	const struct gradeq_job_change change = {
		.job_id = job->job_id,
		.from = GRADEQ_JOB_SET(GRADEQ_JOB_PENDING) | GRADEQ_JOB_SET(GRADEQ_JOB_RETRYING) |
			GRADEQ_JOB_SET(GRADEQ_JOB_IN_PROGRESS),
		.to = GRADEQ_JOB_IN_PROGRESS,
		.by = w->consumer,
		.run_id = job->run_id,
	};
	const char *params[1] = {job->course_id};
	PGresult *res = NULL;
	int rc;

	*version = NULL;
	rc = gradeq_job_transition(st, &change, began);
	if (rc)
		return rc;
	res = PQexecParams(gradeq_store_conn(st),
			   "SELECT version FROM courses WHERE course_id = $1", 1, NULL, params,
			   NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = gradeq_store_result_error(st, res, "starting job");
		goto out;
	}
	if (PQntuples(res) == 0) {
		rc = gradeq_error(GRADEQ_ERR_NOT_FOUND, "unknown course '%s'", job->course_id);
		goto out;
	}
	*version = strdup(PQgetvalue(res, 0, 0));
	if (!*version)
		rc = GRADEQ_ERR_NOMEM;
out:
	PQclear(res);
	return rc;
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
	void *n;

	if (need <= *cap)
		return 0;
	n = realloc(*p, need * size);
	if (!n)
		return GRADEQ_ERR_NOMEM;
	*p = n;
	*cap = need;
	return 0;
}

/* Grades the learner whose rows were gathered, appending its rows. */
static int flush_learner(struct gradeq_worker *w, struct cached_course *c, int32_t uid,
			 size_t nscores, size_t *nlearners)
{
	const struct gradeq_subsection_grade *subs = NULL;
	struct gradeq_course_grade cg;
	size_t ns = gradeq_course_nsubsections(c->course);
	struct sub_row *out = w->subs + *nlearners * ns;
	struct timespec t0;
	int rc;

	/* two vDSO clock reads per learner: tens of nanoseconds against the
	 * microseconds a learner takes to grade */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = gradeq_grader_grade(c->grader, w->scores, nscores, &subs, &cg);
	if (rc)
		return gradeq_error(rc, "grading learner %d failed", uid);
	for (size_t i = 0; i < ns; i++) {
		out[i].ea = subs[i].earned_all;
		out[i].pa = subs[i].possible_all;
		out[i].eg = subs[i].earned_graded;
		out[i].pg = subs[i].possible_graded;
		out[i].att = subs[i].attempted;
		out[i].fa_us = subs[i].first_attempted_us;
	}
	w->courses[*nlearners].uid = uid;
	w->courses[*nlearners].percent = cg.percent;
	w->courses[*nlearners].letter = cg.letter;
	w->courses[*nlearners].passed = cg.passed;
	(*nlearners)++;
	w->compute_ms += ms_since(&t0);
	return 0;
}

static int int_array_literal(const struct gradeq_job *job, char **out)
{
	size_t cap = job->nusers * 12 + 3, len = 0;
	char *buf = malloc(cap);

	if (!buf)
		return GRADEQ_ERR_NOMEM;
	buf[len++] = '{';
	for (size_t i = 0; i < job->nusers; i++)
		len += (size_t)snprintf(buf + len, cap - len, "%s%d", i ? "," : "",
					(int)job->user_ids[i]);
	buf[len++] = '}';
	buf[len] = '\0';
	*out = buf;
	return 0;
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

/* Reads the batch's enrollments and score rows (one query, ordered by
 * learner) through a cursor in binary chunks, and grades each learner as
 * its rows complete. Single-row mode cost a PGresult and three strtod per
 * row; a chunk costs one PGresult per SCORE_CHUNK rows and no parsing. */
static int fetch_and_grade(struct gradeq_worker *w, struct gradeq_store *st,
			   struct cached_course *c, const struct gradeq_job *job, size_t *nlearners,
			   struct gradeq_job_stats *stats)
{
	PGconn *conn = gradeq_store_conn(st);
	size_t ns = gradeq_course_nsubsections(c->course);
	size_t np = gradeq_course_nproblems(c->course);
	char *users = NULL;
	const char *params[3];
	PGresult *res = NULL;
	int32_t cur = 0;
	bool have = false, enrolled = false;
	size_t nscores = 0;
	int rc;

	*nlearners = 0;
	w->compute_ms = 0;
	if ((rc = grow((void **)&w->scores, &w->scores_cap, np ? np : 1, sizeof(*w->scores))) ||
	    (rc = grow((void **)&w->subs, &w->subs_cap, job->nusers * (ns ? ns : 1) + 1,
		       sizeof(*w->subs))) ||
	    (rc = grow((void **)&w->courses, &w->courses_cap, job->nusers + 1,
		       sizeof(*w->courses))) ||
	    (rc = int_array_literal(job, &users)))
		goto out;
	params[0] = job->course_id;
	params[1] = users;
	params[2] = c->problem_keys;
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
		for (int i = 0; i < n && !rc; i++) {
			int32_t uid = bin_i32(PQgetvalue(res, i, 0));
			int64_t idx = bin_i64(PQgetvalue(res, i, 1));

			if (!have || uid != cur) {
				if (have && enrolled && !rc)
					rc = flush_learner(w, c, cur, nscores, nlearners);
				cur = uid;
				have = true;
				enrolled = false;
				nscores = 0;
			}
			if (idx == 0) {
				enrolled = true;
			} else if (idx > 0 && (size_t)idx <= np && nscores < np) {
				struct gradeq_score *sc = &w->scores[nscores++];

				sc->problem = (int)(idx - 1);
				sc->has_grade = !PQgetisnull(res, i, 2);
				sc->grade = sc->has_grade ? bin_f64(PQgetvalue(res, i, 2)) : 0;
				sc->has_max_grade = !PQgetisnull(res, i, 3);
				sc->max_grade =
					sc->has_max_grade ? bin_f64(PQgetvalue(res, i, 3)) : 0;
				sc->created_us = bin_i64(PQgetvalue(res, i, 4));
				stats->score_rows++;
			}
		}
	}
	PQclear(res);
	res = NULL;
	{
		/* read only: nothing to flush; after an error this rolls back */
		int rc2 = gradeq_store_exec(st, "COMMIT");

		if (!rc)
			rc = rc2;
	}
	if (have && enrolled && !rc)
		rc = flush_learner(w, c, cur, nscores, nlearners);
out:
	PQclear(res);
	free(users);
	return rc;
}

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

static int copy_rows(struct gradeq_worker *w, struct gradeq_store *st, struct cached_course *c,
		     size_t nlearners)
{
	size_t ns = gradeq_course_nsubsections(c->course);
	struct gradeq_copy *cp = NULL;
	char ts[64];
	int rc;

	rc = gradeq_copy_begin(st, "COPY gq_tmp_sub FROM STDIN", "writing grades", &cp);
	for (size_t l = 0; !rc && l < nlearners; l++) {
		for (size_t i = 0; !rc && i < ns; i++) {
			const struct sub_row *r = &w->subs[l * ns + i];

			if (r->att)
				format_ts(ts, sizeof(ts), r->fa_us);
			gradeq_copy_int(cp, w->courses[l].uid);
			gradeq_copy_int(cp, (long long)(i + 1));
			gradeq_copy_double(cp, r->ea);
			gradeq_copy_double(cp, r->pa);
			gradeq_copy_double(cp, r->eg);
			gradeq_copy_double(cp, r->pg);
			if (r->att)
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
	for (size_t l = 0; !rc && l < nlearners; l++) {
		gradeq_copy_int(cp, w->courses[l].uid);
		gradeq_copy_double(cp, w->courses[l].percent);
		gradeq_copy_text(cp, w->courses[l].letter ? w->courses[l].letter : "");
		gradeq_copy_bool(cp, w->courses[l].passed);
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

/* Whether any learner of the job has a grade row of the course already:
 * 1 yes, 0 no, negative on error. Both unique indexes answer it. */
static int grades_exist(struct gradeq_store *st, const struct gradeq_job *job)
{
	char *ids = NULL;
	const char *params[2] = {job->course_id, NULL};
	PGresult *res;
	int rc;

	rc = int_array_literal(job, &ids);
	if (rc)
		return rc;
	params[1] = ids;
	res = PQexecParams(gradeq_store_conn(st),
			   "SELECT EXISTS (SELECT 1 FROM grades_persistentcoursegrade"
			   "  WHERE course_id = $1 AND user_id = ANY($2::int4[]))"
			   " OR EXISTS (SELECT 1 FROM grades_persistentsubsectiongrade"
			   "  WHERE course_id = $1 AND user_id = ANY($2::int4[]))",
			   2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		rc = gradeq_store_result_error(st, res, "writing grades");
	else
		rc = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	free(ids);
	return rc;
}

/* Runs the two grade statements, as upserts or (fresh) plain inserts. Sets
 * *conflict when a plain insert met a row added meanwhile. */
static int insert_grades(struct gradeq_store *st, struct cached_course *c, const char *course,
			 const char *version, const char *hash, const char *edited, bool fresh,
			 bool *conflict)
{
	size_t cap = sizeof(sub_insert_sql) + sizeof(sub_upsert_sql) + sizeof(course_insert_sql) +
		     sizeof(course_upsert_sql) + strlen(c->sub_keys_lit) + 3 * strlen(course) +
		     2 * strlen(version) + strlen(hash) + strlen(edited) + 64;
	char *sql = malloc(cap);
	size_t len = 0;
	PGresult *res;
	int rc = 0;

	*conflict = false;
	if (!sql)
		return GRADEQ_ERR_NOMEM;
	if (fresh)
		len += (size_t)snprintf(sql + len, cap - len, "SAVEPOINT gq_fresh;");
	len += (size_t)snprintf(sql + len, cap - len, sub_insert_sql, course, version,
				c->sub_keys_lit);
	len += (size_t)snprintf(sql + len, cap - len, "%s;", fresh ? "" : sub_upsert_sql);
	len += (size_t)snprintf(sql + len, cap - len, course_insert_sql, course, version, hash,
				edited);
	snprintf(sql + len, cap - len, "%s%s", fresh ? "" : course_upsert_sql,
		 fresh ? ";RELEASE SAVEPOINT gq_fresh" : "");
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
	return rc;
}

static int write_grades(struct gradeq_worker *w, struct gradeq_store *st, struct cached_course *c,
			const struct gradeq_job *job, size_t nlearners,
			const struct gradeq_job_stats *stats)
{
	PGconn *conn = gradeq_store_conn(st);
	char *course = NULL, *version = NULL, *hash = NULL, *edited = NULL;
	bool conflict = false;
	int rc, exist;

	rc = gradeq_store_exec(
		st, "BEGIN;"
		    "CREATE TEMP TABLE IF NOT EXISTS gq_tmp_sub (user_id int, sub_idx int,"
		    " earned_all float8, possible_all float8, earned_graded float8,"
		    " possible_graded float8, first_attempted timestamptz)"
		    " ON COMMIT DELETE ROWS;"
		    "CREATE TEMP TABLE IF NOT EXISTS gq_tmp_course (user_id int,"
		    " percent float8, letter text, passed bool) ON COMMIT DELETE ROWS");
	if (rc)
		return rc;
	rc = copy_rows(w, st, c, nlearners);
	if (rc)
		goto fail;
	course = PQescapeLiteral(conn, job->course_id, strlen(job->course_id));
	version = PQescapeLiteral(conn, c->version, strlen(c->version));
	hash = PQescapeLiteral(conn, gradeq_course_policy(c->course)->hash,
			       strlen(gradeq_course_policy(c->course)->hash));
	edited = c->edited ? PQescapeLiteral(conn, c->edited, strlen(c->edited)) : NULL;
	if (!course || !version || !hash || (c->edited && !edited)) {
		rc = gradeq_store_result_error(st, NULL, "escaping");
		goto fail;
	}
	exist = grades_exist(st, job);
	if (exist < 0) {
		rc = exist;
		goto fail;
	}
	rc = insert_grades(st, c, course, version, hash, edited ? edited : "NULL", !exist,
			   &conflict);
	if (!rc && conflict) {
		log_debug("event=fresh_insert_conflict job=%s", job->job_id);
		rc = insert_grades(st, c, course, version, hash, edited ? edited : "NULL", false,
				   &conflict);
	}
	if (rc)
		goto fail;
	{
		const struct gradeq_job_completion done = {
			.ms_load = stats->ms_load,
			.ms_fetch = stats->ms_fetch,
			.ms_compute = stats->ms_compute,
			.graded = stats->graded,
			.skipped = stats->skipped,
			.subsections = stats->subsections,
			.score_rows = stats->score_rows,
		};
		const struct gradeq_job_change change = {
			.job_id = job->job_id,
			.from = GRADEQ_JOB_SET(GRADEQ_JOB_IN_PROGRESS),
			.to = GRADEQ_JOB_COMPLETE,
			.by = w->consumer,
			.completion = &done,
		};
		struct gradeq_job_changed changed;

		rc = gradeq_job_transition(st, &change, &changed);
		if (!rc)
			snprintf(w->settled, sizeof(w->settled), "%s", changed.run_settled);
	}
	if (rc)
		goto fail;
	goto out;
fail : {
	PGresult *res = PQexec(conn, "ROLLBACK");

	PQclear(res);
}
out:
	PQfreemem(course);
	PQfreemem(version);
	PQfreemem(hash);
	PQfreemem(edited);
	return rc;
}

/* Write, commit and total times are known only after the commit: a second,
 * asynchronously committed update (no WAL flush to wait for). Best effort:
 * losing it loses statistics, never grades. */
static void record_timings(struct gradeq_store *st, const struct gradeq_job *job,
			   const struct gradeq_job_stats *stats)
{
	char ms[3][32], bytes[24];
	const char *params[5] = {job->job_id, ms[0], ms[1], ms[2], bytes};
	PGresult *res;

	snprintf(ms[0], sizeof(ms[0]), "%.3f", stats->ms_write);
	snprintf(ms[1], sizeof(ms[1]), "%.3f", stats->ms_commit);
	snprintf(ms[2], sizeof(ms[2]), "%.3f", stats->ms_total);
	snprintf(bytes, sizeof(bytes), "%ld", stats->body_bytes);
	res = PQexecParams(gradeq_store_conn(st),
			   "WITH s AS (SELECT set_config('synchronous_commit', 'off', true))"
			   " UPDATE gradeq_jobs SET ms_write = $2::float8, ms_commit = $3::float8,"
			   " ms_total = $4::float8, body_bytes = $5::int FROM s"
			   " WHERE job_id = $1::uuid",
			   5, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		log_warn("event=timings_not_recorded job=%s error=\"%s\"", job->job_id,
			 PQresultErrorMessage(res));
	PQclear(res);
}

static int mark_canceled(struct gradeq_store *st, const struct gradeq_job *job, const char *by)
{
	const struct gradeq_job_change change = {
		.job_id = job->job_id,
		.from = GRADEQ_JOB_SET(GRADEQ_JOB_PENDING) | GRADEQ_JOB_SET(GRADEQ_JOB_RETRYING) |
			GRADEQ_JOB_SET(GRADEQ_JOB_IN_PROGRESS),
		.to = GRADEQ_JOB_CANCELED,
		.by = by,
	};

	return gradeq_job_transition(st, &change, NULL);
}

int gradeq_worker_process(struct gradeq_worker *w, struct gradeq_store *st,
			  const struct gradeq_job *job, struct gradeq_job_stats *stats)
{
	struct cached_course *c = NULL;
	struct gradeq_job_changed began;
	char *version = NULL;
	struct timespec t0, t;
	size_t nlearners = 0;
	int rc;

	memset(stats, 0, sizeof(*stats));
	w->settled[0] = '\0';
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = begin_job(w, st, job, &began, &version);
	if (rc)
		goto out;
	if (began.known && (began.old == GRADEQ_JOB_COMPLETE || began.old == GRADEQ_JOB_CANCELED ||
			    began.old == GRADEQ_JOB_DISCARDED)) {
		stats->outcome = GRADEQ_ALREADY_DONE;
		goto out;
	}
	if (began.run_known && began.run_state == GRADEQ_RUN_CANCELED) {
		stats->outcome = GRADEQ_SKIPPED_CANCELED;
		rc = mark_canceled(st, job, w->consumer);
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &t);
	c = cache_find(w, job->course_id, version);
	if (!c) {
		rc = load_course(w, st, job->course_id, &c);
		if (rc)
			goto out;
		if (strcmp(c->version, version) != 0)
			log_info("event=course_changed course=%s version=%s", job->course_id,
				 c->version);
	}
	stats->ms_load = ms_since(&t);
	stats->subsections = (int)gradeq_course_nsubsections(c->course);
	clock_gettime(CLOCK_MONOTONIC, &t);
	rc = fetch_and_grade(w, st, c, job, &nlearners, stats);
	if (rc)
		goto out;
	/* grading runs inside the stream: fetch is the rest of its time */
	stats->ms_compute = w->compute_ms;
	stats->ms_fetch = ms_since(&t) - w->compute_ms;
	stats->body_bytes = (long)job->body_bytes;
	stats->graded = (int)nlearners;
	stats->skipped = (int)job->nusers - (int)nlearners;
	if (stats->skipped < 0)
		stats->skipped = 0;
	clock_gettime(CLOCK_MONOTONIC, &t);
	rc = write_grades(w, st, c, job, nlearners, stats);
	stats->ms_write = ms_since(&t);
	if (rc)
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &t);
	rc = gradeq_store_exec(st, "COMMIT");
	stats->ms_commit = ms_since(&t);
	if (rc)
		goto out;
	stats->outcome = GRADEQ_DONE;
	snprintf(stats->run_settled, sizeof(stats->run_settled), "%s", w->settled);
	stats->ms_total = ms_since(&t0);
	record_timings(st, job, stats);
out:
	stats->ms_total = ms_since(&t0);
	free(version);
	return rc;
}

int gradeq_worker_record_failure(struct gradeq_store *st, const char *job_id,
				 enum gradeq_job_state state, const char *error, char *run_settled)
{
	const struct gradeq_job_change change = {
		.job_id = job_id,
		.from = GRADEQ_JOB_SET(GRADEQ_JOB_PENDING) | GRADEQ_JOB_SET(GRADEQ_JOB_RETRYING) |
			GRADEQ_JOB_SET(GRADEQ_JOB_IN_PROGRESS),
		.to = state,
		.detail = error,
		.error = error,
	};
	struct gradeq_job_changed changed;
	int rc = gradeq_job_transition(st, &change, &changed);

	if (run_settled)
		snprintf(run_settled, 16, "%s", rc ? "" : changed.run_settled);
	return rc;
}
