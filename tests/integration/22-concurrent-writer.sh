#!/usr/bin/env bash
# A batch whose learners have no grade rows is written by plain INSERT (no
# ON CONFLICT); a writer that adds a row for one of them after the consumer
# looked must not fail the job. Here a session inserts a stale course grade
# for the first learner and holds it uncommitted: the consumer's check does
# not see it, its INSERT waits on the row, meets the unique key once the
# session commits, falls back to the upsert and overwrites the stale row.
# Every grade row equals the reference; the job completes on attempt 1.
set -euo pipefail
# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
own_db gradeq_it_concurrent
fresh_release cw
seed small 60
config "$WORK/cw.conf" 'log_level="debug"'
declare_topology -c "$WORK/cw.conf"
run=$(publish_jobs -c "$WORK/cw.conf" --course "$SMALL" --batch-size 60)
first=$(psql_q "SELECT min(user_id) FROM student_courseenrollment WHERE course_id = '$SMALL'")
version=$(psql_q "SELECT version FROM courses WHERE course_id = '$SMALL'")

# the stale row, inserted and held in an open transaction until a row in
# cw_go releases it (each statement of the loop sees committed rows anew)
psql_q "CREATE TABLE cw_go (at timestamptz)" >/dev/null
LOCK_APP=gradeq-test-cw-writer
PGAPPNAME=$LOCK_APP psql -X -q -v ON_ERROR_STOP=1 -d "$GRADEQ_PG_DSN" >/dev/null 2>"$WORK/writer.log" <<SQL &
BEGIN;
INSERT INTO grades_persistentcoursegrade (user_id, course_id, course_version,
  grading_policy_hash, percent_grade, letter_grade, created, modified)
  VALUES ($first, '$SMALL', 'stale', 'stale', 0.01, 'X', now(), now());
DO \$\$ BEGIN
  FOR i IN 1..600 LOOP
    EXIT WHEN EXISTS (SELECT 1 FROM cw_go);
    PERFORM pg_sleep(0.1);
  END LOOP;
END \$\$;
COMMIT;
SQL
LOCK_PID=$!
holding() {
	[[ $(psql_q "SELECT state FROM pg_stat_activity WHERE application_name = '$LOCK_APP'
		AND query LIKE 'DO %'") == active ]]
}
wait_until 20 "the writer holds its uncommitted row" holding

start_consumer consumer.log -c "$WORK/cw.conf" --drain
pid=$CONSUMER_PID
# the consumer's INSERT waits on the writer's row
waiting() {
	(($(psql_q "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'
		AND query LIKE 'SAVEPOINT gq_fresh%'") == 1))
}
wait_until 30 "the consumer's insert waiting on the writer" waiting
# let the writer commit
psql_q "INSERT INTO cw_go VALUES (now())" >/dev/null
wait "$LOCK_PID" || die "the writer failed: $(cat "$WORK/writer.log")"
LOCK_PID=
wait_exit "$pid" 60
assert_eq "consumer exit status" 0 "$EXIT_STATUS"
grep -q "event=fresh_insert_conflict" "$WORK/consumer.log" ||
	die "the consumer did not take the conflict path"

assert_eq "the job" "complete 1" "$(psql_q "SELECT state || ' ' || attempts FROM gradeq_jobs WHERE run_id = '$run'")"
assert_eq "run state" complete "$(psql_q "SELECT state FROM gradeq_runs WHERE run_id = '$run'")"
assert_eq "course grade rows" 60 "$(psql_q "SELECT count(*) FROM grades_persistentcoursegrade")"
assert_eq "the stale row, overwritten" "$version 0" \
	"$(psql_q "SELECT course_version || ' ' || count(*) FILTER (WHERE letter_grade = 'X')
		FROM grades_persistentcoursegrade WHERE user_id = $first GROUP BY course_version")"
python3 "$SRC/tests/integration/refgrade.py" check --course "$SMALL" >"$WORK/refgrade.log" 2>&1 ||
	die "grades differ from the reference: $(tail -n 5 "$WORK/refgrade.log")"
log ok
