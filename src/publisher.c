/* Publishing a run (see publisher.h). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gradeq/limits.h"
#include "gradeq/enroll.h"
#include "gradeq/events.h"
#include "gradeq/grading.h"
#include "gradeq/job.h"
#include "gradeq/jobrows.h"
#include "gradeq/log.h"
#include "gradeq/publisher.h"
#include "gradeq/runs.h"

/* Jobs recorded (one bulk write, one commit), then published, per round: fewer
 * commits (WAL flushes) per job. PENDING_IDS bounds the user ids held, so
 * large batches flush sooner and memory stays flat. */
#define PENDING_JOBS 512
#define PENDING_IDS 131072

struct pub {
	struct gradeq_cli *cli;
	const struct gradeq_publish_options *o;
	struct gradeq_publish_result *res;
	struct gradeq_store *st; /* reads enrollments through a cursor */
	struct gradeq_store *wr; /* records the run and jobs */
	struct gradeq_broker *b;
	char key[GRADEQ_NAME_MAX];
	long events; /* events published on the same confirmed channel */
	struct gradeq_job pending[PENDING_JOBS];
	int npending;
	time_t last_progress;
	struct timespec t0;
};

static volatile sig_atomic_t interrupted;

void gradeq_publish_interrupt(void)
{
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

	if (p->o->quiet || (!final && now == p->last_progress))
		return;
	p->last_progress = now;
	if (isatty(STDERR_FILENO))
		fprintf(stderr, "\r%s courses=%ld jobs=%ld learners=%ld rate=%.0f jobs/s%s",
			p->o->dry_run ? "counting" : "publishing", p->res->courses, p->res->jobs,
			p->res->learners, s > 0 ? (double)p->res->jobs / s : 0.0,
			final ? "\n" : "");
	else if (!final)
		log_info("event=progress run=%s courses=%ld jobs=%ld learners=%ld",
			 p->o->dry_run ? "none" : p->res->run_id, p->res->courses, p->res->jobs,
			 p->res->learners);
}

/* Publishes one recorded job, in the current schema. */
static int publish_job(struct pub *p, const struct gradeq_job *j)
{
	amqp_basic_properties_t props;
	struct gradeq_headers h;
	char *body = NULL;
	size_t len = 0;
	int rc = gradeq_job_encode(j, GRADEQ_SCHEMA_VERSION, &body, &len);

	if (rc)
		return rc;
	gradeq_headers_init(&h);
	gradeq_headers_set_int(&h, "gradeq-schema", GRADEQ_SCHEMA_VERSION);
	gradeq_headers_set_str(&h, "gradeq-course", j->course_id);
	gradeq_headers_set_str(&h, "gradeq-run", j->run_id);
	gradeq_headers_set_int(&h, "gradeq-attempt", 1);
	memset(&props, 0, sizeof(props));
	props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
		       AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TYPE_FLAG |
		       AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_APP_ID_FLAG | AMQP_BASIC_HEADERS_FLAG;
	props.content_type = amqp_cstring_bytes("application/msgpack");
	props.delivery_mode = 2;
	props.message_id = amqp_cstring_bytes(j->job_id);
	props.type = amqp_cstring_bytes(gradeq_job_type_name(j));
	props.timestamp = (uint64_t)time(NULL);
	props.app_id = amqp_cstring_bytes("gradeq-publish/" GRADEQ_VERSION);
	rc = gradeq_headers_finish(&h, &props.headers);
	if (rc) {
		free(body);
		return rc;
	}
	rc = gradeq_broker_publish(p->b, GRADEQ_EXCHANGE, p->key, &props, body, len);
	free(body);
	return rc;
}

/* Records the pending jobs (one bulk write, committed) and then publishes them: a
 * consumer never sees a job the database does not know. */
static int flush_jobs(struct pub *p)
{
	int rc = 0;

	if (p->npending && !p->o->dry_run) {
		rc = gradeq_jobrows_record(p->wr, p->pending, p->npending);
		for (int i = 0; i < p->npending && !rc; i++)
			rc = publish_job(p, &p->pending[i]);
	}
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
	memcpy(j->run_id, p->res->run_id, sizeof(j->run_id));
	j->course_id = (char *)course;
	j->release = p->res->release;
	j->user_ids = malloc(n * sizeof(*ids));
	if (!j->user_ids)
		return GRADEQ_ERR_NOMEM;
	memcpy(j->user_ids, ids, n * sizeof(*ids));
	j->nusers = n;
	j->seq = seq;
	clock_gettime(CLOCK_REALTIME, &ts);
	j->created_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	p->npending++;
	p->res->jobs++;
	p->res->learners += (long)n;
	if (p->npending == PENDING_JOBS || (size_t)p->npending * n >= PENDING_IDS)
		return flush_jobs(p);
	return 0;
}

/* Opens the course's enrollment cursor; incremental runs compare stored
 * grades with the policy hash the consumer would compute, from the same
 * parser. */
static int open_course(struct pub *p, const char *course)
{
	struct gradeq_enroll_query q = {
		.course = course,
		.active_only = p->o->active_only,
		.incremental = p->o->incremental,
		.changed_since = p->o->changed_since,
	};
	struct gradeq_policy *pol = NULL;
	char *version = NULL, *policy = NULL;
	int rc = 0;

	if (q.incremental) {
		rc = gradeq_enroll_course_policy(p->st, course, &version, &policy);
		/* a policy the consumer refuses: no hash to compare, its jobs
		 * dead-letter anyway */
		if (!rc && policy &&
		    gradeq_policy_parse(policy, strlen(policy), &pol, NULL, 0) == 0)
			q.policy_hash = pol->hash;
		q.version = version;
	}
	if (!rc)
		rc = gradeq_enroll_open(p->st, &q);
	gradeq_policy_free(pol);
	free(version);
	free(policy);
	return rc;
}

/* Streams one course's enrollments in id order through a cursor; memory
 * stays flat in the number of enrollments. */
static int publish_course(struct pub *p, const char *course)
{
	int32_t *ids = NULL, *fetched = NULL;
	size_t n = 0, got = 0;
	uint32_t seq = 0;
	int rc;

	ids = malloc((size_t)p->o->batch_size * sizeof(*ids));
	fetched = malloc(GRADEQ_ENROLL_FETCH * sizeof(*fetched));
	rc = ids && fetched ? open_course(p, course) : GRADEQ_ERR_NOMEM;
	if (rc)
		goto out;
	while (!(rc = gradeq_enroll_fetch(p->st, fetched, &got)) && got) {
		for (size_t i = 0; i < got && !rc; i++) {
			ids[n++] = fetched[i];
			if (n == (size_t)p->o->batch_size) {
				rc = add_batch(p, course, ids, n, seq++);
				n = 0;
			}
		}
		if (!rc && interrupted)
			rc = gradeq_error(GRADEQ_ERR_INTERRUPTED, "interrupted");
		if (rc)
			break;
		progress(p, false);
	}
	if (!rc && n)
		rc = add_batch(p, course, ids, n, seq++);
	if (!rc)
		rc = flush_jobs(p);
	gradeq_enroll_close(p->st);
out:
	free(ids);
	free(fetched);
	p->res->courses++;
	return rc;
}

/* A role that may not declare (gradeq-publisher) publishes when the
 * release's work queue exists already; a passive declare needs no
 * permission. refused is the broker's words, for when it does not. */
static int check_queues(struct pub *p, const char *refused)
{
	char q[GRADEQ_NAME_MAX], why[600];
	const char *release = p->res->release;
	int rc;

	snprintf(why, sizeof(why), "%s", refused);
	gradeq_work_queue(q, release);
	rc = gradeq_broker_queue_info(p->b, q, NULL, NULL);
	if (rc == GRADEQ_ERR_NOT_FOUND)
		return gradeq_error(
			GRADEQ_ERR_NOT_FOUND,
			"queue '%s' does not exist and this user may not declare it (%s):"
			" create the release's queues with 'gradeq-admin release promote"
			" %s' as gradeq-operator, or start 'gradeq-consumer --release %s'",
			q, why, release, release);
	if (rc)
		return rc;
	log_info("event=topology_checked queue=%s declared=false", q);
	return 0;
}

/* Pushes the run's state on the events exchange (best effort). */
static void announce(struct pub *p, bool known, enum gradeq_run_state state)
{
	if (known && p->b && !gradeq_broker_broken(p->b) &&
	    gradeq_event_run(p->b, p->res->run_id, p->res->release, gradeq_run_state_name(state)) ==
		    0)
		p->events++;
	else
		log_warn("event=event_publish_failed run=%s error=\"%s\"", p->res->run_id,
			 gradeq_errmsg(GRADEQ_ERR_BROKER));
}

/* The broker side of a run that publishes: the release's queues (declared,
 * or checked when this user may not declare), confirms, and the run
 * recorded as publishing. */
static int begin_run(struct pub *p, int ncourses)
{
	struct gradeq_topology topo;
	char opts[256];
	int rc = gradeq_cli_broker(p->cli, p->res->release, &p->b);

	if (rc)
		return rc;
	/* a publish never depends on a consumer having declared first */
	topo = gradeq_cli_topology(p->cli);
	rc = gradeq_broker_declare(p->b, p->res->release, &topo);
	if (rc == GRADEQ_ERR_ACCESS)
		rc = check_queues(p, gradeq_errmsg(rc));
	if (!rc)
		rc = gradeq_broker_confirm_mode(p->b, p->cli->cfg->confirm_window);
	if (rc)
		return rc;
	snprintf(opts, sizeof(opts), "{\"batch_size\": %d, \"active_only\": %s}", p->o->batch_size,
		 p->o->active_only ? "true" : "false");
	rc = gradeq_run_create(p->wr, p->res->run_id, p->res->release, opts, ncourses, NULL);
	if (!rc)
		announce(p, true, GRADEQ_RUN_PUBLISHING);
	return rc;
}

/* Publishing is over: every job confirmed, then the run 'running' (or
 * 'complete' when consumers already did everything), or 'failed' when
 * publishing broke. */
static int end_run(struct pub *p, int rc)
{
	struct gradeq_run_changed ch;
	uint64_t want = (uint64_t)(p->res->jobs + p->events);

	if (!rc)
		rc = gradeq_broker_wait_confirms(p->b, GRADEQ_PUBLISH_CONFIRM_WAIT_MS);
	if (!rc && gradeq_broker_confirmed(p->b) != want)
		rc = gradeq_error(GRADEQ_ERR_NACKED, "%llu of %ld jobs confirmed",
				  (unsigned long long)gradeq_broker_confirmed(p->b), p->res->jobs);
	if (!gradeq_store_broken(p->wr)) {
		int rc2 = gradeq_run_published(
			p->wr, p->res->run_id, p->res->jobs, p->res->learners,
			rc ? GRADEQ_RUN_FAILED : GRADEQ_RUN_RUNNING, NULL, &ch);

		if (!rc)
			rc = rc2;
		if (!rc2)
			announce(p, ch.known, ch.state);
	}
	return rc;
}

static int run(struct pub *p)
{
	struct gradeq_enroll_courses courses = {0};
	int rc;

	if ((rc = gradeq_cli_store(p->cli, &p->st)) || (rc = gradeq_cli_store(p->cli, &p->wr)))
		return rc;
	/* a dry run changes nothing: not even a new release is recorded */
	rc = (p->o->dry_run ? gradeq_release_peek : gradeq_release_resolve)(
		p->wr, p->o->release, p->res->release, sizeof(p->res->release));
	if (rc)
		return rc;
	gradeq_work_key(p->key, p->res->release);
	rc = gradeq_enroll_courses_resolve(p->st, p->o->courses, p->o->ncourses, p->o->all,
					   &courses);
	if (rc)
		return rc;
	if (!p->o->dry_run) {
		gradeq_uuid(p->res->run_id);
		rc = begin_run(p, courses.n);
	}
	clock_gettime(CLOCK_MONOTONIC, &p->t0);
	if (!rc) {
		for (int i = 0; i < courses.n && !rc; i++)
			rc = publish_course(p, courses.ids[i]);
		if (!p->o->dry_run)
			rc = end_run(p, rc);
		progress(p, true);
	}
	gradeq_enroll_courses_release(&courses);
	return rc;
}

int gradeq_publish_run(struct gradeq_cli *cli, const struct gradeq_publish_options *o,
		       struct gradeq_publish_result *out)
{
	struct pub *p = calloc(1, sizeof(*p));
	int rc;

	memset(out, 0, sizeof(*out));
	if (!p)
		return gradeq_error(GRADEQ_ERR_NOMEM, "out of memory");
	p->cli = cli;
	p->o = o;
	p->res = out;
	rc = run(p);
	out->seconds = elapsed(p);
	for (int i = 0; i < p->npending; i++)
		free(p->pending[i].user_ids);
	gradeq_broker_free(p->b);
	gradeq_store_free(p->st);
	gradeq_store_free(p->wr);
	free(p);
	return rc;
}
