/* One job: course from cache, scores in one streamed query, grades written
 * in bulk into temporary tables and one round of upserts, committed together
 * with the job's completion. */
#include "gradeq/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gradeq/courses.h"
#include "gradeq/grades.h"
#include "gradeq/group.h"
#include "gradeq/jobs.h"
#include "gradeq/limits.h"
#include "gradeq/log.h"
#include "gradeq/reader.h"

/* The states a consumer may take, cancel or fail a job from. */
#define JOB_UNFINISHED                                                                             \
	(GRADEQ_JOB_SET(GRADEQ_JOB_PENDING) | GRADEQ_JOB_SET(GRADEQ_JOB_RETRYING) |                \
	 GRADEQ_JOB_SET(GRADEQ_JOB_IN_PROGRESS))

struct cached_course {
	char *course_id;
	char *version;
	char *edited; /* edited_at as text, NULL when none */
	struct gradeq_course *course;
	struct gradeq_grader *grader;
	struct gradeq_keys *problem_keys; /* in index order */
	struct gradeq_keys *sub_keys;     /* in subsection order */
};

struct gradeq_worker {
	struct cached_course *cache;
	uint64_t *used; /* used[i]: when cache[i] was last used (w->clock) */
	int ncache, cap;
	uint64_t clock;
	char *consumer;
	char settled[16]; /* run state the job in hand settled, or "" */
	/* batch buffers, grown to the largest batch seen */
	struct gradeq_score *scores;
	size_t scores_cap;
	struct gradeq_subsection_row *subs;
	size_t subs_cap;
	struct gradeq_course_row *courses;
	size_t courses_cap;
	double compute_ms;            /* grading time of the current job, summed per learner */
	struct gradeq_reader *reader; /* course loads and score reads from a standby; NULL: none */
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
	w->used = calloc((size_t)w->cap, sizeof(*w->used));
	w->consumer = strdup(consumer ? consumer : "");
	if (!w->cache || !w->used || !w->consumer) {
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
	gradeq_keys_free(c->problem_keys);
	gradeq_keys_free(c->sub_keys);
	memset(c, 0, sizeof(*c));
}

void gradeq_worker_free(struct gradeq_worker *w)
{
	if (!w)
		return;
	for (int i = 0; i < w->ncache; i++)
		cached_release(&w->cache[i]);
	free(w->cache);
	free(w->used);
	free(w->consumer);
	free(w->scores);
	free(w->subs);
	free(w->courses);
	gradeq_reader_free(w->reader);
	free(w);
}

void gradeq_worker_set_reader(struct gradeq_worker *w, struct gradeq_reader *r)
{
	gradeq_reader_free(w->reader);
	w->reader = r;
}

static struct cached_course *cache_find(struct gradeq_worker *w, const char *course_id,
					const char *version)
{
	for (int i = 0; i < w->ncache; i++)
		if (strcmp(w->cache[i].course_id, course_id) == 0 &&
		    strcmp(w->cache[i].version, version) == 0) {
			w->used[i] = ++w->clock;
			return &w->cache[i];
		}
	return NULL;
}

int gradeq_lru_oldest(const uint64_t *stamps, int n)
{
	int oldest = 0;

	for (int i = 1; i < n; i++)
		if (stamps[i] < stamps[oldest])
			oldest = i;
	return oldest;
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
	if (!victim)
		victim = &w->cache[gradeq_lru_oldest(w->used, w->ncache)];
	if (victim->course_id)
		cached_release(victim);
	return victim;
}

/* The key lists of a course: problems in index order (the lookup inverted
 * over all blocks), subsections in order. */
static int course_keys(struct cached_course *c, const struct gradeq_course_src *src)
{
	size_t np = gradeq_course_nproblems(c->course);
	size_t ns = gradeq_course_nsubsections(c->course);
	const char **keys = calloc((np > ns ? np : ns) + 1, sizeof(*keys));
	size_t k = 0;

	if (!keys)
		return GRADEQ_ERR_NOMEM;
	for (size_t i = 0; i < src->nblocks; i++) {
		int idx = gradeq_course_problem_index(c->course, src->blocks[i].usage_key);

		if (idx >= 0 && (size_t)idx < np && !keys[idx]) {
			keys[idx] = src->blocks[i].usage_key;
			k++;
		}
	}
	if (k == np)
		c->problem_keys = gradeq_keys_new(keys, np);
	for (size_t i = 0; i < ns; i++)
		keys[i] = gradeq_course_subsection_key(c->course, i);
	c->sub_keys = gradeq_keys_new(keys, ns);
	free(keys);
	return c->problem_keys && c->sub_keys ? 0 : GRADEQ_ERR_NOMEM;
}

static int load_course(struct gradeq_worker *w, struct gradeq_store *st, const char *course_id,
		       struct cached_course **out)
{
	struct gradeq_course_src src;
	struct cached_course *c = NULL;
	char err[512] = "";
	int rc;

	rc = gradeq_courses_load(st, course_id, &src);
	if (rc)
		goto out;
	c = cache_slot(w, course_id);
	rc = gradeq_course_new(src.blocks, src.nblocks, src.policy, strlen(src.policy), &c->course,
			       err, sizeof(err));
	if (rc) {
		rc = gradeq_error(rc, "course '%s': %s", course_id,
				  err[0] ? err : gradeq_strerror(rc));
		goto fail_slot;
	}
	c->course_id = strdup(course_id);
	c->version = strdup(src.version);
	c->edited = src.edited ? strdup(src.edited) : NULL;
	c->grader = gradeq_grader_new(c->course);
	rc = course_keys(c, &src);
	if (rc || !c->course_id || !c->version || (src.edited && !c->edited) || !c->grader) {
		rc = GRADEQ_ERR_NOMEM;
		goto fail_slot;
	}
	w->used[c - w->cache] = ++w->clock;
	*out = c;
	goto out;
fail_slot:
	cached_release(c);
	/* keep the cache dense: move the last entry into the hole */
	if (c != &w->cache[w->ncache - 1]) {
		*c = w->cache[w->ncache - 1];
		w->used[c - w->cache] = w->used[w->ncache - 1];
		memset(&w->cache[w->ncache - 1], 0, sizeof(*c));
	}
	w->ncache--;
out:
	gradeq_course_src_release(&src);
	return rc;
}

/* A job body must match the row recorded at publish time (DESIGN.md
 * section 4): a job gradeq never recorded, or one that does not match, is
 * refused before anything is changed, and stats->forged says that its job
 * row (if any) is not this message's to change. */
static int check_record(struct gradeq_store *st, const struct gradeq_job *job,
			struct gradeq_job_stats *stats)
{
	struct gradeq_job_record rec;
	int rc = gradeq_job_record_read(st, job->job_id, job->run_id, &rec);

	if (!rc) {
		rc = gradeq_job_check_record(job, &rec);
		stats->forged = rc != 0;
	}
	gradeq_job_record_release(&rec);
	return rc;
}

/* Marks the job in progress (an attempt, committed asynchronously) and
 * reads the course's current version, in one statement. */
static int begin_job(struct gradeq_worker *w, struct gradeq_store *st, const struct gradeq_job *job,
		     struct gradeq_job_changed *began, char **version)
{
	const struct gradeq_job_change change = {
		.job_id = job->job_id,
		.from = JOB_UNFINISHED,
		.to = GRADEQ_JOB_IN_PROGRESS,
		.by = w->consumer,
		.run_id = job->run_id,
	};
	int rc = gradeq_job_begin(st, &change, job->course_id, began, version);

	if (!rc && !*version)
		rc = gradeq_error(GRADEQ_ERR_NOT_FOUND, "unknown course '%s'", job->course_id);
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
	struct gradeq_subsection_row *out = w->subs + *nlearners * ns;
	struct timespec t0;
	int rc;

	/* two vDSO clock reads per learner: tens of nanoseconds against the
	 * microseconds a learner takes to grade */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = gradeq_grader_grade(c->grader, w->scores, nscores, &subs, &cg);
	if (rc)
		return gradeq_error(rc, "grading learner %d failed", uid);
	for (size_t i = 0; i < ns; i++) {
		out[i].earned_all = subs[i].earned_all;
		out[i].possible_all = subs[i].possible_all;
		out[i].earned_graded = subs[i].earned_graded;
		out[i].possible_graded = subs[i].possible_graded;
		out[i].attempted = subs[i].attempted;
		out[i].first_attempted_us = subs[i].first_attempted_us;
	}
	w->courses[*nlearners].user_id = uid;
	w->courses[*nlearners].percent = cg.percent;
	w->courses[*nlearners].letter = cg.letter;
	w->courses[*nlearners].passed = cg.passed;
	(*nlearners)++;
	w->compute_ms += ms_since(&t0);
	return 0;
}

/* The batch's read in progress: the learner whose rows are gathered. */
struct gather {
	struct gradeq_worker *w;
	struct cached_course *c;
	struct gradeq_job_stats *stats;
	size_t np, nscores, nlearners;
	int32_t cur;
	bool have, enrolled;
};

/* A row of the read: an enrollment or a score of the current learner; a
 * new learner grades the one before. */
static int gather_row(void *ctx, const struct gradeq_score_row *row)
{
	struct gather *g = ctx;
	int rc = 0;

	if (!g->have || row->user_id != g->cur) {
		if (g->have && g->enrolled)
			rc = flush_learner(g->w, g->c, g->cur, g->nscores, &g->nlearners);
		g->cur = row->user_id;
		g->have = true;
		g->enrolled = false;
		g->nscores = 0;
	}
	if (row->enrollment) {
		g->enrolled = true;
	} else if (row->score.problem >= 0 && (size_t)row->score.problem < g->np &&
		   g->nscores < g->np) {
		g->w->scores[g->nscores++] = row->score;
		g->stats->score_rows++;
	}
	return rc;
}

/* Reads the batch's enrollments and score rows (one streamed query,
 * ordered by learner) and grades each learner as its rows complete. */
static int fetch_and_grade(struct gradeq_worker *w, struct gradeq_store *st,
			   struct cached_course *c, const struct gradeq_job *job, size_t *nlearners,
			   struct gradeq_job_stats *stats)
{
	size_t ns = gradeq_course_nsubsections(c->course);
	struct gather g = {.w = w, .c = c, .stats = stats};
	int rc;

	g.np = gradeq_course_nproblems(c->course);
	*nlearners = 0;
	w->compute_ms = 0;
	if ((rc = grow((void **)&w->scores, &w->scores_cap, g.np ? g.np : 1, sizeof(*w->scores))) ||
	    (rc = grow((void **)&w->subs, &w->subs_cap, job->nusers * (ns ? ns : 1) + 1,
		       sizeof(*w->subs))) ||
	    (rc = grow((void **)&w->courses, &w->courses_cap, job->nusers + 1,
		       sizeof(*w->courses))))
		return rc;
	rc = gradeq_scores_read(st, job->course_id, job->user_ids, job->nusers, c->problem_keys,
				gather_row, &g);
	if (g.have && g.enrolled && !rc)
		rc = flush_learner(w, c, g.cur, g.nscores, &g.nlearners);
	*nlearners = g.nlearners;
	return rc;
}

/* The statistics a job's completion records. */
static struct gradeq_job_completion completion(const struct gradeq_job_stats *stats)
{
	return (struct gradeq_job_completion){
		.ms_load = stats->ms_load,
		.ms_fetch = stats->ms_fetch,
		.ms_compute = stats->ms_compute,
		.graded = stats->graded,
		.skipped = stats->skipped,
		.subsections = stats->subsections,
		.score_rows = stats->score_rows,
	};
}

/* Writes the grade rows and the job's completion in one transaction, left
 * open for the caller to commit; with later, the rows only (a group
 * completes its jobs at once: complete_held). */
static int write_grades(struct gradeq_worker *w, struct gradeq_store *st, struct cached_course *c,
			const struct gradeq_job *job, size_t nlearners,
			const struct gradeq_job_stats *stats, bool later)
{
	const struct gradeq_grades_batch batch = {
		.job_id = job->job_id,
		.course_id = job->course_id,
		.version = c->version,
		.policy_hash = gradeq_course_policy(c->course)->hash,
		.edited = c->edited,
		.subsections = c->sub_keys,
		.user_ids = job->user_ids,
		.nusers = job->nusers,
		.nlearners = nlearners,
		.learners = w->courses,
		.subs = w->subs,
	};
	const struct gradeq_job_completion done = completion(stats);
	const struct gradeq_job_change change = {
		.job_id = job->job_id,
		.from = GRADEQ_JOB_SET(GRADEQ_JOB_IN_PROGRESS),
		.to = GRADEQ_JOB_COMPLETE,
		.by = w->consumer,
		.completion = &done,
	};
	struct gradeq_job_changed changed;
	int rc;

	rc = gradeq_grades_write(st, &batch);
	if (rc || later)
		return rc;
	rc = gradeq_job_transition(st, &change, &changed);
	if (rc) {
		gradeq_store_rollback(st);
		return rc;
	}
	snprintf(w->settled, sizeof(w->settled), "%s", changed.run_settled);
	return 0;
}

/* Write, commit and total times are known only after the commit. Best
 * effort: losing them loses statistics, never grades. */
static void record_timings(struct gradeq_store *st, const struct gradeq_job *job,
			   const struct gradeq_job_stats *stats)
{
	const struct gradeq_job_timings t = {
		.ms_write = stats->ms_write,
		.ms_commit = stats->ms_commit,
		.ms_total = stats->ms_total,
		.body_bytes = stats->body_bytes,
	};
	int rc = gradeq_job_record_timings(st, job->job_id, &t);

	if (rc)
		log_warn("event=timings_not_recorded job=%s error=\"%s\"", job->job_id,
			 gradeq_errmsg(rc));
}

static int mark_canceled(struct gradeq_store *st, const struct gradeq_job *job, const char *by)
{
	const struct gradeq_job_change change = {
		.job_id = job->job_id,
		.from = JOB_UNFINISHED,
		.to = GRADEQ_JOB_CANCELED,
		.by = by,
	};

	return gradeq_job_transition(st, &change, NULL);
}

/* A job's first steps: its record checked, its row in progress, the
 * course's version in *version. 0: to be graded; GRADEQ_NOTHING_TO_DO:
 * stats->outcome says why not (done before, or its run canceled: marked);
 * or an error. */
#define GRADEQ_NOTHING_TO_DO 1

/* What the job's row said when it was taken: 0, to be graded, or
 * GRADEQ_NOTHING_TO_DO (done before, or its run canceled: marked). */
static int after_begin(struct gradeq_worker *w, struct gradeq_store *st,
		       const struct gradeq_job *job, const struct gradeq_job_changed *began,
		       struct gradeq_job_stats *stats)
{
	int rc;

	if (began->known &&
	    (began->old == GRADEQ_JOB_COMPLETE || began->old == GRADEQ_JOB_CANCELED ||
	     began->old == GRADEQ_JOB_DISCARDED)) {
		stats->outcome = GRADEQ_ALREADY_DONE;
		return GRADEQ_NOTHING_TO_DO;
	}
	if (began->run_known && began->run_state == GRADEQ_RUN_CANCELED) {
		stats->outcome = GRADEQ_SKIPPED_CANCELED;
		rc = mark_canceled(st, job, w->consumer);
		return rc ? rc : GRADEQ_NOTHING_TO_DO;
	}
	return 0;
}

static int prepare_job(struct gradeq_worker *w, struct gradeq_store *st,
		       const struct gradeq_job *job, struct gradeq_job_stats *stats, char **version)
{
	struct gradeq_job_changed began;
	int rc;

	*version = NULL;
	rc = check_record(st, job, stats);
	if (rc)
		return rc;
	rc = begin_job(w, st, job, &began, version);
	if (rc)
		return rc;
	return after_begin(w, st, job, &began, stats);
}

/* The course (cached, or loaded) and the batch's scores read and graded
 * into w's buffers: *nlearners rows, course *cp. */
static int grade_job(struct gradeq_worker *w, struct gradeq_store *st, const struct gradeq_job *job,
		     const char *version, struct gradeq_job_stats *stats, struct cached_course **cp,
		     size_t *nlearners)
{
	struct gradeq_store *rs = st; /* where the course and scores are read */
	struct cached_course *c = NULL;
	struct timespec t;
	int rc;

	*nlearners = 0;
	if (w->reader) {
		rc = gradeq_reader_pick(w->reader, st, job->job_id, &rs);
		gradeq_reader_last(w->reader, &stats->ms_standby_wait, &stats->standby_behind);
		if (rc)
			return rc;
	}
	clock_gettime(CLOCK_MONOTONIC, &t);
	c = cache_find(w, job->course_id, version);
	if (!c) {
		rc = load_course(w, rs, job->course_id, &c);
		if (rc)
			return rc;
		if (strcmp(c->version, version) != 0)
			log_info("event=course_changed course=%s version=%s", job->course_id,
				 c->version);
	}
	stats->ms_load = ms_since(&t);
	stats->subsections = (int)gradeq_course_nsubsections(c->course);
	clock_gettime(CLOCK_MONOTONIC, &t);
	rc = fetch_and_grade(w, rs, c, job, nlearners, stats);
	if (rc)
		return rc;
	/* grading runs inside the stream: fetch is the rest of its time */
	stats->ms_compute = w->compute_ms;
	stats->ms_fetch = ms_since(&t) - w->compute_ms;
	stats->body_bytes = (long)job->body_bytes;
	stats->graded = (int)*nlearners;
	stats->skipped = (int)job->nusers - (int)*nlearners;
	if (stats->skipped < 0)
		stats->skipped = 0;
	*cp = c;
	return 0;
}

int gradeq_worker_process(struct gradeq_worker *w, struct gradeq_store *st,
			  const struct gradeq_job *job, struct gradeq_job_stats *stats)
{
	struct cached_course *c = NULL;
	char *version = NULL;
	struct timespec t0, t;
	size_t nlearners = 0;
	int rc;

	memset(stats, 0, sizeof(*stats));
	w->settled[0] = '\0';
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = prepare_job(w, st, job, stats, &version);
	if (rc == GRADEQ_NOTHING_TO_DO)
		rc = 0;
	if (rc || stats->outcome != GRADEQ_DONE)
		goto out;
	rc = grade_job(w, st, job, version, stats, &c, &nlearners);
	if (rc)
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &t);
	rc = write_grades(w, st, c, job, nlearners, stats, false);
	stats->ms_write = ms_since(&t);
	if (rc)
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &t);
	rc = gradeq_store_commit(st);
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

/* A job of a group, graded, its rows waiting for the group's write. */
struct held_rows {
	int i; /* its index in the group */
	struct cached_course *c;
	size_t nlearners;
	struct gradeq_subsection_row *subs;
	size_t subs_cap;
	struct gradeq_course_row *courses;
	size_t courses_cap;
};

/* Trades the worker's row buffers with h's. */
static void swap_rows(struct gradeq_worker *w, struct held_rows *h)
{
	struct gradeq_subsection_row *s = w->subs;
	struct gradeq_course_row *c = w->courses;
	size_t sc = w->subs_cap, cc = w->courses_cap;

	w->subs = h->subs;
	w->subs_cap = h->subs_cap;
	w->courses = h->courses;
	w->courses_cap = h->courses_cap;
	h->subs = s;
	h->subs_cap = sc;
	h->courses = c;
	h->courses_cap = cc;
}

/* A job's error message, kept before the group's next steps replace it. */
static void keep_error(char *buf, int rc)
{
	if (buf)
		snprintf(buf, GRADEQ_GROUP_ERR_MAX, "%s", gradeq_errmsg(rc));
}

/* Puts the held jobs in the order of their runs (gradeq_group_order). */
static void order_held(const struct gradeq_job *const *jobs, struct held_rows *held, int n)
{
	const char *keys[GRADEQ_GROUP_MAX_JOBS] = {NULL};
	int order[GRADEQ_GROUP_MAX_JOBS];
	struct held_rows tmp[GRADEQ_GROUP_MAX_JOBS];

	if (n > GRADEQ_GROUP_MAX_JOBS)
		return;
	for (int k = 0; k < n; k++)
		keys[k] = jobs[held[k].i]->run_id;
	gradeq_group_order(keys, order, n);
	for (int k = 0; k < n; k++)
		tmp[k] = held[order[k]];
	memcpy(held, tmp, (size_t)n * sizeof(*held));
}

/* Which of a group's jobs settled a run: the last of that run written. */
struct settle_ctx {
	const struct gradeq_job *const *jobs;
	struct gradeq_job_stats *stats;
	const int *rcs;
	const struct held_rows *held;
	int n;
};

static void group_settled(void *ctx, const char *run_id, const char *state)
{
	struct settle_ctx *sc = ctx;

	for (int k = sc->n - 1; k >= 0; k--) {
		int i = sc->held[k].i;

		if (!sc->rcs[i] && strcmp(sc->jobs[i]->run_id, run_id) == 0) {
			snprintf(sc->stats[i].run_settled, sizeof(sc->stats[i].run_settled), "%s",
				 state);
			return;
		}
	}
}

/* The held jobs whose rows were written, completed in one statement in
 * the group's transaction. A failure fails the group, as transient: each
 * job is then tried alone, where its own transition says what is wrong. */
static int complete_held(struct gradeq_worker *w, struct gradeq_store *st,
			 const struct gradeq_job *const *jobs, const struct gradeq_job_stats *stats,
			 const int *rcs, const struct held_rows *held, int n)
{
	const char *ids[GRADEQ_GROUP_MAX_JOBS];
	struct gradeq_job_completion done[GRADEQ_GROUP_MAX_JOBS];
	const struct gradeq_job_completion *dp[GRADEQ_GROUP_MAX_JOBS];
	struct gradeq_job_changed changed[GRADEQ_GROUP_MAX_JOBS];
	int m = 0, rc;

	for (int k = 0; k < n && k < GRADEQ_GROUP_MAX_JOBS; k++) {
		int i = held[k].i;

		if (rcs[i])
			continue;
		ids[m] = jobs[i]->job_id;
		done[m] = completion(&stats[i]);
		dp[m] = &done[m];
		m++;
	}
	rc = gradeq_job_complete_group(st, m, ids, dp, GRADEQ_JOB_SET(GRADEQ_JOB_IN_PROGRESS),
				       w->consumer, changed);
	if (rc == GRADEQ_ERR_DB) {
		char msg[GRADEQ_GROUP_ERR_MAX];

		snprintf(msg, sizeof(msg), "%s", gradeq_errmsg(rc));
		rc = gradeq_error(GRADEQ_ERR_DB_TRANSIENT, "%s", msg);
	}
	return rc;
}

/* Writes the held jobs in one transaction, each under its savepoint (a job
 * whose write fails is rolled back alone and gets its error), in the order
 * of their runs (every group takes the run rows' locks in one order, so
 * that two consumers' groups never deadlock), and commits once. When the
 * group's transaction is lost, every held job gets that error: nothing of
 * the group was committed. */
static void write_held(struct gradeq_worker *w, struct gradeq_store *st,
		       const struct gradeq_job *const *jobs, struct gradeq_job_stats *stats,
		       int *rcs, char **errs, const struct timespec *t0, struct held_rows *held,
		       int *nheld)
{
	char group_err[GRADEQ_GROUP_ERR_MAX] = "";
	int n = *nheld, rc, ndone = 0, ncommitted = 0;
	double commit_ms;
	const char **ids = NULL;
	struct gradeq_job_timings *tm = NULL;
	struct timespec t;

	if (!n)
		return;
	order_held(jobs, held, n);
	rc = gradeq_store_group_begin(st);
	for (int k = 0; k < n && !rc; k++) {
		struct held_rows *h = &held[k];
		int i = h->i;

		swap_rows(w, h);
		w->settled[0] = '\0';
		clock_gettime(CLOCK_MONOTONIC, &t);
		rcs[i] = write_grades(w, st, h->c, jobs[i], h->nlearners, &stats[i], true);
		if (!rcs[i])
			rcs[i] = gradeq_store_commit(st); /* the job's savepoint */
		if (rcs[i])
			keep_error(errs[i], rcs[i]);
		stats[i].ms_write = ms_since(&t);
		swap_rows(w, h);
		snprintf(stats[i].run_settled, sizeof(stats[i].run_settled), "%s", w->settled);
		if (rcs[i] && gradeq_store_broken(st))
			rc = rcs[i];
	}
	if (!rc)
		rc = complete_held(w, st, jobs, stats, rcs, held, n);
	if (!rc) {
		struct settle_ctx sc = {
			.jobs = jobs, .stats = stats, .rcs = rcs, .held = held, .n = n};

		rc = gradeq_jobs_count_group(st, w->consumer, group_settled, &sc);
	}
	clock_gettime(CLOCK_MONOTONIC, &t);
	if (!rc)
		rc = gradeq_store_group_commit(st);
	else
		gradeq_store_group_abort(st);
	commit_ms = ms_since(&t);
	if (rc)
		snprintf(group_err, sizeof(group_err), "%s", gradeq_errmsg(rc));
	for (int k = 0; k < n; k++)
		if (!rcs[held[k].i])
			ncommitted++;
	for (int k = 0; k < n; k++) {
		int i = held[k].i;

		if (rc) {
			/* the group's transaction is gone: none of it holds */
			if (!rcs[i]) {
				rcs[i] = rc;
				if (errs[i])
					snprintf(errs[i], GRADEQ_GROUP_ERR_MAX, "%s", group_err);
			}
			stats[i].run_settled[0] = '\0';
		} else if (!rcs[i]) {
			stats[i].outcome = GRADEQ_DONE;
			/* each job its share of the one commit */
			stats[i].ms_commit = commit_ms / ncommitted;
			stats[i].ms_total = ms_since(&t0[i]);
			ndone++;
		}
		free(held[k].subs);
		free(held[k].courses);
	}
	*nheld = 0;
	if (!ndone)
		return;
	/* statistics, best effort: one statement for the group */
	ids = calloc((size_t)ndone, sizeof(*ids));
	tm = calloc((size_t)ndone, sizeof(*tm));
	if (ids && tm) {
		int m = 0;

		for (int k = 0; k < n; k++) {
			int i = held[k].i;

			if (rcs[i])
				continue;
			ids[m] = jobs[i]->job_id;
			tm[m].ms_write = stats[i].ms_write;
			tm[m].ms_commit = stats[i].ms_commit;
			tm[m].ms_total = stats[i].ms_total;
			tm[m].body_bytes = stats[i].body_bytes;
			m++;
		}
		rc = gradeq_jobs_record_timings(st, m, ids, tm);
	} else {
		rc = GRADEQ_ERR_NOMEM;
	}
	if (rc)
		log_warn("event=timings_not_recorded jobs=%d error=\"%s\"", ndone,
			 gradeq_errmsg(rc));
	free(ids);
	free(tm);
}

/* A group's first steps, prepare_job's for each job: the records checked
 * one by one, then the jobs whose record is right taken in one statement.
 * pre[i] gets prepare_job's result, versions[i] the course's version. */
static void begin_group(struct gradeq_worker *w, struct gradeq_store *st,
			const struct gradeq_job *const *jobs, int n, struct gradeq_job_stats *stats,
			struct timespec *t0, int *pre, char **versions, char **errs)
{
	const char *ids[GRADEQ_GROUP_MAX_JOBS];
	int idx[GRADEQ_GROUP_MAX_JOBS];
	char *vers[GRADEQ_GROUP_MAX_JOBS];
	struct gradeq_job_changed began[GRADEQ_GROUP_MAX_JOBS];
	int k = 0, rc;

	for (int i = 0; i < n; i++) {
		memset(&stats[i], 0, sizeof(stats[i]));
		clock_gettime(CLOCK_MONOTONIC, &t0[i]);
		versions[i] = NULL;
		pre[i] = n > GRADEQ_GROUP_MAX_JOBS ? GRADEQ_ERR_INVALID
						   : check_record(st, jobs[i], &stats[i]);
		if (pre[i])
			keep_error(errs[i], pre[i]); /* before the next replaces it */
		if (!pre[i]) {
			idx[k] = i;
			ids[k++] = jobs[i]->job_id;
		}
	}
	if (!k)
		return;
	rc = gradeq_job_begin_group(st, k, ids, JOB_UNFINISHED, w->consumer, began, vers);
	for (int j = 0; j < k; j++) {
		int i = idx[j];

		if (rc) {
			pre[i] = rc;
		} else {
			versions[i] = vers[j];
			if (!vers[j])
				pre[i] = gradeq_error(GRADEQ_ERR_NOT_FOUND, "unknown course '%s'",
						      jobs[i]->course_id);
			else
				pre[i] = after_begin(w, st, jobs[i], &began[j], &stats[i]);
		}
		if (pre[i] && pre[i] != GRADEQ_NOTHING_TO_DO)
			keep_error(errs[i], pre[i]);
	}
}

void gradeq_worker_process_group(struct gradeq_worker *w, struct gradeq_store *st,
				 const struct gradeq_job *const *jobs, int n,
				 struct gradeq_job_stats *stats, int *rcs, char **errs)
{
	size_t m = (size_t)(n > 0 ? n : 1);
	struct held_rows *held = calloc(m, sizeof(*held));
	struct timespec *t0 = calloc(m, sizeof(*t0));
	int *pre = calloc(m, sizeof(*pre));
	char **versions = calloc(m, sizeof(*versions));
	int nheld = 0;

	if (!held || !t0 || !pre || !versions) {
		for (int i = 0; i < n; i++) {
			memset(&stats[i], 0, sizeof(stats[i]));
			rcs[i] = GRADEQ_ERR_NOMEM;
			keep_error(errs[i], rcs[i]);
		}
		free(held);
		free(t0);
		free(pre);
		free(versions);
		return;
	}
	begin_group(w, st, jobs, n, stats, t0, pre, versions, errs);
	for (int i = 0; i < n; i++) {
		char *version = versions[i];
		struct cached_course *c = NULL;
		size_t nlearners = 0;
		int rc = pre[i];

		if (rc == 0 && nheld && !cache_find(w, jobs[i]->course_id, version)) {
			/* a course to load may take the slot of one the held
			 * jobs still use: they are written first */
			write_held(w, st, jobs, stats, rcs, errs, t0, held, &nheld);
		}
		if (rc == 0)
			rc = grade_job(w, st, jobs[i], version, &stats[i], &c, &nlearners);
		free(version);
		versions[i] = NULL;
		if (rc == GRADEQ_NOTHING_TO_DO) {
			rcs[i] = 0;
			stats[i].ms_total = ms_since(&t0[i]);
			continue;
		}
		rcs[i] = rc;
		if (rc) {
			if (!pre[i]) /* else kept when it happened */
				keep_error(errs[i], rc);
			stats[i].ms_total = ms_since(&t0[i]);
			continue;
		}
		/* the rows move out of the worker's buffers to wait */
		held[nheld] = (struct held_rows){.i = i, .c = c, .nlearners = nlearners};
		swap_rows(w, &held[nheld]);
		nheld++;
	}
	write_held(w, st, jobs, stats, rcs, errs, t0, held, &nheld);
	free(held);
	free(t0);
	free(pre);
	free(versions);
}

int gradeq_worker_record_failure(struct gradeq_store *st, const char *job_id,
				 enum gradeq_job_state state, enum gradeq_err_class cls,
				 const char *error, char *run_settled)
{
	const struct gradeq_job_change change = {
		.job_id = job_id,
		.from = JOB_UNFINISHED,
		.to = state,
		.detail = error,
		.error = error,
		.error_class = gradeq_err_class_name(cls),
	};
	struct gradeq_job_changed changed;
	int rc = gradeq_job_transition(st, &change, &changed);

	if (run_settled)
		snprintf(run_settled, 16, "%s", rc ? "" : changed.run_settled);
	return rc;
}

const char *gradeq_worker_name(const struct gradeq_worker *w)
{
	return w ? w->consumer : "";
}
