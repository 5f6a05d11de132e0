/* gradeq-admin check-input: whether the indexes gradeq relies on exist on
 * the platform's input tables (gradeq never writes them: a DBA creates
 * what is missing, with the statements printed). */
#ifndef GRADEQ_INPUTCHECK_H
#define GRADEQ_INPUTCHECK_H

#include <stdbool.h>
#include <stdio.h>

#include "gradeq/err.h"

struct gradeq_store;

/* Whether table has a valid, non-partial index whose leading key columns
 * are cols (comma-separated, in order); *table_found false when the table
 * does not exist. */
int gradeq_store_index_exists(struct gradeq_store *st, const char *table, const char *cols,
			      bool *table_found, bool *found) GRADEQ_MUST_CHECK;

/* Prints each index (text, or one JSON object with json) and, for each
 * one missing, the CREATE INDEX CONCURRENTLY to run. *missing counts them. */
int gradeq_check_input(struct gradeq_store *st, bool json, FILE *out,
		       int *missing) GRADEQ_MUST_CHECK;

#endif
