#!/usr/bin/env bash
# gradeq-replay and the release registry: replaying into a retired release
# (named with --to-release, or the dead queue's own release once retired)
# sends the jobs to the promoted release; a release that does not exist (no
# registry entry and no queue) fails clearly and moves nothing.
set -euo pipefail
# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"

REPLAY=$(require_bin gradeq-replay)
own_db gradeq_it_r43
fresh_release rp43b
fresh_release rp43c
fresh_release rp43
seed small 100
psql_q "UPDATE courses SET grading_policy = '{\"GRADER\": 1}'" >/dev/null
config "$WORK/r.conf" 'retry_tiers=[1]'
declare_topology -c "$WORK/r.conf"
run=$(publish_jobs --course "$SMALL" --batch-size 10)
"$CONSUMER" -c "$WORK/r.conf" --release "$RELEASE" --drain >>"$WORK/consumer.log" 2>&1 ||
	die "consumer failed"
psql_q "INSERT INTO gradeq_releases (name, state, schema_version) VALUES
	('rp43b', 'promoted', 2), ('rp43c', 'retired', 2)" >/dev/null

ids() {
	"$REPLAY" list --release "$RELEASE" --json 2>>"$WORK/replay.log" | jq -c '[.messages[].job_id]'
}
before=$(ids)
assert_eq "parked" 10 "$(jq length <<<"$before")"

# an unknown release: an error, nothing moves
if out=$("$REPLAY" replay --release "$RELEASE" --to-release nosuch43 --yes 2>&1); then
	die "replay into an unknown release succeeded: $out"
fi
assert_match "unknown release error" "^gradeq-replay: error: release 'nosuch43' does not exist" "$out"
assert_eq "error lines" 1 "$(wc -l <<<"$out")"
assert_eq "parked after the refused replay" "$before" "$(ids)"
assert_eq "no queue made for it" -1 "$(queue_depth gradeq.grades.nosuch43)"
if out=$("$REPLAY" list --release nosuch43 2>&1); then
	die "list of an unknown release succeeded: $out"
fi
assert_match "no dead queue" "no dead queue 'gradeq.grades.nosuch43.dead'" "$out"

# --to-release a retired release: the promoted one gets the jobs
out=$("$REPLAY" replay --release "$RELEASE" --to-release rp43c --limit 3 --json 2>"$WORK/err") ||
	die "replay into a retired release failed: $(cat "$WORK/err")"
assert_match "fallback said" "release 'rp43c' is retired: its jobs go to the promoted release 'rp43b'" \
	"$(cat "$WORK/err")"
assert_eq "to" gradeq.grades.rp43b "$(jq -r .to <<<"$out")"
assert_eq "replayed" 3 "$(jq .replayed <<<"$out")"
assert_eq "in the promoted release's queue" 3 "$(peek gradeq.grades.rp43b | jq length)"
assert_eq "no queue for the retired release" -1 "$(queue_depth gradeq.grades.rp43c)"

# the dead queue's own release retired: its jobs go to the promoted one
psql_q "UPDATE gradeq_releases SET state = 'retired' WHERE name = '$RELEASE'" >/dev/null
out=$("$REPLAY" replay --release "$RELEASE" --json 2>"$WORK/err" </dev/null) ||
	die "replay of a retired release failed: $(cat "$WORK/err")"
assert_eq "replayed" 7 "$(jq .replayed <<<"$out")"
assert_eq "in the promoted release's queue" 10 "$(peek gradeq.grades.rp43b | jq length)"
assert_eq "parked" '[]' "$(ids)"
assert_eq "pending jobs" 10 "$(psql_q "SELECT count(*) FROM gradeq_jobs WHERE run_id = '$run' AND state = 'pending'")"
assert_eq "run back to running" "running 0" \
	"$(psql_q "SELECT state || ' ' || jobs_dead FROM gradeq_runs WHERE run_id = '$run'")"
log ok
