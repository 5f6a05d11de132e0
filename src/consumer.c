/* The consume loop of gradeq-consumer: connections kept up with backoff,
 * each delivery graded (worker.c), committed, then acked; failures
 * republished to a retry tier or the dead queue with the reason, recorded,
 * then acked; drain and release-draining exits. */
#include "gradeq/consumer.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <amqp.h>
#include <amqp_framing.h>

#include "gradeq/events.h"
#include "gradeq/group.h"
#include "gradeq/job.h"
#include "gradeq/jobs.h"
#include "gradeq/jobtype.h"
#include "gradeq/limits.h"
#include "gradeq/log.h"
#include "gradeq/notify.h"
#include "gradeq/parse.h"
#include "gradeq/release.h"
#include "gradeq/throttle_agent.h"
#include "gradeq/urls.h"

static void mark_lost(struct timespec *t)
{
	clock_gettime(CLOCK_MONOTONIC, t);
}

/* Milliseconds since the outage began at *t, which it ends. */
static long outage_ms(struct timespec *t)
{
	struct timespec now;
	long ms;

	if (!t->tv_sec && !t->tv_nsec)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long)(now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000;
	t->tv_sec = t->tv_nsec = 0;
	return ms;
}

void gradeq_consumer_disconnect(struct gradeq_consumer *c)
{
	gradeq_broker_free(c->in);
	gradeq_broker_free(c->out);
	c->in = c->out = NULL;
}

/* Heartbeats. rabbitmq-c services them only inside its own calls, so the
 * daemon must enter one well within the negotiated interval (heartbeat in
 * the configuration, 60 s by default; the broker drops a connection that
 * stays silent for about twice that) on BOTH connections. The consume loop
 * waits for deliveries on the consuming one with a 1 s timeout and calls
 * keepalive() about once a second, which also reads and heartbeats the
 * publishing one; every RPC has a 30 s timeout (broker.c); nap() sends
 * heartbeats while it waits; and while the loop is inside the database (a
 * batch, a lock wait, a connect) the beat thread below sends them. */
static void keepalive(struct gradeq_consumer *c)
{
	clock_gettime(CLOCK_MONOTONIC, &c->kept_alive);
	gradeq_broker_heartbeat(c->in);
	/* the publishing connection is read too: the broker's heartbeats and
	 * confirms pile up unread otherwise. One that is gone is reopened before
	 * its next use (reopen_out). */
	if (c->out && !gradeq_broker_broken(c->out)) {
		int rc = gradeq_broker_service(c->out);

		if (rc)
			log_warn("event=broker_lost what=publish_connection error=\"%s\"",
				 gradeq_errmsg(rc));
	}
}

/* keepalive() when a second went by since the last one. */
static void keepalive_due(struct gradeq_consumer *c)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if ((now.tv_sec - c->kept_alive.tv_sec) * 1000 +
		    (now.tv_nsec - c->kept_alive.tv_nsec) / 1000000 >=
	    1000)
		keepalive(c);
}

/* Heartbeats while the loop is inside the database (a batch, a connect):
 * a thread sends them on both connections while c->beat says the loop is
 * busy there, and only then, so that rabbitmq-c is never used by two
 * threads at once (the loop does not touch the broker while busy). The
 * broker's own heartbeats wait in the sockets and are read afterwards. */
struct gradeq_beat {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool busy, quit;
	struct gradeq_broker *in, *out;
};

static void *beat_main(void *arg)
{
	struct gradeq_beat *b = arg;

	pthread_mutex_lock(&b->mu);
	while (!b->quit) {
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		pthread_cond_timedwait(&b->cv, &b->mu, &until);
		if (b->busy && !b->quit) {
			gradeq_broker_heartbeat(b->in);
			gradeq_broker_heartbeat(b->out);
		}
	}
	pthread_mutex_unlock(&b->mu);
	return NULL;
}

static void beat_start(struct gradeq_consumer *c)
{
	struct gradeq_beat *b = calloc(1, sizeof(*b));

	if (!b)
		return;
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->cv, NULL);
	if (pthread_create(&b->thread, NULL, beat_main, b)) {
		log_warn("event=heartbeat_thread_failed");
		pthread_mutex_destroy(&b->mu);
		pthread_cond_destroy(&b->cv);
		free(b);
		return;
	}
	c->beat = b;
}

static void beat_stop(struct gradeq_consumer *c)
{
	struct gradeq_beat *b = c->beat;

	if (!b)
		return;
	pthread_mutex_lock(&b->mu);
	b->quit = true;
	pthread_cond_signal(&b->cv);
	pthread_mutex_unlock(&b->mu);
	pthread_join(b->thread, NULL);
	pthread_mutex_destroy(&b->mu);
	pthread_cond_destroy(&b->cv);
	free(b);
	c->beat = NULL;
}

/* The loop enters (busy) or leaves the database. */
static void beat_busy(struct gradeq_consumer *c, bool busy)
{
	struct gradeq_beat *b = c->beat;

	if (!b)
		return;
	pthread_mutex_lock(&b->mu);
	b->busy = busy;
	b->in = c->in;
	b->out = c->out;
	pthread_mutex_unlock(&b->mu);
}

/* Sleeps ms in small steps so a stop request is seen, keeping the broker
 * connections alive meanwhile. */
static void nap(struct gradeq_consumer *c, int ms)
{
	for (int slept = 0; ms > 0 && !*c->stop_requested; slept += 100) {
		struct timespec ts = {0, 100 * 1000000L};

		if (slept % 1000 == 0)
			keepalive(c);
		nanosleep(&ts, NULL);
		ms -= 100;
	}
}

/* Waits until the throttle lets a job of learners start (throttle_agent.c
 * says how long), keeping the connections alive, SIGHUP and SIGTERM
 * answered and the budget fresh meanwhile. False when a stop came first. */
static bool pace(struct gradeq_consumer *c, size_t learners)
{
	double w;

	while ((w = gradeq_throttle_agent_wait(c->thr)) > 0) {
		if (*c->stop_requested)
			return false;
		if (*c->reload_requested && c->reload)
			c->reload(c);
		if (w < 0.1) {
			struct timespec ts = {0, (long)(w * 1e9)};

			nanosleep(&ts, NULL);
			keepalive_due(c);
		} else {
			nap(c, w > 0.5 ? 500 : (int)(w * 10) * 100);
		}
		gradeq_throttle_agent_tick(c->thr, c->st, c->out, true);
	}
	gradeq_throttle_agent_take(c->thr, learners);
	return true;
}

/* The wait before retry 'attempt' + 1 after failed attempt 'attempt'
 * (0 = the first try): jittered, doubling from 0.25 s up to
 * reconnect_max_ms (gradeq_backoff_ms). */
static int backoff_ms(const struct gradeq_consumer *c, int attempt)
{
	return gradeq_backoff_ms(attempt + 1, c->cli.cfg->reconnect_max_ms, (uint32_t)rand());
}

/* (Re)connects to the database with capped, jittered backoff. One line when
 * an outage begins (event=database_lost, logged by the caller that saw the
 * connection go, or event=database_unavailable here) and one when it ends. */
int gradeq_consumer_connect_db(struct gradeq_consumer *c)
{
	for (int attempt = 0; !*c->stop_requested; attempt++) {
		int rc;

		gradeq_store_free(c->st);
		c->st = NULL;
		beat_busy(c, true);
		rc = gradeq_cli_store(&c->cli, &c->st);
		beat_busy(c, false);
		if (!rc) {
			if (attempt || c->db_lost.tv_sec)
				log_info("event=reconnected what=database attempts=%d down_ms=%ld",
					 attempt + 1, outage_ms(&c->db_lost));
			return 0;
		}
		if (!gradeq_err_is_transient(rc))
			return rc;
		if (attempt == 0 && !c->db_lost.tv_sec) {
			mark_lost(&c->db_lost);
			log_warn("event=database_unavailable error=\"%s\"", gradeq_errmsg(rc));
		}
		nap(c, backoff_ms(c, attempt));
	}
	return GRADEQ_ERR_INTERRUPTED;
}

static int connect_broker(struct gradeq_consumer *c)
{
	struct gradeq_topology topo = gradeq_cli_topology(&c->cli);
	char queue[GRADEQ_NAME_MAX], tag[200];

	for (int attempt = 0; !*c->stop_requested; attempt++) {
		int rc;

		gradeq_consumer_disconnect(c);
		rc = gradeq_broker_open(c->cli.cfg, c->cli.prog, c->release, GRADEQ_BROKER_CONSUME,
					&c->in);
		if (!rc)
			rc = gradeq_cli_broker(&c->cli, c->release, &c->out);
		if (!rc)
			rc = gradeq_broker_declare(c->in, c->release, &topo);
		if (!rc)
			rc = gradeq_broker_confirm_mode(c->out, GRADEQ_REPUBLISH_CONFIRM_WINDOW);
		if (!rc) {
			gradeq_identity(tag, sizeof(tag), c->cli.prog, c->release);
			rc = gradeq_broker_consume(c->in, gradeq_work_queue(queue, c->release),
						   c->prefetch, tag);
		}
		/* learn promptly when a newer release is promoted */
		if (!rc)
			rc = gradeq_events_watch_release(c->in, c->release);
		if (!rc) {
			if (attempt || c->broker_lost.tv_sec)
				log_info("event=reconnected what=broker attempts=%d down_ms=%ld",
					 attempt + 1, outage_ms(&c->broker_lost));
			log_info("event=consuming queue=%s prefetch=%d group_jobs=%d node=%s",
				 queue, c->prefetch, c->cli.cfg->group_jobs,
				 gradeq_broker_peer(c->in));
			gradeq_notify("READY=1");
			return 0;
		}
		if (!gradeq_err_is_transient(rc) && rc != GRADEQ_ERR_BROKER)
			return rc;
		if (attempt == 0 && !c->broker_lost.tv_sec) {
			mark_lost(&c->broker_lost);
			log_warn("event=broker_unavailable error=\"%s\"", gradeq_errmsg(rc));
		}
		nap(c, backoff_ms(c, attempt));
	}
	return GRADEQ_ERR_INTERRUPTED;
}

/* Opens the publishing connection again (confirm mode) when it is gone;
 * the consuming one and its deliveries in hand stay. */
static int reopen_out(struct gradeq_consumer *c)
{
	int rc;

	if (c->out && !gradeq_broker_broken(c->out))
		return 0;
	gradeq_broker_free(c->out);
	c->out = NULL;
	rc = gradeq_cli_broker(&c->cli, c->release, &c->out);
	if (!rc)
		rc = gradeq_broker_confirm_mode(c->out, GRADEQ_REPUBLISH_CONFIRM_WINDOW);
	if (rc) {
		log_warn("event=reconnect_failed what=publish_connection error=\"%s\"",
			 gradeq_errmsg(rc));
		gradeq_broker_free(c->out);
		c->out = NULL;
		return rc;
	}
	log_info("event=reconnected what=publish_connection");
	return 0;
}

/* Republishes a delivery to the dead queue or a retry tier with headers
 * that say why, when, where and how often; confirmed before the caller
 * acks the original. */
static int republish(struct gradeq_consumer *c, const amqp_envelope_t *env, const char *exchange,
		     const char *key, const char *cls, const char *error, int64_t attempt)
{
	static const char *const skip[] = {"gradeq-attempt",
					   "gradeq-error",
					   "gradeq-error-class",
					   "gradeq-failed-at",
					   "gradeq-failed-by",
					   "gradeq-origin-queue",
					   NULL};
	amqp_basic_properties_t props = env->message.properties;
	struct gradeq_headers h;
	char at[40], by[300], queue[GRADEQ_NAME_MAX];
	int rc;

	gradeq_rfc3339(at, sizeof(at), time(NULL));
	gradeq_identity(by, sizeof(by), c->cli.prog, c->release);
	/* gradeq's headers must go with the job; when the delivery's own do
	 * not leave room for them, they are left behind, and the log says so */
	for (int own_only = 0;; own_only++) {
		gradeq_headers_init(&h);
		if ((props._flags & AMQP_BASIC_HEADERS_FLAG) && !own_only)
			gradeq_headers_copy(&h, &env->message.properties.headers, skip);
		gradeq_headers_set_str(&h, "gradeq-error", error);
		gradeq_headers_set_str(&h, "gradeq-error-class", cls);
		gradeq_headers_set_str(&h, "gradeq-failed-at", at);
		gradeq_headers_set_str(&h, "gradeq-failed-by", by);
		gradeq_headers_set_int(&h, "gradeq-attempt", attempt);
		gradeq_headers_set_str(&h, "gradeq-origin-queue",
				       gradeq_work_queue(queue, c->release));
		rc = gradeq_headers_finish(&h, &props.headers);
		if (!rc || own_only)
			break;
		log_warn("event=headers_dropped tag=%llu error=\"%s\"",
			 (unsigned long long)env->delivery_tag, gradeq_errmsg(rc));
	}
	if (rc)
		return rc;
	props._flags |= AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
	props.delivery_mode = 2;
	rc = gradeq_broker_publish(c->out, exchange, key, &props, env->message.body.bytes,
				   env->message.body.len);
	if (!rc)
		rc = gradeq_broker_wait_confirms(c->out, GRADEQ_CONFIRM_WAIT_MS);
	return rc;
}

/* republish(), retried until it is confirmed: the publishing connection
 * reopened when it is gone, and when the message was unroutable (its queue
 * deleted under us) the release's topology declared again; with backoff,
 * each step logged. Gives up after GRADEQ_REPUBLISH_TRIES, when stopping,
 * or when the consuming connection is gone: the caller then has the
 * connections rebuilt and the broker delivers the job again. */
static int republish_retrying(struct gradeq_consumer *c, const amqp_envelope_t *env,
			      const char *job_id, const char *exchange, const char *key,
			      const char *cls, const char *error, int64_t attempt)
{
	struct gradeq_topology topo = gradeq_cli_topology(&c->cli);
	int rc;

	for (int try = 0;; try++) {
		rc = reopen_out(c);
		if (!rc)
			rc = republish(c, env, exchange, key, cls, error, attempt);
		if (!rc) {
			if (try)
				log_info("event=republish_recovered job=%s exchange=%s key=%s "
					 "attempts=%d",
					 job_id, exchange, key, try + 1);
			return 0;
		}
		log_warn("event=republish_failed job=%s exchange=%s key=%s attempt=%d error=\"%s\"",
			 job_id, exchange, key, try + 1, gradeq_errmsg(rc));
		if (rc == GRADEQ_ERR_UNROUTABLE && c->out && !gradeq_broker_broken(c->out)) {
			/* no queue for the key: someone deleted it; the release's
			 * queues are ours to declare again */
			int r2 = gradeq_broker_declare(c->out, c->release, &topo);

			if (r2)
				log_warn("event=topology_redeclare_failed release=%s error=\"%s\"",
					 c->release, gradeq_errmsg(r2));
			else
				log_warn("event=topology_redeclared release=%s reason=unroutable "
					 "key=%s",
					 c->release, key);
		}
		if (try + 1 >= GRADEQ_REPUBLISH_TRIES || *c->stop_requested ||
		    gradeq_broker_broken(c->in))
			return rc;
		nap(c, backoff_ms(c, try));
	}
}

/* Pushes job.<state> (when job_events is on) and, when the job settled its
 * run, run.<id>.<state>, each confirmed. A publish that fails is retried
 * after the publishing connection is reopened, with backoff, until it is
 * confirmed; only a permanent refusal (e.g. permissions) or a stop request
 * ends the retries, and then the log says which event was lost. */
static void announce(struct gradeq_consumer *c, const char *job_id, const char *run,
		     const char *course, const char *state, const char *detail, const char *settled)
{
	bool job_sent = !c->cli.cfg->job_events, run_sent = !settled || !settled[0];

	if (!run[0])
		return;
	for (int try = 0; !job_sent || !run_sent; try++) {
		int rc = reopen_out(c);

		if (!rc && !job_sent) {
			rc = gradeq_event_job(c->out, job_id, run, course, state, detail);
			if (!rc)
				rc = gradeq_broker_wait_confirms(c->out, GRADEQ_CONFIRM_WAIT_MS);
			job_sent = !rc;
		}
		if (!rc && !run_sent) {
			rc = gradeq_event_run(c->out, run, c->release, settled);
			if (!rc)
				rc = gradeq_broker_wait_confirms(c->out, GRADEQ_CONFIRM_WAIT_MS);
			run_sent = !rc;
		}
		if (!rc) {
			if (try)
				log_info("event=event_publish_recovered job=%s attempts=%d", job_id,
					 try + 1);
			return;
		}
		log_warn("event=event_publish_failed job=%s attempt=%d error=\"%s\"", job_id,
			 try + 1, gradeq_errmsg(rc));
		if (!gradeq_err_is_transient(rc) || *c->stop_requested) {
			log_error("event=event_lost job=%s run=%s job_event=%s run_event=%s",
				  job_id, run, job_sent ? "sent" : state,
				  run_sent ? "sent" : settled);
			return;
		}
		nap(c, backoff_ms(c, try));
	}
}

/* Parks or retries a failed delivery, records it, then acks the original.
 * Returns non-zero when the broker failed (the delivery stays unacked and
 * comes back). */
static void dispatch_dead(struct gradeq_consumer *c, const struct gradeq_job *job, const char *msg);

/* job: the decoded job when there is one (its type's on_dead runs when it
 * goes dead), else NULL. */
static int handle_failure(struct gradeq_consumer *c, const amqp_envelope_t *env, const char *job_id,
			  const struct gradeq_job *job, int err, const char *msg)
{
	const amqp_table_t *hdr = (env->message.properties._flags & AMQP_BASIC_HEADERS_FLAG)
					  ? &env->message.properties.headers
					  : NULL;
	int64_t attempt = gradeq_header_int(hdr, "gradeq-attempt", 1);
	int ntiers = c->cli.cfg->nretry_tiers;
	enum gradeq_err_class cls = gradeq_err_classify(err, attempt, ntiers);
	/* the job row follows the class, as the message does */
	enum gradeq_job_state state =
		cls == GRADEQ_CLASS_TRANSIENT ? GRADEQ_JOB_RETRYING : GRADEQ_JOB_DEAD;
	char key[GRADEQ_NAME_MAX];
	int rc;

	if (attempt < 1)
		attempt = 1;
	if (cls == GRADEQ_CLASS_TRANSIENT) {
		int tier = c->cli.cfg->retry_tiers[attempt - 1];

		rc = republish_retrying(c, env, job_id, GRADEQ_EXCHANGE,
					gradeq_retry_key(key, c->release, tier),
					gradeq_err_class_name(cls), msg, attempt + 1);
		/* said once the retry tier holds it: a republish that failed
		 * leaves the job to be delivered again, and said then */
		if (!rc)
			log_warn("event=job_retry job=%s tag=%llu attempt=%lld tier=%ds "
				 "error=\"%s\"",
				 job_id, (unsigned long long)env->delivery_tag, (long long)attempt,
				 tier, msg);
	} else {
		rc = republish_retrying(c, env, job_id, GRADEQ_DEAD_EXCHANGE,
					gradeq_work_key(key, c->release),
					gradeq_err_class_name(cls), msg, attempt);
		if (!rc)
			log_error("event=job_dead job=%s tag=%llu attempt=%lld class=%s "
				  "error=\"%s\"",
				  job_id, (unsigned long long)env->delivery_tag, (long long)attempt,
				  gradeq_err_class_name(cls), msg);
	}
	if (rc) {
		log_error("event=republish_given_up job=%s tag=%llu error=\"%s\" "
			  "action=reconnect_for_redelivery",
			  job_id, (unsigned long long)env->delivery_tag, gradeq_errmsg(rc));
		return rc;
	}
	if (job_id[0] && c->st && !gradeq_store_broken(c->st)) {
		char settled[16] = "", run[64] = "", course[512] = "";
		int r2 = gradeq_worker_record_failure(c->st, job_id, state, cls, msg, settled);

		if (r2)
			log_warn("event=record_failed job=%s error=\"%s\"", job_id,
				 gradeq_errmsg(r2));
		gradeq_header_str(hdr, "gradeq-run", run, sizeof(run));
		gradeq_header_str(hdr, "gradeq-course", course, sizeof(course));
		announce(c, job_id, run, course, gradeq_job_state_name(state), msg, settled);
		if (job && state == GRADEQ_JOB_DEAD)
			dispatch_dead(c, job, msg);
	}
	c->failed++;
	return gradeq_broker_ack(c->in, env->delivery_tag);
}

/* A database error is the job's (permanent) only when the session is
 * whole: one raised while the server was ending the session (a restart, a
 * terminated backend) can carry any message, and is the connection's. */
static int db_error_class(struct gradeq_consumer *c, int rc)
{
	if (rc == GRADEQ_ERR_DB && c->st && gradeq_store_lost(c->st)) {
		log_warn("event=database_error_was_connection error=\"%s\"", gradeq_errmsg(rc));
		return GRADEQ_ERR_DB_TRANSIENT;
	}
	return rc;
}

/* The job type's handler does the job (jobtype.h): grading or any other
 * registered type, on the same queues, retries and dead letters. */
static int dispatch(struct gradeq_consumer *c, const struct gradeq_job *job,
		    struct gradeq_job_stats *stats)
{
	struct gradeq_jobctx ctx = {.worker = c->w, .st = c->st, .cfg = c->cli.cfg};
	int rc;

	/* a type may announce what it made (report parts: output.<id>.ready);
	 * without a publishing connection it logs the event as lost */
	if (gradeq_job_type(job) != gradeq_jobtype_default() && !reopen_out(c))
		ctx.events = c->out;
	rc = gradeq_job_type(job)->handle(&ctx, job, stats);
	return db_error_class(c, rc);
}

/* The job type's on_dead hook, after the job was parked and recorded. */
static void dispatch_dead(struct gradeq_consumer *c, const struct gradeq_job *job, const char *msg)
{
	struct gradeq_jobctx ctx = {.worker = c->w, .st = c->st, .cfg = c->cli.cfg};

	if (!gradeq_job_type(job)->on_dead)
		return;
	if (!reopen_out(c))
		ctx.events = c->out;
	gradeq_job_type(job)->on_dead(&ctx, job, msg);
}

/* Decodes a delivery; on failure it is parked as malformed (*job NULL) and
 * the return says whether the broker failed meanwhile. */
static int decode_delivery(struct gradeq_consumer *c, const amqp_envelope_t *env,
			   struct gradeq_job **job)
{
	char err[400] = "";
	int rc;

	*job = NULL;
	rc = gradeq_job_decode(env->message.body.bytes, env->message.body.len, job, err,
			       sizeof(err));
	if (rc) {
		char msg[500];

		*job = NULL;
		snprintf(msg, sizeof(msg), "%s: %s", gradeq_strerror(rc), err);
		/* an undecodable body has no trustworthy job id: do not record */
		return handle_failure(c, env, "", NULL, rc, msg);
	}
	if (c->abort_course && strcmp(c->abort_course, (*job)->course_id) == 0) {
		log_error("event=test_abort job=%s course=%s (GRADEQ_TEST_ABORT_COURSE)",
			  (*job)->job_id, (*job)->course_id);
		abort();
	}
	return 0;
}

/* One line per job done, whether it went alone or in a group. */
static void log_job(const amqp_envelope_t *env, const struct gradeq_job *job,
		    const struct gradeq_job_stats *stats, int group)
{
	log_info("event=job job=%s tag=%llu course=%s run=%s users=%zu graded=%d skipped=%d "
		 "outcome=%s ms=%.1f load_ms=%.1f fetch_ms=%.1f write_ms=%.1f group=%d",
		 job->job_id, (unsigned long long)env->delivery_tag, job->course_id, job->run_id,
		 job->nusers, stats->graded, stats->skipped,
		 stats->outcome == GRADEQ_DONE           ? "graded"
		 : stats->outcome == GRADEQ_ALREADY_DONE ? "already_complete"
							 : "canceled",
		 stats->ms_total, stats->ms_load, stats->ms_fetch, stats->ms_write, group);
}

/* A job that failed: parked or retried, recorded, acked (handle_failure). */
static int job_failed(struct gradeq_consumer *c, const amqp_envelope_t *env,
		      const struct gradeq_job *job, const struct gradeq_job_stats *stats, int rc,
		      const char *why)
{
	char msg[700];

	snprintf(msg, sizeof(msg), "%s", why ? why : gradeq_errmsg(rc));
	/* a forged body names a job row that is not its own: leave it */
	return handle_failure(c, env, stats->forged ? "" : job->job_id, stats->forged ? NULL : job,
			      rc, msg);
}

/* Handles one decoded delivery alone; frees job. Returns non-zero only
 * when the broker connection must be rebuilt. *acked (may be NULL) says
 * whether the delivery was acked: a job returned when stopping is not. */
static int run_one(struct gradeq_consumer *c, const amqp_envelope_t *env, struct gradeq_job *job,
		   bool *acked)
{
	struct gradeq_job_stats stats;
	const char *job_id = job->job_id;
	bool ignored;
	int rc;

	if (!acked)
		acked = &ignored;
	*acked = false;
	memset(&stats, 0, sizeof(stats));
	if (!pace(c, job->nusers)) {
		log_warn("event=job_returned job=%s tag=%llu reason=stopping_while_throttled",
			 job_id, (unsigned long long)env->delivery_tag);
		gradeq_job_free(job);
		return 0;
	}
	for (int tries = 0;; tries++) {
		if (!c->st || gradeq_store_broken(c->st)) {
			rc = gradeq_consumer_connect_db(c);
			if (rc)
				break;
		}
		beat_busy(c, true);
		rc = dispatch(c, job, &stats);
		beat_busy(c, false);
		/* a lost database connection: hold the job, reconnect, try again
		 * for a while before it goes to a retry tier */
		if (rc == GRADEQ_ERR_DB_TRANSIENT && gradeq_store_broken(c->st) && tries < 3 &&
		    !*c->stop_requested) {
			if (!c->db_lost.tv_sec) {
				mark_lost(&c->db_lost);
				log_warn("event=database_lost job=%s error=\"%s\"", job_id,
					 gradeq_errmsg(rc));
			}
			continue;
		}
		break;
	}
	if (*c->stop_requested && (rc == GRADEQ_ERR_INTERRUPTED ||
				   (rc == GRADEQ_ERR_DB_TRANSIENT && gradeq_store_broken(c->st)))) {
		/* stopping without a database: nothing was committed; leave the
		 * delivery unacked so that the broker hands it to another consumer
		 * when this one closes */
		log_warn("event=job_returned job=%s tag=%llu reason=stopping_without_database",
			 job_id, (unsigned long long)env->delivery_tag);
		gradeq_job_free(job);
		return 0;
	}
	if (rc) {
		rc = job_failed(c, env, job, &stats, rc, NULL);
		*acked = rc == 0;
		gradeq_job_free(job);
		return rc;
	}
	gradeq_throttle_agent_done(c->thr, &stats, job->nusers);
	rc = gradeq_broker_ack(c->in, env->delivery_tag);
	if (!rc) {
		c->done++;
		*acked = true;
	}
	if (stats.outcome != GRADEQ_ALREADY_DONE)
		announce(c, job_id, job->run_id, job->course_id,
			 stats.outcome == GRADEQ_DONE ? "complete" : "canceled", NULL,
			 stats.run_settled);
	log_job(env, job, &stats, 1);
	gradeq_job_free(job);
	return rc;
}

static void confirm_release_event(struct gradeq_consumer *c);

/* release.<R>.<state>, throttle.<R>.<state> on gradeq.events: a control
 * message, not a job. */
static bool is_control(const amqp_envelope_t *env)
{
	return env->exchange.len == strlen(GRADEQ_EVENTS_EXCHANGE) &&
	       memcmp(env->exchange.bytes, GRADEQ_EVENTS_EXCHANGE, env->exchange.len) == 0;
}

static void control(struct gradeq_consumer *c, const amqp_envelope_t *env)
{
	const char *k = env->routing_key.bytes;
	size_t n = env->routing_key.len;

	if (n > 9 && memcmp(k + n - 9, ".draining", 9) == 0 && !c->draining)
		confirm_release_event(c);
	else if (n > 9 && memcmp(k, "throttle.", 9) == 0)
		gradeq_throttle_agent_hint(c->thr);
}

/* A delivery of a group. */
struct held {
	amqp_envelope_t env;
	struct gradeq_job *job;
	struct gradeq_job_stats stats;
	int rc;
	char err[GRADEQ_GROUP_ERR_MAX]; /* its error message */
	enum gradeq_group_settle settle;
};

static bool small_job(const struct gradeq_group_limits *lim, const struct gradeq_job *job,
		      int njobs, size_t held, const amqp_envelope_t *env)
{
	return gradeq_job_type(job) == gradeq_jobtype_default() &&
	       gradeq_group_admits(lim, njobs, held, job->nusers, env->redelivered);
}

/* job.<state> and run.<id>.<state> of a group's jobs done: published one
 * after the other and confirmed together; when that fails, each is sent
 * again the way announce() sends one (an event may then arrive twice:
 * events are hints). */
static void announce_group(struct gradeq_consumer *c, struct held *g, int n)
{
	int rc = reopen_out(c), sent = 0;

	for (int i = 0; i < n && !rc; i++) {
		const struct gradeq_job *job = g[i].job;
		const struct gradeq_job_stats *st = &g[i].stats;

		if (g[i].settle != GRADEQ_SETTLE_ACK || st->outcome == GRADEQ_ALREADY_DONE ||
		    !job->run_id[0])
			continue;
		if (c->cli.cfg->job_events)
			rc = gradeq_event_job(c->out, job->job_id, job->run_id, job->course_id,
					      st->outcome == GRADEQ_DONE ? "complete" : "canceled",
					      NULL);
		if (!rc && st->run_settled[0])
			rc = gradeq_event_run(c->out, job->run_id, c->release, st->run_settled);
		sent++;
	}
	if (!rc && sent)
		rc = gradeq_broker_wait_confirms(c->out, GRADEQ_CONFIRM_WAIT_MS);
	if (!rc)
		return;
	log_warn("event=event_publish_failed jobs=%d error=\"%s\" action=one_by_one", sent,
		 gradeq_errmsg(rc));
	for (int i = 0; i < n; i++) {
		const struct gradeq_job *job = g[i].job;
		const struct gradeq_job_stats *st = &g[i].stats;

		if (g[i].settle == GRADEQ_SETTLE_ACK && st->outcome != GRADEQ_ALREADY_DONE)
			announce(c, job->job_id, job->run_id, job->course_id,
				 st->outcome == GRADEQ_DONE ? "complete" : "canceled", NULL,
				 st->run_settled);
	}
}

/* Processes a group: graded and written in one transaction
 * (gradeq_worker_process_group), then the jobs that failed handled one by
 * one (a transient failure, which may be the group's, is tried again alone;
 * a permanent one is parked), then the committed ones acked, together when
 * nothing below them is left unacked. Returns non-zero when the broker
 * connection must be rebuilt (what is unacked comes back: committed jobs
 * are then recognised as complete and acked without work). */
static int run_group(struct gradeq_consumer *c, struct held *g, int n)
{
	const struct gradeq_job *jobs[GRADEQ_GROUP_MAX_JOBS];
	struct gradeq_job_stats stats[GRADEQ_GROUP_MAX_JOBS];
	uint64_t tags[GRADEQ_GROUP_MAX_JOBS];
	enum gradeq_group_settle settle[GRADEQ_GROUP_MAX_JOBS];
	int rcs[GRADEQ_GROUP_MAX_JOBS];
	char *errs[GRADEQ_GROUP_MAX_JOBS];
	size_t learners = 0;
	uint64_t upto;
	int rc = 0, broker_rc = 0;

	for (int i = 0; i < n; i++) {
		jobs[i] = g[i].job;
		learners += g[i].job->nusers;
	}
	if (!pace(c, learners)) {
		for (int i = 0; i < n; i++)
			log_warn(
				"event=job_returned job=%s tag=%llu reason=stopping_while_throttled",
				g[i].job->job_id, (unsigned long long)g[i].env.delivery_tag);
		return 0;
	}
	if (!c->st || gradeq_store_broken(c->st))
		rc = gradeq_consumer_connect_db(c);
	if (rc) {
		/* no database: each alone, as a job without a group goes */
		for (int i = 0; i < n; i++) {
			int r = run_one(c, &g[i].env, g[i].job, NULL);

			g[i].job = NULL;
			if (r && !broker_rc)
				broker_rc = r;
		}
		return broker_rc;
	}
	beat_busy(c, true);
	for (int i = 0; i < n; i++)
		errs[i] = g[i].err;
	gradeq_worker_process_group(c->w, c->st, jobs, n, stats, rcs, errs);
	beat_busy(c, false);
	if (gradeq_store_broken(c->st) && !c->db_lost.tv_sec) {
		/* the session went during the group: its jobs go alone, after
		 * a reconnect that ends this outage's line */
		int i = 0;

		while (i < n - 1 && !rcs[i])
			i++;
		mark_lost(&c->db_lost);
		log_warn("event=database_lost job=%s error=\"%s\"", g[i].job->job_id,
			 rcs[i] ? g[i].err : "");
	}
	for (int i = 0; i < n; i++) {
		g[i].stats = stats[i];
		g[i].rc = db_error_class(c, rcs[i]);
		tags[i] = g[i].env.delivery_tag;
		g[i].settle = GRADEQ_SETTLE_ACK;
	}
	for (int i = 0; i < n; i++) {
		bool acked = false;
		int r;

		if (!g[i].rc)
			continue;
		if (g[i].rc == GRADEQ_ERR_DB_TRANSIENT || g[i].rc == GRADEQ_ERR_INTERRUPTED) {
			/* the group's transaction may be what failed: this job
			 * alone, reconnecting and retrying as one does */
			log_info("event=job_alone job=%s tag=%llu reason=\"%s\"", g[i].job->job_id,
				 (unsigned long long)g[i].env.delivery_tag, g[i].err);
			r = run_one(c, &g[i].env, g[i].job, &acked);
			g[i].job = NULL;
		} else {
			r = job_failed(c, &g[i].env, g[i].job, &g[i].stats, g[i].rc, g[i].err);
			acked = r == 0;
		}
		/* settled: acked, or left unacked for redelivery (stopping, or
		 * the broker failed): then no multiple ack may cover it */
		g[i].settle = acked ? GRADEQ_SETTLE_ACKED : GRADEQ_SETTLE_HELD;
		if (r && !broker_rc)
			broker_rc = r;
	}
	for (int i = 0; i < n; i++)
		settle[i] = g[i].settle;
	if (c->abort_after_commit && n > 1 && gradeq_group_ack_upto(tags, settle, n)) {
		log_error("event=test_abort jobs=%d (GRADEQ_TEST_ABORT_AFTER_COMMIT)", n);
		abort();
	}
	if (broker_rc) {
		/* the connection is to be rebuilt: the committed jobs come back
		 * and are acked without work */
		for (int i = 0; i < n; i++)
			if (settle[i] == GRADEQ_SETTLE_ACK)
				g[i].settle = GRADEQ_SETTLE_HELD;
		return broker_rc;
	}
	upto = gradeq_group_ack_upto(tags, settle, n);
	if (upto) {
		rc = gradeq_broker_ack_upto(c->in, upto);
	} else {
		for (int i = 0; i < n && !rc; i++)
			if (settle[i] == GRADEQ_SETTLE_ACK)
				rc = gradeq_broker_ack(c->in, tags[i]);
	}
	for (int i = 0; i < n; i++) {
		if (g[i].settle != GRADEQ_SETTLE_ACK)
			continue;
		gradeq_throttle_agent_done(c->thr, &g[i].stats, g[i].job->nusers);
		if (!rc)
			c->done++;
	}
	announce_group(c, g, n);
	for (int i = 0; i < n; i++)
		if (g[i].settle == GRADEQ_SETTLE_ACK)
			log_job(&g[i].env, g[i].job, &g[i].stats, n);
	return rc;
}

/* Takes a delivery: a small job starts a group (group.h) of the small jobs
 * in hand at a prefetch above 1, or else ready in the queue (basic.get,
 * one round trip each: nothing waits for them), which run_group()
 * processes; anything else goes alone. A job that does not fit the group
 * ends it and is handled alone after it. Destroys env. Returns non-zero when the broker
 * connection must be rebuilt; *next_rc gets an error of the broker met
 * while looking for more deliveries, for the loop to handle. */
static int take(struct gradeq_consumer *c, amqp_envelope_t *env, int *next_rc)
{
	const double rate = gradeq_throttle_agent_rate(c->thr);
	const struct gradeq_group_limits lim = {
		.max_jobs = c->cli.cfg->group_jobs,
		.max_learners = (size_t)c->cli.cfg->group_learners,
		.max_total = gradeq_group_paced_total(rate, GRADEQ_GROUP_PACED_S,
						      GRADEQ_GROUP_MAX_LEARNERS),
	};
	struct held *g = NULL;
	struct gradeq_job *job = NULL;
	amqp_envelope_t tail;
	struct gradeq_job *tail_job = NULL;
	bool have_tail = false, in_hand = c->prefetch > 1;
	char queue[GRADEQ_NAME_MAX];
	size_t held = 0; /* learners of the group's jobs */
	int n = 0, rc;

	*next_rc = 0;
	rc = decode_delivery(c, env, &job);
	if (rc || !job)
		goto out_env;
	if (lim.max_jobs <= 1 || !small_job(&lim, job, 0, 0, env) ||
	    !(g = calloc((size_t)lim.max_jobs, sizeof(*g)))) {
		rc = run_one(c, env, job, NULL);
		goto out_env;
	}
	gradeq_work_queue(queue, c->release);
	g[n].env = *env;
	g[n++].job = job;
	held = job->nusers;
	while (n < lim.max_jobs && !*c->stop_requested) {
		amqp_envelope_t e;
		struct gradeq_job *j = NULL;
		int r;

		if (in_hand) {
			/* deliveries already sent (prefetch above 1); rabbitmq-c
			 * reads the socket only before a deadline: 1 ms is "what
			 * has arrived" */
			r = gradeq_broker_next(c->in, &e, 1);
			if (r == GRADEQ_ERR_TIMEOUT) {
				/* at a prefetch above 1, more deliveries may be
				 * on their way: a basic.get now would read its
				 * reply's content from their frames (rabbitmq-c
				 * queues them), so the group is what is in hand */
				break;
			}
			if (r) {
				*next_rc = r;
				break;
			}
		} else {
			/* then the queue's next ready ones: the prefetch stays
			 * as it is for large jobs (README), and a job got
			 * this way is acked like a delivery */
			r = gradeq_broker_get(c->in, queue, &e);
			if (r == GRADEQ_ERR_NOT_FOUND)
				break;
			if (r) {
				*next_rc = r;
				break;
			}
		}
		if (is_control(&e)) {
			control(c, &e);
			amqp_destroy_envelope(&e);
			continue;
		}
		r = decode_delivery(c, &e, &j);
		if (r || !j) {
			/* parked as malformed (or the broker failed doing it) */
			amqp_destroy_envelope(&e);
			if (r) {
				rc = r;
				break;
			}
			continue;
		}
		if (!small_job(&lim, j, n, held, &e)) {
			tail = e;
			tail_job = j;
			have_tail = true;
			break;
		}
		held += j->nusers;
		g[n].env = e;
		g[n++].job = j;
	}
	if (!rc)
		rc = run_group(c, g, n);
	for (int i = 0; i < n; i++) {
		if (i > 0)
			amqp_destroy_envelope(&g[i].env);
		gradeq_job_free(g[i].job);
	}
	free(g);
	if (have_tail) {
		if (!rc) {
			rc = run_one(c, &tail, tail_job, NULL);
		} else {
			gradeq_job_free(tail_job);
		}
		amqp_destroy_envelope(&tail);
	}
out_env:
	amqp_destroy_envelope(env);
	return rc;
}

/* Drained: the work queue and every retry tier have no ready message, and
 * no other consumer of the release holds a job in progress. */
static int drained(struct gradeq_consumer *c, bool *yes)
{
	char q[GRADEQ_NAME_MAX];
	uint32_t ready = 0, consumers = 0, r;
	int rc;

	*yes = false;
	rc = gradeq_broker_queue_info(c->out, gradeq_work_queue(q, c->release), &ready, &consumers);
	if (rc)
		return rc;
	for (int i = 0; i < c->cli.cfg->nretry_tiers && !ready; i++) {
		rc = gradeq_broker_queue_info(
			c->out, gradeq_retry_queue(q, c->release, c->cli.cfg->retry_tiers[i]), &r,
			NULL);
		if (rc)
			return rc;
		ready += r;
	}
	if (ready)
		return 0;
	if (consumers > 1) {
		long busy = 0;

		rc = gradeq_jobs_in_progress(c->st, c->release, &busy);
		if (rc)
			return rc;
		if (busy)
			return 0;
	}
	*yes = true;
	return 0;
}

/* The fallback for a missed event: the registry says whether the release
 * is being drained (or was retired under us). */
static void check_registry(struct gradeq_consumer *c)
{
	enum gradeq_release_state state;

	c->registry_checked = time(NULL);
	if (!c->st || gradeq_store_broken(c->st) || gradeq_release_get(c->st, c->release, &state))
		return;
	if (state == GRADEQ_RELEASE_DRAINING || state == GRADEQ_RELEASE_RETIRED) {
		c->draining = true;
		log_info("event=draining release=%s reason=registry_%s", c->release,
			 gradeq_release_state_name(state));
	}
}

/* release.<R>.draining is a hint: anyone who may write to gradeq.events
 * could have sent it. The consumer drains only when the registry, written
 * before the event is sent (release promote, release drain), confirms that
 * the release is draining or retired; otherwise the event is logged and
 * ignored, and the periodic registry check stays the fallback. */
static void confirm_release_event(struct gradeq_consumer *c)
{
	enum gradeq_release_state state;
	char why[64] = "";
	int rc;

	if (!c->st || gradeq_store_broken(c->st)) {
		/* one attempt: a database that stays away must not stall the loop */
		gradeq_store_free(c->st);
		c->st = NULL;
		beat_busy(c, true);
		rc = gradeq_cli_store(&c->cli, &c->st);
		beat_busy(c, false);
	} else {
		rc = 0;
	}
	if (!rc)
		rc = gradeq_release_get(c->st, c->release, &state);
	c->registry_checked = time(NULL);
	if (!rc && (state == GRADEQ_RELEASE_DRAINING || state == GRADEQ_RELEASE_RETIRED)) {
		c->draining = true;
		log_info("event=draining release=%s reason=promoted_elsewhere registry=%s",
			 c->release, gradeq_release_state_name(state));
		return;
	}
	if (rc)
		snprintf(why, sizeof(why), "%s",
			 rc == GRADEQ_ERR_NOT_FOUND ? "not_in_registry" : "registry_unavailable");
	else
		snprintf(why, sizeof(why), "registry_%s", gradeq_release_state_name(state));
	log_warn("event=release_event_ignored release=%s event_state=draining reason=%s",
		 c->release, why);
}

/* The broker cancelled our consumer (basic.cancel: the work queue was
 * deleted, or its node went into maintenance). 0 when the release is still
 * in service (active, promoted or draining in the registry, or the
 * registry cannot say): the caller reconnects, which declares the
 * release's topology again and consumes the new queue. GRADEQ_ERR_STATE
 * when the release was retired: its queues are gone for good, and
 * declaring them again would bring a retired release back. */
static int on_canceled(struct gradeq_consumer *c, int err)
{
	enum gradeq_release_state state;
	char queue[GRADEQ_NAME_MAX];
	int rc = 0;

	gradeq_work_queue(queue, c->release);
	log_warn("event=consumer_canceled queue=%s release=%s error=\"%s\"", queue, c->release,
		 gradeq_errmsg(err));
	if (!c->st || gradeq_store_broken(c->st)) {
		/* one attempt: with no registry to ask, the queue is declared again */
		gradeq_store_free(c->st);
		c->st = NULL;
		beat_busy(c, true);
		rc = gradeq_cli_store(&c->cli, &c->st);
		beat_busy(c, false);
	}
	if (!rc)
		rc = gradeq_release_get(c->st, c->release, &state);
	if (!rc && state == GRADEQ_RELEASE_RETIRED) {
		log_error("event=release_retired release=%s queue=%s action=exit", c->release,
			  queue);
		return gradeq_error(
			GRADEQ_ERR_STATE,
			"release '%s' was retired: the broker cancelled the consumer of "
			"'%s' and it is not declared again",
			c->release, queue);
	}
	log_info("event=topology_redeclare release=%s reason=consumer_canceled registry=%s",
		 c->release, rc ? "unavailable" : gradeq_release_state_name(state));
	return 0;
}

static int consume_loop(struct gradeq_consumer *c)
{
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &c->kept_alive);
	rc = gradeq_consumer_connect_db(c);
	if (!rc)
		rc = connect_broker(c);
	if (rc == GRADEQ_ERR_INTERRUPTED && *c->stop_requested)
		goto stop;
	if (rc)
		return rc;
	while (!*c->stop_requested) {
		amqp_envelope_t env;
		bool handled = false;

		if (*c->reload_requested && c->reload)
			c->reload(c);
		if (!c->draining && time(NULL) - c->registry_checked >= GRADEQ_REGISTRY_CHECK_S)
			check_registry(c);
		gradeq_throttle_agent_tick(c->thr, c->st, c->out, false);
		rc = gradeq_broker_next(c->in, &env,
					c->drain || c->draining ? GRADEQ_DRAIN_POLL_MS : 1000);
		if (rc == 0 && is_control(&env)) {
			control(c, &env);
			amqp_destroy_envelope(&env);
		} else if (rc == 0) {
			int next_rc;

			rc = take(c, &env, &next_rc);
			handled = rc != 0;
			if (!rc)
				rc = next_rc;
		} else if (rc == GRADEQ_ERR_TIMEOUT) {
			rc = 0;
			if (c->drain || c->draining) {
				bool yes = false;

				if (!c->st || gradeq_store_broken(c->st))
					rc = gradeq_consumer_connect_db(c);
				if (!rc)
					rc = reopen_out(c);
				if (!rc)
					rc = drained(c, &yes);
				if (!rc && yes) {
					log_info("event=drained release=%s jobs=%ld failed=%ld%s",
						 c->release, c->done, c->failed,
						 c->draining ? " reason=release_draining" : "");
					return 0;
				}
			}
		}
		/* a delivery that could not be settled (handle() failed) goes back
		 * to the broker with the connection: never held unacked */
		if (rc == GRADEQ_ERR_NOT_FOUND && !handled && !gradeq_broker_broken(c->in)) {
			/* basic.cancel from the broker: resume on the re-declared
			 * queue unless the release was retired */
			rc = on_canceled(c, rc);
			if (!rc)
				rc = connect_broker(c);
			if (rc == GRADEQ_ERR_INTERRUPTED && *c->stop_requested)
				break;
			if (rc)
				return rc;
		} else if (rc && (handled || gradeq_broker_broken(c->in) ||
				  gradeq_broker_broken(c->out) || rc == GRADEQ_ERR_NOT_FOUND)) {
			mark_lost(&c->broker_lost);
			log_warn("event=broker_lost error=\"%s\"", gradeq_errmsg(rc));
			rc = connect_broker(c);
			/* stopped while reconnecting: a stop like any other */
			if (rc == GRADEQ_ERR_INTERRUPTED && *c->stop_requested)
				break;
			if (rc)
				return rc;
		} else if (rc) {
			log_warn("event=loop_error error=\"%s\"", gradeq_errmsg(rc));
		}
		keepalive_due(c);
	}
stop:
	/* stop: take no more deliveries; the one in hand was finished above */
	gradeq_notify("STOPPING=1");
	if (c->in && !gradeq_broker_broken(c->in) && gradeq_broker_cancel(c->in))
		log_warn("event=cancel_failed error=\"%s\"", gradeq_errmsg(GRADEQ_ERR_BROKER));
	log_info("event=stopped release=%s jobs=%ld failed=%ld", c->release, c->done, c->failed);
	return 0;
}

int gradeq_consumer_run(struct gradeq_consumer *c)
{
	int rc;

	/* GRADEQ_BENCH_NO_THROTTLE: no throttle at all, for tools/bench to
	 * measure what the machinery costs when no budget is set */
	if (!getenv("GRADEQ_BENCH_NO_THROTTLE"))
		c->thr = gradeq_throttle_agent_new(c->release, c->consumer_id, c->cli.cfg);
	beat_start(c);
	rc = consume_loop(c);
	beat_stop(c);
	gradeq_throttle_agent_free(c->thr);
	c->thr = NULL;
	return rc;
}
