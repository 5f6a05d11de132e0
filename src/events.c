#include "gradeq/events.h"

#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gradeq/log.h"
#include "gradeq/parse.h"

static void now_rfc3339(char *buf, size_t len)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	gradeq_rfc3339_ms(buf, len, &ts);
}

/* A JSON string of s; text that is not UTF-8 (a course id may be anything)
 * keeps its ASCII and shows '?' for the other bytes. */
static json_t *jstr(const char *s)
{
	json_t *j;
	char *copy;

	if (!s)
		return json_null();
	j = json_string(s);
	if (j)
		return j;
	copy = strdup(s);
	if (!copy)
		return NULL;
	for (char *p = copy; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	j = json_string(copy);
	free(copy);
	return j;
}

/* The body as compact JSON (keys in the order set), or NULL. Takes o. */
static char *dump(json_t *o)
{
	char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

	json_decref(o);
	return s;
}

static json_t *with_event(const char *kind, const char *state)
{
	json_t *o = json_object();
	char ev[160];

	snprintf(ev, sizeof(ev), "%s.%s", kind, state);
	if (o)
		json_object_set_new(o, "event", jstr(ev));
	return o;
}

char *gradeq_event_run_body(const char *run_id, const char *release, const char *state,
			    const char *at)
{
	json_t *o = with_event("run", state);

	if (o) {
		json_object_set_new(o, "run", jstr(run_id));
		json_object_set_new(o, "release", jstr(release ? release : ""));
		json_object_set_new(o, "at", jstr(at));
	}
	return dump(o);
}

char *gradeq_event_job_body(const char *job_id, const char *run_id, const char *course,
			    const char *state, const char *detail, const char *at)
{
	json_t *o = with_event("job", state);

	if (o) {
		json_object_set_new(o, "job", jstr(job_id));
		json_object_set_new(o, "run", jstr(run_id));
		json_object_set_new(o, "course", jstr(course));
		json_object_set_new(o, "at", jstr(at));
		if (detail)
			json_object_set_new(o, "detail", jstr(detail));
	}
	return dump(o);
}

char *gradeq_event_release_body(const char *release, const char *state, const char *at)
{
	json_t *o = with_event("release", state);

	if (o) {
		json_object_set_new(o, "release", jstr(release));
		json_object_set_new(o, "at", jstr(at));
	}
	return dump(o);
}

/* Publishes body (taken: freed here; NULL when it could not be built). */
static int publish(struct gradeq_broker *b, const char *key, const char *run_id, const char *course,
		   char *body)
{
	amqp_basic_properties_t props;
	struct gradeq_headers h;
	int rc;

	if (!body)
		return GRADEQ_ERR_NOMEM;
	gradeq_headers_init(&h);
	if (run_id)
		gradeq_headers_set_str(&h, "gradeq-run", run_id);
	if (course)
		gradeq_headers_set_str(&h, "gradeq-course", course);
	memset(&props, 0, sizeof(props));
	props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
		       AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_TYPE_FLAG;
	props.content_type = amqp_cstring_bytes("application/json");
	props.delivery_mode = 1; /* events are notifications, not records */
	props.timestamp = (uint64_t)time(NULL);
	props.type = amqp_cstring_bytes("gradeq.event");
	rc = gradeq_headers_finish(&h, &props.headers);
	if (!rc)
		rc = gradeq_broker_publish_event(b, key, &props, body, strlen(body));
	free(body);
	return rc;
}

int gradeq_event_run(struct gradeq_broker *b, const char *run_id, const char *release,
		     const char *state)
{
	char key[128], at[40];

	now_rfc3339(at, sizeof(at));
	snprintf(key, sizeof(key), "run.%s.%s", run_id, state);
	return publish(b, key, run_id, NULL, gradeq_event_run_body(run_id, release, state, at));
}

int gradeq_event_job(struct gradeq_broker *b, const char *job_id, const char *run_id,
		     const char *course, const char *state, const char *detail)
{
	char key[64], at[40];

	now_rfc3339(at, sizeof(at));
	snprintf(key, sizeof(key), "job.%s", state);
	return publish(b, key, run_id, course,
		       gradeq_event_job_body(job_id, run_id, course, state, detail, at));
}

int gradeq_event_output(struct gradeq_broker *b, const char *output_id, const char *run_id,
			const char *course, const char *state)
{
	char key[128], at[40];
	json_t *o = with_event("output", state);

	now_rfc3339(at, sizeof(at));
	if (o) {
		json_object_set_new(o, "output", jstr(output_id));
		json_object_set_new(o, "run", jstr(run_id));
		json_object_set_new(o, "course", jstr(course));
		json_object_set_new(o, "at", jstr(at));
	}
	snprintf(key, sizeof(key), "output.%s.%s", output_id, state);
	return publish(b, key, run_id, course, dump(o));
}

int gradeq_events_follow(struct gradeq_broker *b, const char *run_id, bool json, long max,
			 volatile sig_atomic_t *stop)
{
	const char *keys[3] = {NULL, "job.#", "output.#"};
	char key[128];
	long printed = 0;
	int rc;

	if (run_id)
		snprintf(key, sizeof(key), "run.%s.*", run_id);
	else
		snprintf(key, sizeof(key), "run.#");
	keys[0] = key;
	rc = gradeq_broker_follow(b, NULL, GRADEQ_EVENTS_EXCHANGE, keys, 3, NULL);
	if (rc)
		return rc;
	fflush(stdout);
	while (!*stop && (max <= 0 || printed < max)) {
		amqp_envelope_t env;
		const amqp_table_t *h;
		char run[64] = "", course[512] = "", qrun[400], qcourse[3100];

		rc = gradeq_broker_next(b, &env, 500);
		if (rc == GRADEQ_ERR_TIMEOUT)
			continue;
		if (rc)
			return rc;
		h = (env.message.properties._flags & AMQP_BASIC_HEADERS_FLAG)
			    ? &env.message.properties.headers
			    : NULL;
		gradeq_header_str(h, "gradeq-run", run, sizeof(run));
		gradeq_header_str(h, "gradeq-course", course, sizeof(course));
		/* job events carry their run in a header: filter here */
		if (!run_id || strcmp(run, run_id) == 0) {
			if (json)
				printf("%.*s\n", (int)env.message.body.len,
				       (char *)env.message.body.bytes);
			else /* header values as logfmt values, one line each */
				gradeq_logfmt_print(
					stdout, "%.*s%s%s%s%s", (int)env.routing_key.len,
					(char *)env.routing_key.bytes, run[0] ? " run=" : "",
					run[0] ? gradeq_log_quote(qrun, sizeof(qrun), run) : "",
					course[0] ? " course=" : "",
					course[0]
						? gradeq_log_quote(qcourse, sizeof(qcourse), course)
						: "");
			fflush(stdout);
			printed++;
		}
		amqp_destroy_envelope(&env);
	}
	return 0;
}

int gradeq_event_release(struct gradeq_broker *b, const char *release, const char *state)
{
	char key[128], at[40];

	now_rfc3339(at, sizeof(at));
	snprintf(key, sizeof(key), "release.%s.%s", release, state);
	return publish(b, key, NULL, NULL, gradeq_event_release_body(release, state, at));
}

int gradeq_events_watch_release(struct gradeq_broker *b, const char *release)
{
	char name[GRADEQ_NAME_MAX], key[128], tkey[128], host[64] = "host";
	const char *keys[2] = {key, tkey};

	/* named under gradeq.grades.<R>. so that the consumer role, which may
	 * configure only those queues, can declare it */
	gethostname(host, sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	snprintf(name, sizeof(name), "gradeq.grades.%s.events.%s.%ld", release, host,
		 (long)getpid());
	snprintf(key, sizeof(key), "release.%s.*", release);
	snprintf(tkey, sizeof(tkey), "throttle.%s.*", release);
	return gradeq_broker_follow(b, name, GRADEQ_EVENTS_EXCHANGE, keys, 2,
				    "gradeq-release-events");
}

char *gradeq_event_throttle_body(const char *release, const char *state, double learners_per_s,
				 const char *at)
{
	json_t *o = with_event("throttle", state);

	if (o) {
		json_object_set_new(o, "release", jstr(release));
		json_object_set_new(o, "learners_per_s",
				    learners_per_s > 0 ? json_real(learners_per_s) : json_null());
		json_object_set_new(o, "at", jstr(at));
	}
	return dump(o);
}

int gradeq_event_throttle(struct gradeq_broker *b, const char *release, const char *state,
			  double learners_per_s)
{
	char key[128], at[40];

	now_rfc3339(at, sizeof(at));
	snprintf(key, sizeof(key), "throttle.%s.%s", release, state);
	return publish(b, key, NULL, NULL,
		       gradeq_event_throttle_body(release, state, learners_per_s, at));
}
