/* The store: the connection, error translation, transactions and the
 * schema (the migrations of src/sql/). The data itself goes through one
 * module per table family, under src/store/ (courses.h, grades.h, jobs.h,
 * runs.h, copy.h, ...): SQL text lives nowhere else. */
#ifndef GRADEQ_STORE_H
#define GRADEQ_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gradeq/err.h"
#include "gradeq/grading.h"

struct gradeq_store;

/* Connects with a libpq conninfo (empty: libpq's environment defaults),
 * setting application_name and the statement timeout (0: none).
 * GRADEQ_ERR_DB_TRANSIENT when the server cannot be reached. */
int gradeq_store_connect(const char *dsn, const char *appname, int statement_timeout_ms,
			 struct gradeq_store **out) GRADEQ_MUST_CHECK;
void gradeq_store_free(struct gradeq_store *st);
/* Checks that dsn is a libpq conninfo or URI without connecting; on
 * GRADEQ_ERR_CONFIG, why gets libpq's reason (one line). */
int gradeq_store_dsn_check(const char *dsn, char *why, size_t len) GRADEQ_MUST_CHECK;

/* True when the connection is gone (the caller reconnects). */
bool gradeq_store_broken(struct gradeq_store *st);
/* Whether an error was the connection's: a round trip to the server, then
 * gradeq_store_broken. For a failure's path only (it costs a round trip):
 * a session the server ended mid-read can look whole until the next one. */
bool gradeq_store_lost(struct gradeq_store *st);

/* Commits the transaction a store function left open; on error it is
 * rolled back (by the server). Inside a group (below), releases the job's
 * savepoint instead: its writes commit with the group. */
int gradeq_store_commit(struct gradeq_store *st) GRADEQ_MUST_CHECK;
/* Rolls back the open transaction, if any; a cleanup path: errors are
 * dropped so that they do not hide the first one. Inside a group, rolls
 * back to the job's savepoint only: the other jobs' writes stay. */
void gradeq_store_rollback(struct gradeq_store *st);

/* A group: several small jobs written in one transaction, committed once
 * (one WAL flush for all). Between gradeq_store_group_begin() and
 * gradeq_store_group_commit() (or _abort()), a store function that opens
 * a write transaction opens the savepoint gq_job instead (store/internal.h:
 * gradeq_store_begin_sql()), gradeq_store_commit() releases
 * it and gradeq_store_rollback() rolls back to it: a job that fails is
 * taken out alone. Nothing the group wrote is visible, or durable, before
 * the group's commit. */
int gradeq_store_group_begin(struct gradeq_store *st) GRADEQ_MUST_CHECK;
int gradeq_store_group_commit(struct gradeq_store *st) GRADEQ_MUST_CHECK;
void gradeq_store_group_abort(struct gradeq_store *st);
bool gradeq_store_in_group(const struct gradeq_store *st);

/* Applies the migrations not yet applied, in order, each in its own
 * transaction; with_input also creates the platform's input tables (demo and
 * tests). *applied gets how many ran (may be NULL). Idempotent. */
int gradeq_store_migrate(struct gradeq_store *st, bool with_input, int *applied) GRADEQ_MUST_CHECK;

/* The current schema version (0 before any migration). */
int gradeq_store_schema_version(struct gradeq_store *st, int *version) GRADEQ_MUST_CHECK;

#endif
