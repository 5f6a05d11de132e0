#include "gradeq/rebalance.h"

#include <errno.h>
#include <jansson.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <amqp.h>

#include "gradeq/log.h"
#include "gradeq/release.h"
#include "gradeq/urls.h"

extern char **environ;

size_t gradeq_rebalance_plan(int want, const char *const *running, size_t nrunning,
			     const struct gradeq_rebalance_queue *q, size_t nq,
			     struct gradeq_rebalance_add *out, size_t max)
{
	size_t held[64] = {0}, nadd = 0;
	int target = want < (int)nrunning ? want : (int)nrunning;

	if (nrunning > 64)
		nrunning = 64;
	for (size_t r = 0; r < nrunning; r++)
		for (size_t i = 0; i < nq; i++)
			for (int k = 0; k < q[i].nmembers; k++)
				if (strcmp(q[i].members[k], running[r]) == 0)
					held[r]++;
	for (size_t i = 0; i < nq; i++) {
		bool member[64] = {false};
		int have = q[i].nmembers;

		for (size_t r = 0; r < nrunning; r++)
			for (int k = 0; k < q[i].nmembers; k++)
				if (strcmp(q[i].members[k], running[r]) == 0)
					member[r] = true;
		while (have < target) {
			size_t best = nrunning;

			for (size_t r = 0; r < nrunning; r++)
				if (!member[r] && (best == nrunning || held[r] < held[best]))
					best = r;
			if (best == nrunning)
				break;
			member[best] = true;
			held[best]++;
			have++;
			if (nadd < max) {
				out[nadd].queue = q[i].name;
				out[nadd].node = running[best];
			}
			nadd++;
		}
	}
	return nadd;
}

/* A JSON string (escaped), or null. */
static void json_str(FILE *out, const char *v)
{
	json_t *s = v ? json_string(v) : NULL;
	char *text = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;

	fputs(text ? text : "null", out);
	free(text);
	json_decref(s);
}

void gradeq_rebalance_print_placement(const struct gradeq_mgmt *m, const char *release,
				      const struct gradeq_topology *t, bool json, FILE *out)
{
	struct gradeq_release_queue q[GRADEQ_RELEASE_QUEUES_MAX];
	size_t nq = gradeq_release_queues(release, t, q);
	const char *leader, *members[GRADEQ_REBALANCE_MEMBERS_MAX];
	bool first = true;

	if (json)
		fputs(",\"queues\":[", out);
	for (size_t i = 0; i < nq; i++) {
		int n = gradeq_mgmt_placement(m, q[i].name, &leader, members,
					      GRADEQ_REBALANCE_MEMBERS_MAX);

		if (n < 0)
			continue;
		if (json) {
			fprintf(out, "%s{\"name\":", first ? "" : ",");
			json_str(out, q[i].name);
			fputs(",\"leader\":", out);
			json_str(out, leader);
			fputs(",\"members\":[", out);
			for (int k = 0; k < n; k++) {
				fputs(k ? "," : "", out);
				json_str(out, members[k]);
			}
			fputs("]}", out);
		} else {
			fprintf(out, "  %-40s  leader %s  members", q[i].name,
				leader ? leader : "-");
			for (int k = 0; k < n; k++)
				fprintf(out, "%s%s", k ? "," : " ", members[k]);
			fputc('\n', out);
		}
		first = false;
	}
	if (json)
		fputs("]", out);
}

/* Runs argv (no shell), its output to our stderr so that stdout stays the
 * report. 0 when it exits 0. */
static int run(char *const *argv)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int st = 0, err;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, STDERR_FILENO, STDOUT_FILENO);
	fflush(NULL);
	err = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (err == ENOENT)
		return gradeq_error(GRADEQ_ERR_NOT_FOUND,
				    "%s not found: run this on a broker host, set "
				    "GRADEQ_RABBITMQ_QUEUES, or use --dry-run and run the commands "
				    "it prints there",
				    argv[0]);
	if (err)
		return gradeq_error(GRADEQ_ERR_IO, "cannot run %s: %s", argv[0], strerror(err));
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return gradeq_error(GRADEQ_ERR_IO, "waiting for %s: %s", argv[0],
					    strerror(errno));
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return gradeq_error(GRADEQ_ERR_BROKER, "%s %s failed (exit %d)", argv[0], argv[3],
				    WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	return 0;
}

/* Appends s to buf (at *n, bounded by len) with regex metacharacters
 * escaped. */
static void regex_put(char *buf, size_t len, size_t *n, const char *s)
{
	for (const char *c = s; *c && *n + 3 < len; c++) {
		if (strchr(".\\+*?()|[]{}^$", *c))
			buf[(*n)++] = '\\';
		buf[(*n)++] = *c;
	}
	buf[*n] = '\0';
}

/* A regex matching exactly the names of queues q (or, with nq 1 and a
 * vhost name, exactly that name). */
static void exact_pattern(char *buf, size_t len, const char *const *names, size_t nq)
{
	size_t n = 0;

	buf[n++] = '^';
	if (nq > 1)
		buf[n++] = '(';
	for (size_t i = 0; i < nq; i++) {
		if (i && n + 2 < len)
			buf[n++] = '|';
		regex_put(buf, len, &n, names[i]);
	}
	if (nq > 1 && n + 2 < len)
		buf[n++] = ')';
	if (n + 1 < len)
		buf[n++] = '$';
	buf[n] = '\0';
}

static void show(FILE *out, bool json, char *const *argv)
{
	if (json)
		return;
	fputs("  ", out);
	for (int i = 0; argv[i]; i++)
		fprintf(out, "%s%s", i ? " " : "", argv[i]);
	fputc('\n', out);
}

int gradeq_release_do_rebalance(struct gradeq_cli *cli, struct gradeq_store *st,
				const char *release, bool dry_run, bool json, FILE *out)
{
	struct gradeq_topology topo = gradeq_cli_topology(cli);
	struct gradeq_release_queue rq[GRADEQ_RELEASE_QUEUES_MAX];
	struct gradeq_rebalance_queue q[GRADEQ_RELEASE_QUEUES_MAX];
	struct gradeq_rebalance_add add[GRADEQ_RELEASE_QUEUES_MAX * GRADEQ_REBALANCE_MEMBERS_MAX];
	enum gradeq_release_state state;
	struct gradeq_mgmt *m = NULL;
	struct amqp_connection_info ci;
	struct gradeq_urls brokers = {0}, apis = {0};
	char **nodes = NULL, *url = NULL, *copy = NULL, vhost[256], pattern[2048];
	const char *prog = getenv("GRADEQ_RABBITMQ_QUEUES");
	size_t nnodes = 0, nq, nadd, qn = 0;
	int rc;

	if (!prog || !*prog)
		prog = "rabbitmq-queues";
	rc = gradeq_release_get(st, release, &state);
	if (rc == GRADEQ_ERR_NOT_FOUND)
		return gradeq_error(rc, "release '%s' is not known", release);
	if (rc)
		return rc;
	if (state == GRADEQ_RELEASE_RETIRED)
		return gradeq_error(GRADEQ_ERR_STATE, "release '%s' is retired: it has no queues",
				    release);
	if (!cli->cfg->management_url)
		return gradeq_error(GRADEQ_ERR_CONFIG,
				    "release rebalance needs management_url (or GRADEQ_MGMT_URL)");
	rc = gradeq_config_amqp_url(cli->cfg, &url);
	if (!rc)
		rc = gradeq_urls_split(url, &brokers, NULL, 0) ? GRADEQ_ERR_CONFIG : 0;
	if (!rc)
		rc = gradeq_urls_split(cli->cfg->management_url, &apis, NULL, 0) ? GRADEQ_ERR_CONFIG
										 : 0;
	/* the first management API that answers (config.c checks that every
	 * broker URL has the same login and vhost: the first one's) */
	for (int i = 0; !rc && i < apis.n; i++) {
		rc = gradeq_mgmt_fetch(apis.url[i], brokers.url[0], cli->cfg->amqp_cacert, 10000,
				       &m);
		if (!rc)
			rc = gradeq_mgmt_fetch_nodes(apis.url[i], brokers.url[0],
						     cli->cfg->amqp_cacert, 10000, &nodes, &nnodes);
		if (rc != GRADEQ_ERR_BROKER || i + 1 == apis.n)
			break;
		gradeq_mgmt_free(m);
		m = NULL;
		rc = 0;
	}
	if (!rc && nnodes == 0)
		rc = gradeq_error(GRADEQ_ERR_BROKER, "the management API lists no running node");
	copy = !rc ? strdup(brokers.url[0]) : NULL;
	amqp_default_connection_info(&ci);
	if (!rc && (!copy || amqp_parse_url(copy, &ci) != AMQP_STATUS_OK))
		rc = gradeq_error(GRADEQ_ERR_CONFIG, "amqp_url is not a URL");
	if (rc)
		goto out;
	snprintf(vhost, sizeof(vhost), "%s", ci.vhost);

	nq = gradeq_release_queues(release, &topo, rq);
	for (size_t i = 0; i < nq; i++) {
		const char *leader;
		int n = gradeq_mgmt_placement(m, rq[i].name, &leader, q[qn].members,
					      GRADEQ_REBALANCE_MEMBERS_MAX);

		if (n < 0)
			continue; /* missing queue, or no placement known */
		q[qn].name = rq[i].name;
		q[qn].nmembers = n;
		qn++;
	}
	nadd = gradeq_rebalance_plan(topo.quorum_group_size, (const char *const *)nodes, nnodes, q,
				     qn, add, sizeof(add) / sizeof(add[0]));
	if (nadd > sizeof(add) / sizeof(add[0]))
		nadd = sizeof(add) / sizeof(add[0]);
	if (!json)
		fprintf(out,
			"release %s: %zu queue(s), %zu node(s) running, quorum_group_size %d:"
			" %zu member(s) to add%s\n",
			release, qn, nnodes, topo.quorum_group_size, nadd,
			dry_run ? " (dry run)" : "");
	for (size_t i = 0; i < nadd && !rc; i++) {
		char *argv[] = {(char *)prog,
				"-n",
				nodes[0],
				"add_member",
				"--vhost",
				vhost,
				(char *)add[i].queue,
				(char *)add[i].node,
				NULL};

		show(out, json, argv);
		if (!dry_run) {
			rc = run(argv);
			if (!rc)
				log_info("event=queue_member_added queue=%s node=%s", add[i].queue,
					 add[i].node);
		}
	}
	if (!rc && qn) {
		const char *names[GRADEQ_RELEASE_QUEUES_MAX], *v = vhost;
		char vpat[600];
		char *argv[] = {(char *)prog,      "-n", nodes[0],          "rebalance", "quorum",
				"--vhost-pattern", vpat, "--queue-pattern", pattern,     NULL};

		for (size_t i = 0; i < qn; i++)
			names[i] = q[i].name;
		exact_pattern(pattern, sizeof(pattern), names, qn);
		exact_pattern(vpat, sizeof(vpat), &v, 1);
		show(out, json, argv);
		if (!dry_run) {
			rc = run(argv);
			if (!rc)
				log_info("event=queue_leaders_rebalanced release=%s", release);
		}
	}
	if (!rc && json) {
		fprintf(out, "{\"release\":");
		json_str(out, release);
		fprintf(out, ",\"dry_run\":%s,\"quorum_group_size\":%d,\"running\":[",
			dry_run ? "true" : "false", topo.quorum_group_size);
		for (size_t i = 0; i < nnodes; i++) {
			fputs(i ? "," : "", out);
			json_str(out, nodes[i]);
		}
		fputs("],\"added\":[", out);
		for (size_t i = 0; i < nadd; i++) {
			fputs(i ? ",{\"queue\":" : "{\"queue\":", out);
			json_str(out, add[i].queue);
			fputs(",\"node\":", out);
			json_str(out, add[i].node);
			fputs("}", out);
		}
		fprintf(out, "],\"leaders_rebalanced\":%s", !dry_run && qn ? "true" : "false");
		gradeq_rebalance_print_placement(m, release, &topo, true, out);
		fputs("}\n", out);
	} else if (!rc && !dry_run) {
		fprintf(out, "done; 'gradeq-admin release list' shows the placement (the "
			     "management API may take a few seconds to show it)\n");
	}
out:
	if (url) {
		explicit_bzero(url, strlen(url));
		free(url);
	}
	if (copy) {
		explicit_bzero(copy, strlen(copy));
		free(copy);
	}
	gradeq_urls_release(&brokers);
	gradeq_urls_release(&apis);
	gradeq_mgmt_free_nodes(nodes, nnodes);
	gradeq_mgmt_free(m);
	return rc;
}
