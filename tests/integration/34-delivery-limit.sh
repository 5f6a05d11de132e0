#!/usr/bin/env bash
# A job that aborts its consumer every time (the consumer's test hook
# GRADEQ_TEST_ABORT_COURSE): the work queue's delivery limit (2 here, from a
# configuration file) stops it; the broker parks it in the dead queue with
# the reason delivery_limit in its x-death headers. The other jobs are
# graded by the consumers started after each crash.
set -euo pipefail
# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"

POISON=course-v1:gradeq+small2+2026
LIMIT=2
own_db gradeq_it_f34
fresh_release f34
seed small,small 300
config "$WORK/f34.conf" "delivery_limit=$LIMIT" 'retry_tiers=[1, 2]'
declare_topology -c "$WORK/f34.conf"
qargs=$(mgmt_get "api/queues/$VH/$(urlenc "$(work_queue)")" | jq -c .arguments)
assert_eq "x-delivery-limit of $(work_queue)" "$LIMIT" "$(jq -r '."x-delivery-limit"' <<<"$qargs")"

# the poison job first, then the innocent ones
run1=$(publish_jobs -c "$WORK/f34.conf" --course "$POISON" --batch-size 1000)
run2=$(publish_jobs -c "$WORK/f34.conf" --course "$SMALL" --batch-size 50)

ulimit -c 0
crashes=0
for ((i = 0; i < 10; i++)); do
	rc=0
	GRADEQ_TEST_ABORT_COURSE=$POISON "$CONSUMER" --release "$RELEASE" -c "$WORK/f34.conf" --drain \
		>>"$WORK/consumer.log" 2>&1 || rc=$?
	if ((rc == 0)); then
		break
	fi
	# 134: killed by SIGABRT
	assert_eq "exit status of a crashed consumer" 134 "$rc"
	crashes=$((crashes + 1))
done
log "$crashes consumers crashed before the job was parked"
# RabbitMQ 3.x parks a message once it was returned more than the limit
# (limit + 1 deliveries); allow one fewer for brokers that count deliveries
((crashes == LIMIT + 1 || crashes == LIMIT)) || die "crashes: expected $LIMIT or $((LIMIT + 1)), got $crashes"
assert_eq "test hook aborts logged" "$crashes" "$(grep -c 'event=test_abort' "$WORK/consumer.log")"

wait_until 30 "1 message in $(dead_queue)" depth_is "$(dead_queue)" 1
wait_until 30 "$(work_queue) empty" depth_is "$(work_queue)" 0
msgs=$(peek "$(dead_queue)")
h=$(jq -c '.[0].properties.headers' <<<"$msgs")
job=$(psql_q "SELECT job_id FROM gradeq_jobs WHERE run_id = '$run1'")
assert_eq "parked job" "$job" "$(jq -r '.[0].properties.message_id' <<<"$msgs")"
assert_eq "x-first-death-reason" delivery_limit "$(jq -r '."x-first-death-reason"' <<<"$h")"
assert_eq "x-first-death-queue" "$(work_queue)" "$(jq -r '."x-first-death-queue"' <<<"$h")"
assert_eq "x-death reason" delivery_limit "$(jq -r '."x-death"[0].reason' <<<"$h")"
log "x-death: $(jq -c '."x-death"[0] | {reason, queue, count}' <<<"$h")"

# the broker parked it; no consumer saw it fail for good. gradeq-replay
# records it dead from the dead letter, and its run settles as failed.
assert_ne "row of the parked job before reconciling" dead \
	"$(psql_q "SELECT state FROM gradeq_jobs WHERE job_id = '$job'")"
"$(require_bin gradeq-replay)" list --release "$RELEASE" >"$WORK/list.txt" 2>&1 ||
	die "gradeq-replay list failed: $(tail -3 "$WORK/list.txt")"
assert_eq "row of the parked job" dead "$(psql_q "SELECT state FROM gradeq_jobs WHERE job_id = '$job'")"
assert_match "its recorded error" "delivery_limit" \
	"$(psql_q "SELECT detail FROM gradeq_job_events WHERE job_id = '$job' AND to_state = 'dead'")"
assert_eq "its run" failed "$(psql_q "SELECT state FROM gradeq_runs WHERE run_id = '$run1'")"
assert_eq "still parked after list" 1 "$(queue_depth "$(dead_queue)")"

check_exactly_once "$run2"
assert_fully_graded "$SMALL"
assert_eq "grade rows of $POISON" 0 \
	"$(psql_q "SELECT count(*) FROM grades_persistentcoursegrade WHERE course_id = '$POISON'")"
log ok
