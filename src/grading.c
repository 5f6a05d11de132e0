/* Grading rules of DESIGN.md section 2, mirroring the platform's
 * lms/djangoapps/grades (scores.py, subsection_grade.py, course_grade.py)
 * and xmodule/graders.py operation for operation, so that every double comes
 * out bit-identical.
 *
 * Floating point: sums are plain left-to-right additions starting from 0.0,
 * as Python's sum() does (graders.float_sum). Each product that is then
 * added is computed in its own statement so that no compiler fuses the two
 * into one fma (ISO C mode GCC does not; clang only contracts within one
 * expression), which would change the last bit. */
#include "gradeq/grading.h"

#include <limits.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct problem {
	const char *key;
	bool graded; /* the block's own flag */
	bool has_weight;
	double weight;
	/* The score without a usable studentmodule row (rule 1, second half). */
	double def_earned, def_possible;
};

struct subsection {
	const char *key;
	const char *format; /* NULL when none */
	bool graded;
	size_t pbegin, pend; /* its subtree's problems, [pbegin, pend) in DFS order */
};

struct pkey {
	const char *key;
	int index;
};

struct gradeq_course {
	struct gradeq_policy *policy;
	char *strings;            /* one arena for every key and format */
	struct problem *problems; /* in course order */
	size_t nproblems;
	struct pkey *pindex;     /* sorted by key */
	struct subsection *subs; /* in course order */
	size_t nsubs;
	/* Per GRADER entry e, the subsections of its type that are graded, in
	 * course order: gsubs[goff[e] .. goff[e + 1]). */
	size_t *gsubs, *goff;
	size_t maxlist; /* longest of those lists */
};

enum gradeq_block_type gradeq_block_type_parse(const char *s)
{
	static const struct {
		const char *name;
		enum gradeq_block_type type;
	} names[] = {
		{"course", GRADEQ_BLOCK_COURSE},         {"chapter", GRADEQ_BLOCK_CHAPTER},
		{"sequential", GRADEQ_BLOCK_SEQUENTIAL}, {"vertical", GRADEQ_BLOCK_VERTICAL},
		{"problem", GRADEQ_BLOCK_PROBLEM},
	};

	for (size_t i = 0; s && i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(s, names[i].name) == 0)
			return names[i].type;
	return GRADEQ_BLOCK_OTHER;
}

/* Rule 2, scores.weighted_score(): the weight scales a positive raw
 * possible. The platform tests raw_possible == 0 instead of > 0; DESIGN.md
 * says > 0, which differs only for a negative max_grade. */
static void weigh(const struct problem *p, double raw_earned, double raw_possible, double *earned,
		  double *possible)
{
	double t;

	if (p->has_weight && raw_possible > 0) {
		t = raw_earned * p->weight;
		*earned = t / raw_possible;
		*possible = p->weight;
	} else {
		*earned = raw_earned;
		*possible = raw_possible;
	}
}

/* ---- building a course ---- */

struct node {
	const char *key;       /* in the arena */
	const char *parent_in; /* borrowed from the caller, only while building */
	const char *format;    /* in the arena, or NULL */
	const struct gradeq_block_in *in;
	long parent;           /* index, -1 for none or missing */
	size_t child0, nchild; /* into the children array */
};

/* Comparators see node pointers, so no state is needed outside them. */
static int nodep_key_cmp(const void *a, const void *b)
{
	const struct node *x = *(const struct node *const *)a, *y = *(const struct node *const *)b;

	return strcmp(x->key, y->key);
}

/* Siblings by position, then by usage_key so that equal positions still
 * give one order. */
static int nodep_pos_cmp(const void *a, const void *b)
{
	const struct node *x = *(const struct node *const *)a, *y = *(const struct node *const *)b;

	if (x->in->position != y->in->position)
		return x->in->position < y->in->position ? -1 : 1;
	return strcmp(x->key, y->key);
}

static long find_node(struct node **sorted, size_t n, const char *key)
{
	size_t lo = 0, hi = n, mid;
	int r;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		r = strcmp(key, sorted[mid]->key);
		if (r == 0)
			return (long)mid;
		if (r < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -1;
}

/* The work arrays of gradeq_course_new(), freed together. */
struct build {
	struct node *nodes;
	struct node **sorted;   /* by key */
	struct node **children; /* grouped by parent, each group by position */
	unsigned char *state;
	size_t *stack;
	size_t *stack_sub;
};

static void build_release(struct build *b)
{
	free(b->nodes);
	free(b->sorted);
	free(b->children);
	free(b->state);
	free(b->stack);
	free(b->stack_sub);
}

static void course_msg(char *err, size_t errlen, const char *fmt, ...) GRADEQ_PRINTF(3, 4);

/* A message into err, cut between whole characters when it does not fit. */
static void course_msg(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	if (errlen)
		gradeq_utf8_cut_end(err);
}

static int copy_blocks(struct gradeq_course *c, struct build *b,
		       const struct gradeq_block_in *blocks, size_t n, char *err, size_t errlen)
{
	size_t total = 0, len;
	char *s;

	for (size_t i = 0; i < n; i++) {
		if (!blocks[i].usage_key) {
			course_msg(err, errlen, "block %zu has no usage_key", i);
			return GRADEQ_ERR_INVALID;
		}
		total += strlen(blocks[i].usage_key) + 1;
		if (blocks[i].format)
			total += strlen(blocks[i].format) + 1;
	}
	c->strings = malloc(total ? total : 1);
	b->nodes = calloc(n, sizeof(*b->nodes));
	b->sorted = malloc(n * sizeof(*b->sorted));
	if (!c->strings || !b->nodes || !b->sorted)
		return GRADEQ_ERR_NOMEM;
	s = c->strings;
	for (size_t i = 0; i < n; i++) {
		struct node *nd = &b->nodes[i];

		len = strlen(blocks[i].usage_key) + 1;
		memcpy(s, blocks[i].usage_key, len);
		nd->key = s;
		s += len;
		if (blocks[i].format) {
			len = strlen(blocks[i].format) + 1;
			memcpy(s, blocks[i].format, len);
			nd->format = s;
			s += len;
		}
		nd->parent_in = blocks[i].parent_key;
		nd->in = &blocks[i];
		nd->parent = -1;
		b->sorted[i] = nd;
	}
	qsort(b->sorted, n, sizeof(*b->sorted), nodep_key_cmp);
	for (size_t i = 1; i < n; i++) {
		if (strcmp(b->sorted[i - 1]->key, b->sorted[i]->key) == 0) {
			course_msg(err, errlen, "duplicate usage_key '%s'", b->sorted[i]->key);
			return GRADEQ_ERR_INVALID;
		}
	}
	return 0;
}

/* Links each block to its parent and lists children by position. Returns
 * the root's index in *root. */
static int link_tree(struct build *b, size_t n, size_t *root, char *err, size_t errlen)
{
	size_t nroots = 0, *fill = NULL;
	long k;
	int rc = 0;

	for (size_t i = 0; i < n; i++) {
		struct node *nd = &b->nodes[i];

		if (!nd->parent_in) {
			*root = i;
			nroots++;
			continue;
		}
		k = find_node(b->sorted, n, nd->parent_in);
		if (k >= 0)
			nd->parent = b->sorted[k] - b->nodes;
	}
	if (nroots != 1) {
		course_msg(err, errlen,
			   nroots ? "%zu blocks without a parent; expected one root"
				  : "no root block (one without a parent)",
			   nroots);
		return GRADEQ_ERR_INVALID;
	}
	fill = calloc(n + 1, sizeof(*fill));
	b->children = malloc(n * sizeof(*b->children));
	if (!fill || !b->children) {
		rc = GRADEQ_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (b->nodes[i].parent >= 0)
			b->nodes[b->nodes[i].parent].nchild++;
	for (size_t i = 0, off = 0; i < n; i++) {
		b->nodes[i].child0 = off;
		off += b->nodes[i].nchild;
	}
	for (size_t i = 0; i < n; i++) {
		struct node *p;

		if (b->nodes[i].parent < 0)
			continue;
		p = &b->nodes[b->nodes[i].parent];
		b->children[p->child0 + fill[b->nodes[i].parent]++] = &b->nodes[i];
	}
	for (size_t i = 0; i < n; i++)
		qsort(b->children + b->nodes[i].child0, b->nodes[i].nchild, sizeof(*b->children),
		      nodep_pos_cmp);
out:
	free(fill);
	return rc;
}

enum { ST_UNKNOWN, ST_WALK, ST_ROOTED, ST_ORPHAN };

/* A block is reachable from the root, or its parent chain ends at a
 * missing parent (ignored), or the chain loops: an error. */
static int check_cycles(struct build *b, size_t n, size_t root, char *err, size_t errlen)
{
	unsigned char verdict;
	long j;

	b->state = calloc(n, 1);
	if (!b->state)
		return GRADEQ_ERR_NOMEM;
	b->state[root] = ST_ROOTED;
	for (size_t i = 0; i < n; i++) {
		for (j = (long)i; j >= 0 && b->state[j] == ST_UNKNOWN; j = b->nodes[j].parent)
			b->state[j] = ST_WALK;
		if (j >= 0 && b->state[j] == ST_WALK) {
			course_msg(err, errlen, "cycle in the block tree at '%s'", b->nodes[j].key);
			return GRADEQ_ERR_INVALID;
		}
		verdict = j < 0 ? ST_ORPHAN : b->state[j];
		for (j = (long)i; j >= 0 && b->state[j] == ST_WALK; j = b->nodes[j].parent)
			b->state[j] = verdict;
	}
	return 0;
}

/* Records block v, just reached by the walk at stack depth 'depth'. */
static void visit(struct gradeq_course *c, struct build *b, size_t v, size_t depth)
{
	const struct gradeq_block_in *in = b->nodes[v].in;
	struct subsection *s;
	struct problem *p;

	if (in->type == GRADEQ_BLOCK_PROBLEM) {
		p = &c->problems[c->nproblems++];
		p->key = b->nodes[v].key;
		p->graded = in->graded;
		p->has_weight = in->has_weight;
		p->weight = in->weight;
		/* Rule 1 without a row: nothing earned, the block's max_score
		 * possible (0 when NULL; the platform skips such a problem,
		 * which sums the same). */
		weigh(p, 0.0, in->has_max_score ? in->max_score : 0.0, &p->def_earned,
		      &p->def_possible);
	} else if (in->type == GRADEQ_BLOCK_SEQUENTIAL) {
		s = &c->subs[c->nsubs];
		s->key = b->nodes[v].key;
		s->format = b->nodes[v].format;
		s->graded = in->graded;
		s->pbegin = c->nproblems;
		b->stack_sub[depth] = c->nsubs++;
	}
}

/* Depth-first walk from the root, children by position: numbers problems in
 * course order and records each sequential's range of them. The platform
 * gathers a subsection's problems by a post-order walk of its subtree; for
 * leaves that is the same order. */
static int walk(struct gradeq_course *c, struct build *b, size_t n, size_t root)
{
	size_t depth = 0, *next = NULL, v, np = 0, ns = 0;
	int rc = 0;

	for (size_t i = 0; i < n; i++) {
		if (b->state[i] != ST_ROOTED)
			continue;
		np += b->nodes[i].in->type == GRADEQ_BLOCK_PROBLEM;
		ns += b->nodes[i].in->type == GRADEQ_BLOCK_SEQUENTIAL;
	}
	if (np > INT_MAX)
		return GRADEQ_ERR_INVALID;
	c->problems = calloc(np ? np : 1, sizeof(*c->problems));
	c->subs = calloc(ns ? ns : 1, sizeof(*c->subs));
	b->stack = malloc(n * sizeof(*b->stack));
	b->stack_sub = malloc(n * sizeof(*b->stack_sub));
	next = calloc(n, sizeof(*next));
	if (!c->problems || !c->subs || !b->stack || !b->stack_sub || !next) {
		rc = GRADEQ_ERR_NOMEM;
		goto out;
	}
	b->stack[depth] = root;
	visit(c, b, root, depth++);
	while (depth) {
		v = b->stack[depth - 1];
		if (next[v] < b->nodes[v].nchild) {
			v = (size_t)(b->children[b->nodes[v].child0 + next[v]++] - b->nodes);
			b->stack[depth] = v;
			visit(c, b, v, depth++);
			continue;
		}
		if (b->nodes[v].in->type == GRADEQ_BLOCK_SEQUENTIAL)
			c->subs[b->stack_sub[depth - 1]].pend = c->nproblems;
		depth--;
	}
out:
	free(next);
	return rc;
}

/* Problem lookup: the key-sorted block list restricted to problems. */
static int index_problems(struct gradeq_course *c, struct build *b, size_t n)
{
	size_t k = 0, found;
	struct pkey *pk;
	long lo, hi, mid;

	c->pindex = malloc((c->nproblems ? c->nproblems : 1) * sizeof(*c->pindex));
	if (!c->pindex)
		return GRADEQ_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		struct node *nd = b->sorted[i];

		if (nd->in->type != GRADEQ_BLOCK_PROBLEM || b->state[nd - b->nodes] != ST_ROOTED)
			continue;
		pk = &c->pindex[k++];
		pk->key = nd->key;
		pk->index = -1;
	}
	/* Problems keep their arena key pointers: match them to DFS indexes. */
	for (size_t i = 0; i < c->nproblems; i++) {
		lo = 0;
		hi = (long)k - 1;
		found = SIZE_MAX;
		while (lo <= hi) {
			mid = lo + (hi - lo) / 2;
			int r = strcmp(c->problems[i].key, c->pindex[mid].key);

			if (r == 0) {
				found = (size_t)mid;
				break;
			}
			if (r < 0)
				hi = mid - 1;
			else
				lo = mid + 1;
		}
		if (found == SIZE_MAX)
			return GRADEQ_ERR_INVALID;
		c->pindex[found].index = (int)i;
	}
	return 0;
}

/* Rule 6: per GRADER entry, its type's graded subsections in course order
 * (CourseGrade.graded_subsections_by_format; grade_sheet.get(type)). A
 * NULL format matches no type. Entries with the same type each see them. */
static int bind_graders(struct gradeq_course *c)
{
	const struct gradeq_policy *p = c->policy;
	size_t total = 0, k = 0, cnt;

	c->goff = calloc(p->ngraders + 1, sizeof(*c->goff));
	if (!c->goff)
		return GRADEQ_ERR_NOMEM;
	for (size_t e = 0; e < p->ngraders; e++)
		for (size_t s = 0; s < c->nsubs; s++)
			total += c->subs[s].graded && c->subs[s].format &&
				 strcmp(c->subs[s].format, p->graders[e].type) == 0;
	c->gsubs = malloc((total ? total : 1) * sizeof(*c->gsubs));
	if (!c->gsubs)
		return GRADEQ_ERR_NOMEM;
	for (size_t e = 0; e < p->ngraders; e++) {
		c->goff[e] = k;
		for (size_t s = 0; s < c->nsubs; s++)
			if (c->subs[s].graded && c->subs[s].format &&
			    strcmp(c->subs[s].format, p->graders[e].type) == 0)
				c->gsubs[k++] = s;
		cnt = k - c->goff[e];
		if (cnt > c->maxlist)
			c->maxlist = cnt;
	}
	c->goff[p->ngraders] = k;
	return 0;
}

int gradeq_course_new(const struct gradeq_block_in *blocks, size_t nblocks, const char *policy_json,
		      size_t policy_len, struct gradeq_course **out, char *err, size_t errlen)
{
	struct gradeq_course *c = NULL;
	struct build b = {0};
	char dummy[1];
	size_t root = 0;
	int rc;

	if (!err || !errlen) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = '\0';
	if (!out || (!blocks && nblocks))
		return GRADEQ_ERR_INVALID;
	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return GRADEQ_ERR_NOMEM;
	rc = gradeq_policy_parse(policy_json, policy_len, &c->policy, err, errlen);
	if (rc)
		goto out;
	if (!nblocks) {
		course_msg(err, errlen, "no root block (one without a parent)");
		rc = GRADEQ_ERR_INVALID;
		goto out;
	}
	rc = copy_blocks(c, &b, blocks, nblocks, err, errlen);
	if (!rc)
		rc = link_tree(&b, nblocks, &root, err, errlen);
	if (!rc)
		rc = check_cycles(&b, nblocks, root, err, errlen);
	if (!rc)
		rc = walk(c, &b, nblocks, root);
	if (!rc)
		rc = index_problems(c, &b, nblocks);
	if (!rc)
		rc = bind_graders(c);
	if (rc)
		goto out;
	*out = c;
	c = NULL;
out:
	build_release(&b);
	gradeq_course_free(c);
	return rc;
}

void gradeq_course_free(struct gradeq_course *c)
{
	if (!c)
		return;
	gradeq_policy_free(c->policy);
	free(c->strings);
	free(c->problems);
	free(c->pindex);
	free(c->subs);
	free(c->gsubs);
	free(c->goff);
	free(c);
}

size_t gradeq_course_nsubsections(const struct gradeq_course *c)
{
	return c ? c->nsubs : 0;
}

const char *gradeq_course_subsection_key(const struct gradeq_course *c, size_t i)
{
	return c && i < c->nsubs ? c->subs[i].key : NULL;
}

bool gradeq_course_subsection_graded(const struct gradeq_course *c, size_t i, const char **format)
{
	if (!c || i >= c->nsubs) {
		*format = NULL;
		return false;
	}
	*format = c->subs[i].format;
	return c->subs[i].graded;
}

size_t gradeq_course_nproblems(const struct gradeq_course *c)
{
	return c ? c->nproblems : 0;
}

int gradeq_course_problem_index(const struct gradeq_course *c, const char *usage_key)
{
	size_t lo = 0, hi, mid;
	int r;

	if (!c || !usage_key)
		return -1;
	hi = c->nproblems;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		r = strcmp(usage_key, c->pindex[mid].key);
		if (r == 0)
			return c->pindex[mid].index;
		if (r < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -1;
}

const struct gradeq_policy *gradeq_course_policy(const struct gradeq_course *c)
{
	return c ? c->policy : NULL;
}

/* ---- grading one learner ---- */

struct gradeq_grader {
	const struct gradeq_course *c;
	/* per problem */
	double *earned, *possible;
	bool *graded, *attempted;
	int64_t *first;
	uint32_t *seen; /* == stamp when a row for it came in this call */
	uint32_t stamp;
	/* per subsection */
	struct gradeq_subsection_grade *subs;
	double *percent;
	/* per GRADER entry list, in course order */
	double *vals;
	size_t *order, *tmp;
	bool *keep;
};

struct gradeq_grader *gradeq_grader_new(const struct gradeq_course *c)
{
	struct gradeq_grader *g;
	size_t np, ns, nl;

	if (!c)
		return NULL;
	g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	np = c->nproblems ? c->nproblems : 1;
	ns = c->nsubs ? c->nsubs : 1;
	nl = c->maxlist ? c->maxlist : 1;
	g->c = c;
	g->earned = malloc(np * sizeof(*g->earned));
	g->possible = malloc(np * sizeof(*g->possible));
	g->graded = malloc(np * sizeof(*g->graded));
	g->attempted = malloc(np * sizeof(*g->attempted));
	g->first = malloc(np * sizeof(*g->first));
	g->seen = calloc(np, sizeof(*g->seen));
	g->subs = calloc(ns, sizeof(*g->subs));
	g->percent = calloc(ns, sizeof(*g->percent));
	g->vals = malloc(nl * sizeof(*g->vals));
	g->order = malloc(nl * sizeof(*g->order));
	g->tmp = malloc(nl * sizeof(*g->tmp));
	g->keep = malloc(nl * sizeof(*g->keep));
	if (!g->earned || !g->possible || !g->graded || !g->attempted || !g->first || !g->seen ||
	    !g->subs || !g->percent || !g->vals || !g->order || !g->tmp || !g->keep) {
		gradeq_grader_free(g);
		return NULL;
	}
	return g;
}

void gradeq_grader_free(struct gradeq_grader *g)
{
	if (!g)
		return;
	free(g->earned);
	free(g->possible);
	free(g->graded);
	free(g->attempted);
	free(g->first);
	free(g->seen);
	free(g->subs);
	free(g->percent);
	free(g->vals);
	free(g->order);
	free(g->tmp);
	free(g->keep);
	free(g);
}

/* Rules 1 to 3 for every problem: defaults, then the learner's rows. */
static int score_problems(struct gradeq_grader *g, const struct gradeq_score *scores, size_t n)
{
	const struct gradeq_course *c = g->c;
	const struct problem *p;
	double raw_earned;
	size_t i;

	if (++g->stamp == 0) {
		memset(g->seen, 0, (c->nproblems ? c->nproblems : 1) * sizeof(*g->seen));
		g->stamp = 1;
	}
	for (i = 0; i < c->nproblems; i++) {
		g->earned[i] = c->problems[i].def_earned;
		g->possible[i] = c->problems[i].def_possible;
		g->attempted[i] = false;
	}
	for (size_t k = 0; k < n; k++) {
		const struct gradeq_score *s = &scores[k];

		if (s->problem < 0 || (size_t)s->problem >= c->nproblems)
			continue;
		i = (size_t)s->problem;
		if (g->seen[i] == g->stamp)
			return GRADEQ_ERR_INVALID;
		g->seen[i] = g->stamp;
		/* scores._get_score_from_csm(): a row counts only with a
		 * max_grade; a NULL grade then earns 0 and is no attempt. */
		if (!s->has_max_grade)
			continue;
		p = &c->problems[i];
		raw_earned = s->has_grade ? s->grade : 0.0;
		g->attempted[i] = s->has_grade;
		g->first[i] = s->created_us;
		weigh(p, raw_earned, s->max_grade, &g->earned[i], &g->possible[i]);
	}
	/* Rule 3, scores.get_score(): graded needs a positive possible. */
	for (i = 0; i < c->nproblems; i++)
		g->graded[i] = c->problems[i].graded && g->possible[i] > 0;
	return 0;
}

/* Rules 4 and 5 (graders.aggregate_scores, scores.compute_percent). */
static void sum_subsection(struct gradeq_grader *g, size_t s)
{
	const struct subsection *sub = &g->c->subs[s];
	struct gradeq_subsection_grade *r = &g->subs[s];
	double ea = 0.0, pa = 0.0, eg = 0.0, pg = 0.0, t;

	r->attempted = false;
	r->first_attempted_us = 0;
	for (size_t i = sub->pbegin; i < sub->pend; i++) {
		ea += g->earned[i];
		pa += g->possible[i];
		if (g->graded[i]) {
			eg += g->earned[i];
			pg += g->possible[i];
		}
		if (g->attempted[i] && (!r->attempted || g->first[i] < r->first_attempted_us)) {
			r->attempted = true;
			r->first_attempted_us = g->first[i];
		}
	}
	r->earned_all = ea;
	r->possible_all = pa;
	r->earned_graded = eg;
	r->possible_graded = pg;
	/* numpy.around(x, 4): rint(x * 10000.) / 10000., half to even. */
	if (pg > 0) {
		t = eg / pg;
		t = t * 1e4;
		g->percent[s] = rint(t) / 1e4;
	} else {
		g->percent[s] = 0.0;
	}
}

/* Stable merge sort of order[0..n) by descending val[], as Python's
 * sorted(key=lambda x: -x['percent']) orders it. */
static void sort_desc(struct gradeq_grader *g, size_t n)
{
	const double *val = g->vals;
	size_t *a = g->order, *t = g->tmp, *sw;

	for (size_t w = 1; w < n; w *= 2) {
		for (size_t lo = 0; lo < n; lo += 2 * w) {
			size_t mid = lo + w < n ? lo + w : n;
			size_t hi = lo + 2 * w < n ? lo + 2 * w : n;
			size_t i = lo, j = mid, k = lo;

			/* Take from the right run only when strictly greater:
			 * ties keep course order. */
			while (i < mid && j < hi)
				t[k++] = val[a[j]] > val[a[i]] ? a[j++] : a[i++];
			while (i < mid)
				t[k++] = a[i++];
			while (j < hi)
				t[k++] = a[j++];
		}
		sw = a;
		a = t;
		t = sw;
	}
	if (a != g->order)
		memcpy(g->order, a, n * sizeof(*a));
}

/* Rule 7 for one GRADER entry (AssignmentFormatGrader.grade and
 * total_with_drops): the average of the kept percents. The min_count
 * padding is not materialised: pads are zeros with indexes after every real
 * entry, so in the stable descending order they sit after the real zeros
 * (and -0.0) and before the negatives, and adding them to the sum changes
 * nothing. */
static double grade_entry(struct gradeq_grader *g, size_t e)
{
	const struct gradeq_course *c = g->c;
	const struct gradeq_grader_entry *ge = &c->policy->graders[e];
	const size_t *list = c->gsubs + c->goff[e];
	size_t nlist = c->goff[e + 1] - c->goff[e], n = 0, total, npad, nkeep, vpos;
	double sum = 0.0;

	/* Rule 6: only subsections with something graded to score. */
	for (size_t k = 0; k < nlist; k++)
		if (g->subs[list[k]].possible_graded > 0)
			g->vals[n++] = g->percent[list[k]];
	total = n > (size_t)ge->min_count ? n : (size_t)ge->min_count;
	if ((size_t)ge->drop_count >= total)
		return 0.0; /* everything dropped (or nothing there): 0 */
	npad = total - n;
	nkeep = total - (size_t)ge->drop_count;
	for (size_t k = 0; k < n; k++)
		g->order[k] = k;
	if (ge->drop_count)
		sort_desc(g, n);
	/* The last drop_count places of the full sorted list are dropped. */
	for (size_t r = 0; r < n; r++) {
		vpos = g->vals[g->order[r]] < 0 ? r + npad : r;
		g->keep[g->order[r]] = vpos < nkeep;
	}
	for (size_t k = 0; k < n; k++)
		if (g->keep[k])
			sum += g->vals[k];
	return sum / (double)nkeep;
}

/* Rule 8, CourseGrade._compute_percent(): round_away_from_zero(raw * 100 +
 * 0.05) / 100, with round_away_from_zero's floor(x + 0.5) for x >= 0 and
 * ceil(x - 0.5) below (DESIGN.md writes only the first; they agree for the
 * non-negative grades that occur). */
static double percent_grade(double raw)
{
	double x = raw * 100.0;

	x = x + 0.05;
	if (x >= 0)
		x = floor(x + 0.5);
	else
		x = ceil(x - 0.5);
	return x / 100.0;
}

int gradeq_grader_grade(struct gradeq_grader *g, const struct gradeq_score *scores, size_t nscores,
			const struct gradeq_subsection_grade **subs,
			struct gradeq_course_grade *course)
{
	const struct gradeq_policy *p;
	double raw = 0.0, wp, pct;
	int rc;

	if (!g || (!scores && nscores) || !subs || !course)
		return GRADEQ_ERR_INVALID;
	p = g->c->policy;
	rc = score_problems(g, scores, nscores);
	if (rc)
		return rc;
	for (size_t s = 0; s < g->c->nsubs; s++)
		sum_subsection(g, s);
	/* WeightedSubsectionsGrader.grade(): weights are not normalised. */
	for (size_t e = 0; e < p->ngraders; e++) {
		wp = grade_entry(g, e) * p->graders[e].weight;
		raw += wp;
	}
	pct = percent_grade(raw);
	/* Rule 9, _compute_letter_grade() and _compute_passed(). */
	course->percent = pct;
	course->letter = "";
	for (size_t i = 0; i < p->ncutoffs; i++) {
		if (pct >= p->cutoffs[i].cutoff) {
			course->letter = p->cutoffs[i].letter;
			break;
		}
	}
	course->passed = isfinite(p->pass_cutoff) && pct >= p->pass_cutoff;
	*subs = g->subs;
	return 0;
}
