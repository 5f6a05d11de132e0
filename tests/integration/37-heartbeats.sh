#!/usr/bin/env bash
# Heartbeats on both of a consumer's connections. With heartbeat = 2 s, a
# consumer stays idle for over six heartbeats; its consuming and its
# publishing connection are both still open afterwards (the broker drops a
# connection after two missed heartbeats), and what needs the publishing
# connection works at once: a poison job is parked in the dead queue, a
# good job's job.complete event reaches gradeq.events.log. Then a batch
# waits for a lock on the grade table for over six heartbeats (the
# consumer is inside libpq meanwhile): both connections stay open and the
# job completes once the lock is gone. Nothing is lost, and the consumer
# logged no lost connection and no reconnect. Last, the broker closes the
# publishing connection: it is opened again before its next use, and the
# next dead letter and job event are not lost.
set -euo pipefail
# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"

HB=2
own_db gradeq_it_f37
fresh_release f37
seed small 200
config "$WORK/f37.conf" "heartbeat=$HB" 'job_events=true' 'statement_timeout_ms=120000'
declare_topology -c "$WORK/f37.conf"

start_consumer consumer.log -c "$WORK/f37.conf"
pid=$CONSUMER_PID
wait_until 30 "the consumer consuming" log_has consumer.log "event=consuming queue=$(work_queue)"

# conns: "role connected_at" of the consumer's connections, as the broker
# lists them.
conns() {
	mgmt_get "api/vhosts/$VH/connections" | jq -r --arg p "pid=$pid " '.[] |
		select(.client_properties.connection_name // "" | contains($p)) |
		"\(.client_properties.connection_name | sub(".* role="; "")) \(.connected_at)"' | sort
}
both_listed() {
	[[ $(conns | cut -d' ' -f1 | paste -sd' ') == "consume publish" ]]
}
wait_until 30 "the consumer's two connections listed" both_listed
# idle: until the consuming connection is six heartbeats old, by the
# broker's clock against ours (the same machine)
idle_long_enough() {
	local at
	at=$(conns | awk '$1 == "consume" { print $2 }')
	[[ -n $at ]] && (($(date +%s%3N) - at >= 6 * HB * 1000))
}
wait_until 60 "the consumer idle for six heartbeats" idle_long_enough
both_listed || die "after six heartbeats idle, the consumer's connections are: $(conns | paste -sd,)"
log "idle for over $((6 * HB)) s with heartbeat = $HB s: both connections open"

# what needs the publishing connection, right away
printf '\x00not a job' >"$WORK/poison"
publish_raw "$WORK/poison" poison-37
wait_until 30 "the poison job in $(dead_queue)" depth_is "$(dead_queue)" 1
run=$(publish_jobs -c "$WORK/f37.conf" --course "$SMALL" --batch-size 1000)
wait_until 30 "run $run complete" run_complete "$run"
job_event_logged() {
	peek gradeq.events.log 10000 | jq -e --arg r "$run" \
		'[.[] | select(.routing_key == "job.complete" and .properties.headers."gradeq-run" == $r)] | length == 1'
}
wait_until 30 "job.complete of run $run in gradeq.events.log" job_event_logged
log "the dead letter and the job event went out at once"

# a batch that waits for the database for six heartbeats
lock_table
run=$(publish_jobs -c "$WORK/f37.conf" --course "$SMALL" --batch-size 1000)
blocked_long_enough() {
	[[ $(psql_q "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'
		AND application_name LIKE 'gradeq-consumer%'
		AND now() - query_start >= interval '$((6 * HB)) seconds'") == 1 ]]
}
wait_until 60 "the consumer's batch waiting for the lock for six heartbeats" blocked_long_enough
unlock_table
wait_until 30 "run $run complete" run_complete "$run"
wait_until 30 "job.complete of run $run in gradeq.events.log" job_event_logged
log "a batch waited $((6 * HB)) s for the database: completed, its event sent"

log_has consumer.log "event=(broker_lost|reconnected|republish_failed|event_publish_failed)" &&
	die "the consumer lost a connection: $(grep -E 'event=(broker_lost|reconnected)' "$WORK/consumer.log" | head -n 3)"
both_listed || die "the consumer's connections are: $(conns | paste -sd,)"
log "no connection lost, nothing reconnected"

# the publishing connection closed by the broker: opened again before its
# next use, and nothing that needs it is lost
pubconn=$(mgmt_get "api/vhosts/$VH/connections" | jq -r --arg p "pid=$pid " '.[] |
	select(.client_properties.connection_name // "" | (contains($p) and endswith("role=publish"))) | .name')
[[ -n $pubconn ]] || die "the consumer's publishing connection is not listed"
mgmt_delete "api/connections/$(urlenc "$pubconn")"
printf '\x00not a job either' >"$WORK/poison2"
publish_raw "$WORK/poison2" poison-37b
wait_until 30 "both poison jobs in $(dead_queue)" depth_is "$(dead_queue)" 2
run=$(publish_jobs -c "$WORK/f37.conf" --course "$SMALL" --batch-size 1000)
wait_until 30 "run $run complete" run_complete "$run"
wait_until 30 "job.complete of run $run in gradeq.events.log" job_event_logged
log_has consumer.log "event=reconnected what=publish_connection" ||
	die "the publishing connection was not reopened"
kill -0 "$pid" 2>/dev/null || die "the consumer exited"
log "publishing connection closed by the broker: reopened, nothing lost"

kill -TERM "$pid"
wait_exit "$pid" 30
assert_eq "exit status on SIGTERM" 0 "$EXIT_STATUS"
log ok
