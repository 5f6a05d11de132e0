/* gradeq-admin throttle (see include/gradeq/throttle_cmd.h). The registry
 * (gradeq_throttle) is what consumers obey; the event only makes them read
 * it at once instead of at their next periodic check. */
#include "gradeq/throttle_cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradeq/events.h"
#include "gradeq/log.h"
#include "gradeq/release.h"
#include "store/throttle.h"

/* The release a command is about: --release, the configuration's, else the
 * promoted one. */
static int which_release(struct gradeq_cli *cli, struct gradeq_store *st, const char *opt,
			 char *out, size_t len)
{
	if (!opt)
		opt = cli->cfg->release;
	if (opt) {
		if (gradeq_cli_check_release(cli, "--release", opt))
			return 2;
		snprintf(out, len, "%s", opt);
		return 0;
	}
	return gradeq_release_peek(st, NULL, out, len) ? 1 : 0;
}

/* Announces the change; a lost event is only a delay (consumers re-read
 * the registry every few seconds), so it is a warning, not a failure. */
static bool announce(struct gradeq_cli *cli, const char *release, const char *state, double rate)
{
	struct gradeq_broker *b = NULL;
	int rc = gradeq_cli_broker(cli, NULL, &b);

	if (!rc)
		rc = gradeq_event_throttle(b, release, state, rate);
	gradeq_broker_free(b);
	if (rc)
		log_warn("event=event_publish_failed release=%s event=throttle.%s error=\"%s\" "
			 "note=consumers_read_the_registry_within_5s",
			 release, state, gradeq_errmsg(rc));
	return rc == 0;
}

static int set_or_off(struct gradeq_cli *cli, struct gradeq_store *st, int argc, char **argv,
		      bool json, bool set)
{
	const char *rel = NULL, *n = NULL;
	const struct gradeq_cli_opt opts[] = {{"--release", NULL, NULL, &rel},
					      {"--learners-per-s", NULL, NULL, &n},
					      {NULL, NULL, NULL, NULL}};
	char release[GRADEQ_NAME_MAX], what[32];
	double rate = 0;
	bool announced;
	int rc;

	snprintf(what, sizeof(what), "throttle %s", argv[1]);
	if (gradeq_cli_scan(cli, what, "unexpected argument", argc, argv, 2, opts, NULL, false))
		return 2;
	if (set && !n) {
		gradeq_cli_error(cli, "usage: gradeq-admin throttle set --learners-per-s N "
				      "[--release R]");
		return 2;
	}
	if (!set && n) {
		gradeq_cli_error(cli, "throttle off: unexpected argument '--learners-per-s'");
		return 2;
	}
	if (set && gradeq_cli_parse_double(cli, "--learners-per-s", n, 0.001, 1e9, &rate))
		return 2;
	rc = which_release(cli, st, rel, release, sizeof(release));
	if (rc == 1)
		gradeq_cli_error(cli, "%s", gradeq_errmsg(GRADEQ_ERR_NOT_FOUND));
	if (rc)
		return rc;
	rc = gradeq_store_throttle_set(st, release, set ? rate : 0, cli->prog);
	if (rc) {
		gradeq_cli_error(cli, "%s", gradeq_errmsg(rc));
		return 1;
	}
	announced = announce(cli, release, set ? "set" : "off", rate);
	if (json)
		printf("{\"release\":\"%s\",\"learners_per_s\":%s%g,\"announced\":%s}\n", release,
		       set ? "" : "null", set ? rate : 0.0, announced ? "true" : "false");
	else if (set)
		printf("throttle of release %s: %g learners/s\n", release, rate);
	else
		printf("throttle of release %s: off\n", release);
	return 0;
}

/* throttle schedule [--release R] (--clear | WINDOW...) */
static int schedule(struct gradeq_cli *cli, struct gradeq_store *st, int argc, char **argv,
		    bool json)
{
	struct gradeq_throttle_window *w = calloc((size_t)argc + 1, sizeof(*w));
	const char *rel = NULL;
	char release[GRADEQ_NAME_MAX];
	bool clear = false, announced;
	size_t n = 0;
	int rc = 2;

	if (!w) {
		gradeq_cli_error(cli, "%s", gradeq_strerror(GRADEQ_ERR_NOMEM));
		return 1;
	}
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--release") == 0 && i + 1 < argc && !rel) {
			rel = argv[++i];
		} else if (strcmp(argv[i], "--clear") == 0) {
			clear = true;
		} else if (gradeq_throttle_window_parse(argv[i], &w[n]) == 0) {
			n++;
		} else {
			gradeq_cli_error(cli,
					 "throttle schedule: a window is HH:MM-HH:MM=N (learners/s)"
					 " or HH:MM-HH:MM=off, not '%s'",
					 argv[i]);
			goto out;
		}
	}
	if (clear == (n > 0)) {
		gradeq_cli_error(cli,
				 "usage: gradeq-admin throttle schedule [--release R] (--clear | "
				 "HH:MM-HH:MM=N|off ...)");
		goto out;
	}
	rc = which_release(cli, st, rel, release, sizeof(release));
	if (rc == 1)
		gradeq_cli_error(cli, "%s", gradeq_errmsg(GRADEQ_ERR_NOT_FOUND));
	if (rc)
		goto out;
	rc = gradeq_store_throttle_schedule(st, release, w, n);
	if (rc) {
		gradeq_cli_error(cli, "%s", gradeq_errmsg(rc));
		rc = 1;
		goto out;
	}
	announced = announce(cli, release, "schedule", 0);
	if (json)
		printf("{\"release\":\"%s\",\"windows\":%zu,\"announced\":%s}\n", release, n,
		       announced ? "true" : "false");
	else
		printf("throttle schedule of release %s: %zu window%s\n", release, n,
		       n == 1 ? "" : "s");
out:
	free(w);
	return rc;
}

static int show(struct gradeq_cli *cli, struct gradeq_store *st, int argc, char **argv, bool json)
{
	const char *rel = NULL;
	const struct gradeq_cli_opt opts[] = {{"--release", NULL, NULL, &rel},
					      {NULL, NULL, NULL, NULL}};
	char *out = NULL;
	int rc;

	if (gradeq_cli_scan(cli, "throttle show", "unexpected argument", argc, argv, 2, opts, NULL,
			    false) ||
	    (rel && gradeq_cli_check_release(cli, "--release", rel)))
		return 2;
	rc = gradeq_throttle_status_json(st, rel, &out);
	if (rc) {
		gradeq_cli_error(cli, "%s", gradeq_errmsg(rc));
		return 1;
	}
	if (json)
		printf("%s\n", out);
	else if (strcmp(out, "[]") == 0)
		printf("no budget set and no consumer reporting\n");
	else
		gradeq_throttle_status_text(st, out, stdout);
	free(out);
	return 0;
}

int gradeq_throttle_main(struct gradeq_cli *cli, struct gradeq_store *st, int argc, char **argv,
			 bool json)
{
	const char *verb = argc > 1 ? argv[1] : "";

	if (strcmp(verb, "set") == 0 || strcmp(verb, "off") == 0)
		return set_or_off(cli, st, argc, argv, json, verb[0] == 's');
	if (strcmp(verb, "show") == 0)
		return show(cli, st, argc, argv, json);
	if (strcmp(verb, "schedule") == 0)
		return schedule(cli, st, argc, argv, json);
	gradeq_cli_usage_error(cli, GRADEQ_THROTTLE_USAGE);
	return 2;
}

int gradeq_throttle_status_json(struct gradeq_store *st, const char *release, char **out)
{
	return gradeq_store_throttle_json(st, release, out);
}

void gradeq_throttle_status_text(struct gradeq_store *st, const char *json, FILE *out)
{
	gradeq_store_throttle_text(st, json, out);
}
