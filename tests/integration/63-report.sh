#!/usr/bin/env bash
# Grade reports (gradeq-report, issue 18) on the file backend: a report
# over 3 courses x LEARNERS (1000) learners, built by part jobs on the
# release's queues, must equal, byte for byte, the CSV that refreport.py
# computes independently from the grade tables, with the recorded size and
# SHA-256. Then a second report of one course survives a consumer SIGKILLed
# mid-report and one part parked in the dead queue and replayed: one sealed
# output, with the same SHA-256 as the first report of that course. Last,
# delete, and purge-history removing outputs past their keep-until.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RELEASE=rep63
LEARNERS=${LEARNERS:-1000}
need_cmd psql jq python3 timeout sha256sum cmp
ADMIN=$(require_bin gradeq-admin)
PUBLISH=$(require_bin gradeq-publish)
CONSUMER=$(require_bin gradeq-consumer)
REPORT=$(require_bin gradeq-report)
REPLAY=$(require_bin gradeq-replay)
REFREPORT=$GRADEQ_SRC/tests/integration/refreport.py
cd "$GRADEQ_SRC"
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"

TMP=$(mktemp -d)
export GRADEQ_OUTPUT_DIR=$TMP/outputs
CONSUMER_PID=
cleanup() {
	[[ -n $CONSUMER_PID ]] && kill "$CONSUMER_PID" 2>/dev/null && wait "$CONSUMER_PID" 2>/dev/null
	if [[ -n ${KEEP_TMP:-} ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

# drain TAG: one consumer until the release's queues are empty.
drain() {
	timeout 600 "$CONSUMER" --release "$RELEASE" --drain >"$TMP/consumer-$1.log" 2>&1 ||
		{ tail -n 20 "$TMP/consumer-$1.log" >&2; die "consumer ($1) failed"; }
}

# session_waits APPNAME EVENT: a session of this database (of APPNAME; any
# when empty) waits on EVENT (a wait_event such as PgSleep, or the type Lock).
session_waits() {
	test "$(psql_q "SELECT count(*) > 0 FROM pg_stat_activity WHERE datname = current_database()
		AND pid <> pg_backend_pid() AND ('$1' = '' OR application_name = '$1')
		AND ('$2' IN (wait_event, wait_event_type))")" = t
}

output_state() {
	psql_q "SELECT state FROM gradeq_outputs WHERE output_id = '$1'"
}

# check_output ID COURSE: the sealed file equals refreport.py's CSV and the
# row's size and digest describe it.
check_output() {
	local id=$1 course=$2 file=$GRADEQ_OUTPUT_DIR/$1.csv row
	assert_eq "state of output $id" sealed "$(output_state "$id")"
	python3 "$REFREPORT" "$GRADEQ_PG_DSN" "$course" >"$TMP/expected-$id.csv" ||
		die "refreport.py failed for $course"
	cmp "$TMP/expected-$id.csv" "$file" ||
		{ diff "$TMP/expected-$id.csv" "$file" | head -n 10 >&2; die "output $id differs from the reference"; }
	row=$(psql_q "SELECT size || ' ' || sha256 FROM gradeq_outputs WHERE output_id = '$id'")
	assert_eq "size and sha256 of $id" "$(stat -c %s "$file") $(sha256sum "$file" | cut -d' ' -f1)" "$row"
	[[ ! -e $file.parts ]] || die "parts of $id left after the seal"
}

log "fresh database, $LEARNERS learners in each of 3 courses, graded"
fresh_db
clear_release_queues "$RELEASE"
"$ADMIN" migrate --with-input-tables >/dev/null
"$ADMIN" seed --courses small,medium,large --learners "$LEARNERS" --seed 63 >/dev/null
"$PUBLISH" --release "$RELEASE" --all-courses --batch-size 200 --quiet >/dev/null
drain grades
mapfile -t COURSES < <(psql_q "SELECT course_id FROM courses ORDER BY course_id")
assert_eq "courses" 3 "${#COURSES[@]}"

log "one report over the 3 courses, parts of 250 learners"
args=()
for c in "${COURSES[@]}"; do args+=(--course "$c"); done
"$REPORT" --release "$RELEASE" "${args[@]}" --batch-size 250 --json >"$TMP/report1.json"
mapfile -t OUTS < <(jq -r '.output_ids[]' "$TMP/report1.json")
assert_eq "outputs" 3 "${#OUTS[@]}"
assert_eq "--json output_id is the first" "${OUTS[0]}" "$(jq -r .output_id "$TMP/report1.json")"
run1=$(jq -r .run_id "$TMP/report1.json")
assert_eq "parts published" $((3 * LEARNERS / 250)) "$(jq -r .parts "$TMP/report1.json")"
assert_eq "pending before any consumer" pending "$(output_state "${OUTS[0]}")"
drain report1
for i in 0 1 2; do
	check_output "${OUTS[i]}" "${COURSES[i]}"
done
assert_eq "run of the report" complete "$(psql_q "SELECT state FROM gradeq_runs WHERE run_id = '$run1'")"
assert_eq "part jobs complete" "complete=$((3 * LEARNERS / 250))" \
	"$(psql_q "SELECT string_agg(state || '=' || n, ',') FROM (SELECT state, count(*) n
		FROM gradeq_jobs WHERE run_id = '$run1' GROUP BY 1) s")"
sha1=$(psql_q "SELECT sha256 FROM gradeq_outputs WHERE output_id = '${OUTS[0]}'")

log "list --json shows the course's output"
"$REPORT" list --course "${COURSES[0]}" --json >"$TMP/list.json"
assert_eq "listed" "${OUTS[0]} sealed $sha1" \
	"$(jq -r '.[0] | "\(.output_id) \(.state) \(.sha256)"' "$TMP/list.json")"

log "second report of ${COURSES[0]}: part 3 parked, a consumer killed mid-report"
out2=$("$REPORT" --release "$RELEASE" --course "${COURSES[0]}" --batch-size 100)
parts2=$((LEARNERS / 100))
# part 3 cannot be written while its temporary name is a directory: a
# permanent failure, straight to the dead queue
mkdir -p "$GRADEQ_OUTPUT_DIR/$out2.csv.parts/000003.tmp"
# Deterministic "mid-report": a session holds the output's row lock, the
# consumer blocks inside its first part's transaction, and is killed there.
PGAPPNAME=gradeq-t63-lock psql -X -q -d "$GRADEQ_PG_DSN" -c "BEGIN;
	SELECT 1 FROM gradeq_outputs WHERE output_id = '$out2' FOR UPDATE;
	SELECT pg_sleep(3600)" >/dev/null 2>&1 &
LOCK_PID=$!
wait_until 120 "the lock holder" session_waits gradeq-t63-lock PgSleep
"$CONSUMER" --release "$RELEASE" --prefetch 1 >"$TMP/consumer-killed.log" 2>&1 &
CONSUMER_PID=$!
wait_until 120 "the consumer blocked on the output's lock" session_waits '' Lock
kill -KILL "$CONSUMER_PID"
wait "$CONSUMER_PID" 2>/dev/null || true
CONSUMER_PID=
psql_q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
	WHERE application_name = 'gradeq-t63-lock'" >/dev/null
wait "$LOCK_PID" 2>/dev/null || true
drain after-kill
assert_eq "output failed by its dead part" failed "$(output_state "$out2")"
assert_eq "parts recorded" $((parts2 - 1)) \
	"$(psql_q "SELECT count(*) FROM gradeq_output_parts WHERE output_id = '$out2'")"
assert_eq "the dead part" "3" "$(psql_q "SELECT p.seq FROM gradeq_jobs p JOIN gradeq_outputs o
	USING (run_id) WHERE o.output_id = '$out2' AND p.state = 'dead'")"
rmdir "$GRADEQ_OUTPUT_DIR/$out2.csv.parts/000003.tmp"
"$REPLAY" replay --release "$RELEASE" --yes </dev/null >"$TMP/replay.out" 2>&1 ||
	{ cat "$TMP/replay.out" >&2; die "replay failed"; }
drain after-replay
check_output "$out2" "${COURSES[0]}"
assert_eq "same SHA-256 as the first report" "$sha1" \
	"$(psql_q "SELECT sha256 FROM gradeq_outputs WHERE output_id = '$out2'")"
assert_eq "sealed once" 1 "$(psql_q "SELECT count(*) FROM gradeq_outputs o JOIN gradeq_runs r
	USING (run_id) WHERE o.output_id = '$out2' AND o.sealed_at IS NOT NULL")"
grep -c 'event=output_sealed' "$TMP"/consumer-after-*.log "$TMP/consumer-killed.log" |
	awk -F: '{ n += $2 } END { exit n == 1 ? 0 : 1 }' || die "output_sealed logged more than once"

log "delete"
"$REPORT" delete "$out2" >/dev/null
[[ ! -e $GRADEQ_OUTPUT_DIR/$out2.csv ]] || die "deleted output's file is still there"
assert_eq "state after delete" deleted "$(output_state "$out2")"
assert_fails "delete twice" "$REPORT" delete "$out2"
log "purge-history removes outputs past keep-until, and their files"
out3=$("$REPORT" --release "$RELEASE" --course "${COURSES[1]}" --batch-size 1000 --keep-until 2099-01-01)
out4=$("$REPORT" --release "$RELEASE" --course "${COURSES[2]}" --batch-size 1000 --use-once)
drain purge
assert_eq "use-once recorded" "true false" "$(psql_q "SELECT (SELECT use_once FROM gradeq_outputs
	WHERE output_id = '$out4') || ' ' || (SELECT use_once FROM gradeq_outputs WHERE output_id = '$out3')")"
[[ -f $GRADEQ_OUTPUT_DIR/$out3.csv ]] || die "output $out3 was not sealed"
# keep-until passes (no waiting: the row's date is moved into the past)
psql_q "UPDATE gradeq_outputs SET keep_until = now() - interval '1 second'
	WHERE output_id IN ('$out3', '${OUTS[1]}')" >/dev/null
"$ADMIN" purge-history --yes --json >"$TMP/purge.json"
assert_eq "purged outputs" 2 "$(jq -r .deleted_outputs "$TMP/purge.json")"
[[ ! -e $GRADEQ_OUTPUT_DIR/$out3.csv && ! -e $GRADEQ_OUTPUT_DIR/${OUTS[1]}.csv ]] ||
	die "purged outputs' files are still there"
assert_eq "purged rows" "deleted deleted" "$(output_state "$out3") $(output_state "${OUTS[1]}")"
assert_eq "kept outputs" "sealed sealed" "$(output_state "${OUTS[0]}") $(output_state "$out4")"
[[ -f $GRADEQ_OUTPUT_DIR/${OUTS[0]}.csv ]] || die "an output within its keep-until was removed"
assert_fails "--keep-until in the past" "$REPORT" --course "${COURSES[0]}" --keep-until 2001-01-01
assert_fails "--keep-until with --use-once" "$REPORT" --course "${COURSES[0]}" \
	--keep-until 2099-01-01 --use-once
log "ok"
