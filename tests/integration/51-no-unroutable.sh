#!/usr/bin/env bash
# A normal backfill with job_events on (the default) leaves the management
# UI clean: every job.*, run.* and release.* event is routed (to the bounded
# gradeq.events.log queue), so no message is unroutable. Runs in a virtual
# host of its own, so that other tests' traffic does not count.
#
# How it sees an unroutable message: a policy gives gradeq's two exchanges
# an alternate exchange whose queue receives whatever they cannot route. A
# probe published unroutable after the run must arrive there alone. (The
# vhost's message_stats are no proof: a short-lived channel's publishes
# may never be counted in them.)
set -euo pipefail
# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"

VHOST=gradeq-it51
EVENTS_LOG=gradeq.events.log
user=${GRADEQ_AMQP_URL#*://}
user=${user%%[:@]*}

cleanup51() {
	local rc=$?
	mgmt_curl DELETE "api/vhosts/$VHOST" >/dev/null 2>&1 || true
	(exit "$rc")
	_fail_cleanup
}
trap cleanup51 EXIT

mgmt_curl DELETE "api/vhosts/$VHOST" >/dev/null 2>&1 || true
mgmt_put "api/vhosts/$VHOST" '{}'
mgmt_put "api/permissions/$VHOST/$(urlenc "$user")" '{"configure": ".*", "write": ".*", "read": ".*"}'
export GRADEQ_AMQP_URL=${GRADEQ_AMQP_URL%/*}/$VHOST
UNROUTABLE=it51.unroutable
mgmt_put "api/exchanges/$VHOST/$UNROUTABLE" '{"type": "fanout", "durable": true}'
mgmt_put "api/queues/$VHOST/$UNROUTABLE" '{"durable": true}'
mgmt_curl POST "api/bindings/$VHOST/e/$UNROUTABLE/q/$UNROUTABLE" '{}' >/dev/null ||
	die "binding $UNROUTABLE failed"
mgmt_put "api/policies/$VHOST/it51-unroutable" \
	'{"pattern": "^gradeq(\\.events)?$", "apply-to": "exchanges", "definition": {"alternate-exchange": "it51.unroutable"}}'

own_db gradeq_it_u51
seed small 200
RELEASE=u51
"$ADMIN" release promote "$RELEASE" >/dev/null 2>"$WORK/promote.log" ||
	die "promote failed: $(cat "$WORK/promote.log")"
queue_exists "$EVENTS_LOG" "$VHOST" || die "$EVENTS_LOG was not declared"
bounds=$(mgmt_get "api/queues/$VHOST/$EVENTS_LOG" | jq -c '.arguments | {"x-max-length", "x-message-ttl"}')
assert_eq "bounds of $EVENTS_LOG" '{"x-max-length":10000,"x-message-ttl":3600000}' "$bounds"
keys=$(mgmt_get "api/exchanges/$VHOST/gradeq.events/bindings/source" |
	jq -r --arg q "$EVENTS_LOG" '[.[] | select(.destination == $q) | .routing_key] | sort | join(" ")')
assert_eq "bindings of $EVENTS_LOG" "job.# release.# run.#" "$keys"

run=$(publish_jobs --course "$SMALL" --batch-size 50)
jobs=$(psql_q "SELECT count(*) FROM gradeq_jobs WHERE run_id = '$run'")
"$CONSUMER" --release "$RELEASE" --drain >"$WORK/consumer.log" 2>&1 || die "the consumer failed"
run_complete "$run" || die "run $run is not complete"

# one job.complete a job, at least one run event
events_logged() {
	(($(queue_depth "$EVENTS_LOG" "$VHOST") >= jobs + 1))
}
wait_until 60 "$EVENTS_LOG holding the events of the $jobs jobs" events_logged
# A probe that no binding routes, published last: once it is in the
# alternate exchange's queue, so is anything unroutable published before it.
probe=$(mgmt_curl POST "api/exchanges/$VHOST/gradeq.events/publish" \
	'{"properties": {}, "routing_key": "it51.probe", "payload": "probe", "payload_encoding": "string"}') ||
	die "publishing the probe failed"
log "probe published: $probe"
probe_arrived() {
	(($(queue_depth "$UNROUTABLE" "$VHOST") >= 1))
}
wait_until 60 "the probe in $UNROUTABLE" probe_arrived
got=$(mgmt_curl POST "api/queues/$VHOST/$UNROUTABLE/get" \
	'{"count": 100, "ackmode": "ack_requeue_true", "encoding": "auto"}' |
	jq -r '[.[] | "\(.exchange) \(.routing_key)"] | join(", ")')
assert_eq "unroutable messages (the probe alone)" "gradeq.events it51.probe" "$got"
log "$((jobs + $(queue_depth "$EVENTS_LOG" "$VHOST"))) messages published ($jobs jobs and their events), none unroutable"
log ok
