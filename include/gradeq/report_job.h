/* The grade report's part job ("report.part", jobtype.h): one batch of
 * learners whose rows become one ordered part of an output. */
#ifndef GRADEQ_REPORT_JOB_H
#define GRADEQ_REPORT_JOB_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "gradeq/err.h"

struct gradeq_job;
struct gradeq_job_stats;
struct gradeq_jobctx;

#define GRADEQ_REPORT_PART_TYPE "report.part"
/* Most parts in one output: each part is a job row and a stored object
 * (S3 multipart uploads stop at 10,000 parts). */
#define GRADEQ_REPORT_MAX_PARTS 10000

/* The args of a part job; its part number is the job's seq (from 0). */
struct gradeq_report_part {
	char output_id[37]; /* UUID text of the output the part belongs to */
	uint32_t parts;     /* how many parts the output has */
};

/* The type's codec (jobtype.h contracts): the body's "args" is
 * {"output": uuid, "parts": uint32 (1..GRADEQ_REPORT_MAX_PARTS)}. */
int gradeq_report_part_decode(const msgpack_object *args, void **out, char *err,
			      size_t errlen) GRADEQ_MUST_CHECK;
int gradeq_report_part_encode(msgpack_packer *pk, const void *args);
int gradeq_report_part_check(const void *args) GRADEQ_MUST_CHECK;
void gradeq_report_part_free(void *args);

/* Writes the part's rows into the output's storage and records the part;
 * the last part in seals the output (report.c). Contract of a handler. */
int gradeq_report_part_handle(const struct gradeq_jobctx *ctx, const struct gradeq_job *job,
			      struct gradeq_job_stats *stats) GRADEQ_MUST_CHECK;

/* A part went to the dead queue (the type's on_dead): its pending output
 * becomes failed and output.<id>.failed goes to gradeq.events, once. */
void gradeq_report_part_dead(const struct gradeq_jobctx *ctx, const struct gradeq_job *job,
			     const char *error);

#endif
