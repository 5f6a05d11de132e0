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
};

static const struct seed_class seed_classes[] = {
	{"small", 8, 12, 2, 5, 1},
	{"medium", 36, 44, 3, 7, 1},
	{"large", 110, 130, 4, 10, 2},
};

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

/* A unit (vertical) of n problems; now and then some of them sit in a
 * vertical nested inside it. */
static void add_vertical(struct builder *b, int parent, int position, int n)
{
	int v = add_block(b, GRADEQ_BLOCK_VERTICAL, parent, position);
	int nested = 0, nestpos = -1;

	if (v < 0)
		return;
	if (n >= 2 && rng_chance(b->rng, 0.15)) {
		nested = rng_range(b->rng, 1, n - 1);
		nestpos = rng_range(b->rng, 0, n - nested);
	}
	for (int pos = 0, done = 0; done < n - nested || pos == nestpos; pos++) {
		if (pos == nestpos) {
			int nv = add_block(b, GRADEQ_BLOCK_VERTICAL, v, pos);

			for (int q = 0; q < nested && nv >= 0; q++)
				add_problem(b, nv, q);
		} else {
			add_problem(b, v, pos);
			done++;
		}
	}
}

static void add_sequential(struct builder *b, int parent, int position, bool graded,
			   const char *format)
{
	int counts[3] = {0, 0, 0};
	int s = add_block(b, GRADEQ_BLOCK_SEQUENTIAL, parent, position);
	int nprob, nvert;

	if (s < 0)
		return;
	b->c->blocks[s].graded = graded;
	b->c->blocks[s].format = format;
	nprob = rng_range(b->rng, 3, 6);
	nvert = rng_range(b->rng, 1, 3);
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
			add_sequential(b, ch, j, graded[s], fmt[s]);
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
	/* consecutive courses share a quarter of their learners */
	stride = learners - learners / 4;
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
	int n = snprintf(buf, size, "%s+type@%s+block@%s", c->key_base,
			 gradeq_seed_block_type_name(c->blocks[i].type), c->blocks[i].id);

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
	/* many enrollments stop early: a fifth never start, two fifths drop
	 * out, the rest get through most of the course */
	if (u < 0.2)
		l->reach = 0;
	else if (u < 0.6)
		l->reach = 0.02 + 0.5 * rng_unit(l->rng) * rng_unit(l->rng);
	else
		l->reach = rng_chance(l->rng, 0.6) ? 1.0 : 0.6 + 0.4 * rng_unit(l->rng);
	if (!l->is_active)
		l->reach *= 0.5;
	l->skill = 0.35 + 0.65 * sqrt(rng_unit(l->rng)); /* skewed towards good */
	/* who gets to the end tries nearly everything; verified learners more */
	l->diligence = (strcmp(l->mode, "verified") == 0 ? 0.9 : 0.75) + 0.1 * rng_unit(l->rng);
	if (l->reach >= 1.0)
		l->diligence = 0.92 + 0.08 * rng_unit(l->rng);
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

int gradeq_seed_learner_scores(const struct gradeq_seed_course *c, struct gradeq_seed_learner *l,
			       gradeq_seed_score_fn fn, void *arg)
{
	int64_t base = l->created_us > c->start_us ? l->created_us : c->start_us;
	double nseq = c->nsequentials ? (double)c->nsequentials : 1;
	bool seq_graded = false;
	double progress = 0;
	long seq = -1;
	int rc;

	if (l->reach <= 0)
		return 0;
	for (size_t i = 0; i < c->nblocks; i++) {
		const struct gradeq_seed_block *blk = &c->blocks[i];
		struct gradeq_seed_score row;
		double p;

		if (blk->type == GRADEQ_BLOCK_SEQUENTIAL) {
			seq++;
			seq_graded = blk->graded;
			progress = ((double)seq + 0.5) / nseq;
			continue;
		}
		if (blk->type != GRADEQ_BLOCK_PROBLEM || progress > l->reach)
			continue;
		p = seq_graded ? l->diligence : l->diligence * 0.45;
		if (!blk->graded)
			p *= 0.6;
		if (!rng_chance(l->rng, p))
			continue;
		memset(&row, 0, sizeof(row));
		row.block = i;
		score_values(l->rng, blk, l->skill, &row);
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
		if (!find_class(o->classes[i]))
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
