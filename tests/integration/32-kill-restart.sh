#!/usr/bin/env bash
# Outages in the middle of a run, each on a run of its own over the same
# large course; after each, every job is complete exactly once, the work
# queue is empty and every grade equals an undisturbed grading's and the
# reference implementation's (refgrade.py):
#  1. SIGKILL of the consumer, then another consumer with --drain;
#  2. PostgreSQL restarted (tools/servers restart-pg);
#  3. RabbitMQ restarted (tools/servers restart-rabbit: the application
#     stops and starts, every connection drops);
#  4. the consumer's connections closed by rabbitmqctl close_connection.
# The time the consumer takes to resume after each outage is printed.
set -euo pipefail
# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"

own_db gradeq_it_f32
fresh_release f32
# 500 learners of about 1000 score rows each, in jobs of 12 learners: about
# 40 jobs, so that an outage after the third finds most of the run to do;
# such jobs are small and go in groups, of 4 here: about 10 groups
seed large 500
config "$WORK/k.conf" 'group_jobs=4'
declare_topology

# consumer_waits_on_lock: the consumer's write waits on the test's lock on
# the grade table (lock_table), i.e. it holds a job in hand.
consumer_waits_on_lock() {
	(($(psql_q "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
		AND wait_event_type = 'Lock' AND application_name <> '$LOCK_APP'") >= 1))
}
complete_at_least() {
	(($(psql_q "SELECT count(*) FROM gradeq_jobs WHERE run_id = '$1' AND state = 'complete'") >= $2))
}
# check_run RUN SNAP: exactly once, queue empty, grades equal the reference.
check_run() {
	check_exactly_once "$1"
	assert_fully_graded "$LARGE"
	wait_until 30 "$(work_queue) empty" depth_is "$(work_queue)" 0
	snapshot_grades "$2" "$LARGE"
	same_grades ref "$2"
	refcheck --course "$LARGE" --fresh
}
clear_grades() {
	psql_q "DELETE FROM grades_persistentcoursegrade WHERE course_id = '$LARGE';
		DELETE FROM grades_persistentsubsectiongrade WHERE course_id = '$LARGE'" >/dev/null
}
# resume_ms LOG LOST_EVENTS BACK_EVENT: ms from the first of LOST_EVENTS (a
# regex alternation) to the first BACK_EVENT line after it.
resume_ms() {
	local lost line0 back
	line0=$(grep -n -m1 -E "event=($2)( |$)" "$WORK/$1" | cut -d: -f1) || die "no event=$2 in $1"
	lost=$(log_ms "$1" "($2)" "$((line0 - 1))")
	back=$(log_ms "$1" "$3" "$line0") || die "no event=$3 after event=$2 in $1"
	printf '%s\n' "$((back - lost))"
}

# The reference: the course graded once, undisturbed.
run=$(publish_jobs --course "$LARGE" --batch-size 12)
jobs=$(psql_q "SELECT count(*) FROM gradeq_jobs WHERE run_id = '$run'")
t0=$SECONDS
"$CONSUMER" -c "$WORK/k.conf" --release "$RELEASE" --drain >>"$WORK/reference.log" 2>&1 || die "reference consumer failed"
log "reference: $jobs jobs in $((SECONDS - t0)) s"
check_exactly_once "$run"
assert_fully_graded "$LARGE"
snapshot_grades ref "$LARGE"
refcheck --course "$LARGE" --fresh

# 1. SIGKILL in the middle of the run.
clear_grades
run=$(publish_jobs --course "$LARGE" --batch-size 12)
start_consumer kill.log -c "$WORK/k.conf"
wait_until 60 "3 jobs complete" complete_at_least "$run" 3
kill -KILL "$CONSUMER_PID"
wait_exit "$CONSUMER_PID" 10
assert_eq "killed consumer's status" 137 "$EXIT_STATUS"
done_before=$(psql_q "SELECT count(*) FROM gradeq_jobs WHERE run_id = '$run' AND state = 'complete'")
((done_before < jobs)) || die "the run finished before the kill; make it larger"
"$CONSUMER" -c "$WORK/k.conf" --release "$RELEASE" --drain >>"$WORK/after-kill.log" 2>&1 || die "draining consumer failed"
check_run "$run" after_kill
log "SIGKILL after $done_before of $jobs jobs: run completed by another consumer, grades right"

# 2. PostgreSQL restarted in the middle of the run.
clear_grades
run=$(publish_jobs --course "$LARGE" --batch-size 12)
start_consumer pg.log -c "$WORK/k.conf"
pid=$CONSUMER_PID
wait_until 60 "3 jobs complete" complete_at_least "$run" 3
# the outage comes while a job is in hand, whatever the machine's speed:
# the consumer waits on the test's lock (which the restart cuts too)
lock_table
wait_until 60 "the consumer waiting on the lock" consumer_waits_on_lock
down0=$(date +%s%3N)
"$GRADEQ_SRC/tools/servers" restart-pg 1 >/dev/null || die "restarting PostgreSQL failed"
up=$(date +%s%3N)
unlock_table
wait_until 120 "run $run complete" run_complete "$run"
kill -0 "$pid" 2>/dev/null || die "the consumer exited during the database outage"
log_has pg.log 'event=(database_lost|database_unavailable)' || die "the consumer did not notice the outage"
assert_eq "outage lines" 1 "$(grep -cE 'event=(database_lost|database_unavailable)' "$WORK/pg.log")"
pg_ms=$(resume_ms pg.log 'database_lost|database_unavailable' reconnected)
check_run "$run" after_pg
kill -TERM "$pid"
wait_exit "$pid" 30
assert_eq "consumer exit status after SIGTERM" 0 "$EXIT_STATUS"
pg_after=$(($(log_ms pg.log reconnected) - up))
log "PostgreSQL restart (down $((up - down0)) ms): consumer resumed $pg_ms ms after it lost the database, $pg_after ms after the server was back; grades right"

# 3. RabbitMQ restarted in the middle of the run.
clear_grades
run=$(publish_jobs --course "$LARGE" --batch-size 12)
start_consumer rabbit.log -c "$WORK/k.conf"
pid=$CONSUMER_PID
wait_until 60 "3 jobs complete" complete_at_least "$run" 3
# the outage comes while a job is in hand: the consumer waits on the test's
# lock until the broker is back
lock_table
wait_until 60 "the consumer waiting on the lock" consumer_waits_on_lock
down0=$(date +%s%3N)
"$GRADEQ_SRC/tools/servers" restart-rabbit 1 >/dev/null || die "restarting RabbitMQ failed"
up=$(date +%s%3N)
unlock_table
wait_until 120 "run $run complete" run_complete "$run"
kill -0 "$pid" 2>/dev/null || die "the consumer exited during the broker outage"
assert_eq "outage lines" 1 "$(grep -cE 'event=broker_(lost|unavailable)' "$WORK/rabbit.log")"
rabbit_ms=$(resume_ms rabbit.log broker_lost consuming)
check_run "$run" after_rabbit
kill -TERM "$pid"
wait_exit "$pid" 30
assert_eq "consumer exit status after SIGTERM" 0 "$EXIT_STATUS"
line0=$(grep -n -m1 'event=broker_lost' "$WORK/rabbit.log" | cut -d: -f1)
rabbit_after=$(($(log_ms rabbit.log consuming "$line0") - up))
log "RabbitMQ restart (down $((up - down0)) ms): consumer consuming again $rabbit_ms ms after it lost the broker, $rabbit_after ms after the broker was back; grades right"

# 4. The consumer's connections closed by the broker's operator.
clear_grades
run=$(publish_jobs --course "$LARGE" --batch-size 12)
start_consumer close.log -c "$WORK/k.conf"
pid=$CONSUMER_PID
wait_until 60 "3 jobs complete" complete_at_least "$run" 3
closed=0
while IFS=$'\t' read -r cpid cname; do
	[[ $cname == "gradeq-consumer release=$RELEASE "*" pid=$pid role="* ]] || continue
	rabbitmq_ctl close_connection "$cpid" "closed by test 32" </dev/null >/dev/null ||
		die "close_connection failed"
	closed=$((closed + 1))
done < <(rabbitmq_ctl list_connections -q --no-table-headers pid client_properties |
	sed -nE 's/^([^\t]*)\t.*\{"connection_name","([^"]*)"\}.*/\1\t\2/p')
assert_eq "connections closed" 2 "$closed"
wait_until 120 "run $run complete" run_complete "$run"
kill -0 "$pid" 2>/dev/null || die "the consumer exited after its connections were closed"
close_ms=$(resume_ms close.log broker_lost consuming)
check_run "$run" after_close
kill -TERM "$pid"
wait_exit "$pid" 30
assert_eq "consumer exit status after SIGTERM" 0 "$EXIT_STATUS"
log "close_connection: consumer consuming again $close_ms ms after it lost the broker; grades right"

log "resume times (outage seen -> working again): database restart ${pg_ms} ms (${pg_after} ms after it was back), broker restart ${rabbit_ms} ms (${rabbit_after} ms after it was back), close_connection ${close_ms} ms"
log ok
