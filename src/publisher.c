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
#include "gradeq/watermarks.h"
#include "gradeq/urls.h"

/* Jobs recorded (one bulk write, one commit), then published, per round: fewer
 * commits (WAL flushes) per job. PENDING_IDS bounds the user ids held, so
 * large batches flush sooner and memory stays flat. */
#define PENDING_JOBS 512
#define PENDING_IDS 131072

/* A job published on the current connection and not yet confirmed: kept
 * to be published again, the same bytes under the same message id, when
 * the connection is lost before its confirm came. */
struct inflight {
	uint64_t tag;       /* its delivery tag on the current connection */
	char job_id[37];    /* message id */
	const char *course; /* the run's resolved courses: live as long as the run */
	char *body;
	size_t len;
};

struct pub {
	struct gradeq_cli *cli;
	const struct gradeq_publish_options *o;
	struct gradeq_publish_result *res;
	struct gradeq_store *st; /* reads enrollments through a cursor */
	struct gradeq_store *wr; /* records the run and jobs */
	struct gradeq_broker *b;
	char key[GRADEQ_NAME_MAX];
	long events;           /* events published on the current connection (confirmed) */
	long jobs_cur;         /* jobs published on the current connection, again ones included */
	struct inflight *ring; /* unconfirmed jobs, oldest first from ring_head */
	int ring_cap, ring_head, ring_n;
	struct gradeq_job pending[PENDING_JOBS];
	int npending;
	time_t last_progress;
	struct timespec t0;
	/* incremental: each course's next watermark, recorded at the end */
	struct gradeq_watermark *marks;
	int icourse;
	bool full_compare; /* a course had no usable watermark */
	/* lazy_run: the run is recorded with its first job (--follow: an
	 * iteration with nothing to publish records no run) */
	bool begun;
	int ncourses;
	int consumers; /* on the work queue when first asked; 0: not asked yet */
	/* messages published on the current connection before this run (a
	 * connection kept from the previous run: their confirms count there) */
	uint64_t confirmed_base;
};

static volatile sig_atomic_t interrupted;

void gradeq_publish_interrupt(void)
{
	interrupted = 1;
}

static double since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static double elapsed(const struct pub *p)
{
	return since(&p->t0);
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

/* Publishes one encoded job of the run on the current connection. */
static int send_job(struct pub *p, const struct inflight *f)
{
	amqp_basic_properties_t props;
	struct gradeq_headers h;
	int rc;

	gradeq_headers_init(&h);
	gradeq_headers_set_int(&h, "gradeq-schema", GRADEQ_SCHEMA_VERSION);
	gradeq_headers_set_str(&h, "gradeq-course", f->course);
	gradeq_headers_set_str(&h, "gradeq-run", p->res->run_id);
	gradeq_headers_set_int(&h, "gradeq-attempt", 1);
	memset(&props, 0, sizeof(props));
	props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
		       AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TYPE_FLAG |
		       AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_APP_ID_FLAG | AMQP_BASIC_HEADERS_FLAG;
	props.content_type = amqp_cstring_bytes("application/msgpack");
	props.delivery_mode = 2;
	props.message_id = amqp_cstring_bytes(f->job_id);
	props.type = amqp_cstring_bytes("grades.compute");
	props.timestamp = (uint64_t)time(NULL);
	props.app_id = amqp_cstring_bytes("gradeq-publish/" GRADEQ_VERSION);
	rc = gradeq_headers_finish(&h, &props.headers);
	if (rc)
		return rc;
	p->jobs_cur++;
	return gradeq_broker_publish(p->b, GRADEQ_EXCHANGE, p->key, &props, f->body, f->len);
}

/* Forgets the jobs the broker confirmed (every tag up to the settled one). */
static void ring_prune(struct pub *p)
{
	uint64_t upto = p->b ? gradeq_broker_settled_upto(p->b) : 0;

	while (p->ring_n && p->ring[p->ring_head].tag <= upto) {
		free(p->ring[p->ring_head].body);
		p->ring[p->ring_head].body = NULL;
		p->ring_head = (p->ring_head + 1) % p->ring_cap;
		p->ring_n--;
	}
}

static void ring_free(struct pub *p)
{
	for (int i = 0; i < p->ring_n; i++)
		free(p->ring[(p->ring_head + i) % p->ring_cap].body);
	free(p->ring);
	p->ring = NULL;
	p->ring_n = 0;
}

static int open_broker(struct pub *p);

/* Whether err, from a publish or a confirm wait, lost the connection: a
 * node that went away, one that stopped confirming, or a queue that
 * refused jobs (nack) while a node was lost: a quorum queue whose leader
 * died nacks until the others have elected a new one (seen on a 3-node
 * cluster). The unconfirmed jobs, the refused ones among them, are
 * published again on a fresh connection. */
static bool lost(const struct pub *p, int err)
{
	return gradeq_broker_broken(p->b) || err == GRADEQ_ERR_TIMEOUT || err == GRADEQ_ERR_NACKED;
}

/* Sleeps ms, waking early when interrupted. */
static void pause_ms(int ms)
{
	for (; ms > 0 && !interrupted; ms -= 100) {
		struct timespec ts = {0, (ms < 100 ? ms : 100) * 1000000L};

		nanosleep(&ts, NULL);
	}
}

/* The connection was lost (err) with ring_n jobs unconfirmed: opens one to
 * the next node (the first at once, then with backoff, for at most
 * GRADEQ_PUBLISH_FAILOVER_MS) and publishes those jobs again, oldest
 * first, under their message ids: none is skipped, and one that the
 * broker did take before the loss reaches a consumer twice, which acks a
 * job already complete without work. The job rows were recorded once,
 * before the first publish. err when it cannot. */
static int failover(struct pub *p, int err)
{
	struct timespec t0, now;
	long ms = 0;
	int rc = err;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	log_warn("event=broker_lost run=%s unconfirmed=%d error=\"%s\"", p->res->run_id, p->ring_n,
		 gradeq_errmsg(err));
	for (int attempt = 0; !interrupted && ms < GRADEQ_PUBLISH_FAILOVER_MS; attempt++) {
		pause_ms(gradeq_backoff_ms(attempt, p->cli->cfg->reconnect_max_ms,
					   (uint32_t)rand()));
		gradeq_broker_free(p->b);
		p->b = NULL;
		p->jobs_cur = p->events = 0;
		p->confirmed_base = 0;
		rc = open_broker(p);
		for (int i = 0; !rc && i < p->ring_n; i++) {
			struct inflight *f = &p->ring[(p->ring_head + i) % p->ring_cap];

			f->tag = gradeq_broker_next_tag(p->b);
			rc = send_job(p, f);
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		ms = (long)(now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
		if (!rc) {
			p->res->republished += p->ring_n;
			log_info("event=publish_failover run=%s republished=%d attempts=%d "
				 "down_ms=%ld",
				 p->res->run_id, p->ring_n, attempt + 1, ms);
			ring_prune(p);
			return 0;
		}
		if (!lost(p, rc) && rc != GRADEQ_ERR_BROKER)
			return rc;
		log_warn("event=reconnect_failed what=publish attempt=%d error=\"%s\"", attempt + 1,
			 gradeq_errmsg(rc));
	}
	return interrupted ? gradeq_error(GRADEQ_ERR_INTERRUPTED, "interrupted") : rc;
}

/* Publishes one recorded job, in the current schema, keeping it until it
 * is confirmed; across a lost connection when needed. */
static int publish_job(struct pub *p, const struct gradeq_job *j)
{
	struct inflight *f;
	char *body = NULL;
	size_t len = 0;
	int rc = gradeq_job_encode(j, GRADEQ_SCHEMA_VERSION, &body, &len);

	if (rc)
		return rc;
	ring_prune(p);
	if (p->ring_n == p->ring_cap) {
		free(body);
		return gradeq_error(GRADEQ_ERR_STATE, "more unconfirmed jobs than confirm_window");
	}
	f = &p->ring[(p->ring_head + p->ring_n) % p->ring_cap];
	memset(f, 0, sizeof(*f));
	snprintf(f->job_id, sizeof(f->job_id), "%s", j->job_id);
	f->course = j->course_id;
	f->body = body;
	f->len = len;
	f->tag = gradeq_broker_next_tag(p->b);
	p->ring_n++;
	rc = send_job(p, f);
	if (rc && lost(p, rc))
		rc = failover(p, rc);
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

static int begin_run(struct pub *p, int ncourses);

/* The run recorded and the broker connected, when not yet (lazy_run). */
static int ensure_run(struct pub *p)
{
	int rc;

	if (p->begun || p->o->dry_run)
		return 0;
	gradeq_uuid(p->res->run_id);
	rc = begin_run(p, p->ncourses);
	if (!rc)
		p->begun = true;
	return rc;
}

static int add_batch(struct pub *p, const char *course, int32_t *ids, size_t n, uint32_t seq)
{
	struct gradeq_job *j = &p->pending[p->npending];
	struct timespec ts;
	int rc = ensure_run(p);

	if (rc)
		return rc;

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

/* The watermark a course's selection starts from, when it has one made
 * under the course's present version and policy hash (else everybody is
 * compared with the stored grades); sets the window's start. */
static int course_since(struct pub *p, const char *course, const char *version, const char *hash,
			struct gradeq_watermark *prev, bool *use)
{
	bool found = false;
	int rc = gradeq_watermark_load(p->st, p->res->release, course, prev, &found);

	*use = !rc && found && !p->o->rescan && strcmp(prev->version, version) == 0 &&
	       strcmp(prev->policy_hash, hash) == 0;
	if (rc)
		return rc;
	if (!*use)
		p->full_compare = true;
	else if (!p->res->window_from[0] || strcmp(prev->watermark, p->res->window_from) < 0)
		snprintf(p->res->window_from, sizeof(p->res->window_from), "%s", prev->watermark);
	return 0;
}

/* Opens the course's enrollment cursor; incremental runs compare stored
 * grades with the policy hash the consumer would compute, from the same
 * parser, and select from the course's watermark when it has one. */
static int open_course(struct pub *p, const char *course)
{
	struct gradeq_enroll_query q = {
		.course = course,
		.active_only = p->o->active_only,
		.incremental = p->o->incremental,
		.changed_since = p->o->changed_since,
	};
	struct gradeq_watermark prev = {0}, *next = p->marks ? &p->marks[p->icourse] : NULL;
	struct gradeq_policy *pol = NULL;
	char *version = NULL, *policy = NULL;
	bool use = false;
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
	if (!rc && next && version) {
		next->version = strdup(version);
		next->policy_hash = strdup(q.policy_hash ? q.policy_hash : "");
		rc = next->version && next->policy_hash ? 0 : GRADEQ_ERR_NOMEM;
		if (!rc)
			rc = course_since(p, course, next->version, next->policy_hash, &prev, &use);
		q.since = use ? &prev : NULL;
		q.next = next;
	}
	if (!rc)
		rc = gradeq_enroll_open(p->st, &q);
	if (!rc && next && strcmp(next->selected_at, p->res->window_to) > 0)
		snprintf(p->res->window_to, sizeof(p->res->window_to), "%s", next->selected_at);
	gradeq_watermark_clear(&prev);
	gradeq_policy_free(pol);
	free(version);
	free(policy);
	return rc;
}

/* The consumers on the release's work queue (asked once a run; 1 when the
 * broker does not say). */
static int consumers(struct pub *p)
{
	char q[GRADEQ_NAME_MAX];
	uint32_t c = 0;

	if (p->consumers)
		return p->consumers;
	gradeq_work_queue(q, p->res->release);
	if (!p->b || gradeq_broker_queue_info(p->b, q, NULL, &c) != 0 || c < 1)
		c = 1;
	p->consumers = c > GRADEQ_INCREMENTAL_SHARE_MAX ? GRADEQ_INCREMENTAL_SHARE_MAX : (int)c;
	return p->consumers;
}

/* Cuts n learners into the fewest batches of at most batch_size, of even
 * sizes. share (an incremental run's course selection, or its last part):
 * at least one job per consumer waiting on the work queue, each of at least
 * GRADEQ_INCREMENTAL_SHARE_MIN learners, so that the consumers grade a
 * small change side by side instead of one grading all of it, and a
 * change of 1600 learners is two jobs of 800, not 1000 and 600. */
static int add_cut(struct pub *p, const char *course, int32_t *ids, size_t n, uint32_t *seq,
		   bool share)
{
	size_t b = (size_t)p->o->batch_size, pieces = (n + b - 1) / b, per, off = 0;
	int rc = 0;

	if (share && !p->o->dry_run) {
		size_t k;

		rc = ensure_run(p);
		k = rc ? 1 : (size_t)consumers(p);
		if (k > n / GRADEQ_INCREMENTAL_SHARE_MIN)
			k = n / GRADEQ_INCREMENTAL_SHARE_MIN;
		if (k > pieces)
			pieces = k;
	}
	if (pieces < 1)
		pieces = 1;
	per = (n + pieces - 1) / pieces;
	while (!rc && off < n) {
		size_t m = n - off < per ? n - off : per;

		rc = add_batch(p, course, ids + off, m, (*seq)++);
		off += m;
	}
	return rc;
}

/* Streams one course's enrollments in id order through a cursor; memory
 * stays flat in the number of enrollments. */
static int publish_course(struct pub *p, const char *course)
{
	/* an incremental run holds up to SHARE_MAX batches before cutting, so
	 * that what it selected is cut evenly (add_cut) */
	size_t cap =
		(size_t)p->o->batch_size * (p->o->incremental ? GRADEQ_INCREMENTAL_SHARE_MAX : 1);
	int32_t *ids = NULL, *fetched = NULL;
	size_t n = 0, got = 0;
	uint32_t seq = 0;
	struct timespec ts;
	int rc;

	ids = malloc(cap * sizeof(*ids));
	fetched = malloc(GRADEQ_ENROLL_FETCH * sizeof(*fetched));
	clock_gettime(CLOCK_MONOTONIC, &ts);
	rc = ids && fetched ? open_course(p, course) : GRADEQ_ERR_NOMEM;
	p->res->select_seconds += since(&ts);
	if (rc)
		goto out;
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		rc = gradeq_enroll_fetch(p->st, fetched, &got);
		p->res->select_seconds += since(&ts);
		if (rc || !got)
			break;
		for (size_t i = 0; i < got && !rc; i++) {
			ids[n++] = fetched[i];
			if (n == cap) {
				rc = add_cut(p, course, ids, n, &seq, false);
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
		rc = add_cut(p, course, ids, n, &seq, p->o->incremental);
	if (!rc)
		rc = flush_jobs(p);
	gradeq_enroll_close(p->st);
out:
	free(ids);
	free(fetched);
	p->res->courses++;
	p->icourse++;
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

/* A connection to the broker (the node in use, else the next reachable
 * one): the release's queues declared, or checked when this user may not
 * declare, and confirms on. */
static int open_broker(struct pub *p)
{
	struct gradeq_publish_conns *k = p->o->keep;
	struct gradeq_topology topo;
	int rc;

	/* the previous run's connection: declared and in confirm mode */
	if (k && k->b && !gradeq_broker_broken(k->b) && strcmp(k->release, p->res->release) == 0) {
		p->b = k->b;
		k->b = NULL;
		p->confirmed_base = k->sent;
		return 0;
	}
	if (k)
		gradeq_publish_conns_close_broker(k);
	rc = gradeq_cli_broker(p->cli, p->res->release, &p->b);

	if (rc)
		return rc;
	/* a publish never depends on a consumer having declared first */
	topo = gradeq_cli_topology(p->cli);
	rc = gradeq_broker_declare(p->b, p->res->release, &topo);
	if (rc == GRADEQ_ERR_ACCESS)
		rc = check_queues(p, gradeq_errmsg(rc));
	if (!rc)
		rc = gradeq_broker_confirm_mode(p->b, p->cli->cfg->confirm_window);
	return rc;
}

/* The broker side of a run that publishes, and the run recorded as
 * publishing. */
static int begin_run(struct pub *p, int ncourses)
{
	char opts[256];
	int rc;

	p->ring_cap = p->cli->cfg->confirm_window + 2;
	p->ring = calloc((size_t)p->ring_cap, sizeof(*p->ring));
	if (!p->ring)
		return gradeq_error(GRADEQ_ERR_NOMEM, "out of memory");
	rc = open_broker(p);
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
	uint64_t want;

	/* the last confirms; a connection lost meanwhile fails over, and what
	 * it had unconfirmed is published again and awaited there */
	while (!rc) {
		rc = gradeq_broker_wait_confirms(p->b, GRADEQ_PUBLISH_CONFIRM_WAIT_MS);
		if (!rc || !lost(p, rc))
			break;
		rc = failover(p, rc);
		if (rc)
			break;
	}
	if (!rc)
		ring_prune(p);
	/* every message of this connection, the jobs published again included;
	 * those confirmed on a lost one were counted there */
	want = (uint64_t)(p->jobs_cur + p->events);
	if (!rc && (gradeq_broker_confirmed(p->b) - p->confirmed_base != want || p->ring_n))
		rc = gradeq_error(
			GRADEQ_ERR_NACKED, "%llu of %llu messages confirmed",
			(unsigned long long)(gradeq_broker_confirmed(p->b) - p->confirmed_base),
			(unsigned long long)want);
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

/* Records each course's next watermark once every job of the run is
 * confirmed. Not recorded (a warning), the next run selects from the
 * previous watermarks again: more work, nothing missed. */
static void save_marks(struct pub *p, const struct gradeq_enroll_courses *courses)
{
	int rc = gradeq_watermark_save(p->wr, p->res->release, p->res->run_id, courses->ids,
				       p->marks, courses->n);

	if (rc)
		log_warn("event=watermark_not_recorded run=%s release=%s error=\"%s\"",
			 p->res->run_id, p->res->release, gradeq_errmsg(rc));
	else
		log_info("event=watermark_recorded run=%s release=%s courses=%d to=\"%s\"",
			 p->res->run_id, p->res->release, courses->n, p->res->window_to);
}

/* A kept store when sound, else a new one. */
static int take_store(struct pub *p, struct gradeq_store **kept, struct gradeq_store **st)
{
	if (*kept && !gradeq_store_broken(*kept)) {
		*st = *kept;
		*kept = NULL;
		return 0;
	}
	gradeq_store_free(*kept);
	*kept = NULL;
	return gradeq_cli_store(p->cli, st);
}

void gradeq_publish_conns_close_broker(struct gradeq_publish_conns *c)
{
	gradeq_broker_free(c->b);
	c->b = NULL;
}

void gradeq_publish_conns_close(struct gradeq_publish_conns *c)
{
	gradeq_publish_conns_close_broker(c);
	gradeq_store_free(c->st);
	gradeq_store_free(c->wr);
	c->st = c->wr = NULL;
}

/* After a run that succeeded, its sound connections go back to keep. */
static void give_back(struct pub *p, int rc)
{
	struct gradeq_publish_conns *k = p->o->keep;

	if (!k || rc)
		return;
	if (p->st && !gradeq_store_broken(p->st) && !k->st) {
		k->st = p->st;
		p->st = NULL;
	}
	if (p->wr && !gradeq_store_broken(p->wr) && !k->wr) {
		k->wr = p->wr;
		p->wr = NULL;
	}
	if (p->b && !gradeq_broker_broken(p->b) && !p->ring_n && !k->b) {
		k->b = p->b;
		k->sent = p->confirmed_base + (uint64_t)(p->jobs_cur + p->events);
		p->b = NULL;
		snprintf(k->release, sizeof(k->release), "%s", p->res->release);
	}
}

static int run(struct pub *p)
{
	struct gradeq_enroll_courses courses = {0};
	struct gradeq_publish_conns none = {0}, *k = p->o->keep ? p->o->keep : &none;
	int rc;

	if ((rc = take_store(p, &k->st, &p->st)) || (rc = take_store(p, &k->wr, &p->wr)))
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
	p->ncourses = courses.n;
	if (!p->o->dry_run && !p->o->lazy_run) {
		gradeq_uuid(p->res->run_id);
		rc = begin_run(p, courses.n);
		p->begun = true;
	}
	clock_gettime(CLOCK_MONOTONIC, &p->t0);
	/* the watermark selection is --incremental's; --changed-since T
	 * compares with T and records none */
	if (!rc && p->o->incremental && !p->o->changed_since) {
		p->marks = calloc((size_t)courses.n + 1, sizeof(*p->marks));
		if (!p->marks)
			rc = GRADEQ_ERR_NOMEM;
	}
	if (!rc) {
		for (int i = 0; i < courses.n && !rc; i++)
			rc = publish_course(p, courses.ids[i]);
		if (p->begun)
			rc = end_run(p, rc);
		if (!rc && p->marks && !p->o->dry_run)
			save_marks(p, &courses);
		progress(p, true);
	}
	if (p->full_compare)
		p->res->window_from[0] = '\0';
	for (int i = 0; p->marks && i < courses.n; i++)
		gradeq_watermark_clear(&p->marks[i]);
	free(p->marks);
	p->marks = NULL;
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
	give_back(p, rc);
	for (int i = 0; i < p->npending; i++)
		free(p->pending[i].user_ids);
	ring_free(p);
	gradeq_broker_free(p->b);
	gradeq_store_free(p->st);
	gradeq_store_free(p->wr);
	free(p);
	return rc;
}
