/* gradeq-admin check-config. Loading a file already checks types, bounds,
 * names and readable files with file and line; this adds the checks that
 * otherwise wait for the first connection. */
#include "gradeq/checkconfig.h"

#include <stdlib.h>
#include <string.h>

#include <amqp.h>
#include <libconfig.h>

#include "gradeq/config.h"
#include "gradeq/store.h"

/* Where a setting's value came from, for messages: the environment
 * variable env when set, else "file:line" (the file is read again: the
 * loader keeps values, not lines), else the file or the defaults. */
static const char *origin(const struct gradeq_config *cfg, const char *setting, const char *env,
			  char *buf, size_t len)
{
	const char *v = env ? getenv(env) : NULL;
	config_setting_t *cs;
	config_t lc;

	if (v && *v)
		return env;
	if (!cfg->path)
		return "built-in defaults";
	snprintf(buf, len, "%s", cfg->path);
	config_init(&lc);
	if (config_read_file(&lc, cfg->path) == CONFIG_TRUE &&
	    (cs = config_lookup(&lc, setting)) != NULL)
		snprintf(buf, len, "%s:%u", cfg->path, config_setting_source_line(cs));
	config_destroy(&lc);
	return buf;
}

static int check_amqp(const struct gradeq_config *cfg, FILE *err)
{
	struct amqp_connection_info ci;
	char where[512], *url = NULL;
	int rc;

	rc = gradeq_config_amqp_url(cfg, &url);
	if (rc) {
		fprintf(err, "%s: 'amqp_password_file' %s\n",
			origin(cfg, "amqp_password_file", NULL, where, sizeof(where)),
			gradeq_errmsg(rc));
		return GRADEQ_ERR_CONFIG;
	}
	/* amqp_parse_url writes into its argument */
	rc = amqp_parse_url(url, &ci) == AMQP_STATUS_OK ? 0 : GRADEQ_ERR_CONFIG;
	if (rc)
		fprintf(err,
			"%s: 'amqp_url' is malformed (expected amqp[s]://user@host:port/vhost)\n",
			origin(cfg, "amqp_url", "GRADEQ_AMQP_URL", where, sizeof(where)));
	else if (!ci.ssl && (cfg->amqp_cacert || cfg->amqp_cert))
		fprintf(err,
			"%s: warning: amqp_cacert/amqp_cert are set but 'amqp_url' is not "
			"amqps://: they are not used\n",
			origin(cfg, "amqp_url", "GRADEQ_AMQP_URL", where, sizeof(where)));
	explicit_bzero(url, strlen(url));
	free(url);
	if (!rc && !cfg->amqp_cert != !cfg->amqp_key) {
		fprintf(err, "%s: '%s' is set without '%s': give both or neither\n",
			origin(cfg, cfg->amqp_cert ? "amqp_cert" : "amqp_key", NULL, where,
			       sizeof(where)),
			cfg->amqp_cert ? "amqp_cert" : "amqp_key",
			cfg->amqp_cert ? "amqp_key" : "amqp_cert");
		rc = GRADEQ_ERR_CONFIG;
	}
	return rc;
}

static int check_pg(const struct gradeq_config *cfg, FILE *err)
{
	char where[512], why[512];

	if (!cfg->pg_dsn || !*cfg->pg_dsn)
		return 0;
	if (gradeq_store_dsn_check(cfg->pg_dsn, why, sizeof(why))) {
		fprintf(err, "%s: 'pg_dsn' is not a libpq conninfo: %s\n",
			origin(cfg, "pg_dsn", "GRADEQ_PG_DSN", where, sizeof(where)), why);
		return GRADEQ_ERR_CONFIG;
	}
	return 0;
}

int gradeq_check_config(const char *path, FILE *out, FILE *err)
{
	struct gradeq_config *cfg = NULL;
	char msg[600] = "";
	int rc;

	rc = gradeq_config_load(path, &cfg, msg, sizeof(msg));
	if (rc) {
		fprintf(err, "%s\n", msg[0] ? msg : gradeq_errmsg(rc));
		return rc;
	}
	rc = check_amqp(cfg, err);
	if (!rc)
		rc = check_pg(cfg, err);
	if (!rc) {
		fprintf(out,
			"# %s: valid; effective settings (environment applied, secrets masked)\n",
			cfg->path ? cfg->path : "no file, built-in defaults");
		gradeq_config_print(cfg, out);
	}
	gradeq_config_free(cfg);
	return rc;
}
