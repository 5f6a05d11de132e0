#!/usr/bin/env bash
# A normal backfill with job_events on (the default) leaves the management
# UI clean: every job.*, run.* and release.* event is routed (to the bounded
# gradeq.events.log queue), so the virtual host counts no unroutable message
# (message_stats return_unroutable and drop_unroutable stay at 0). Runs in a
# virtual host of its own, so that other tests' traffic does not count.
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
# The vhost's statistics lag: wait until they count every publish (the jobs
# and what the events log holds), then no unroutable one may be among them.
stats() {
	mgmt_get "api/vhosts/$VHOST" | jq -r '.message_stats // {} |
		"\(.publish // 0) \(.return_unroutable // 0) \(.drop_unroutable // 0)"'
}
published=$((jobs + $(queue_depth "$EVENTS_LOG" "$VHOST")))
counted() {
	local p
	read -r p _ _ < <(stats)
	((p >= published))
}
wait_until 60 "the statistics of $VHOST counting $published publishes" counted
read -r p returned dropped < <(stats)
assert_eq "returned unroutable messages in $VHOST" 0 "$returned"
assert_eq "dropped unroutable messages in $VHOST" 0 "$dropped"
log "$p messages published ($jobs jobs and their events), none unroutable"
log ok
