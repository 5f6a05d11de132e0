/* Connection handling, error translation and the schema migrations (the
 * numbered files of src/sql/, embedded at build time: never edit one that
 * has shipped, add the next). */
#include "gradeq/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradeq/limits.h"
#include "gradeq/log.h"
#include "gradeq/states.h"
#include "store/sql.h"
#include "store/internal.h"

struct gradeq_store {
	PGconn *conn;
	bool group; /* inside gradeq_store_group_begin(): jobs under savepoints */
	/* the savepoint of the group's last job is to be released: with the
	 * next job's own (one round trip for both), or by the commit */
	bool release_due;
	struct gradeq_group_run runs[GRADEQ_GROUP_MAX_JOBS]; /* the group's completions */
	int nruns;
	unsigned prepared; /* bit id: statement gq_p<id> prepared on this connection */
};

int gradeq_store_connect(const char *dsn, const char *appname, int statement_timeout_ms,
			 struct gradeq_store **out)
{
	/* connect_timeout before dbname: a DSN that sets its own wins */
	const char *keys[] = {"connect_timeout", "dbname", "application_name", NULL};
	const char *vals[] = {GRADEQ_STR(GRADEQ_DB_CONNECT_TIMEOUT_S), dsn ? dsn : "", appname,
			      NULL};
	struct gradeq_store *st = NULL;
	char sql[128];
	int rc;

	*out = NULL;
	st = calloc(1, sizeof(*st));
	if (!st)
		return GRADEQ_ERR_NOMEM;
	/* expand_dbname lets dsn be a full conninfo or URI */
	st->conn = PQconnectdbParams(keys, vals, 1);
	if (!st->conn || PQstatus(st->conn) != CONNECTION_OK) {
		const char *msg = st->conn ? PQerrorMessage(st->conn) : "out of memory";
		char line[512];
		size_t n;

		snprintf(line, sizeof(line), "%s", msg);
		n = strlen(line);
		while (n && (line[n - 1] == '\n' || line[n - 1] == ' '))
			line[--n] = '\0';
		for (char *p = line; *p; p++)
			if (*p == '\n')
				*p = ' ';
		rc = gradeq_error(GRADEQ_ERR_DB_TRANSIENT, "cannot connect to PostgreSQL: %s",
				  line);
		goto fail;
	}
	/* A batch reads a few hundred thousand score rows of hot, cached data:
	 * with the default random_page_cost the planner prefers scanning all of
	 * courseware_studentmodule over the (student_id, ...) index, and the
	 * default work_mem spills the batch's sort to disk (measured: 1.9 s
	 * against 0.7 s for 1000 learners of a large course). */
	rc = gradeq_store_exec(st, "SET TIME ZONE 'UTC'; SET client_min_messages = warning;"
				   " SET random_page_cost = 1.1; SET work_mem = '32MB'");
	if (rc)
		goto fail;
	snprintf(sql, sizeof(sql), "SET statement_timeout = %d", statement_timeout_ms);
	rc = gradeq_store_exec(st, sql);
	if (rc)
		goto fail;
	*out = st;
	return 0;
fail:
	gradeq_store_free(st);
	return rc;
}

void gradeq_store_free(struct gradeq_store *st)
{
	if (!st)
		return;
	if (st->conn)
		PQfinish(st->conn);
	free(st);
}

PGconn *gradeq_store_conn(struct gradeq_store *st)
{
	return st->conn;
}

bool gradeq_store_broken(struct gradeq_store *st)
{
	return !st || !st->conn || PQstatus(st->conn) != CONNECTION_OK;
}

bool gradeq_store_lost(struct gradeq_store *st)
{
	if (!gradeq_store_broken(st))
		PQclear(PQexec(st->conn, ""));
	return gradeq_store_broken(st);
}

int gradeq_store_result_error(struct gradeq_store *st, const PGresult *res, const char *what)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(st->conn);
	char line[512];
	size_t n;
	int code = GRADEQ_ERR_DB;

	snprintf(line, sizeof(line), "%s", msg && *msg ? msg : "no result");
	n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == ' '))
		line[--n] = '\0';
	for (char *p = line; *p; p++)
		if (*p == '\n')
			*p = ' ';
	if (gradeq_store_broken(st))
		code = GRADEQ_ERR_DB_TRANSIENT;
	else if (state && (strncmp(state, "08", 2) == 0 ||  /* connection exception */
			   strcmp(state, "40001") == 0 ||   /* serialization failure */
			   strcmp(state, "40P01") == 0 ||   /* deadlock detected */
			   strcmp(state, "53300") == 0 ||   /* too many connections */
			   strcmp(state, "57014") == 0 ||   /* query canceled (timeout) */
			   strncmp(state, "57P", 3) == 0 || /* admin shutdown, crash */
			   strcmp(state, "55P03") == 0))    /* lock not available */
		code = GRADEQ_ERR_DB_TRANSIENT;
	return gradeq_error(code, "%s: %s%s%s", what, line, state ? " sqlstate=" : "",
			    state ? state : "");
}

/* For cleanup paths, where a second error would hide the first. */
static void exec_quietly(struct gradeq_store *st, const char *sql)
{
	PQclear(PQexec(st->conn, sql));
}

int gradeq_store_exec(struct gradeq_store *st, const char *sql)
{
	PGresult *res = PQexec(st->conn, sql);
	ExecStatusType s = PQresultStatus(res);
	int rc = 0;

	if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
		rc = gradeq_store_result_error(st, res, "query failed");
	PQclear(res);
	return rc;
}

int gradeq_store_commit(struct gradeq_store *st)
{
	if (st->group) {
		st->release_due = true;
		return 0;
	}
	return gradeq_store_exec(st, "COMMIT");
}

void gradeq_store_rollback(struct gradeq_store *st)
{
	if (st->group) {
		/* the job's part only; the group's transaction goes on (when
		 * the connection is gone, so is the group: its commit fails).
		 * With a release due no savepoint of the job was opened: the
		 * one there is the job's before, which stays. */
		if (st->release_due)
			return;
		exec_quietly(st, "ROLLBACK TO SAVEPOINT gq_job; RELEASE SAVEPOINT gq_job");
		return;
	}
	exec_quietly(st, "ROLLBACK");
}

PGresult *gradeq_store_exec_prepared(struct gradeq_store *st, unsigned id, const char *sql, int n,
				     const char *const *params)
{
	return gradeq_store_exec_prepared_as(st, id, sql, n, params, 0);
}

PGresult *gradeq_store_exec_prepared_as(struct gradeq_store *st, unsigned id, const char *sql,
					int n, const char *const *params, int result_format)
{
	char name[16];

	snprintf(name, sizeof(name), "gq_p%u", id);
	if (!(st->prepared & (1u << id))) {
		/* a prepared statement outlives the transaction it was made in,
		 * rolled back or not: it is the session's */
		PGresult *res = PQprepare(st->conn, name, sql, n, NULL);

		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			return res;
		PQclear(res);
		st->prepared |= 1u << id;
	}
	return PQexecPrepared(st->conn, name, n, params, NULL, NULL, result_format);
}

const char *gradeq_store_begin_sql(struct gradeq_store *st)
{
	if (!st->group)
		return "BEGIN";
	if (st->release_due) {
		st->release_due = false;
		return "RELEASE SAVEPOINT gq_job; SAVEPOINT gq_job";
	}
	return "SAVEPOINT gq_job";
}

bool gradeq_store_in_group(const struct gradeq_store *st)
{
	return st->group;
}

int gradeq_store_group_note(struct gradeq_store *st, const char *run_id, long long learners)
{
	int i;

	for (i = 0; i < st->nruns; i++)
		if (strcmp(st->runs[i].run_id, run_id) == 0)
			break;
	if (i == st->nruns) {
		if (st->nruns >= GRADEQ_GROUP_MAX_JOBS)
			return GRADEQ_ERR_NOMEM;
		snprintf(st->runs[i].run_id, sizeof(st->runs[i].run_id), "%s", run_id);
		st->runs[i].jobs = 0;
		st->runs[i].learners = 0;
		st->nruns++;
	}
	st->runs[i].jobs++;
	st->runs[i].learners += learners;
	return 0;
}

int gradeq_store_group_runs(struct gradeq_store *st, const struct gradeq_group_run **runs)
{
	*runs = st->runs;
	return st->nruns;
}

int gradeq_store_group_begin(struct gradeq_store *st)
{
	int rc = gradeq_store_exec(st, "BEGIN");

	st->nruns = 0;
	st->release_due = false;
	st->group = rc == 0;
	return rc;
}

int gradeq_store_group_commit(struct gradeq_store *st)
{
	st->group = false;
	st->nruns = 0;
	st->release_due = false; /* the commit releases it */
	return gradeq_store_exec(st, "COMMIT");
}

void gradeq_store_group_abort(struct gradeq_store *st)
{
	st->group = false;
	st->nruns = 0;
	st->release_due = false;
	exec_quietly(st, "ROLLBACK");
}

int gradeq_store_schema_version(struct gradeq_store *st, int *version)
{
	PGresult *res = NULL;
	int rc = 0;

	*version = 0;
	res = PQexec(st->conn, "SELECT coalesce(max(version), 0) FROM gradeq_schema_migrations");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		/* undefined_table: nothing migrated yet */
		if (!(state && strcmp(state, "42P01") == 0))
			rc = gradeq_store_result_error(st, res, "cannot read schema version");
		goto out;
	}
	*version = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
out:
	PQclear(res);
	return rc;
}

/* Refills gradeq_state_transitions from the tables of src/states.c, so the
 * trigger enforces exactly what the code declares. */
static int sync_transitions(struct gradeq_store *st)
{
	static const char *const kinds[] = {"run", "job"};
	char sql[8192];
	size_t len;
	int rc;

	len = (size_t)snprintf(sql, sizeof(sql),
			       "BEGIN; DELETE FROM gradeq_state_transitions;"
			       " INSERT INTO gradeq_state_transitions VALUES ");
	for (int k = 0; k < 2; k++) {
		size_t n;
		const struct gradeq_transition *t =
			gradeq_transitions(k ? GRADEQ_STATE_JOB : GRADEQ_STATE_RUN, &n);

		for (size_t i = 0; i < n && len < sizeof(sql); i++)
			len += (size_t)snprintf(sql + len, sizeof(sql) - len, "%s('%s','%s','%s')",
						k || i ? "," : "", kinds[k], t[i].from, t[i].to);
	}
	if (len + 16 >= sizeof(sql))
		return gradeq_error(GRADEQ_ERR_INVALID, "state transition table too large");
	snprintf(sql + len, sizeof(sql) - len, "; COMMIT");
	rc = gradeq_store_exec(st, sql);
	if (rc)
		exec_quietly(st, "ROLLBACK");
	return rc;
}

/* Runs an embedded SQL file. */
static int exec_file(struct gradeq_store *st, const struct gradeq_sql_file *f)
{
	char *sql = f ? gradeq_sql_text(f->text, f->len) : NULL;
	int rc;

	if (!f)
		return gradeq_error(GRADEQ_ERR_INVALID, "embedded SQL file missing");
	if (!sql)
		return GRADEQ_ERR_NOMEM;
	rc = gradeq_store_exec(st, sql);
	free(sql);
	return rc;
}

int gradeq_store_migrate(struct gradeq_store *st, bool with_input, int *applied)
{
	int rc, version = 0, ran = 0, nmigrations = gradeq_sql_migrations();
	char sql[256];

	if (applied)
		*applied = 0;
	if (nmigrations < 0)
		return gradeq_error(GRADEQ_ERR_INVALID, "migrations not numbered 1..N");
	if (with_input) {
		rc = exec_file(st, gradeq_sql_find("input-tables.sql"));
		if (rc)
			return rc;
	}
	/* one migrator at a time: an advisory lock held for the whole run */
	rc = gradeq_store_exec(
		st, "SELECT pg_advisory_lock(" GRADEQ_STR(GRADEQ_MIGRATION_LOCK_KEY) ")");
	if (rc)
		return rc;
	rc = gradeq_store_exec(st, "CREATE TABLE IF NOT EXISTS gradeq_schema_migrations ("
				   " version int PRIMARY KEY,"
				   " applied_at timestamptz NOT NULL DEFAULT now())");
	if (rc)
		goto out;
	rc = gradeq_store_schema_version(st, &version);
	if (rc)
		goto out;
	if (version > nmigrations) {
		rc = gradeq_error(GRADEQ_ERR_STATE,
				  "database schema is version %d, newer than this gradeq (%d)",
				  version, nmigrations);
		goto out;
	}
	for (int v = version + 1; v <= nmigrations; v++) {
		rc = gradeq_store_exec(st, "BEGIN");
		if (rc)
			goto out;
		rc = exec_file(st, gradeq_sql_migration(v));
		if (!rc) {
			snprintf(sql, sizeof(sql),
				 "INSERT INTO gradeq_schema_migrations (version) VALUES (%d)", v);
			rc = gradeq_store_exec(st, sql);
		}
		if (rc) {
			int keep = rc;
			char msg[600];

			snprintf(msg, sizeof(msg), "%s", gradeq_errmsg(rc));
			exec_quietly(st, "ROLLBACK");
			rc = gradeq_error(keep, "migration %d failed: %s", v, msg);
			goto out;
		}
		rc = gradeq_store_exec(st, "COMMIT");
		if (rc)
			goto out;
		log_info("event=migrated version=%d", v);
		ran++;
	}
	if (!rc && nmigrations >= 3)
		rc = sync_transitions(st);
out:
	exec_quietly(st, "SELECT pg_advisory_unlock(" GRADEQ_STR(GRADEQ_MIGRATION_LOCK_KEY) ")");
	if (applied)
		*applied = ran;
	return rc;
}

int gradeq_store_dsn_check(const char *dsn, char *why, size_t len)
{
	char *msg = NULL;
	PQconninfoOption *opts = PQconninfoParse(dsn, &msg);
	size_t n;

	if (opts) {
		PQconninfoFree(opts);
		return 0;
	}
	snprintf(why, len, "%s", msg ? msg : "out of memory");
	PQfreemem(msg);
	n = strlen(why);
	while (n && (why[n - 1] == '\n' || why[n - 1] == ' '))
		why[--n] = '\0';
	return GRADEQ_ERR_CONFIG;
}

void gradeq_store_states_array(enum gradeq_state_kind kind, unsigned set, char *buf, size_t len)
{
	const char *const *names = gradeq_states(kind);
	size_t o = (size_t)snprintf(buf, len, "{");

	for (unsigned s = 0; names[s] && o < len; s++)
		if (set & (1u << s))
			o += (size_t)snprintf(buf + o, len - o, "%s%s", o > 1 ? "," : "", names[s]);
	if (o < len)
		snprintf(buf + o, len - o, "}");
}
