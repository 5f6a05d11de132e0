/* What a row of the release registry (gradeq_releases) is: the release
 * states and the row, shared by the release module (src/release.c) and the
 * store module that reads and writes the table (src/store/releases.c). */
#ifndef GRADEQ_REGISTRY_H
#define GRADEQ_REGISTRY_H

#include "gradeq/limits.h"

enum gradeq_release_state {
	GRADEQ_RELEASE_ACTIVE,
	GRADEQ_RELEASE_PROMOTED,
	GRADEQ_RELEASE_DRAINING,
	GRADEQ_RELEASE_RETIRED,
};

/* "active", "promoted", "draining", "retired"; "?" for anything else. */
const char *gradeq_release_state_name(enum gradeq_release_state s);
/* The state named s, or -1 when it names none. */
int gradeq_release_state_parse(const char *s);

/* One row of the registry. */
struct gradeq_release_info {
	char name[GRADEQ_RELEASE_NAME_MAX + 1];
	enum gradeq_release_state state;
	int schema_version;
	char updated_at[24]; /* "YYYY-MM-DD HH:MM:SS", server time */
	long runs;           /* runs recorded for it */
};

#endif
