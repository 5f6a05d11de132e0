/* The SQL files of src/sql/, embedded at build time (CMakeLists.txt). A
 * file's lines are joined without their newlines, and its whole-line
 * comments (lines whose first non-blank characters are "--") dropped: the
 * migrations that were C strings before keep, byte for byte, the text the
 * databases received. A comment after code on a line would swallow the rest
 * of the file: write comments on lines of their own. */
#ifndef GRADEQ_STORE_SQL_H
#define GRADEQ_STORE_SQL_H

#include <stddef.h>

struct gradeq_sql_file {
	const char *name; /* "0001-output-tables.sql" */
	const char *text; /* the file as it is, NUL-terminated */
	size_t len;
};

/* Generated: every file of src/sql/, in name order. */
extern const struct gradeq_sql_file gradeq_sql_files[];
extern const size_t gradeq_sql_nfiles;

/* The statement text of a file (lines joined, comments dropped), malloc'd;
 * NULL when out of memory. */
char *gradeq_sql_text(const char *file, size_t len);

/* The file named name, or NULL. */
const struct gradeq_sql_file *gradeq_sql_find(const char *name);

/* The migration numbered version (its file NNNN-name.sql, NNNN = version),
 * or NULL. */
const struct gradeq_sql_file *gradeq_sql_migration(int version);

/* The number of migrations: the highest version, after checking that they
 * are numbered 1..N without a gap or a repeat; -1 when they are not. */
int gradeq_sql_migrations(void);

#endif
