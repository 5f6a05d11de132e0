/* libFuzzer target for grading policies: any bytes must be refused or
 * parsed without crashing or leaking; canonical JSON must be a fixed point
 * (canonical of canonical is itself, with the same hash); a policy that
 * parses must grade a small course. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gradeq/grading.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void grade_small_course(const char *json, size_t len)
{
	static const struct gradeq_block_in blocks[] = {
		{.usage_key = "c", .type = GRADEQ_BLOCK_COURSE},
		{.usage_key = "ch", .parent_key = "c", .type = GRADEQ_BLOCK_CHAPTER},
		{.usage_key = "s1",
		 .parent_key = "ch",
		 .type = GRADEQ_BLOCK_SEQUENTIAL,
		 .graded = true,
		 .format = "Homework"},
		{.usage_key = "s2",
		 .parent_key = "ch",
		 .type = GRADEQ_BLOCK_SEQUENTIAL,
		 .position = 1,
		 .graded = true,
		 .format = "Lab"},
		{.usage_key = "p1",
		 .parent_key = "s1",
		 .type = GRADEQ_BLOCK_PROBLEM,
		 .graded = true,
		 .has_max_score = true,
		 .max_score = 2},
		{.usage_key = "p2",
		 .parent_key = "s2",
		 .type = GRADEQ_BLOCK_PROBLEM,
		 .graded = true,
		 .has_weight = true,
		 .weight = 3,
		 .has_max_score = true,
		 .max_score = 4},
	};
	struct gradeq_score rows[2] = {
		{.problem = 0,
		 .has_grade = true,
		 .grade = 1,
		 .has_max_grade = true,
		 .max_grade = 2},
		{.problem = 1,
		 .has_grade = true,
		 .grade = 3,
		 .has_max_grade = true,
		 .max_grade = 4},
	};
	const struct gradeq_subsection_grade *subs = NULL;
	struct gradeq_course *c = NULL;
	struct gradeq_course_grade cg;
	struct gradeq_grader *g;
	char err[256];

	if (gradeq_course_new(blocks, sizeof(blocks) / sizeof(blocks[0]), json, len, &c, err,
			      sizeof(err)))
		abort(); /* the policy parsed a moment ago */
	g = gradeq_grader_new(c);
	if (g) {
		if (gradeq_grader_grade(g, rows, 2, &subs, &cg) || !cg.letter)
			abort();
		gradeq_grader_free(g);
	}
	gradeq_course_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gradeq_policy *p = NULL;
	char err[256], h1[29], h2[29], *c1 = NULL, *c2 = NULL;
	size_t l1 = 0, l2 = 0;
	const char *json = (const char *)data;

	if (gradeq_policy_parse(json, size, &p, err, sizeof(err)) == 0) {
		if (strlen(p->hash) != 28)
			abort();
		gradeq_policy_free(p);
		grade_small_course(json, size);
	}
	if (gradeq_policy_hash(json, size, h1, err, sizeof(err)) != 0)
		return 0;
	if (gradeq_policy_canonical(json, size, &c1, &l1, err, sizeof(err)) != 0)
		abort();
	if (gradeq_policy_canonical(c1, l1, &c2, &l2, err, sizeof(err)) != 0 || l1 != l2 ||
	    memcmp(c1, c2, l1) != 0)
		abort();
	if (gradeq_policy_hash(c1, l1, h2, err, sizeof(err)) != 0 || strcmp(h1, h2) != 0)
		abort();
	free(c1);
	free(c2);
	return 0;
}
