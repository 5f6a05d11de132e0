/* Demo and test data generator (gradeq-admin seed): a pure generator of
 * courses, learners and score rows, streamed into the input tables by COPY. */
#include "gradeq/seed.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gradeq/log.h"

#define US_PER_SEC INT64_C(1000000)
#define US_PER_DAY (INT64_C(86400) * US_PER_SEC)

/* ---- PRNG: xoshiro256** seeded through splitmix64 ---- */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static void rng_seed(uint64_t s[4], uint64_t seed)
{
	uint64_t x = seed;

	for (int i = 0; i < 4; i++)
		s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(uint64_t s[4])
{
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

/* Uniform in [0, 1). */
static double rng_unit(uint64_t s[4])
{
	return (double)(rng_next(s) >> 11) * 0x1.0p-53;
}

/* Uniform in [lo, hi]; the modulo bias is irrelevant for these ranges. */
static int rng_range(uint64_t s[4], int lo, int hi)
{
	return lo + (int)(rng_next(s) % (uint64_t)(hi - lo + 1));
}

static bool rng_chance(uint64_t s[4], double p)
{
	return rng_unit(s) < p;
}

/* Uniform microseconds in [0, span). */
static int64_t rng_us(uint64_t s[4], int64_t span)
{
	return span > 0 ? (int64_t)(rng_next(s) % (uint64_t)span) : 0;
}

static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

#define FNV_INIT UINT64_C(0xcbf29ce484222325)

/* ---- dates ---- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int y, unsigned m, unsigned d)
{
	int64_t era, yy = y - (m <= 2);
	unsigned yoe, doy, doe;

	era = (yy >= 0 ? yy : yy - 399) / 400;
	yoe = (unsigned)(yy - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
	int64_t era;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int)((int64_t)yoe + era * 400 + (*m <= 2));
}

static char *put_digits(char *p, unsigned v, int n)
{
	for (int i = n - 1; i >= 0; i--) {
		p[i] = (char)('0' + v % 10);
		v /= 10;
	}
	return p + n;
}

size_t gradeq_seed_format_ts(int64_t us, char *buf, size_t size)
{
	char tmp[40], *p = tmp;
	int64_t days, secs, frac;
	unsigned m, d;
	int y;
	size_t n;

	days = us / US_PER_DAY;
	if (us % US_PER_DAY < 0)
		days--;
	frac = us - days * US_PER_DAY;
	secs = frac / US_PER_SEC;
	frac -= secs * US_PER_SEC;
	civil_from_days(days, &y, &m, &d);
	if (y < 0 || y > 9999)
		y = y < 0 ? 0 : 9999;
	p = put_digits(p, (unsigned)y, 4);
	*p++ = '-';
	p = put_digits(p, m, 2);
	*p++ = '-';
	p = put_digits(p, d, 2);
	*p++ = ' ';
	p = put_digits(p, (unsigned)(secs / 3600), 2);
	*p++ = ':';
	p = put_digits(p, (unsigned)(secs / 60 % 60), 2);
	*p++ = ':';
	p = put_digits(p, (unsigned)(secs % 60), 2);
	*p++ = '.';
	p = put_digits(p, (unsigned)frac, 6);
	memcpy(p, "+00", 4);
	n = (size_t)(p - tmp) + 3;
	if (size) {
		size_t k = n < size ? n : size - 1;

		memcpy(buf, tmp, k);
		buf[k] = '\0';
	}
	return n;
}

/* ---- course structure ---- */

struct seed_class {
	const char *name;
	int seq_lo, seq_hi;   /* sequentials in the course */
	int chap_lo, chap_hi; /* sequentials per chapter */
	int midterms;
	int prob_lo, prob_hi; /* problems per sequential */
	int vert_lo, vert_hi; /* units (verticals) per sequential, at most 4 */
};

static const struct seed_class seed_classes[] = {
	{"small", 8, 12, 2, 5, 1, 3, 6, 1, 3},
	{"medium", 36, 44, 3, 7, 1, 6, 10, 2, 4},
	{"large", 110, 130, 4, 10, 2, 6, 10, 2, 4},
};

#define MAX_VERTICALS 4
/* video and html blocks per unit: 0 to this */
#define MAX_OTHERS 2

#define NCLASSES (sizeof(seed_classes) / sizeof(seed_classes[0]))

static const char FMT_HW[] = "Homework";
static const char FMT_LAB[] = "Lab";
static const char FMT_MID[] = "Midterm Exam";
static const char FMT_FINAL[] = "Final Exam";
static const char FMT_QUIZ[] = "Quiz"; /* graded, but no GRADER entry */

const char *gradeq_seed_block_type_name(enum gradeq_block_type t)
{
	switch (t) {
	case GRADEQ_BLOCK_COURSE: return "course";
	case GRADEQ_BLOCK_CHAPTER: return "chapter";
	case GRADEQ_BLOCK_SEQUENTIAL: return "sequential";
	case GRADEQ_BLOCK_VERTICAL: return "vertical";
	case GRADEQ_BLOCK_PROBLEM: return "problem";
	default: return "other";
	}
}

struct builder {
	struct gradeq_seed_course *c;
	size_t cap;
	uint64_t rng[4];
	int err;
};

/* Appends a block with fresh random id; returns its index or -1 (no memory,
 * recorded in b->err). */
static int add_block(struct builder *b, enum gradeq_block_type type, int parent, int position)
{
	struct gradeq_seed_course *c = b->c;
	struct gradeq_seed_block *blk;
	uint64_t hi, lo;

	if (b->err)
		return -1;
	if (c->nblocks == b->cap) {
		size_t ncap = b->cap ? b->cap * 2 : 256;
		struct gradeq_seed_block *nb = realloc(c->blocks, ncap * sizeof(*nb));

		if (!nb) {
			b->err = GRADEQ_ERR_NOMEM;
			return -1;
		}
		c->blocks = nb;
		b->cap = ncap;
	}
	blk = &c->blocks[c->nblocks];
	memset(blk, 0, sizeof(*blk));
	blk->type = type;
	blk->parent = parent;
	blk->position = position;
	blk->graded = true;
	blk->type_name = gradeq_seed_block_type_name(type);
	hi = rng_next(b->rng);
	lo = rng_next(b->rng);
	snprintf(blk->id, sizeof(blk->id), "%016llx%016llx", (unsigned long long)hi,
		 (unsigned long long)lo);
	if (type == GRADEQ_BLOCK_SEQUENTIAL)
		c->nsequentials++;
	else if (type == GRADEQ_BLOCK_PROBLEM)
		c->nproblems++;
	return (int)c->nblocks++;
}

static void add_problem(struct builder *b, int parent, int position)
{
	static const double weights[] = {1, 1, 1, 2, 0.5, 3, 5, 10};
	int i = add_block(b, GRADEQ_BLOCK_PROBLEM, parent, position);
	struct gradeq_seed_block *p;
	double u;

	if (i < 0)
		return;
	p = &b->c->blocks[i];
	p->graded = !rng_chance(b->rng, 0.05);
	u = rng_unit(b->rng);
	if (u < 0.60) {
		p->has_weight = false;
	} else if (u < 0.96) {
		p->has_weight = true;
		p->weight = weights[rng_range(b->rng, 0,
					      (int)(sizeof(weights) / sizeof(weights[0])) - 1)];
	} else {
		p->has_weight = true;
		p->weight = 0;
	}
	u = rng_unit(b->rng);
	if (u < 0.04) {
		p->has_max_score = false;
	} else {
		p->has_max_score = true;
		p->max_score = u < 0.40 ? 1 : rng_range(b->rng, 1, 10);
	}
}

/* A unit (vertical) of n problems and up to MAX_OTHERS videos and html
 * blocks among them; now and then some of the problems sit in a vertical
 * nested inside it. */
static void add_vertical(struct builder *b, int parent, int position, int n)
{
	int v = add_block(b, GRADEQ_BLOCK_VERTICAL, parent, position);
	int nested = 0, nestpos = -1, nothers, len = 0;
	char plan[32]; /* per child position: 'p'roblem, 'n'ested unit, 'o'ther */

	if (v < 0)
		return;
	if (n >= 2 && rng_chance(b->rng, 0.15)) {
		nested = rng_range(b->rng, 1, n - 1);
		nestpos = rng_range(b->rng, 0, n - nested);
	}
	for (int pos = 0, done = 0; done < n - nested || pos == nestpos; pos++) {
		plan[len++] = pos == nestpos ? 'n' : 'p';
		done += pos != nestpos;
	}
	nothers = rng_range(b->rng, 0, MAX_OTHERS);
	for (int k = 0; k < nothers; k++) {
		int at = rng_range(b->rng, 0, len);

		memmove(plan + at + 1, plan + at, (size_t)(len - at));
		plan[at] = 'o';
		len++;
	}
	for (int pos = 0; pos < len; pos++) {
		if (plan[pos] == 'n') {
			int nv = add_block(b, GRADEQ_BLOCK_VERTICAL, v, pos);

			for (int q = 0; q < nested && nv >= 0; q++)
				add_problem(b, nv, q);
		} else if (plan[pos] == 'o') {
			int o = add_block(b, GRADEQ_BLOCK_OTHER, v, pos);

			if (o >= 0) {
				b->c->blocks[o].graded = false;
				b->c->blocks[o].type_name =
					rng_chance(b->rng, 0.6) ? "video" : "html";
			}
		} else {
			add_problem(b, v, pos);
		}
	}
}

static void add_sequential(struct builder *b, const struct seed_class *cls, int parent,
			   int position, bool graded, const char *format)
{
	int counts[MAX_VERTICALS] = {0};
	int s = add_block(b, GRADEQ_BLOCK_SEQUENTIAL, parent, position);
	int nprob, nvert;

	if (s < 0)
		return;
	b->c->blocks[s].graded = graded;
	b->c->blocks[s].format = format;
	nprob = rng_range(b->rng, cls->prob_lo, cls->prob_hi);
	nvert = rng_range(b->rng, cls->vert_lo, cls->vert_hi);
	/* every unit gets a problem or not at random: some hold none */
	for (int i = 0; i < nprob; i++)
		counts[rng_range(b->rng, 0, nvert - 1)]++;
	for (int v = 0; v < nvert; v++)
		add_vertical(b, s, v, counts[v]);
}

/* Assignment types of the subsections in course order: the first two are a
 * homework and a lab, the last is the final, midterms in between; the rest
 * mostly homeworks and labs, with ungraded ones and a few odd cases (an
 * ungraded subsection that still has a format, a graded one without a
 * format, a graded one whose type the policy does not know). */
static void assign_formats(uint64_t rng[4], const struct seed_class *cls, int nseq,
			   const char **fmt, bool *graded)
{
	for (int i = 0; i < nseq; i++) {
		double u = rng_unit(rng);

		graded[i] = true;
		if (u < 0.42) {
			fmt[i] = FMT_HW;
		} else if (u < 0.72) {
			fmt[i] = FMT_LAB;
		} else if (u < 0.84) {
			fmt[i] = NULL;
			graded[i] = false;
		} else if (u < 0.91) {
			fmt[i] = FMT_HW;
			graded[i] = false;
		} else if (u < 0.95) {
			fmt[i] = NULL;
		} else {
			fmt[i] = FMT_QUIZ;
		}
	}
	fmt[0] = FMT_HW;
	graded[0] = true;
	fmt[1] = FMT_LAB;
	graded[1] = true;
	for (int m = 1; m <= cls->midterms; m++) {
		fmt[nseq * m / (cls->midterms + 1)] = FMT_MID;
		graded[nseq * m / (cls->midterms + 1)] = true;
	}
	fmt[nseq - 1] = FMT_FINAL;
	graded[nseq - 1] = true;
}

static int count_format(const char **fmt, const bool *graded, int nseq, const char *f)
{
	int n = 0;

	for (int i = 0; i < nseq; i++)
		n += graded[i] && fmt[i] == f;
	return n;
}

/* The platform's default policy shape, min_count fitted to the course (now
 * and then one more than there are, so that zero padding happens), letter
 * grades for some courses. */
static int build_policy(struct builder *b, const char **fmt, const bool *graded, int nseq,
			bool letters)
{
	int hw = count_format(fmt, graded, nseq, FMT_HW);
	int lab = count_format(fmt, graded, nseq, FMT_LAB);
	int mid = count_format(fmt, graded, nseq, FMT_MID);
	int hw_min = hw + rng_chance(b->rng, 0.3);
	int lab_min = lab + rng_chance(b->rng, 0.3);
	int hw_drop = hw >= 6 ? 2 : hw >= 3 ? 1 : 0;
	int lab_drop = lab >= 6 ? 2 : lab >= 3 ? 1 : 0;
	char buf[1024];
	int n;

	n = snprintf(buf, sizeof(buf),
		     "{\"GRADER\": ["
		     "{\"type\": \"Homework\", \"min_count\": %d, \"drop_count\": %d,"
		     " \"short_label\": \"HW\", \"weight\": 0.15}, "
		     "{\"type\": \"Lab\", \"min_count\": %d, \"drop_count\": %d,"
		     " \"short_label\": \"Lab\", \"weight\": 0.15}, "
		     "{\"type\": \"Midterm Exam\", \"min_count\": %d, \"drop_count\": 0,"
		     " \"short_label\": \"Midterm\", \"weight\": 0.3}, "
		     "{\"type\": \"Final Exam\", \"min_count\": 1, \"drop_count\": 0,"
		     " \"short_label\": \"Final\", \"weight\": 0.4}], "
		     "\"GRADE_CUTOFFS\": %s}",
		     hw_min, hw_drop, lab_min, lab_drop, mid,
		     letters ? "{\"A\": 0.9, \"B\": 0.75, \"C\": 0.6}" : "{\"Pass\": 0.5}");
	if (n < 0 || (size_t)n >= sizeof(buf))
		return gradeq_error(GRADEQ_ERR_INVALID, "grading policy too long");
	b->c->policy_json = strdup(buf);
	return b->c->policy_json ? 0 : GRADEQ_ERR_NOMEM;
}

static int build_tree(struct builder *b, const struct seed_class *cls, bool letters)
{
	const char **fmt = NULL;
	bool *graded = NULL;
	int nseq, root, s = 0, chapter = 0, rc = 0;

	nseq = rng_range(b->rng, cls->seq_lo, cls->seq_hi);
	fmt = calloc((size_t)nseq, sizeof(*fmt));
	graded = calloc((size_t)nseq, sizeof(*graded));
	if (!fmt || !graded) {
		rc = GRADEQ_ERR_NOMEM;
		goto out;
	}
	assign_formats(b->rng, cls, nseq, fmt, graded);
	root = add_block(b, GRADEQ_BLOCK_COURSE, -1, 0);
	while (s < nseq && !b->err) {
		int k = rng_range(b->rng, cls->chap_lo, cls->chap_hi);
		int ch = add_block(b, GRADEQ_BLOCK_CHAPTER, root, chapter++);

		if (k > nseq - s)
			k = nseq - s;
		for (int j = 0; j < k; j++, s++)
			add_sequential(b, cls, ch, j, graded[s], fmt[s]);
	}
	rc = b->err;
	if (!rc)
		rc = build_policy(b, fmt, graded, nseq, letters);
out:
	free(fmt);
	free(graded);
	return rc;
}

static const struct seed_class *find_class(const char *name)
{
	for (size_t i = 0; i < NCLASSES; i++)
		if (name && strcmp(seed_classes[i].name, name) == 0)
			return &seed_classes[i];
	return NULL;
}

bool gradeq_seed_class_known(const char *name)
{
	return find_class(name) != NULL;
}

static char *join3(const char *a, const char *b, const char *c)
{
	size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
	char *s = malloc(la + lb + lc + 1);

	if (!s)
		return NULL;
	memcpy(s, a, la);
	memcpy(s + la, b, lb);
	memcpy(s + la + lb, c, lc + 1);
	return s;
}

static uint64_t gcd_u64(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;

		a = b;
		b = t;
	}
	return a;
}

/* A multiplier coprime with n, so i -> (i*a + c) mod n is a permutation. */
static uint64_t coprime_multiplier(uint64_t n, uint64_t seed)
{
	uint64_t a;

	if (n <= 2)
		return 1;
	a = (seed | 1) % n;
	if (a < 2)
		a = 2;
	while (gcd_u64(a, n) != 1)
		a++;
	return a;
}

/* The inverse of a modulo n (a and n coprime, n < 2^32). */
static uint64_t inverse_mod(uint64_t a, uint64_t n)
{
	int64_t t = 0, newt = 1, r, newr;

	if (n <= 1)
		return 0;
	r = (int64_t)n;
	newr = (int64_t)(a % n);
	while (newr) {
		int64_t q = r / newr, tmp;

		tmp = t - q * newt;
		t = newt;
		newt = tmp;
		tmp = r - q * newr;
		r = newr;
		newr = tmp;
	}
	return (uint64_t)(t < 0 ? t + (int64_t)n : t);
}

static uint64_t course_hash(const struct gradeq_seed_course *c)
{
	uint64_t h = FNV_INIT;
	char num[64];
	int n;

	h = fnv1a(h, c->course_id, strlen(c->course_id) + 1);
	h = fnv1a(h, c->policy_json, strlen(c->policy_json) + 1);
	for (size_t i = 0; i < c->nblocks; i++) {
		const struct gradeq_seed_block *blk = &c->blocks[i];

		n = snprintf(num, sizeof(num), "%d %d %d %d %.17g %.17g|", (int)blk->type,
			     blk->parent, blk->position, blk->graded,
			     blk->has_weight ? blk->weight : -1.0,
			     blk->has_max_score ? blk->max_score : -1.0);
		h = fnv1a(h, num, (size_t)n);
		h = fnv1a(h, blk->id, 32);
		h = fnv1a(h, blk->type_name, strlen(blk->type_name));
		if (blk->format)
			h = fnv1a(h, blk->format, strlen(blk->format));
	}
	return h;
}

static int set_names(struct gradeq_seed_course *c, const char *cls, int ordinal, const char *prefix)
{
	static const char v1[] = "course-v1:";
	char mid[64];

	snprintf(mid, sizeof(mid), "%s%d+2026", cls, ordinal);
	c->course_id = join3(prefix, mid, "");
	if (!c->course_id)
		return GRADEQ_ERR_NOMEM;
	if (strncmp(c->course_id, v1, sizeof(v1) - 1) == 0)
		c->key_base = join3("block-v1:", c->course_id + sizeof(v1) - 1, "");
	else
		c->key_base = join3("block-v1:", c->course_id, "");
	return c->key_base ? 0 : GRADEQ_ERR_NOMEM;
}

static int shuffle_order(struct gradeq_seed_course *c, uint64_t rng[4])
{
	c->order = malloc(c->nblocks * sizeof(*c->order));
	if (!c->order)
		return GRADEQ_ERR_NOMEM;
	for (size_t i = 0; i < c->nblocks; i++)
		c->order[i] = i;
	for (size_t i = c->nblocks; i > 1; i--) {
		size_t j = (size_t)(rng_next(rng) % i), t = c->order[i - 1];

		c->order[i - 1] = c->order[j];
		c->order[j] = t;
	}
	return 0;
}

int gradeq_seed_course_new(const char *cls, int index, int ordinal, int learners, uint64_t seed,
			   const char *prefix, struct gradeq_seed_course **out)
{
	const struct seed_class *k = find_class(cls);
	struct gradeq_seed_course *c = NULL;
	struct builder b;
	int64_t stride, base;
	uint64_t x;
	int rc;

	*out = NULL;
	if (!k)
		return gradeq_error(GRADEQ_ERR_INVALID,
				    "unknown course class '%s' (small, medium, large)",
				    cls ? cls : "");
	if (learners < 0 || learners > GRADEQ_SEED_MAX_LEARNERS)
		return gradeq_error(GRADEQ_ERR_INVALID, "learners %d out of range (0..%d)",
				    learners, GRADEQ_SEED_MAX_LEARNERS);
	if (index < 0 || ordinal < 1)
		return gradeq_error(GRADEQ_ERR_INVALID, "bad course index %d or ordinal %d", index,
				    ordinal);
	/* each course starts a third of its learners after the one before:
	 * with three courses or more, most learners take two or three */
	stride = learners / 3;
	base = 1000 + (int64_t)index * (stride > 0 ? stride : 1);
	if (base + learners > INT32_MAX)
		return gradeq_error(GRADEQ_ERR_INVALID, "user ids of course %d would overflow",
				    index);
	c = calloc(1, sizeof(*c));
	if (!c)
		return GRADEQ_ERR_NOMEM;
	c->learners = learners;
	c->user_base = (int)base;
	/* the structure depends on seed, class and ordinal, not on the list order */
	x = seed ^ fnv1a(FNV_INIT, k->name, strlen(k->name)) ^ ((uint64_t)ordinal << 40);
	c->seed = splitmix64(&x);
	memset(&b, 0, sizeof(b));
	b.c = c;
	rng_seed(b.rng, c->seed);
	rc = set_names(c, k->name, ordinal, prefix ? prefix : GRADEQ_SEED_DEFAULT_PREFIX);
	if (rc)
		goto fail;
	/* letter grades for medium courses of odd ordinal and the others' even */
	rc = build_tree(&b, k, (strcmp(k->name, "medium") == 0) != (ordinal % 2 == 0));
	if (rc)
		goto fail;
	c->start_us = (days_from_civil(2025, 9, 1) + rng_range(b.rng, 0, 60)) * US_PER_DAY;
	c->edited_at_us =
		c->start_us + rng_range(b.rng, 0, 90) * US_PER_DAY + rng_us(b.rng, US_PER_DAY);
	c->perm_a = coprime_multiplier((uint64_t)learners, rng_next(b.rng));
	c->perm_c = learners ? rng_next(b.rng) % (uint64_t)learners : 0;
	c->perm_inv = inverse_mod(c->perm_a, (uint64_t)learners);
	rc = shuffle_order(c, b.rng);
	if (rc)
		goto fail;
	snprintf(c->version, sizeof(c->version), "v1-%016llx", (unsigned long long)course_hash(c));
	*out = c;
	return 0;
fail:
	gradeq_seed_course_free(c);
	return rc;
}

void gradeq_seed_course_free(struct gradeq_seed_course *c)
{
	if (!c)
		return;
	free(c->course_id);
	free(c->key_base);
	free(c->policy_json);
	free(c->blocks);
	free(c->order);
	free(c);
}

size_t gradeq_seed_block_key(const struct gradeq_seed_course *c, size_t i, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%s+type@%s+block@%s", c->key_base, c->blocks[i].type_name,
			 c->blocks[i].id);

	return n < 0 ? 0 : (size_t)n;
}

/* ---- learners and scores ---- */

void gradeq_seed_learner_init(const struct gradeq_seed_course *c, int i,
			      struct gradeq_seed_learner *l)
{
	uint64_t n = (uint64_t)(c->learners > 0 ? c->learners : 1);
	double u;

	memset(l, 0, sizeof(*l));
	rng_seed(l->rng, c->seed ^ ((uint64_t)(unsigned)i * UINT64_C(0xd1b54a32d192ed03)));
	l->user_id = c->user_base + (int)(((uint64_t)(unsigned)i * c->perm_a + c->perm_c) % n);
	l->is_active = !rng_chance(l->rng, 0.07);
	l->mode = rng_chance(l->rng, 0.3) ? "verified" : "audit";
	l->created_us = c->start_us - 30 * US_PER_DAY + rng_us(l->rng, 180 * US_PER_DAY);
	u = rng_unit(l->rng);
	/* the share of the problems attempted is about half on average: a
	 * tenth never start, a tenth do everything, three in ten drop out
	 * on the way, the rest get through most of the course */
	if (u < 0.1) {
		l->reach = 0;
	} else if (u < 0.2) {
		l->reach = 1.0;
		l->everything = true;
	} else if (u < 0.5) {
		l->reach = 0.05 + 0.6 * rng_unit(l->rng);
	} else {
		l->reach = rng_chance(l->rng, 0.6) ? 1.0 : 0.7 + 0.3 * rng_unit(l->rng);
	}
	if (!l->is_active && !l->everything)
		l->reach *= 0.5;
	l->skill = 0.35 + 0.65 * sqrt(rng_unit(l->rng)); /* skewed towards good */
	/* who gets to the end tries nearly everything; verified learners more */
	l->diligence = (strcmp(l->mode, "verified") == 0 ? 0.8 : 0.65) + 0.15 * rng_unit(l->rng);
	if (l->reach >= 1.0)
		l->diligence = 0.85 + 0.15 * rng_unit(l->rng);
	if (l->everything)
		l->diligence = 1.0;
}

int gradeq_seed_learner_index(const struct gradeq_seed_course *c, int k)
{
	uint64_t n = (uint64_t)(c->learners > 0 ? c->learners : 1);
	uint64_t u = ((uint64_t)(unsigned)k + n - c->perm_c % n) % n;

	return (int)(u * c->perm_inv % n);
}

/* Points earned out of max: mostly whole points, sometimes thirds. */
static double points(uint64_t rng[4], double skill, double max)
{
	double frac = skill + (rng_unit(rng) - 0.5) * 0.6;

	if (frac < 0)
		frac = 0;
	if (frac > 1)
		frac = 1;
	if (rng_chance(rng, 0.12))
		return max * rint(frac * 3) / 3;
	return rint(frac * max);
}

static void score_values(uint64_t rng[4], const struct gradeq_seed_block *p, double skill,
			 struct gradeq_seed_score *row)
{
	double u = rng_unit(rng);

	row->has_grade = true;
	row->has_max_grade = true;
	if (u < 0.03) {
		/* no max recorded: the block's max_score applies */
		row->has_max_grade = false;
		row->has_grade = rng_chance(rng, 0.3);
		row->grade = p->has_max_score ? points(rng, skill, p->max_score) : 0;
		return;
	}
	if (u < 0.04) {
		row->max_grade = 0;
		row->has_grade = rng_chance(rng, 0.5);
		row->grade = 0;
		return;
	}
	row->max_grade = p->has_max_score ? p->max_score : rng_range(rng, 1, 5);
	if (rng_chance(rng, 0.02)) /* problem edited since the answer */
		row->max_grade = rng_range(rng, 1, 10);
	if (rng_chance(rng, 0.06)) {
		row->has_grade = false; /* opened, never submitted */
		row->grade = 0;
		return;
	}
	row->grade = points(rng, skill, row->max_grade);
}

/* Whether the learner touched block blk (not a problem) of a reached
 * subsection: the subsection and its chapter always, a unit most of the
 * time, a video or an html block of an opened unit often. */
static bool opened(struct gradeq_seed_learner *l, const struct gradeq_seed_block *blk,
		   bool parent_open)
{
	if (l->everything)
		return true;
	switch (blk->type) {
	case GRADEQ_BLOCK_CHAPTER:
	case GRADEQ_BLOCK_SEQUENTIAL: return true;
	case GRADEQ_BLOCK_VERTICAL: return parent_open && rng_chance(l->rng, 0.9);
	default: return parent_open && rng_chance(l->rng, 0.8);
	}
}

int gradeq_seed_learner_scores(const struct gradeq_seed_course *c, struct gradeq_seed_learner *l,
			       gradeq_seed_score_fn fn, void *arg)
{
	int64_t base = l->created_us > c->start_us ? l->created_us : c->start_us;
	double nseq = c->nsequentials ? (double)c->nsequentials : 1;
	bool seq_graded = false, seq_open = false, unit_open = false, nested_open = false;
	double progress = 0;
	long seq = -1, unit = -1;
	int rc;

	if (l->reach <= 0)
		return 0;
	for (size_t i = 0; i < c->nblocks; i++) {
		const struct gradeq_seed_block *blk = &c->blocks[i];
		struct gradeq_seed_score row;
		bool parent_open;
		double p;

		switch (blk->type) {
		case GRADEQ_BLOCK_COURSE: continue;
		case GRADEQ_BLOCK_CHAPTER:
			/* opened when its first subsection is reached */
			progress = ((double)seq + 1.5) / nseq;
			break;
		case GRADEQ_BLOCK_SEQUENTIAL:
			seq++;
			seq_graded = blk->graded;
			progress = ((double)seq + 0.5) / nseq;
			seq_open = progress <= l->reach;
			break;
		default: break;
		}
		if (progress > l->reach)
			continue;
		/* a unit's parent is the subsection or (nested) another unit;
		 * the other blocks sit in a unit */
		if (blk->type == GRADEQ_BLOCK_VERTICAL)
			parent_open = blk->parent == (int)unit ? unit_open : seq_open;
		else
			parent_open = blk->parent == (int)unit ? unit_open : nested_open;
		if (blk->type != GRADEQ_BLOCK_PROBLEM) {
			bool open = opened(l, blk, parent_open);

			if (blk->type == GRADEQ_BLOCK_VERTICAL) {
				if (c->blocks[blk->parent].type == GRADEQ_BLOCK_SEQUENTIAL) {
					unit = (long)i;
					unit_open = open;
				} else {
					nested_open = open;
				}
			}
			if (!open)
				continue;
			memset(&row, 0, sizeof(row));
			row.block = i;
		} else {
			p = seq_graded ? l->diligence : l->diligence * 0.6;
			if (!blk->graded)
				p *= 0.7;
			if (!l->everything && !rng_chance(l->rng, p))
				continue;
			memset(&row, 0, sizeof(row));
			row.block = i;
			score_values(l->rng, blk, l->skill, &row);
		}
		row.created_us = base + (int64_t)(progress * 120.0 * (double)US_PER_DAY) +
				 rng_us(l->rng, 10 * US_PER_DAY);
		row.modified_us = row.created_us;
		if (rng_chance(l->rng, 0.5))
			row.modified_us += rng_us(l->rng, 7 * US_PER_DAY);
		rc = fn(arg, &row);
		if (rc)
			return rc;
	}
	return 0;
}
