#!/usr/bin/env bash
# A failed dead-letter republish does not wedge the consumer. The release's
# dead queue is deleted under a running consumer, then a poison job is
# published: its republish to gradeq.dead is unroutable, so the consumer
# declares the release's topology again, retries, and parks the job in the
# re-declared dead queue with its headers (its own and gradeq's); each step
# is logged, and the consumer goes on with the next job.
set -euo pipefail
# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"

own_db gradeq_it_f38
fresh_release f38
seed small 200
declare_topology

start_consumer consumer.log
pid=$CONSUMER_PID
wait_until 30 "the consumer consuming" log_has consumer.log "event=consuming queue=$(work_queue)"

mgmt_delete "api/queues/$VH/$(urlenc "$(dead_queue)")"
queue_exists "$(dead_queue)" "$TEST_VHOST" && die "$(dead_queue) still exists"
log "$(dead_queue) deleted under the consumer"

printf '\x00not a job' >"$WORK/poison"
publish_raw "$WORK/poison" poison-38 '{"x-test-origin": "38"}'
wait_until 60 "the poison job in the re-declared $(dead_queue)" depth_is "$(dead_queue)" 1
msgs=$(peek "$(dead_queue)")
h=$(jq -c '.[0].properties.headers' <<<"$msgs")
assert_eq "parked job" poison-38 "$(jq -r '.[0].properties.message_id' <<<"$msgs")"
assert_eq "gradeq-error-class" permanent "$(jq -r '."gradeq-error-class"' <<<"$h")"
assert_eq "gradeq-origin-queue" "$(work_queue)" "$(jq -r '."gradeq-origin-queue"' <<<"$h")"
assert_eq "the job's own header" 38 "$(jq -r '."x-test-origin"' <<<"$h")"
assert_match "gradeq-error" . "$(jq -r '."gradeq-error"' <<<"$h")"
log_has consumer.log "event=republish_failed job=.* exchange=gradeq.dead .*unroutable" ||
	die "the unroutable republish was not logged"
log_has consumer.log "event=topology_redeclared release=$RELEASE reason=unroutable" ||
	die "the re-declared topology was not logged"
log_has consumer.log "event=republish_recovered .*exchange=gradeq.dead" ||
	die "the successful retry was not logged"
log "poison job parked in the re-declared dead queue with its headers"

# the consumer goes on
run=$(publish_jobs --course "$SMALL" --batch-size 100)
wait_until 60 "run $run complete" run_complete "$run"
kill -0 "$pid" 2>/dev/null || die "the consumer exited"
wait_until 30 "$(work_queue) empty" depth_is "$(work_queue)" 0
kill -TERM "$pid"
wait_exit "$pid" 30
assert_eq "exit status on SIGTERM" 0 "$EXIT_STATUS"
log ok
