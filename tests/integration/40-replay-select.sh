#!/usr/bin/env bash
# gradeq-replay list and replay: jobs of two courses with broken policies and
# a garbage message are parked; after one course's policy is mended,
# replaying that course brings exactly its jobs back, they are graded, and
# the rest stay parked in their order. list changes nothing.
set -euo pipefail
# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"

REPLAY=$(require_bin gradeq-replay)
FIXED=course-v1:gradeq+small2+2026
BROKEN=$MEDIUM
own_db gradeq_it_r40
fresh_release rp40
seed small,small,medium 300
good_policy=$(psql_q "SELECT grading_policy FROM courses WHERE course_id = '$FIXED'")
psql_q "UPDATE courses SET grading_policy = '{\"GRADER\": {\"type\": \"Homework\"},
	\"GRADE_CUTOFFS\": {\"Pass\": 0.5}}' WHERE course_id IN ('$FIXED', '$BROKEN')" >/dev/null
config "$WORK/r.conf" 'retry_tiers=[1]'
declare_topology -c "$WORK/r.conf"

# interleave the two courses (and a garbage body) in the dead queue
runs=()
runs+=("$(publish_jobs --course "$FIXED" --batch-size 100)")
runs+=("$(publish_jobs --course "$BROKEN" --batch-size 100)")
printf '\x00\x01 not a job at all \xff' >"$WORK/garbage"
publish_raw "$WORK/garbage" garbage-1 '{"gradeq-attempt": 1}'
runs+=("$(publish_jobs --course "$FIXED" --batch-size 100)")
runs+=("$(publish_jobs --course "$BROKEN" --batch-size 100)")
"$CONSUMER" -c "$WORK/r.conf" --release "$RELEASE" --drain >>"$WORK/consumer.log" 2>&1 ||
	die "consumer failed"

list_json() {
	"$REPLAY" list --release "$RELEASE" --json "$@" 2>>"$WORK/replay.log" || die "list failed"
}
ids() {
	list_json | jq -c '[.messages[] | .job_id]'
}
l=$(list_json)
assert_eq "parked messages" 13 "$(jq .count <<<"$l")"
# keys sorted: the garbage is parked as it is met, a group's failures after
assert_eq "by course" "$(jq -cnS --arg f "$FIXED" --arg b "$BROKEN" '{($f): 6, ($b): 6, "(undecodable)": 1}')" \
	"$(jq -cS .by_course <<<"$l")"
assert_eq "by class" '{"permanent":13}' "$(jq -c .by_class <<<"$l")"
g=$(jq -c '.messages[] | select(.decodable == false)' <<<"$l")
assert_eq "garbage message id" garbage-1 "$(jq -r .job_id <<<"$g")"
assert_eq "garbage head" "$(head -c 32 "$WORK/garbage" | od -An -tx1 | tr -d ' \n')" "$(jq -r .head_hex <<<"$g")"
assert_match "garbage headers listed" 'gradeq-error-class=permanent' "$(jq -r .headers <<<"$g")"
assert_match "an age" '^[0-9]+$' "$(jq -r '.messages[0].age_s' <<<"$l")"
assert_eq "list of one course" 6 "$(list_json --course "$BROKEN" | jq .count)"
assert_eq "list by reason" 12 "$(list_json --reason 'grader must BE' | jq .count)"
assert_eq "list older than an hour" 0 "$(list_json --older-than 1h | jq .count)"
text=$("$REPLAY" list --release "$RELEASE" 2>>"$WORK/replay.log") || die "list (text) failed"
assert_match "text summary" "13 parked message\(s\) matching" "$text"
assert_match "text undecodable line" 'undecodable message_id=garbage-1 size=21' "$text"

# list leaves the queue as it was, order included
order=$(ids)
assert_eq "order after listing" "$order" "$(ids)"
assert_eq "dead jobs" 12 "$(psql_q "SELECT count(*) FROM gradeq_jobs WHERE state = 'dead'")"

# mend one course, replay it alone (stdin is not a terminal: no prompt)
psql_q "UPDATE courses SET grading_policy = '$good_policy' WHERE course_id = '$FIXED'" >/dev/null
out=$("$REPLAY" replay --release "$RELEASE" --course "$FIXED" --dry-run 2>>"$WORK/replay.log") ||
	die "dry run failed"
assert_match "dry run" 'would replay 6 of 6' "$out"
assert_eq "order after a dry run" "$order" "$(ids)"
out=$("$REPLAY" replay --release "$RELEASE" --course "$FIXED" --json </dev/null 2>>"$WORK/replay.log") ||
	die "replay failed"
assert_eq "replayed" 6 "$(jq .replayed <<<"$out")"
assert_eq "scanned" 13 "$(jq .scanned <<<"$out")"
want=$(list_json | jq -c '[.messages[] | .job_id]')
assert_eq "what is left" 7 "$(jq length <<<"$want")"
assert_eq "courses left" "$(jq -cnS --arg b "$BROKEN" '{($b): 6, "(undecodable)": 1}')" \
	"$(list_json | jq -cS .by_course)"
# the rest keep their relative order
assert_eq "order of the rest" "$(jq -c --argjson left "$want" '[.[] | select(. as $i | $left | index($i))]' <<<"$order")" "$want"
assert_eq "jobs back to pending" 6 "$(psql_q "SELECT count(*) FROM gradeq_jobs WHERE state = 'pending'
	AND course_id = '$FIXED'")"
assert_eq "replay events" 6 "$(psql_q "SELECT count(*) FROM gradeq_job_events WHERE from_state = 'dead'
	AND to_state = 'pending' AND detail = 'replayed'")"

"$CONSUMER" -c "$WORK/r.conf" --release "$RELEASE" --drain >>"$WORK/consumer.log" 2>&1 ||
	die "consumer failed"
assert_fully_graded "$FIXED"
assert_eq "jobs of $FIXED complete" 6 "$(psql_q "SELECT count(*) FROM gradeq_jobs WHERE course_id = '$FIXED'
	AND state = 'complete'")"
for run in "${runs[0]}" "${runs[2]}"; do
	check_exactly_once "$run"
done
assert_eq "what stays parked" "$want" "$(ids)"
assert_eq "dead jobs left" 6 "$(psql_q "SELECT count(*) FROM gradeq_jobs WHERE state = 'dead'")"

# nothing matches: nothing moves
out=$("$REPLAY" replay --release "$RELEASE" --course "$FIXED" </dev/null 2>>"$WORK/replay.log") ||
	die "empty replay failed"
assert_match "empty replay" 'replayed 0 of 0' "$out"
assert_eq "still parked" "$want" "$(ids)"
log ok
