/* What the store modules share and nobody else sees. */
#ifndef GRADEQ_STORE_INTERNAL_H
#define GRADEQ_STORE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "gradeq/courses.h"
#include "gradeq/store.h"

/* The connection, for the store's modules only (store.h declares it too
 * until no program outside the store calls it). */
PGconn *gradeq_store_conn(struct gradeq_store *st);

/* The PostgreSQL int4[] text of n ids, malloc'd; NULL when out of memory. */
char *gradeq_store_int_array(const int32_t *ids, size_t n);

/* The key list as a text[] literal, and as that literal quoted for SQL text
 * (escaped on st's connection at first use; NULL when that fails). */
const char *gradeq_keys_array(const struct gradeq_keys *k);
const char *gradeq_keys_quoted(struct gradeq_store *st, struct gradeq_keys *k);
size_t gradeq_keys_count(const struct gradeq_keys *k);

#endif
