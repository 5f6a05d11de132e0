#include "gradeq/events.h"

#include <stdio.h>
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

/* JSON string escaping for the few free-text values. */
static void json_str(char *dst, size_t cap, const char *s)
{
	size_t o = 0;

	for (; s && *s && o + 7 < cap; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			dst[o++] = '\\';
			dst[o++] = (char)c;
		} else if (c < 0x20) {
			o += (size_t)snprintf(dst + o, cap - o, "\\u%04x", c);
		} else {
			dst[o++] = (char)c;
		}
	}
	dst[o] = '\0';
}

static int publish(struct gradeq_broker *b, const char *key, const char *run_id, const char *course,
		   const char *body)
{
	amqp_basic_properties_t props;
	struct gradeq_headers h;
	int rc;

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
	if (rc)
		return rc;
	return gradeq_broker_publish_event(b, key, &props, body, strlen(body));
}

int gradeq_event_run(struct gradeq_broker *b, const char *run_id, const char *release,
		     const char *state)
{
	char key[128], body[512], at[40];

	now_rfc3339(at, sizeof(at));
	snprintf(key, sizeof(key), "run.%s.%s", run_id, state);
	snprintf(body, sizeof(body),
		 "{\"event\":\"run.%s\",\"run\":\"%s\",\"release\":\"%s\",\"at\":\"%s\"}", state,
		 run_id, release ? release : "", at);
	return publish(b, key, run_id, NULL, body);
}

int gradeq_event_job(struct gradeq_broker *b, const char *job_id, const char *run_id,
		     const char *course, const char *state, const char *detail)
{
	char key[64], body[2048], at[40], c[600], d[800];

	now_rfc3339(at, sizeof(at));
	json_str(c, sizeof(c), course);
	json_str(d, sizeof(d), detail);
	snprintf(key, sizeof(key), "job.%s", state);
	snprintf(
		body, sizeof(body),
		"{\"event\":\"job.%s\",\"job\":\"%s\",\"run\":\"%s\",\"course\":\"%s\",\"at\":\"%s\"%s%s%s}",
		state, job_id, run_id, c, at, detail ? ",\"detail\":\"" : "", detail ? d : "",
		detail ? "\"" : "");
	return publish(b, key, run_id, course, body);
}

int gradeq_events_follow(struct gradeq_broker *b, const char *run_id, bool json, long max,
			 volatile sig_atomic_t *stop)
{
	const char *keys[2] = {NULL, "job.#"};
	char key[128];
	long printed = 0;
	int rc;

	if (run_id)
		snprintf(key, sizeof(key), "run.%s.*", run_id);
	else
		snprintf(key, sizeof(key), "run.#");
	keys[0] = key;
	rc = gradeq_broker_follow(b, NULL, GRADEQ_EVENTS_EXCHANGE, keys, 2, NULL);
	if (rc)
		return rc;
	fflush(stdout);
	while (!*stop && (max <= 0 || printed < max)) {
		amqp_envelope_t env;
		const amqp_table_t *h;
		char run[64] = "", course[512] = "";

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
			else
				printf("%.*s%s%s%s%s\n", (int)env.routing_key.len,
				       (char *)env.routing_key.bytes, run[0] ? " run=" : "", run,
				       course[0] ? " course=" : "", course);
			fflush(stdout);
			printed++;
		}
		amqp_destroy_envelope(&env);
	}
	return 0;
}

int gradeq_event_release(struct gradeq_broker *b, const char *release, const char *state)
{
	char key[128], body[256], at[40];

	now_rfc3339(at, sizeof(at));
	snprintf(key, sizeof(key), "release.%s.%s", release, state);
	snprintf(body, sizeof(body), "{\"event\":\"release.%s\",\"release\":\"%s\",\"at\":\"%s\"}",
		 state, release, at);
	return publish(b, key, NULL, NULL, body);
}

int gradeq_events_watch_release(struct gradeq_broker *b, const char *release)
{
	char name[GRADEQ_NAME_MAX], key[128], host[64] = "host";
	const char *keys[1] = {key};

	/* named under gradeq.grades.<R>. so that the consumer role, which may
	 * configure only those queues, can declare it */
	gethostname(host, sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	snprintf(name, sizeof(name), "gradeq.grades.%s.events.%s.%ld", release, host,
		 (long)getpid());
	snprintf(key, sizeof(key), "release.%s.*", release);
	return gradeq_broker_follow(b, name, GRADEQ_EVENTS_EXCHANGE, keys, 1,
				    "gradeq-release-events");
}
