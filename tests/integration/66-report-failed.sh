#!/usr/bin/env bash
# A report part that goes dead fails its output: the row says failed and
# output.<id>.failed reaches gradeq.events (once, though two parts die);
# the other outputs are untouched. Replaying the dead parts, once they can
# succeed, still seals the output: sealed, output.<id>.ready, and the same
# SHA-256 as a report of the same course that never failed.
set -euo pipefail
# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"

REPORT=$(require_bin gradeq-report)
REPLAY=$(require_bin gradeq-replay)
own_db gradeq_it_failed66
fresh_release failed66
seed small 200
export GRADEQ_OUTPUT_DIR=$WORK/outputs
declare_topology
publish_jobs --course "$SMALL" >/dev/null
"$CONSUMER" --release "$RELEASE" --drain >"$WORK/grades.log" 2>&1 || die "grading failed"

"$ADMIN" events --json >"$WORK/events.out" 2>"$WORK/events.log" &
CONSUMER_PIDS+=("$!")
followed() {
	mgmt_curl GET "api/exchanges/$(urlenc "$TEST_VHOST")/gradeq.events/bindings/source" |
		jq -e 'any(.[]; .routing_key == "output.#")'
}
wait_until 60 "gradeq-admin events follows output events" followed

state() { psql_q "SELECT state FROM gradeq_outputs WHERE output_id = '$1'"; }
events_of() { jq -r "select(.output == \"$1\") | .event" "$WORK/events.out"; }

log "a good report, and one whose parts 1 and 3 cannot be written"
good=$("$REPORT" --release "$RELEASE" --course "$SMALL" --batch-size 40)
bad=$("$REPORT" --release "$RELEASE" --course "$SMALL" --batch-size 40)
# a part cannot be written while its temporary name is a directory: a
# permanent failure, straight to the dead queue
mkdir -p "$GRADEQ_OUTPUT_DIR/$bad.csv.parts/000001.tmp" "$GRADEQ_OUTPUT_DIR/$bad.csv.parts/000003.tmp"
"$CONSUMER" --release "$RELEASE" --drain >"$WORK/report.log" 2>&1 || die "report failed"
assert_eq "states" "sealed failed" "$(state "$good") $(state "$bad")"
assert_eq "dead parts" "1 3" "$(psql_q "SELECT string_agg(p.seq::text, ' ' ORDER BY p.seq)
	FROM gradeq_jobs p JOIN gradeq_outputs o USING (run_id)
	WHERE o.output_id = '$bad' AND p.state = 'dead'")"
failed_event() { [[ $(events_of "$bad") == *output.failed* ]]; }
wait_until 60 "output.<id>.failed" failed_event
assert_eq "one failed event" 1 "$(events_of "$bad" | grep -c '^output.failed$')"
assert_eq "logged once" 1 "$(grep -c "event=output_failed output=$bad" "$WORK/report.log")"
assert_eq "the good output's events" output.ready "$(events_of "$good")"

log "the dead parts replayed once they can succeed: sealed, ready"
rmdir "$GRADEQ_OUTPUT_DIR/$bad.csv.parts/000001.tmp" "$GRADEQ_OUTPUT_DIR/$bad.csv.parts/000003.tmp"
"$REPLAY" replay --release "$RELEASE" --yes </dev/null >"$WORK/replay.out" 2>&1 ||
	{ cat "$WORK/replay.out" >&2; die "replay failed"; }
"$CONSUMER" --release "$RELEASE" --drain >"$WORK/after.log" 2>&1 || die "replayed parts failed"
assert_eq "sealed after the replay" sealed "$(state "$bad")"
assert_eq "same bytes as the good report" \
	"$(psql_q "SELECT size || ' ' || sha256 FROM gradeq_outputs WHERE output_id = '$good'")" \
	"$(psql_q "SELECT size || ' ' || sha256 FROM gradeq_outputs WHERE output_id = '$bad'")"
cmp "$GRADEQ_OUTPUT_DIR/$good.csv" "$GRADEQ_OUTPUT_DIR/$bad.csv" || die "the replayed output differs"
ready_event() { [[ $(events_of "$bad") == *output.ready* ]]; }
wait_until 60 "output.<id>.ready after the replay" ready_event
assert_eq "events of the failed output" "output.failed output.ready" "$(events_of "$bad" | xargs)"
log "ok"
