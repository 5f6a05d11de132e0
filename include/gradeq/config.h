/* Configuration: a libconfig file, then GRADEQ_AMQP_URL and GRADEQ_PG_DSN
 * over it. See conf/gradeq.conf for every setting. */
#ifndef GRADEQ_CONFIG_H
#define GRADEQ_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "gradeq/err.h"

#define GRADEQ_MAX_RETRY_TIERS 8
/* output_operators: a handful of global operators, not a user directory */
#define GRADEQ_MAX_OUTPUT_OPERATORS 64

struct gradeq_config {
	char *path;               /* file it came from; NULL for defaults only */
	char *amqp_url;           /* amqp://user:pass@host:port/vhost[, another node...] */
	char *amqp_password_file; /* overrides the URL's password when set */
	char *amqp_cacert;        /* amqps://: CA file (PEM); NULL = the system's CAs */
	char *amqp_cert;          /* amqps://: client certificate (PEM); NULL = none */
	char *amqp_key;           /* amqps://: its private key (PEM) */
	char *management_url; /* http(s)://host:port/[, ...] of the management API; NULL = none */
	char *pg_dsn;         /* libpq conninfo */
	char *pg_read_dsn;    /* a hot standby for course loads and score reads; NULL = none */
	int max_read_lag_ms;  /* how long a job waits for the standby before read_fallback */
	char *read_fallback;  /* "wait" or "primary" */
	int read_wait_max_s;  /* read_fallback wait: then the job is retried later */
	char *release;        /* default release for programs; NULL = promoted */
	int heartbeat;        /* seconds, 0 = off */
	int reconnect_max_ms; /* cap of the reconnect backoff */
	int prefetch;         /* consumer prefetch (large jobs) */
	int group_jobs;       /* small jobs committed together; prefetch while small */
	int group_learners;   /* learners of a small job, and of a group */
	int batch_size;       /* learners per job */
	int confirm_window;   /* publisher confirms in flight */
	int delivery_limit;   /* x-delivery-limit on the work queue */
	int retry_tiers[GRADEQ_MAX_RETRY_TIERS]; /* seconds each */
	int nretry_tiers;
	int quorum_group_size;      /* x-quorum-initial-group-size of new queues */
	char *queue_leader_locator; /* x-queue-leader-locator; NULL = the broker's */
	int course_cache;           /* courses kept per consumer */
	int statement_timeout_ms;
	bool job_events;    /* publish job.<state> events */
	int retention_days; /* purge-history default */
	/* the consumers' back-off on database distress (throttle_agent.c) */
	bool throttle_backoff;
	int distress_interval_s;      /* health samples and back-off steps */
	int distress_lock_waiters;    /* sessions waiting on grades_* locks; 0: ignored */
	int distress_backends_pct;    /* active backends, % of max_connections; 0: ignored */
	int distress_latency_factor;  /* x a course size's baseline; 0: ignored */
	int distress_latency_samples; /* jobs before a baseline counts */
	int distress_latency_min_ms;  /* a shorter read or write is never slow */
	int max_replica_lag_ms;       /* a job's wait for the standby that means distress */
	int backoff_factor_pct;       /* a decrease keeps this % of the rate */
	int backoff_increase;         /* learners/s added a step while healthy */
	int backoff_min_rate;         /* learners/s a decrease never goes below */
	char *log_level;              /* debug, info, warn, error */
	char *log_file;               /* NULL or "" = stderr */
	char *output_backend;         /* job outputs: "file" */
	char *output_dir;             /* file backend: directory of outputs */
	char *s3_endpoint;            /* s3 backend: endpoint URL (path-style) */
	char *s3_bucket;
	char *s3_region;
	char *s3_access_key_file;
	char *s3_secret_key_file;
	int s3_link_ttl_s; /* presigned GET lifetime */
	/* user ids that may read any course's outputs */
	int output_operators[GRADEQ_MAX_OUTPUT_OPERATORS];
	int noutput_operators;
	char *output_link_key_file; /* key that signs download links */
	char *output_link_base;     /* gradeq-web's absolute URL */
	/* gradeq-web */
	char *web_listen;         /* HOST:PORT; NULL = 127.0.0.1:8470 */
	char *web_users;          /* users file (name:role:hash lines) */
	char *web_tls_cert;       /* PEM certificate: serve HTTPS */
	char *web_tls_key;        /* its private key */
	char *web_trusted_header; /* user name header set by a reverse proxy */
	char *web_trusted_proxy;  /* the proxy's address, the only one trusted */
	int web_session_idle_s;   /* a session ends after this long unused */
};

/* Loads 'path' (or, when NULL, GRADEQ_DEFAULT_CONF if it exists, else
 * built-in defaults), validates it and applies the environment overrides
 * (GRADEQ_AMQP_URL, GRADEQ_PG_DSN, GRADEQ_MGMT_URL, when set and not empty). *out is a fresh
 * struct, free it with gradeq_config_free(); NULL on error.
 * On error returns GRADEQ_ERR_CONFIG with err naming file, line and setting,
 * e.g. "conf/gradeq.conf:12: 'prefetch' must be an integer from 1 to 65535";
 * a syntax error, an unknown setting and an explicit path that cannot be read
 * are errors too. A world-readable file holding a password is only warned
 * about (log_warn). */
int gradeq_config_load(const char *path, struct gradeq_config **out, char *err,
		       size_t errlen) GRADEQ_MUST_CHECK;

/* Built-in defaults only, no file, no environment. NULL when out of
 * memory. */
struct gradeq_config *gradeq_config_defaults(void);

/* Frees cfg and its strings; NULL is a no-op. */
void gradeq_config_free(struct gradeq_config *cfg);

/* The URL to connect with, malloc'd into *url: amqp_url, with the first line
 * of amqp_password_file (percent-encoded) as its password when that is set
 * (user "guest" when the URL names none). Returns GRADEQ_ERR_IO when the
 * password file cannot be read or is empty, GRADEQ_ERR_NOMEM; *url is NULL
 * on error. Never log the result: pass it through gradeq_config_mask(). */
int gradeq_config_amqp_url(const struct gradeq_config *cfg, char **url) GRADEQ_MUST_CHECK;

/* Copies an AMQP or PostgreSQL URL (scheme://user:pass@...) or a libpq
 * key=value conninfo into buf (always NUL-terminated, truncated to len) with
 * every password replaced by "****", for printing. NULL input gives "".
 * Returns buf. */
const char *gradeq_config_mask(const char *url_or_dsn, char *buf, size_t len);

/* For SIGHUP: moves into cur every setting that differs in fresh and that
 * a reload may change (the table in config.c marks them: log_level,
 * log_file, batch_size, confirm_window, statement_timeout_ms, job_events,
 * retention_days, management_url); cur keeps its value of every other
 * setting that differs, for those need a restart. applied and restart get
 * the names of either kind, comma-separated ("" when none; either may be
 * NULL). fresh is left with cur's old values: free it. Returns how many
 * settings were applied. */
int gradeq_config_reload(struct gradeq_config *cur, struct gradeq_config *fresh, char *applied,
			 size_t appliedlen, char *restart, size_t restartlen);

/* Writes every setting of cfg to out, one "name = value;" line each in the
 * file's syntax and the table's order, each followed by its documentation
 * as a comment; passwords in secret settings are masked. */
void gradeq_config_print(const struct gradeq_config *cfg, FILE *out);
/* The same settings as one JSON object (a json_t *, new reference; the
 * caller includes jansson.h): name to value, secrets masked. */
struct json_t *gradeq_config_json(const struct gradeq_config *cfg);

#endif
