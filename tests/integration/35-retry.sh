#!/usr/bin/env bash
# Transient failures go through the retry tiers and come back. A session
# holds a lock on the course grade table and the consumer's statement
# timeout is short, so writing grades fails with a statement timeout (SQL
# state 57014, transient). Tiers of 1 s and 2 s keep the test quick.
#  1. Lock released after the second failure: the job comes back from the
#     2 s tier and completes on its third attempt.
#  2. Lock held throughout: after the last tier the job is parked in the
#     dead queue with gradeq-error-class=exhausted.
set -euo pipefail
# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"

own_db gradeq_it_f35
fresh_release f35
seed small 200
config "$WORK/f35.conf" 'retry_tiers=[1, 2]' 'statement_timeout_ms=1000'
declare_topology -c "$WORK/f35.conf"
for t in 1 2; do
	ttl=$(mgmt_get "api/queues/$VH/$(urlenc "$(work_queue).retry.${t}s")" | jq -r '.arguments."x-message-ttl"')
	assert_eq "x-message-ttl of tier ${t}s" "$((t * 1000))" "$ttl"
done

job_is() {
	[[ $(psql_q "SELECT state || ' ' || attempts FROM gradeq_jobs WHERE job_id = '$1'") == "$2" ]]
}

start_consumer consumer.log -c "$WORK/f35.conf"
pid=$CONSUMER_PID

# 1. two failures, then success
lock_table
run=$(publish_jobs -c "$WORK/f35.conf" --course "$SMALL" --batch-size 1000)
job=$(psql_q "SELECT job_id FROM gradeq_jobs WHERE run_id = '$run'")
wait_until 30 "job $job retrying after its second attempt" job_is "$job" "retrying 2"
unlock_table
wait_until 30 "job $job complete" run_complete "$run"
assert_eq "state and attempts of job $job" "complete 3" \
	"$(psql_q "SELECT state || ' ' || attempts FROM gradeq_jobs WHERE job_id = '$job'")"
assert_eq "retries logged (tier: 1 s, then 2 s)" "1s 2s" \
	"$(grep "event=job_retry job=$job" "$WORK/consumer.log" | sed -E 's/.* tier=([0-9]+s) .*/\1/' | paste -sd ' ')"
grep "event=job_retry job=$job" "$WORK/consumer.log" | grep -q 'statement timeout' ||
	die "the retries do not name the statement timeout"
assert_eq "'retrying' events of job $job" 2 \
	"$(psql_q "SELECT count(*) FROM gradeq_job_events WHERE job_id = '$job' AND to_state = 'retrying'")"
check_exactly_once "$run"
assert_fully_graded "$SMALL"
log "job $job complete after 3 attempts"

# 2. more failures than tiers
lock_table
run=$(publish_jobs -c "$WORK/f35.conf" --course "$SMALL" --batch-size 1000)
job=$(psql_q "SELECT job_id FROM gradeq_jobs WHERE run_id = '$run'")
wait_until 40 "job $job dead" job_is "$job" "dead 3"
unlock_table
wait_until 30 "1 message in $(dead_queue)" depth_is "$(dead_queue)" 1
msgs=$(peek "$(dead_queue)")
h=$(jq -c '.[0].properties.headers' <<<"$msgs")
assert_eq "parked job" "$job" "$(jq -r '.[0].properties.message_id' <<<"$msgs")"
assert_eq "gradeq-error-class" exhausted "$(jq -r '."gradeq-error-class"' <<<"$h")"
assert_eq "gradeq-attempt" 3 "$(jq -r '."gradeq-attempt"' <<<"$h")"
assert_match "gradeq-error" 'statement timeout' "$(jq -r '."gradeq-error"' <<<"$h")"
assert_eq "gradeq-origin-queue" "$(work_queue)" "$(jq -r '."gradeq-origin-queue"' <<<"$h")"
assert_match "last_error of job $job" 'statement timeout' \
	"$(psql_q "SELECT last_error FROM gradeq_jobs WHERE job_id = '$job'")"
assert_eq "state of run $run" failed "$(psql_q "SELECT state FROM gradeq_runs WHERE run_id = '$run'")"
for q in "$(work_queue)" "$(work_queue).retry.1s" "$(work_queue).retry.2s"; do
	wait_until 30 "$q empty" depth_is "$q" 0
done
log "job $job parked: $(jq -r '."gradeq-error"' <<<"$h")"

kill -TERM "$pid"
wait_exit "$pid" 30
assert_eq "consumer exit status after SIGTERM" 0 "$EXIT_STATUS"
log ok
