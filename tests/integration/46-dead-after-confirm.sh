#!/usr/bin/env bash
# event=job_dead is logged once the dead-letter republish is confirmed, not
# before. The exchange gradeq.dead is deleted under a running consumer,
# then a poison job is published: every republish to the missing exchange
# fails, the consumer gives up, reconnects (declaring the topology again)
# and parks the job on its redelivery. The log has one event=job_dead for
# it, after the failures, not one per attempt.
set -euo pipefail
# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"

own_db gradeq_it_f46
fresh_release f46
seed small 100
declare_topology

start_consumer consumer.log
pid=$CONSUMER_PID
wait_until 30 "the consumer consuming" log_has consumer.log "event=consuming queue=$(work_queue)"

mgmt_delete "api/exchanges/$VH/gradeq.dead"
printf '\x00not a job' >"$WORK/poison"
publish_raw "$WORK/poison" poison-46
wait_until 120 "the poison job in $(dead_queue)" depth_is "$(dead_queue)" 1
assert_eq "parked job" poison-46 "$(peek "$(dead_queue)" | jq -r '.[0].properties.message_id')"

given_up=$(grep -n -m1 'event=republish_given_up' "$WORK/consumer.log" | cut -d: -f1 || true)
[[ -n $given_up ]] || die "the republish to the missing exchange did not fail: the test proves nothing"
dead_lines=$(grep -n 'event=job_dead ' "$WORK/consumer.log" | cut -d: -f1 || true)
assert_eq "event=job_dead lines" 1 "$(wc -w <<<"$dead_lines")"
((dead_lines > given_up)) || die "event=job_dead (line $dead_lines) logged before the republish succeeded (gave up at line $given_up)"
failed_after=$(tail -n +"$dead_lines" "$WORK/consumer.log" | grep -c 'event=republish_failed' || true)
assert_eq "failed republishes after event=job_dead" 0 "$failed_after"
kill -0 "$pid" 2>/dev/null || die "the consumer exited"
kill -TERM "$pid"
wait_exit "$pid" 30
assert_eq "exit status on SIGTERM" 0 "$EXIT_STATUS"
log ok
