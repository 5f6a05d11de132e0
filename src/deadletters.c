/* The dead letters of a release (see deadletters.h): the scan of a dead
 * queue, the filters, and the commands of gradeq-replay. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "gradeq/limits.h"
#include "gradeq/deadletters.h"
#include "gradeq/job.h"
#include "gradeq/jobs.h"
#include "gradeq/log.h"
#include "gradeq/msgfile.h"
#include "gradeq/parse.h"
#include "gradeq/ratelimit.h"
#include "gradeq/release.h"

#define PROG "gradeq-replay"
#define MAX_GROUPS 256

struct group {
	char name[256];
	long n;
};

/* A command in hand: its options, connections and counts. */
struct dl {
	struct gradeq_cli *cli;
	enum gradeq_dl_cmd cmd;
	const char *release, *to_release, *to_dead, *file;
	struct gradeq_dl_filters f;
	long limit; /* -1: none */
	bool dry_run, yes, force, remove, json, quiet, tty, silent;
	const char *by; /* NULL: PROG host=H pid=P */
	struct gradeq_store *st;
	struct gradeq_broker *in;  /* basic.get and acks */
	struct gradeq_broker *out; /* confirmed publishing */
	char queue[GRADEQ_NAME_MAX];
	char target[80]; /* release jobs go to */
	char exchange[GRADEQ_NAME_MAX], key[GRADEQ_NAME_MAX], dest_queue[GRADEQ_NAME_MAX];
	char dead_key[GRADEQ_NAME_MAX]; /* puts a message back at the tail */
	bool stop_acting;
	uint32_t total;
	long scanned, matched, acted, skipped, rotated;
	struct group by_class[MAX_GROUPS], by_course[MAX_GROUPS];
	int nclass, ncourse;
	json_t *jmsgs;
	struct gradeq_msgfile_writer w; /* export */
	struct gradeq_ratelimit rl;
	time_t token_at; /* wall clock when the last token was taken */
	struct timespec t0;
	double last_progress;
	char host[128];
};

static volatile sig_atomic_t interrupted;

void gradeq_dl_interrupt(void)
{
	if (interrupted < 2)
		interrupted++;
}

bool gradeq_dl_interrupted(void)
{
	return interrupted != 0;
}

static const char *const cmd_names[GRADEQ_DL_NCMDS] = {"list", "replay", "export", "import",
						       "purge"};

const char *gradeq_dl_cmd_name(enum gradeq_dl_cmd cmd)
{
	return cmd < GRADEQ_DL_NCMDS ? cmd_names[cmd] : "?";
}

bool gradeq_dl_cmd_parse(const char *name, enum gradeq_dl_cmd *out)
{
	for (int i = 0; i < GRADEQ_DL_NCMDS; i++)
		if (strcmp(name, cmd_names[i]) == 0) {
			*out = (enum gradeq_dl_cmd)i;
			return true;
		}
	return false;
}

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double elapsed(const struct dl *r)
{
	return now_s() - ((double)r->t0.tv_sec + (double)r->t0.tv_nsec / 1e9);
}

static void count_group(struct group *g, int *n, const char *name)
{
	for (int i = 0; i < *n; i++)
		if (strcmp(g[i].name, name) == 0) {
			g[i].n++;
			return;
		}
	if (*n == MAX_GROUPS) {
		g[MAX_GROUPS - 1].n++; /* the last slot becomes "(other)" */
		snprintf(g[MAX_GROUPS - 1].name, sizeof(g[0].name), "(other)");
		return;
	}
	snprintf(g[*n].name, sizeof(g[0].name), "%s", name);
	g[(*n)++].n = 1;
}

/* --- progress and pacing -------------------------------------------------- */

static void progress(struct dl *r, bool final)
{
	double s = elapsed(r), t = now_s(), rate;
	long left;

	if (!r->tty || r->quiet || r->json)
		return;
	if (!final && t - r->last_progress < 0.2)
		return;
	r->last_progress = t;
	rate = s > 0 ? (double)r->scanned / s : 0;
	left = (long)r->total - r->scanned;
	if (left < 0)
		left = 0;
	fprintf(stderr, "\r%s: %ld/%u scanned, %ld matched, %ld done, %.1f/s, ETA %.0fs   %s", PROG,
		r->scanned, r->total, r->matched, r->acted, rate,
		rate > 0 ? (double)left / rate : 0.0, final ? "\n" : "");
}

/* Sleeps until the rate limiter lets the next message go; false when
 * interrupted meanwhile. */
static bool take_token(struct dl *r)
{
	double d;

	if (r->rl.rate <= 0)
		return !interrupted;
	while (!interrupted && (d = gradeq_ratelimit_wait(&r->rl, now_s())) > 0) {
		struct timespec ts;

		if (d > 0.1)
			d = 0.1;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)(d * 1e9);
		nanosleep(&ts, NULL);
	}
	if (interrupted)
		return false;
	gradeq_ratelimit_take(&r->rl, now_s());
	/* the message's gradeq-replayed-at: the moment its token was taken,
	 * so that no second of those stamps holds more than the rate */
	r->token_at = time(NULL);
	return true;
}

/* --- the scan ------------------------------------------------------------- */

/* Called for each message with whether it matches the filters. Sets *taken
 * once the message has been acked (moved or removed); otherwise the scan
 * puts it back at the tail. *stop: take no more (the cycle is completed). */
typedef int (*visit_fn)(struct dl *r, const amqp_envelope_t *env, const struct gradeq_dl_view *v,
			bool match, bool *taken, bool *stop);

/* Puts a message back at the tail of its dead queue, unchanged: confirmed,
 * then the original acked. */
static int rotate(struct dl *r, const amqp_envelope_t *env)
{
	int rc = gradeq_broker_publish(r->out, GRADEQ_DEAD_EXCHANGE, r->dead_key,
				       &env->message.properties, env->message.body.bytes,
				       env->message.body.len);

	if (!rc)
		rc = gradeq_broker_wait_confirms(r->out, GRADEQ_CONFIRM_WAIT_MS);
	if (!rc)
		rc = gradeq_broker_ack(r->in, env->delivery_tag);
	if (!rc)
		r->rotated++;
	return rc;
}

/* Moves a job row from one of the states in from to to, as this process,
 * through the store's one door (row, event with the true previous state,
 * run counters); a job in another state, or unknown here, is left alone. */
static int job_move(struct dl *r, const char *job_id, gradeq_job_states_t from,
		    enum gradeq_job_state to, const char *detail)
{
	struct gradeq_job_change c = {.job_id = job_id, .from = from, .to = to, .detail = detail};
	char by[300];

	snprintf(by, sizeof(by), PROG " host=%s pid=%ld", r->host, (long)getpid());
	c.by = r->by ? r->by : by;
	return gradeq_job_transition(r->st, &c, NULL);
}

/* A job the broker parked on the work queue's delivery limit never reached
 * a consumer again, so its row still says pending or in_progress: record
 * it dead now, with the broker's reason, so that its run can settle. */
static void reconcile(struct dl *r, const struct gradeq_dl_view *v)
{
	if (!v->decoded || !r->st || strcmp(v->cls, "delivery_limit") != 0)
		return;
	char msg[512];

	if (!job_move(r, v->job_id,
		      GRADEQ_JOB_SET(GRADEQ_JOB_PENDING) | GRADEQ_JOB_SET(GRADEQ_JOB_IN_PROGRESS) |
			      GRADEQ_JOB_SET(GRADEQ_JOB_RETRYING),
		      GRADEQ_JOB_DEAD, v->error))
		return;
	snprintf(msg, sizeof(msg), "job %s: %s", v->job_id, gradeq_errmsg(GRADEQ_ERR_DB));
	gradeq_cli_print_line(stderr, PROG, "warning", msg);
}

static int scan(struct dl *r, visit_fn visit)
{
	int rc;

	rc = gradeq_broker_queue_info(r->in, r->queue, &r->total, NULL);
	if (rc == GRADEQ_ERR_NOT_FOUND)
		return gradeq_error(rc, "release '%s' has no dead queue '%s'", r->release,
				    r->queue);
	if (rc)
		return rc;
	gradeq_work_key(r->dead_key, r->release);
	for (uint32_t i = 0; i < r->total && interrupted < 2; i++) {
		amqp_envelope_t env;
		struct gradeq_dl_view v;
		bool match, taken = false, stop = false;

		if (interrupted && !r->stop_acting) {
			r->stop_acting = true;
			if (r->tty && !r->quiet && r->rotated)
				fprintf(stderr,
					"\n" PROG ": interrupted: putting the other %u message(s)"
					" back in order (interrupt again to leave them)\n",
					r->total - i);
		}
		/* nothing was put back yet: what is not scanned is in order as it is */
		if (r->stop_acting && r->rotated == 0)
			break;
		rc = gradeq_broker_get(r->in, r->queue, &env);
		if (rc == GRADEQ_ERR_NOT_FOUND) {
			rc = 0;
			break;
		}
		if (rc)
			break;
		gradeq_dl_view_fill(&v, &env);
		reconcile(r, &v);
		match = gradeq_dl_matches(&r->f, &v, time(NULL));
		r->scanned++;
		if (!r->stop_acting) {
			if (match)
				r->matched++;
			rc = visit(r, &env, &v, match, &taken, &stop);
			if (stop) {
				r->stop_acting = true;
				if (match)
					r->matched--; /* counted for a pass that ended before it */
			}
		}
		if (!rc && !taken)
			rc = rotate(r, &env);
		amqp_destroy_envelope(&env);
		progress(r, false);
		if (rc)
			break; /* the message in hand, not acked, goes back to the head */
	}
	progress(r, true);
	return rc;
}

/* --- list ----------------------------------------------------------------- */

static int visit_list(struct dl *r, const amqp_envelope_t *env, const struct gradeq_dl_view *v,
		      bool match, bool *taken, bool *stop)
{
	(void)taken;
	(void)stop;
	if (!match)
		return 0;
	count_group(r->by_class, &r->nclass, v->cls);
	count_group(r->by_course, &r->ncourse, v->decoded ? v->course : "(undecodable)");
	if (r->json)
		json_array_append_new(r->jmsgs, gradeq_dl_view_json(v, env));
	else
		gradeq_dl_view_print(v, env, "");
	return 0;
}

static json_t *groups_json(const struct group *g, int n)
{
	json_t *o = json_object();

	for (int i = 0; i < n; i++)
		json_object_set_new(o, g[i].name, json_integer(g[i].n));
	return o;
}

static void groups_print(const char *what, const struct group *g, int n)
{
	printf("  by %s:", what);
	for (int i = 0; i < n; i++) {
		char q[1024]; /* a course id may hold anything: escaped, one line */

		printf(" %s=%ld", gradeq_log_quote(q, sizeof(q), g[i].name), g[i].n);
	}
	printf("%s\n", n ? "" : " -");
}

/* --- replay ---------------------------------------------------------------- */

/* Publishes a dead message to the target work queue as a fresh attempt. */
static int publish_replay(struct dl *r, const amqp_basic_properties_t *orig,
			  const amqp_bytes_t *body)
{
	static const char *const skip[] = {"gradeq-attempt", "gradeq-replayed-at",
					   "gradeq-replay-count", NULL};
	amqp_basic_properties_t props = *orig;
	const amqp_table_t *h = (orig->_flags & AMQP_BASIC_HEADERS_FLAG) ? &orig->headers : NULL;
	struct gradeq_headers nh;
	char at[40];
	int rc;

	gradeq_headers_init(&nh);
	gradeq_headers_copy(&nh, h, skip);
	gradeq_rfc3339(at, sizeof(at), r->rl.rate > 0 ? r->token_at : time(NULL));
	gradeq_headers_set_int(&nh, "gradeq-attempt", 1);
	gradeq_headers_set_str(&nh, "gradeq-replayed-at", at);
	gradeq_headers_set_int(&nh, "gradeq-replay-count",
			       gradeq_header_int(h, "gradeq-replay-count", 0) + 1);
	props._flags |= AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
	props.delivery_mode = 2;
	rc = gradeq_headers_finish(&nh, &props.headers);
	if (rc)
		return rc;
	rc = gradeq_broker_publish(r->out, r->exchange, r->key, &props, body->bytes, body->len);
	if (!rc)
		rc = gradeq_broker_wait_confirms(r->out, GRADEQ_CONFIRM_WAIT_MS);
	return rc;
}

/* What replay and purge do first: false when this message is not acted
 * on (past --limit, which stops the scan; a dry run, which only counts and
 * shows it; interrupted while waiting for the rate limiter). */
static bool act_on(struct dl *r, const amqp_envelope_t *env, const struct gradeq_dl_view *v,
		   const char *would, bool *stop)
{
	if (r->limit >= 0 && r->acted >= r->limit) {
		*stop = true; /* what is not scanned stays where it is, in order */
		return false;
	}
	if (r->dry_run) {
		r->acted++;
		if (!r->json)
			gradeq_dl_view_print(v, env, would);
		return false;
	}
	return take_token(r); /* interrupted while waiting: it stays parked */
}

/* What replay and purge do last, once the message is acked. */
static void acted_on(struct dl *r, const struct gradeq_dl_view *v, bool *taken)
{
	*taken = true;
	r->acted++;
	count_group(r->by_course, &r->ncourse, v->decoded ? v->course : "(undecodable)");
}

static int visit_replay(struct dl *r, const amqp_envelope_t *env, const struct gradeq_dl_view *v,
			bool match, bool *taken, bool *stop)
{
	int rc;

	if (!match)
		return 0;
	if (!v->decoded && !r->force) {
		r->skipped++;
		return 0;
	}
	if (!act_on(r, env, v, "would replay ", stop))
		return 0;
	if (v->decoded) {
		rc = job_move(r, v->job_id, GRADEQ_JOB_SET(GRADEQ_JOB_DEAD), GRADEQ_JOB_PENDING,
			      "replayed");
		if (rc)
			return rc;
	}
	rc = publish_replay(r, &env->message.properties, &env->message.body);
	if (rc) {
		if (v->decoded && job_move(r, v->job_id, GRADEQ_JOB_SET(GRADEQ_JOB_PENDING),
					   GRADEQ_JOB_DEAD, "replay failed"))
			log_warn("event=job_row_revert_failed job=%s", v->job_id);
		return rc;
	}
	rc = gradeq_broker_ack(r->in, env->delivery_tag);
	if (rc)
		return rc; /* a duplicate at worst: the consumer absorbs it */
	acted_on(r, v, taken);
	log_debug("event=replayed job=%s course=%s to=%s", v->job_id, v->course, r->dest_queue);
	return 0;
}

/* --- purge ----------------------------------------------------------------- */

static int visit_purge(struct dl *r, const amqp_envelope_t *env, const struct gradeq_dl_view *v,
		       bool match, bool *taken, bool *stop)
{
	int rc;

	if (!match || !act_on(r, env, v, "would purge ", stop))
		return 0;
	if (v->decoded) {
		rc = job_move(r, v->job_id, GRADEQ_JOB_SET(GRADEQ_JOB_DEAD), GRADEQ_JOB_DISCARDED,
			      "purged");
		if (rc)
			return rc;
	}
	rc = gradeq_broker_ack(r->in, env->delivery_tag);
	if (rc)
		return rc;
	acted_on(r, v, taken);
	log_debug("event=purged job=%s course=%s", v->job_id, v->course);
	return 0;
}

/* --- export ---------------------------------------------------------------- */

static int visit_export(struct dl *r, const amqp_envelope_t *env, const struct gradeq_dl_view *v,
			bool match, bool *taken, bool *stop)
{
	int rc;

	if (!match)
		return 0;
	if (r->limit >= 0 && r->acted >= r->limit) {
		*stop = true;
		return 0;
	}
	rc = gradeq_msgfile_write_record(&r->w, &env->routing_key, &env->message.properties,
					 env->message.body.bytes, env->message.body.len);
	if (rc)
		return rc;
	r->acted++;
	count_group(r->by_course, &r->ncourse, v->decoded ? v->course : "(undecodable)");
	if (!r->remove)
		return 0;
	/* removed only once its record is on disk */
	rc = gradeq_msgfile_sync(&r->w);
	if (!rc)
		rc = gradeq_broker_ack(r->in, env->delivery_tag);
	if (!rc)
		*taken = true;
	return rc;
}

/* --- targets ---------------------------------------------------------------- */

/* Makes sure the queue a release's messages go to exists: an unknown queue
 * of a release the registry knows is declared; else the release must have
 * the queue already. */
static int ensure_queue(struct dl *r, const char *release, const char *queue, bool known)
{
	struct gradeq_topology topo = gradeq_cli_topology(r->cli);
	int rc = gradeq_broker_queue_info(r->out, queue, NULL, NULL);

	if (rc != GRADEQ_ERR_NOT_FOUND)
		return rc;
	if (!known)
		return gradeq_error(
			GRADEQ_ERR_NOT_FOUND,
			"release '%s' does not exist: no registry entry and no queue '%s'", release,
			queue);
	return gradeq_broker_declare(r->out, release, &topo);
}

/* Resolves the release replayed jobs go to: want, or the promoted release
 * when want is retired or draining. Fills r->target, exchange, key. */
static int resolve_target(struct dl *r, const char *want)
{
	enum gradeq_release_state state = GRADEQ_RELEASE_ACTIVE;
	char q[GRADEQ_NAME_MAX];
	bool known = true;
	int rc;

	if (!gradeq_release_name_ok(want))
		return gradeq_error(GRADEQ_ERR_INVALID, "bad release name '%s'", want);
	rc = gradeq_release_get(r->st, want, &state);
	if (rc == GRADEQ_ERR_NOT_FOUND) {
		known = false;
		rc = 0;
	}
	if (rc)
		return rc;
	if (known && (state == GRADEQ_RELEASE_RETIRED || state == GRADEQ_RELEASE_DRAINING)) {
		char promoted[80];

		rc = gradeq_release_resolve(r->st, NULL, promoted, sizeof(promoted));
		if (rc)
			return gradeq_error(rc, "release '%s' is %s and no release is promoted",
					    want, gradeq_release_state_name(state));
		if (!r->quiet)
			fprintf(stderr,
				PROG ": release '%s' is %s: its jobs go to the promoted "
				     "release '%s'\n",
				want, gradeq_release_state_name(state), promoted);
		snprintf(r->target, sizeof(r->target), "%s", promoted);
	} else {
		snprintf(r->target, sizeof(r->target), "%s", want);
	}
	rc = ensure_queue(r, r->target, gradeq_work_queue(q, r->target),
			  known || strcmp(r->target, want));
	if (rc)
		return rc;
	snprintf(r->exchange, sizeof(r->exchange), "%s", GRADEQ_EXCHANGE);
	gradeq_work_key(r->key, r->target);
	snprintf(r->dest_queue, sizeof(r->dest_queue), "%s", q);
	return 0;
}

static int resolve_dead_target(struct dl *r, const char *release)
{
	enum gradeq_release_state state = GRADEQ_RELEASE_ACTIVE;
	bool known;
	int rc;

	if (!gradeq_release_name_ok(release))
		return gradeq_error(GRADEQ_ERR_INVALID, "bad release name '%s'", release);
	rc = gradeq_release_get(r->st, release, &state);
	if (rc && rc != GRADEQ_ERR_NOT_FOUND)
		return rc;
	known = rc == 0 && state != GRADEQ_RELEASE_RETIRED;
	snprintf(r->target, sizeof(r->target), "%s", release);
	gradeq_dead_queue(r->dest_queue, release);
	rc = ensure_queue(r, release, r->dest_queue, known);
	if (rc)
		return rc;
	snprintf(r->exchange, sizeof(r->exchange), "%s", GRADEQ_DEAD_EXCHANGE);
	gradeq_work_key(r->key, release);
	return 0;
}

/* --- commands --------------------------------------------------------------- */

/* The database (when db), the broker connection that reads the dead queue
 * and the one that publishes, in confirm mode. */
static int connect_all(struct dl *r, bool db)
{
	int rc;

	if (db) {
		rc = gradeq_cli_store(r->cli, &r->st);
		if (rc)
			return rc;
	}
	rc = gradeq_broker_open(r->cli->cfg, r->cli->prog, r->release, GRADEQ_BROKER_CONSUME,
				&r->in);
	if (!rc)
		rc = gradeq_cli_broker(r->cli, r->release, &r->out);
	if (!rc)
		rc = gradeq_broker_confirm_mode(r->out, GRADEQ_REPUBLISH_CONFIRM_WINDOW);
	return rc;
}

static void print_summary(struct dl *r, const char *verb, const char *dest)
{
	json_t *o;

	if (r->silent)
		return;
	if (!r->json) {
		printf("%s %ld of %ld matching message(s) (%ld scanned in %s%s%s)", verb, r->acted,
		       r->matched, r->scanned, r->queue, dest ? ", to " : "", dest ? dest : "");
		if (r->skipped)
			printf("; %ld undecodable left parked (--force replays them)", r->skipped);
		if (interrupted)
			printf("; interrupted");
		printf("\n");
		return;
	}
	o = json_object();
	json_object_set_new(o, "release", json_string(r->release));
	json_object_set_new(o, "queue", json_string(r->queue));
	if (dest)
		json_object_set_new(o, "to", json_string(dest));
	json_object_set_new(o, "scanned", json_integer(r->scanned));
	json_object_set_new(o, "matched", json_integer(r->matched));
	json_object_set_new(o, verb, json_integer(r->acted));
	json_object_set_new(o, "skipped_undecodable", json_integer(r->skipped));
	json_object_set_new(o, "dry_run", json_boolean(r->dry_run));
	json_object_set_new(o, "interrupted", json_boolean(interrupted));
	json_object_set_new(o, "by_course", groups_json(r->by_course, r->ncourse));
	json_object_set_new(o, "seconds", json_real(round(elapsed(r) * 1000) / 1000));
	json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
	putchar('\n');
	json_decref(o);
}

/* list and export work without the database; with it they also record
 * jobs the broker parked (reconcile). */
static void connect_db_quietly(struct dl *r)
{
	if (gradeq_cli_store(r->cli, &r->st)) {
		gradeq_store_free(r->st);
		r->st = NULL;
	}
}

static int cmd_list(struct dl *r)
{
	int rc = connect_all(r, false);

	if (rc)
		return rc;
	connect_db_quietly(r);
	if (r->json)
		r->jmsgs = json_array();
	rc = scan(r, visit_list);
	if (rc)
		return rc;
	if (r->json) {
		json_t *o = json_object();

		json_object_set_new(o, "release", json_string(r->release));
		json_object_set_new(o, "queue", json_string(r->queue));
		json_object_set_new(o, "count", json_integer(r->matched));
		json_object_set_new(o, "scanned", json_integer(r->scanned));
		json_object_set_new(o, "messages", r->jmsgs);
		r->jmsgs = NULL;
		json_object_set_new(o, "by_class", groups_json(r->by_class, r->nclass));
		json_object_set_new(o, "by_course", groups_json(r->by_course, r->ncourse));
		json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
		putchar('\n');
		json_decref(o);
	} else {
		printf("%ld parked message(s) matching in %s (%ld scanned)\n", r->matched, r->queue,
		       r->scanned);
		groups_print("class", r->by_class, r->nclass);
		groups_print("course", r->by_course, r->ncourse);
	}
	return 0;
}

static int cmd_replay(struct dl *r)
{
	int rc = connect_all(r, true);

	if (rc)
		return rc;
	rc = resolve_target(r, r->to_release ? r->to_release : r->release);
	if (rc)
		return rc;
	rc = gradeq_broker_queue_info(r->in, r->queue, NULL, NULL);
	if (rc == GRADEQ_ERR_NOT_FOUND)
		return gradeq_error(rc, "release '%s' has no dead queue '%s'", r->release,
				    r->queue);
	if (rc)
		return rc;
	if (!r->dry_run && !r->yes && isatty(STDIN_FILENO)) {
		struct dl probe = *r;
		char q[600];
		bool go;

		/* count first (changes nothing), then ask */
		probe.dry_run = true;
		probe.json = true;
		probe.tty = false;
		rc = scan(&probe, visit_replay);
		if (rc)
			return rc;
		if (probe.acted == 0) {
			print_summary(&probe, "replayed", r->dest_queue);
			return 0;
		}
		snprintf(q, sizeof(q), "replay %ld message(s) from %s to %s?", probe.acted,
			 r->queue, r->dest_queue);
		go = gradeq_cli_confirm(r->cli, q, false);
		if (!go)
			return gradeq_error(GRADEQ_ERR_STATE, "not confirmed: nothing replayed");
		clock_gettime(CLOCK_MONOTONIC, &r->t0);
	}
	rc = scan(r, visit_replay);
	print_summary(r, r->dry_run ? "would replay" : "replayed", r->dest_queue);
	if (!rc && !r->dry_run)
		log_info("event=replay release=%s to=%s replayed=%ld matched=%ld scanned=%ld%s",
			 r->release, r->target, r->acted, r->matched, r->scanned,
			 interrupted ? " interrupted=true" : "");
	return rc;
}

static int cmd_purge(struct dl *r)
{
	int rc = connect_all(r, true);

	if (rc)
		return rc;
	if (!r->yes)
		r->dry_run = true;
	rc = scan(r, visit_purge);
	print_summary(r, r->dry_run ? "would purge" : "purged", NULL);
	if (!rc && r->dry_run && !r->json && r->acted)
		printf("nothing was purged: give --yes to purge them\n");
	if (!rc && !r->dry_run)
		log_info("event=purge release=%s purged=%ld matched=%ld", r->release, r->acted,
			 r->matched);
	return rc;
}

/* A new file only its owner can read (dead letters hold learners' ids),
 * whatever the umask; an existing one is never overwritten. */
static FILE *create_private(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	FILE *fp;

	if (fd < 0)
		return NULL;
	fp = fdopen(fd, "w");
	if (!fp) {
		int e = errno;

		close(fd);
		unlink(path);
		errno = e;
	}
	return fp;
}

static int cmd_export(struct dl *r)
{
	char at[40];
	int rc = connect_all(r, false);
	bool to_stdout = strcmp(r->file, "-") == 0;

	if (rc)
		return rc;
	connect_db_quietly(r);
	rc = gradeq_broker_queue_info(r->in, r->queue, NULL, NULL);
	if (rc == GRADEQ_ERR_NOT_FOUND)
		return gradeq_error(rc, "release '%s' has no dead queue '%s'", r->release,
				    r->queue);
	if (rc)
		return rc;
	r->w.name = r->file;
	r->w.fp = to_stdout ? stdout : create_private(r->file);
	if (!r->w.fp)
		return gradeq_error(GRADEQ_ERR_IO, "cannot create '%s': %s", r->file,
				    strerror(errno));
	gradeq_rfc3339(at, sizeof(at), time(NULL));
	rc = gradeq_msgfile_write_header(&r->w, r->release, r->queue, at, r->host);
	if (!rc)
		rc = scan(r, visit_export);
	if (!rc)
		rc = gradeq_msgfile_write_trailer(&r->w, r->acted);
	if (!rc)
		rc = gradeq_msgfile_sync(&r->w);
	if (!to_stdout && fclose(r->w.fp) && !rc)
		rc = gradeq_error(GRADEQ_ERR_IO, "writing '%s': %s", r->file, strerror(errno));
	r->w.fp = NULL;
	if (!rc) {
		if (to_stdout)
			fprintf(stderr, PROG ": exported %ld message(s)%s\n", r->acted,
				r->remove ? " and removed them" : "");
		else
			print_summary(r, r->remove ? "exported and removed" : "exported", r->file);
	}
	return rc;
}

/* Publishes one record of an import file where the command sends it. */
static int import_one(struct dl *r, const struct gradeq_msgfile_record *rec, bool to_work)
{
	struct gradeq_job *j = NULL;
	char job[64] = "";
	int rc = 0;

	if (gradeq_job_decode(rec->body.bytes, rec->body.len, &j, NULL, 0) == 0) {
		snprintf(job, sizeof(job), "%s", j->job_id);
		gradeq_job_free(j);
	}
	if (to_work) {
		/* a purged job stays discarded (a final state) */
		if (job[0])
			rc = job_move(r, job, GRADEQ_JOB_SET(GRADEQ_JOB_DEAD), GRADEQ_JOB_PENDING,
				      "imported");
		return rc ? rc : publish_replay(r, &rec->props, &rec->body);
	}
	rc = gradeq_broker_publish(r->out, r->exchange, r->key, &rec->props, rec->body.bytes,
				   rec->body.len);
	return rc ? rc : gradeq_broker_wait_confirms(r->out, GRADEQ_CONFIRM_WAIT_MS);
}

/* The second pass over a checked file: every record, at the rate asked. */
static int import_records(struct dl *r, struct gradeq_msgfile_reader *rd, long records,
			  bool to_work, long *done)
{
	struct gradeq_msgfile_record rec;
	char release[80];
	bool eof = false;
	int rc;

	memset(&rec, 0, sizeof(rec));
	rewind(rd->fp);
	rd->lineno = 0;
	if (gradeq_msgfile_read_header(rd, release, sizeof(release)))
		return gradeq_error(GRADEQ_ERR_IO, "reading '%s' again", r->file);
	while (!interrupted) {
		rc = gradeq_msgfile_read(rd, &rec, &eof);
		if (rc) {
			rc = gradeq_error(GRADEQ_ERR_INVALID, "'%s' changed while importing",
					  r->file);
			break;
		}
		if (eof || rec.end)
			break;
		if (take_token(r)) {
			rc = import_one(r, &rec, to_work);
			if (rc)
				break;
			(*done)++;
			r->acted = r->scanned = *done;
			r->total = (uint32_t)records;
			progress(r, false);
		}
	}
	gradeq_msgfile_record_release(&rec);
	progress(r, true);
	return rc;
}

static int cmd_import(struct dl *r)
{
	struct gradeq_msgfile_reader rd = {.name = r->file};
	char release[80];
	long records = 0, done = 0;
	bool to_work = r->to_release != NULL;
	int rc;

	rd.fp = strcmp(r->file, "-") == 0 ? NULL : fopen(r->file, "r");
	if (!rd.fp)
		return gradeq_error(GRADEQ_ERR_IO, "cannot read '%s': %s", r->file,
				    strcmp(r->file, "-") == 0 ? "import needs a file, not '-'"
							      : strerror(errno));
	rc = gradeq_msgfile_read_header(&rd, release, sizeof(release));
	if (!rc)
		rc = gradeq_msgfile_check(&rd, r->force, &records);
	if (rc)
		goto out;
	if (!r->release)
		r->release = release[0] ? release : "-";
	rc = connect_all(r, true);
	if (!rc)
		rc = to_work ? resolve_target(r, r->to_release)
			     : resolve_dead_target(r, r->to_dead ? r->to_dead : release);
	if (rc)
		goto out;
	rc = import_records(r, &rd, records, to_work, &done);
	if (r->json) {
		json_t *o = json_object();

		json_object_set_new(o, "file", json_string(r->file));
		json_object_set_new(o, "records", json_integer(records));
		json_object_set_new(o, "imported", json_integer(done));
		json_object_set_new(o, "to", json_string(r->dest_queue));
		json_object_set_new(o, "interrupted", json_boolean(interrupted));
		json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
		putchar('\n');
		json_decref(o);
	} else {
		printf("imported %ld of %ld record(s) from %s to %s%s\n", done, records, r->file,
		       r->dest_queue, interrupted ? "; interrupted" : "");
	}
	if (!rc && done != records && !interrupted)
		rc = gradeq_error(GRADEQ_ERR_STATE, "imported %ld of %ld record(s)", done, records);
out:
	gradeq_msgfile_reader_release(&rd);
	if (rd.fp)
		fclose(rd.fp);
	return rc;
}

static int run_cmd(struct dl *r)
{
	switch (r->cmd) {
	case GRADEQ_DL_LIST: return cmd_list(r);
	case GRADEQ_DL_REPLAY: return cmd_replay(r);
	case GRADEQ_DL_EXPORT: return cmd_export(r);
	case GRADEQ_DL_IMPORT: return cmd_import(r);
	case GRADEQ_DL_PURGE: return cmd_purge(r);
	default: return gradeq_error(GRADEQ_ERR_INVALID, "unknown command");
	}
}

int gradeq_dl_run(struct gradeq_cli *cli, const struct gradeq_dl_options *o)
{
	struct dl *r = calloc(1, sizeof(*r));
	int rc;

	if (!r)
		return gradeq_error(GRADEQ_ERR_NOMEM, "out of memory");
	r->cli = cli;
	r->cmd = o->cmd;
	r->release = o->release;
	r->to_release = o->to_release;
	r->to_dead = o->to_dead;
	r->file = o->file;
	r->f = o->f;
	r->limit = o->limit;
	r->dry_run = o->dry_run;
	r->yes = o->yes;
	r->force = o->force;
	r->remove = o->remove;
	r->json = o->json;
	r->quiet = o->quiet;
	r->by = o->by;
	r->silent = o->silent;
	r->tty = !o->silent && isatty(STDERR_FILENO);
	gradeq_ratelimit_init(&r->rl, o->rate);
	gethostname(r->host, sizeof(r->host) - 1);
	clock_gettime(CLOCK_MONOTONIC, &r->t0);
	if (r->release)
		gradeq_dead_queue(r->queue, r->release);
	rc = run_cmd(r);
	if (o->result) {
		o->result->scanned = r->scanned;
		o->result->matched = r->matched;
		o->result->acted = r->acted;
		o->result->skipped = r->skipped;
	}
	fflush(stdout);
	json_decref(r->jmsgs);
	gradeq_broker_free(r->in);
	gradeq_broker_free(r->out);
	gradeq_store_free(r->st);
	free(r);
	return rc;
}
