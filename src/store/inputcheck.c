/* gradeq-admin check-input (see inputcheck.h): the indexes gradeq's reads
 * of the platform's tables rely on, each with what it serves, looked up in
 * pg_index; the CREATE INDEX statements are SQL text, so they live here. */
#include "gradeq/inputcheck.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "store/internal.h"

/* An index matches when its first n key columns are cols, in order; an
 * invalid index (a CREATE INDEX CONCURRENTLY that failed) or a partial one
 * does not count. */
static const char exists_sql[] =
	"SELECT to_regclass($1) IS NOT NULL, EXISTS (SELECT 1 FROM pg_index i"
	" WHERE i.indrelid = to_regclass($1) AND i.indisvalid AND i.indpred IS NULL"
	" AND (SELECT array_agg(a.attname::text ORDER BY k.n)"
	"  FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)"
	"  JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
	"  WHERE k.n <= cardinality(string_to_array($2, ',')))"
	" = string_to_array($2, ','))";

int gradeq_store_index_exists(struct gradeq_store *st, const char *table, const char *cols,
			      bool *table_found, bool *found)
{
	const char *params[2] = {table, cols};
	PGresult *res =
		PQexecParams(gradeq_store_conn(st), exists_sql, 2, NULL, params, NULL, NULL, 0);
	int rc = 0;

	*table_found = *found = false;
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		rc = gradeq_store_result_error(st, res, "reading the input tables' indexes");
	} else {
		*table_found = PQgetvalue(res, 0, 0)[0] == 't';
		*found = PQgetvalue(res, 0, 1)[0] == 't';
	}
	PQclear(res);
	return rc;
}

struct wanted {
	const char *table;
	const char *cols; /* the leading key columns, comma-separated */
	const char *alt;  /* another index that serves as well, or NULL */
	const char *name; /* the name the CREATE INDEX gives it */
	const char *serves;
};

static const struct wanted wanted[] = {
	{"courses", "course_id", NULL, "courses_course_id", "a course's version and policy"},
	{"course_blocks", "course_id", NULL, "course_blocks_course_id",
	 "grading: a course's blocks"},
	{"student_courseenrollment", "course_id,id", NULL, "student_courseenrollment_course_id",
	 "publishing: a course's enrollments in order"},
	{"student_courseenrollment", "user_id,course_id", NULL,
	 "student_courseenrollment_user_id_course_id",
	 "grading and --incremental: the enrollments of given learners"},
	{"courseware_studentmodule", "student_id,course_id", NULL,
	 "courseware_studentmodule_student_id_course_id", "grading: a batch's score rows"},
	{"courseware_studentmodule", "course_id,modified", "modified",
	 "courseware_studentmodule_course_id_modified",
	 "--incremental: score rows changed since the watermark, an index range"},
};

#define NWANTED (sizeof(wanted) / sizeof(wanted[0]))

/* "a, b" for "a,b", into buf. */
static void spaced(char *buf, size_t len, const char *cols)
{
	size_t n = 0;

	for (const char *c = cols; *c && n + 3 < len; c++) {
		buf[n++] = *c;
		if (*c == ',')
			buf[n++] = ' ';
	}
	buf[n] = '\0';
}

int gradeq_check_input(struct gradeq_store *st, bool json, FILE *out, int *missing)
{
	json_t *arr = json ? json_array() : NULL;
	int rc = 0;

	*missing = 0;
	if (!json)
		fputs("indexes gradeq relies on (gradeq never writes the input tables):\n", out);
	for (size_t i = 0; i < NWANTED && !rc; i++) {
		const struct wanted *w = &wanted[i];
		const char *matched = w->cols;
		bool table = false, found = false;
		char cols[128], create[512];

		rc = gradeq_store_index_exists(st, w->table, w->cols, &table, &found);
		if (!rc && !found && w->alt) {
			rc = gradeq_store_index_exists(st, w->table, w->alt, &table, &found);
			matched = w->alt;
		}
		if (rc)
			break;
		if (!found)
			matched = w->cols;
		spaced(cols, sizeof(cols), matched);
		snprintf(create, sizeof(create), "CREATE INDEX CONCURRENTLY %s ON %s (%s);",
			 w->name, w->table, cols);
		if (!found)
			(*missing)++;
		if (json) {
			json_array_append_new(arr, json_pack("{s:s, s:s, s:b, s:b, s:s, s:s?}",
							     "table", w->table, "columns", cols,
							     "table_exists", table, "present",
							     found, "serves", w->serves, "create",
							     found ? NULL : create));
			continue;
		}
		fprintf(out, "  %-8s %s (%s): %s\n",
			found   ? "ok"
			: table ? "MISSING"
				: "NO TABLE",
			w->table, cols, w->serves);
		if (!found && table)
			fprintf(out, "           %s\n", create);
	}
	if (!rc && json) {
		json_t *o = json_pack("{s:o, s:i}", "indexes", arr, "missing", *missing);
		char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

		arr = NULL;
		json_decref(o);
		if (!s)
			return GRADEQ_ERR_NOMEM;
		fprintf(out, "%s\n", s);
		free(s);
	} else if (!rc && *missing) {
		fprintf(out,
			"%d missing: ask a DBA to run the statements above (CONCURRENTLY"
			" does not block the platform's writes)\n",
			*missing);
	}
	json_decref(arr);
	return rc;
}
