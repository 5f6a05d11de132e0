/* What the store modules share and nobody else sees. */
#ifndef GRADEQ_STORE_INTERNAL_H
#define GRADEQ_STORE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "gradeq/courses.h"
#include "gradeq/states.h"
#include "gradeq/store.h"

/* The connection, for the store's modules only. */
PGconn *gradeq_store_conn(struct gradeq_store *st);

/* Translates a failed result: deadlock, serialization failure, lost
 * connection, too many connections, query canceled -> GRADEQ_ERR_DB_TRANSIENT;
 * anything else -> GRADEQ_ERR_DB. The detail goes to gradeq_errmsg(). */
int gradeq_store_result_error(struct gradeq_store *st, const PGresult *res, const char *what);

/* Runs a statement that returns no rows (or whose rows are ignored). */
int gradeq_store_exec(struct gradeq_store *st, const char *sql) GRADEQ_MUST_CHECK;

/* Statements run often enough that parsing and planning them each time
 * showed in the profile of small jobs: prepared once per connection. */
enum gradeq_prepared {
	GRADEQ_PREP_JOB_TRANSITION,
	GRADEQ_PREP_JOB_RECORD,
	GRADEQ_PREP_JOB_COUNT,
	GRADEQ_PREP_JOB_BEGIN_GROUP,
	GRADEQ_PREP_ENROLLED,
	GRADEQ_PREP_JOB_COMPLETE_GROUP,
};

/* The completions a group of jobs counts at its end, a run each, in the
 * order first met (gradeq_jobs_count_group). */
struct gradeq_group_run {
	char run_id[37];
	int jobs;
	long long learners;
};

/* Notes a completion of run_id inside the group; GRADEQ_ERR_NOMEM when
 * the group has more runs than GRADEQ_GROUP_MAX_JOBS. */
int gradeq_store_group_note(struct gradeq_store *st, const char *run_id, long long learners);
int gradeq_store_group_runs(struct gradeq_store *st, const struct gradeq_group_run **runs);

/* Runs sql (n text parameters) as the prepared statement id, preparing it
 * on the connection's first use. The result as PQexecPrepared's (or
 * PQprepare's when preparing failed). */
PGresult *gradeq_store_exec_prepared(struct gradeq_store *st, unsigned id, const char *sql, int n,
				     const char *const *params);
/* The same with the result in result_format (1: binary). */
PGresult *gradeq_store_exec_prepared_as(struct gradeq_store *st, unsigned id, const char *sql,
					int n, const char *const *params, int result_format);

/* What opens a write transaction: "BEGIN", or inside a group of jobs
 * (gradeq_store_group_begin) "SAVEPOINT gq_job", which gradeq_store_commit
 * releases (with the next job's savepoint, or the group's commit) and
 * gradeq_store_rollback rolls back to. */
const char *gradeq_store_begin_sql(struct gradeq_store *st);

/* The PostgreSQL int4[] text of n ids, malloc'd; NULL when out of memory. */
char *gradeq_store_int_array(const int32_t *ids, size_t n);

/* The key list as a text[] literal, and as that literal quoted for SQL text
 * (escaped on st's connection at first use; NULL when that fails). */
const char *gradeq_keys_array(const struct gradeq_keys *k);
const char *gradeq_keys_quoted(struct gradeq_store *st, struct gradeq_keys *k);
size_t gradeq_keys_count(const struct gradeq_keys *k);
/* Key i of the list (i < count). */
const char *gradeq_keys_key(const struct gradeq_keys *k, size_t i);

/* The PostgreSQL text[] literal ("{a,b}") of the states of kind whose bit
 * (1 << state, the enums' order) is in set, into buf. */
void gradeq_store_states_array(enum gradeq_state_kind kind, unsigned set, char *buf, size_t len);

#endif
