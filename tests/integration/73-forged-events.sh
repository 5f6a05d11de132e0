#!/usr/bin/env bash
# Forged control events. A release.<R>.draining event is a hint, not an
# order: the consumers of the promoted release confirm it in the registry
# (gradeq_releases) before they drain.
#  1. A forged release.R.draining (published as the broker's admin through
#     the management API) while R is the promoted release: the consumer logs
#     event=release_event_ignored, keeps consuming (a job published
#     afterwards is completed) and stays alive.
#  2. A genuine promote of another release: the registry says R is draining,
#     so the consumer drains and exits 0.
#  3. After packaging/rabbitmq/setup on the test's vhost, the broker refuses
#     release.* events from the publisher and consumer roles (topic
#     permissions on gradeq.events) but lets the publisher send run.* events
#     and the operator release.* events.
set -euo pipefail
# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"

own_db gradeq_it_f73
fresh_release f73
seed small 200
"$ADMIN" release promote "$RELEASE" >/dev/null 2>"$WORK/promote.log" ||
	die "promote failed: $(cat "$WORK/promote.log")"

start_consumer consumer.log
pid=$CONSUMER_PID
wait_until 30 "the consumer consuming" log_has consumer.log "event=consuming queue=$(work_queue)"

# --- 1. forged ------------------------------------------------------------------
forge() {
	local body out
	body=$(jq -n --arg key "release.$RELEASE.draining" --arg r "$RELEASE" \
		'{routing_key: $key, payload: ({event: "release.draining", release: $r} | tojson),
		  payload_encoding: "string", properties: {content_type: "application/json"}}')
	out=$(mgmt_curl POST "api/exchanges/$VH/gradeq.events/publish" "$body") ||
		die "publishing the forged event failed"
	assert_eq "forged event routed" true "$(jq -r .routed <<<"$out")"
}
forge
wait_until 30 "the forged event ignored" log_has consumer.log \
	"event=release_event_ignored release=$RELEASE .*reason=registry_promoted"
log_has consumer.log "event=draining" && die "the consumer drains on a forged event"

run=$(publish_jobs --course "$SMALL" --batch-size 50)
wait_until 60 "run $run complete after the forged event" run_complete "$run"
kill -0 "$pid" 2>/dev/null || die "the consumer exited after a forged event"
log_has consumer.log "event=draining" && die "the consumer drains on a forged event"
log "forged release.$RELEASE.draining ignored; run $run graded afterwards"

# --- 2. genuine ---------------------------------------------------------------
"$ADMIN" release promote "$RELEASE-next" >/dev/null 2>"$WORK/promote.log" ||
	die "promote of $RELEASE-next failed: $(cat "$WORK/promote.log")"
wait_exit "$pid" 60
assert_eq "exit status after a genuine drain" 0 "$EXIT_STATUS"
log_has consumer.log "event=draining release=$RELEASE reason=promoted_elsewhere registry=draining" ||
	die "the consumer did not drain on the registry's word"
log "genuine draining event confirmed by the registry: drained, exit 0"

# --- 3. who may send release.* events ---------------------------------------------
# prodlib's helpers for the role users (its own_db is not used from here on)
# shellcheck source=tests/integration/prodlib.sh
. "$(dirname "${BASH_SOURCE[0]}")/prodlib.sh"
if ! "$PY" -c 'import pika' 2>/dev/null; then
	skip "python3-pika is not installed (tools/deps)"
fi
PROBE=$GRADEQ_SRC/tests/integration/amqp_probe.py
setup_roles "$TEST_VHOST"
PUB_URL=$(amqp_url_as gradeq-publisher "$PUB_PW" "$TEST_VHOST")
CON_URL=$(amqp_url_as gradeq-consumer "$CON_PW" "$TEST_VHOST")
OP_URL=$(amqp_url_as gradeq-operator "$OP_PW" "$TEST_VHOST")
refused="^ACCESS_REFUSED - access to topic 'release\\.$RELEASE\\.draining' in exchange 'gradeq\\.events' in vhost '$TEST_VHOST' refused for user"
out=$(GRADEQ_PROBE_URL=$PUB_URL "$PY" "$PROBE" publish gradeq.events "release.$RELEASE.draining") &&
	die "the publisher sent release.$RELEASE.draining"
assert_match "publisher release event" "$refused 'gradeq-publisher'" "$out"
out=$(GRADEQ_PROBE_URL=$CON_URL "$PY" "$PROBE" publish gradeq.events "release.$RELEASE.draining") &&
	die "the consumer sent release.$RELEASE.draining"
assert_match "consumer release event" "$refused 'gradeq-consumer'" "$out"
out=$(GRADEQ_PROBE_URL=$PUB_URL "$PY" "$PROBE" publish gradeq.events "run.x.complete") ||
	die "the publisher may no longer send run events: $out"
out=$(GRADEQ_PROBE_URL=$CON_URL "$PY" "$PROBE" publish gradeq.events "job.complete") ||
	die "the consumer may no longer send job events: $out"
out=$(GRADEQ_PROBE_URL=$OP_URL "$PY" "$PROBE" publish gradeq.events "release.$RELEASE.draining") ||
	die "the operator may not send release events: $out"
log "release.* events: refused for the publisher and the consumer, allowed for the operator"
log ok
