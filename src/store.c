/* Connection handling, error translation and the schema migrations. */
#include "gradeq/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradeq/limits.h"
#include "gradeq/log.h"
#include "gradeq/states.h"

struct gradeq_store {
	PGconn *conn;
};

/* The platform's input tables: gradeq never writes them; created only for
 * demos and tests (migrate --with-input-tables). */
static const char input_tables_sql[] =
	"CREATE TABLE IF NOT EXISTS courses ("
	" course_id text PRIMARY KEY, version text NOT NULL,"
	" edited_at timestamptz NOT NULL, grading_policy jsonb NOT NULL);"
	"CREATE TABLE IF NOT EXISTS course_blocks ("
	" course_id text NOT NULL, usage_key text NOT NULL, block_type text NOT NULL,"
	" parent_key text, position int NOT NULL, graded bool NOT NULL DEFAULT true,"
	" format text, weight float8, max_score float8,"
	" PRIMARY KEY (course_id, usage_key));"
	"CREATE TABLE IF NOT EXISTS student_courseenrollment ("
	" id bigserial PRIMARY KEY, user_id int NOT NULL, course_id text NOT NULL,"
	" is_active bool NOT NULL, mode text NOT NULL, created timestamptz NOT NULL,"
	" UNIQUE (user_id, course_id));"
	"CREATE INDEX IF NOT EXISTS student_courseenrollment_course_id"
	" ON student_courseenrollment (course_id, id);"
	"CREATE TABLE IF NOT EXISTS courseware_studentmodule ("
	" id bigserial PRIMARY KEY, student_id int NOT NULL, course_id text NOT NULL,"
	" module_state_key text NOT NULL, module_type text NOT NULL,"
	" grade float8, max_grade float8, created timestamptz NOT NULL,"
	" modified timestamptz NOT NULL,"
	" UNIQUE (student_id, course_id, module_state_key));";

/* gradeq's own migrations, in order; never edit one that has shipped. */
static const char *const migrations[] = {
	/* 1: output tables and run/job bookkeeping */
	"CREATE TABLE IF NOT EXISTS grades_persistentsubsectiongrade ("
	" id bigserial PRIMARY KEY, user_id int NOT NULL, course_id text NOT NULL,"
	" usage_key text NOT NULL, course_version text NOT NULL,"
	" earned_all float8 NOT NULL, possible_all float8 NOT NULL,"
	" earned_graded float8 NOT NULL, possible_graded float8 NOT NULL,"
	" first_attempted timestamptz, created timestamptz NOT NULL,"
	" modified timestamptz NOT NULL,"
	" UNIQUE (course_id, user_id, usage_key));"
	"CREATE TABLE IF NOT EXISTS grades_persistentcoursegrade ("
	" id bigserial PRIMARY KEY, user_id int NOT NULL, course_id text NOT NULL,"
	" course_version text NOT NULL, grading_policy_hash text NOT NULL,"
	" percent_grade float8 NOT NULL, letter_grade text NOT NULL,"
	" passed_timestamp timestamptz, course_edited_timestamp timestamptz,"
	" created timestamptz NOT NULL, modified timestamptz NOT NULL,"
	" UNIQUE (course_id, user_id));"
	"CREATE TABLE gradeq_releases ("
	" name text PRIMARY KEY, state text NOT NULL DEFAULT 'active'"
	"  CHECK (state IN ('active','promoted','draining','retired')),"
	" schema_version int NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),"
	" updated_at timestamptz NOT NULL DEFAULT now(), updated_by text NOT NULL DEFAULT '');"
	/* exactly one promoted release, enforced by the database */
	"CREATE UNIQUE INDEX gradeq_releases_one_promoted ON gradeq_releases ((true))"
	" WHERE state = 'promoted';"
	"CREATE TABLE gradeq_runs ("
	" run_id uuid PRIMARY KEY, release text NOT NULL REFERENCES gradeq_releases(name),"
	" state text NOT NULL, options jsonb NOT NULL DEFAULT '{}',"
	" courses int NOT NULL DEFAULT 0, jobs_total int NOT NULL DEFAULT 0,"
	" learners_total bigint NOT NULL DEFAULT 0,"
	" jobs_complete int NOT NULL DEFAULT 0, jobs_dead int NOT NULL DEFAULT 0,"
	" jobs_canceled int NOT NULL DEFAULT 0, jobs_discarded int NOT NULL DEFAULT 0,"
	" learners_complete bigint NOT NULL DEFAULT 0,"
	" created_at timestamptz NOT NULL DEFAULT now(), published_at timestamptz,"
	" finished_at timestamptz, created_by text NOT NULL DEFAULT '');"
	"CREATE TABLE gradeq_jobs ("
	" job_id uuid PRIMARY KEY, run_id uuid NOT NULL REFERENCES gradeq_runs ON DELETE CASCADE,"
	" course_id text NOT NULL, seq int NOT NULL, learners int NOT NULL,"
	" state text NOT NULL DEFAULT 'pending', attempts int NOT NULL DEFAULT 0,"
	" last_error text, consumer text,"
	" created_at timestamptz NOT NULL DEFAULT now(), started_at timestamptz,"
	" finished_at timestamptz,"
	" ms_load float8, ms_fetch float8, ms_compute float8, ms_write float8,"
	" ms_total float8, graded int, skipped int, subsections int, score_rows int);"
	"CREATE INDEX gradeq_jobs_run ON gradeq_jobs (run_id, state);"
	"CREATE TABLE gradeq_job_events ("
	" id bigserial PRIMARY KEY, job_id uuid, run_id uuid NOT NULL,"
	" from_state text, to_state text NOT NULL, at timestamptz NOT NULL DEFAULT now(),"
	" by text NOT NULL DEFAULT '', detail text);"
	"CREATE INDEX gradeq_job_events_run ON gradeq_job_events (run_id, at);",
	/* 2: the rest of the per-job timings (commit, body size) for tools/bench
	 * and gradeq-admin plan */
	"ALTER TABLE gradeq_jobs ADD COLUMN IF NOT EXISTS ms_commit float8,"
	" ADD COLUMN IF NOT EXISTS body_bytes int;",
	/* 3: the database enforces the state machines of src/states.c; migrate
	 * refills gradeq_state_transitions from that table on every run */
	"CREATE TABLE gradeq_state_transitions ("
	" kind text NOT NULL, from_state text NOT NULL, to_state text NOT NULL,"
	" PRIMARY KEY (kind, from_state, to_state));"
	"CREATE FUNCTION gradeq_check_transition() RETURNS trigger LANGUAGE plpgsql AS $$"
	" BEGIN"
	"  IF NOT EXISTS (SELECT 1 FROM gradeq_state_transitions WHERE kind = TG_ARGV[0]"
	"   AND from_state = OLD.state AND to_state = NEW.state) THEN"
	"   RAISE EXCEPTION 'illegal % transition % -> %', TG_ARGV[0], OLD.state, NEW.state"
	"    USING ERRCODE = 'check_violation';"
	"  END IF;"
	"  RETURN NEW;"
	" END $$;"
	"CREATE TRIGGER gradeq_jobs_transition BEFORE UPDATE OF state ON gradeq_jobs"
	" FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)"
	" EXECUTE FUNCTION gradeq_check_transition('job');"
	"CREATE TRIGGER gradeq_runs_transition BEFORE UPDATE OF state ON gradeq_runs"
	" FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)"
	" EXECUTE FUNCTION gradeq_check_transition('run');",
	/* 4: least-privilege roles (README, Production): gradeq_owner owns
	 * gradeq's objects, gradeq_consumer reads the input tables and writes
	 * only the output and gradeq_* tables; both NOLOGIN, granted to login
	 * roles. Each step that the migrating user may not take is skipped with
	 * a NOTICE (a WARNING, shown by gradeq-admin, when the roles cannot be
	 * created); a superuser can finish later with SELECT gradeq_setup_roles() */
	"CREATE OR REPLACE FUNCTION gradeq_setup_roles() RETURNS void LANGUAGE plpgsql AS $$"
	" DECLARE r record; role text; sch text := quote_ident(current_schema());"
	" BEGIN"
	"  FOREACH role IN ARRAY ARRAY['gradeq_owner', 'gradeq_consumer'] LOOP"
	"   IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role) THEN"
	"    BEGIN EXECUTE format('CREATE ROLE %I NOLOGIN', role);"
	"    EXCEPTION WHEN insufficient_privilege THEN"
	"     RAISE WARNING 'gradeq: role % not created: % lacks CREATEROLE; as a superuser run"
	" CREATE ROLE % NOLOGIN, then SELECT gradeq_setup_roles()', role, current_user, role;"
	"     RETURN;"
	"    END;"
	"   END IF;"
	"  END LOOP;"
	"  BEGIN EXECUTE format('GRANT gradeq_owner TO %I', current_user);"
	"  EXCEPTION WHEN OTHERS THEN"
	"   RAISE NOTICE 'gradeq: % not made a member of gradeq_owner: %', current_user, SQLERRM;"
	"  END;"
	"  BEGIN EXECUTE format('GRANT USAGE ON SCHEMA %s TO gradeq_consumer', sch);"
	/* the owner checks foreign keys and runs later migrations */
	"   EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %s TO gradeq_owner', sch);"
	"  EXCEPTION WHEN OTHERS THEN"
	"   RAISE NOTICE 'gradeq: privileges on schema % not granted: %', sch, SQLERRM;"
	"  END;"
	"  FOR r IN SELECT c.oid::regclass AS obj, c.relkind FROM pg_class c"
	"   WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'S')"
	"   AND (c.relname LIKE 'gradeq\\_%' OR c.relname LIKE 'grades\\_persistent%') LOOP"
	"   BEGIN"
	"    IF r.relkind = 'r' THEN"
	"     EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %s TO gradeq_consumer', r.obj);"
	"     EXECUTE format('ALTER TABLE %s OWNER TO gradeq_owner', r.obj);"
	"    ELSE"
	"     EXECUTE format('GRANT USAGE, SELECT ON SEQUENCE %s TO gradeq_consumer', r.obj);"
	"    END IF;"
	"   EXCEPTION WHEN OTHERS THEN"
	"    RAISE NOTICE 'gradeq: privileges on % not set: %', r.obj, SQLERRM;"
	"   END;"
	"  END LOOP;"
	"  BEGIN ALTER FUNCTION gradeq_check_transition() OWNER TO gradeq_owner;"
	"  EXCEPTION WHEN OTHERS THEN NULL;"
	"  END;"
	"  FOR r IN SELECT t FROM unnest(ARRAY['courses', 'course_blocks',"
	"   'student_courseenrollment', 'courseware_studentmodule']) AS t"
	"   WHERE to_regclass(t) IS NOT NULL LOOP"
	"   BEGIN EXECUTE format('GRANT SELECT ON %I TO gradeq_consumer', r.t);"
	"   EXCEPTION WHEN OTHERS THEN"
	"    RAISE NOTICE 'gradeq: SELECT on input table % not granted (%): ask its owner to"
	" GRANT SELECT ON % TO gradeq_consumer', r.t, SQLERRM, r.t;"
	"   END;"
	"  END LOOP;"
	"  BEGIN"
	"   EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE gradeq_owner IN SCHEMA %s GRANT"
	" SELECT, INSERT, UPDATE ON TABLES TO gradeq_consumer', sch);"
	"   EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE gradeq_owner IN SCHEMA %s GRANT"
	" USAGE, SELECT ON SEQUENCES TO gradeq_consumer', sch);"
	"  EXCEPTION WHEN OTHERS THEN"
	"   RAISE NOTICE 'gradeq: default privileges of gradeq_owner not set: %', SQLERRM;"
	"  END;"
	" END $$;"
	"SELECT gradeq_setup_roles();",
	/* 5: a run settles in one place: the update that brings its counters
	 * to its total makes it complete, or failed when a job is dead */
	"CREATE FUNCTION gradeq_settle_run() RETURNS trigger LANGUAGE plpgsql AS $$"
	" BEGIN"
	"  IF NEW.state = 'running' AND NEW.jobs_complete + NEW.jobs_dead + NEW.jobs_canceled"
	"   + NEW.jobs_discarded >= NEW.jobs_total THEN"
	"   NEW.state := CASE WHEN NEW.jobs_dead > 0 THEN 'failed' ELSE 'complete' END;"
	"   NEW.finished_at := now();"
	"  END IF;"
	"  RETURN NEW;"
	" END $$;"
	/* before gradeq_runs_transition (triggers fire in name order), which
	 * then checks the settled state */
	"CREATE TRIGGER gradeq_runs_settle BEFORE UPDATE ON gradeq_runs"
	" FOR EACH ROW EXECUTE FUNCTION gradeq_settle_run();",
};

#define NMIGRATIONS (int)(sizeof(migrations) / sizeof(migrations[0]))

int gradeq_store_connect(const char *dsn, const char *appname, int statement_timeout_ms,
			 struct gradeq_store **out)
{
	const char *keys[] = {"dbname", "application_name", "connect_timeout", NULL};
	const char *vals[] = {dsn ? dsn : "", appname, "10", NULL};
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

int gradeq_store_migrate(struct gradeq_store *st, bool with_input, int *applied)
{
	int rc, version = 0, ran = 0;
	char sql[256];

	if (applied)
		*applied = 0;
	if (with_input) {
		rc = gradeq_store_exec(st, input_tables_sql);
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
	if (version > NMIGRATIONS) {
		rc = gradeq_error(GRADEQ_ERR_STATE,
				  "database schema is version %d, newer than this gradeq (%d)",
				  version, NMIGRATIONS);
		goto out;
	}
	for (int v = version + 1; v <= NMIGRATIONS; v++) {
		rc = gradeq_store_exec(st, "BEGIN");
		if (rc)
			goto out;
		rc = gradeq_store_exec(st, migrations[v - 1]);
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
	if (!rc && NMIGRATIONS >= 3)
		rc = sync_transitions(st);
out:
	exec_quietly(st, "SELECT pg_advisory_unlock(" GRADEQ_STR(GRADEQ_MIGRATION_LOCK_KEY) ")");
	if (applied)
		*applied = ran;
	return rc;
}
