#!/usr/bin/env bash
# gradeq-replay export, purge and import: export leaves the queue as it
# was; purge without --yes changes nothing, with --yes empties it and marks
# the jobs discarded; importing the file brings back byte-identical bodies,
# properties and headers (typed: strings, integers, nested tables and
# arrays as in x-death), as many as the file holds. export --remove and
# import --to-release too.
set -euo pipefail
# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"

REPLAY=$(require_bin gradeq-replay)
own_db gradeq_it_r42
fresh_release rp42
seed small 200
psql_q "UPDATE courses SET grading_policy = '{\"GRADER\": 1}'" >/dev/null
config "$WORK/r.conf" 'retry_tiers=[1]'
declare_topology -c "$WORK/r.conf"
run=$(publish_jobs --course "$SMALL" --batch-size 40)
printf '\x00\xffgarbage\x80' >"$WORK/garbage"
publish_raw "$WORK/garbage" garbage-1 '{"gradeq-attempt": 1}'
"$CONSUMER" -c "$WORK/r.conf" --release "$RELEASE" --drain >>"$WORK/consumer.log" 2>&1 ||
	die "consumer failed"
# a message the broker dead-lettered itself (x-death: an array of tables)
body=$(jq -n --arg key "grades.$RELEASE" --arg p "$(printf 'broker-dead' | base64 -w0)" \
	'{routing_key: $key, payload: $p, payload_encoding: "base64",
	  properties: {message_id: "x-death-1", delivery_mode: 2, timestamp: 1700000000,
	   headers: {"x-first-death-reason": "delivery_limit", "x-first-death-queue": "gradeq.grades.rp42",
	    "x-death": [{"count": 3, "reason": "delivery_limit", "queue": "gradeq.grades.rp42",
	      "exchange": "gradeq", "routing-keys": ["grades.rp42"]}], "n": -5, "f": true}}}')
assert_eq "routed" true "$(mgmt_curl POST "api/exchanges/$VH/gradeq.dead/publish" "$body" | jq -r .routed)"
N=7

dead_count() {
	"$REPLAY" list --release "$RELEASE" --json 2>>"$WORK/replay.log" | jq .count
}
# the messages as the management API shows them, in queue order, without
# what the broker adds on delivery
snapshot() {
	peek "$(dead_queue)" | jq -c '[.[] | {payload, props: (.properties | del(.headers."x-delivery-count"))}]'
}
# a function, so that every poll counts again
parked() {
	[[ $(dead_count) == "$N" ]]
}
wait_until 30 "$N parked" parked
before=$(snapshot)
assert_eq "snapshot" $N "$(jq length <<<"$before")"

# export: the file, the queue untouched (to standard output too)
"$REPLAY" export --release "$RELEASE" - >"$WORK/stdout.jsonl" 2>>"$WORK/replay.log" ||
	die "export to standard output failed"
assert_eq "records on standard output" "$N" "$(tail -n1 "$WORK/stdout.jsonl" | jq .records)"
"$REPLAY" export --release "$RELEASE" "$WORK/dead.jsonl" >"$WORK/export.out" 2>>"$WORK/replay.log" ||
	die "export failed"
assert_eq "file lines" $((N + 2)) "$(wc -l <"$WORK/dead.jsonl")"
head=$(head -n1 "$WORK/dead.jsonl")
assert_eq "format" gradeq-dead-letters "$(jq -r .format <<<"$head")"
assert_eq "version" 1 "$(jq -r .version <<<"$head")"
assert_eq "release" "$RELEASE" "$(jq -r .release <<<"$head")"
assert_match "exported_at" '^[0-9-]{10}T[0-9:]{8}Z$' "$(jq -r .exported_at <<<"$head")"
assert_eq "trailer" "$N" "$(tail -n1 "$WORK/dead.jsonl" | jq .records)"
assert_eq "queue after export" "$before" "$(snapshot)"
assert_fails "export over an existing file" "$REPLAY" export --release "$RELEASE" "$WORK/dead.jsonl"

# purge: nothing without --yes, everything with it
out=$("$REPLAY" purge --release "$RELEASE" 2>>"$WORK/replay.log") || die "purge (dry) failed"
assert_match "purge without --yes" "would purge $N of $N" "$out"
assert_eq "queue after purge without --yes" "$before" "$(snapshot)"
out=$("$REPLAY" purge --release "$RELEASE" --yes --json 2>>"$WORK/replay.log") || die "purge failed"
assert_eq "purged" $N "$(jq .purged <<<"$out")"
assert_eq "parked after purge" 0 "$(dead_count)"
assert_eq "discarded jobs" 5 "$(psql_q "SELECT count(*) FROM gradeq_jobs WHERE state = 'discarded'")"
assert_eq "run counters dead discarded" "0 5" \
	"$(psql_q "SELECT jobs_dead || ' ' || jobs_discarded FROM gradeq_runs WHERE run_id = '$run'")"

# import: the same messages, byte for byte, in the same order
out=$("$REPLAY" import "$WORK/dead.jsonl" --json 2>>"$WORK/replay.log") || die "import failed"
assert_eq "imported" $N "$(jq .imported <<<"$out")"
assert_eq "records" $N "$(jq .records <<<"$out")"
assert_eq "queue after import" "$before" "$(snapshot)"
# discarded is final: the job rows stay as purge left them
assert_eq "discarded jobs after import" 5 "$(psql_q "SELECT count(*) FROM gradeq_jobs WHERE state = 'discarded'")"

# a file cut short is refused, nothing imported
head -n 3 "$WORK/dead.jsonl" >"$WORK/cut.jsonl"
assert_fails "import of a file cut short" "$REPLAY" import "$WORK/cut.jsonl"
assert_eq "parked after refused import" $N "$(dead_count)"

# export --remove, then import into the work queue as a replay
"$REPLAY" export --release "$RELEASE" --remove --course "$SMALL" "$WORK/small.jsonl" \
	>>"$WORK/export.out" 2>>"$WORK/replay.log" || die "export --remove failed"
assert_eq "exported and removed" 5 "$(tail -n1 "$WORK/small.jsonl" | jq .records)"
assert_eq "parked after export --remove" 2 "$(dead_count)"
out=$("$REPLAY" import "$WORK/small.jsonl" --to-release "$RELEASE" 2>>"$WORK/replay.log") ||
	die "import --to-release failed"
assert_match "import --to-release" "imported 5 of 5 record\(s\).* to gradeq.grades.$RELEASE" "$out"
msgs=$(peek "$(work_queue)")
assert_eq "in the work queue" 5 "$(jq length <<<"$msgs")"
assert_eq "replay count" 1 "$(jq -r '[.[].properties.headers."gradeq-replay-count"] | unique | join(",")' <<<"$msgs")"
assert_eq "import events" 0 "$(psql_q "SELECT count(*) FROM gradeq_job_events WHERE detail = 'imported'")"
log ok
