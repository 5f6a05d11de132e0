/* The embedded SQL files: lookup, and their statement text. */
#include "store/sql.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

char *gradeq_sql_text(const char *file, size_t len)
{
	char *out = malloc(len + 1);
	size_t o = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len;) {
		const char *nl = memchr(file + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - file) : len, k = i;

		while (k < end && (file[k] == ' ' || file[k] == '\t'))
			k++;
		if (!(end - k >= 2 && file[k] == '-' && file[k + 1] == '-')) {
			memcpy(out + o, file + i, end - i);
			o += end - i;
		}
		i = end + 1;
	}
	out[o] = '\0';
	return out;
}

const struct gradeq_sql_file *gradeq_sql_find(const char *name)
{
	for (size_t i = 0; i < gradeq_sql_nfiles; i++)
		if (strcmp(gradeq_sql_files[i].name, name) == 0)
			return &gradeq_sql_files[i];
	return NULL;
}

/* The version of a migration's file name (NNNN-...), or 0. */
static int version_of(const char *name)
{
	int v = 0;

	for (int i = 0; i < 4; i++) {
		if (name[i] < '0' || name[i] > '9')
			return 0;
		v = v * 10 + (name[i] - '0');
	}
	return name[4] == '-' ? v : 0;
}

const struct gradeq_sql_file *gradeq_sql_migration(int version)
{
	for (size_t i = 0; i < gradeq_sql_nfiles; i++)
		if (version > 0 && version_of(gradeq_sql_files[i].name) == version)
			return &gradeq_sql_files[i];
	return NULL;
}

int gradeq_sql_migrations(void)
{
	int n = 0;

	/* the files come in name order: versions 1, 2, ... each once */
	for (size_t i = 0; i < gradeq_sql_nfiles; i++) {
		int v = version_of(gradeq_sql_files[i].name);

		if (!v)
			continue;
		if (v != n + 1)
			return -1;
		n = v;
	}
	return n;
}
