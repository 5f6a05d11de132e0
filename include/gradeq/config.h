/* Configuration: a libconfig file, then GRADEQ_AMQP_URL and GRADEQ_PG_DSN
 * over it. See conf/gradeq.conf for every setting. */
#ifndef GRADEQ_CONFIG_H
#define GRADEQ_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "gradeq/err.h"

#define GRADEQ_MAX_RETRY_TIERS 8

struct gradeq_config {
	char *path;            /* file it came from; NULL for defaults only */
	char *amqp_url;        /* amqp://user:pass@host:port/vhost */
	char *amqp_password_file; /* overrides the URL's password when set */
	char *pg_dsn;          /* libpq conninfo */
	char *release;         /* default release for programs; NULL = promoted */
	int heartbeat;         /* seconds, 0 = off */
	int prefetch;          /* consumer prefetch */
	int batch_size;        /* learners per job */
	int confirm_window;    /* publisher confirms in flight */
	int delivery_limit;    /* x-delivery-limit on the work queue */
	int retry_tiers[GRADEQ_MAX_RETRY_TIERS]; /* seconds each */
	int nretry_tiers;
	int course_cache;      /* courses kept per consumer */
	int statement_timeout_ms;
	bool job_events;       /* publish job.<state> events */
	int retention_days;    /* purge-history default */
	char *log_level;       /* debug, info, warn, error */
	char *log_file;        /* NULL or "" = stderr */
};

/* Loads 'path' (or, when NULL, GRADEQ_DEFAULT_CONF if it exists, else
 * built-in defaults), validates it and applies the environment overrides.
 * On error returns GRADEQ_ERR_CONFIG with err naming file, line and setting,
 * e.g. "conf/gradeq.conf:12: 'prefetch' must be an integer from 1 to 65535". */
int gradeq_config_load(const char *path, struct gradeq_config **out, char *err,
		       size_t errlen) GRADEQ_MUST_CHECK;

/* Built-in defaults only, no file, no environment. */
struct gradeq_config *gradeq_config_defaults(void);

void gradeq_config_free(struct gradeq_config *cfg);

#endif
