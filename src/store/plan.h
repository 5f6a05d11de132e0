/* The SQL behind gradeq-admin plan: the courses and the completed jobs'
 * timings. */
#ifndef GRADEQ_STORE_PLAN_H
#define GRADEQ_STORE_PLAN_H

#include <stddef.h>

#include "gradeq/store.h"

struct gradeq_plan_course {
	long sequentials; /* its size: the class comes from it */
	long enrollments;
};

struct gradeq_plan_job {
	size_t course; /* index into gradeq_plan_samples.courses */
	double graded; /* learners graded */
	double ms;     /* the batch's total time */
};

struct gradeq_plan_samples {
	struct gradeq_plan_course *courses;
	size_t ncourses;
	struct gradeq_plan_job *jobs; /* those of a listed course only */
	size_t njobs;
};

/* Reads every course (or the one named) with its size and enrollments, and
 * every completed job with a timing. GRADEQ_ERR_NOT_FOUND for an unknown
 * course. The caller releases *out with gradeq_plan_samples_release, also
 * after an error. */
int gradeq_store_plan_samples(struct gradeq_store *st, const char *course,
			      struct gradeq_plan_samples *out) GRADEQ_MUST_CHECK;
void gradeq_plan_samples_release(struct gradeq_plan_samples *s);

#endif
