#include "store/plan.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "gradeq/parse.h"

static const char courses_sql[] =
	"SELECT c.course_id, (SELECT count(*) FROM course_blocks b WHERE b.course_id = c.course_id"
	"  AND b.block_type = 'sequential'),"
	" (SELECT count(*) FROM student_courseenrollment e WHERE e.course_id = c.course_id)"
	" FROM courses c WHERE $1::text IS NULL OR c.course_id = $1 ORDER BY 1";

static const char jobs_sql[] =
	"SELECT j.course_id, j.graded, j.ms_total FROM gradeq_jobs j"
	" WHERE j.state = 'complete' AND j.graded > 0 AND j.ms_total IS NOT NULL"
	" AND ($1::text IS NULL OR j.course_id = $1)";

static long count(const PGresult *res, int row, int col)
{
	long v;

	return gradeq_parse_long(PQgetvalue(res, row, col), 0, LONG_MAX, &v) ? 0 : v;
}

static double number(const PGresult *res, int row, int col)
{
	double v;

	return gradeq_parse_double(PQgetvalue(res, row, col), NULL, -1e300, 1e300, &v) ? 0 : v;
}

/* The row of course id in the courses result (sorted), or -1. */
static int find_course(const PGresult *cres, const char *cid)
{
	int lo = 0, hi = PQntuples(cres) - 1;

	while (lo <= hi) {
		int mid = (lo + hi) / 2, cmp = strcmp(PQgetvalue(cres, mid, 0), cid);

		if (cmp == 0)
			return mid;
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

int gradeq_store_plan_samples(struct gradeq_store *st, const char *course,
			      struct gradeq_plan_samples *out)
{
	const char *params[1] = {course};
	PGresult *cres = NULL, *jres = NULL;
	int rc = 0, nc, nj;

	memset(out, 0, sizeof(*out));
	cres = PQexecParams(gradeq_store_conn(st), courses_sql, 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(cres) != PGRES_TUPLES_OK) {
		rc = gradeq_store_result_error(st, cres, "reading courses");
		goto out;
	}
	if (course && PQntuples(cres) == 0) {
		rc = gradeq_error(GRADEQ_ERR_NOT_FOUND, "unknown course '%s'", course);
		goto out;
	}
	jres = PQexecParams(gradeq_store_conn(st), jobs_sql, 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(jres) != PGRES_TUPLES_OK) {
		rc = gradeq_store_result_error(st, jres, "reading jobs");
		goto out;
	}
	nc = PQntuples(cres);
	nj = PQntuples(jres);
	out->courses = calloc(nc ? (size_t)nc : 1, sizeof(*out->courses));
	out->jobs = calloc(nj ? (size_t)nj : 1, sizeof(*out->jobs));
	if (!out->courses || !out->jobs) {
		rc = GRADEQ_ERR_NOMEM;
		goto out;
	}
	for (int i = 0; i < nc; i++) {
		out->courses[i].sequentials = count(cres, i, 1);
		out->courses[i].enrollments = count(cres, i, 2);
	}
	out->ncourses = (size_t)nc;
	/* jobs: their course looked up in the courses result */
	for (int i = 0; i < nj; i++) {
		int at = find_course(cres, PQgetvalue(jres, i, 0));

		if (at < 0)
			continue;
		out->jobs[out->njobs].course = (size_t)at;
		out->jobs[out->njobs].graded = number(jres, i, 1);
		out->jobs[out->njobs].ms = number(jres, i, 2);
		out->njobs++;
	}
out:
	PQclear(cres);
	PQclear(jres);
	return rc;
}

void gradeq_plan_samples_release(struct gradeq_plan_samples *s)
{
	free(s->courses);
	free(s->jobs);
	memset(s, 0, sizeof(*s));
}
