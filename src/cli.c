#include "gradeq/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gradeq/job.h"
#include "gradeq/log.h"

void gradeq_cli_error(const struct gradeq_cli *cli, const char *fmt, ...)
{
	char msg[1200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (char *p = msg; *p; p++)
		if (*p == '\n')
			*p = ' ';
	fprintf(stderr, "%s: error: %s\n", cli->prog, msg);
}

int gradeq_cli_init(struct gradeq_cli *cli)
{
	char err[600] = "";
	int rc, level;

	rc = gradeq_config_load(cli->conf_path, &cli->cfg, err, sizeof(err));
	if (rc) {
		gradeq_cli_error(cli, "%s", err[0] ? err : gradeq_errmsg(rc));
		return rc;
	}
	level = gradeq_log_level_parse(cli->cfg->log_level);
	if (gradeq_log_init(cli->prog, level < 0 ? GRADEQ_LOG_INFO : level, cli->cfg->log_file))
		gradeq_cli_error(cli, "%s (logging to stderr)", gradeq_errmsg(GRADEQ_ERR_IO));
	return 0;
}

void gradeq_cli_release(struct gradeq_cli *cli)
{
	gradeq_config_free(cli->cfg);
	cli->cfg = NULL;
}

int gradeq_cli_store(struct gradeq_cli *cli, struct gradeq_store **st)
{
	return gradeq_store_connect(cli->cfg->pg_dsn, cli->prog, cli->cfg->statement_timeout_ms,
				    st);
}

int gradeq_cli_broker(struct gradeq_cli *cli, const char *release, struct gradeq_broker **b)
{
	return gradeq_broker_open(cli->cfg, cli->prog, release, GRADEQ_BROKER_PUBLISH, b);
}

void gradeq_cli_mgmt(struct gradeq_cli *cli, struct gradeq_mgmt **out)
{
	static bool warned;
	char *url = NULL;
	int rc;

	*out = NULL;
	if (!cli->cfg->management_url)
		return;
	rc = gradeq_config_amqp_url(cli->cfg, &url);
	if (!rc)
		rc = gradeq_mgmt_fetch(cli->cfg->management_url, url, cli->cfg->amqp_cacert, 5000,
				       out);
	free(url);
	if (rc && !warned) {
		log_warn("event=management_unavailable error=\"%s\" unacked=unknown",
			 gradeq_errmsg(rc));
		warned = true;
	}
}

struct gradeq_topology gradeq_cli_topology(const struct gradeq_cli *cli)
{
	struct gradeq_topology t = {cli->cfg->delivery_limit, cli->cfg->retry_tiers,
				    cli->cfg->nretry_tiers};

	return t;
}

bool gradeq_release_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > GRADEQ_RELEASE_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-' || c == '_'))
			return false;
	}
	return true;
}

int gradeq_release_state(struct gradeq_store *st, const char *name, char *state)
{
	const char *params[1] = {name};
	PGresult *res = PQexecParams(gradeq_store_conn(st),
				     "SELECT state FROM gradeq_releases WHERE name = $1", 1, NULL,
				     params, NULL, NULL, 0);
	int rc = 0;

	state[0] = '\0';
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = gradeq_store_result_error(st, res, "reading the release registry");
	else if (PQntuples(res) == 0)
		rc = gradeq_error(GRADEQ_ERR_NOT_FOUND, "unknown release '%s'", name);
	else
		snprintf(state, 16, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return rc;
}

int gradeq_release_resolve(struct gradeq_store *st, const char *explicit_name, char *out,
			   size_t len)
{
	char state[16];
	PGresult *res = NULL;
	int rc = 0;

	if (!explicit_name) {
		res = PQexec(gradeq_store_conn(st),
			     "SELECT name FROM gradeq_releases WHERE state = 'promoted'");
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			rc = gradeq_store_result_error(st, res, "reading the release registry");
		else if (PQntuples(res) == 0)
			rc = gradeq_error(
				GRADEQ_ERR_NOT_FOUND,
				"no release is promoted: give --release R, or promote one "
				"with 'gradeq-admin release promote R'");
		else
			snprintf(out, len, "%s", PQgetvalue(res, 0, 0));
		PQclear(res);
		return rc;
	}
	if (!gradeq_release_name_ok(explicit_name))
		return gradeq_error(
			GRADEQ_ERR_INVALID,
			"bad release name '%s' (1-64 of letters, digits, '.', '-', '_')",
			explicit_name);
	{
		char ver[16];
		const char *params[2] = {explicit_name, ver};

		snprintf(ver, sizeof(ver), "%d", GRADEQ_SCHEMA_VERSION);
		res = PQexecParams(
			gradeq_store_conn(st),
			"INSERT INTO gradeq_releases (name, schema_version) VALUES ($1, $2)"
			" ON CONFLICT (name) DO NOTHING",
			2, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			rc = gradeq_store_result_error(st, res, "recording the release");
		PQclear(res);
		if (rc)
			return rc;
	}
	rc = gradeq_release_state(st, explicit_name, state);
	if (rc)
		return rc;
	if (strcmp(state, "draining") == 0 || strcmp(state, "retired") == 0)
		return gradeq_error(GRADEQ_ERR_STATE,
				    "release '%s' is %s: publish to the promoted release instead",
				    explicit_name, state);
	snprintf(out, len, "%s", explicit_name);
	return 0;
}
