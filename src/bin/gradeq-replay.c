/* gradeq-replay: inspect, replay, export, import and purge the dead letters
 * of a release, selectively and at a controlled rate.
 *
 * Scanning a dead queue: every message is fetched with basic.get (no
 * auto-ack), one at a time, up to the count the queue had when the scan
 * began. A message the command takes (replayed, purged, exported with
 * --remove) is acked only once its new home is confirmed (or the export file
 * synced); every other one is republished, unchanged, to the tail of the
 * same queue, confirmed, and then acked. Cycling through exactly the
 * initial count leaves the messages not taken in their original relative
 * order. (Holding them unacknowledged and returning them at the end would
 * avoid the republish, but a quorum queue returns more than 32 messages in
 * hash order, and so does a closed channel: seen on RabbitMQ 3.10.)
 * At most one message is unacknowledged at any time: if the process dies,
 * the broker returns it, and the worst case is a duplicate of a message
 * whose copy was confirmed but whose ack was lost. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "gradeq/cli.h"
#include "gradeq/job.h"
#include "gradeq/log.h"

#define PROG "gradeq-replay"
#define FILE_FORMAT "gradeq-dead-letters"
#define FILE_VERSION 1
#define MAX_COURSES 64
#define MAX_GROUPS 256

static const char usage[] =
	"Usage: gradeq-replay [OPTIONS] list --release R [FILTERS]\n"
	"       gradeq-replay [OPTIONS] replay --release R [FILTERS] [--to-release R2]\n"
	"                     [--limit N] [--rate N/s] [--dry-run] [--yes] [--force]\n"
	"       gradeq-replay [OPTIONS] export --release R [FILTERS] [--remove] FILE\n"
	"       gradeq-replay [OPTIONS] import FILE [--to-release R2 | --to-dead R]\n"
	"       gradeq-replay [OPTIONS] purge --release R [FILTERS] [--yes]\n"
	"\n"
	"Inspect and act on the dead letters of a release: the messages parked in\n"
	"gradeq.grades.R.dead by the consumers (with the headers gradeq-error,\n"
	"gradeq-error-class, gradeq-failed-at, gradeq-failed-by, gradeq-attempt) or\n"
	"by the broker on the work queue's delivery limit (x-first-death-reason).\n"
	"\n"
	"Commands:\n"
	"  list      one line per parked message (job, course, run, attempts, error\n"
	"            class, error, failed at, age) and a summary by error class and\n"
	"            course. Messages whose body is no job are listed too (size,\n"
	"            headers, first bytes in hex). The queue is left as it was;\n"
	"            a job the broker parked on the delivery limit, whose row\n"
	"            still says pending, is recorded dead (every subcommand does).\n"
	"  replay    publish each matching message to the work queue of the release\n"
	"            (or of --to-release R2), confirmed and mandatory, with\n"
	"            gradeq-attempt reset to 1 and gradeq-replayed-at and\n"
	"            gradeq-replay-count added; the dead copy is acked only after the\n"
	"            broker confirmed the new one. The job goes back to 'pending'\n"
	"            (recorded in gradeq_job_events). A retired or draining release's\n"
	"            jobs go to the promoted release; an unknown release (no registry\n"
	"            entry and no queue) is an error and nothing moves. Messages whose\n"
	"            body is no job are never replayed unless --force.\n"
	"  export    write the matching messages to FILE (a new file; '-': standard\n"
	"            output), one JSON line each with properties, typed headers and\n"
	"            the body in base64, after a header line\n"
	"            {\"format\":\"" FILE_FORMAT "\",\"version\":1,...} and before a\n"
	"            trailer with the record count. The messages stay parked unless\n"
	"            --remove (each is acked once its record is synced to FILE).\n"
	"  import    publish every record of FILE, each confirmed, to the dead queue\n"
	"            of the release named in the file (default), of --to-dead R, or to\n"
	"            the work queue of --to-release R2 (as replay does). Prints the\n"
	"            count, which equals the file's. A job that was purged stays\n"
	"            'discarded' (a final state): consumers ack it without grading.\n"
	"  purge     ack the matching dead messages and mark their jobs 'discarded'.\n"
	"            Without --yes, only says what it would do.\n"
	"\n"
	"Filters (all given must match):\n"
	"      --course ID        the job's course (repeatable: any of them)\n"
	"      --class C          error class: permanent, exhausted, transient, or the\n"
	"                         broker's reason (delivery_limit, rejected, expired)\n"
	"      --run ID           the job's run id\n"
	"      --older-than DUR   failed at least DUR ago: 90s, 15m, 2h, 7d\n"
	"      --reason TEXT      TEXT occurs in the error (case-insensitive)\n"
	"\n"
	"Options:\n"
	"  -c, --config FILE      configuration file (default " GRADEQ_DEFAULT_CONF ")\n"
	"  -r, --release R        release whose dead queue to read\n"
	"      --to-release R2    replay or import into R2's work queue\n"
	"      --to-dead R        import into R's dead queue\n"
	"  -l, --limit N          act on at most N messages\n"
	"      --rate N[/s]       at most N messages a second (a token bucket without\n"
	"                         burst: never more than N in any second)\n"
	"  -n, --dry-run          say what would be done, change nothing\n"
	"  -y, --yes              do not ask (replay asks on a terminal; purge does\n"
	"                         nothing without it)\n"
	"  -f, --force            replay messages whose body is no job too; import a\n"
	"                         file that has no trailer (cut short)\n"
	"      --remove           export: remove the exported messages from the queue\n"
	"      --json             one JSON object on stdout\n"
	"  -q, --quiet            no progress on the terminal\n"
	"  -h, --help             this text\n"
	"  -V, --version          print the version\n"
	"\n"
	"Progress (count, rate, ETA) goes to standard error when it is a terminal.\n"
	"Every command cycles through the messages present when it starts: those it\n"
	"does not take are put back at the tail of the queue, unchanged and in their\n"
	"order (a message is acked only after its copy was confirmed). SIGINT or\n"
	"SIGTERM: nothing more is taken after the message in hand, and the rest of\n"
	"the cycle is completed (fast, no rate limit) so the order holds; a second\n"
	"one stops after the message in hand (nothing lost, but the messages not\n"
	"yet cycled then sit ahead of those that were).\n"
	"\n"
	"Environment: GRADEQ_AMQP_URL and GRADEQ_PG_DSN override the configuration.\n"
	"Exit status: 0 on success, 1 on error (one line on stderr), 2 on bad usage,\n"
	"130 when interrupted.\n";

enum cmd { CMD_LIST, CMD_REPLAY, CMD_EXPORT, CMD_IMPORT, CMD_PURGE };

struct filters {
	const char *courses[MAX_COURSES];
	int ncourses;
	const char *cls, *run, *reason;
	long older_than; /* seconds, -1: none */
};

/* What a dead message says about itself, from its body and headers. */
struct view {
	bool decoded;
	char job_id[64], course[256], run[64], cls[64], error[1024], failed_at[40];
	char decode_err[256];
	int64_t attempt, replays;
	time_t failed_ts; /* 0: unknown */
	size_t size;
};

struct group {
	char name[256];
	long n;
};

struct replay {
	struct gradeq_cli cli;
	enum cmd cmd;
	const char *release, *to_release, *to_dead, *file;
	struct filters f;
	long limit;  /* -1: none */
	double rate; /* 0: none */
	bool dry_run, yes, force, remove, json, quiet, tty;
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
	FILE *fp;
	double next_send; /* token bucket: when the next token is there */
	struct timespec t0;
	double last_progress;
	char host[128];
};

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	if (interrupted < 2)
		interrupted++;
}

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double elapsed(const struct replay *r)
{
	return now_s() - ((double)r->t0.tv_sec + (double)r->t0.tv_nsec / 1e9);
}

static void rfc3339(time_t t, char *buf, size_t len)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* "2026-01-31T12:00:00Z" (fraction and offset ignored) -> seconds; 0 when
 * it is not one. */
static time_t parse_rfc3339(const char *s)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
		   &tm.tm_min, &tm.tm_sec) != 6)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return timegm(&tm);
}

/* "90", "90s", "15m", "2h", "7d" -> seconds; -1 when malformed. */
static long parse_duration(const char *s)
{
	char *end = NULL;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || v < 0)
		return -1;
	if (*end == '\0' || strcmp(end, "s") == 0)
		return v;
	if (strcmp(end, "m") == 0 && v <= 1000000)
		return v * 60;
	if (strcmp(end, "h") == 0 && v <= 100000)
		return v * 3600;
	if (strcmp(end, "d") == 0 && v <= 10000)
		return v * 86400;
	return -1;
}

static void format_age(long s, char *buf, size_t len)
{
	if (s < 0)
		snprintf(buf, len, "-");
	else if (s < 120)
		snprintf(buf, len, "%lds", s);
	else if (s < 7200)
		snprintf(buf, len, "%ldm", s / 60);
	else if (s < 172800)
		snprintf(buf, len, "%ldh", s / 3600);
	else
		snprintf(buf, len, "%ldd", s / 86400);
}

/* Case-insensitive substring test. */
static bool contains_ci(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	for (; *hay; hay++)
		if (strncasecmp(hay, needle, n) == 0)
			return true;
	return n == 0;
}

/* --- base64 --------------------------------------------------------------- */

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* malloc'd NUL-terminated base64 of data; NULL when out of memory. */
static char *b64_encode(const void *data, size_t len)
{
	const unsigned char *p = data;
	char *out = malloc(4 * ((len + 2) / 3) + 1);
	size_t o = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		out[o++] = b64chars[(v >> 18) & 63];
		out[o++] = b64chars[(v >> 12) & 63];
		out[o++] = i + 1 < len ? b64chars[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? b64chars[v & 63] : '=';
	}
	out[o] = '\0';
	return out;
}

static int b64_value(char c)
{
	const char *p = c ? strchr(b64chars, c) : NULL;

	return p ? (int)(p - b64chars) : -1;
}

/* Decodes s into out (at least 3 * strlen(s) / 4 bytes); -1 when s is not
 * base64, else the length. */
static long b64_decode(const char *s, unsigned char *out)
{
	size_t n = strlen(s), o = 0;

	if (n % 4)
		return -1;
	for (size_t i = 0; i < n; i += 4) {
		int a = b64_value(s[i]), b = b64_value(s[i + 1]);
		int c = s[i + 2] == '=' ? 0 : b64_value(s[i + 2]);
		int d = s[i + 3] == '=' ? 0 : b64_value(s[i + 3]);
		uint32_t v;

		if (a < 0 || b < 0 || c < 0 || d < 0 || (s[i + 2] == '=' && s[i + 3] != '=') ||
		    ((s[i + 2] == '=' || s[i + 3] == '=') && i + 4 != n))
			return -1;
		v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
		out[o++] = (unsigned char)(v >> 16);
		if (s[i + 2] != '=')
			out[o++] = (unsigned char)(v >> 8);
		if (s[i + 3] != '=')
			out[o++] = (unsigned char)v;
	}
	return (long)o;
}

/* --- reading a dead message ----------------------------------------------- */

static const amqp_table_t *headers_of(const amqp_envelope_t *env)
{
	return (env->message.properties._flags & AMQP_BASIC_HEADERS_FLAG)
		       ? &env->message.properties.headers
		       : NULL;
}

static const amqp_field_value_t *field(const amqp_table_t *t, const char *key)
{
	size_t n = strlen(key);

	for (int i = 0; t && i < t->num_entries; i++)
		if (t->entries[i].key.len == n && memcmp(t->entries[i].key.bytes, key, n) == 0)
			return &t->entries[i].value;
	return NULL;
}

/* The time of the broker's first dead-lettering (x-death's last entry is the
 * oldest); 0 when there is none. */
static time_t x_death_time(const amqp_table_t *h)
{
	const amqp_field_value_t *v = field(h, "x-death");
	const amqp_array_t *a;

	if (!v || v->kind != AMQP_FIELD_KIND_ARRAY)
		return 0;
	a = &v->value.array;
	for (int i = a->num_entries - 1; i >= 0; i--) {
		const amqp_field_value_t *e = &a->entries[i];
		const amqp_field_value_t *t;

		if (e->kind != AMQP_FIELD_KIND_TABLE)
			continue;
		t = field(&e->value.table, "time");
		if (t && t->kind == AMQP_FIELD_KIND_TIMESTAMP)
			return (time_t)t->value.u64;
	}
	return 0;
}

static void view_fill(struct view *v, const amqp_envelope_t *env)
{
	const amqp_basic_properties_t *p = &env->message.properties;
	const amqp_table_t *h = headers_of(env);
	struct gradeq_job *job = NULL;
	char reason[64], queue[256];

	memset(v, 0, sizeof(*v));
	v->size = env->message.body.len;
	if (gradeq_job_decode(env->message.body.bytes, env->message.body.len, &job, v->decode_err,
			      sizeof(v->decode_err)) == 0) {
		v->decoded = true;
		snprintf(v->job_id, sizeof(v->job_id), "%s", job->job_id);
		snprintf(v->course, sizeof(v->course), "%s", job->course_id);
		snprintf(v->run, sizeof(v->run), "%s", job->run_id);
		gradeq_job_free(job);
	} else {
		if (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG)
			snprintf(v->job_id, sizeof(v->job_id), "%.*s", (int)p->message_id.len,
				 (const char *)p->message_id.bytes);
		gradeq_header_str(h, "gradeq-course", v->course, sizeof(v->course));
		gradeq_header_str(h, "gradeq-run", v->run, sizeof(v->run));
	}
	v->attempt = gradeq_header_int(h, "gradeq-attempt", 0);
	v->replays = gradeq_header_int(h, "gradeq-replay-count", 0);
	if (!gradeq_header_str(h, "gradeq-error-class", v->cls, sizeof(v->cls))) {
		if (gradeq_header_str(h, "x-first-death-reason", reason, sizeof(reason))) {
			snprintf(v->cls, sizeof(v->cls), "%s", reason);
			if (!gradeq_header_str(h, "x-first-death-queue", queue, sizeof(queue)))
				snprintf(queue, sizeof(queue), "?");
			snprintf(v->error, sizeof(v->error),
				 "dead-lettered by the broker (%s) from queue %s", reason, queue);
		} else {
			snprintf(v->cls, sizeof(v->cls), "unknown");
		}
	} else {
		gradeq_header_str(h, "gradeq-error", v->error, sizeof(v->error));
	}
	if (gradeq_header_str(h, "gradeq-failed-at", v->failed_at, sizeof(v->failed_at)))
		v->failed_ts = parse_rfc3339(v->failed_at);
	if (!v->failed_ts)
		v->failed_ts = x_death_time(h);
	if (!v->failed_ts && (p->_flags & AMQP_BASIC_TIMESTAMP_FLAG))
		v->failed_ts = (time_t)p->timestamp;
	if (v->failed_ts && !v->failed_at[0])
		rfc3339(v->failed_ts, v->failed_at, sizeof(v->failed_at));
}

static bool matches(const struct filters *f, const struct view *v)
{
	if (f->ncourses) {
		bool any = false;

		for (int i = 0; i < f->ncourses; i++)
			if (strcmp(f->courses[i], v->course) == 0)
				any = true;
		if (!any)
			return false;
	}
	if (f->cls && strcmp(f->cls, v->cls) != 0)
		return false;
	if (f->run && strcasecmp(f->run, v->run) != 0)
		return false;
	if (f->reason && !contains_ci(v->error, f->reason))
		return false;
	if (f->older_than >= 0 &&
	    (!v->failed_ts || (long)(time(NULL) - v->failed_ts) < f->older_than))
		return false;
	return true;
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

static void progress(struct replay *r, bool final)
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

/* Sleeps until the next token (one per 1/rate s, no burst); false when
 * interrupted meanwhile. */
static bool take_token(struct replay *r)
{
	double t;

	if (r->rate <= 0)
		return !interrupted;
	t = now_s();
	if (r->next_send < t)
		r->next_send = t;
	while (!interrupted && (t = now_s()) < r->next_send) {
		double d = r->next_send - t;
		struct timespec ts;

		if (d > 0.1)
			d = 0.1;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)(d * 1e9);
		nanosleep(&ts, NULL);
	}
	if (interrupted)
		return false;
	r->next_send += 1.0 / r->rate;
	return true;
}

/* --- the scan ------------------------------------------------------------- */

/* Called for each message with whether it matches the filters. Sets *taken
 * once the message has been acked (moved or removed); otherwise the scan
 * puts it back at the tail. *stop: take no more (the cycle is completed). */
typedef int (*visit_fn)(struct replay *r, const amqp_envelope_t *env, const struct view *v,
			bool match, bool *taken, bool *stop);

/* Puts a message back at the tail of its dead queue, unchanged: confirmed,
 * then the original acked. */
static int rotate(struct replay *r, const amqp_envelope_t *env)
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

static int job_move(struct replay *r, const char *job_id, const char *from, const char *to,
		    const char *detail);

/* A job the broker parked on the work queue's delivery limit never reached
 * a consumer again, so its row still says pending or in_progress: record
 * it dead now, with the broker's reason, so that its run can settle. */
static void reconcile(struct replay *r, const struct view *v)
{
	if (!v->decoded || !r->st || strcmp(v->cls, "delivery_limit") != 0)
		return;
	if (job_move(r, v->job_id, "{pending,in_progress,retrying}", "dead", v->error))
		fprintf(stderr, PROG ": warning: job %s: %s\n", v->job_id,
			gradeq_errmsg(GRADEQ_ERR_DB));
}

static int scan(struct replay *r, visit_fn visit)
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
		struct view v;
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
		view_fill(&v, &env);
		reconcile(r, &v);
		match = matches(&r->f, &v);
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

static void hex_head(const amqp_bytes_t *b, char *buf, size_t len)
{
	size_t n = b->len < 32 ? b->len : 32, o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && o + 3 < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%02x",
				      ((const unsigned char *)b->bytes)[i]);
}

static void headers_text(const amqp_table_t *h, char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = '\0';
	for (int i = 0; h && i < h->num_entries && o + 4 < len; i++) {
		const amqp_table_entry_t *e = &h->entries[i];
		char key[128], val[128];

		snprintf(key, sizeof(key), "%.*s", (int)e->key.len, (const char *)e->key.bytes);
		if (e->value.kind == AMQP_FIELD_KIND_UTF8 || e->value.kind == AMQP_FIELD_KIND_BYTES)
			snprintf(val, sizeof(val), "%.*s", (int)e->value.value.bytes.len,
				 (const char *)e->value.value.bytes.bytes);
		else if (e->value.kind == AMQP_FIELD_KIND_ARRAY)
			snprintf(val, sizeof(val), "[%d]", e->value.value.array.num_entries);
		else if (e->value.kind == AMQP_FIELD_KIND_TABLE)
			snprintf(val, sizeof(val), "{%d}", e->value.value.table.num_entries);
		else
			snprintf(val, sizeof(val), "%lld", (long long)gradeq_header_int(h, key, 0));
		o += (size_t)snprintf(buf + o, len - o, "%s%s=%s", i ? "," : "", key, val);
		if (o >= len)
			o = len - 1;
	}
}

static json_t *view_json(const struct view *v, const amqp_envelope_t *env)
{
	json_t *o = json_object();
	long age = v->failed_ts ? (long)(time(NULL) - v->failed_ts) : -1;

	json_object_set_new(o, "job_id", json_string(v->job_id));
	json_object_set_new(o, "course", json_string(v->course));
	json_object_set_new(o, "run", json_string(v->run));
	json_object_set_new(o, "attempts", json_integer(v->attempt));
	json_object_set_new(o, "replays", json_integer(v->replays));
	json_object_set_new(o, "class", json_string(v->cls));
	json_object_set_new(o, "error", json_string(v->error));
	json_object_set_new(o, "failed_at",
			    v->failed_at[0] ? json_string(v->failed_at) : json_null());
	json_object_set_new(o, "age_s", age >= 0 ? json_integer(age) : json_null());
	json_object_set_new(o, "decodable", json_boolean(v->decoded));
	json_object_set_new(o, "size", json_integer((json_int_t)v->size));
	if (!v->decoded) {
		char hex[80], hdr[1024];

		hex_head(&env->message.body, hex, sizeof(hex));
		headers_text(headers_of(env), hdr, sizeof(hdr));
		json_object_set_new(o, "decode_error", json_string(v->decode_err));
		json_object_set_new(o, "head_hex", json_string(hex));
		json_object_set_new(o, "headers", json_string(hdr));
	}
	return o;
}

static void view_print(const struct view *v, const amqp_envelope_t *env, const char *prefix)
{
	char age[32], err[1100];

	format_age(v->failed_ts ? (long)(time(NULL) - v->failed_ts) : -1, age, sizeof(age));
	gradeq_log_quote(err, sizeof(err), v->error[0] ? v->error : "-");
	if (v->decoded) {
		printf("%sjob=%s course=%s run=%s attempts=%lld class=%s failed_at=%s age=%s"
		       " error=%s\n",
		       prefix, v->job_id, v->course, v->run[0] ? v->run : "-",
		       (long long)v->attempt, v->cls, v->failed_at[0] ? v->failed_at : "-", age,
		       err);
	} else {
		char hex[80], hdr[1024], q[1100], de[300];

		hex_head(&env->message.body, hex, sizeof(hex));
		headers_text(headers_of(env), hdr, sizeof(hdr));
		gradeq_log_quote(q, sizeof(q), hdr);
		gradeq_log_quote(de, sizeof(de), v->decode_err);
		printf("%sundecodable message_id=%s size=%zu class=%s failed_at=%s age=%s error=%s"
		       " decode_error=%s headers=%s head=%s\n",
		       prefix, v->job_id[0] ? v->job_id : "-", v->size, v->cls,
		       v->failed_at[0] ? v->failed_at : "-", age, err, de, q, hex[0] ? hex : "-");
	}
}

static int visit_list(struct replay *r, const amqp_envelope_t *env, const struct view *v,
		      bool match, bool *taken, bool *stop)
{
	(void)taken;
	(void)stop;
	if (!match)
		return 0;
	count_group(r->by_class, &r->nclass, v->cls);
	count_group(r->by_course, &r->ncourse, v->decoded ? v->course : "(undecodable)");
	if (r->json)
		json_array_append_new(r->jmsgs, view_json(v, env));
	else
		view_print(v, env, "");
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
	for (int i = 0; i < n; i++)
		printf(" %s=%ld", g[i].name, g[i].n);
	printf("%s\n", n ? "" : " -");
}

/* --- job rows -------------------------------------------------------------- */

/* Moves a job from one of the states in 'from' (a text[] literal) to 'to',
 * records the event and adjusts its run's counters; a job in another state,
 * or unknown to this database, is left alone. */
static int job_move(struct replay *r, const char *job_id, const char *from, const char *to,
		    const char *detail)
{
	char by[300];
	const char *params[5] = {job_id, from, to, by, detail};
	PGresult *res;
	int rc = 0;

	snprintf(by, sizeof(by), PROG " host=%s pid=%ld", r->host, (long)getpid());
	res = PQexecParams(gradeq_store_conn(r->st),
			   "WITH j AS (UPDATE gradeq_jobs g SET state = $3,"
			   "  finished_at = CASE WHEN $3 = 'pending' THEN NULL ELSE now() END"
			   "  FROM (SELECT state FROM gradeq_jobs WHERE job_id = $1::uuid) o"
			   "  WHERE g.job_id = $1::uuid AND g.state = ANY ($2::text[])"
			   "  RETURNING g.run_id, o.state AS old),"
			   " ev AS (INSERT INTO gradeq_job_events"
			   "  (job_id, run_id, from_state, to_state, by, detail)"
			   "  SELECT $1::uuid, run_id, old, $3, $4, $5 FROM j)"
			   " UPDATE gradeq_runs r SET"
			   "  jobs_dead = r.jobs_dead - (j.old = 'dead')::int + ($3 = 'dead')::int,"
			   "  jobs_discarded = r.jobs_discarded - (j.old = 'discarded')::int"
			   "   + ($3 = 'discarded')::int,"
			   /* a job recorded dead here may be the run's last one: the
			    * trigger gradeq_runs_settle settles it */
			   "  state = CASE WHEN $3 = 'pending' AND r.state = 'failed'"
			   "   THEN 'running' ELSE r.state END,"
			   "  finished_at = CASE WHEN $3 = 'pending' AND r.state = 'failed'"
			   "   THEN NULL ELSE r.finished_at END"
			   " FROM j WHERE r.run_id = j.run_id",
			   5, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		rc = gradeq_store_result_error(r->st, res, "updating the job row");
	PQclear(res);
	return rc;
}

/* --- replay ---------------------------------------------------------------- */

/* Publishes a dead message to the target work queue as a fresh attempt. */
static int publish_replay(struct replay *r, const amqp_basic_properties_t *orig,
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
	rfc3339(time(NULL), at, sizeof(at));
	gradeq_headers_set_int(&nh, "gradeq-attempt", 1);
	gradeq_headers_set_str(&nh, "gradeq-replayed-at", at);
	gradeq_headers_set_int(&nh, "gradeq-replay-count",
			       gradeq_header_int(h, "gradeq-replay-count", 0) + 1);
	props._flags |= AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
	props.delivery_mode = 2;
	rc = gradeq_headers_finish(&nh, &props.headers);
	if (!rc)
		rc = gradeq_broker_publish(r->out, r->exchange, r->key, &props, body->bytes,
					   body->len);
	if (!rc)
		rc = gradeq_broker_wait_confirms(r->out, GRADEQ_CONFIRM_WAIT_MS);
	return rc;
}

static int visit_replay(struct replay *r, const amqp_envelope_t *env, const struct view *v,
			bool match, bool *taken, bool *stop)
{
	int rc;

	if (!match)
		return 0;
	if (!v->decoded && !r->force) {
		r->skipped++;
		return 0;
	}
	if (r->limit >= 0 && r->acted >= r->limit) {
		*stop = true; /* what is not scanned stays where it is, in order */
		return 0;
	}
	if (r->dry_run) {
		r->acted++;
		if (!r->json)
			view_print(v, env, "would replay ");
		return 0;
	}
	if (!take_token(r))
		return 0; /* interrupted while waiting: this one stays parked */
	if (v->decoded) {
		rc = job_move(r, v->job_id, "{dead}", "pending", "replayed");
		if (rc)
			return rc;
	}
	rc = publish_replay(r, &env->message.properties, &env->message.body);
	if (rc) {
		if (v->decoded && job_move(r, v->job_id, "{pending}", "dead", "replay failed"))
			log_warn("event=job_row_revert_failed job=%s", v->job_id);
		return rc;
	}
	rc = gradeq_broker_ack(r->in, env->delivery_tag);
	if (rc)
		return rc; /* a duplicate at worst: the consumer absorbs it */
	*taken = true;
	r->acted++;
	count_group(r->by_course, &r->ncourse, v->decoded ? v->course : "(undecodable)");
	log_debug("event=replayed job=%s course=%s to=%s", v->job_id, v->course, r->dest_queue);
	return 0;
}

/* --- purge ----------------------------------------------------------------- */

static int visit_purge(struct replay *r, const amqp_envelope_t *env, const struct view *v,
		       bool match, bool *taken, bool *stop)
{
	int rc;

	if (!match)
		return 0;
	if (r->limit >= 0 && r->acted >= r->limit) {
		*stop = true;
		return 0;
	}
	if (r->dry_run) {
		r->acted++;
		if (!r->json)
			view_print(v, env, "would purge ");
		return 0;
	}
	if (!take_token(r))
		return 0;
	if (v->decoded) {
		rc = job_move(r, v->job_id, "{dead}", "discarded", "purged");
		if (rc)
			return rc;
	}
	rc = gradeq_broker_ack(r->in, env->delivery_tag);
	if (rc)
		return rc;
	*taken = true;
	r->acted++;
	count_group(r->by_course, &r->ncourse, v->decoded ? v->course : "(undecodable)");
	log_debug("event=purged job=%s course=%s", v->job_id, v->course);
	return 0;
}

/* --- export file ----------------------------------------------------------- */

static const struct {
	uint8_t kind;
	const char *name;
} kinds[] = {
	{AMQP_FIELD_KIND_BOOLEAN, "bool"},
	{AMQP_FIELD_KIND_I8, "i8"},
	{AMQP_FIELD_KIND_U8, "u8"},
	{AMQP_FIELD_KIND_I16, "i16"},
	{AMQP_FIELD_KIND_U16, "u16"},
	{AMQP_FIELD_KIND_I32, "i32"},
	{AMQP_FIELD_KIND_U32, "u32"},
	{AMQP_FIELD_KIND_I64, "i64"},
	{AMQP_FIELD_KIND_U64, "u64"},
	{AMQP_FIELD_KIND_F32, "f32"},
	{AMQP_FIELD_KIND_F64, "f64"},
	{AMQP_FIELD_KIND_DECIMAL, "decimal"},
	{AMQP_FIELD_KIND_UTF8, "string"},
	{AMQP_FIELD_KIND_ARRAY, "array"},
	{AMQP_FIELD_KIND_TIMESTAMP, "timestamp"},
	{AMQP_FIELD_KIND_TABLE, "table"},
	{AMQP_FIELD_KIND_VOID, "void"},
	{AMQP_FIELD_KIND_BYTES, "bytes"},
};

static const char *kind_name(uint8_t kind)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (kinds[i].kind == kind)
			return kinds[i].name;
	return NULL;
}

static int kind_of(const char *name)
{
	for (size_t i = 0; name && i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(kinds[i].name, name) == 0)
			return kinds[i].kind;
	return -1;
}

/* Bytes as a JSON string when they are UTF-8, else NULL. */
static json_t *bytes_json(amqp_bytes_t b)
{
	return json_stringn(b.len ? (const char *)b.bytes : "", b.len);
}

static json_t *table_json(const amqp_table_t *t);

/* A typed field: {"type": ..., "value": ...}; strings that are not UTF-8
 * and byte arrays carry "base64" instead of "value". */
static json_t *field_json(const amqp_field_value_t *v)
{
	const char *name = kind_name(v->kind);
	json_t *o, *val = NULL;

	if (!name)
		return NULL;
	o = json_object();
	json_object_set_new(o, "type", json_string(name));
	switch (v->kind) {
	case AMQP_FIELD_KIND_BOOLEAN: val = json_boolean(v->value.boolean); break;
	case AMQP_FIELD_KIND_I8: val = json_integer(v->value.i8); break;
	case AMQP_FIELD_KIND_U8: val = json_integer(v->value.u8); break;
	case AMQP_FIELD_KIND_I16: val = json_integer(v->value.i16); break;
	case AMQP_FIELD_KIND_U16: val = json_integer(v->value.u16); break;
	case AMQP_FIELD_KIND_I32: val = json_integer(v->value.i32); break;
	case AMQP_FIELD_KIND_U32: val = json_integer(v->value.u32); break;
	case AMQP_FIELD_KIND_I64: val = json_integer(v->value.i64); break;
	case AMQP_FIELD_KIND_U64:
	case AMQP_FIELD_KIND_TIMESTAMP: val = json_integer((json_int_t)v->value.u64); break;
	case AMQP_FIELD_KIND_F32:
	case AMQP_FIELD_KIND_F64: {
		double d = v->kind == AMQP_FIELD_KIND_F32 ? (double)v->value.f32 : v->value.f64;

		if (isfinite(d)) {
			val = json_real(d);
		} else {
			char s[16];

			snprintf(s, sizeof(s), "%s", isnan(d) ? "nan" : d > 0 ? "inf" : "-inf");
			json_object_set_new(o, "special", json_string(s));
		}
		break;
	}
	case AMQP_FIELD_KIND_DECIMAL:
		json_object_set_new(o, "decimals", json_integer(v->value.decimal.decimals));
		val = json_integer(v->value.decimal.value);
		break;
	case AMQP_FIELD_KIND_UTF8:
	case AMQP_FIELD_KIND_BYTES:
		val = v->kind == AMQP_FIELD_KIND_UTF8 ? bytes_json(v->value.bytes) : NULL;
		if (!val) {
			char *b = b64_encode(v->value.bytes.bytes, v->value.bytes.len);

			json_object_set_new(o, "base64", json_string(b ? b : ""));
			free(b);
		}
		break;
	case AMQP_FIELD_KIND_ARRAY:
		val = json_array();
		for (int i = 0; i < v->value.array.num_entries; i++)
			json_array_append_new(val, field_json(&v->value.array.entries[i]));
		break;
	case AMQP_FIELD_KIND_TABLE: val = table_json(&v->value.table); break;
	default: break;
	}
	if (val)
		json_object_set_new(o, "value", val);
	return o;
}

/* A table as an array of {"name": ..., "type": ..., "value": ...}: order and
 * repeated names are kept. */
static json_t *table_json(const amqp_table_t *t)
{
	json_t *a = json_array();

	for (int i = 0; t && i < t->num_entries; i++) {
		json_t *f = field_json(&t->entries[i].value);
		json_t *k = bytes_json(t->entries[i].key);

		if (!f)
			f = json_object();
		json_object_set_new(f, "name", k ? k : json_string("?"));
		json_array_append_new(a, f);
	}
	return a;
}

#define PROP_STR(flag, field_, name)                                                               \
	do {                                                                                       \
		if (p->_flags & (flag)) {                                                          \
			json_t *s_ = bytes_json(p->field_);                                        \
			if (s_)                                                                    \
				json_object_set_new(o, name, s_);                                  \
		}                                                                                  \
	} while (0)

static json_t *props_json(const amqp_basic_properties_t *p)
{
	json_t *o = json_object();

	PROP_STR(AMQP_BASIC_CONTENT_TYPE_FLAG, content_type, "content_type");
	PROP_STR(AMQP_BASIC_CONTENT_ENCODING_FLAG, content_encoding, "content_encoding");
	PROP_STR(AMQP_BASIC_MESSAGE_ID_FLAG, message_id, "message_id");
	PROP_STR(AMQP_BASIC_CORRELATION_ID_FLAG, correlation_id, "correlation_id");
	PROP_STR(AMQP_BASIC_REPLY_TO_FLAG, reply_to, "reply_to");
	PROP_STR(AMQP_BASIC_EXPIRATION_FLAG, expiration, "expiration");
	PROP_STR(AMQP_BASIC_TYPE_FLAG, type, "type");
	PROP_STR(AMQP_BASIC_USER_ID_FLAG, user_id, "user_id");
	PROP_STR(AMQP_BASIC_APP_ID_FLAG, app_id, "app_id");
	PROP_STR(AMQP_BASIC_CLUSTER_ID_FLAG, cluster_id, "cluster_id");
	if (p->_flags & AMQP_BASIC_DELIVERY_MODE_FLAG)
		json_object_set_new(o, "delivery_mode", json_integer(p->delivery_mode));
	if (p->_flags & AMQP_BASIC_PRIORITY_FLAG)
		json_object_set_new(o, "priority", json_integer(p->priority));
	if (p->_flags & AMQP_BASIC_TIMESTAMP_FLAG)
		json_object_set_new(o, "timestamp", json_integer((json_int_t)p->timestamp));
	return o;
}

static int write_line(struct replay *r, json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
	int rc = 0;

	if (!s)
		return gradeq_error(GRADEQ_ERR_NOMEM, "cannot write a record");
	if (fputs(s, r->fp) == EOF || fputc('\n', r->fp) == EOF)
		rc = gradeq_error(GRADEQ_ERR_IO, "writing '%s': %s", r->file, strerror(errno));
	free(s);
	return rc;
}

static int visit_export(struct replay *r, const amqp_envelope_t *env, const struct view *v,
			bool match, bool *taken, bool *stop)
{
	json_t *o;
	char *body;
	int rc;

	if (!match)
		return 0;
	if (r->limit >= 0 && r->acted >= r->limit) {
		*stop = true;
		return 0;
	}
	body = b64_encode(env->message.body.bytes, env->message.body.len);
	if (!body)
		return gradeq_error(GRADEQ_ERR_NOMEM, "out of memory");
	o = json_object();
	json_object_set_new(o, "routing_key", bytes_json(env->routing_key));
	json_object_set_new(o, "properties", props_json(&env->message.properties));
	json_object_set_new(o, "headers", table_json(headers_of(env)));
	json_object_set_new(o, "body", json_string(body));
	free(body);
	rc = write_line(r, o);
	json_decref(o);
	if (rc)
		return rc;
	r->acted++;
	count_group(r->by_course, &r->ncourse, v->decoded ? v->course : "(undecodable)");
	if (!r->remove)
		return 0;
	/* removed only once its record is on disk */
	if (fflush(r->fp) || (r->fp != stdout && fsync(fileno(r->fp))))
		return gradeq_error(GRADEQ_ERR_IO, "writing '%s': %s", r->file, strerror(errno));
	rc = gradeq_broker_ack(r->in, env->delivery_tag);
	if (!rc)
		*taken = true;
	return rc;
}

/* --- import ----------------------------------------------------------------- */

static int field_from_json(json_t *o, amqp_field_value_t *v, amqp_pool_t *pool);

static int table_from_json(json_t *a, amqp_table_t *t, amqp_pool_t *pool)
{
	size_t n = json_is_array(a) ? json_array_size(a) : 0;

	if (!json_is_array(a))
		return -1;
	t->num_entries = (int)n;
	t->entries = n ? amqp_pool_alloc(pool, n * sizeof(*t->entries)) : NULL;
	if (n && !t->entries)
		return -1;
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(a, i);
		json_t *name = json_object_get(e, "name");

		if (!json_is_string(name))
			return -1;
		t->entries[i].key.bytes = (void *)json_string_value(name);
		t->entries[i].key.len = json_string_length(name);
		if (field_from_json(e, &t->entries[i].value, pool))
			return -1;
	}
	return 0;
}

static int bytes_from_json(json_t *o, amqp_bytes_t *b, amqp_pool_t *pool)
{
	json_t *val = json_object_get(o, "value"), *enc = json_object_get(o, "base64");

	if (json_is_string(val)) {
		b->bytes = (void *)json_string_value(val);
		b->len = json_string_length(val);
		return 0;
	}
	if (!json_is_string(enc))
		return -1;
	b->bytes = amqp_pool_alloc(pool, json_string_length(enc) * 3 / 4 + 3);
	if (!b->bytes)
		return -1;
	{
		long n = b64_decode(json_string_value(enc), b->bytes);

		if (n < 0)
			return -1;
		b->len = (size_t)n;
	}
	return 0;
}

static int field_from_json(json_t *o, amqp_field_value_t *v, amqp_pool_t *pool)
{
	int kind = kind_of(json_string_value(json_object_get(o, "type")));
	json_t *val = json_object_get(o, "value");
	json_int_t i = json_is_integer(val) ? json_integer_value(val) : 0;

	if (kind < 0)
		return -1;
	v->kind = (uint8_t)kind;
	switch (kind) {
	case AMQP_FIELD_KIND_BOOLEAN: v->value.boolean = json_is_true(val); break;
	case AMQP_FIELD_KIND_I8: v->value.i8 = (int8_t)i; break;
	case AMQP_FIELD_KIND_U8: v->value.u8 = (uint8_t)i; break;
	case AMQP_FIELD_KIND_I16: v->value.i16 = (int16_t)i; break;
	case AMQP_FIELD_KIND_U16: v->value.u16 = (uint16_t)i; break;
	case AMQP_FIELD_KIND_I32: v->value.i32 = (int32_t)i; break;
	case AMQP_FIELD_KIND_U32: v->value.u32 = (uint32_t)i; break;
	case AMQP_FIELD_KIND_I64: v->value.i64 = (int64_t)i; break;
	case AMQP_FIELD_KIND_U64:
	case AMQP_FIELD_KIND_TIMESTAMP: v->value.u64 = (uint64_t)i; break;
	case AMQP_FIELD_KIND_F32:
	case AMQP_FIELD_KIND_F64: {
		const char *sp = json_string_value(json_object_get(o, "special"));
		double d = json_number_value(val);

		if (sp)
			d = strcmp(sp, "nan") == 0   ? NAN
			    : strcmp(sp, "inf") == 0 ? INFINITY
						     : -INFINITY;
		if (kind == AMQP_FIELD_KIND_F32)
			v->value.f32 = (float)d;
		else
			v->value.f64 = d;
		break;
	}
	case AMQP_FIELD_KIND_DECIMAL:
		v->value.decimal.decimals =
			(uint8_t)json_integer_value(json_object_get(o, "decimals"));
		v->value.decimal.value = (uint32_t)i;
		break;
	case AMQP_FIELD_KIND_UTF8:
	case AMQP_FIELD_KIND_BYTES: return bytes_from_json(o, &v->value.bytes, pool);
	case AMQP_FIELD_KIND_ARRAY: {
		size_t n = json_is_array(val) ? json_array_size(val) : 0;

		if (!json_is_array(val))
			return -1;
		v->value.array.num_entries = (int)n;
		v->value.array.entries =
			n ? amqp_pool_alloc(pool, n * sizeof(amqp_field_value_t)) : NULL;
		if (n && !v->value.array.entries)
			return -1;
		for (size_t k = 0; k < n; k++)
			if (field_from_json(json_array_get(val, k), &v->value.array.entries[k],
					    pool))
				return -1;
		break;
	}
	case AMQP_FIELD_KIND_TABLE: return table_from_json(val, &v->value.table, pool);
	default: break;
	}
	return 0;
}

static int prop_str(json_t *p, const char *name, amqp_flags_t flag, amqp_bytes_t *dst,
		    amqp_basic_properties_t *props)
{
	json_t *s = json_object_get(p, name);

	if (!s)
		return 0;
	if (!json_is_string(s))
		return -1;
	dst->bytes = (void *)json_string_value(s);
	dst->len = json_string_length(s);
	props->_flags |= flag;
	return 0;
}

/* Fills props (pointing into rec and pool) and body (malloc'd) from a
 * record; -1 when it is malformed. */
static int record_parse(json_t *rec, amqp_basic_properties_t *props, amqp_bytes_t *body,
			amqp_pool_t *pool)
{
	json_t *p = json_object_get(rec, "properties"), *h = json_object_get(rec, "headers");
	const char *b = json_string_value(json_object_get(rec, "body"));
	json_t *n;
	long len;

	memset(props, 0, sizeof(*props));
	body->bytes = NULL;
	body->len = 0;
	if (!json_is_object(p) || !b)
		return -1;
	if (prop_str(p, "content_type", AMQP_BASIC_CONTENT_TYPE_FLAG, &props->content_type,
		     props) ||
	    prop_str(p, "content_encoding", AMQP_BASIC_CONTENT_ENCODING_FLAG,
		     &props->content_encoding, props) ||
	    prop_str(p, "message_id", AMQP_BASIC_MESSAGE_ID_FLAG, &props->message_id, props) ||
	    prop_str(p, "correlation_id", AMQP_BASIC_CORRELATION_ID_FLAG, &props->correlation_id,
		     props) ||
	    prop_str(p, "reply_to", AMQP_BASIC_REPLY_TO_FLAG, &props->reply_to, props) ||
	    prop_str(p, "expiration", AMQP_BASIC_EXPIRATION_FLAG, &props->expiration, props) ||
	    prop_str(p, "type", AMQP_BASIC_TYPE_FLAG, &props->type, props) ||
	    prop_str(p, "user_id", AMQP_BASIC_USER_ID_FLAG, &props->user_id, props) ||
	    prop_str(p, "app_id", AMQP_BASIC_APP_ID_FLAG, &props->app_id, props) ||
	    prop_str(p, "cluster_id", AMQP_BASIC_CLUSTER_ID_FLAG, &props->cluster_id, props))
		return -1;
	if ((n = json_object_get(p, "delivery_mode"))) {
		props->delivery_mode = (uint8_t)json_integer_value(n);
		props->_flags |= AMQP_BASIC_DELIVERY_MODE_FLAG;
	}
	if ((n = json_object_get(p, "priority"))) {
		props->priority = (uint8_t)json_integer_value(n);
		props->_flags |= AMQP_BASIC_PRIORITY_FLAG;
	}
	if ((n = json_object_get(p, "timestamp"))) {
		props->timestamp = (uint64_t)json_integer_value(n);
		props->_flags |= AMQP_BASIC_TIMESTAMP_FLAG;
	}
	if (h && json_array_size(h)) {
		if (table_from_json(h, &props->headers, pool))
			return -1;
		props->_flags |= AMQP_BASIC_HEADERS_FLAG;
	}
	body->bytes = malloc(strlen(b) * 3 / 4 + 3);
	if (!body->bytes)
		return -1;
	len = b64_decode(b, body->bytes);
	if (len < 0) {
		free(body->bytes);
		body->bytes = NULL;
		return -1;
	}
	body->len = (size_t)len;
	return 0;
}

/* Reads one line of fp as JSON; NULL at the end (*eof) or when malformed. */
static json_t *read_json_line(FILE *fp, char **line, size_t *cap, bool *eof)
{
	ssize_t n = getline(line, cap, fp);
	json_error_t e;

	*eof = n < 0;
	if (n < 0)
		return NULL;
	return json_loadb(*line, (size_t)n, 0, &e);
}

/* First pass: the header, every record well-formed, the trailer's count. */
static int import_check(struct replay *r, char *release, size_t rlen, long *records)
{
	char *line = NULL;
	size_t cap = 0;
	long lineno = 1, n = 0, want = -1;
	bool eof = false;
	json_t *o;
	int rc = 0;

	o = read_json_line(r->fp, &line, &cap, &eof);
	if (!o || strcmp(json_string_value(json_object_get(o, "format")) ?: "", FILE_FORMAT) != 0) {
		rc = gradeq_error(GRADEQ_ERR_INVALID, "'%s' is not a " FILE_FORMAT " file",
				  r->file);
		goto out;
	}
	if (json_integer_value(json_object_get(o, "version")) != FILE_VERSION) {
		rc = gradeq_error(GRADEQ_ERR_INVALID,
				  "'%s': version %lld is not supported (only %d)", r->file,
				  (long long)json_integer_value(json_object_get(o, "version")),
				  FILE_VERSION);
		goto out;
	}
	snprintf(release, rlen, "%s", json_string_value(json_object_get(o, "release")) ?: "");
	json_decref(o);
	for (;;) {
		amqp_basic_properties_t props;
		amqp_bytes_t body;
		amqp_pool_t pool;

		o = read_json_line(r->fp, &line, &cap, &eof);
		lineno++;
		if (eof)
			break;
		if (!o) {
			rc = gradeq_error(GRADEQ_ERR_INVALID, "%s:%ld: not JSON", r->file, lineno);
			goto out;
		}
		if (json_is_true(json_object_get(o, "end"))) {
			want = (long)json_integer_value(json_object_get(o, "records"));
			json_decref(o);
			o = NULL;
			continue;
		}
		if (want >= 0) {
			rc = gradeq_error(GRADEQ_ERR_INVALID, "%s:%ld: record after the trailer",
					  r->file, lineno);
			goto out;
		}
		init_amqp_pool(&pool, 4096);
		if (record_parse(o, &props, &body, &pool)) {
			empty_amqp_pool(&pool);
			rc = gradeq_error(GRADEQ_ERR_INVALID, "%s:%ld: malformed record", r->file,
					  lineno);
			goto out;
		}
		free(body.bytes);
		empty_amqp_pool(&pool);
		json_decref(o);
		o = NULL;
		n++;
	}
	if (want < 0 && !r->force) {
		rc = gradeq_error(GRADEQ_ERR_INVALID,
				  "'%s' has no trailer (cut short?): nothing imported; --force "
				  "imports its %ld record(s)",
				  r->file, n);
		goto out;
	}
	if (want >= 0 && want != n) {
		rc = gradeq_error(
			GRADEQ_ERR_INVALID,
			"'%s' holds %ld record(s) but its trailer says %ld: nothing imported",
			r->file, n, want);
		goto out;
	}
	*records = n;
out:
	json_decref(o);
	free(line);
	return rc;
}

/* --- targets ---------------------------------------------------------------- */

/* Makes sure the queue a release's messages go to exists: an unknown queue
 * of a release the registry knows is declared; else the release must have
 * the queue already. */
static int ensure_queue(struct replay *r, const char *release, const char *queue, bool known)
{
	struct gradeq_topology topo = gradeq_cli_topology(&r->cli);
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
static int resolve_target(struct replay *r, const char *want)
{
	char state[16], q[GRADEQ_NAME_MAX];
	bool known = true;
	int rc;

	if (!gradeq_release_name_ok(want))
		return gradeq_error(GRADEQ_ERR_INVALID, "bad release name '%s'", want);
	rc = gradeq_release_state(r->st, want, state);
	if (rc == GRADEQ_ERR_NOT_FOUND) {
		known = false;
		rc = 0;
	}
	if (rc)
		return rc;
	if (known && (strcmp(state, "retired") == 0 || strcmp(state, "draining") == 0)) {
		char promoted[80];

		rc = gradeq_release_resolve(r->st, NULL, promoted, sizeof(promoted));
		if (rc)
			return gradeq_error(rc, "release '%s' is %s and no release is promoted",
					    want, state);
		if (!r->quiet)
			fprintf(stderr,
				PROG ": release '%s' is %s: its jobs go to the promoted "
				     "release '%s'\n",
				want, state, promoted);
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

static int resolve_dead_target(struct replay *r, const char *release)
{
	char state[16];
	bool known;
	int rc;

	if (!gradeq_release_name_ok(release))
		return gradeq_error(GRADEQ_ERR_INVALID, "bad release name '%s'", release);
	rc = gradeq_release_state(r->st, release, state);
	if (rc && rc != GRADEQ_ERR_NOT_FOUND)
		return rc;
	known = rc == 0 && strcmp(state, "retired") != 0;
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
static int connect_all(struct replay *r, bool db)
{
	int rc;

	if (db) {
		rc = gradeq_cli_store(&r->cli, &r->st);
		if (rc)
			return rc;
	}
	rc = gradeq_broker_open(r->cli.cfg, r->cli.prog, r->release, GRADEQ_BROKER_CONSUME, &r->in);
	if (!rc)
		rc = gradeq_cli_broker(&r->cli, r->release, &r->out);
	if (!rc)
		rc = gradeq_broker_confirm_mode(r->out, GRADEQ_REPUBLISH_CONFIRM_WINDOW);
	return rc;
}

static void print_summary(struct replay *r, const char *verb, const char *dest)
{
	json_t *o;

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
static void connect_db_quietly(struct replay *r)
{
	if (gradeq_cli_store(&r->cli, &r->st)) {
		gradeq_store_free(r->st);
		r->st = NULL;
	}
}

static int cmd_list(struct replay *r)
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

static bool confirm(const char *question)
{
	char line[16];

	fprintf(stderr, "%s [y/N] ", question);
	fflush(stderr);
	if (!fgets(line, sizeof(line), stdin))
		return false;
	return line[0] == 'y' || line[0] == 'Y';
}

static int cmd_replay(struct replay *r)
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
		struct replay probe = *r;
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
		go = confirm(q);
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

static int cmd_purge(struct replay *r)
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

static int cmd_export(struct replay *r)
{
	json_t *o;
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
	r->fp = to_stdout ? stdout : fopen(r->file, "wx");
	if (!r->fp)
		return gradeq_error(GRADEQ_ERR_IO, "cannot create '%s': %s", r->file,
				    strerror(errno));
	rfc3339(time(NULL), at, sizeof(at));
	o = json_object();
	json_object_set_new(o, "format", json_string(FILE_FORMAT));
	json_object_set_new(o, "version", json_integer(FILE_VERSION));
	json_object_set_new(o, "release", json_string(r->release));
	json_object_set_new(o, "queue", json_string(r->queue));
	json_object_set_new(o, "exported_at", json_string(at));
	json_object_set_new(o, "exported_by", json_string(r->host));
	rc = write_line(r, o);
	json_decref(o);
	if (!rc)
		rc = scan(r, visit_export);
	if (!rc) {
		o = json_object();
		json_object_set_new(o, "format", json_string(FILE_FORMAT));
		json_object_set_new(o, "end", json_true());
		json_object_set_new(o, "records", json_integer(r->acted));
		rc = write_line(r, o);
		json_decref(o);
	}
	if (!rc && (fflush(r->fp) || (!to_stdout && fsync(fileno(r->fp)))))
		rc = gradeq_error(GRADEQ_ERR_IO, "writing '%s': %s", r->file, strerror(errno));
	if (!to_stdout && fclose(r->fp) && !rc)
		rc = gradeq_error(GRADEQ_ERR_IO, "writing '%s': %s", r->file, strerror(errno));
	r->fp = NULL;
	if (!rc) {
		if (to_stdout)
			fprintf(stderr, PROG ": exported %ld message(s)%s\n", r->acted,
				r->remove ? " and removed them" : "");
		else
			print_summary(r, r->remove ? "exported and removed" : "exported", r->file);
	}
	return rc;
}

static int cmd_import(struct replay *r)
{
	char release[80], *line = NULL;
	size_t cap = 0;
	long records = 0, done = 0;
	bool to_work = r->to_release != NULL, eof = false;
	int rc;

	r->fp = strcmp(r->file, "-") == 0 ? NULL : fopen(r->file, "r");
	if (!r->fp)
		return gradeq_error(GRADEQ_ERR_IO, "cannot read '%s': %s", r->file,
				    strcmp(r->file, "-") == 0 ? "import needs a file, not '-'"
							      : strerror(errno));
	rc = import_check(r, release, sizeof(release), &records);
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
	rewind(r->fp);
	if (getline(&line, &cap, r->fp) < 0) { /* the header */
		rc = gradeq_error(GRADEQ_ERR_IO, "reading '%s' again", r->file);
		goto out;
	}
	while (!rc && !interrupted) {
		amqp_basic_properties_t props;
		amqp_bytes_t body;
		amqp_pool_t pool;
		json_t *o = read_json_line(r->fp, &line, &cap, &eof);
		char job[64] = "";

		if (eof || !o || json_is_true(json_object_get(o, "end"))) {
			json_decref(o);
			break;
		}
		init_amqp_pool(&pool, 4096);
		if (record_parse(o, &props, &body, &pool)) {
			rc = gradeq_error(GRADEQ_ERR_INVALID, "'%s' changed while importing",
					  r->file);
		} else if (take_token(r)) {
			struct gradeq_job *j = NULL;

			if (gradeq_job_decode(body.bytes, body.len, &j, NULL, 0) == 0) {
				snprintf(job, sizeof(job), "%s", j->job_id);
				gradeq_job_free(j);
			}
			/* a purged job stays discarded (a final state) */
			if (job[0] && to_work)
				rc = job_move(r, job, "{dead}", "pending", "imported");
			if (!rc && to_work)
				rc = publish_replay(r, &props, &body);
			else if (!rc) {
				rc = gradeq_broker_publish(r->out, r->exchange, r->key, &props,
							   body.bytes, body.len);
				if (!rc)
					rc = gradeq_broker_wait_confirms(r->out,
									 GRADEQ_CONFIRM_WAIT_MS);
			}
			if (!rc)
				done++;
			r->acted = done;
			r->scanned = done;
			r->total = (uint32_t)records;
			progress(r, false);
		}
		free(body.bytes);
		empty_amqp_pool(&pool);
		json_decref(o);
	}
	progress(r, true);
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
	free(line);
	if (r->fp)
		fclose(r->fp);
	r->fp = NULL;
	return rc;
}

/* --- main -------------------------------------------------------------------- */

enum {
	OPT_TO_RELEASE = 256,
	OPT_TO_DEAD,
	OPT_COURSE,
	OPT_CLASS,
	OPT_RUN,
	OPT_OLDER,
	OPT_REASON,
	OPT_RATE,
	OPT_REMOVE,
	OPT_JSON,
};

static int usage_error(struct replay *r, const char *fmt, const char *arg)
{
	char msg[512];

	snprintf(msg, sizeof(msg), fmt, arg);
	gradeq_cli_error(&r->cli, "%s (try '" PROG " --help')", msg);
	return 2;
}

static int parse_args(struct replay *r, int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"release", required_argument, NULL, 'r'},
		{"to-release", required_argument, NULL, OPT_TO_RELEASE},
		{"to-dead", required_argument, NULL, OPT_TO_DEAD},
		{"course", required_argument, NULL, OPT_COURSE},
		{"class", required_argument, NULL, OPT_CLASS},
		{"run", required_argument, NULL, OPT_RUN},
		{"older-than", required_argument, NULL, OPT_OLDER},
		{"reason", required_argument, NULL, OPT_REASON},
		{"limit", required_argument, NULL, 'l'},
		{"rate", required_argument, NULL, OPT_RATE},
		{"dry-run", no_argument, NULL, 'n'},
		{"yes", no_argument, NULL, 'y'},
		{"force", no_argument, NULL, 'f'},
		{"remove", no_argument, NULL, OPT_REMOVE},
		{"json", no_argument, NULL, OPT_JSON},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	static const char *const names[] = {"list", "replay", "export", "import", "purge"};
	const char *cmd = NULL;
	char *end;
	int opt, npos = 0;

	r->f.older_than = -1;
	r->limit = -1;
	while ((opt = getopt_long(argc, argv, "c:r:l:nyfqhV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': r->cli.conf_path = optarg; break;
		case 'r': r->release = optarg; break;
		case OPT_TO_RELEASE: r->to_release = optarg; break;
		case OPT_TO_DEAD: r->to_dead = optarg; break;
		case OPT_COURSE:
			if (r->f.ncourses == MAX_COURSES)
				return usage_error(r, "at most %s --course filters", "64");
			r->f.courses[r->f.ncourses++] = optarg;
			break;
		case OPT_CLASS: r->f.cls = optarg; break;
		case OPT_RUN: r->f.run = optarg; break;
		case OPT_REASON: r->f.reason = optarg; break;
		case OPT_OLDER:
			r->f.older_than = parse_duration(optarg);
			if (r->f.older_than < 0)
				return usage_error(r,
						   "--older-than wants a duration like 90s, 15m, "
						   "2h or 7d, not '%s'",
						   optarg);
			break;
		case 'l':
			errno = 0;
			r->limit = strtol(optarg, &end, 10);
			if (errno || !*optarg || *end || r->limit < 0)
				return usage_error(r, "--limit wants a count, not '%s'", optarg);
			break;
		case OPT_RATE:
			errno = 0;
			r->rate = strtod(optarg, &end);
			if (errno || end == optarg || (*end && strcmp(end, "/s") != 0) ||
			    !(r->rate > 0) || r->rate > 1e6)
				return usage_error(
					r,
					"--rate wants messages a second like 50 or 50/s, "
					"not '%s'",
					optarg);
			break;
		case 'n': r->dry_run = true; break;
		case 'y': r->yes = true; break;
		case 'f': r->force = true; break;
		case OPT_REMOVE: r->remove = true; break;
		case OPT_JSON: r->json = true; break;
		case 'q': r->quiet = true; break;
		case 'h': fputs(usage, stdout); exit(0);
		case 'V': puts(PROG " " GRADEQ_VERSION); exit(0);
		default: fputs("Try '" PROG " --help'.\n", stderr); return 2;
		}
	}
	for (int i = optind; i < argc; i++) {
		if (npos == 0)
			cmd = argv[i];
		else if (npos == 1)
			r->file = argv[i];
		else
			return usage_error(r, "unexpected argument '%s'", argv[i]);
		npos++;
	}
	if (!cmd)
		return usage_error(r, "%s",
				   "a command is needed: list, replay, export, import or purge");
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(cmd, names[i]) == 0) {
			r->cmd = (enum cmd)i;
			cmd = NULL;
			break;
		}
	if (cmd)
		return usage_error(r, "unknown command '%s'", cmd);
	if ((r->cmd == CMD_EXPORT || r->cmd == CMD_IMPORT) != (r->file != NULL))
		return usage_error(r, "%s",
				   r->file ? "only export and import take a FILE"
					   : "export and import need a FILE");
	if (r->cmd != CMD_IMPORT && !r->release)
		return usage_error(r, "%s", "--release R is needed");
	if (r->release && !gradeq_release_name_ok(r->release))
		return usage_error(r, "bad release name '%s'", r->release);
	if (r->to_release && r->to_dead)
		return usage_error(r, "%s", "--to-release and --to-dead exclude each other");
	if (r->to_dead && r->cmd != CMD_IMPORT)
		return usage_error(r, "%s", "--to-dead is for import");
	if (r->to_release && r->cmd != CMD_REPLAY && r->cmd != CMD_IMPORT)
		return usage_error(r, "%s", "--to-release is for replay and import");
	if (r->remove && r->cmd != CMD_EXPORT)
		return usage_error(r, "%s", "--remove is for export");
	if (r->cmd == CMD_IMPORT && (r->f.ncourses || r->f.cls || r->f.run || r->f.reason ||
				     r->f.older_than >= 0 || r->limit >= 0))
		return usage_error(r, "%s", "import takes no filters: it imports the whole file");
	return 0;
}

int main(int argc, char **argv)
{
	struct replay r;
	struct sigaction sa;
	int rc, status;

	memset(&r, 0, sizeof(r));
	r.cli.prog = PROG;
	status = parse_args(&r, argc, argv);
	if (status)
		return status;
	if (gradeq_cli_init(&r.cli))
		return 1;
	r.tty = isatty(STDERR_FILENO);
	gethostname(r.host, sizeof(r.host) - 1);
	clock_gettime(CLOCK_MONOTONIC, &r.t0);
	if (r.release)
		gradeq_dead_queue(r.queue, r.release);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	switch (r.cmd) {
	case CMD_LIST: rc = cmd_list(&r); break;
	case CMD_REPLAY: rc = cmd_replay(&r); break;
	case CMD_EXPORT: rc = cmd_export(&r); break;
	case CMD_IMPORT: rc = cmd_import(&r); break;
	case CMD_PURGE: rc = cmd_purge(&r); break;
	default: rc = GRADEQ_ERR_INVALID; break;
	}
	fflush(stdout);
	if (rc) {
		gradeq_cli_error(&r.cli, "%s", gradeq_errmsg(rc));
		status = 1;
	} else {
		status = interrupted ? 130 : 0;
	}
	json_decref(r.jmsgs);
	gradeq_broker_free(r.in);
	gradeq_broker_free(r.out);
	gradeq_store_free(r.st);
	gradeq_cli_release(&r.cli);
	return status;
}
