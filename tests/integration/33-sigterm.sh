#!/usr/bin/env bash
# SIGTERM during a batch: the batch in hand is committed and acked, the
# consumer takes no other job and exits 0; the rest stays in the queue as
# ready messages, none unacked. A second SIGTERM exits at once: the job in
# hand is not committed and comes back to the queue.
set -euo pipefail
# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"

own_db gradeq_it_f33
fresh_release f33
seed large 1000
declare_topology
run=$(publish_jobs --course "$LARGE" --batch-size 250)
jobs=$(psql_q "SELECT count(*) FROM gradeq_jobs WHERE run_id = '$run'")
assert_eq "jobs" 4 "$jobs"

in_progress() {
	[[ $(psql_q "SELECT count(*) FROM gradeq_jobs WHERE run_id = '$run' AND state = 'in_progress'") == 1 ]]
}
count_state() {
	psql_q "SELECT count(*) FROM gradeq_jobs WHERE run_id = '$run' AND state = '$1'"
}
queue_is() {
	[[ $(ready_unacked "$(work_queue)") == "$1" ]]
}
# a consumer's job waits on the grade table lock_table holds: the job in
# hand stays in hand, however fast a job is, until unlock_table
job_waits() {
	(($(psql_q "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
		WHERE l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND c.relname = 'grades_persistentcoursegrade' AND NOT l.granted") >= 1))
}

# One SIGTERM in the middle of the first batch.
lock_table
start_consumer consumer1.log
pid=$CONSUMER_PID
wait_until 30 "a job in progress" in_progress
wait_until 30 "the job waiting on the grade table" job_waits
job=$(psql_q "SELECT job_id FROM gradeq_jobs WHERE run_id = '$run' AND state = 'in_progress'")
t0=$SECONDS
kill -TERM "$pid"
unlock_table
wait_exit "$pid" 60
assert_eq "exit status after SIGTERM" 0 "$EXIT_STATUS"
log "stopped $((SECONDS - t0)) s after SIGTERM"
assert_eq "state of the job in hand" complete \
	"$(psql_q "SELECT state FROM gradeq_jobs WHERE job_id = '$job'")"
assert_eq "complete jobs" 1 "$(count_state complete)"
assert_eq "pending jobs" "$((jobs - 1))" "$(count_state pending)"
log_has consumer1.log "event=job job=$job .*outcome=graded" || die "job $job not logged as graded"
log_has consumer1.log 'event=stopped' || die "no event=stopped in the log"
# the broker's counts lag on quorum queues: wait for them to settle
wait_until 30 "$(work_queue): $((jobs - 1)) ready, 0 unacked" queue_is "$((jobs - 1)) 0"

# Two SIGTERMs: exit at once, the job in hand is not committed and returns.
lock_table
start_consumer consumer2.log
pid=$CONSUMER_PID
wait_until 30 "a job in progress" in_progress
wait_until 30 "the job waiting on the grade table" job_waits
job=$(psql_q "SELECT job_id FROM gradeq_jobs WHERE run_id = '$run' AND state = 'in_progress'")
kill -TERM "$pid"
t0=$SECONDS
# the second SIGTERM is sent again until the process is gone: two sent at
# once may merge into one pending signal (the job waits on the lock, so
# the first alone never ends the process)
for ((i = 0; i < 50; i++)); do
	[[ $(ps -o stat= -p "$pid" 2>/dev/null) == [^Z]* ]] || break
	kill -TERM "$pid" 2>/dev/null || break
	sleep 0.1
done
wait_exit "$pid" 5
unlock_table
assert_ne "exit status after two SIGTERMs" 0 "$EXIT_STATUS"
assert_eq "state of the abandoned job" in_progress \
	"$(psql_q "SELECT state FROM gradeq_jobs WHERE job_id = '$job'")"
wait_until 30 "$(work_queue): $((jobs - 1)) ready, 0 unacked" queue_is "$((jobs - 1)) 0"

# A consumer that drains finishes the run, each job once.
"$CONSUMER" --release "$RELEASE" --drain >>"$WORK/consumer3.log" 2>&1 || die "draining consumer failed"
check_exactly_once "$run"
assert_fully_graded "$LARGE"
refcheck --course "$LARGE" --fresh
wait_until 30 "$(work_queue) empty" queue_is "0 0"
log ok
