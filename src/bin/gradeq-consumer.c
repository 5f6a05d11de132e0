/* gradeq-consumer: the daemon that grades a release's jobs. Commits the
 * grades, then acks; transient failures go to the next retry tier,
 * permanent ones to the dead queue with the reason; survives the broker
 * and the database going away. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <amqp.h>
#include <amqp_framing.h>

#include "gradeq/cli.h"
#include "gradeq/events.h"
#include "gradeq/job.h"
#include "gradeq/log.h"
#include "gradeq/notify.h"
#include "gradeq/states.h"
#include "gradeq/worker.h"

static const char usage[] =
	"Usage: gradeq-consumer [OPTIONS] --release R\n"
	"\n"
	"Consume the release's work queue: grade each job's learners, commit their\n"
	"grade rows, then ack. Failed jobs go to the retry tiers, then to the dead\n"
	"queue gradeq.grades.R.dead with the reason in their headers.\n"
	"\n"
	"Options:\n"
	"  -c, --config FILE   configuration file (default " GRADEQ_DEFAULT_CONF ")\n"
	"  -r, --release R     release whose queue to consume (default: release in the\n"
	"                      config, else the promoted one)\n"
	"  -p, --prefetch N    deliveries in flight (default: prefetch in the config, 1)\n"
	"  -d, --drain         exit 0 once the work queue and its retry tiers hold no\n"
	"                      ready and no unacknowledged messages\n"
	"  -h, --help          this text\n"
	"  -V, --version       print the version\n"
	"\n"
	"Signals: SIGTERM or SIGINT finish the job in hand, ack it and exit 0; a\n"
	"second one exits at once (the broker redelivers). SIGHUP reopens the log\n"
	"file and applies the settings gradeq.conf(5) marks reload (statement_timeout_ms,\n"
	"log_level, job_events, ...); the others are logged as needing a restart.\n"
	"\n"
	"Environment: GRADEQ_AMQP_URL and GRADEQ_PG_DSN override the configuration.\n"
	"GRADEQ_TEST_ABORT_COURSE=ID (tests only) aborts the process on a job of course ID.\n";

static volatile sig_atomic_t stop_requested, reload_requested;

static void on_stop(int sig)
{
	(void)sig;
	if (stop_requested)
		_exit(1);
	stop_requested = 1;
}

static void on_hup(int sig)
{
	(void)sig;
	reload_requested = 1;
}

struct consumer {
	struct gradeq_cli cli;
	char release[80];
	int prefetch;
	bool drain;
	char host[128];
	char consumer_id[200];
	struct gradeq_store *st;
	struct gradeq_broker *in;  /* consuming */
	struct gradeq_broker *out; /* republishing to retry and dead, confirmed */
	struct gradeq_worker *w;
	long done, failed;
	bool draining;                        /* the release was superseded: drain, then exit */
	time_t registry_checked;              /* last look at the release registry */
	struct timespec db_lost, broker_lost; /* start of an outage; 0 when none */
	/* Test hook: a job of this course aborts the process, the way a poison
	 * message crashes a consumer (GRADEQ_TEST_ABORT_COURSE; NULL when unset). */
	const char *abort_course;
};

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

static void disconnect(struct consumer *c)
{
	gradeq_broker_free(c->in);
	gradeq_broker_free(c->out);
	c->in = c->out = NULL;
}

/* Heartbeats. rabbitmq-c services them only inside its own calls, so the
 * daemon must enter one well within the negotiated interval (heartbeat in
 * the configuration, 60 s by default; the broker drops a connection that
 * stays silent for about that long). The consume loop waits for deliveries
 * with a 1 s timeout, every RPC has a 30 s timeout (broker.c), and while it
 * waits for the database with a job in hand, nap() sends heartbeats itself.
 * What remains is the batch: its statements run for seconds (about 2 s for
 * 1000 learners of a large course) and are bounded by statement_timeout_ms.
 * 60 s leaves a wide margin over the longest batch measured while still
 * noticing a dead peer within a minute. A batch that outlives the interval
 * costs no correctness: its grades are committed, its ack fails with the
 * lost connection, and the redelivered job is acked without work. */
static void keepalive(struct consumer *c)
{
	gradeq_broker_heartbeat(c->in);
	gradeq_broker_heartbeat(c->out);
}

/* Sleeps ms in small steps so a stop request is seen, keeping the broker
 * connections alive meanwhile. */
static void nap(struct consumer *c, int ms)
{
	for (int slept = 0; ms > 0 && !stop_requested; slept += 100) {
		struct timespec ts = {0, 100 * 1000000L};

		if (slept % 1000 == 0)
			keepalive(c);
		nanosleep(&ts, NULL);
		ms -= 100;
	}
}

/* Capped, jittered exponential backoff: 0.5 s doubling up to 30 s. */
static int backoff_ms(int attempt)
{
	int base = GRADEQ_BACKOFF_FIRST_MS;

	for (int i = 0; i < attempt && base < GRADEQ_BACKOFF_MAX_MS; i++)
		base *= 2;
	if (base > GRADEQ_BACKOFF_MAX_MS)
		base = GRADEQ_BACKOFF_MAX_MS;
	return base / 2 + (int)((unsigned)rand() % (unsigned)(base / 2 + 1));
}

/* (Re)connects to the database with capped, jittered backoff. One line when
 * an outage begins (event=database_lost, logged by the caller that saw the
 * connection go, or event=database_unavailable here) and one when it ends. */
static int connect_db(struct consumer *c)
{
	for (int attempt = 0; !stop_requested; attempt++) {
		int rc;

		gradeq_store_free(c->st);
		c->st = NULL;
		rc = gradeq_cli_store(&c->cli, &c->st);
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
		nap(c, backoff_ms(attempt));
	}
	return GRADEQ_ERR_INTERRUPTED;
}

static int connect_broker(struct consumer *c)
{
	struct gradeq_topology topo = gradeq_cli_topology(&c->cli);
	char queue[GRADEQ_NAME_MAX], tag[200];

	for (int attempt = 0; !stop_requested; attempt++) {
		int rc;

		disconnect(c);
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
			log_info("event=consuming queue=%s prefetch=%d", queue, c->prefetch);
			gradeq_notify("READY=1");
			return 0;
		}
		if (!gradeq_err_is_transient(rc) && rc != GRADEQ_ERR_BROKER)
			return rc;
		if (attempt == 0 && !c->broker_lost.tv_sec) {
			mark_lost(&c->broker_lost);
			log_warn("event=broker_unavailable error=\"%s\"", gradeq_errmsg(rc));
		}
		nap(c, backoff_ms(attempt));
	}
	return GRADEQ_ERR_INTERRUPTED;
}

static void rfc3339_now(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Republishes a delivery to the dead queue or a retry tier with headers
 * that say why, when, where and how often; confirmed before the caller
 * acks the original. */
static int republish(struct consumer *c, const amqp_envelope_t *env, const char *exchange,
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

	rfc3339_now(at, sizeof(at));
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

/* Pushes job.<state> (when job_events is on) and, when the job settled its
 * run, run.<id>.<state>. Best effort: an event lost is logged, not retried. */
static void announce(struct consumer *c, const char *job_id, const char *run, const char *course,
		     const char *state, const char *detail, const char *settled)
{
	int rc = 0;

	if (!c->out || gradeq_broker_broken(c->out) || !run[0])
		return;
	if (c->cli.cfg->job_events)
		rc = gradeq_event_job(c->out, job_id, run, course, state, detail);
	if (!rc && settled && settled[0])
		rc = gradeq_event_run(c->out, run, c->release, settled);
	if (rc)
		log_warn("event=event_publish_failed job=%s error=\"%s\"", job_id,
			 gradeq_errmsg(rc));
}

/* Parks or retries a failed delivery, records it, then acks the original.
 * Returns non-zero when the broker failed (the delivery stays unacked and
 * comes back). */
static int handle_failure(struct consumer *c, const amqp_envelope_t *env, const char *job_id,
			  int err, const char *msg)
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

		rc = republish(c, env, GRADEQ_EXCHANGE, gradeq_retry_key(key, c->release, tier),
			       gradeq_err_class_name(cls), msg, attempt + 1);
		log_warn("event=job_retry job=%s tag=%llu attempt=%lld tier=%ds error=\"%s\"",
			 job_id, (unsigned long long)env->delivery_tag, (long long)attempt, tier,
			 msg);
	} else {
		rc = republish(c, env, GRADEQ_DEAD_EXCHANGE, gradeq_work_key(key, c->release),
			       gradeq_err_class_name(cls), msg, attempt);
		log_error("event=job_dead job=%s tag=%llu attempt=%lld class=%s error=\"%s\"",
			  job_id, (unsigned long long)env->delivery_tag, (long long)attempt,
			  gradeq_err_class_name(cls), msg);
	}
	if (rc) {
		log_error("event=republish_failed job=%s error=\"%s\"", job_id, gradeq_errmsg(rc));
		return rc;
	}
	if (job_id[0] && c->st && !gradeq_store_broken(c->st)) {
		char settled[16] = "", run[64] = "", course[512] = "";
		int r2 = gradeq_worker_record_failure(c->st, job_id, state, msg, settled);

		if (r2)
			log_warn("event=record_failed job=%s error=\"%s\"", job_id,
				 gradeq_errmsg(r2));
		gradeq_header_str(hdr, "gradeq-run", run, sizeof(run));
		gradeq_header_str(hdr, "gradeq-course", course, sizeof(course));
		announce(c, job_id, run, course, gradeq_job_state_name(state), msg, settled);
	}
	c->failed++;
	return gradeq_broker_ack(c->in, env->delivery_tag);
}

/* Handles one delivery. Returns non-zero only when the broker connection
 * must be rebuilt. */
static int handle(struct consumer *c, const amqp_envelope_t *env)
{
	struct gradeq_job *job = NULL;
	struct gradeq_job_stats stats;
	char err[400] = "", job_id[40] = "";
	int rc;

	if (env->message.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG)
		snprintf(job_id, sizeof(job_id), "%.*s",
			 (int)env->message.properties.message_id.len,
			 (char *)env->message.properties.message_id.bytes);
	rc = gradeq_job_decode(env->message.body.bytes, env->message.body.len, &job, err,
			       sizeof(err));
	if (rc) {
		char msg[500];

		snprintf(msg, sizeof(msg), "%s: %s", gradeq_strerror(rc), err);
		/* an undecodable body has no trustworthy job id: do not record */
		return handle_failure(c, env, "", rc, msg);
	}
	snprintf(job_id, sizeof(job_id), "%s", job->job_id);
	if (c->abort_course && strcmp(c->abort_course, job->course_id) == 0) {
		log_error("event=test_abort job=%s course=%s (GRADEQ_TEST_ABORT_COURSE)", job_id,
			  job->course_id);
		abort();
	}
	for (int tries = 0;; tries++) {
		if (!c->st || gradeq_store_broken(c->st)) {
			rc = connect_db(c);
			if (rc)
				break;
		}
		rc = gradeq_worker_process(c->w, c->st, job, &stats);
		/* a lost database connection: hold the job, reconnect, try again
		 * for a while before it goes to a retry tier */
		if (rc == GRADEQ_ERR_DB_TRANSIENT && gradeq_store_broken(c->st) && tries < 3 &&
		    !stop_requested) {
			if (!c->db_lost.tv_sec) {
				mark_lost(&c->db_lost);
				log_warn("event=database_lost job=%s error=\"%s\"", job_id,
					 gradeq_errmsg(rc));
			}
			continue;
		}
		break;
	}
	if (stop_requested && (rc == GRADEQ_ERR_INTERRUPTED ||
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
		char msg[700];

		snprintf(msg, sizeof(msg), "%s", gradeq_errmsg(rc));
		rc = handle_failure(c, env, job_id, rc, msg);
		gradeq_job_free(job);
		return rc;
	}
	rc = gradeq_broker_ack(c->in, env->delivery_tag);
	if (!rc)
		c->done++;
	if (stats.outcome != GRADEQ_ALREADY_DONE)
		announce(c, job_id, job->run_id, job->course_id,
			 stats.outcome == GRADEQ_DONE ? "complete" : "canceled", NULL,
			 stats.run_settled);
	log_info("event=job job=%s tag=%llu course=%s run=%s users=%zu graded=%d skipped=%d "
		 "outcome=%s ms=%.1f load_ms=%.1f fetch_ms=%.1f write_ms=%.1f",
		 job_id, (unsigned long long)env->delivery_tag, job->course_id, job->run_id,
		 job->nusers, stats.graded, stats.skipped,
		 stats.outcome == GRADEQ_DONE           ? "graded"
		 : stats.outcome == GRADEQ_ALREADY_DONE ? "already_complete"
							: "canceled",
		 stats.ms_total, stats.ms_load, stats.ms_fetch, stats.ms_write);
	gradeq_job_free(job);
	return rc;
}

/* Drained: the work queue and every retry tier have no ready message, and
 * no other consumer of the release holds a job in progress. */
static int drained(struct consumer *c, bool *yes)
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
		const char *params[1] = {c->release};
		PGresult *res = PQexecParams(
			gradeq_store_conn(c->st),
			"SELECT count(*) FROM gradeq_jobs j JOIN gradeq_runs r USING (run_id)"
			" WHERE r.release = $1 AND j.state = 'in_progress'"
			" AND j.started_at > now() - make_interval(secs => " GRADEQ_STR(
				GRADEQ_IN_PROGRESS_STALE_S) ")",
			1, NULL, params, NULL, NULL, 0);

		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			rc = gradeq_store_result_error(c->st, res, "checking jobs in progress");
			PQclear(res);
			return rc;
		}
		r = (uint32_t)strtoul(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
		if (r)
			return 0;
	}
	*yes = true;
	return 0;
}

/* SIGHUP: reopens the log file and applies every setting a reload may
 * change; the others keep their value until a restart, and a file that
 * does not load keeps the whole old configuration. A new statement timeout
 * takes a new database session, which sets it when it connects. */
static void reload(struct consumer *c)
{
	struct gradeq_config *cfg = NULL;
	char err[600] = "", applied[400], restart[400];
	int level, timeout = c->cli.cfg->statement_timeout_ms;

	reload_requested = 0;
	gradeq_notify("RELOADING=1");
	if (gradeq_config_load(c->cli.conf_path, &cfg, err, sizeof(err))) {
		log_error("event=reload_failed error=\"%s\" keeping=old", err);
		gradeq_notify("READY=1");
		return;
	}
	gradeq_config_reload(c->cli.cfg, cfg, applied, sizeof(applied), restart, sizeof(restart));
	gradeq_config_free(cfg);
	level = gradeq_log_level_parse(c->cli.cfg->log_level);
	if (gradeq_log_init(c->cli.prog, level < 0 ? GRADEQ_LOG_INFO : level, c->cli.cfg->log_file))
		log_error("event=log_reopen_failed error=\"%s\"", gradeq_errmsg(GRADEQ_ERR_IO));
	if (restart[0])
		log_warn("event=reload_needs_restart settings=%s keeping=old", restart);
	log_info("event=reloaded changed=%s", applied[0] ? applied : "none");
	if (c->cli.cfg->statement_timeout_ms != timeout && c->st) {
		int rc;

		gradeq_store_free(c->st);
		c->st = NULL;
		rc = connect_db(c);
		if (rc)
			log_warn("event=reconnect_failed what=database error=\"%s\"",
				 gradeq_errmsg(rc));
	}
	gradeq_notify("READY=1");
}

/* The fallback for a missed event: the registry says whether the release
 * is being drained (or was retired under us). */
static void check_registry(struct consumer *c)
{
	char state[16];

	c->registry_checked = time(NULL);
	if (!c->st || gradeq_store_broken(c->st) || gradeq_release_state(c->st, c->release, state))
		return;
	if (strcmp(state, "draining") == 0 || strcmp(state, "retired") == 0) {
		c->draining = true;
		log_info("event=draining release=%s reason=registry_%s", c->release, state);
	}
}

static int consume(struct consumer *c)
{
	int idle = 0, rc;

	rc = connect_db(c);
	if (rc)
		return rc;
	rc = connect_broker(c);
	if (rc)
		return rc;
	while (!stop_requested) {
		amqp_envelope_t env;

		if (reload_requested)
			reload(c);
		if (!c->draining && time(NULL) - c->registry_checked >= GRADEQ_REGISTRY_CHECK_S)
			check_registry(c);
		rc = gradeq_broker_next(c->in, &env, 1000);
		if (rc == 0 && env.exchange.len == strlen(GRADEQ_EVENTS_EXCHANGE) &&
		    memcmp(env.exchange.bytes, GRADEQ_EVENTS_EXCHANGE, env.exchange.len) == 0) {
			/* release.<R>.<state>: a control message, not a job */
			const char *k = env.routing_key.bytes;
			size_t n = env.routing_key.len;

			if (n > 9 && memcmp(k + n - 9, ".draining", 9) == 0 && !c->draining) {
				c->draining = true;
				log_info("event=draining release=%s reason=promoted_elsewhere",
					 c->release);
			}
			amqp_destroy_envelope(&env);
		} else if (rc == 0) {
			idle = 0;
			rc = handle(c, &env);
			amqp_destroy_envelope(&env);
		} else if (rc == GRADEQ_ERR_TIMEOUT) {
			rc = 0;
			if ((c->drain || c->draining) && ++idle >= 2) {
				bool yes = false;

				if (!c->st || gradeq_store_broken(c->st))
					rc = connect_db(c);
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
		if (rc && (gradeq_broker_broken(c->in) || gradeq_broker_broken(c->out) ||
			   rc == GRADEQ_ERR_NOT_FOUND)) {
			mark_lost(&c->broker_lost);
			log_warn("event=broker_lost error=\"%s\"", gradeq_errmsg(rc));
			rc = connect_broker(c);
			if (rc)
				return rc;
		} else if (rc) {
			log_warn("event=loop_error error=\"%s\"", gradeq_errmsg(rc));
		}
	}
	/* stop: take no more deliveries; the one in hand was finished above */
	gradeq_notify("STOPPING=1");
	if (c->in && !gradeq_broker_broken(c->in) && gradeq_broker_cancel(c->in))
		log_warn("event=cancel_failed error=\"%s\"", gradeq_errmsg(GRADEQ_ERR_BROKER));
	log_info("event=stopped release=%s jobs=%ld failed=%ld", c->release, c->done, c->failed);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"release", required_argument, NULL, 'r'},
		{"prefetch", required_argument, NULL, 'p'},
		{"drain", no_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct consumer c;
	const char *release = NULL, *prefetch = NULL;
	struct sigaction sa;
	int opt, rc, status = 1;

	memset(&c, 0, sizeof(c));
	c.cli.prog = "gradeq-consumer";
	while ((opt = getopt_long(argc, argv, "c:r:p:dhV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': c.cli.conf_path = optarg; break;
		case 'r': release = optarg; break;
		case 'p': prefetch = optarg; break;
		case 'd': c.drain = true; break;
		case 'h': fputs(usage, stdout); return 0;
		case 'V': puts("gradeq-consumer " GRADEQ_VERSION); return 0;
		default: fputs("Try 'gradeq-consumer --help'.\n", stderr); return 2;
		}
	}
	if (optind < argc) {
		gradeq_cli_error(&c.cli, "unexpected argument '%s'", argv[optind]);
		return 2;
	}
	if (gradeq_cli_init(&c.cli))
		return 1;
	c.prefetch = c.cli.cfg->prefetch;
	if (prefetch) {
		char *end = NULL;
		long v = strtol(prefetch, &end, 10);

		if (!*prefetch || *end || v < 1 || v > 65535) {
			gradeq_cli_error(&c.cli,
					 "--prefetch must be an integer from 1 to 65535, not '%s'",
					 prefetch);
			status = 2;
			goto out;
		}
		c.prefetch = (int)v;
	}
	if (!release)
		release = c.cli.cfg->release;
	gethostname(c.host, sizeof(c.host) - 1);
	snprintf(c.consumer_id, sizeof(c.consumer_id), "%s:%ld", c.host, (long)getpid());
	srand((unsigned)(time(NULL) ^ getpid()));
	memset(&sa, 0, sizeof(sa));
	sa.sa_flags = SA_RESTART;
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	c.abort_course = getenv("GRADEQ_TEST_ABORT_COURSE");
	if (c.abort_course && !*c.abort_course)
		c.abort_course = NULL;
	c.w = gradeq_worker_new(c.cli.cfg->course_cache, c.consumer_id);
	if (!c.w)
		goto out;
	if (release) {
		if (!gradeq_release_name_ok(release)) {
			gradeq_cli_error(&c.cli, "bad release name '%s'", release);
			status = 2;
			goto out;
		}
		snprintf(c.release, sizeof(c.release), "%s", release);
	} else {
		rc = connect_db(&c);
		if (!rc)
			rc = gradeq_release_resolve(c.st, NULL, c.release, sizeof(c.release));
		if (rc) {
			gradeq_cli_error(&c.cli, "%s", gradeq_errmsg(rc));
			goto out;
		}
	}
	rc = consume(&c);
	if (rc && !(rc == GRADEQ_ERR_INTERRUPTED && stop_requested)) {
		gradeq_cli_error(&c.cli, "%s", gradeq_errmsg(rc));
		goto out;
	}
	status = 0;
out:
	disconnect(&c);
	gradeq_store_free(c.st);
	gradeq_worker_free(c.w);
	gradeq_cli_release(&c.cli);
	return status;
}
