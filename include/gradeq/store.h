/* The store: the connection, error translation, transactions and the
 * schema (the migrations of src/sql/). The data itself goes through one
 * module per table family, under src/store/ (courses.h, grades.h, jobs.h,
 * runs.h, copy.h, ...): SQL text lives nowhere else. */
#ifndef GRADEQ_STORE_H
#define GRADEQ_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "gradeq/err.h"
#include "gradeq/grading.h"

struct gradeq_store;

/* Connects with a libpq conninfo (empty: libpq's environment defaults),
 * setting application_name and the statement timeout (0: none).
 * GRADEQ_ERR_DB_TRANSIENT when the server cannot be reached. */
int gradeq_store_connect(const char *dsn, const char *appname, int statement_timeout_ms,
			 struct gradeq_store **out) GRADEQ_MUST_CHECK;
void gradeq_store_free(struct gradeq_store *st);
/* The raw connection. Store modules take it from src/store/internal.h;
 * this public declaration goes once no program calls it any more. */
PGconn *gradeq_store_conn(struct gradeq_store *st);
/* True when the connection is gone (the caller reconnects). */
bool gradeq_store_broken(struct gradeq_store *st);

/* Translates a failed result: deadlock, serialization failure, lost
 * connection, too many connections, query canceled -> GRADEQ_ERR_DB_TRANSIENT;
 * anything else -> GRADEQ_ERR_DB. The detail goes to gradeq_errmsg(). */
int gradeq_store_result_error(struct gradeq_store *st, const PGresult *res, const char *what);

/* Runs a statement that returns no rows (or whose rows are ignored). */
int gradeq_store_exec(struct gradeq_store *st, const char *sql) GRADEQ_MUST_CHECK;

/* Commits the transaction a store function left open; on error it is
 * rolled back (by the server). */
int gradeq_store_commit(struct gradeq_store *st) GRADEQ_MUST_CHECK;
/* Rolls back the open transaction, if any; a cleanup path: errors are
 * dropped so that they do not hide the first one. */
void gradeq_store_rollback(struct gradeq_store *st);

/* Applies the migrations not yet applied, in order, each in its own
 * transaction; with_input also creates the platform's input tables (demo and
 * tests). *applied gets how many ran (may be NULL). Idempotent. */
int gradeq_store_migrate(struct gradeq_store *st, bool with_input, int *applied) GRADEQ_MUST_CHECK;

/* The current schema version (0 before any migration). */
int gradeq_store_schema_version(struct gradeq_store *st, int *version) GRADEQ_MUST_CHECK;

#endif
