/* Shared by the grading tests: build course_blocks rows and score rows. */
#ifndef GRADEQ_TEST_GRADING_HELPERS_H
#define GRADEQ_TEST_GRADING_HELPERS_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradeq/grading.h"

/* NAN stands for SQL NULL in these helpers. */
#define NUL NAN

struct tb {
	struct gradeq_block_in *b;
	size_t n, cap;
	char **owned;
	size_t nowned, capowned;
};

static inline const char *tb_str(struct tb *t, const char *fmt, ...) GRADEQ_PRINTF(2, 3);

static inline const char *tb_str(struct tb *t, const char *fmt, ...)
{
	char buf[256], *s;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	s = strdup(buf);
	if (t->nowned == t->capowned) {
		t->capowned = t->capowned ? 2 * t->capowned : 64;
		t->owned = realloc(t->owned, t->capowned * sizeof(*t->owned));
	}
	t->owned[t->nowned++] = s;
	return s;
}

static inline struct gradeq_block_in *tb_add(struct tb *t, const char *key, const char *parent,
					     enum gradeq_block_type type, int pos)
{
	struct gradeq_block_in *b;

	if (t->n == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 64;
		t->b = realloc(t->b, t->cap * sizeof(*t->b));
	}
	b = &t->b[t->n++];
	memset(b, 0, sizeof(*b));
	b->usage_key = key;
	b->parent_key = parent;
	b->type = type;
	b->position = pos;
	b->graded = true;
	return b;
}

static inline void tb_seq(struct tb *t, const char *key, const char *parent, int pos,
			  const char *format, bool graded)
{
	struct gradeq_block_in *b = tb_add(t, key, parent, GRADEQ_BLOCK_SEQUENTIAL, pos);

	b->format = format;
	b->graded = graded;
}

static inline void tb_prob(struct tb *t, const char *key, const char *parent, int pos,
			   double max_score, double weight, bool graded)
{
	struct gradeq_block_in *b = tb_add(t, key, parent, GRADEQ_BLOCK_PROBLEM, pos);

	b->has_max_score = !isnan(max_score);
	b->max_score = b->has_max_score ? max_score : 0;
	b->has_weight = !isnan(weight);
	b->weight = b->has_weight ? weight : 0;
	b->graded = graded;
}

static inline void tb_release(struct tb *t)
{
	for (size_t i = 0; i < t->nowned; i++)
		free(t->owned[i]);
	free(t->owned);
	free(t->b);
	memset(t, 0, sizeof(*t));
}

static inline struct gradeq_score score_row(const struct gradeq_course *c, const char *key,
					    double grade, double max_grade, int64_t created)
{
	struct gradeq_score s = {0};

	s.problem = gradeq_course_problem_index(c, key);
	s.has_grade = !isnan(grade);
	s.grade = s.has_grade ? grade : 0;
	s.has_max_grade = !isnan(max_grade);
	s.max_grade = s.has_max_grade ? max_grade : 0;
	s.created_us = created;
	return s;
}

#endif
