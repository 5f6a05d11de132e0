/* The release registry's SQL (gradeq_releases), behind src/release.c. */
#ifndef GRADEQ_STORE_RELEASES_H
#define GRADEQ_STORE_RELEASES_H

#include <stdbool.h>
#include <stddef.h>

#include "gradeq/registry.h"
#include "gradeq/store.h"

/* Reads name's state as text into state[16]; GRADEQ_ERR_NOT_FOUND when
 * unknown. */
int gradeq_store_release_state(struct gradeq_store *st, const char *name,
			       char *state) GRADEQ_MUST_CHECK;
/* The promoted release's name into out; GRADEQ_ERR_NOT_FOUND when none. */
int gradeq_store_release_promoted(struct gradeq_store *st, char *out, size_t len) GRADEQ_MUST_CHECK;
/* Records name as an active release unless known. */
int gradeq_store_release_record(struct gradeq_store *st, const char *name,
				int schema_version) GRADEQ_MUST_CHECK;
/* Every release, oldest first (see gradeq_release_list). */
int gradeq_store_release_list(struct gradeq_store *st, bool live_only,
			      struct gradeq_release_info **out, size_t *n) GRADEQ_MUST_CHECK;
/* See gradeq_release_promote. */
int gradeq_store_release_promote(struct gradeq_store *st, const char *name, int schema_version,
				 char **drained) GRADEQ_MUST_CHECK;
/* Sets state to 'draining' where it is 'active'. */
int gradeq_store_release_mark_draining(struct gradeq_store *st, const char *name) GRADEQ_MUST_CHECK;
/* Sets state to 'retired'. */
int gradeq_store_release_mark_retired(struct gradeq_store *st, const char *name) GRADEQ_MUST_CHECK;

#endif
