#!/usr/bin/env bash
# A course regraded after its grading policy changes: the new percent, letter
# and policy hash per the reference (refgrade.py), the new course version on
# every row, passed_timestamp kept for learners who had passed (even those
# the harsher policy now fails), and the earliest first_attempted kept: a
# score row moved later leaves it alone, one moved earlier moves it.
#
# Environment: RELEASE (default e2e-regrade), LEARNERS (default 400).
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RELEASE=${RELEASE:-e2e-regrade}
LEARNERS=${LEARNERS:-400}
REFGRADE=$GRADEQ_SRC/tests/integration/refgrade.py
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-300}
COURSE='course-v1:gradeq+small1+2026'
OTHER='course-v1:gradeq+medium1+2026'

need_cmd psql jq curl python3 timeout
ADMIN=$(require_bin gradeq-admin)
PUBLISH=$(require_bin gradeq-publish)
CONSUMER=$(require_bin gradeq-consumer)
cd "$GRADEQ_SRC"
# No NOTICEs from dropping the schema and the like.
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"

TMP=$(mktemp -d)
CONSUMER_PID=
cleanup() {
	if [[ -n $CONSUMER_PID ]]; then
		kill "$CONSUMER_PID" 2>/dev/null || true
		wait "$CONSUMER_PID" 2>/dev/null || true
	fi
	if [[ -n ${KEEP_TMP:-} ]]; then
		log "logs kept in $TMP"
	else
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT

# grade TAG ARGS...: publish (ARGS select the courses) and drain with one
# consumer; the run and all its jobs must end complete.
grade() {
	local tag=$1 rc=0 run state
	shift
	"$PUBLISH" --release "$RELEASE" "$@" --json --quiet >"$TMP/publish-$tag.json" 2>"$TMP/publish-$tag.err" ||
		die "$tag: gradeq-publish failed: $(cat "$TMP/publish-$tag.err")"
	run=$(jq -r .run_id "$TMP/publish-$tag.json")
	timeout "$DRAIN_TIMEOUT" "$CONSUMER" --release "$RELEASE" --drain >"$TMP/consumer-$tag.log" 2>&1 &
	CONSUMER_PID=$!
	wait "$CONSUMER_PID" || rc=$?
	CONSUMER_PID=
	if ((rc != 0)); then
		tail -n 20 "$TMP/consumer-$tag.log" >&2
		((rc == 124)) && die "$tag: the consumer did not drain within ${DRAIN_TIMEOUT}s"
		die "$tag: the consumer exited $rc"
	fi
	state=$(psql_q "SELECT state || ' ' || jobs_complete || '/' || jobs_total FROM gradeq_runs WHERE run_id = '$run'")
	local total=${state#* }
	total=${total#*/}
	assert_eq "$tag: run $run" "complete $total/$total" "$state"
}

# refcheck TAG ARGS...: refgrade.py check must pass.
refcheck() {
	local tag=$1
	shift
	python3 "$REFGRADE" check --limit-errors 20 "$@" >"$TMP/ref-$tag.out" 2>&1 ||
		{ cat "$TMP/ref-$tag.out" >&2; die "$tag: grade rows differ from the reference"; }
	log "$tag: $(cat "$TMP/ref-$tag.out")"
}

# --- a graded course -------------------------------------------------------------

log "fresh database and queues for release $RELEASE"
fresh_db
clear_release_queues "$RELEASE"
"$ADMIN" migrate --with-input-tables >/dev/null 2>"$TMP/admin.err" ||
	die "gradeq-admin migrate failed: $(cat "$TMP/admin.err")"
"$ADMIN" seed --courses small,medium --learners "$LEARNERS" --seed 5 >/dev/null 2>"$TMP/admin.err" ||
	die "gradeq-admin seed failed: $(cat "$TMP/admin.err")"
n=$(psql_q "SELECT count(*) FROM courses WHERE course_id IN ('$COURSE', '$OTHER')")
assert_eq "seeded courses" 2 "$n"

grade initial --all-courses
refcheck initial --fresh

# What the first grading left: the course rows (passed_timestamp, hash,
# version) and the subsection rows of both courses.
psql_q "CREATE TABLE regrade_before AS SELECT course_id, user_id, course_version, grading_policy_hash,
	percent_grade, passed_timestamp FROM grades_persistentcoursegrade" >/dev/null
psql_q "CREATE TABLE regrade_sub_before AS SELECT course_id, user_id, usage_key, course_version,
	earned_all, possible_all, earned_graded, possible_graded, first_attempted, modified
	FROM grades_persistentsubsectiongrade" >/dev/null
old_hash=$(psql_q "SELECT DISTINCT grading_policy_hash FROM regrade_before WHERE course_id = '$COURSE'")
old_version=$(psql_q "SELECT version FROM courses WHERE course_id = '$COURSE'")
passed_before=$(psql_q "SELECT count(*) FROM regrade_before WHERE course_id = '$COURSE' AND passed_timestamp IS NOT NULL")
assert_ge "learners who passed $COURSE at first" 10 "$passed_before"

# A subsection row with an attempt, and the one score row that gave it.
pick=$(psql_q "SELECT s.user_id || '|' || s.usage_key || '|' || m.id || '|' ||
		(extract(epoch from s.first_attempted) * 1000000)::bigint
	FROM grades_persistentsubsectiongrade s
	JOIN courseware_studentmodule m ON m.student_id = s.user_id AND m.course_id = s.course_id
		AND m.created = s.first_attempted AND m.grade IS NOT NULL AND m.max_grade IS NOT NULL
	WHERE s.course_id = '$COURSE'
	  AND (SELECT count(*) FROM courseware_studentmodule m2 WHERE m2.student_id = s.user_id
		AND m2.course_id = s.course_id AND m2.created = s.first_attempted) = 1
	ORDER BY s.user_id, s.usage_key LIMIT 1")
[[ -n $pick ]] || die "no subsection row of $COURSE with an attempt to move"
IFS='|' read -r fa_user fa_seq fa_sm fa_old <<<"$pick"
log "moving score row $fa_sm (user $fa_user, first attempt of $fa_seq) around"

first_attempted_us() {
	psql_q "SELECT coalesce((extract(epoch from first_attempted) * 1000000)::bigint::text, 'NULL')
		FROM grades_persistentsubsectiongrade
		WHERE course_id = '$COURSE' AND user_id = $fa_user AND usage_key = '$fa_seq'"
}

# --- a harsher policy, and an attempt moved later -----------------------------------

# Final Exam weighs more, Homework and Lab less, and passing needs 0.8
# instead of 0.5: learners between the two cutoffs passed and now fail.
psql_q "UPDATE courses SET grading_policy = '{\"GRADER\": [
	{\"type\": \"Homework\", \"min_count\": 1, \"drop_count\": 0, \"short_label\": \"HW\", \"weight\": 0.1},
	{\"type\": \"Lab\", \"min_count\": 3, \"drop_count\": 1, \"short_label\": \"Lab\", \"weight\": 0.1},
	{\"type\": \"Midterm Exam\", \"min_count\": 1, \"drop_count\": 0, \"short_label\": \"Midterm\", \"weight\": 0.3},
	{\"type\": \"Final Exam\", \"min_count\": 1, \"drop_count\": 0, \"short_label\": \"Final\", \"weight\": 0.5}],
	\"GRADE_CUTOFFS\": {\"A\": 0.9, \"Pass\": 0.8}}'::jsonb,
	version = version || '-2', edited_at = now()
	WHERE course_id = '$COURSE'" >/dev/null
psql_q "UPDATE courseware_studentmodule SET created = created + interval '30 days',
	modified = modified + interval '30 days' WHERE id = $fa_sm" >/dev/null

grade harsher --course "$COURSE"

new_version=$(psql_q "SELECT version FROM courses WHERE course_id = '$COURSE'")
assert_eq "new course version" "$old_version-2" "$new_version"
hashes=$(psql_q "SELECT string_agg(DISTINCT grading_policy_hash, ',') FROM grades_persistentcoursegrade
	WHERE course_id = '$COURSE'")
assert_ne "policy hash of $COURSE after the policy change" "$old_hash" "$hashes"
n=$(psql_q "SELECT count(*) FROM grades_persistentcoursegrade c JOIN regrade_before b USING (course_id, user_id)
	WHERE c.course_id = '$COURSE' AND c.percent_grade <> b.percent_grade")
assert_ge "learners of $COURSE whose percent changed" 1 "$n"

# passed_timestamp is never cleared nor moved for those who had passed.
changed=$(psql_q "SELECT count(*) FROM regrade_before b LEFT JOIN grades_persistentcoursegrade c
	USING (course_id, user_id) WHERE b.passed_timestamp IS NOT NULL
	AND c.passed_timestamp IS DISTINCT FROM b.passed_timestamp")
if [[ $changed != 0 ]]; then
	psql_q "SELECT b.course_id, b.user_id, b.passed_timestamp, c.passed_timestamp, c.percent_grade
		FROM regrade_before b LEFT JOIN grades_persistentcoursegrade c USING (course_id, user_id)
		WHERE b.passed_timestamp IS NOT NULL AND c.passed_timestamp IS DISTINCT FROM b.passed_timestamp
		LIMIT 5" >&2
	die "passed_timestamp changed for $changed learners who had passed (above: before, after, percent)"
fi
now_failing=$(psql_q "SELECT count(*) FROM regrade_before b JOIN grades_persistentcoursegrade c
	USING (course_id, user_id) WHERE b.course_id = '$COURSE' AND b.passed_timestamp IS NOT NULL
	AND c.percent_grade < 0.8")
assert_ge "learners who passed and fail the harsher policy (their passed_timestamp kept)" 1 "$now_failing"

# The attempt moved later: the stored, earlier first_attempted stays.
assert_eq "first_attempted of user $fa_user in $fa_seq after its attempt moved later" \
	"$fa_old" "$(first_attempted_us)"

# The other course was not regraded: its rows are as they were.
n=$(psql_q "SELECT count(*) FROM grades_persistentsubsectiongrade s JOIN regrade_sub_before b
	USING (course_id, user_id, usage_key) WHERE s.course_id = '$OTHER' AND s.modified <> b.modified")
assert_eq "subsection rows of $OTHER touched by a regrade of $COURSE" 0 "$n"

# Every row per the reference; --history: a stored first_attempted may be
# earlier than the scores now say, and passed_timestamp may predate a fail.
refcheck harsher --history

# --- the attempt moved earlier ----------------------------------------------------------

# It sits 30 days after the first attempt now: move it to a day before.
psql_q "UPDATE courseware_studentmodule SET created = created - interval '31 days'
	WHERE id = $fa_sm" >/dev/null
want=$((fa_old - 86400 * 1000000))
got=$(psql_q "SELECT (extract(epoch from created) * 1000000)::bigint FROM courseware_studentmodule WHERE id = $fa_sm")
assert_eq "score row $fa_sm moved a day before the first attempt" "$want" "$got"

grade earlier --course "$COURSE"
assert_eq "first_attempted of user $fa_user in $fa_seq after its attempt moved earlier" \
	"$want" "$(first_attempted_us)"
# Now stored and computed first_attempted agree again everywhere.
refcheck earlier

log "ok"
