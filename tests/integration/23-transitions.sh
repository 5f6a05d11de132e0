#!/usr/bin/env bash
# Every state change of a job or a run leaves exactly one gradeq_job_events
# row whose from_state is the state it really replaced, and the run counters
# are the counts of its jobs' states. Runs through the changes the programs
# make: taken, completed, dead (a broken policy), replayed to pending (the
# failed run runs again), discarded (purge), canceled (gradeq-admin cancel,
# then the consumer skips the jobs).
set -euo pipefail
# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"

REPLAY=$(require_bin gradeq-replay)
BAD=course-v1:gradeq+small2+2026
GOOD_POLICY=
own_db gradeq_it_t23
fresh_release t23
seed small,small 200
config "$WORK/t23.conf" 'retry_tiers=[1]'
declare_topology -c "$WORK/t23.conf"

# a new version each time: consumers cache a course by its version
V=0
break_policy() {
	GOOD_POLICY=$(psql_q "SELECT grading_policy::text FROM courses WHERE course_id = '$BAD'")
	psql_q "UPDATE courses SET version = 'broken$((++V))', grading_policy = '{\"GRADER\":
		{\"type\": \"Homework\"}, \"GRADE_CUTOFFS\": {\"Pass\": 0.5}}'
		WHERE course_id = '$BAD'" >/dev/null
}
mend_policy() {
	psql_q "UPDATE courses SET version = 'mended$((++V))', grading_policy = '$GOOD_POLICY'::jsonb
		WHERE course_id = '$BAD'" >/dev/null
}
run_is() {
	[[ $(psql_q "SELECT state FROM gradeq_runs WHERE run_id = '$1'") == "$2" ]]
}
jobs_in() {
	[[ $(psql_q "SELECT count(*) FROM gradeq_jobs WHERE run_id = '$1' AND state = '$2'") == "$3" ]]
}

# check_history: the invariants, over every run and job of the database.
check_history() {
	assert_eq "job events whose from_state is not the state before" 0 "$(psql_q "
		SELECT count(*) FROM (SELECT e.from_state,
			lag(e.to_state) OVER (PARTITION BY e.job_id ORDER BY e.id) AS prev
			FROM gradeq_job_events e WHERE e.job_id IS NOT NULL) x
		WHERE x.from_state IS DISTINCT FROM coalesce(x.prev, 'pending')")"
	assert_eq "jobs whose last event is not their state" 0 "$(psql_q "
		SELECT count(*) FROM gradeq_jobs j WHERE j.state IS DISTINCT FROM coalesce(
			(SELECT e.to_state FROM gradeq_job_events e WHERE e.job_id = j.job_id
			 ORDER BY e.id DESC LIMIT 1), 'pending')")"
	assert_eq "job events that change nothing and say nothing" 0 "$(psql_q "
		SELECT count(*) FROM gradeq_job_events
		WHERE job_id IS NOT NULL AND from_state = to_state AND detail IS NULL")"
	assert_eq "run events whose from_state is not the state before" 0 "$(psql_q "
		SELECT count(*) FROM (SELECT e.from_state,
			lag(e.to_state) OVER (PARTITION BY e.run_id ORDER BY e.id) AS prev,
			row_number() OVER (PARTITION BY e.run_id ORDER BY e.id) AS n
			FROM gradeq_job_events e WHERE e.job_id IS NULL) x
		WHERE x.from_state IS DISTINCT FROM x.prev OR (x.n = 1) <> (x.from_state IS NULL)")"
	assert_eq "runs whose last event is not their state" 0 "$(psql_q "
		SELECT count(*) FROM gradeq_runs r WHERE r.state IS DISTINCT FROM
			(SELECT e.to_state FROM gradeq_job_events e WHERE e.run_id = r.run_id
			 AND e.job_id IS NULL ORDER BY e.id DESC LIMIT 1)")"
	# 'none' rather than an empty answer: a failed query (empty) must not pass
	assert_eq "runs whose counters differ from their jobs" none "$(psql_q "
		SELECT coalesce(string_agg(r.run_id::text, ' '), 'none') FROM gradeq_runs r
		CROSS JOIN LATERAL (SELECT
			count(*) FILTER (WHERE j.state = 'complete') AS complete,
			count(*) FILTER (WHERE j.state = 'dead') AS dead,
			count(*) FILTER (WHERE j.state = 'canceled') AS canceled,
			count(*) FILTER (WHERE j.state = 'discarded') AS discarded,
			coalesce(sum(j.learners) FILTER (WHERE j.state = 'complete'), 0) AS learners
			FROM gradeq_jobs j WHERE j.run_id = r.run_id) j
		WHERE (r.jobs_complete, r.jobs_dead, r.jobs_canceled, r.jobs_discarded,
			r.learners_complete) IS DISTINCT FROM
			(j.complete, j.dead, j.canceled, j.discarded, j.learners)")"
}

# 1. dead, replayed, complete
break_policy
run=$(publish_jobs -c "$WORK/t23.conf" --course "$SMALL" --course "$BAD" --batch-size 50)
bad_jobs=$(psql_q "SELECT count(*) FROM gradeq_jobs WHERE run_id = '$run' AND course_id = '$BAD'")
start_consumer consumer.log -c "$WORK/t23.conf"
pid=$CONSUMER_PID
wait_until 60 "run $run failed" run_is "$run" failed
wait_until 30 "$bad_jobs messages in $(dead_queue)" depth_is "$(dead_queue)" "$bad_jobs"
check_history
mend_policy
"$REPLAY" replay --release "$RELEASE" --course "$BAD" --yes </dev/null >/dev/null 2>>"$WORK/replay.log" ||
	die "replay failed"
wait_until 60 "run $run complete" run_is "$run" complete
check_history
log "run $run: dead, replayed, complete"

# 2. dead, purged: discarded
break_policy
run=$(publish_jobs -c "$WORK/t23.conf" --course "$BAD" --batch-size 50)
wait_until 60 "run $run failed" run_is "$run" failed
wait_until 30 "$bad_jobs messages in $(dead_queue)" depth_is "$(dead_queue)" "$bad_jobs"
"$REPLAY" purge --release "$RELEASE" --yes </dev/null >/dev/null 2>>"$WORK/replay.log" ||
	die "purge failed"
wait_until 30 "jobs of run $run discarded" jobs_in "$run" discarded "$bad_jobs"
mend_policy
check_history
log "run $run: dead, discarded"

# 3. canceled before a consumer took its jobs
kill -TERM "$pid"
wait_exit "$pid" 30
run=$(publish_jobs -c "$WORK/t23.conf" --course "$SMALL" --batch-size 50)
"$ADMIN" cancel "$run" --yes >/dev/null 2>"$WORK/cancel.log" || die "cancel failed"
start_consumer consumer2.log -c "$WORK/t23.conf"
pid=$CONSUMER_PID
n=$(psql_q "SELECT count(*) FROM gradeq_jobs WHERE run_id = '$run'")
wait_until 60 "jobs of run $run canceled" jobs_in "$run" canceled "$n"
check_history
log "run $run: canceled"

kill -TERM "$pid"
wait_exit "$pid" 30
assert_eq "consumer exit status after SIGTERM" 0 "$EXIT_STATUS"
log ok
