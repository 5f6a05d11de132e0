/* New job rows, in one COPY (see jobrows.h). */
#include "gradeq/jobrows.h"

#include <stdlib.h>
#include <string.h>

#include "gradeq/copy.h"
#include "store/internal.h"

/* first_user_ids: what the dashboard shows of a job without its body */
#define FIRST_USER_IDS 10

int gradeq_jobrows_record(struct gradeq_store *st, const struct gradeq_job *jobs, int n)
{
	struct gradeq_copy *c = NULL;
	int rc = gradeq_copy_begin(
		st,
		"COPY gradeq_jobs (job_id, run_id, course_id, seq, learners, users_digest,"
		" first_user_ids)"
		" FROM STDIN",
		"recording jobs", &c);

	for (int i = 0; i < n && !rc; i++) {
		const struct gradeq_job *j = &jobs[i];

		rc = gradeq_copy_raw(c, j->job_id, strlen(j->job_id));
		if (!rc)
			rc = gradeq_copy_raw(c, j->run_id, strlen(j->run_id));
		if (!rc)
			rc = gradeq_copy_text(c, j->course_id);
		if (!rc)
			rc = gradeq_copy_int(c, j->seq);
		if (!rc)
			rc = gradeq_copy_int(c, (long long)j->nusers);
		if (!rc) {
			/* bytea in hex form, its backslash escaped for COPY */
			char digest[3 + GRADEQ_JOB_DIGEST_HEX] = "\\\\x";

			gradeq_job_users_digest(j->user_ids, j->nusers, digest + 3);
			rc = gradeq_copy_raw(c, digest, strlen(digest));
		}
		if (!rc) {
			size_t nf = j->nusers < FIRST_USER_IDS ? j->nusers : FIRST_USER_IDS;
			char *ids = gradeq_store_int_array(j->user_ids, nf);

			rc = ids ? gradeq_copy_raw(c, ids, strlen(ids)) : GRADEQ_ERR_NOMEM;
			free(ids);
		}
		if (!rc)
			rc = gradeq_copy_row(c);
	}
	return gradeq_copy_end(c, rc);
}
