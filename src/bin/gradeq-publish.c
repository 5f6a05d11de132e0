/* gradeq-publish: cuts each course's enrollments into batches of explicit
 * user ids and publishes one job per batch, confirmed by the broker. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gradeq/cli.h"
#include "gradeq/grading.h"
#include "gradeq/events.h"
#include "gradeq/job.h"
#include "gradeq/log.h"

/* Jobs recorded (one COPY, one commit), then published, per round: fewer
 * commits (WAL flushes) per job. PENDING_IDS bounds the user ids held, so
 * large batches flush sooner and memory stays flat. */
#define PENDING_JOBS 512
#define PENDING_IDS 131072

static const char usage[] =
	"Usage: gradeq-publish [OPTIONS] (--course ID [--course ID ...] | --all-courses)\n"
	"\n"
	"Cut each course's enrollments into batches of explicit user ids and publish\n"
	"one grading job per batch to the release's work queue. A job counts as\n"
	"published only once the broker confirmed it. Prints the run id.\n"
	"\n"
	"Options:\n"
	"  -c, --config FILE     configuration file (default " GRADEQ_DEFAULT_CONF ")\n"
	"  -r, --release R       release to publish to (default: the promoted one);\n"
	"                        a release never seen before is recorded as active\n"
	"  -C, --course ID       a course to grade (repeatable)\n"
	"  -a, --all-courses     every course of the courses table\n"
	"  -b, --batch-size N    learners per job (default: batch_size in the config, 100)\n"
	"      --active-only     only active enrollments (default: all, as the platform)\n"
	"      --incremental     only learners with no stored course grade, one stored\n"
	"                        under another course version or grading policy, or\n"
	"                        score rows modified after their stored grade\n"
	"      --changed-since T as --incremental, but score rows modified after T (a\n"
	"                        PostgreSQL timestamp, e.g. '2026-01-31 04:00Z')\n"
	"  -n, --dry-run         count jobs and learners, publish nothing\n"
	"      --json            one JSON object on stdout\n"
	"  -q, --quiet           no progress lines\n"
	"  -h, --help            this text\n"
	"  -V, --version         print the version\n"
	"\n"
	"Environment: GRADEQ_AMQP_URL and GRADEQ_PG_DSN override the configuration.\n"
	"Exit status: 0 when every job was confirmed, 1 on error (one line on stderr),\n"
	"2 on bad usage.\n";

struct pub {
	struct gradeq_cli cli;
	struct gradeq_store *st; /* reads enrollments through a cursor */
	struct gradeq_store *wr; /* records the run and jobs */
	struct gradeq_broker *b;
	char release[80];
	char run_id[37];
	char key[GRADEQ_NAME_MAX];
	int batch_size;
	bool active_only, dry_run, json, quiet;
	bool incremental;          /* --incremental or --changed-since */
	const char *changed_since; /* NULL: after each learner's stored grade */
	long jobs, learners, courses;
	long events; /* events published on the same confirmed channel */
	struct gradeq_job pending[PENDING_JOBS];
	int npending;
	time_t last_progress;
	struct timespec t0;
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static double elapsed(const struct pub *p)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - p->t0.tv_sec) + (double)(t.tv_nsec - p->t0.tv_nsec) / 1e9;
}

static void progress(struct pub *p, bool final)
{
	time_t now = time(NULL);
	double s = elapsed(p);

	if (p->quiet || p->json || (!final && now == p->last_progress))
		return;
	p->last_progress = now;
	if (isatty(STDERR_FILENO))
		fprintf(stderr, "\r%s courses=%ld jobs=%ld learners=%ld rate=%.0f jobs/s%s",
			p->dry_run ? "counting" : "publishing", p->courses, p->jobs, p->learners,
			s > 0 ? (double)p->jobs / s : 0.0, final ? "\n" : "");
	else if (!final)
		log_info("event=progress run=%s courses=%ld jobs=%ld learners=%ld", p->run_id,
			 p->courses, p->jobs, p->learners);
}

/* Records the pending jobs (COPY, committed) and then publishes them: a
 * consumer never sees a job the database does not know. */
static int flush_jobs(struct pub *p)
{
	PGconn *conn;
	char line[512];
	int rc = 0;

	if (p->npending == 0 || p->dry_run)
		goto out;
	conn = gradeq_store_conn(p->wr);
	{
		PGresult *res =
			PQexec(conn, "COPY gradeq_jobs (job_id, run_id, course_id, seq, learners)"
				     " FROM STDIN");

		if (PQresultStatus(res) != PGRES_COPY_IN) {
			rc = gradeq_store_result_error(p->wr, res, "recording jobs");
			PQclear(res);
			goto out;
		}
		PQclear(res);
	}
	for (int i = 0; i < p->npending && !rc; i++) {
		const struct gradeq_job *j = &p->pending[i];
		char *esc = NULL;
		int n;

		/* course ids are text: escape COPY's specials */
		esc = malloc(2 * strlen(j->course_id) + 1);
		if (!esc) {
			rc = GRADEQ_ERR_NOMEM;
			break;
		}
		{
			size_t o = 0;

			for (const char *s = j->course_id; *s; s++) {
				if (*s == '\\' || *s == '\t' || *s == '\n' || *s == '\r')
					esc[o++] = '\\';
				esc[o++] = *s == '\t'   ? 't'
					   : *s == '\n' ? 'n'
					   : *s == '\r' ? 'r'
							: *s;
			}
			esc[o] = '\0';
		}
		n = snprintf(line, sizeof(line), "%s\t%s\t%s\t%u\t%zu\n", j->job_id, j->run_id, esc,
			     j->seq, j->nusers);
		free(esc);
		if (n < 0 || (size_t)n >= sizeof(line) || PQputCopyData(conn, line, n) != 1)
			rc = gradeq_store_result_error(p->wr, NULL, "recording jobs");
	}
	if (PQputCopyEnd(conn, rc ? "aborted" : NULL) != 1 && !rc)
		rc = gradeq_store_result_error(p->wr, NULL, "recording jobs");
	{
		PGresult *res;

		while ((res = PQgetResult(conn))) {
			if (PQresultStatus(res) != PGRES_COMMAND_OK && !rc)
				rc = gradeq_store_result_error(p->wr, res, "recording jobs");
			PQclear(res);
		}
	}
	for (int i = 0; i < p->npending && !rc; i++) {
		const struct gradeq_job *j = &p->pending[i];
		amqp_basic_properties_t props;
		struct gradeq_headers h;
		char *body = NULL;
		size_t len = 0;

		rc = gradeq_job_encode(j, GRADEQ_SCHEMA_VERSION, &body, &len);
		if (rc)
			break;
		gradeq_headers_init(&h);
		gradeq_headers_set_int(&h, "gradeq-schema", GRADEQ_SCHEMA_VERSION);
		gradeq_headers_set_str(&h, "gradeq-course", j->course_id);
		gradeq_headers_set_str(&h, "gradeq-run", j->run_id);
		gradeq_headers_set_int(&h, "gradeq-attempt", 1);
		memset(&props, 0, sizeof(props));
		props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
			       AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TYPE_FLAG |
			       AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_APP_ID_FLAG |
			       AMQP_BASIC_HEADERS_FLAG;
		props.content_type = amqp_cstring_bytes("application/msgpack");
		props.delivery_mode = 2;
		props.message_id = amqp_cstring_bytes(j->job_id);
		props.type = amqp_cstring_bytes("grades.compute");
		props.timestamp = (uint64_t)time(NULL);
		props.app_id = amqp_cstring_bytes("gradeq-publish/" GRADEQ_VERSION);
		rc = gradeq_headers_finish(&h, &props.headers);
		if (!rc)
			rc = gradeq_broker_publish(p->b, GRADEQ_EXCHANGE, p->key, &props, body,
						   len);
		free(body);
	}
out:
	for (int i = 0; i < p->npending; i++) {
		free(p->pending[i].user_ids);
		p->pending[i].user_ids = NULL;
	}
	p->npending = 0;
	return rc;
}

static int add_batch(struct pub *p, const char *course, int32_t *ids, size_t n, uint32_t seq)
{
	struct gradeq_job *j = &p->pending[p->npending];
	struct timespec ts;

	memset(j, 0, sizeof(*j));
	j->schema = GRADEQ_SCHEMA_VERSION;
	gradeq_uuid(j->job_id);
	memcpy(j->run_id, p->run_id, sizeof(j->run_id));
	j->course_id = (char *)course;
	j->release = p->release;
	j->user_ids = malloc(n * sizeof(*ids));
	if (!j->user_ids)
		return GRADEQ_ERR_NOMEM;
	memcpy(j->user_ids, ids, n * sizeof(*ids));
	j->nusers = n;
	j->seq = seq;
	clock_gettime(CLOCK_REALTIME, &ts);
	j->created_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	p->npending++;
	p->jobs++;
	p->learners += (long)n;
	if (p->npending == PENDING_JOBS || (size_t)p->npending * n >= PENDING_IDS)
		return flush_jobs(p);
	return 0;
}

/* The incremental cursor: enrollments whose learner has no stored course
 * grade, one stored under another course version or policy hash (the hash
 * the consumer would compute, from the same parser), or score rows modified
 * after the stored grade (or after --changed-since). A learner whose scores
 * change without changing the grade keeps an old 'modified' and is sent
 * again by later runs: bounded extra work, never a missed change. */
static PGresult *declare_changed(struct pub *p, const char *course)
{
	PGconn *conn = gradeq_store_conn(p->st);
	const char *cparams[1] = {course};
	const char *params[5] = {course, p->active_only ? "t" : "f", NULL, NULL, p->changed_since};
	struct gradeq_policy *pol = NULL;
	PGresult *cres, *res;

	cres = PQexecParams(conn,
			    "SELECT version, grading_policy::text FROM courses"
			    " WHERE course_id = $1",
			    1, NULL, cparams, NULL, NULL, 0);
	if (PQresultStatus(cres) == PGRES_TUPLES_OK && PQntuples(cres) == 1) {
		const char *json = PQgetvalue(cres, 0, 1);

		params[2] = PQgetvalue(cres, 0, 0);
		/* a policy the consumer refuses: no hash to compare, its jobs
		 * dead-letter anyway */
		if (gradeq_policy_parse(json, strlen(json), &pol, NULL, 0) == 0)
			params[3] = pol->hash;
	}
	res = PQexecParams(
		conn,
		"DECLARE gq_enr NO SCROLL CURSOR FOR SELECT e.user_id FROM student_courseenrollment e"
		" LEFT JOIN grades_persistentcoursegrade g ON g.course_id = e.course_id"
		"  AND g.user_id = e.user_id"
		" WHERE e.course_id = $1 AND (NOT $2::bool OR e.is_active)"
		" AND (g.user_id IS NULL OR g.course_version IS DISTINCT FROM $3::text"
		"  OR ($4::text IS NOT NULL AND g.grading_policy_hash <> $4::text)"
		"  OR EXISTS (SELECT 1 FROM courseware_studentmodule m WHERE m.student_id = e.user_id"
		"   AND m.course_id = e.course_id"
		"   AND m.modified > coalesce($5::timestamptz, g.modified)))"
		" ORDER BY e.id",
		5, NULL, params, NULL, NULL, 0);
	gradeq_policy_free(pol);
	PQclear(cres);
	return res;
}

/* Streams one course's enrollments in id order through a cursor; memory
 * stays flat in the number of enrollments. */
static int publish_course(struct pub *p, const char *course)
{
	PGconn *conn = gradeq_store_conn(p->st);
	const char *params[1] = {course};
	int32_t *ids = NULL;
	size_t n = 0;
	uint32_t seq = 0;
	PGresult *res = NULL;
	int rc;

	ids = malloc((size_t)p->batch_size * sizeof(*ids));
	if (!ids)
		return GRADEQ_ERR_NOMEM;
	rc = gradeq_store_exec(p->st, "BEGIN");
	if (rc)
		goto out;
	res = p->incremental
		      ? declare_changed(p, course)
		      : PQexecParams(
				conn,
				p->active_only
					? "DECLARE gq_enr NO SCROLL CURSOR FOR SELECT user_id FROM"
					  " student_courseenrollment WHERE course_id = $1 AND is_active"
					  " ORDER BY id"
					: "DECLARE gq_enr NO SCROLL CURSOR FOR SELECT user_id FROM"
					  " student_courseenrollment WHERE course_id = $1 ORDER BY id",
				1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		rc = gradeq_store_result_error(p->st, res, "reading enrollments");
		goto rollback;
	}
	for (;;) {
		int rows;

		PQclear(res);
		res = PQexec(conn, "FETCH 10000 FROM gq_enr");
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			rc = gradeq_store_result_error(p->st, res, "reading enrollments");
			goto rollback;
		}
		rows = PQntuples(res);
		if (rows == 0)
			break;
		for (int i = 0; i < rows && !rc; i++) {
			ids[n++] = (int32_t)strtol(PQgetvalue(res, i, 0), NULL, 10);
			if (n == (size_t)p->batch_size) {
				rc = add_batch(p, course, ids, n, seq++);
				n = 0;
			}
		}
		if (rc)
			goto rollback;
		if (interrupted) {
			rc = gradeq_error(GRADEQ_ERR_INTERRUPTED, "interrupted");
			goto rollback;
		}
		progress(p, false);
	}
	if (n)
		rc = add_batch(p, course, ids, n, seq++);
	if (!rc)
		rc = flush_jobs(p);
rollback:
	PQclear(res);
	res = PQexec(conn, "ROLLBACK");
out:
	PQclear(res);
	free(ids);
	p->courses++;
	return rc;
}

/* Checks every requested course exists before anything is published;
 * fills *courses with the list to publish (PGresult owned by caller). */
static int resolve_courses(struct pub *p, char **want, int nwant, bool all, PGresult **courses)
{
	PGconn *conn = gradeq_store_conn(p->st);
	PGresult *res = NULL;
	int rc = 0;

	if (all) {
		res = PQexec(conn, "SELECT course_id FROM courses ORDER BY course_id");
	} else {
		/* the ids as a text[] built by the server from a JSON array */
		char *arr = NULL;
		size_t cap = 16, len = 0;

		for (int i = 0; i < nwant; i++)
			cap += 2 * strlen(want[i]) + 4;
		arr = malloc(cap);
		if (!arr)
			return GRADEQ_ERR_NOMEM;
		arr[len++] = '{';
		for (int i = 0; i < nwant; i++) {
			if (i)
				arr[len++] = ',';
			arr[len++] = '"';
			for (const char *s = want[i]; *s; s++) {
				if (*s == '"' || *s == '\\')
					arr[len++] = '\\';
				arr[len++] = *s;
			}
			arr[len++] = '"';
		}
		arr[len++] = '}';
		arr[len] = '\0';
		{
			const char *params[1] = {arr};

			res = PQexecParams(
				conn,
				"SELECT w.id, c.course_id FROM unnest($1::text[])"
				" WITH ORDINALITY AS w(id, n)"
				" LEFT JOIN courses c ON c.course_id = w.id ORDER BY w.n",
				1, NULL, params, NULL, NULL, 0);
		}
		free(arr);
	}
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = gradeq_store_result_error(p->st, res, "reading courses");
		PQclear(res);
		return rc;
	}
	if (!all) {
		for (int i = 0; i < PQntuples(res); i++)
			if (PQgetisnull(res, i, 1)) {
				rc = gradeq_error(GRADEQ_ERR_NOT_FOUND,
						  "unknown course '%s': nothing published",
						  PQgetvalue(res, i, 0));
				PQclear(res);
				return rc;
			}
	}
	*courses = res;
	return 0;
}

static int create_run(struct pub *p, int ncourses)
{
	char opts[256], nc[16];
	const char *params[4] = {p->run_id, p->release, opts, nc};
	PGresult *res;
	int rc = 0;

	snprintf(opts, sizeof(opts), "{\"batch_size\": %d, \"active_only\": %s}", p->batch_size,
		 p->active_only ? "true" : "false");
	snprintf(nc, sizeof(nc), "%d", ncourses);
	res = PQexecParams(gradeq_store_conn(p->wr),
			   "WITH r AS (INSERT INTO gradeq_runs (run_id, release, state, options,"
			   " courses) VALUES ($1::uuid, $2, 'publishing', $3::jsonb, $4::int)"
			   " RETURNING run_id)"
			   " INSERT INTO gradeq_job_events (run_id, to_state) SELECT run_id,"
			   " 'publishing' FROM r",
			   4, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		rc = gradeq_store_result_error(p->wr, res, "recording the run");
	PQclear(res);
	return rc;
}

/* Publishing is over: 'running' (or 'complete' when consumers already did
 * everything), or 'failed' when publishing broke. */
static int finish_run(struct pub *p, bool ok)
{
	char jobs[24], learners[24];
	const char *params[4] = {p->run_id, jobs, learners, ok ? "t" : "f"};
	PGresult *res;
	int rc = 0;

	snprintf(jobs, sizeof(jobs), "%ld", p->jobs);
	snprintf(learners, sizeof(learners), "%ld", p->learners);
	res = PQexecParams(
		gradeq_store_conn(p->wr),
		"WITH r AS (UPDATE gradeq_runs SET jobs_total = $2::int, learners_total = $3::bigint,"
		" published_at = now(),"
		/* running, or settled at once by gradeq_runs_settle when the
		 * consumers already finished every job */
		" state = CASE WHEN NOT $4::bool THEN 'failed' ELSE 'running' END,"
		" finished_at = CASE WHEN NOT $4::bool THEN now() END"
		" WHERE run_id = $1::uuid AND state = 'publishing' RETURNING run_id, state)"
		" INSERT INTO gradeq_job_events (run_id, from_state, to_state)"
		" SELECT run_id, 'publishing', state FROM r",
		4, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		rc = gradeq_store_result_error(p->wr, res, "finishing the run");
	PQclear(res);
	return rc;
}

/* A role that may not declare (gradeq-publisher) publishes when the
 * release's work queue exists already; a passive declare needs no
 * permission. refused is the broker's words, for when it does not. */
static int check_queues(struct pub *p, const char *refused)
{
	char q[GRADEQ_NAME_MAX], why[600];
	int rc;

	snprintf(why, sizeof(why), "%s", refused);
	gradeq_work_queue(q, p->release);
	rc = gradeq_broker_queue_info(p->b, q, NULL, NULL);
	if (rc == GRADEQ_ERR_NOT_FOUND)
		return gradeq_error(
			GRADEQ_ERR_NOT_FOUND,
			"queue '%s' does not exist and this user may not declare it (%s):"
			" create the release's queues with 'gradeq-admin release promote"
			" %s' as gradeq-operator, or start 'gradeq-consumer --release %s'",
			q, why, p->release, p->release);
	if (rc)
		return rc;
	log_info("event=topology_checked queue=%s declared=false", q);
	return 0;
}

/* Pushes the run's current state on the events exchange (best effort). */
static void announce(struct pub *p)
{
	const char *params[1] = {p->run_id};
	PGresult *res = PQexecParams(gradeq_store_conn(p->wr),
				     "SELECT state FROM gradeq_runs WHERE run_id = $1::uuid", 1,
				     NULL, params, NULL, NULL, 0);

	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && p->b &&
	    !gradeq_broker_broken(p->b) &&
	    gradeq_event_run(p->b, p->run_id, p->release, PQgetvalue(res, 0, 0)) == 0)
		p->events++;
	else
		log_warn("event=event_publish_failed run=%s error=\"%s\"", p->run_id,
			 gradeq_errmsg(GRADEQ_ERR_BROKER));
	PQclear(res);
}

static int run(struct pub *p, char **want, int nwant, bool all, const char *release_opt)
{
	struct gradeq_topology topo;
	PGresult *courses = NULL;
	int rc;

	if ((rc = gradeq_cli_store(&p->cli, &p->st)) || (rc = gradeq_cli_store(&p->cli, &p->wr)))
		return rc;
	rc = gradeq_release_resolve(p->wr, release_opt, p->release, sizeof(p->release));
	if (rc)
		return rc;
	gradeq_work_key(p->key, p->release);
	rc = resolve_courses(p, want, nwant, all, &courses);
	if (rc)
		return rc;
	gradeq_uuid(p->run_id);
	if (!p->dry_run) {
		rc = gradeq_cli_broker(&p->cli, p->release, &p->b);
		if (rc)
			goto out;
		/* a publish never depends on a consumer having declared first */
		topo = gradeq_cli_topology(&p->cli);
		rc = gradeq_broker_declare(p->b, p->release, &topo);
		if (rc == GRADEQ_ERR_ACCESS)
			rc = check_queues(p, gradeq_errmsg(rc));
		if (rc)
			goto out;
		rc = gradeq_broker_confirm_mode(p->b, p->cli.cfg->confirm_window);
		if (rc)
			goto out;
		rc = create_run(p, PQntuples(courses));
		if (rc)
			goto out;
		announce(p);
	}
	clock_gettime(CLOCK_MONOTONIC, &p->t0);
	for (int i = 0; i < PQntuples(courses) && !rc; i++)
		rc = publish_course(p, PQgetvalue(courses, i, all ? 0 : 1));
	if (!p->dry_run) {
		if (!rc)
			rc = gradeq_broker_wait_confirms(p->b, GRADEQ_PUBLISH_CONFIRM_WAIT_MS);
		if (!rc && gradeq_broker_confirmed(p->b) != (uint64_t)(p->jobs + p->events))
			rc = gradeq_error(GRADEQ_ERR_NACKED, "%llu of %ld jobs confirmed",
					  (unsigned long long)gradeq_broker_confirmed(p->b),
					  p->jobs);
		if (!gradeq_store_broken(p->wr)) {
			int rc2 = finish_run(p, rc == 0);

			if (!rc)
				rc = rc2;
			if (!rc2)
				announce(p);
		}
	}
	progress(p, true);
out:
	PQclear(courses);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"release", required_argument, NULL, 'r'},
		{"course", required_argument, NULL, 'C'},
		{"all-courses", no_argument, NULL, 'a'},
		{"batch-size", required_argument, NULL, 'b'},
		{"active-only", no_argument, NULL, 'A'},
		{"dry-run", no_argument, NULL, 'n'},
		{"json", no_argument, NULL, 'j'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{"incremental", no_argument, NULL, 'I'},
		{"changed-since", required_argument, NULL, 'S'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct pub *p = calloc(1, sizeof(*p));
	char **want = calloc((size_t)argc + 1, sizeof(*want));
	const char *release = NULL, *batch = NULL;
	struct sigaction sa;
	bool all = false;
	int nwant = 0, opt, rc, status = 1;

	if (!p || !want)
		return 1;
	p->cli.prog = "gradeq-publish";
	while ((opt = getopt_long(argc, argv, "c:r:C:ab:nqhV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': p->cli.conf_path = optarg; break;
		case 'r': release = optarg; break;
		case 'C': want[nwant++] = optarg; break;
		case 'a': all = true; break;
		case 'b': batch = optarg; break;
		case 'A': p->active_only = true; break;
		case 'I': p->incremental = true; break;
		case 'S':
			p->incremental = true;
			p->changed_since = optarg;
			break;
		case 'n': p->dry_run = true; break;
		case 'j': p->json = true; break;
		case 'q': p->quiet = true; break;
		case 'h':
			fputs(usage, stdout);
			status = 0;
			goto out;
		case 'V':
			puts("gradeq-publish " GRADEQ_VERSION);
			status = 0;
			goto out;
		default:
			fputs("Try 'gradeq-publish --help'.\n", stderr);
			status = 2;
			goto out;
		}
	}
	if (optind < argc || (all == (nwant > 0))) {
		gradeq_cli_error(&p->cli,
				 optind < argc ? "unexpected argument '%s'"
					       : "give --course ID (repeatable) or --all-courses",
				 optind < argc ? argv[optind] : "");
		status = 2;
		goto out;
	}
	if (gradeq_cli_init(&p->cli))
		goto out;
	p->batch_size = p->cli.cfg->batch_size;
	if (batch) {
		char *end = NULL;
		long v = strtol(batch, &end, 10);

		if (!*batch || *end || v < 1 || v > GRADEQ_JOB_MAX_USERS) {
			gradeq_cli_error(&p->cli,
					 "--batch-size must be an integer from 1 to %d, not '%s'",
					 GRADEQ_JOB_MAX_USERS, batch);
			status = 2;
			goto out;
		}
		p->batch_size = (int)v;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	rc = run(p, want, nwant, all, release);
	if (rc) {
		gradeq_cli_error(&p->cli, "%s", gradeq_errmsg(rc));
		goto out;
	}
	if (p->json)
		printf("{\"run_id\":\"%s\",\"release\":\"%s\",\"courses\":%ld,\"jobs\":%ld,"
		       "\"learners\":%ld,\"batch_size\":%d,\"dry_run\":%s,\"seconds\":%.3f}\n",
		       p->dry_run ? "" : p->run_id, p->release, p->courses, p->jobs, p->learners,
		       p->batch_size, p->dry_run ? "true" : "false", elapsed(p));
	else if (p->dry_run)
		printf("dry run: %ld courses, %ld jobs, %ld learners for release %s\n", p->courses,
		       p->jobs, p->learners, p->release);
	else
		printf("%s\npublished %ld jobs (%ld learners, %ld courses) to release %s\n",
		       p->run_id, p->jobs, p->learners, p->courses, p->release);
	status = 0;
out:
	for (int i = 0; p && i < p->npending; i++)
		free(p->pending[i].user_ids);
	gradeq_broker_free(p->b);
	gradeq_store_free(p->st);
	gradeq_store_free(p->wr);
	gradeq_cli_release(&p->cli);
	free(p);
	free(want);
	return status;
}
