/* The job type registry (DESIGN.md section 4: the message's `type`
 * property names the job type, and consumers dispatch on it). Each type
 * declares, in one row of the table in src/jobtypes.c, its name, the
 * decoder and encoder of its own fields (the body's "args" map), its
 * handler and the states of what it produces. The codec (job.c) and the
 * consume loop (consumer.c) only ever go through this table, so adding a
 * type touches neither: see docs/job-types.md. */
#ifndef GRADEQ_JOBTYPE_H
#define GRADEQ_JOBTYPE_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>

#include "gradeq/err.h"

struct gradeq_job;
struct gradeq_job_stats;
struct gradeq_store;
struct gradeq_worker;
struct gradeq_config;
struct gradeq_broker;

/* What a handler may use: the consumer's worker (course cache, its name
 * for job rows), its database connection and its configuration. */
struct gradeq_jobctx {
	struct gradeq_worker *worker;
	struct gradeq_store *st;
	const struct gradeq_config *cfg;
	/* the consumer's publishing connection for gradeq.events, or NULL:
	 * events are best effort */
	struct gradeq_broker *events;
};

/* Longest type name, NUL excluded (an AMQP shortstr would allow 255; names
 * are short words joined by dots). */
#define GRADEQ_JOBTYPE_NAME_MAX 64

struct gradeq_jobtype {
	/* The AMQP `type` property and the body's "type" value. */
	const char *name;
	/* One line for docs and --help. */
	const char *summary;
	/* Decodes the body's "args" (args is NULL when the body has none) into
	 * job->args. GRADEQ_ERR_DECODE with err filled when it is wrong (the
	 * job is then dead-lettered as malformed), GRADEQ_ERR_NOMEM. NULL: the
	 * type has no args, and a body that carries some is refused. Must be
	 * safe on hostile input (it is fuzzed through fuzz_job.c). */
	int (*decode_args)(const msgpack_object *args, void **out, char *err, size_t errlen);
	/* Packs job->args as one msgpack map; -1 on a packer error. Must
	 * write what decode_args reads back unchanged. */
	int (*encode_args)(msgpack_packer *pk, const void *args);
	/* Checks args before encoding (what decode_args would refuse):
	 * 0 or GRADEQ_ERR_INVALID with gradeq_errmsg() set. */
	int (*check_args)(const void *args);
	/* Frees what decode_args made; NULL is a no-op. */
	void (*free_args)(void *args);
	/* Does the job: the same contract as gradeq_worker_process() (0 with
	 * stats->outcome; a transient error goes to a retry tier, a
	 * permanent one to the dead queue; nothing committed on error). */
	int (*handle)(const struct gradeq_jobctx *ctx, const struct gradeq_job *job,
		      struct gradeq_job_stats *stats);
	/* Called once the consumer has parked the job in the dead queue and
	 * recorded it dead, with the reason (a report part marks its output
	 * failed and announces it). Best effort: it cannot change where the
	 * message went. NULL: nothing to do. */
	void (*on_dead)(const struct gradeq_jobctx *ctx, const struct gradeq_job *job,
			const char *error);
	/* The states of what the type produces beyond the job row itself,
	 * NULL-terminated (a grading job produces grade rows: none; a report
	 * part contributes to an output: pending, sealed, failed, deleted). */
	const char *const *states;
};

/* The default type: grading a batch ("grades.compute"). Bodies of schema
 * 1 and 2, which carry no type, are grading jobs. */
const struct gradeq_jobtype *gradeq_jobtype_default(void);

/* The registered type with this name (len bytes, not NUL-terminated), or
 * NULL when this release does not know it. */
const struct gradeq_jobtype *gradeq_jobtype_find(const char *name, size_t len);

/* Every registered type, in table order; *n gets their number. */
const struct gradeq_jobtype *gradeq_jobtypes(size_t *n);

#endif
