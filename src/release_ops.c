#include "gradeq/limits.h"
#include "gradeq/release_ops.h"

#include <stdlib.h>
#include <string.h>

#include "gradeq/events.h"
#include "gradeq/log.h"
#include "gradeq/rebalance.h"
#include "gradeq/release.h"

int gradeq_release_print_list(struct gradeq_cli *cli, struct gradeq_store *st, bool json, FILE *out)
{
	struct gradeq_topology topo = gradeq_cli_topology(cli);
	struct gradeq_release_info *rel = NULL;
	struct gradeq_mgmt *m = NULL;
	struct gradeq_broker *b = NULL;
	size_t n = 0;
	int rc = gradeq_release_list(st, false, &rel, &n);

	if (rc)
		return rc;
	if (gradeq_cli_broker(cli, NULL, &b))
		b = NULL; /* queue columns stay empty without a broker */
	if (b)
		gradeq_cli_mgmt(cli, &m);
	if (json)
		fputs("[", out);
	else
		fprintf(out, "%-16s  %-9s  %6s  %5s  %9s  %9s  %9s  %s\n", "RELEASE", "STATE",
			"SCHEMA", "RUNS", "WORK", "UNACKED", "CONSUMERS", "DEAD");
	for (size_t i = 0; i < n; i++) {
		const struct gradeq_release_info *r = &rel[i];
		const char *state = gradeq_release_state_name(r->state);
		struct gradeq_release_depths d;
		char wu[24] = "null";

		gradeq_release_depths(b, m, r->name, &topo, &d);
		if (d.work_unacked >= 0)
			snprintf(wu, sizeof(wu), "%lld", (long long)d.work_unacked);
		if (json)
			fprintf(out,
				"%s{\"name\":\"%s\",\"state\":\"%s\",\"schema_version\":%d,"
				"\"runs\":%ld,\"work_ready\":%d,\"work_unacked\":%s,\"consumers\":%d,"
				"\"dead_ready\":%d",
				i ? "," : "", r->name, state, r->schema_version, r->runs,
				d.have ? (int)d.work_ready : -1, d.have ? wu : "null",
				d.have ? (int)d.consumers : -1, d.have ? (int)d.dead_ready : -1);
		else if (d.have)
			fprintf(out, "%-16s  %-9s  %6d  %5ld  %9u  %9s  %9u  %u\n", r->name, state,
				r->schema_version, r->runs, d.work_ready,
				d.work_unacked >= 0 ? wu : "-", d.consumers, d.dead_ready);
		else
			fprintf(out, "%-16s  %-9s  %6d  %5ld  %9s  %9s  %9s  %s\n", r->name, state,
				r->schema_version, r->runs, "-", "-", "-", "-");
		if (r->state != GRADEQ_RELEASE_RETIRED)
			gradeq_rebalance_print_placement(m, r->name, &topo, json, out);
		else if (json)
			fputs(",\"queues\":[]", out);
		if (json)
			fputs("}", out);
	}
	if (json)
		fputs("]\n", out);
	free(rel);
	gradeq_mgmt_free(m);
	gradeq_broker_free(b);
	return 0;
}

static void announce(struct gradeq_broker *b, const char *release, const char *state)
{
	if (gradeq_event_release(b, release, state))
		log_warn("event=event_publish_failed release=%s", release);
}

int gradeq_release_do_promote(struct gradeq_cli *cli, struct gradeq_store *st, const char *name,
			      FILE *out)
{
	struct gradeq_topology topo = gradeq_cli_topology(cli);
	struct gradeq_broker *b = NULL;
	char *drained = NULL, *save = NULL;
	int rc;

	/* the queues exist before anyone is told to publish to them */
	rc = gradeq_cli_broker(cli, name, &b);
	if (!rc)
		rc = gradeq_broker_declare(b, name, &topo);
	if (!rc)
		rc = gradeq_release_promote(st, name, &drained);
	if (rc)
		goto out;
	/* tell the old release's consumers now; they also poll the registry */
	for (char *t = strtok_r(drained, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		announce(b, t, "draining");
		fprintf(out, "release %s draining\n", t);
	}
	announce(b, name, "promoted");
	fprintf(out, "release %s promoted\n", name);
out:
	free(drained);
	gradeq_broker_free(b);
	return rc;
}

/* What drain and retire share: the release's state read and checked, a
 * broker connection named for it; op_end frees what op_begin and the
 * command took. */
struct op {
	const char *name;
	enum gradeq_release_state state;
	struct gradeq_topology topo;
	struct gradeq_broker *b, *pub;
	bool unregistered; /* retire: queues on the broker, no registry entry */
};

static int op_begin(struct gradeq_cli *cli, struct gradeq_store *st, const char *name,
		    const char *verb, struct op *op)
{
	int rc;

	memset(op, 0, sizeof(*op));
	op->name = name;
	op->topo = gradeq_cli_topology(cli);
	rc = gradeq_release_get(st, name, &op->state);
	if (rc == GRADEQ_ERR_NOT_FOUND && strcmp(verb, "retire") == 0) {
		/* left on the broker by a consumer or a replay of a release the
		 * registry never had: its queues can still be cleaned up */
		op->unregistered = true;
		op->state = GRADEQ_RELEASE_ACTIVE;
		return 0;
	}
	if (rc)
		return rc;
	if (op->state == GRADEQ_RELEASE_PROMOTED)
		return gradeq_error(GRADEQ_ERR_STATE, "release '%s' is promoted: %s", name,
				    strcmp(verb, "drain") == 0 ? "promote another release first"
							       : "promote another first");
	if (op->state == GRADEQ_RELEASE_RETIRED && strcmp(verb, "drain") == 0)
		return gradeq_error(GRADEQ_ERR_STATE, "release '%s' is retired: nothing to drain",
				    name);
	return 0;
}

static int op_end(struct op *op, int rc)
{
	gradeq_broker_free(op->b);
	gradeq_broker_free(op->pub);
	return rc;
}

/* Connects op->pub to release 'to' (declared, in confirm mode). */
static int connect_target(struct gradeq_cli *cli, struct op *op, const char *to)
{
	int rc = gradeq_cli_broker(cli, to, &op->pub);

	if (!rc)
		rc = gradeq_broker_declare(op->pub, to, &op->topo);
	if (!rc)
		rc = gradeq_broker_confirm_mode(op->pub, GRADEQ_MOVE_CONFIRM_WINDOW);
	return rc;
}

int gradeq_release_do_drain(struct gradeq_cli *cli, struct gradeq_store *st, const char *name,
			    bool forward, FILE *out)
{
	struct op op;
	char promoted[80];
	long moved = 0;
	int rc = op_begin(cli, st, name, "drain", &op);

	if (!rc)
		rc = gradeq_release_mark_draining(st, name);
	if (!rc)
		rc = gradeq_cli_broker(cli, name, &op.b);
	if (!rc)
		announce(op.b, name, "draining");
	if (!rc && forward) {
		rc = gradeq_release_resolve(st, NULL, promoted, sizeof(promoted));
		if (!rc)
			rc = connect_target(cli, &op, promoted);
		if (!rc)
			rc = gradeq_release_forward_retries(op.b, op.pub, name, promoted, &op.topo,
							    &moved);
		if (!rc)
			fprintf(out, "forwarded %ld waiting retr%s to release %s\n", moved,
				moved == 1 ? "y" : "ies", promoted);
	}
	if (!rc)
		fprintf(out, "release %s draining\n", name);
	return op_end(&op, rc);
}

/* Whether any of the release's own queues exists on the broker. */
static int any_queue(struct gradeq_broker *b, const char *release, const struct gradeq_topology *t,
		     bool *any)
{
	struct gradeq_release_queue q[GRADEQ_RELEASE_QUEUES_MAX];
	size_t n = gradeq_release_queues(release, t, q);

	*any = false;
	for (size_t i = 0; i < n && !*any; i++) {
		int rc = gradeq_broker_queue_info(b, q[i].name, NULL, NULL);

		if (rc && rc != GRADEQ_ERR_NOT_FOUND)
			return rc;
		*any = rc == 0;
	}
	return 0;
}

int gradeq_release_do_retire(struct gradeq_cli *cli, struct gradeq_store *st, const char *name,
			     const char *move_dead_to, FILE *out)
{
	struct op op;
	char q[GRADEQ_NAME_MAX], key[GRADEQ_NAME_MAX];
	uint32_t dead = 0;
	long moved = 0;
	bool any = true;
	int rc = op_begin(cli, st, name, "retire", &op);

	gradeq_dead_queue(q, name);
	if (!rc)
		rc = gradeq_cli_broker(cli, name, &op.b);
	if (!rc && op.unregistered)
		rc = any_queue(op.b, name, &op.topo, &any);
	if (!rc && !any)
		rc = gradeq_error(GRADEQ_ERR_NOT_FOUND,
				  "release '%s' does not exist: not in the registry, no queue on "
				  "the broker",
				  name);
	if (!rc)
		rc = gradeq_release_check_drained(op.b, name, &op.topo, &dead);
	if (!rc && dead && !move_dead_to)
		rc = gradeq_error(GRADEQ_ERR_STATE,
				  "release '%s' has %u dead letter(s) in '%s': replay them, or "
				  "give --move-dead-to R2",
				  name, dead, q);
	if (!rc && dead &&
	    (!gradeq_release_name_ok(move_dead_to) || strcmp(move_dead_to, name) == 0))
		rc = gradeq_error(GRADEQ_ERR_INVALID, "bad --move-dead-to release '%s'",
				  move_dead_to);
	if (!rc && dead)
		rc = connect_target(cli, &op, move_dead_to);
	if (!rc && dead)
		rc = gradeq_release_move(op.b, op.pub, q, GRADEQ_DEAD_EXCHANGE,
					 gradeq_work_key(key, move_dead_to), &moved);
	if (!rc)
		rc = gradeq_release_delete_queues(op.b, name, &op.topo);
	if (!rc && !op.unregistered)
		rc = gradeq_release_mark_retired(st, name);
	if (!rc && moved)
		fprintf(out, "moved %ld dead letter(s) to release %s\n", moved, move_dead_to);
	if (!rc)
		fprintf(out, "release %s retired%s\n", name,
			op.unregistered ? " (its queues: the registry never had it)" : "");
	return op_end(&op, rc);
}
