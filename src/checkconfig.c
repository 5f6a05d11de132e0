/* gradeq-admin check-config. Loading a file already checks types, bounds,
 * names and readable files with file and line; this adds the checks that
 * otherwise wait for the first connection. */
#include "gradeq/checkconfig.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libconfig.h>

#include "gradeq/cli.h"
#include "gradeq/config.h"
#include "gradeq/store.h"
#include "gradeq/urls.h"

struct cc {
	const char *prog;
	FILE *err;
	char error[1024]; /* the first error, for --json */
};

/* One line "prog: error: ..." (or "prog: warning: ...") on err. */
static void say(struct cc *cc, bool error, const char *fmt, ...) GRADEQ_PRINTF(3, 4);
static void say(struct cc *cc, bool error, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	gradeq_cli_print_line(cc->err, cc->prog, error ? "error" : "warning", msg);
	if (error && !cc->error[0])
		snprintf(cc->error, sizeof(cc->error), "%s", msg);
}

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

static int check_amqp(const struct gradeq_config *cfg, struct cc *cc)
{
	struct gradeq_urls list;
	char where[512], why[300], *url = NULL;
	bool plain = false;
	int rc;

	rc = gradeq_config_amqp_url(cfg, &url);
	if (rc) {
		say(cc, true, "%s: %s",
		    origin(cfg, "amqp_password_file", NULL, where, sizeof(where)),
		    gradeq_errmsg(rc));
		return GRADEQ_ERR_CONFIG;
	}
	/* every node of the list, as the connection will read it */
	rc = gradeq_urls_parse_amqp(url, &list, why, sizeof(why)) ? GRADEQ_ERR_CONFIG : 0;
	for (int i = 0; !rc && i < list.n; i++)
		if (strncmp(list.url[i], "amqps://", 8) != 0)
			plain = true;
	gradeq_urls_release(&list);
	if (rc)
		say(cc, true, "%s: 'amqp_url' %s",
		    origin(cfg, "amqp_url", "GRADEQ_AMQP_URL", where, sizeof(where)), why);
	else if (plain && (cfg->amqp_cacert || cfg->amqp_cert))
		say(cc, false,
		    "%s: amqp_cacert/amqp_cert are set but 'amqp_url' is not amqps:// (every "
		    "entry): they are not used there",
		    origin(cfg, "amqp_url", "GRADEQ_AMQP_URL", where, sizeof(where)));
	explicit_bzero(url, strlen(url));
	free(url);
	if (!rc && !cfg->amqp_cert != !cfg->amqp_key) {
		say(cc, true, "%s: '%s' is set without '%s': give both or neither",
		    origin(cfg, cfg->amqp_cert ? "amqp_cert" : "amqp_key", NULL, where,
			   sizeof(where)),
		    cfg->amqp_cert ? "amqp_cert" : "amqp_key",
		    cfg->amqp_cert ? "amqp_key" : "amqp_cert");
		rc = GRADEQ_ERR_CONFIG;
	}
	return rc;
}

static int check_pg(const struct gradeq_config *cfg, struct cc *cc)
{
	char where[512], why[512];

	if (!cfg->pg_dsn || !*cfg->pg_dsn)
		return 0;
	if (gradeq_store_dsn_check(cfg->pg_dsn, why, sizeof(why))) {
		say(cc, true, "%s: 'pg_dsn' is not a libpq conninfo: %s",
		    origin(cfg, "pg_dsn", "GRADEQ_PG_DSN", where, sizeof(where)), why);
		return GRADEQ_ERR_CONFIG;
	}
	return 0;
}

int gradeq_check_config(const char *prog, const char *path, bool json, FILE *out, FILE *err)
{
	struct gradeq_config *cfg = NULL;
	struct cc cc = {.prog = prog, .err = err};
	char msg[600] = "";
	int rc;

	rc = gradeq_config_load(path, &cfg, msg, sizeof(msg));
	if (rc)
		say(&cc, true, "%s", msg[0] ? msg : gradeq_errmsg(rc));
	if (!rc)
		rc = check_amqp(cfg, &cc);
	if (!rc)
		rc = check_pg(cfg, &cc);
	if (json) {
		json_t *o = json_object();
		const char *file = cfg && cfg->path ? cfg->path : path;

		json_object_set_new(o, "valid", json_boolean(rc == 0));
		json_object_set_new(o, "file", file ? json_string(file) : json_null());
		if (rc)
			json_object_set_new(o, "error", json_string(cc.error));
		else
			json_object_set_new(o, "settings", gradeq_config_json(cfg));
		json_dumpf(o, out, JSON_COMPACT | JSON_ENSURE_ASCII);
		fputc('\n', out);
		json_decref(o);
	} else if (!rc) {
		fprintf(out,
			"# %s: valid; effective settings (environment applied, secrets masked)\n",
			cfg->path ? cfg->path : "no file, built-in defaults");
		gradeq_config_print(cfg, out);
	}
	gradeq_config_free(cfg);
	return rc;
}
