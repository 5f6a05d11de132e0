/* gradeq-admin: schema, demo data, status and the release registry. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gradeq/checkconfig.h"
#include "gradeq/cli.h"
#include "gradeq/log.h"
#include "gradeq/events.h"
#include "gradeq/job.h"
#include "gradeq/plan.h"
#include "gradeq/seed.h"
#include "gradeq/states.h"

static const char usage[] =
	"Usage: gradeq-admin [-c FILE] [--json] COMMAND [ARGS]\n"
	"\n"
	"Commands:\n"
	"  migrate [--with-input-tables]   create or upgrade gradeq's tables (and, for\n"
	"                                  demos and tests, the platform's input tables)\n"
	"  seed [--courses small,medium,large] [--learners N] [--seed N] [--prefix P]\n"
	"       [--replace]                generate demo courses, learners and scores\n"
	"  status [RUN] [--watch]          runs with jobs and learners by state, rates\n"
	"                                  and ETA, and each release's queue depths\n"
	"                                  (unacked from management_url when set);\n"
	"                                  --json: the shape in docs/status.md\n"
	"  states [--json]                 the run and job state machines\n"
	"  check-config [FILE]             validate the configuration (FILE, else -c or\n"
	"                                  the default) and print the effective settings,\n"
	"                                  secrets masked; errors name file, line, setting\n"
	"  events [--run RUN] [--count N]  follow the pushed state changes live\n"
	"                                  (run.<id>.<state>, job.<state>); --json\n"
	"                                  prints each event's JSON body\n"
	"  release list                    releases with their states and queues\n"
	"  release promote R               make R the release publishers use; the\n"
	"                                  previous one starts draining\n"
	"  release drain R [--forward-retries]\n"
	"                                  mark R draining (its consumers exit once\n"
	"                                  its queues are empty); --forward-retries\n"
	"                                  moves jobs waiting in its retry tiers to the\n"
	"                                  promoted release, confirmed\n"
	"  release retire R [--move-dead-to R2]\n"
	"                                  delete a drained release's queues and mark\n"
	"                                  it retired; refuses while its queues hold\n"
	"                                  work or consumers, or dead letters (unless\n"
	"                                  moved, confirmed, to R2's dead queue)\n"
	"  cancel RUN [--yes]              cancel a run: consumers ack its pending jobs\n"
	"                                  without grading them; committed grades stay\n"
	"  purge-history --older-than DUR [--yes]\n"
	"                                  delete finished runs, their jobs and events\n"
	"                                  older than DUR (e.g. 90d, 12h); never grades\n"
	"  plan [--course ID | --size-class S] [--consumers N] [--plot FILE]\n"
	"       [--overhead-share 0.05] [--failure-cost 60] [--arrival-rate R]\n"
	"                                  fit batch ms = O + p * learners over recorded\n"
	"                                  jobs, recommend a batch size per size class,\n"
	"                                  predict the backfill; with R (learners/s\n"
	"                                  changing) the periodic run's T = O/(1-P)\n"
	"\n"
	"Options:\n"
	"  -c, --config FILE   configuration file (default " GRADEQ_DEFAULT_CONF ")\n"
	"      --json          machine-readable output\n"
	"  -h, --help          this text\n"
	"  -V, --version       print the version\n"
	"\n"
	"Environment: GRADEQ_AMQP_URL and GRADEQ_PG_DSN override the configuration.\n";

struct admin {
	struct gradeq_cli cli;
	bool json;
	struct gradeq_store *st;
};

static int parse_int(struct admin *a, const char *what, const char *s, long min, long max,
		     long *out)
{
	char *end = NULL;
	long v = strtol(s, &end, 10);

	if (!*s || *end || v < min || v > max) {
		gradeq_cli_error(&a->cli, "%s must be an integer from %ld to %ld, not '%s'", what,
				 min, max, s);
		return GRADEQ_ERR_INVALID;
	}
	*out = v;
	return 0;
}

static int cmd_migrate(struct admin *a, int argc, char **argv)
{
	bool with_input = false;
	int applied = 0, version = 0, rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--with-input-tables") == 0) {
			with_input = true;
		} else {
			gradeq_cli_error(&a->cli, "migrate: unknown option '%s'", argv[i]);
			return 2;
		}
	}
	rc = gradeq_store_migrate(a->st, with_input, &applied);
	if (!rc)
		rc = gradeq_store_schema_version(a->st, &version);
	if (rc) {
		gradeq_cli_error(&a->cli, "%s", gradeq_errmsg(rc));
		return 1;
	}
	if (a->json)
		printf("{\"applied\":%d,\"version\":%d}\n", applied, version);
	else
		printf("schema at version %d (%d migration%s applied)\n", version, applied,
		       applied == 1 ? "" : "s");
	return 0;
}

static int cmd_seed(struct admin *a, int argc, char **argv)
{
	static const struct option opts[] = {
		{"courses", required_argument, NULL, 'C'},
		{"learners", required_argument, NULL, 'l'},
		{"seed", required_argument, NULL, 's'},
		{"prefix", required_argument, NULL, 'p'},
		{"replace", no_argument, NULL, 'R'},
		{NULL, 0, NULL, 0},
	};
	struct gradeq_seed_opts o;
	struct gradeq_seed_stats stats;
	const char *classes[64];
	char *list = NULL, *save = NULL;
	long v;
	int opt, rc, status = 1;

	memset(&o, 0, sizeof(o));
	list = strdup("small,medium,large");
	o.learners = 2000;
	o.seed = 42;
	o.replace = true;
	optind = 1;
	while (list && (opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'C':
			free(list);
			list = strdup(optarg);
			break;
		case 'l':
			if (parse_int(a, "--learners", optarg, 0, GRADEQ_SEED_MAX_LEARNERS, &v))
				goto out;
			o.learners = (int)v;
			break;
		case 's':
			if (parse_int(a, "--seed", optarg, 0, 0x7fffffffL, &v))
				goto out;
			o.seed = (uint64_t)v;
			break;
		case 'p': o.prefix = optarg; break;
		case 'R': o.replace = true; break;
		default: status = 2; goto out;
		}
	}
	if (!list)
		goto out;
	for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (strcmp(t, "small") && strcmp(t, "medium") && strcmp(t, "large")) {
			gradeq_cli_error(&a->cli,
					 "seed: unknown course class '%s' (small, medium, large)",
					 t);
			status = 2;
			goto out;
		}
		if (o.nclasses < 64)
			classes[o.nclasses++] = t;
	}
	o.classes = classes;
	rc = gradeq_seed_run(a->st, &o, &stats);
	if (rc) {
		gradeq_cli_error(&a->cli, "%s", gradeq_errmsg(rc));
		goto out;
	}
	if (a->json)
		printf("{\"courses\":%d,\"blocks\":%ld,\"enrollments\":%ld,\"score_rows\":%ld,"
		       "\"seconds\":%.3f}\n",
		       stats.courses, stats.blocks, stats.enrollments, stats.score_rows,
		       stats.seconds);
	else
		printf("seeded %d courses: %ld blocks, %ld enrollments, %ld score rows in %.1f s\n",
		       stats.courses, stats.blocks, stats.enrollments, stats.score_rows,
		       stats.seconds);
	status = 0;
out:
	free(list);
	return status;
}

static volatile sig_atomic_t events_stop;

/* One JSON document per run; the shape is documented in
 * docs/status.md and kept stable. */
static const char runs_json_sql[] =
	"WITH r AS (SELECT * FROM gradeq_runs WHERE ($1::uuid IS NULL OR run_id = $1::uuid)"
	"  ORDER BY created_at DESC LIMIT 20),"
	" live AS (SELECT j.run_id, count(*) FILTER (WHERE j.state = 'in_progress') AS in_progress,"
	"  count(*) FILTER (WHERE j.state = 'retrying') AS retrying"
	"  FROM gradeq_jobs j JOIN r USING (run_id)"
	"  WHERE j.state IN ('in_progress', 'retrying') GROUP BY j.run_id),"
	" recent AS (SELECT j.run_id, sum(j.learners) AS learners FROM gradeq_jobs j JOIN r"
	"  USING (run_id) WHERE j.state = 'complete' AND j.finished_at > now() - interval '1 minute'"
	"  GROUP BY j.run_id)"
	" SELECT coalesce(json_agg(x ORDER BY x.created_at DESC), '[]')::text FROM ("
	" SELECT r.run_id, r.release, r.state, r.created_at, r.published_at, r.finished_at,"
	"  r.courses, r.learners_total, r.learners_complete,"
	"  json_build_object('total', r.jobs_total, 'complete', r.jobs_complete,"
	"   'dead', r.jobs_dead, 'canceled', r.jobs_canceled, 'discarded', r.jobs_discarded,"
	"   'in_progress', coalesce(l.in_progress, 0), 'retrying', coalesce(l.retrying, 0),"
	"   'pending', greatest(r.jobs_total - r.jobs_complete - r.jobs_dead - r.jobs_canceled"
	"    - r.jobs_discarded - coalesce(l.in_progress, 0) - coalesce(l.retrying, 0), 0)) AS jobs,"
	"  json_build_object('last_minute', round(coalesce(rc.learners, 0) / 60.0, 1),"
	"   'overall', round((r.learners_complete / greatest(extract(epoch FROM"
	"    coalesce(r.finished_at, now()) - r.created_at), 0.001))::numeric, 1)) AS learners_per_s,"
	"  CASE WHEN r.state IN ('publishing', 'running') AND coalesce(rc.learners, 0) > 0 THEN"
	"   round((r.learners_total - r.learners_complete) / (rc.learners / 60.0)) END AS eta_seconds,"
	"  (SELECT json_build_object('course_id', j.course_id, 'ms_per_learner',"
	"    round((avg(j.ms_total / greatest(j.learners, 1)))::numeric, 3))"
	"   FROM gradeq_jobs j WHERE j.run_id = r.run_id AND j.state = 'complete'"
	"   AND j.ms_total IS NOT NULL GROUP BY j.course_id"
	"   ORDER BY avg(j.ms_total / greatest(j.learners, 1)) DESC LIMIT 1) AS slowest_course,"
	"  coalesce((SELECT json_agg(e) FROM (SELECT ev.job_id, ev.at, ev.to_state AS state,"
	"    ev.detail AS error FROM gradeq_job_events ev WHERE ev.run_id = r.run_id"
	"    AND ev.detail IS NOT NULL ORDER BY ev.at DESC LIMIT 5) e), '[]') AS last_errors"
	" FROM r LEFT JOIN live l USING (run_id) LEFT JOIN recent rc USING (run_id)) x";

/* The unacked count of queue as JSON: a number, or null when unknown. */
static void unacked_json(char *buf, size_t len, const struct gradeq_mgmt *m, const char *queue)
{
	int64_t n = gradeq_mgmt_unacked(m, queue);

	if (n < 0)
		snprintf(buf, len, "null");
	else
		snprintf(buf, len, "%lld", (long long)n);
}

/* Queue depths of every release not retired: ready messages and consumers
 * from passive declares (exact, now), unacknowledged ones from the
 * management API when it is configured (AMQP gives no unacked count; the
 * API's figure is its last statistics sample), else null. */
static int releases_json(struct admin *a, char **out)
{
	struct gradeq_topology topo = gradeq_cli_topology(&a->cli);
	struct gradeq_broker *b = NULL;
	PGresult *res = PQexec(gradeq_store_conn(a->st),
			       "SELECT name, state FROM gradeq_releases WHERE state <> 'retired'"
			       " ORDER BY created_at");
	struct gradeq_mgmt *m = NULL;
	size_t cap = 256, len = 0;
	char *buf = NULL, q[GRADEQ_NAME_MAX], wu[24], du[24];
	int rc = 0;

	*out = NULL;
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = gradeq_store_result_error(a->st, res, "reading releases");
		goto out;
	}
	cap += (size_t)PQntuples(res) * (600 + 80 * (size_t)topo.nretry_tiers);
	buf = malloc(cap);
	if (!buf) {
		rc = GRADEQ_ERR_NOMEM;
		goto out;
	}
	if (gradeq_cli_broker(&a->cli, NULL, &b))
		b = NULL;
	if (b)
		gradeq_cli_mgmt(&a->cli, &m);
	len += (size_t)snprintf(buf + len, cap - len, "[");
	for (int i = 0; i < PQntuples(res); i++) {
		const char *name = PQgetvalue(res, i, 0);
		uint32_t ready = 0, cons = 0, dead = 0, r;
		bool ok = b &&
			  !gradeq_broker_queue_info(b, gradeq_work_queue(q, name), &ready, &cons) &&
			  !gradeq_broker_queue_info(b, gradeq_dead_queue(q, name), &dead, NULL);

		if (b && gradeq_broker_broken(b)) {
			gradeq_broker_free(b);
			b = NULL;
		}
		len += (size_t)snprintf(buf + len, cap - len,
					"%s{\"name\":\"%s\",\"state\":\"%s\",\"queues\":",
					i ? "," : "", name, PQgetvalue(res, i, 1));
		if (!ok) {
			len += (size_t)snprintf(buf + len, cap - len, "null}");
			continue;
		}
		unacked_json(wu, sizeof(wu), m, gradeq_work_queue(q, name));
		unacked_json(du, sizeof(du), m, gradeq_dead_queue(q, name));
		len += (size_t)snprintf(
			buf + len, cap - len,
			"{\"work\":{\"ready\":%u,\"unacked\":%s,\"consumers\":%u},\"retry\":[",
			ready, wu, cons);
		for (int t = 0; t < topo.nretry_tiers; t++) {
			r = 0;
			if (gradeq_broker_queue_info(
				    b, gradeq_retry_queue(q, name, topo.retry_tiers[t]), &r,
				    NULL) &&
			    gradeq_broker_broken(b))
				break;
			len += (size_t)snprintf(buf + len, cap - len,
						"%s{\"seconds\":%d,\"ready\":%u}", t ? "," : "",
						topo.retry_tiers[t], r);
		}
		len += (size_t)snprintf(buf + len, cap - len,
					"],\"dead\":{\"ready\":%u,\"unacked\":%s}}}", dead, du);
	}
	snprintf(buf + len, cap - len, "]");
	*out = buf;
	buf = NULL;
out:
	free(buf);
	gradeq_mgmt_free(m);
	gradeq_broker_free(b);
	PQclear(res);
	return rc;
}

static int status_once(struct admin *a, const char *run, bool clear)
{
	const char *params[1] = {run};
	char *releases = NULL;
	PGresult *res;
	int rc;

	res = PQexecParams(gradeq_store_conn(a->st), runs_json_sql, 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = gradeq_store_result_error(a->st, res, "status");
		goto out;
	}
	rc = releases_json(a, &releases);
	if (rc)
		goto out;
	if (a->json) {
		printf("{\"runs\":%s,\"releases\":%s}\n", PQgetvalue(res, 0, 0), releases);
		goto out;
	}
	if (clear)
		fputs("\033[H\033[2J", stdout);
	{
		/* the text view is rendered from the same JSON by the server */
		const char *p2[1] = {PQgetvalue(res, 0, 0)};
		PGresult *t = PQexecParams(
			gradeq_store_conn(a->st),
			"SELECT format('%-36s  %-10s  %-9s  %5s/%-5s  %4s  %4s  %4s  %9s/%-9s  %7s  %s',"
			" r->>'run_id', r->>'release', r->>'state', r->'jobs'->>'complete',"
			" r->'jobs'->>'total', r->'jobs'->>'dead', r->'jobs'->>'retrying',"
			" r->'jobs'->>'canceled', r->>'learners_complete', r->>'learners_total',"
			" r->'learners_per_s'->>'last_minute', coalesce(r->>'eta_seconds' || ' s', '-'))"
			" FROM json_array_elements($1::json) r",
			1, NULL, p2, NULL, NULL, 0);

		printf("%-36s  %-10s  %-9s  %11s  %4s  %4s  %4s  %19s  %7s  %s\n", "RUN", "RELEASE",
		       "STATE", "JOBS", "DEAD", "RETR", "CANC", "LEARNERS", "L/S(1M)", "ETA");
		for (int i = 0; PQresultStatus(t) == PGRES_TUPLES_OK && i < PQntuples(t); i++)
			puts(PQgetvalue(t, i, 0));
		PQclear(t);
	}
	{
		const char *p3[1] = {releases};
		PGresult *t = PQexecParams(
			gradeq_store_conn(a->st),
			"SELECT format('%-16s  %-9s  work ready=%s unacked=%s consumers=%s  retry=%s"
			"  dead=%s',"
			" r->>'name', r->>'state', coalesce(r->'queues'->'work'->>'ready', '-'),"
			" coalesce(r->'queues'->'work'->>'unacked', '-'),"
			" coalesce(r->'queues'->'work'->>'consumers', '-'),"
			" coalesce((SELECT string_agg(t->>'ready', '/') FROM"
			"  json_array_elements(r->'queues'->'retry') t), '-'),"
			" coalesce(r->'queues'->'dead'->>'ready', '-'))"
			" FROM json_array_elements($1::json) r",
			1, NULL, p3, NULL, NULL, 0);

		printf("\n");
		for (int i = 0; PQresultStatus(t) == PGRES_TUPLES_OK && i < PQntuples(t); i++)
			puts(PQgetvalue(t, i, 0));
		PQclear(t);
	}
	fflush(stdout);
out:
	free(releases);
	PQclear(res);
	if (rc)
		gradeq_cli_error(&a->cli, "%s", gradeq_errmsg(rc));
	return rc;
}

static int cmd_status(struct admin *a, int argc, char **argv)
{
	const char *run = NULL;
	bool watch = false;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--watch") == 0 || strcmp(argv[i], "-w") == 0)
			watch = true;
		else if (!run && argv[i][0] != '-')
			run = argv[i];
		else {
			gradeq_cli_error(&a->cli, "status: unexpected argument '%s'", argv[i]);
			return 2;
		}
	}
	if (run) {
		const char *params[1] = {run};
		PGresult *res = PQexecParams(gradeq_store_conn(a->st),
					     "SELECT 1 FROM gradeq_runs WHERE run_id::text = $1", 1,
					     NULL, params, NULL, NULL, 0);
		bool found = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;

		PQclear(res);
		if (!found) {
			gradeq_cli_error(&a->cli, "unknown run '%s'", run);
			return 1;
		}
	}
	if (!watch)
		return status_once(a, run, false) ? 1 : 0;
	/* --watch redraws every second on a terminal; elsewhere it prints a
	 * block every second until interrupted */
	while (!events_stop) {
		if (status_once(a, run, isatty(STDOUT_FILENO)))
			return 1;
		sleep(1);
	}
	return 0;
}

/* The state machines, from the one table the code and the database's
 * transition trigger share (src/states.c). */
static int cmd_states(struct admin *a)
{
	char *json = gradeq_states_json();
	size_t n;

	if (!json) {
		gradeq_cli_error(&a->cli, "out of memory");
		return 1;
	}
	if (a->json) {
		puts(json);
	} else {
		for (int k = 0; k < 2; k++) {
			const struct gradeq_transition *t =
				gradeq_transitions(k ? GRADEQ_STATE_JOB : GRADEQ_STATE_RUN, &n);

			printf("%s states:\n", k ? "job" : "run");
			for (size_t i = 0; i < n; i++)
				printf("  %-11s -> %-11s  %s\n", t[i].from, t[i].to, t[i].why);
		}
	}
	free(json);
	return 0;
}

static int release_list(struct admin *a)
{
	static const char sql[] =
		"SELECT name, state, schema_version, to_char(updated_at, 'YYYY-MM-DD HH24:MI:SS'),"
		" (SELECT count(*) FROM gradeq_runs r WHERE r.release = g.name)"
		" FROM gradeq_releases g ORDER BY created_at";
	PGresult *res = PQexec(gradeq_store_conn(a->st), sql);
	struct gradeq_mgmt *m = NULL;
	struct gradeq_broker *b = NULL;
	int rc = 0;

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = gradeq_store_result_error(a->st, res, "release list");
		gradeq_cli_error(&a->cli, "%s", gradeq_errmsg(rc));
		PQclear(res);
		return 1;
	}
	if (gradeq_cli_broker(&a->cli, NULL, &b))
		b = NULL; /* queue columns stay empty without a broker */
	if (b)
		gradeq_cli_mgmt(&a->cli, &m);
	if (a->json)
		fputs("[", stdout);
	else
		printf("%-16s  %-9s  %6s  %5s  %9s  %9s  %9s  %s\n", "RELEASE", "STATE", "SCHEMA",
		       "RUNS", "WORK", "UNACKED", "CONSUMERS", "DEAD");
	for (int i = 0; i < PQntuples(res); i++) {
		char q[GRADEQ_NAME_MAX], wu[24];
		uint32_t ready = 0, cons = 0, dead = 0;
		bool have =
			b &&
			!gradeq_broker_queue_info(b, gradeq_work_queue(q, PQgetvalue(res, i, 0)),
						  &ready, &cons) &&
			!gradeq_broker_queue_info(b, gradeq_dead_queue(q, PQgetvalue(res, i, 0)),
						  &dead, NULL);

		unacked_json(wu, sizeof(wu), m, gradeq_work_queue(q, PQgetvalue(res, i, 0)));
		if (a->json)
			printf("%s{\"name\":\"%s\",\"state\":\"%s\",\"schema_version\":%s,"
			       "\"runs\":%s,\"work_ready\":%d,\"work_unacked\":%s,\"consumers\":%d,"
			       "\"dead_ready\":%d}",
			       i ? "," : "", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
			       PQgetvalue(res, i, 2), PQgetvalue(res, i, 4), have ? (int)ready : -1,
			       have ? wu : "null", have ? (int)cons : -1, have ? (int)dead : -1);
		else if (have)
			printf("%-16s  %-9s  %6s  %5s  %9u  %9s  %9u  %u\n", PQgetvalue(res, i, 0),
			       PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), PQgetvalue(res, i, 4),
			       ready, strcmp(wu, "null") ? wu : "-", cons, dead);
		else
			printf("%-16s  %-9s  %6s  %5s  %9s  %9s  %9s  %s\n", PQgetvalue(res, i, 0),
			       PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), PQgetvalue(res, i, 4),
			       "-", "-", "-", "-");
	}
	if (a->json)
		puts("]");
	gradeq_mgmt_free(m);
	gradeq_broker_free(b);
	PQclear(res);
	return 0;
}

static int release_promote(struct admin *a, const char *name)
{
	struct gradeq_topology topo = gradeq_cli_topology(&a->cli);
	struct gradeq_broker *b = NULL;
	const char *params[2] = {name, NULL};
	char ver[16];
	PGresult *res = NULL, *prev = NULL;
	int rc;

	if (!gradeq_release_name_ok(name)) {
		gradeq_cli_error(&a->cli, "bad release name '%s'", name);
		return 2;
	}
	/* the queues exist before anyone is told to publish to them */
	rc = gradeq_cli_broker(&a->cli, name, &b);
	if (!rc)
		rc = gradeq_broker_declare(b, name, &topo);
	if (rc)
		goto out;
	snprintf(ver, sizeof(ver), "%d", GRADEQ_SCHEMA_VERSION);
	params[1] = ver;
	res = PQexecParams(
		gradeq_store_conn(a->st),
		"WITH cur AS (SELECT state FROM gradeq_releases WHERE name = $1),"
		" bad AS (SELECT 1 FROM cur WHERE state = 'retired'),"
		" old AS (UPDATE gradeq_releases SET state = 'draining', updated_at = now()"
		"  WHERE state = 'promoted' AND name <> $1 AND NOT EXISTS (SELECT 1 FROM bad)"
		"  RETURNING name)"
		" SELECT (SELECT state FROM cur), (SELECT string_agg(name, ',') FROM old)",
		1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = gradeq_store_result_error(a->st, res, "promote");
		goto out;
	}
	if (!PQgetisnull(res, 0, 0) && strcmp(PQgetvalue(res, 0, 0), "retired") == 0) {
		rc = gradeq_error(GRADEQ_ERR_STATE, "release '%s' is retired", name);
		goto out;
	}
	prev = res;
	res = PQexecParams(
		gradeq_store_conn(a->st),
		"INSERT INTO gradeq_releases (name, state, schema_version) VALUES ($1,"
		" 'promoted', $2::int) ON CONFLICT (name) DO UPDATE SET state = 'promoted',"
		" updated_at = now()",
		2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		rc = gradeq_store_result_error(a->st, res, "promote");
		goto out;
	}
	/* tell the old release's consumers now; they also poll the registry */
	{
		const char *olds = PQgetisnull(prev, 0, 1) ? "" : PQgetvalue(prev, 0, 1);
		char *copy = strdup(olds), *save = NULL;

		for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t;
		     t = strtok_r(NULL, ",", &save)) {
			if (gradeq_event_release(b, t, "draining"))
				log_warn("event=event_publish_failed release=%s", t);
			printf("release %s draining\n", t);
		}
		free(copy);
		if (gradeq_event_release(b, name, "promoted"))
			log_warn("event=event_publish_failed release=%s", name);
	}
	printf("release %s promoted\n", name);
out:
	PQclear(res);
	PQclear(prev);
	gradeq_broker_free(b);
	if (rc) {
		gradeq_cli_error(&a->cli, "%s", gradeq_errmsg(rc));
		return 1;
	}
	return 0;
}

/* Asks on a terminal; without one (scripts) the command goes ahead. */
static bool confirmed(const char *question, bool yes)
{
	char line[16];

	if (yes || !isatty(STDIN_FILENO))
		return true;
	fprintf(stderr, "%s [y/N] ", question);
	if (!fgets(line, sizeof(line), stdin))
		return false;
	return line[0] == 'y' || line[0] == 'Y';
}

/* Parses 90d, 12h, 30m, 45s (or bare seconds) into seconds. */
static int parse_duration(const char *s, long *secs)
{
	char *end = NULL;
	long v = strtol(s, &end, 10), mul = 1;

	if (end == s || v < 0)
		return GRADEQ_ERR_INVALID;
	if (*end == 'd')
		mul = 86400;
	else if (*end == 'h')
		mul = 3600;
	else if (*end == 'm')
		mul = 60;
	else if (*end == 's' || *end == '\0')
		mul = 1;
	else
		return GRADEQ_ERR_INVALID;
	if (*end && end[1])
		return GRADEQ_ERR_INVALID;
	*secs = v * mul;
	return 0;
}

static int cmd_cancel(struct admin *a, int argc, char **argv)
{
	const char *run = NULL;
	bool yes = false;
	const char *params[1];
	PGresult *res;
	int rc = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--yes") == 0 || strcmp(argv[i], "-y") == 0)
			yes = true;
		else if (!run)
			run = argv[i];
		else {
			gradeq_cli_error(&a->cli, "cancel: unexpected argument '%s'", argv[i]);
			return 2;
		}
	}
	if (!run) {
		gradeq_cli_error(&a->cli, "usage: gradeq-admin cancel RUN [--yes]");
		return 2;
	}
	if (!confirmed("Cancel the run's pending jobs?", yes))
		return 1;
	params[0] = run;
	res = PQexecParams(
		gradeq_store_conn(a->st),
		"WITH r AS (UPDATE gradeq_runs SET state = 'canceled', finished_at = now()"
		" WHERE run_id::text = $1 AND state IN ('publishing', 'running')"
		" RETURNING run_id),"
		" ev AS (INSERT INTO gradeq_job_events (run_id, from_state, to_state, by)"
		" SELECT run_id, 'running', 'canceled', 'gradeq-admin' FROM r)"
		" SELECT (SELECT count(*) FROM r),"
		" (SELECT state FROM gradeq_runs WHERE run_id::text = $1)",
		1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = gradeq_store_result_error(a->st, res, "cancel");
		gradeq_cli_error(&a->cli, "%s", gradeq_errmsg(rc));
	} else if (PQgetisnull(res, 0, 1)) {
		gradeq_cli_error(&a->cli, "unknown run '%s'", run);
		rc = 1;
	} else if (strcmp(PQgetvalue(res, 0, 0), "0") == 0 &&
		   strcmp(PQgetvalue(res, 0, 1), "canceled") != 0) {
		gradeq_cli_error(&a->cli, "run '%s' is already %s", run, PQgetvalue(res, 0, 1));
		rc = 1;
	} else if (a->json) {
		printf("{\"run_id\":\"%s\",\"state\":\"canceled\"}\n", run);
	} else {
		printf("run %s canceled\n", run);
	}
	PQclear(res);
	return rc ? 1 : 0;
}

static int cmd_purge_history(struct admin *a, int argc, char **argv)
{
	const char *older = NULL;
	bool yes = false;
	long secs = 0, total = 0;
	char interval[32];
	const char *params[1] = {interval};
	PGresult *res;
	int rc = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--yes") == 0 || strcmp(argv[i], "-y") == 0)
			yes = true;
		else if (strcmp(argv[i], "--older-than") == 0 && i + 1 < argc)
			older = argv[++i];
		else {
			gradeq_cli_error(&a->cli, "purge-history: unexpected argument '%s'",
					 argv[i]);
			return 2;
		}
	}
	if (!older)
		secs = (long)a->cli.cfg->retention_days * 86400;
	else if (parse_duration(older, &secs)) {
		gradeq_cli_error(&a->cli,
				 "--older-than takes a duration like 90d, 12h, 30m, not '%s'",
				 older);
		return 2;
	}
	snprintf(interval, sizeof(interval), "%ld seconds", secs);
	if (!yes) {
		res = PQexecParams(
			gradeq_store_conn(a->st),
			"SELECT count(*) FROM gradeq_runs WHERE finished_at < now() - $1::interval"
			" AND state IN ('complete', 'failed', 'canceled')",
			1, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			rc = gradeq_store_result_error(a->st, res, "purge-history");
			gradeq_cli_error(&a->cli, "%s", gradeq_errmsg(rc));
			PQclear(res);
			return 1;
		}
		printf("would delete %s finished run(s) older than %s with their jobs and events;"
		       " run again with --yes\n",
		       PQgetvalue(res, 0, 0), interval);
		PQclear(res);
		return 0;
	}
	/* bounded batches: short transactions, no long locks on the tables */
	for (;;) {
		long n;

		res = PQexecParams(
			gradeq_store_conn(a->st),
			"WITH r AS (SELECT run_id FROM gradeq_runs WHERE finished_at < now() -"
			" $1::interval AND state IN ('complete', 'failed', 'canceled') LIMIT 100),"
			" ev AS (DELETE FROM gradeq_job_events WHERE run_id IN (SELECT run_id FROM r)),"
			" d AS (DELETE FROM gradeq_runs WHERE run_id IN (SELECT run_id FROM r)"
			" RETURNING 1) SELECT count(*) FROM d",
			1, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			rc = gradeq_store_result_error(a->st, res, "purge-history");
			gradeq_cli_error(&a->cli, "%s", gradeq_errmsg(rc));
			PQclear(res);
			return 1;
		}
		n = strtol(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
		total += n;
		if (n == 0)
			break;
	}
	if (a->json)
		printf("{\"deleted_runs\":%ld}\n", total);
	else
		printf("deleted %ld run(s) older than %s\n", total, interval);
	return 0;
}

/* Moves every message of queue 'from' to exchange/key, each confirmed
 * before the original is acked. */
static int move_messages(struct gradeq_broker *src, struct gradeq_broker *dst, const char *from,
			 const char *exchange, const char *key, long *moved)
{
	int rc;

	*moved = 0;
	for (;;) {
		amqp_envelope_t env;

		rc = gradeq_broker_get(src, from, &env);
		if (rc == GRADEQ_ERR_NOT_FOUND)
			return 0;
		if (rc)
			return rc;
		rc = gradeq_broker_publish(dst, exchange, key, &env.message.properties,
					   env.message.body.bytes, env.message.body.len);
		if (!rc)
			rc = gradeq_broker_wait_confirms(dst, GRADEQ_CONFIRM_WAIT_MS);
		if (!rc)
			rc = gradeq_broker_ack(src, env.delivery_tag);
		amqp_destroy_envelope(&env);
		if (rc)
			return rc;
		(*moved)++;
	}
}

/* Parses "release VERB R [FLAG [VALUE]]": *name gets R, *flag the flag's
 * value (or the flag itself when it takes none), NULL when absent. Prints
 * one usage line and returns non-zero on anything else. */
static int release_args(struct admin *a, int argc, char **argv, const char *verb,
			const char *flagname, bool takes_value, const char **name,
			const char **flag)
{
	*name = *flag = NULL;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], flagname) == 0 && (!takes_value || i + 1 < argc)) {
			*flag = takes_value ? argv[++i] : argv[i];
		} else if (!*name && argv[i][0] != '-') {
			*name = argv[i];
		} else {
			gradeq_cli_error(&a->cli, "release %s: unexpected argument '%s'", verb,
					 argv[i]);
			return 2;
		}
	}
	if (!*name) {
		gradeq_cli_error(&a->cli, "usage: gradeq-admin release %s R [%s%s]", verb, flagname,
				 takes_value ? " R2" : "");
		return 2;
	}
	return 0;
}

static int release_retire(struct admin *a, int argc, char **argv)
{
	struct gradeq_topology topo = gradeq_cli_topology(&a->cli);
	struct gradeq_broker *b = NULL, *pub = NULL;
	const char *name = NULL, *move_to = NULL;
	char state[16], q[GRADEQ_NAME_MAX], key[GRADEQ_NAME_MAX];
	uint32_t ready = 0, consumers = 0, lost = 0;
	const char *params[1];
	PGresult *res = NULL;
	long moved = 0;
	int rc;

	if (release_args(a, argc, argv, "retire", "--move-dead-to", true, &name, &move_to))
		return 2;
	rc = gradeq_release_state(a->st, name, state);
	if (rc)
		goto out;
	if (strcmp(state, "promoted") == 0) {
		rc = gradeq_error(GRADEQ_ERR_STATE,
				  "release '%s' is promoted: promote another first", name);
		goto out;
	}
	rc = gradeq_cli_broker(&a->cli, name, &b);
	if (rc)
		goto out;
	/* every queue must be idle: work and retry tiers empty, no consumers */
	for (int i = -1; i < topo.nretry_tiers; i++) {
		if (i < 0)
			gradeq_work_queue(q, name);
		else
			gradeq_retry_queue(q, name, topo.retry_tiers[i]);
		rc = gradeq_broker_queue_info(b, q, &ready, &consumers);
		if (rc == GRADEQ_ERR_NOT_FOUND) {
			rc = 0;
			continue;
		}
		if (rc)
			goto out;
		if (ready || consumers) {
			rc = gradeq_error(GRADEQ_ERR_STATE,
					  "release '%s' is not drained: queue '%s' has %u ready "
					  "message(s) and %u consumer(s)",
					  name, q, ready, consumers);
			goto out;
		}
	}
	rc = gradeq_broker_queue_info(b, gradeq_dead_queue(q, name), &ready, &consumers);
	if (rc == GRADEQ_ERR_NOT_FOUND) {
		rc = 0;
		ready = 0;
	}
	if (rc)
		goto out;
	if (ready && !move_to) {
		rc = gradeq_error(
			GRADEQ_ERR_STATE,
			"release '%s' has %u dead letter(s) in '%s': replay them, or give "
			"--move-dead-to R2",
			name, ready, q);
		goto out;
	}
	if (ready) {
		if (!gradeq_release_name_ok(move_to) || strcmp(move_to, name) == 0) {
			rc = gradeq_error(GRADEQ_ERR_INVALID, "bad --move-dead-to release '%s'",
					  move_to);
			goto out;
		}
		rc = gradeq_cli_broker(&a->cli, move_to, &pub);
		if (!rc)
			rc = gradeq_broker_declare(pub, move_to, &topo);
		if (!rc)
			rc = gradeq_broker_confirm_mode(pub, GRADEQ_MOVE_CONFIRM_WINDOW);
		if (!rc)
			rc = move_messages(b, pub, q, GRADEQ_DEAD_EXCHANGE,
					   gradeq_work_key(key, move_to), &moved);
		if (rc)
			goto out;
	}
	for (int i = -2; i < topo.nretry_tiers; i++) {
		if (i == -2)
			gradeq_dead_queue(q, name);
		else if (i == -1)
			gradeq_work_queue(q, name);
		else
			gradeq_retry_queue(q, name, topo.retry_tiers[i]);
		rc = gradeq_broker_queue_delete(b, q, &lost);
		if (rc == GRADEQ_ERR_NOT_FOUND)
			rc = 0;
		if (rc)
			goto out;
		/* a message that arrived between the check and the delete */
		if (lost)
			log_error("event=retire_lost queue=%s messages=%u", q, lost);
	}
	params[0] = name;
	res = PQexecParams(gradeq_store_conn(a->st),
			   "UPDATE gradeq_releases SET state = 'retired', updated_at = now()"
			   " WHERE name = $1",
			   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		rc = gradeq_store_result_error(a->st, res, "retire");
		goto out;
	}
	if (moved)
		printf("moved %ld dead letter(s) to release %s\n", moved, move_to);
	printf("release %s retired\n", name);
out:
	PQclear(res);
	gradeq_broker_free(b);
	gradeq_broker_free(pub);
	if (rc) {
		gradeq_cli_error(&a->cli, "%s", gradeq_errmsg(rc));
		return 1;
	}
	return 0;
}

static void on_events_signal(int sig)
{
	(void)sig;
	events_stop = 1;
}

static int cmd_events(struct admin *a, int argc, char **argv)
{
	struct gradeq_broker *b = NULL;
	const char *run = NULL;
	struct sigaction sa;
	long count = 0;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--run") == 0 && i + 1 < argc) {
			run = argv[++i];
		} else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
			if (parse_int(a, "--count", argv[++i], 1, 1000000000L, &count))
				return 2;
		} else {
			gradeq_cli_error(&a->cli, "events: unexpected argument '%s'", argv[i]);
			return 2;
		}
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_events_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	rc = gradeq_broker_open(a->cli.cfg, a->cli.prog, NULL, GRADEQ_BROKER_CONSUME, &b);
	if (!rc)
		rc = gradeq_events_follow(b, run, a->json, count, &events_stop);
	gradeq_broker_free(b);
	if (rc) {
		gradeq_cli_error(&a->cli, "%s", gradeq_errmsg(rc));
		return 1;
	}
	return 0;
}

/* Marks a release draining (when it is not promoted) and, with
 * --forward-retries, moves what waits in its retry tiers to the promoted
 * release's work queue, each message confirmed before it is removed. */
static int release_drain(struct admin *a, int argc, char **argv)
{
	struct gradeq_topology topo = gradeq_cli_topology(&a->cli);
	struct gradeq_broker *b = NULL, *pub = NULL;
	const char *name = NULL, *flag = NULL;
	bool forward = false;
	char state[16], promoted[80], q[GRADEQ_NAME_MAX], key[GRADEQ_NAME_MAX];
	const char *params[1];
	PGresult *res = NULL;
	long moved = 0, n;
	int rc;

	if (release_args(a, argc, argv, "drain", "--forward-retries", false, &name, &flag))
		return 2;
	forward = flag != NULL;
	rc = gradeq_release_state(a->st, name, state);
	if (rc)
		goto out;
	if (strcmp(state, "promoted") == 0 || strcmp(state, "retired") == 0) {
		rc = gradeq_error(GRADEQ_ERR_STATE, "release '%s' is %s: %s", name, state,
				  strcmp(state, "promoted") == 0 ? "promote another release first"
								 : "nothing to drain");
		goto out;
	}
	params[0] = name;
	res = PQexecParams(gradeq_store_conn(a->st),
			   "UPDATE gradeq_releases SET state = 'draining', updated_at = now()"
			   " WHERE name = $1 AND state = 'active'",
			   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		rc = gradeq_store_result_error(a->st, res, "drain");
		goto out;
	}
	rc = gradeq_cli_broker(&a->cli, name, &b);
	if (!rc && gradeq_event_release(b, name, "draining"))
		log_warn("event=event_publish_failed release=%s", name);
	if (rc || !forward)
		goto out;
	rc = gradeq_release_resolve(a->st, NULL, promoted, sizeof(promoted));
	if (!rc)
		rc = gradeq_cli_broker(&a->cli, promoted, &pub);
	if (!rc)
		rc = gradeq_broker_declare(pub, promoted, &topo);
	if (!rc)
		rc = gradeq_broker_confirm_mode(pub, GRADEQ_MOVE_CONFIRM_WINDOW);
	for (int i = 0; !rc && i < topo.nretry_tiers; i++) {
		rc = move_messages(b, pub, gradeq_retry_queue(q, name, topo.retry_tiers[i]),
				   GRADEQ_EXCHANGE, gradeq_work_key(key, promoted), &n);
		if (rc == GRADEQ_ERR_NOT_FOUND)
			rc = 0;
		moved += n;
	}
	if (!rc)
		printf("forwarded %ld waiting retr%s to release %s\n", moved,
		       moved == 1 ? "y" : "ies", promoted);
out:
	PQclear(res);
	gradeq_broker_free(b);
	gradeq_broker_free(pub);
	if (rc) {
		gradeq_cli_error(&a->cli, "%s", gradeq_errmsg(rc));
		return 1;
	}
	printf("release %s draining\n", name);
	return 0;
}

static int cmd_release(struct admin *a, int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "list") == 0)
		return release_list(a);
	if (argc == 3 && strcmp(argv[1], "promote") == 0)
		return release_promote(a, argv[2]);
	if (argc >= 3 && strcmp(argv[1], "retire") == 0)
		return release_retire(a, argc, argv);
	if (argc >= 3 && strcmp(argv[1], "drain") == 0)
		return release_drain(a, argc, argv);
	gradeq_cli_error(&a->cli,
			 "usage: gradeq-admin release (list | promote R | drain R | retire R)");
	return 2;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct admin a;
	const char *cmd;
	int opt, rc, status = 1;

	memset(&a, 0, sizeof(a));
	a.cli.prog = "gradeq-admin";
	/* stop at the command: its options are its own */
	while ((opt = getopt_long(argc, argv, "+c:hV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': a.cli.conf_path = optarg; break;
		case 'j': a.json = true; break;
		case 'h': fputs(usage, stdout); return 0;
		case 'V': puts("gradeq-admin " GRADEQ_VERSION); return 0;
		default: fputs("Try 'gradeq-admin --help'.\n", stderr); return 2;
		}
	}
	if (optind >= argc) {
		fputs(usage, stderr);
		return 2;
	}
	cmd = argv[optind];
	argc -= optind;
	argv += optind;
	/* --json may also follow the command */
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--json") == 0) {
			a.json = true;
			memmove(&argv[i], &argv[i + 1], (size_t)(argc - i) * sizeof(*argv));
			argc--;
			i--;
		}
	if (strcmp(cmd, "states") == 0)
		return cmd_states(&a);
	if (strcmp(cmd, "check-config") == 0)
		return gradeq_check_config(argc > 1 ? argv[1] : a.cli.conf_path, stdout, stderr)
			       ? 1
			       : 0;
	if (strcmp(cmd, "plan") == 0) {
		if (gradeq_cli_init(&a.cli))
			return 1;
		rc = gradeq_cli_store(&a.cli, &a.st);
		if (rc)
			gradeq_cli_error(&a.cli, "%s", gradeq_errmsg(rc));
		else
			status = gradeq_plan_main(&a.cli, a.st, argc, argv, a.json);
		goto out;
	}
	if (strcmp(cmd, "migrate") && strcmp(cmd, "seed") && strcmp(cmd, "status") &&
	    strcmp(cmd, "release") && strcmp(cmd, "cancel") && strcmp(cmd, "purge-history") &&
	    strcmp(cmd, "events")) {
		gradeq_cli_error(&a.cli, "unknown command '%s' (see gradeq-admin --help)", cmd);
		return 2;
	}
	if (gradeq_cli_init(&a.cli))
		return 1;
	rc = gradeq_cli_store(&a.cli, &a.st);
	if (rc) {
		gradeq_cli_error(&a.cli, "%s", gradeq_errmsg(rc));
		goto out;
	}
	if (strcmp(cmd, "migrate") == 0)
		status = cmd_migrate(&a, argc, argv);
	else if (strcmp(cmd, "seed") == 0)
		status = cmd_seed(&a, argc, argv);
	else if (strcmp(cmd, "status") == 0)
		status = cmd_status(&a, argc, argv);
	else if (strcmp(cmd, "events") == 0)
		status = cmd_events(&a, argc, argv);
	else if (strcmp(cmd, "cancel") == 0)
		status = cmd_cancel(&a, argc, argv);
	else if (strcmp(cmd, "purge-history") == 0)
		status = cmd_purge_history(&a, argc, argv);
	else
		status = cmd_release(&a, argc, argv);
out:
	gradeq_store_free(a.st);
	gradeq_cli_release(&a.cli);
	return status;
}
