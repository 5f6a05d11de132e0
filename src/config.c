/* Configuration, pgbouncer style: one table says every setting's name, type,
 * place in struct gradeq_config, default, bounds, whether a reload may
 * change it, and what it is for. A file is read into a fresh struct that is
 * handed out only once every setting in it has passed. */
#include "gradeq/config.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gradeq/job.h"
#include "gradeq/limits.h"
#include "gradeq/log.h"
#include "gradeq/parse.h"
#include "gradeq/urls.h"

enum cf_type {
	CF_STR,     /* char *; NULL when empty and 'empty_null' */
	CF_INT,     /* int from min to max */
	CF_BOOL,    /* bool */
	CF_INTLIST, /* int[max_count] and an int count at count_offset */
};

struct setting {
	const char *name;
	enum cf_type type;
	size_t offset;
	const char *def_str;
	int def_int;
	const int *def_list;
	int def_count;
	int min, max;           /* value (CF_INT) or each entry (CF_INTLIST) */
	size_t count_offset;    /* CF_INTLIST */
	int max_count;          /* CF_INTLIST */
	bool list_may_be_empty; /* CF_INTLIST: [] allowed */
	bool list_any_order;    /* CF_INTLIST: need not ascend */
	bool empty_null;        /* CF_STR: "" means unset */
	bool reloadable;        /* SIGHUP may change it */
	bool secret;            /* CF_STR: may hold a password */
	bool list;              /* CF_STR: a list of strings too, kept comma-separated */
	const char *(*check)(const char *value); /* CF_STR: NULL or what is wrong */
	const char *doc;
};

/* What a check found wrong with a list, for the caller's message
 * (configuration is loaded by one thread). */
static char list_why[300];

static const char *check_amqp_url(const char *v)
{
	struct gradeq_urls u;
	int rc = gradeq_urls_parse_amqp(v, &u, list_why, sizeof(list_why));

	gradeq_urls_release(&u);
	if (rc == GRADEQ_ERR_NOMEM)
		return "cannot be read: out of memory";
	return rc ? list_why : NULL;
}

/* Releases become parts of queue names and routing keys. */
static const char *check_release(const char *v)
{
	size_t n = strlen(v);

	if (n > GRADEQ_RELEASE_NAME_MAX)
		return "must be at most " GRADEQ_STR(GRADEQ_RELEASE_NAME_MAX) " characters";
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)v[i]) && !strchr("._-", v[i]))
			return "may contain only letters, digits, '.', '_' and '-'";
	if (n && !gradeq_release_name_ok(v))
		return "must start with a letter or digit and have no empty, 'dead', 'retry' or "
		       "'events' segment";
	return NULL;
}

/* Found now, with the file and line, rather than at the first connect. */
static const char *check_readable(const char *v)
{
	struct stat st;

	if (access(v, R_OK) != 0)
		return "names a file this user cannot read";
	if (stat(v, &st) == 0 && S_ISDIR(st.st_mode))
		return "names a directory, not a file";
	return NULL;
}

static const char *check_mgmt_url(const char *v)
{
	struct gradeq_urls u;
	int rc = gradeq_urls_split(v, &u, list_why, sizeof(list_why));

	for (int i = 0; !rc && i < u.n; i++) {
		const char *e = u.url[i], *entry = u.n > 1 ? "entry " : "";
		char num[16] = "";

		if (u.n > 1)
			snprintf(num, sizeof(num), "%d ", i + 1);
		if (strncmp(e, "http://", 7) != 0 && strncmp(e, "https://", 8) != 0) {
			snprintf(list_why, sizeof(list_why),
				 "%s%smust be a URL starting with http:// or https://", entry, num);
			rc = GRADEQ_ERR_CONFIG;
		} else if (strchr(e, '@')) {
			snprintf(list_why, sizeof(list_why),
				 "%s%smust not hold credentials: the broker user of amqp_url is "
				 "used",
				 entry, num);
			rc = GRADEQ_ERR_CONFIG;
		}
	}
	gradeq_urls_release(&u);
	if (rc == GRADEQ_ERR_NOMEM)
		return "cannot be read: out of memory";
	return rc ? list_why : NULL;
}

static const char *check_log_level(const char *v)
{
	if (gradeq_log_level_parse(v) < 0)
		return "must be one of debug, info, warn, error";
	return NULL;
}

static const char *check_read_fallback(const char *v)
{
	if (strcmp(v, "wait") != 0 && strcmp(v, "primary") != 0)
		return "must be 'wait' or 'primary'";
	return NULL;
}

static const char *check_leader_locator(const char *v)
{
	if (strcmp(v, "balanced") != 0 && strcmp(v, "client-local") != 0)
		return "must be balanced or client-local (or empty: the broker's default)";
	return NULL;
}

static const char *check_output_backend(const char *v)
{
	if (strcmp(v, "file") != 0 && strcmp(v, "s3") != 0)
		return "must be file or s3";
	return NULL;
}

static const int default_retry_tiers[] = {5, 30, 300};
static const int no_ints[] = {0};

#define OFF(member) offsetof(struct gradeq_config, member)

static const struct setting settings[] = {
	{.name = "amqp_url",
	 .type = CF_STR,
	 .offset = OFF(amqp_url),
	 .def_str = "amqp://guest:guest@127.0.0.1:5672",
	 .check = check_amqp_url,
	 .secret = true,
	 .list = true,
	 .doc = "broker URL amqp://user:pass@host:port/vhost, or a list of them (one per node "
		"of a cluster, same user and vhost); GRADEQ_AMQP_URL overrides (comma-separated)"},
	{.name = "amqp_password_file",
	 .type = CF_STR,
	 .offset = OFF(amqp_password_file),
	 .def_str = "",
	 .empty_null = true,
	 .check = check_readable,
	 .doc = "file whose first line is the broker password, replacing the URL's"},
	{.name = "amqp_cacert",
	 .type = CF_STR,
	 .offset = OFF(amqp_cacert),
	 .def_str = "",
	 .empty_null = true,
	 .check = check_readable,
	 .doc = "amqps://: CA certificates (PEM) the broker's certificate must chain to"},
	{.name = "amqp_cert",
	 .type = CF_STR,
	 .offset = OFF(amqp_cert),
	 .def_str = "",
	 .empty_null = true,
	 .check = check_readable,
	 .doc = "amqps://: client certificate (PEM), with amqp_key"},
	{.name = "amqp_key",
	 .type = CF_STR,
	 .offset = OFF(amqp_key),
	 .def_str = "",
	 .empty_null = true,
	 .check = check_readable,
	 .doc = "amqps://: the client certificate's private key (PEM)"},
	{.name = "management_url",
	 .type = CF_STR,
	 .offset = OFF(management_url),
	 .def_str = "",
	 .empty_null = true,
	 .reloadable = true,
	 .check = check_mgmt_url,
	 .list = true,
	 .doc = "RabbitMQ management API for unacked counts in status, or a list (the next is "
		"tried when one cannot be reached); GRADEQ_MGMT_URL overrides (comma-separated)"},
	{.name = "pg_dsn",
	 .type = CF_STR,
	 .offset = OFF(pg_dsn),
	 .def_str = "",
	 .secret = true,
	 .doc = "libpq conninfo; empty uses the PG* environment; GRADEQ_PG_DSN overrides"},
	{.name = "pg_read_dsn",
	 .type = CF_STR,
	 .offset = OFF(pg_read_dsn),
	 .def_str = "",
	 .empty_null = true,
	 .secret = true,
	 .doc = "libpq conninfo of a hot standby for course loads and score reads; empty = the primary"},
	{.name = "max_read_lag_ms",
	 .type = CF_INT,
	 .offset = OFF(max_read_lag_ms),
	 .def_int = 2000,
	 .min = 0,
	 .max = 3600000,
	 .reloadable = true,
	 .doc = "ms a job waits for the standby to replay the primary's WAL as of the job's start"},
	{.name = "read_fallback",
	 .type = CF_STR,
	 .offset = OFF(read_fallback),
	 .def_str = "primary",
	 .check = check_read_fallback,
	 .reloadable = true,
	 .doc = "standby still behind after max_read_lag_ms: 'primary' reads there, 'wait' waits"},
	{.name = "read_wait_max_s",
	 .type = CF_INT,
	 .offset = OFF(read_wait_max_s),
	 .def_int = 300,
	 .min = 1,
	 .max = 86400,
	 .reloadable = true,
	 .doc = "read_fallback wait: seconds before the job goes to a retry tier"},
	{.name = "release",
	 .type = CF_STR,
	 .offset = OFF(release),
	 .def_str = "",
	 .empty_null = true,
	 .check = check_release,
	 .reloadable = false,
	 .doc = "release the programs work on; empty means the promoted one"},
	{.name = "heartbeat",
	 .type = CF_INT,
	 .offset = OFF(heartbeat),
	 .def_int = 60,
	 .min = 0,
	 .max = 65535,
	 .doc = "AMQP heartbeat in seconds, 0 turns it off"},
	{.name = "reconnect_max_ms",
	 .type = CF_INT,
	 .offset = OFF(reconnect_max_ms),
	 .def_int = 5000,
	 .min = 100,
	 .max = 600000,
	 .reloadable = true,
	 .doc = "cap of the jittered backoff between reconnects to the broker and the "
		"database (the first, to the next node, is immediate)"},
	{.name = "prefetch",
	 .type = CF_INT,
	 .offset = OFF(prefetch),
	 .def_int = 1,
	 .min = 1,
	 .max = 65535,
	 .doc = "unacknowledged jobs a consumer may hold"},
	{.name = "group_jobs",
	 .type = CF_INT,
	 .offset = OFF(group_jobs),
	 .def_int = 32,
	 .min = 1,
	 .max = GRADEQ_GROUP_MAX_JOBS,
	 .doc = "small jobs in hand a consumer writes in one transaction and acks "
		"together after its commit; 1 = one job a transaction"},
	{.name = "group_learners",
	 .type = CF_INT,
	 .offset = OFF(group_learners),
	 .def_int = 100,
	 .min = 1,
	 .max = GRADEQ_JOB_MAX_USERS,
	 .doc = "a job of at most this many learners is small: it may go in a group (of "
		"at most 1000 learners)"},
	{.name = "batch_size",
	 .type = CF_INT,
	 .offset = OFF(batch_size),
	 .def_int = 100,
	 .min = 1,
	 .max = GRADEQ_JOB_MAX_USERS,
	 .reloadable = true,
	 .doc = "learners per job the producer cuts"},
	{.name = "confirm_window",
	 .type = CF_INT,
	 .offset = OFF(confirm_window),
	 .def_int = 256,
	 .min = 1,
	 .max = 65535,
	 .reloadable = true,
	 .doc = "published jobs awaiting broker confirmation at once"},
	{.name = "delivery_limit",
	 .type = CF_INT,
	 .offset = OFF(delivery_limit),
	 .def_int = 5,
	 .min = 1,
	 .max = 1000,
	 .doc = "x-delivery-limit of the work queue (stops jobs that crash consumers)"},
	{.name = "retry_tiers",
	 .type = CF_INTLIST,
	 .offset = OFF(retry_tiers),
	 .count_offset = OFF(nretry_tiers),
	 .def_list = default_retry_tiers,
	 .def_count = 3,
	 .min = 1,
	 .max = 86400,
	 .max_count = GRADEQ_MAX_RETRY_TIERS,
	 .doc = "seconds of each retry tier, ascending"},
	{.name = "quorum_group_size",
	 .type = CF_INT,
	 .offset = OFF(quorum_group_size),
	 .def_int = GRADEQ_QUORUM_GROUP_SIZE_DEFAULT,
	 .min = 1,
	 .max = GRADEQ_QUORUM_GROUP_SIZE_MAX,
	 .doc = "nodes that hold each new queue (x-quorum-initial-group-size)"},
	{.name = "queue_leader_locator",
	 .type = CF_STR,
	 .offset = OFF(queue_leader_locator),
	 .def_str = "balanced",
	 .empty_null = true,
	 .check = check_leader_locator,
	 .doc = "where new queues get their leader: balanced or client-local"},
	{.name = "course_cache",
	 .type = CF_INT,
	 .offset = OFF(course_cache),
	 .def_int = 16,
	 .min = 1,
	 .max = 4096,
	 .doc = "course versions a consumer keeps loaded"},
	{.name = "statement_timeout_ms",
	 .type = CF_INT,
	 .offset = OFF(statement_timeout_ms),
	 .def_int = 300000,
	 .min = 0,
	 .max = 86400000,
	 .reloadable = true,
	 .doc = "PostgreSQL statement_timeout in milliseconds, 0 = none"},
	{.name = "job_events",
	 .type = CF_BOOL,
	 .offset = OFF(job_events),
	 .def_int = 1,
	 .reloadable = true,
	 .doc = "publish job.<state> events to gradeq.events"},
	{.name = "retention_days",
	 .type = CF_INT,
	 .offset = OFF(retention_days),
	 .def_int = 90,
	 .min = 1,
	 .max = 36500,
	 .reloadable = true,
	 .doc = "history purge-history keeps"},
	{.name = "throttle_backoff",
	 .type = CF_BOOL,
	 .offset = OFF(throttle_backoff),
	 .def_int = 1,
	 .reloadable = true,
	 .doc = "consumers slow down while the database shows distress (AIMD)"},
	{.name = "distress_interval_s",
	 .type = CF_INT,
	 .offset = OFF(distress_interval_s),
	 .def_int = 5,
	 .min = 1,
	 .max = 3600,
	 .reloadable = true,
	 .doc = "seconds between health samples and back-off steps"},
	{.name = "distress_lock_waiters",
	 .type = CF_INT,
	 .offset = OFF(distress_lock_waiters),
	 .def_int = 1,
	 .min = 0,
	 .max = 100000,
	 .reloadable = true,
	 .doc = "sessions waiting for locks on grades_* tables that mean distress, 0 = ignored"},
	{.name = "distress_backends_pct",
	 .type = CF_INT,
	 .offset = OFF(distress_backends_pct),
	 .def_int = 80,
	 .min = 0,
	 .max = 100,
	 .reloadable = true,
	 .doc = "active backends as % of max_connections that mean distress, 0 = ignored"},
	{.name = "distress_latency_factor",
	 .type = CF_INT,
	 .offset = OFF(distress_latency_factor),
	 .def_int = 5,
	 .min = 0,
	 .max = 1000,
	 .reloadable = true,
	 .doc = "a job's read or write ms a learner above this x its course size's baseline means distress, 0 = ignored"},
	{.name = "distress_latency_samples",
	 .type = CF_INT,
	 .offset = OFF(distress_latency_samples),
	 .def_int = 5,
	 .min = 1,
	 .max = 100000,
	 .reloadable = true,
	 .doc = "jobs of a course size before its latency baseline counts"},
	{.name = "distress_latency_min_ms",
	 .type = CF_INT,
	 .offset = OFF(distress_latency_min_ms),
	 .def_int = 250,
	 .min = 0,
	 .max = 86400000,
	 .reloadable = true,
	 .doc = "a job's score read or grade write shorter than this is never slow"},
	{.name = "max_replica_lag_ms",
	 .type = CF_INT,
	 .offset = OFF(max_replica_lag_ms),
	 .def_int = 1000,
	 .min = 0,
	 .max = 3600000,
	 .reloadable = true,
	 .doc = "with pg_read_dsn: a job waiting this long for the standby (or falling back) means "
		"distress, 0 = ignored"},
	{.name = "backoff_factor_pct",
	 .type = CF_INT,
	 .offset = OFF(backoff_factor_pct),
	 .def_int = 50,
	 .min = 1,
	 .max = 99,
	 .reloadable = true,
	 .doc = "a back-off step keeps this % of the rate (multiplicative decrease)"},
	{.name = "backoff_increase",
	 .type = CF_INT,
	 .offset = OFF(backoff_increase),
	 .def_int = 20,
	 .min = 1,
	 .max = 1000000,
	 .reloadable = true,
	 .doc = "learners/s a healthy step adds back (additive increase)"},
	{.name = "backoff_min_rate",
	 .type = CF_INT,
	 .offset = OFF(backoff_min_rate),
	 .def_int = 5,
	 .min = 1,
	 .max = 1000000,
	 .reloadable = true,
	 .doc = "learners/s a consumer never backs off below"},
	{.name = "log_level",
	 .type = CF_STR,
	 .offset = OFF(log_level),
	 .def_str = "info",
	 .check = check_log_level,
	 .reloadable = true,
	 .doc = "debug, info, warn or error"},
	{.name = "log_file",
	 .type = CF_STR,
	 .offset = OFF(log_file),
	 .def_str = "",
	 .reloadable = true,
	 .doc = "log file; empty logs to stderr (journald)"},
	{.name = "web_listen",
	 .type = CF_STR,
	 .offset = OFF(web_listen),
	 .def_str = "",
	 .empty_null = true,
	 .doc = "gradeq-web: HOST:PORT to listen on; empty means 127.0.0.1:8470"},
	{.name = "web_users",
	 .type = CF_STR,
	 .offset = OFF(web_users),
	 .def_str = "",
	 .empty_null = true,
	 .check = check_readable,
	 .doc = "gradeq-web: users file, one name:role:hash line each (role viewer or operator)"},
	{.name = "web_tls_cert",
	 .type = CF_STR,
	 .offset = OFF(web_tls_cert),
	 .def_str = "",
	 .empty_null = true,
	 .check = check_readable,
	 .doc = "gradeq-web: certificate (PEM) to serve HTTPS with, with web_tls_key"},
	{.name = "web_tls_key",
	 .type = CF_STR,
	 .offset = OFF(web_tls_key),
	 .def_str = "",
	 .empty_null = true,
	 .check = check_readable,
	 .doc = "gradeq-web: the certificate's private key (PEM)"},
	{.name = "web_trusted_header",
	 .type = CF_STR,
	 .offset = OFF(web_trusted_header),
	 .def_str = "",
	 .empty_null = true,
	 .doc = "gradeq-web: header naming the user, set by a reverse proxy (with "
		"web_trusted_proxy)"},
	{.name = "web_trusted_proxy",
	 .type = CF_STR,
	 .offset = OFF(web_trusted_proxy),
	 .def_str = "",
	 .empty_null = true,
	 .doc = "gradeq-web: the reverse proxy's address; web_trusted_header counts from it "
		"only"},
	{.name = "output_backend",
	 .type = CF_STR,
	 .offset = OFF(output_backend),
	 .def_str = "file",
	 .check = check_output_backend,
	 .doc = "where job outputs (grade reports) are stored: file (a directory) or s3 (a "
		"bucket)"},
	{.name = "output_dir",
	 .type = CF_STR,
	 .offset = OFF(output_dir),
	 .def_str = "/var/lib/gradeq/outputs",
	 .doc = "file backend: the directory of job outputs; GRADEQ_OUTPUT_DIR overrides"},
	{.name = "s3_endpoint",
	 .type = CF_STR,
	 .offset = OFF(s3_endpoint),
	 .def_str = "",
	 .empty_null = true,
	 .doc = "s3 backend: the endpoint URL, path-style (https://s3.eu-west-1.amazonaws.com)"},
	{.name = "s3_bucket",
	 .type = CF_STR,
	 .offset = OFF(s3_bucket),
	 .def_str = "",
	 .empty_null = true,
	 .doc = "s3 backend: the bucket that holds job outputs"},
	{.name = "s3_region",
	 .type = CF_STR,
	 .offset = OFF(s3_region),
	 .def_str = "us-east-1",
	 .doc = "s3 backend: the region requests are signed for (SigV4)"},
	{.name = "s3_access_key_file",
	 .type = CF_STR,
	 .offset = OFF(s3_access_key_file),
	 .def_str = "",
	 .empty_null = true,
	 .check = check_readable,
	 .doc = "s3 backend: file holding the access key id"},
	{.name = "s3_secret_key_file",
	 .type = CF_STR,
	 .offset = OFF(s3_secret_key_file),
	 .def_str = "",
	 .empty_null = true,
	 .check = check_readable,
	 .doc = "s3 backend: file holding the secret access key (never on argv or in logs)"},
	{.name = "s3_link_ttl_s",
	 .type = CF_INT,
	 .offset = OFF(s3_link_ttl_s),
	 .def_int = 300,
	 .min = 1,
	 .max = 604800,
	 .doc = "s3 backend: seconds a presigned GET that gradeq-web redirects to stays valid"},
	{.name = "output_operators",
	 .type = CF_INTLIST,
	 .offset = OFF(output_operators),
	 .count_offset = OFF(noutput_operators),
	 .def_list = no_ints,
	 .def_count = 0,
	 .min = 1,
	 .max = INT32_MAX,
	 .max_count = GRADEQ_MAX_OUTPUT_OPERATORS,
	 .list_may_be_empty = true,
	 .list_any_order = true,
	 .doc = "user ids of global operators, who may read every course's outputs "
		"(gradeq-report url, gradeq-web's links) besides each course team"},
	{.name = "output_link_key_file",
	 .type = CF_STR,
	 .offset = OFF(output_link_key_file),
	 .def_str = "",
	 .empty_null = true,
	 .check = check_readable,
	 .doc = "file holding the key (32 bytes or more) that signs output download links"},
	{.name = "output_link_base",
	 .type = CF_STR,
	 .offset = OFF(output_link_base),
	 .def_str = "http://127.0.0.1:8470",
	 .doc = "the absolute URL of gradeq-web that download links start with"},
	{.name = "web_session_idle_s",
	 .type = CF_INT,
	 .offset = OFF(web_session_idle_s),
	 .def_int = 1800,
	 .min = 60,
	 .max = 86400 * 7,
	 .doc = "gradeq-web: seconds after which an unused session ends"},
};

#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

static char **str_at(struct gradeq_config *cfg, const struct setting *s)
{
	return (char **)(void *)((char *)cfg + s->offset);
}

static int *int_at(struct gradeq_config *cfg, const struct setting *s)
{
	return (int *)(void *)((char *)cfg + s->offset);
}

static bool *bool_at(struct gradeq_config *cfg, const struct setting *s)
{
	return (bool *)(void *)((char *)cfg + s->offset);
}

static int *count_at(struct gradeq_config *cfg, const struct setting *s)
{
	return (int *)(void *)((char *)cfg + s->count_offset);
}

static int cfg_fail(char *err, size_t errlen, const char *fmt, ...) GRADEQ_PRINTF(3, 4);

static int cfg_fail(char *err, size_t errlen, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (err && errlen)
		snprintf(err, errlen, "%s", msg);
	return gradeq_error(GRADEQ_ERR_CONFIG, "%s", msg);
}

/* Replaces a string setting; returns -1 only when out of memory. */
static int set_str(struct gradeq_config *cfg, const struct setting *s, const char *v)
{
	char **dst = str_at(cfg, s);
	char *copy = NULL;

	if (!(s->empty_null && !*v)) {
		copy = strdup(v);
		if (!copy)
			return -1;
	}
	free(*dst);
	*dst = copy;
	return 0;
}

struct gradeq_config *gradeq_config_defaults(void)
{
	struct gradeq_config *cfg = calloc(1, sizeof(*cfg));

	if (!cfg)
		return NULL;
	for (size_t i = 0; i < NSETTINGS; i++) {
		const struct setting *s = &settings[i];

		switch (s->type) {
		case CF_STR:
			if (set_str(cfg, s, s->def_str) < 0)
				goto fail;
			break;
		case CF_INT: *int_at(cfg, s) = s->def_int; break;
		case CF_BOOL: *bool_at(cfg, s) = s->def_int != 0; break;
		case CF_INTLIST:
			if (s->def_count)
				memcpy(int_at(cfg, s), s->def_list,
				       (size_t)s->def_count * sizeof(int));
			*count_at(cfg, s) = s->def_count;
			break;
		}
	}
	return cfg;
fail:
	gradeq_config_free(cfg);
	return NULL;
}

void gradeq_config_free(struct gradeq_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < NSETTINGS; i++)
		if (settings[i].type == CF_STR)
			free(*str_at(cfg, &settings[i]));
	free(cfg->path);
	free(cfg);
}

/* ---- reading a file ---- */

static bool has_password(const char *s);

/* Where a setting was written, for messages: "file:line". */
struct where {
	const char *file;
	int line;
};

static struct where where_of(const config_setting_t *cs, const char *path)
{
	struct where w;

	w.file = config_setting_source_file(cs);
	if (!w.file)
		w.file = path;
	w.line = (int)config_setting_source_line(cs);
	return w;
}

static int apply_list(struct gradeq_config *cfg, const struct setting *s,
		      const config_setting_t *cs, struct where w, char *err, size_t errlen)
{
	int n, vals[GRADEQ_MAX_OUTPUT_OPERATORS > GRADEQ_MAX_RETRY_TIERS
			    ? GRADEQ_MAX_OUTPUT_OPERATORS
			    : GRADEQ_MAX_RETRY_TIERS];
	const int least = s->list_may_be_empty ? 0 : 1;
	const int most = s->max_count < (int)(sizeof(vals) / sizeof(vals[0]))
				 ? s->max_count
				 : (int)(sizeof(vals) / sizeof(vals[0]));

	if (config_setting_type(cs) != CONFIG_TYPE_ARRAY &&
	    config_setting_type(cs) != CONFIG_TYPE_LIST)
		return cfg_fail(err, errlen,
				"%s:%d: '%s' must be a list of integers, e.g. [5, 30, 300]", w.file,
				w.line, s->name);
	n = config_setting_length(cs);
	if (n < least || n > most)
		return cfg_fail(err, errlen, "%s:%d: '%s' must have from %d to %d entries, not %d",
				w.file, w.line, s->name, least, most, n);
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(cs, (unsigned int)i);
		long long v;

		if (config_setting_type(e) != CONFIG_TYPE_INT &&
		    config_setting_type(e) != CONFIG_TYPE_INT64)
			return cfg_fail(err, errlen, "%s:%d: '%s' entry %d must be an integer",
					w.file, w.line, s->name, i + 1);
		v = config_setting_get_int64(e);
		if (v < s->min || v > s->max)
			return cfg_fail(err, errlen, "%s:%d: '%s' entry %d must be from %d to %d",
					w.file, w.line, s->name, i + 1, s->min, s->max);
		vals[i] = (int)v;
		if (i > 0 && vals[i] <= vals[i - 1] && !s->list_any_order)
			return cfg_fail(err, errlen, "%s:%d: '%s' must be ascending (%d after %d)",
					w.file, w.line, s->name, vals[i], vals[i - 1]);
	}
	memcpy(int_at(cfg, s), vals, (size_t)n * sizeof(int));
	*count_at(cfg, s) = n;
	return 0;
}

/* A list setting written as a list: ["amqp://n1/", "amqp://n2/"], kept
 * as one comma-separated string (the form GRADEQ_AMQP_URL takes too). */
static int apply_str_list(struct gradeq_config *cfg, const struct setting *s,
			  const config_setting_t *cs, struct where w, char *err, size_t errlen)
{
	int n = config_setting_length(cs);
	size_t len = 1;
	char *joined;
	const char *why;
	int rc;

	if (n < 1)
		return cfg_fail(err, errlen, "%s:%d: '%s' is an empty list", w.file, w.line,
				s->name);
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(cs, (unsigned int)i);
		const char *v = config_setting_get_string(e);

		if (config_setting_type(e) != CONFIG_TYPE_STRING || !v)
			return cfg_fail(err, errlen, "%s:%d: '%s' entry %d must be a string",
					w.file, w.line, s->name, i + 1);
		if (strchr(v, ','))
			return cfg_fail(err, errlen,
					"%s:%d: '%s' entry %d holds a ',' (percent-encode it as "
					"%%2C)",
					w.file, w.line, s->name, i + 1);
		len += strlen(v) + 2;
	}
	joined = calloc(1, len);
	if (!joined)
		return gradeq_error(GRADEQ_ERR_NOMEM, "out of memory reading configuration");
	for (int i = 0, at = 0; i < n; i++)
		at += snprintf(joined + at, len - (size_t)at, "%s%s", i ? ", " : "",
			       config_setting_get_string(config_setting_get_elem(cs, (unsigned)i)));
	if (s->check && (why = s->check(joined)) != NULL)
		rc = cfg_fail(err, errlen, "%s:%d: '%s' %s", w.file, w.line, s->name, why);
	else
		rc = set_str(cfg, s, joined) < 0
			     ? gradeq_error(GRADEQ_ERR_NOMEM, "out of memory reading configuration")
			     : 0;
	explicit_bzero(joined, strlen(joined));
	free(joined);
	return rc;
}

static int apply_setting(struct gradeq_config *cfg, const struct setting *s,
			 const config_setting_t *cs, struct where w, char *err, size_t errlen)
{
	int type = config_setting_type(cs);
	const char *str, *why;
	long long v;

	switch (s->type) {
	case CF_STR:
		if (s->list && (type == CONFIG_TYPE_LIST || type == CONFIG_TYPE_ARRAY))
			return apply_str_list(cfg, s, cs, w, err, errlen);
		if (type != CONFIG_TYPE_STRING)
			return cfg_fail(err, errlen,
					"%s:%d: '%s' must be a string in double quotes%s", w.file,
					w.line, s->name, s->list ? " or a list of them" : "");
		str = config_setting_get_string(cs);
		if (s->check && *str && (why = s->check(str)) != NULL)
			return cfg_fail(err, errlen, "%s:%d: '%s' %s", w.file, w.line, s->name,
					why);
		if (set_str(cfg, s, str) < 0)
			return gradeq_error(GRADEQ_ERR_NOMEM,
					    "out of memory reading configuration");
		return 0;
	case CF_INT:
		if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64)
			goto bad_int;
		v = config_setting_get_int64(cs);
		if (v < s->min || v > s->max)
			goto bad_int;
		*int_at(cfg, s) = (int)v;
		return 0;
	case CF_BOOL:
		if (type != CONFIG_TYPE_BOOL)
			return cfg_fail(err, errlen, "%s:%d: '%s' must be true or false", w.file,
					w.line, s->name);
		*bool_at(cfg, s) = config_setting_get_bool(cs) != 0;
		return 0;
	case CF_INTLIST: return apply_list(cfg, s, cs, w, err, errlen);
	}
	return cfg_fail(err, errlen, "%s:%d: '%s' has no type", w.file, w.line, s->name);
bad_int:
	return cfg_fail(err, errlen, "%s:%d: '%s' must be an integer from %d to %d", w.file, w.line,
			s->name, s->min, s->max);
}

/* Edit distance for "did you mean"; names are short. */
static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), prev[64], cur[64];

	if (la >= 64 || lb >= 64)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
			size_t del = prev[j] + 1, ins = cur[j - 1] + 1;

			cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
		}
		memcpy(prev, cur, (lb + 1) * sizeof(size_t));
	}
	return prev[lb];
}

static const struct setting *setting_find(const char *name)
{
	for (size_t i = 0; i < NSETTINGS; i++)
		if (strcmp(settings[i].name, name) == 0)
			return &settings[i];
	return NULL;
}

static int unknown_setting(const char *name, struct where w, char *err, size_t errlen)
{
	const char *best = NULL;
	size_t bestd = 3; /* suggest only close names */

	for (size_t i = 0; i < NSETTINGS; i++) {
		size_t d = distance(name, settings[i].name);

		if (d < bestd) {
			bestd = d;
			best = settings[i].name;
		}
	}
	if (best)
		return cfg_fail(err, errlen, "%s:%d: unknown setting '%s' (did you mean '%s'?)",
				w.file, w.line, name, best);
	return cfg_fail(err, errlen, "%s:%d: unknown setting '%s'", w.file, w.line, name);
}

/* Resolves @include relative to the file that includes it. */
static void set_include_dir(config_t *lc, const char *path, char *dir, size_t dirlen)
{
	const char *slash = strrchr(path, '/');

	if (!slash || (size_t)(slash - path) >= dirlen)
		return;
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
	config_set_include_dir(lc, dir[0] ? dir : "/");
}

/* Checks that path is a readable regular file; *mode gets its mode. */
static int check_file(const char *path, mode_t *mode, char *err, size_t errlen)
{
	struct stat st;
	FILE *fp = fopen(path, "r");
	int ret = 0;

	if (!fp)
		return cfg_fail(err, errlen, "%s: cannot read: %s", path, strerror(errno));
	if (fstat(fileno(fp), &st) < 0)
		ret = cfg_fail(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		ret = cfg_fail(err, errlen, "%s: not a regular file", path);
	else
		*mode = st.st_mode;
	fclose(fp);
	return ret;
}

/* *secret is set when the file itself writes a password. */
static int read_file(struct gradeq_config *cfg, const char *path, bool *secret, char *err,
		     size_t errlen)
{
	config_t lc;
	config_setting_t *root;
	char dir[4096];
	int ret = 0;

	config_init(&lc);
	set_include_dir(&lc, path, dir, sizeof(dir));
	if (config_read_file(&lc, path) != CONFIG_TRUE) {
		const char *file = config_error_file(&lc);

		if (config_error_type(&lc) == CONFIG_ERR_FILE_IO)
			ret = cfg_fail(err, errlen, "%s: cannot read: %s", file ? file : path,
				       config_error_text(&lc));
		else
			ret = cfg_fail(err, errlen, "%s:%d: %s", file ? file : path,
				       config_error_line(&lc), config_error_text(&lc));
		goto out;
	}
	root = config_root_setting(&lc);
	for (int i = 0; i < config_setting_length(root); i++) {
		config_setting_t *cs = config_setting_get_elem(root, (unsigned int)i);
		const char *name = config_setting_name(cs);
		struct where w = where_of(cs, path);
		const struct setting *s = setting_find(name ? name : "");

		if (!s) {
			ret = unknown_setting(name ? name : "", w, err, errlen);
			goto out;
		}
		ret = apply_setting(cfg, s, cs, w, err, errlen);
		if (ret < 0)
			goto out;
		if (s->secret && has_password(*str_at(cfg, s)))
			*secret = true;
	}
out:
	config_destroy(&lc);
	return ret;
}

/* ---- passwords ---- */

/* A bounded writer: never overflows, always NUL-terminated. */
struct out {
	char *buf;
	size_t len, n;
};

static void put(struct out *o, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (o->n + 1 < o->len)
			o->buf[o->n] = s[i];
		o->n++;
	}
	if (o->len)
		o->buf[o->n < o->len ? o->n : o->len - 1] = '\0';
}

/* Splits scheme://[user[:password]@]rest. The userinfo ends at the last '@'
 * so that a password with an unencoded '/' or '@' is still found. */
struct url_parts {
	const char *user, *pass, *rest; /* pass NULL when none */
	size_t ulen, plen;
	size_t prefix; /* length of "scheme://" */
};

static bool url_split(const char *url, struct url_parts *u)
{
	const char *a = strstr(url, "://"), *at;

	if (!a)
		return false;
	a += 3;
	memset(u, 0, sizeof(*u));
	u->prefix = (size_t)(a - url);
	u->rest = a;
	at = strrchr(a, '@');
	if (!at)
		return true;
	u->user = a;
	u->rest = at + 1;
	u->pass = memchr(a, ':', (size_t)(at - a));
	if (u->pass) {
		u->ulen = (size_t)(u->pass - a);
		u->pass++;
		u->plen = (size_t)(at - u->pass);
	} else {
		u->ulen = (size_t)(at - a);
	}
	return true;
}

/* libpq key=value conninfo: writes it with password values masked. */
static bool mask_conninfo(const char *p, struct out *o)
{
	bool masked = false;

	while (*p) {
		const char *k, *v;
		size_t klen;

		for (; isspace((unsigned char)*p); p++)
			put(o, p, 1);
		if (!*p)
			break;
		for (k = p; *p && *p != '=' && !isspace((unsigned char)*p); p++)
			;
		klen = (size_t)(p - k);
		put(o, k, klen);
		for (; isspace((unsigned char)*p); p++)
			put(o, p, 1);
		if (*p != '=') {
			/* libpq would refuse it; show nothing that may be secret */
			if (*p)
				put(o, "****", 4);
			return true;
		}
		put(o, p++, 1);
		for (; isspace((unsigned char)*p); p++)
			put(o, p, 1);
		v = p;
		if (*p == '\'') {
			for (p++; *p && *p != '\''; p++)
				if (*p == '\\' && p[1])
					p++;
			if (*p)
				p++;
		} else {
			for (; *p && !isspace((unsigned char)*p); p++)
				if (*p == '\\' && p[1])
					p++;
		}
		if (klen == 8 && strncmp(k, "password", 8) == 0) {
			put(o, "****", 4);
			masked = true;
		} else {
			put(o, v, (size_t)(p - v));
		}
	}
	return masked;
}

/* The rest of a URL after its userinfo: query parameters named password
 * (postgresql://h/db?password=...) masked. */
static bool mask_query(const char *s, struct out *o)
{
	const char *q = strchr(s, '?');
	bool masked = false;

	if (!q) {
		put(o, s, strlen(s));
		return false;
	}
	put(o, s, (size_t)(q - s) + 1);
	for (const char *p = q + 1; *p;) {
		size_t n = strcspn(p, "&");

		if (n >= 9 && strncmp(p, "password=", 9) == 0) {
			put(o, "password=****", 13);
			masked = true;
		} else {
			put(o, p, n);
		}
		p += n;
		if (*p)
			put(o, p++, 1);
	}
	return masked;
}

static bool mask_into(const char *s, struct out *o)
{
	struct url_parts u;

	if (!s)
		s = "";
	if (o->len)
		o->buf[0] = '\0';
	if (!url_split(s, &u))
		return mask_conninfo(s, o);
	if (!u.pass) {
		put(o, s, u.prefix);
		return mask_query(s + u.prefix, o);
	}
	put(o, s, (size_t)(u.pass - s));
	put(o, "****@", 5);
	mask_query(u.rest, o);
	return true;
}

const char *gradeq_config_mask(const char *url_or_dsn, char *buf, size_t len)
{
	struct out o = {buf, len, 0};

	mask_into(url_or_dsn, &o);
	return len ? buf : "";
}

static bool has_password(const char *s)
{
	struct out o = {NULL, 0, 0};

	return mask_into(s, &o);
}

static void warn_world_readable(const char *what, const char *path)
{
	log_warn("msg=\"%s is readable by every user and holds a password; chmod o-r it\" file=%s",
		 what, path);
}

/* Reads the first line of a password file into a malloc'd string. */
static int read_password(const char *path, char **out)
{
	struct stat st;
	FILE *fp = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int ret = 0;

	*out = NULL;
	if (!fp)
		return gradeq_error(GRADEQ_ERR_IO, "amqp_password_file '%s': %s", path,
				    strerror(errno));
	if (fstat(fileno(fp), &st) != 0)
		memset(&st, 0, sizeof(st));
	if (S_ISDIR(st.st_mode)) {
		ret = gradeq_error(GRADEQ_ERR_IO,
				   "amqp_password_file '%s' is a directory, not a file", path);
		goto out;
	}
	if (st.st_mode & S_IROTH)
		warn_world_readable("password file", path);
	errno = 0;
	n = getline(&line, &cap, fp);
	if (n < 0 && ferror(fp)) {
		ret = gradeq_error(GRADEQ_ERR_IO, "amqp_password_file '%s' cannot be read: %s",
				   path, strerror(errno ? errno : EIO));
		goto out;
	}
	if (n < 0) {
		ret = gradeq_error(
			GRADEQ_ERR_IO,
			"amqp_password_file '%s' is empty: its first line is the password", path);
		goto out;
	}
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	if (n == 0) {
		ret = gradeq_error(
			GRADEQ_ERR_IO,
			"amqp_password_file '%s' has an empty first line: it is the password",
			path);
		goto out;
	}
	for (ssize_t i = 0; i < n; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f) {
			/* a NUL would cut the password short without a word */
			ret = gradeq_error(
				GRADEQ_ERR_IO,
				"amqp_password_file '%s' holds a control character or NUL "
				"byte in its first line (byte %zd): is it a binary file?",
				path, i + 1);
			goto out;
		}
	*out = line;
	line = NULL;
out:
	if (line) {
		explicit_bzero(line, cap);
		free(line);
	}
	fclose(fp);
	return ret;
}

/* Percent-encodes all but RFC 3986 unreserved characters. */
static void put_encoded(struct out *o, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (isalnum(c) || strchr("-._~", c)) {
			put(o, s, 1);
		} else {
			char e[3] = {'%', hex[c >> 4], hex[c & 15]};

			put(o, e, 3);
		}
	}
}

int gradeq_config_amqp_url(const struct gradeq_config *cfg, char **url)
{
	struct gradeq_urls list;
	struct out o = {NULL, 0, 0};
	char *pass = NULL;
	int ret;

	*url = NULL;
	if (!cfg->amqp_password_file || !*cfg->amqp_password_file) {
		*url = strdup(cfg->amqp_url);
		return *url ? 0 : gradeq_error(GRADEQ_ERR_NOMEM, "out of memory");
	}
	ret = gradeq_urls_split(cfg->amqp_url, &list, NULL, 0);
	if (ret == GRADEQ_ERR_NOMEM)
		goto out;
	if (ret) {
		ret = gradeq_error(GRADEQ_ERR_CONFIG, "amqp_url is not a URL");
		goto out;
	}
	ret = read_password(cfg->amqp_password_file, &pass);
	if (ret < 0)
		goto out;
	o.len = strlen(cfg->amqp_url) + (size_t)list.n * (3 * strlen(pass) + 16) + 1;
	o.buf = malloc(o.len);
	if (!o.buf) {
		ret = gradeq_error(GRADEQ_ERR_NOMEM, "out of memory");
		goto out;
	}
	o.buf[0] = '\0';
	/* each entry with the file's password, the list comma-separated */
	for (int i = 0; i < list.n; i++) {
		struct url_parts u;

		if (!url_split(list.url[i], &u)) {
			ret = gradeq_error(GRADEQ_ERR_CONFIG, "amqp_url is not a URL");
			goto out;
		}
		if (i)
			put(&o, ",", 1);
		put(&o, list.url[i], u.prefix);
		if (u.user && u.ulen)
			put(&o, u.user, u.ulen);
		else
			put(&o, "guest", 5); /* rabbitmq-c's default user */
		put(&o, ":", 1);
		put_encoded(&o, pass);
		put(&o, "@", 1);
		put(&o, u.rest, strlen(u.rest));
	}
	*url = o.buf;
	o.buf = NULL;
	ret = 0;
out:
	if (o.buf) {
		explicit_bzero(o.buf, o.len);
		free(o.buf);
	}
	if (pass) {
		explicit_bzero(pass, strlen(pass));
		free(pass);
	}
	gradeq_urls_release(&list);
	return ret;
}

/* ---- loading ---- */

static int apply_env(struct gradeq_config *cfg, char *err, size_t errlen)
{
	static const struct {
		const char *env, *setting;
	} overrides[] = {
		{"GRADEQ_AMQP_URL", "amqp_url"},
		{"GRADEQ_PG_DSN", "pg_dsn"},
		{"GRADEQ_MGMT_URL", "management_url"},
		{"GRADEQ_OUTPUT_DIR", "output_dir"},
	};

	for (size_t i = 0; i < sizeof(overrides) / sizeof(overrides[0]); i++) {
		const struct setting *s = setting_find(overrides[i].setting);
		const char *v = getenv(overrides[i].env), *why;

		if (!v || !*v)
			continue;
		if (s->check && (why = s->check(v)) != NULL)
			return cfg_fail(err, errlen, "environment %s: '%s' %s", overrides[i].env,
					s->name, why);
		if (set_str(cfg, s, v) < 0)
			return gradeq_error(GRADEQ_ERR_NOMEM,
					    "out of memory reading configuration");
	}
	return 0;
}

int gradeq_config_load(const char *path, struct gradeq_config **out, char *err, size_t errlen)
{
	struct gradeq_config *cfg = NULL;
	mode_t mode = 0;
	bool secret = false;
	int ret;

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	if (!path && access(GRADEQ_DEFAULT_CONF, F_OK) == 0)
		path = GRADEQ_DEFAULT_CONF;
	cfg = gradeq_config_defaults();
	if (!cfg)
		return gradeq_error(GRADEQ_ERR_NOMEM, "out of memory reading configuration");
	if (path) {
		ret = check_file(path, &mode, err, errlen);
		if (ret < 0)
			goto out;
		cfg->path = strdup(path);
		if (!cfg->path) {
			ret = gradeq_error(GRADEQ_ERR_NOMEM, "out of memory reading configuration");
			goto out;
		}
		ret = read_file(cfg, path, &secret, err, errlen);
		if (ret < 0)
			goto out;
		if ((mode & S_IROTH) && secret)
			warn_world_readable("configuration file", path);
	}
	ret = apply_env(cfg, err, errlen);
	if (ret < 0)
		goto out;
	*out = cfg;
	cfg = NULL;
out:
	gradeq_config_free(cfg);
	return ret;
}

static bool setting_equal(const struct setting *s, struct gradeq_config *a, struct gradeq_config *b)
{
	const char *sa, *sb;

	switch (s->type) {
	case CF_STR:
		sa = *str_at(a, s);
		sb = *str_at(b, s);
		return (!sa && !sb) || (sa && sb && strcmp(sa, sb) == 0);
	case CF_INT: return *int_at(a, s) == *int_at(b, s);
	case CF_BOOL: return *bool_at(a, s) == *bool_at(b, s);
	case CF_INTLIST:
		return *count_at(a, s) == *count_at(b, s) &&
		       memcmp(int_at(a, s), int_at(b, s), (size_t)*count_at(a, s) * sizeof(int)) ==
			       0;
	}
	return false;
}

/* Appends name to a comma-separated list (truncated, never overflowing). */
static void list_add(char *list, size_t len, const char *name)
{
	size_t n;

	if (!list || !len)
		return;
	n = strlen(list);
	snprintf(list + n, len - n, "%s%s", n ? "," : "", name);
}

/* Moves s's value from b into a; b keeps a's old value (freed with b). */
static void setting_move(const struct setting *s, struct gradeq_config *a, struct gradeq_config *b)
{
	char *tmp;

	switch (s->type) {
	case CF_STR:
		tmp = *str_at(a, s);
		*str_at(a, s) = *str_at(b, s);
		*str_at(b, s) = tmp;
		break;
	case CF_INT: *int_at(a, s) = *int_at(b, s); break;
	case CF_BOOL: *bool_at(a, s) = *bool_at(b, s); break;
	case CF_INTLIST:
		memcpy(int_at(a, s), int_at(b, s), (size_t)*count_at(b, s) * sizeof(int));
		*count_at(a, s) = *count_at(b, s);
		break;
	}
}

int gradeq_config_reload(struct gradeq_config *cur, struct gradeq_config *fresh, char *applied,
			 size_t appliedlen, char *restart, size_t restartlen)
{
	int n = 0;

	if (applied && appliedlen)
		applied[0] = '\0';
	if (restart && restartlen)
		restart[0] = '\0';
	for (size_t i = 0; i < NSETTINGS; i++) {
		const struct setting *s = &settings[i];

		if (setting_equal(s, cur, fresh))
			continue;
		if (!s->reloadable) {
			list_add(restart, restartlen, s->name);
			continue;
		}
		setting_move(s, cur, fresh);
		list_add(applied, appliedlen, s->name);
		n++;
	}
	return n;
}

/* The entries of a comma-separated list setting, masked when secret, as a
 * JSON array. */
static json_t *list_json(const char *v, bool secret)
{
	struct gradeq_urls u;
	json_t *a = json_array();
	char masked[1024];

	if (gradeq_urls_split(v, &u, NULL, 0) == 0)
		for (int i = 0; a && i < u.n; i++)
			json_array_append_new(
				a, json_string(secret ? gradeq_config_mask(u.url[i], masked,
									   sizeof(masked))
						      : u.url[i]));
	gradeq_urls_release(&u);
	return a;
}

static void print_quoted(FILE *out, const char *v)
{
	fputc('"', out);
	for (; *v; v++) {
		if (*v == '"' || *v == '\\')
			fputc('\\', out);
		fputc(*v, out);
	}
	fputc('"', out);
}

/* A list setting in the file's syntax: ["a", "b"], entries masked when
 * secret. */
static void print_list(FILE *out, const char *v, bool secret)
{
	struct gradeq_urls u;
	char masked[1024];

	fputc('[', out);
	if (gradeq_urls_split(v, &u, NULL, 0) == 0)
		for (int i = 0; i < u.n; i++) {
			fputs(i ? ", " : "", out);
			print_quoted(out,
				     secret ? gradeq_config_mask(u.url[i], masked, sizeof(masked))
					    : u.url[i]);
		}
	gradeq_urls_release(&u);
	fputc(']', out);
}

json_t *gradeq_config_json(const struct gradeq_config *cfg)
{
	/* the table's accessors take non-const pointers; nothing is written */
	struct gradeq_config *c = (struct gradeq_config *)(uintptr_t)cfg;
	json_t *o = json_object();
	char masked[1024];

	for (size_t i = 0; o && i < NSETTINGS; i++) {
		const struct setting *s = &settings[i];
		const char *v;
		json_t *a;

		switch (s->type) {
		case CF_STR:
			v = *str_at(c, s) ? *str_at(c, s) : "";
			if (s->list && strchr(v, ',')) {
				json_object_set_new(o, s->name, list_json(v, s->secret));
				break;
			}
			if (s->secret)
				v = gradeq_config_mask(v, masked, sizeof(masked));
			json_object_set_new(o, s->name, json_string(v));
			break;
		case CF_INT: json_object_set_new(o, s->name, json_integer(*int_at(c, s))); break;
		case CF_BOOL: json_object_set_new(o, s->name, json_boolean(*bool_at(c, s))); break;
		case CF_INTLIST:
			a = json_array();
			for (int j = 0; j < *count_at(c, s); j++)
				json_array_append_new(a, json_integer(int_at(c, s)[j]));
			json_object_set_new(o, s->name, a);
			break;
		}
	}
	return o;
}

void gradeq_config_print(const struct gradeq_config *cfg, FILE *out)
{
	/* the table's accessors take non-const pointers; nothing is written */
	struct gradeq_config *c = (struct gradeq_config *)(uintptr_t)cfg;
	char masked[1024];

	for (size_t i = 0; i < NSETTINGS; i++) {
		const struct setting *s = &settings[i];
		const char *v;

		fprintf(out, "%s = ", s->name);
		switch (s->type) {
		case CF_STR:
			v = *str_at(c, s) ? *str_at(c, s) : "";
			if (s->list && strchr(v, ',')) {
				print_list(out, v, s->secret);
				break;
			}
			if (s->secret)
				v = gradeq_config_mask(v, masked, sizeof(masked));
			print_quoted(out, v);
			break;
		case CF_INT: fprintf(out, "%d", *int_at(c, s)); break;
		case CF_BOOL: fputs(*bool_at(c, s) ? "true" : "false", out); break;
		case CF_INTLIST:
			fputc('[', out);
			for (int j = 0; j < *count_at(c, s); j++)
				fprintf(out, "%s%d", j ? ", " : "", int_at(c, s)[j]);
			fputc(']', out);
			break;
		}
		fprintf(out, "; # %s\n", s->doc);
	}
}
