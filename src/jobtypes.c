/* The job type registry: one row per type, the only list of them. The
 * codec reads a type's fields through it and the consumer dispatches
 * through it (docs/job-types.md shows how to add a row). */
#include "gradeq/jobtype.h"

#include <string.h>

#include "gradeq/job.h"
#include "gradeq/report_job.h"
#include "gradeq/worker.h"

static int grade_batch(const struct gradeq_jobctx *ctx, const struct gradeq_job *job,
		       struct gradeq_job_stats *stats)
{
	return gradeq_worker_process(ctx->worker, ctx->st, job, stats);
}

static const char *const no_states[] = {NULL};
/* the output a report's parts build (gradeq_outputs.state) */
static const char *const output_states[] = {"pending", "sealed", "failed", "deleted", NULL};

static const struct gradeq_jobtype types[] = {
	{
		.name = "grades.compute",
		.summary = "grade a batch of learners and store their grades",
		.handle = grade_batch,
		.states = no_states,
	},
	{
		.name = GRADEQ_REPORT_PART_TYPE,
		.summary = "write a batch of learners' stored grades as one part of a report",
		.decode_args = gradeq_report_part_decode,
		.encode_args = gradeq_report_part_encode,
		.check_args = gradeq_report_part_check,
		.free_args = gradeq_report_part_free,
		.handle = gradeq_report_part_handle,
		.on_dead = gradeq_report_part_dead,
		.states = output_states,
	},
};

const struct gradeq_jobtype *gradeq_jobtype_default(void)
{
	return &types[0];
}

const struct gradeq_jobtype *gradeq_jobtype_find(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strlen(types[i].name) == len && memcmp(types[i].name, name, len) == 0)
			return &types[i];
	return NULL;
}

const struct gradeq_jobtype *gradeq_jobtypes(size_t *n)
{
	*n = sizeof(types) / sizeof(types[0]);
	return types;
}
