#include "gradeq/status.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gradeq/follow.h"
#include "gradeq/release.h"
#include "gradeq/throttle_cmd.h"
#include "store/status.h"

int gradeq_status_run_known(struct gradeq_store *st, const char *run)
{
	return gradeq_store_run_known(st, run);
}

int gradeq_status_runs_json(struct gradeq_store *st, const char *run, char **out)
{
	return gradeq_store_status_runs(st, run, out);
}

/* The unacked count as JSON: a number, or null when unknown. */
static void unacked_json(char *buf, size_t len, int64_t n)
{
	if (n < 0)
		snprintf(buf, len, "null");
	else
		snprintf(buf, len, "%lld", (long long)n);
}

/* Appends one release's {"name","state","queues"} object. */
static size_t release_json(char *buf, size_t cap, const struct gradeq_release_info *r,
			   const struct gradeq_release_depths *d, const struct gradeq_topology *t,
			   bool first)
{
	char wu[24], du[24];
	size_t len = 0;

	len += (size_t)snprintf(buf + len, cap - len,
				"%s{\"name\":\"%s\",\"state\":\"%s\",\"queues\":", first ? "" : ",",
				r->name, gradeq_release_state_name(r->state));
	if (!d->have)
		return len + (size_t)snprintf(buf + len, cap - len, "null}");
	unacked_json(wu, sizeof(wu), d->work_unacked);
	unacked_json(du, sizeof(du), d->dead_unacked);
	len += (size_t)snprintf(
		buf + len, cap - len,
		"{\"work\":{\"ready\":%u,\"unacked\":%s,\"consumers\":%u},\"retry\":[",
		d->work_ready, wu, d->consumers);
	for (int i = 0; i < d->nretry; i++)
		len += (size_t)snprintf(buf + len, cap - len, "%s{\"seconds\":%d,\"ready\":%u}",
					i ? "," : "", t->retry_tiers[i], d->retry_ready[i]);
	len += (size_t)snprintf(buf + len, cap - len, "],\"dead\":{\"ready\":%u,\"unacked\":%s}}}",
				d->dead_ready, du);
	return len;
}

int gradeq_status_releases_json(struct gradeq_cli *cli, struct gradeq_store *st, char **out)
{
	struct gradeq_topology topo = gradeq_cli_topology(cli);
	struct gradeq_release_info *rel = NULL;
	struct gradeq_broker *b = NULL;
	struct gradeq_mgmt *m = NULL;
	size_t n = 0, cap = 256, len = 0;
	char *buf = NULL;
	int rc;

	*out = NULL;
	rc = gradeq_release_list(st, true, &rel, &n);
	if (rc)
		goto out;
	cap += n * (600 + 80 * (size_t)topo.nretry_tiers);
	buf = malloc(cap);
	if (!buf) {
		rc = GRADEQ_ERR_NOMEM;
		goto out;
	}
	if (gradeq_cli_broker(cli, NULL, &b))
		b = NULL;
	if (b)
		gradeq_cli_mgmt(cli, &m);
	len += (size_t)snprintf(buf + len, cap - len, "[");
	for (size_t i = 0; i < n; i++) {
		struct gradeq_release_depths d;

		gradeq_release_depths(b, m, rel[i].name, &topo, &d);
		if (b && gradeq_broker_broken(b)) {
			gradeq_broker_free(b);
			b = NULL;
		}
		len += release_json(buf + len, cap - len, &rel[i], &d, &topo, i == 0);
	}
	snprintf(buf + len, cap - len, "]");
	*out = buf;
	buf = NULL;
out:
	free(buf);
	free(rel);
	gradeq_mgmt_free(m);
	gradeq_broker_free(b);
	return rc;
}

/* One object per line (--watch prints one a second): a raw line break in
 * JSON text is whitespace, since those in strings are escaped, and
 * PostgreSQL's json_agg puts some in. */
static void one_line(char *json)
{
	for (; *json; json++)
		if (*json == '\n' || *json == '\r')
			*json = ' ';
}

int gradeq_status_print(struct gradeq_cli *cli, struct gradeq_store *st, const char *run, bool json,
			bool clear, FILE *out)
{
	char *runs = NULL, *releases = NULL, *follow = NULL, *throttle = NULL;
	int rc;

	rc = gradeq_status_runs_json(st, run, &runs);
	if (!rc)
		rc = gradeq_status_releases_json(cli, st, &releases);
	if (!rc)
		rc = gradeq_follow_recent_json(st, GRADEQ_STATUS_FOLLOW_ITERATIONS, &follow);
	if (!rc)
		rc = gradeq_throttle_status_json(st, NULL, &throttle);
	if (rc)
		goto out;
	if (json) {
		one_line(runs);
		one_line(releases);
		one_line(follow);
		one_line(throttle);
		fprintf(out, "{\"runs\":%s,\"releases\":%s,\"follow\":%s,\"throttle\":%s}\n", runs,
			releases, follow, throttle);
		fflush(out);
		goto out;
	}
	if (clear)
		fputs("\033[H\033[2J", out);
	fprintf(out, "%-36s  %-10s  %-9s  %11s  %4s  %4s  %4s  %19s  %7s  %s\n", "RUN", "RELEASE",
		"STATE", "JOBS", "DEAD", "RETR", "CANC", "LEARNERS", "L/S(1M)", "ETA");
	gradeq_store_status_runs_text(st, runs, out);
	fputc('\n', out);
	gradeq_store_status_releases_text(st, releases, out);
	if (strcmp(follow, "[]") != 0) {
		fprintf(out, "\n%-8s  %-16s  %-11s  %-19s  %9s  %8s  %8s  %s\n", "FOLLOW",
			"RELEASE", "STATE", "STARTED", "SECONDS", "SELECT_S", "LEARNERS", "WINDOW");
		gradeq_follow_recent_text(st, follow, out);
	}
	if (strcmp(throttle, "[]") != 0) {
		fputs("\nTHROTTLE\n", out);
		gradeq_throttle_status_text(st, throttle, out);
	}
	fflush(out);
out:
	free(throttle);
	free(runs);
	free(releases);
	free(follow);
	return rc;
}

int gradeq_status_watch(struct gradeq_cli *cli, struct gradeq_store *st, const char *run, bool json,
			volatile sig_atomic_t *stop)
{
	bool tty = isatty(STDOUT_FILENO);
	int rc = 0;

	while (!rc && !*stop) {
		rc = gradeq_status_print(cli, st, run, json, tty, stdout);
		if (!rc)
			sleep(1);
	}
	return rc;
}
