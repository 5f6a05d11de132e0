/* Writes the seed corpus for fuzz_job: valid bodies of every schema this
 * release reads. Run from the source tree:
 *   cc -Iinclude tests/fuzz/gen_job_corpus.c build/libgradeq.a \
 *      $(pkg-config --libs msgpack librabbitmq libpq libconfig jansson \
 *      libcrypto libcurl) -lm -o gen_job_corpus && ./gen_job_corpus tests/fuzz/corpus/job
 * Ids are fixed so the seeds do not change from run to run. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "gradeq/job.h"
#include "gradeq/jobtype.h"
#include "gradeq/report_job.h"

static int write_seed(const char *dir, const char *name, const struct gradeq_job *job, int schema)
{
	char path[4096], *buf = NULL;
	size_t len = 0;
	FILE *fp;
	int ok, ret;

	ret = gradeq_job_encode(job, schema, &buf, &len);
	if (ret < 0) {
		fprintf(stderr, "gen_job_corpus: cannot encode %s: %s\n", name, gradeq_errmsg(ret));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "wb");
	ok = fp && fwrite(buf, 1, len, fp) == len;
	if (fp && fclose(fp) != 0)
		ok = 0;
	free(buf);
	if (!ok) {
		fprintf(stderr, "gen_job_corpus: cannot write %s\n", path);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static int32_t few[] = {1, 42, 2147483647};
	static int32_t many[64];
	struct gradeq_job job = {
		.job_id = "0b7c4e1a-5f0e-4d3a-9c59-2f7f0e6b1a11",
		.run_id = "6f1d2a90-3c4b-4e8f-a1d2-7b9c0e4f5a66",
		.course_id = "course-v1:edX+DemoX+Demo_Course",
		.release = "2026.11",
		.user_ids = few,
		.nusers = 3,
		.created_us = 1767225600123456,
		.seq = 7,
	};
	struct gradeq_report_part part = {.output_id = "9a0e8f4c-1b2d-4c3e-8f5a-6b7c8d9e0f12",
					  .parts = 12};
	int bad = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: gen_job_corpus DIR\n");
		return 2;
	}
	for (int i = 0; i < 64; i++)
		many[i] = 1000 + i * 977;
	bad |= write_seed(argv[1], "schema2-small", &job, 2);
	bad |= write_seed(argv[1], "schema1-small", &job, 1);
	job.user_ids = many;
	job.nusers = 64;
	job.seq = 4000000000u;
	job.course_id = "course-v1:MITx+6.002x+2026_Fall";
	bad |= write_seed(argv[1], "schema2-batch", &job, 2);
	bad |= write_seed(argv[1], "schema1-batch", &job, 1);
	job.user_ids = NULL;
	job.nusers = 0;
	job.created_us = -1;
	bad |= write_seed(argv[1], "schema2-empty", &job, 2);
	bad |= write_seed(argv[1], "schema3-grading-empty", &job, 3);
	job.user_ids = few;
	job.nusers = 3;
	job.created_us = 1767225600123456;
	bad |= write_seed(argv[1], "schema3-grading", &job, 3);
	job.type =
		gradeq_jobtype_find(GRADEQ_REPORT_PART_TYPE, sizeof(GRADEQ_REPORT_PART_TYPE) - 1);
	job.args = &part;
	bad |= write_seed(argv[1], "schema3-report-part", &job, 3);
	return bad ? 1 : 0;
}
