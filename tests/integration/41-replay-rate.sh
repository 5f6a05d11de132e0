#!/usr/bin/env bash
# gradeq-replay pacing and interruption: --limit 7 replays 7; --rate 20 for
# 100 messages takes at least 4.5 s and never sends more than 20 in one
# second; replayed copies carry gradeq-attempt 1, gradeq-replayed-at and
# gradeq-replay-count; a replay killed with SIGKILL loses nothing (every job
# is parked or in the work queue, a duplicate at most).
set -euo pipefail
# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"

REPLAY=$(require_bin gradeq-replay)
own_db gradeq_it_r41
fresh_release rp41
seed small 300
psql_q "UPDATE courses SET grading_policy = '{\"GRADER\": 1}'" >/dev/null
config "$WORK/r.conf" 'retry_tiers=[1]'
declare_topology -c "$WORK/r.conf"
run=$(publish_jobs --course "$SMALL" --batch-size 3)
assert_eq "jobs" 100 "$(psql_q "SELECT count(*) FROM gradeq_jobs WHERE run_id = '$run'")"

park_all() {
	"$CONSUMER" -c "$WORK/r.conf" --release "$RELEASE" --drain >>"$WORK/consumer.log" 2>&1 ||
		die "consumer failed"
}
dead_count() {
	"$REPLAY" list --release "$RELEASE" --json 2>>"$WORK/replay.log" | jq .count
}
work_msgs() {
	peek "$(work_queue)"
}
park_all
assert_eq "parked" 100 "$(dead_count)"

# --limit 7
out=$("$REPLAY" replay --release "$RELEASE" --limit 7 --json </dev/null 2>>"$WORK/replay.log") ||
	die "replay --limit failed"
assert_eq "replayed with --limit 7" 7 "$(jq .replayed <<<"$out")"
assert_eq "left parked" 93 "$(dead_count)"
msgs=$(work_msgs)
assert_eq "in the work queue" 7 "$(jq length <<<"$msgs")"
assert_eq "gradeq-attempt" 1 "$(jq -r '[.[].properties.headers."gradeq-attempt"] | unique | join(",")' <<<"$msgs")"
assert_eq "gradeq-replay-count" 1 "$(jq -r '[.[].properties.headers."gradeq-replay-count"] | unique | join(",")' <<<"$msgs")"
assert_match "gradeq-replayed-at" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$' \
	"$(jq -r '.[0].properties.headers."gradeq-replayed-at"' <<<"$msgs")"
assert_eq "pending jobs" 7 "$(psql_q "SELECT count(*) FROM gradeq_jobs WHERE state = 'pending'")"
assert_eq "run's dead counter" 93 "$(psql_q "SELECT jobs_dead FROM gradeq_runs WHERE run_id = '$run'")"
park_all
assert_eq "parked again" 100 "$(dead_count)"

# --rate 20 for 100 messages
start=$(date +%s.%N)
out=$("$REPLAY" replay --release "$RELEASE" --rate 20/s --yes --json 2>>"$WORK/replay.log") ||
	die "replay --rate failed"
secs=$(python3 -c "import sys; print(int((float(sys.argv[2]) - float(sys.argv[1])) * 1000))" "$start" "$(date +%s.%N)")
assert_eq "replayed with --rate 20" 100 "$(jq .replayed <<<"$out")"
assert_ge "milliseconds for 100 at 20/s" 4500 "$secs"
msgs=$(work_msgs)
assert_eq "in the work queue" 100 "$(jq length <<<"$msgs")"
assert_eq "most sent in one second" 1 "$(jq '[.[].properties.headers."gradeq-replayed-at"] | group_by(.) |
	map(length) | max <= 20 | if . then 1 else 0 end' <<<"$msgs")"
assert_eq "replay counts" "1,2" "$(jq -r '[.[].properties.headers."gradeq-replay-count"] | unique | join(",")' <<<"$msgs")"
log "100 at 20/s in ${secs} ms"
park_all
assert_eq "parked again" 100 "$(dead_count)"
ids=$(peek "$(dead_queue)" | jq -c '[.[].properties.message_id] | sort')

# SIGKILL in the middle of a replay
"$REPLAY" replay --release "$RELEASE" --rate 20 --yes >>"$WORK/replay.log" 2>&1 &
pid=$!
some_replayed() {
	(($(peek "$(work_queue)" | jq length) >= 10))
}
wait_until 30 "the replay under way" some_replayed
kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
both() {
	local d w
	d=$(peek "$(dead_queue)" | jq -c '[.[].properties.message_id]')
	w=$(peek "$(work_queue)" | jq -c '[.[].properties.message_id]')
	jq -n --argjson d "$d" --argjson w "$w" '{dead: ($d | length), work: ($w | length), ids: ($d + $w | unique)}'
}
complete_after_kill() {
	[[ $(both | jq -c '.ids') == "$ids" ]]
}
wait_until 30 "every job parked or queued after SIGKILL" complete_after_kill
b=$(both)
total=$(jq '.dead + .work' <<<"$b")
log "after SIGKILL: $(jq -c '{dead, work}' <<<"$b")"
assert_ge "replayed before the kill" 10 "$(jq .work <<<"$b")"
((total <= 101)) || die "more than one duplicate after SIGKILL: $total messages"
log ok
