/* The SQL behind gradeq/status.h. */
#ifndef GRADEQ_STORE_STATUS_H
#define GRADEQ_STORE_STATUS_H

#include <stdio.h>

#include "gradeq/store.h"

/* See gradeq_status_run_known. */
int gradeq_store_run_known(struct gradeq_store *st, const char *run) GRADEQ_MUST_CHECK;
/* See gradeq_status_runs_json. */
int gradeq_store_status_runs(struct gradeq_store *st, const char *run,
			     char **out) GRADEQ_MUST_CHECK;
/* Prints one line a run of runs_json (the text view, rendered by the
 * server from the same JSON); a failure prints nothing. */
void gradeq_store_status_runs_text(struct gradeq_store *st, const char *runs_json, FILE *out);
/* Prints one line a release of releases_json. */
void gradeq_store_status_releases_text(struct gradeq_store *st, const char *releases_json,
				       FILE *out);

#endif
