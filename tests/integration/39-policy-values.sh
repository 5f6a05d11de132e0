#!/usr/bin/env bash
# Policy values that do not fit in a fixed size are stored whole or refused,
# never truncated. A course whose letter grade (cutoff name) is 200 bytes of
# non-ASCII text is graded and each stored letter_grade is the full name; a
# course where that cutoff's value is bad is refused with a reason naming
# the cutoff (whole characters only: the reason is stored and sent); a
# policy number written as 1e308 (which jsonb prints as an integer of 309
# digits) parses as a number: in a key gradeq does not use the course is
# graded, as a cutoff it is refused as out of range (not as bad JSON).
set -euo pipefail
# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"

SMALL2=course-v1:gradeq+small2+2026
SMALL3=course-v1:gradeq+small3+2026
own_db gradeq_it_f39
fresh_release f39
seed small,small,small 200
declare_topology

# 100 two-byte characters, the first and last of them different, so that
# any cut shows
long="Ä$(printf 'é%.0s' {1..98})Ö"
assert_eq "bytes of the letter grade" 200 "$(printf '%s' "$long" | wc -c)"
psql_q "UPDATE courses SET grading_policy = jsonb_set(jsonb_set(grading_policy,
	'{GRADE_CUTOFFS}', jsonb_build_object('$long', 0, 'Pass', 0.5)),
	'{UNUSED_BIG}', '1e308'::jsonb) WHERE course_id = '$SMALL'" >/dev/null
assert_match "jsonb prints 1e308 as an integer" '"UNUSED_BIG": 1000000000000000000000' \
	"$(psql_q "SELECT grading_policy::text FROM courses WHERE course_id = '$SMALL'")"
psql_q "UPDATE courses SET grading_policy = jsonb_set(grading_policy,
	'{GRADE_CUTOFFS}', jsonb_build_object('$long', 'x'))
	WHERE course_id = '$SMALL2'" >/dev/null
psql_q "UPDATE courses SET grading_policy = jsonb_set(grading_policy,
	'{GRADE_CUTOFFS}', jsonb_build_object('Huge', '1e308'::jsonb))
	WHERE course_id = '$SMALL3'" >/dev/null

run=$(publish_jobs --course "$SMALL" --course "$SMALL2" --course "$SMALL3" --batch-size 100)
start_consumer consumer.log
pid=$CONSUMER_PID
finished() {
	[[ $(psql_q "SELECT state FROM gradeq_runs WHERE run_id = '$run'") =~ ^(complete|failed)$ ]]
}
wait_until 60 "run $run finished" finished

# the long letter grade, whole
assert_fully_graded "$SMALL"
assert_eq "jobs of $SMALL complete" 0 "$(psql_q "SELECT count(*) FROM gradeq_jobs
	WHERE run_id = '$run' AND course_id = '$SMALL' AND state <> 'complete'")"
assert_eq "letter grades of $SMALL other than Pass" "$long" "$(psql_q "SELECT
	string_agg(DISTINCT letter_grade, '|') FROM grades_persistentcoursegrade
	WHERE course_id = '$SMALL' AND letter_grade <> 'Pass'")"
assert_eq "octets of those letter grades" 200 "$(psql_q "SELECT min(octet_length(letter_grade))
	FROM grades_persistentcoursegrade WHERE course_id = '$SMALL' AND letter_grade <> 'Pass'")"

# the bad cutoff with the long name: refused, named, never cut inside a
# character; every job recorded dead (the reason is valid text)
assert_eq "jobs of $SMALL2 not dead" 0 "$(psql_q "SELECT count(*) FROM gradeq_jobs
	WHERE run_id = '$run' AND course_id = '$SMALL2' AND state <> 'dead'")"
err=$(psql_q "SELECT DISTINCT last_error FROM gradeq_jobs WHERE run_id = '$run' AND course_id = '$SMALL2'")
assert_match "reason of $SMALL2" "GRADE_CUTOFFS\\['Äéééé.*'\\] must be a number between 0 and 1" "$err"
log "$SMALL2: $err"
assert_eq "grade rows of $SMALL2" 0 "$(psql_q "SELECT count(*) FROM grades_persistentcoursegrade
	WHERE course_id = '$SMALL2'")"
wait_until 30 "the dead letters of $SMALL2 and $SMALL3" depth_is "$(dead_queue)" 4
msgs=$(peek "$(dead_queue)")
assert_eq "reasons in the dead letters of $SMALL2" "$err" "$(jq -r --arg c "$SMALL2" '[.[] |
	select(.properties.headers."gradeq-course" == $c) | .properties.headers."gradeq-error"] |
	unique | join("|")' <<<"$msgs")"

# 1e308 as a cutoff: a number, out of range
assert_eq "jobs of $SMALL3 not dead" 0 "$(psql_q "SELECT count(*) FROM gradeq_jobs
	WHERE run_id = '$run' AND course_id = '$SMALL3' AND state <> 'dead'")"
err=$(psql_q "SELECT DISTINCT last_error FROM gradeq_jobs WHERE run_id = '$run' AND course_id = '$SMALL3'")
assert_match "reason of $SMALL3" "GRADE_CUTOFFS\\['Huge'\\] must be a number between 0 and 1" "$err"
log "$SMALL3: $err"

kill -TERM "$pid"
wait_exit "$pid" 30
assert_eq "consumer exit status after SIGTERM" 0 "$EXIT_STATUS"
log ok
