#include "gradeq/limits.h"
#include "gradeq/release.h"

#include <stdio.h>
#include <string.h>

#include "gradeq/job.h"
#include "gradeq/log.h"
#include "store/releases.h"

int gradeq_release_state(struct gradeq_store *st, const char *name, char *state)
{
	return gradeq_store_release_state(st, name, state);
}

int gradeq_release_get(struct gradeq_store *st, const char *name, enum gradeq_release_state *state)
{
	char text[16];
	int rc = gradeq_store_release_state(st, name, text), s;

	if (rc)
		return rc;
	s = gradeq_release_state_parse(text);
	if (s < 0)
		return gradeq_error(GRADEQ_ERR_DB, "release '%s' has unknown state '%s'", name,
				    text);
	*state = (enum gradeq_release_state)s;
	return 0;
}

static int resolve(struct gradeq_store *st, const char *explicit_name, bool record, char *out,
		   size_t len)
{
	enum gradeq_release_state state = GRADEQ_RELEASE_ACTIVE;
	int rc;

	if (!explicit_name) {
		rc = gradeq_store_release_promoted(st, out, len);
		if (rc == GRADEQ_ERR_NOT_FOUND)
			rc = gradeq_error(GRADEQ_ERR_NOT_FOUND,
					  "no release is promoted: give --release R, or promote "
					  "one with 'gradeq-admin release promote R'");
		return rc;
	}
	if (!gradeq_release_name_ok(explicit_name))
		return gradeq_error(GRADEQ_ERR_INVALID, "bad release name '%s' (%s)", explicit_name,
				    GRADEQ_RELEASE_NAME_RULE);
	rc = record ? gradeq_store_release_record(st, explicit_name, GRADEQ_SCHEMA_VERSION) : 0;
	if (!rc)
		rc = gradeq_release_get(st, explicit_name, &state);
	if (rc == GRADEQ_ERR_NOT_FOUND && !record) {
		/* it would be recorded as active */
		rc = 0;
		state = GRADEQ_RELEASE_ACTIVE;
	}
	if (rc)
		return rc;
	if (state == GRADEQ_RELEASE_DRAINING || state == GRADEQ_RELEASE_RETIRED)
		return gradeq_error(GRADEQ_ERR_STATE,
				    "release '%s' is %s: publish to the promoted release instead",
				    explicit_name, gradeq_release_state_name(state));
	snprintf(out, len, "%s", explicit_name);
	return 0;
}

int gradeq_release_resolve(struct gradeq_store *st, const char *explicit_name, char *out,
			   size_t len)
{
	return resolve(st, explicit_name, true, out, len);
}

int gradeq_release_peek(struct gradeq_store *st, const char *explicit_name, char *out, size_t len)
{
	return resolve(st, explicit_name, false, out, len);
}

int gradeq_release_list(struct gradeq_store *st, bool live_only, struct gradeq_release_info **out,
			size_t *n)
{
	return gradeq_store_release_list(st, live_only, out, n);
}

int gradeq_release_promote(struct gradeq_store *st, const char *name, char **drained)
{
	*drained = NULL;
	if (!gradeq_release_name_ok(name))
		return gradeq_error(GRADEQ_ERR_INVALID, "bad release name '%s'", name);
	return gradeq_store_release_promote(st, name, GRADEQ_SCHEMA_VERSION, drained);
}

int gradeq_release_mark_draining(struct gradeq_store *st, const char *name)
{
	return gradeq_store_release_mark_draining(st, name);
}

int gradeq_release_mark_retired(struct gradeq_store *st, const char *name)
{
	return gradeq_store_release_mark_retired(st, name);
}

size_t gradeq_release_queues(const char *release, const struct gradeq_topology *t,
			     struct gradeq_release_queue *out)
{
	size_t n = 0;

	out[n].kind = GRADEQ_QUEUE_WORK;
	out[n].seconds = 0;
	gradeq_work_queue(out[n++].name, release);
	for (int i = 0; i < t->nretry_tiers && i < GRADEQ_MAX_RETRY_TIERS; i++) {
		out[n].kind = GRADEQ_QUEUE_RETRY;
		out[n].seconds = t->retry_tiers[i];
		gradeq_retry_queue(out[n++].name, release, t->retry_tiers[i]);
	}
	out[n].kind = GRADEQ_QUEUE_DEAD;
	out[n].seconds = 0;
	gradeq_dead_queue(out[n++].name, release);
	return n;
}

void gradeq_release_depths(struct gradeq_broker *b, const struct gradeq_mgmt *m,
			   const char *release, const struct gradeq_topology *t,
			   struct gradeq_release_depths *out)
{
	struct gradeq_release_queue q[GRADEQ_RELEASE_QUEUES_MAX];
	size_t n = gradeq_release_queues(release, t, q);

	memset(out, 0, sizeof(*out));
	out->work_unacked = gradeq_mgmt_unacked(m, q[0].name);
	out->dead_unacked = gradeq_mgmt_unacked(m, q[n - 1].name);
	out->have = b &&
		    !gradeq_broker_queue_info(b, q[0].name, &out->work_ready, &out->consumers) &&
		    !gradeq_broker_queue_info(b, q[n - 1].name, &out->dead_ready, NULL);
	if (!out->have)
		return;
	for (size_t i = 1; i + 1 < n; i++) {
		uint32_t r = 0;

		if (gradeq_broker_queue_info(b, q[i].name, &r, NULL) && gradeq_broker_broken(b))
			break;
		out->retry_ready[out->nretry++] = r;
	}
}

int gradeq_release_check_drained(struct gradeq_broker *b, const char *release,
				 const struct gradeq_topology *t, uint32_t *dead_ready)
{
	struct gradeq_release_queue q[GRADEQ_RELEASE_QUEUES_MAX];
	size_t n = gradeq_release_queues(release, t, q);
	uint32_t ready = 0, consumers = 0;
	int rc;

	*dead_ready = 0;
	for (size_t i = 0; i < n; i++) {
		rc = gradeq_broker_queue_info(b, q[i].name, &ready, &consumers);
		if (rc == GRADEQ_ERR_NOT_FOUND)
			continue;
		if (rc)
			return rc;
		if (q[i].kind == GRADEQ_QUEUE_DEAD)
			*dead_ready = ready;
		else if (ready || consumers)
			return gradeq_error(GRADEQ_ERR_STATE,
					    "release '%s' is not drained: queue '%s' has %u ready "
					    "message(s) and %u consumer(s)",
					    release, q[i].name, ready, consumers);
	}
	return 0;
}

int gradeq_release_move(struct gradeq_broker *src, struct gradeq_broker *dst, const char *from,
			const char *exchange, const char *key, long *moved)
{
	int rc;

	*moved = 0;
	for (;;) {
		amqp_envelope_t env;

		rc = gradeq_broker_get(src, from, &env);
		if (rc == GRADEQ_ERR_NOT_FOUND)
			return 0;
		if (rc)
			return rc;
		rc = gradeq_broker_publish(dst, exchange, key, &env.message.properties,
					   env.message.body.bytes, env.message.body.len);
		if (!rc)
			rc = gradeq_broker_wait_confirms(dst, GRADEQ_CONFIRM_WAIT_MS);
		if (!rc)
			rc = gradeq_broker_ack(src, env.delivery_tag);
		amqp_destroy_envelope(&env);
		if (rc)
			return rc;
		(*moved)++;
	}
}

int gradeq_release_forward_retries(struct gradeq_broker *src, struct gradeq_broker *dst,
				   const char *release, const char *to_release,
				   const struct gradeq_topology *t, long *moved)
{
	struct gradeq_release_queue q[GRADEQ_RELEASE_QUEUES_MAX];
	size_t n = gradeq_release_queues(release, t, q);
	char key[GRADEQ_NAME_MAX];
	long k = 0;
	int rc = 0;

	*moved = 0;
	gradeq_work_key(key, to_release);
	for (size_t i = 0; !rc && i < n; i++) {
		if (q[i].kind != GRADEQ_QUEUE_RETRY)
			continue;
		rc = gradeq_release_move(src, dst, q[i].name, GRADEQ_EXCHANGE, key, &k);
		if (rc == GRADEQ_ERR_NOT_FOUND)
			rc = 0;
		*moved += k;
	}
	return rc;
}

static int delete_queue(struct gradeq_broker *b, const char *queue)
{
	uint32_t lost = 0;
	int rc = gradeq_broker_queue_delete(b, queue, &lost);

	if (rc == GRADEQ_ERR_NOT_FOUND)
		return 0;
	/* a message that arrived between the check and the delete */
	if (!rc && lost)
		log_error("event=retire_lost queue=%s messages=%u", queue, lost);
	return rc;
}

int gradeq_release_delete_queues(struct gradeq_broker *b, const char *release,
				 const struct gradeq_topology *t)
{
	struct gradeq_release_queue q[GRADEQ_RELEASE_QUEUES_MAX];
	size_t n = gradeq_release_queues(release, t, q);
	int rc = delete_queue(b, q[n - 1].name);

	for (size_t i = 0; !rc && i + 1 < n; i++)
		rc = delete_queue(b, q[i].name);
	return rc;
}
