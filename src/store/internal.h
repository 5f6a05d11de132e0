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
