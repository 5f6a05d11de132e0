#!/usr/bin/env bash
# The server ends the consumer's session in the middle of a COPY read (as a
# restart or pg_terminate_backend does): the job is held, the consumer
# reconnects and grades it; it is never parked as a permanent failure with
# a message such as "no COPY in progress".
#
# How: a row-level security policy on courseware_studentmodule calls a
# function for the course's last learner's rows. While a session named
# $TRIP_APP is open ("armed"), the function ends that session (waiting for
# it to go) and then its own: the score read of the batch with that
# learner fails after its COPY began. Disarmed, the function lets it pass.
set -euo pipefail
# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"

own_db gradeq_it_f84
fresh_release f84
seed small 200
declare_topology

TRIP_APP=gradeq-test-$TEST_NAME-trip
last=$(psql_q "SELECT max(user_id) FROM student_courseenrollment WHERE course_id = '$SMALL'")
psql_q "CREATE FUNCTION gradeq_test_trip() RETURNS boolean LANGUAGE plpgsql AS \$\$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = '$TRIP_APP') THEN
		PERFORM pg_terminate_backend(pid, 10000) FROM pg_stat_activity
			WHERE application_name = '$TRIP_APP';
		PERFORM pg_terminate_backend(pg_backend_pid());
	END IF;
	RETURN true;
END \$\$;
CREATE POLICY gradeq_test_trip ON courseware_studentmodule
	USING (student_id <> $last OR gradeq_test_trip());
ALTER TABLE courseware_studentmodule ENABLE ROW LEVEL SECURITY;
ALTER TABLE courseware_studentmodule FORCE ROW LEVEL SECURITY" >/dev/null

# armed: a session that waits until the function ends it
PGAPPNAME=$TRIP_APP psql -X -q -d "$GRADEQ_PG_DSN" -c 'SELECT pg_sleep(600)' \
	>"$WORK/trip.log" 2>&1 &
TRIP_PID=$!
CONSUMER_PIDS+=("$TRIP_PID")
armed() {
	[[ $(psql_q "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$TRIP_APP'") == 1 ]]
}
wait_until 30 "the trip session open" armed

run=$(publish_jobs --course "$SMALL" --batch-size 50)
assert_eq "jobs" 4 "$(psql_q "SELECT count(*) FROM gradeq_jobs WHERE run_id = '$run'")"
start_consumer consumer.log
pid=$CONSUMER_PID
# complete, or a job parked (the defect this test is for): no need to wait
settled() { run_complete "$run" || log_has consumer.log 'event=job_dead'; }
wait_until 120 "run $run complete" settled

# the trip fired: the armed session was ended by the consumer's read
wait_exit "$TRIP_PID" 30
assert_ne "exit status of the armed session" 0 "$EXIT_STATUS"
log_has consumer.log 'event=(database_lost|database_error_was_connection)' ||
	die "the consumer did not report its lost session"
log_has consumer.log 'event=reconnected what=database' || die "the consumer did not reconnect"
if log_has consumer.log 'event=job_dead'; then
	die "a job was parked: $(grep -m1 'event=job_dead' "$WORK/consumer.log")"
fi
check_exactly_once "$run"
assert_eq "jobs retried through a tier" 0 \
	"$(psql_q "SELECT count(*) FROM gradeq_job_events WHERE run_id = '$run' AND to_state = 'retrying'")"
assert_fully_graded "$SMALL"
wait_until 30 "$(dead_queue) empty" depth_is "$(dead_queue)" 0

psql_q "ALTER TABLE courseware_studentmodule NO FORCE ROW LEVEL SECURITY;
	ALTER TABLE courseware_studentmodule DISABLE ROW LEVEL SECURITY" >/dev/null
refcheck --course "$SMALL"
kill -TERM "$pid"
wait_exit "$pid" 60
assert_eq "consumer exit status" 0 "$EXIT_STATUS"
log "the session ended mid-read; the job was held and graded after reconnecting"
