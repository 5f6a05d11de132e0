/* libFuzzer target for the job decoder, over every registered job type
 * (the codec reads each type's args through the registry): hostile bodies
 * must be refused without crashing or leaking, and whatever decodes must
 * survive a re-encode and decode unchanged. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gradeq/job.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same_job(const struct gradeq_job *a, const struct gradeq_job *b)
{
	if (a->schema != b->schema || strcmp(a->job_id, b->job_id) ||
	    strcmp(a->run_id, b->run_id) || strcmp(a->course_id, b->course_id) ||
	    strcmp(a->release, b->release) || a->nusers != b->nusers ||
	    a->created_us != b->created_us || a->seq != b->seq)
		return 0;
	return a->nusers == 0 || memcmp(a->user_ids, b->user_ids, a->nusers * sizeof(int32_t)) == 0;
}

/* Same type, and the same bytes when encoded: covers every type's args. */
static int same_encoding(const struct gradeq_job *a, const struct gradeq_job *b)
{
	char *ba = NULL, *bb = NULL;
	size_t la = 0, lb = 0;
	int same;

	if (a->type != b->type || gradeq_job_encode(a, a->schema, &ba, &la) < 0 ||
	    gradeq_job_encode(b, b->schema, &bb, &lb) < 0) {
		free(ba);
		return 0;
	}
	same = la == lb && memcmp(ba, bb, la) == 0;
	free(ba);
	free(bb);
	return same;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gradeq_job *job = NULL, *again = NULL;
	char err[256], *buf = NULL;
	size_t len = 0;
	int ret;

	ret = gradeq_job_decode(data, size, &job, err, sizeof(err));
	if (ret < 0) {
		if (job || !err[0] ||
		    (ret != GRADEQ_ERR_DECODE && ret != GRADEQ_ERR_SCHEMA &&
		     ret != GRADEQ_ERR_NOMEM))
			abort();
		return 0;
	}
	/* A decoded job is one the encoder accepts, in its own schema. */
	if (gradeq_job_encode(job, job->schema, &buf, &len) < 0)
		abort();
	if (gradeq_job_decode(buf, len, &again, err, sizeof(err)) < 0 || !same_job(job, again) ||
	    !same_encoding(job, again))
		abort();
	gradeq_job_free(again);
	gradeq_job_free(job);
	free(buf);
	return 0;
}
