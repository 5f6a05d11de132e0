#!/usr/bin/env bash
# A course whose grading policy is malformed (GRADER not a list): each of its
# jobs is dead-lettered once, attempted once, recorded 'dead' with the
# reason; no retry storm. The other courses of the same run are graded.
set -euo pipefail
# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"

BAD=course-v1:gradeq+small2+2026
own_db gradeq_it_f31
fresh_release f31
seed small,small,medium 400
psql_q "UPDATE courses SET grading_policy = '{\"GRADER\": {\"type\": \"Homework\"},
	\"GRADE_CUTOFFS\": {\"Pass\": 0.5}}' WHERE course_id = '$BAD'" >/dev/null
config "$WORK/f31.conf" 'retry_tiers=[1, 2]'
declare_topology -c "$WORK/f31.conf"

run=$(publish_jobs -c "$WORK/f31.conf" --course "$SMALL" --course "$BAD" --course "$MEDIUM" --batch-size 50)
bad_jobs=$(psql_q "SELECT count(*) FROM gradeq_jobs WHERE run_id = '$run' AND course_id = '$BAD'")
assert_eq "jobs of $BAD" 8 "$bad_jobs"

start_consumer consumer.log -c "$WORK/f31.conf" --prefetch 4
pid=$CONSUMER_PID
finished() {
	[[ $(psql_q "SELECT state FROM gradeq_runs WHERE run_id = '$run'") == failed ]]
}
wait_until 90 "run $run finished" finished
wait_until 30 "$bad_jobs messages in $(dead_queue)" depth_is "$(dead_queue)" "$bad_jobs"
wait_until 30 "$(work_queue) empty" depth_is "$(work_queue)" 0
# give a retry storm, if there were one, time to show (the tiers are 1 s, 2 s)
sleep 4
assert_eq "messages in $(dead_queue)" "$bad_jobs" "$(queue_depth "$(dead_queue)")"
for t in 1 2; do
	assert_eq "messages in retry tier ${t}s" 0 "$(queue_depth "$(work_queue).retry.${t}s")"
done

assert_eq "dead jobs of $BAD, attempted once each" "$bad_jobs" \
	"$(psql_q "SELECT count(*) FROM gradeq_jobs WHERE run_id = '$run' AND course_id = '$BAD'
		AND state = 'dead' AND attempts = 1 AND last_error LIKE '%GRADER%'")"
assert_eq "other jobs complete" 0 \
	"$(psql_q "SELECT count(*) FROM gradeq_jobs WHERE run_id = '$run' AND course_id <> '$BAD'
		AND state <> 'complete'")"
assert_eq "run counters: complete dead total" \
	"$(psql_q "SELECT jobs_total - $bad_jobs || ' $bad_jobs ' || jobs_total FROM gradeq_runs WHERE run_id = '$run'")" \
	"$(psql_q "SELECT jobs_complete || ' ' || jobs_dead || ' ' || jobs_total FROM gradeq_runs WHERE run_id = '$run'")"
assert_eq "'retrying' transitions" 0 \
	"$(psql_q "SELECT count(*) FROM gradeq_job_events WHERE run_id = '$run' AND to_state = 'retrying'")"
assert_fully_graded "$SMALL"
assert_fully_graded "$MEDIUM"
assert_eq "grade rows of $BAD" 0 \
	"$(psql_q "SELECT count(*) FROM grades_persistentcoursegrade WHERE course_id = '$BAD'")"

msgs=$(peek "$(dead_queue)")
assert_eq "dead messages" "$bad_jobs" "$(jq length <<<"$msgs")"
assert_eq "dead messages of $BAD" "$bad_jobs" \
	"$(jq --arg c "$BAD" '[.[] | select(.properties.headers."gradeq-course" == $c)] | length' <<<"$msgs")"
assert_eq "distinct jobs among them" "$bad_jobs" \
	"$(jq '[.[].properties.message_id] | unique | length' <<<"$msgs")"
assert_eq "classes" permanent "$(jq -r '[.[].properties.headers."gradeq-error-class"] | unique | join(",")' <<<"$msgs")"
err=$(jq -r '.[0].properties.headers."gradeq-error"' <<<"$msgs")
assert_match "gradeq-error" "small2.*GRADER must be a list" "$err"
log "dead: $err"

kill -TERM "$pid"
wait_exit "$pid" 30
assert_eq "consumer exit status after SIGTERM" 0 "$EXIT_STATUS"
log ok
