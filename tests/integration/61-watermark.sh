#!/usr/bin/env bash
# The incremental watermark: after a first incremental run records each
# course's watermark (gradeq_watermarks), gradeq-publish --incremental
# publishes exactly the learners whose score rows changed since, read
# through the index range on courseware_studentmodule (course_id, modified)
# (no sequential scan of the score rows); a second run with no change
# publishes nothing (rows of the overlap whose writer the previous
# selection's snapshot saw are not selected again); the watermark lives in the database, so a new publisher process
# starts from it; a writer's transaction in flight during a run, committed
# after it, is picked up by the next one; new enrollments and a new course
# version are selected; the grades equal the reference (refgrade.py). A
# regrade of learners whose grades do not change writes no grade row
# (only rows that change or are missing).
#
# Environment: RELEASE (default wm), LEARNERS (default 300).
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RELEASE=${RELEASE:-wm}
LEARNERS=${LEARNERS:-300}
QUEUE=gradeq.grades.$RELEASE
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-300}
REFGRADE=$GRADEQ_SRC/tests/integration/refgrade.py
INDEX=courseware_studentmodule_course_id_modified

need_cmd psql jq curl timeout python3
ADMIN=$(require_bin gradeq-admin)
PUBLISH=$(require_bin gradeq-publish)
CONSUMER=$(require_bin gradeq-consumer)
cd "$GRADEQ_SRC"
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
TMP=$(mktemp -d)
WRITER_PID=
cleanup() {
	[[ -z $WRITER_PID ]] || kill "$WRITER_PID" 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT

fresh_release_queues() {
	local name
	while IFS= read -r name; do
		[[ -n $name ]] || continue
		mgmt_delete "api/queues/$VH/$(urlenc "$name")"
	done < <(mgmt_get "api/queues/$VH?columns=name" |
		jq -r --arg q "$QUEUE" '.[].name | select(. == $q or startswith($q + "."))')
}

# publish OUT ARGS...: publish every course (a new process each time);
# JSON summary to OUT.
publish() {
	local out=$1
	shift
	"$PUBLISH" --release "$RELEASE" --all-courses --batch-size 50 --json --quiet "$@" \
		>"$out" 2>"$TMP/publish.err" || die "gradeq-publish $* failed: $(cat "$TMP/publish.err")"
}

drain() {
	timeout "$DRAIN_TIMEOUT" "$CONSUMER" --release "$RELEASE" --drain >"$TMP/consumer.log" 2>&1 ||
		{ tail -n 20 "$TMP/consumer.log" >&2; die "consumer did not drain"; }
}

# incremental TAG: an incremental run, drained; prints its learners.
incremental() {
	publish "$TMP/$1.json" --incremental
	drain
	assert_eq "$1: run complete" complete "$(psql_q "SELECT state FROM gradeq_runs
		WHERE run_id = '$(jq -r .run_id "$TMP/$1.json")'")"
	jq -r .learners "$TMP/$1.json"
}

refcheck() {
	python3 "$REFGRADE" check --history --limit-errors 20 >"$TMP/ref.out" 2>&1 ||
		{ cat "$TMP/ref.out" >&2; die "$1: grade rows differ from the reference"; }
	log "$1: $(cat "$TMP/ref.out")"
}

# change N: N learners who have a score row below its maximum get it raised
# (modified stamped now); their ids, one a line, into $TMP/changed.
change() {
	psql_q "WITH pick AS (SELECT DISTINCT ON (student_id) id, student_id
		FROM courseware_studentmodule WHERE grade < max_grade
		ORDER BY student_id, id LIMIT $1)
		UPDATE courseware_studentmodule m SET grade = m.max_grade, modified = now()
		FROM pick WHERE m.id = pick.id RETURNING m.student_id" | sort -n >"$TMP/changed"
	assert_eq "learners changed" "$1" "$(wc -l <"$TMP/changed")"
}

# digest_of FILE: the users digest of one job holding the learners of FILE
# (SHA-256 of their ids as little-endian int32, in enrollment order).
digest_of() {
	psql_q "SELECT user_id FROM student_courseenrollment
		WHERE user_id IN ($(paste -sd, "$1")) ORDER BY id" |
		python3 -c 'import hashlib, struct, sys
ids = [int(x) for x in sys.stdin.read().split()]
print(hashlib.sha256(struct.pack("<%di" % len(ids), *ids)).hexdigest())'
}

# scans: the score table's sequential scans and the modified index's scans.
scans() {
	psql_q "SELECT (SELECT seq_scan FROM pg_stat_user_tables
		WHERE relname = 'courseware_studentmodule') || ' ' ||
		(SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = '$INDEX')"
}

# index_scanned_since N: the modified index was scanned more than N times.
index_scanned_since() {
	local idx
	idx=$(scans)
	((${idx#* } > $1))
}

fresh_db
fresh_release_queues
"$ADMIN" migrate --with-input-tables >/dev/null 2>&1 || die "migrate failed"
"$ADMIN" seed --courses small --learners "$LEARNERS" >/dev/null 2>&1 || die "seed failed"
course=$(psql_q "SELECT course_id FROM courses")

log "check-input: every index gradeq relies on is there"
assert_ok "check-input" "$ADMIN" check-input
assert_eq "check-input --json: none missing" 0 "$("$ADMIN" --json check-input | jq .missing)"

log "backfill, then a first incremental run records the watermark"
publish "$TMP/full.json"
drain
assert_eq "first incremental: nothing changed" 0 "$(incremental first)"
assert_eq "watermark recorded" 1 "$(psql_q "SELECT count(*) FROM gradeq_watermarks
	WHERE release = '$RELEASE' AND course_id = '$course'
	AND run_id = '$(jq -r .run_id "$TMP/first.json")'")"
marks=$(psql_q "SELECT watermark FROM gradeq_watermarks")
publish "$TMP/dry.json" --incremental --dry-run
assert_eq "a dry run records nothing" "$marks" "$(psql_q "SELECT watermark FROM gradeq_watermarks")"

log "nine learners change: exactly they are published, through the index range"
change 9
before=$(psql_q "SELECT now()")
psql_q "ANALYZE courseware_studentmodule" >/dev/null
read -r seq0 idx0 < <(scans)
assert_eq "changed learners published" 9 "$(incremental nine)"
jq -e '.window_from != null and .window_to != null and .select_seconds >= 0' \
	"$TMP/nine.json" >/dev/null || die "no data window in $(cat "$TMP/nine.json")"
wait_until 30 "the index scan counted" index_scanned_since "$idx0"
read -r seq1 _ < <(scans)
assert_eq "no sequential scan of the score rows" "$seq0" "$seq1"
assert_eq "the job's learners are the changed ones" "$(digest_of "$TMP/changed")" \
	"$(psql_q "SELECT encode(users_digest, 'hex') FROM gradeq_jobs
	WHERE run_id = '$(jq -r .run_id "$TMP/nine.json")'")"
psql_q "SELECT user_id FROM grades_persistentcoursegrade WHERE modified > '$before'
	ORDER BY user_id" >"$TMP/regraded"
assert_eq "only changed learners' grades rewritten" "" "$(comm -13 "$TMP/changed" "$TMP/regraded")"
refcheck nine

log "a second run with no change publishes nothing (the overlap is de-duplicated by snapshot)"
assert_eq "no change" 0 "$(incremental again)"

log "a new publisher process starts from the stored watermark"
change 4
publish "$TMP/dry2.json" --incremental --dry-run
assert_eq "dry run sees the four" 4 "$(jq -r .learners "$TMP/dry2.json")"
assert_eq "the four are published" 4 "$(incremental four)"
refcheck four

log "a writer's transaction in flight during a run is picked up by the next"
victim=$(psql_q "SELECT student_id FROM courseware_studentmodule WHERE grade < max_grade
	ORDER BY student_id, id LIMIT 1")
mkfifo "$TMP/writer.in"
psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$GRADEQ_PG_DSN" <"$TMP/writer.in" >"$TMP/writer.out" 2>&1 &
WRITER_PID=$!
exec 7>"$TMP/writer.in"
printf '%s\n' "BEGIN;" "UPDATE courseware_studentmodule SET grade = max_grade, modified = now()
	WHERE id = (SELECT id FROM courseware_studentmodule WHERE student_id = $victim
	AND grade < max_grade ORDER BY id LIMIT 1);" "SELECT 'stamped ' || pg_backend_pid();" >&7
wait_until 30 "the writer stamped its row" grep -q stamped "$TMP/writer.out"
wpid=$(awk '/stamped/ {print $2}' "$TMP/writer.out")
# older than the fixed overlap: only the oldest transaction's start keeps
# the next watermark before the row's stamp
wait_until 30 "the writer's transaction is older than the overlap" pg_q "SELECT 1 /
	count(*) FROM pg_stat_activity WHERE pid = $wpid
	AND xact_start < clock_timestamp() - interval '6 s'"
assert_eq "uncommitted: not seen" 0 "$(incremental inflight)"
printf '%s\n' "COMMIT;" >&7
exec 7>&-
wait "$WRITER_PID" || die "the writer failed: $(cat "$TMP/writer.out")"
WRITER_PID=
assert_eq "committed after the run: selected by the next" 1 "$(incremental after)"
refcheck inflight

log "a new enrollment is selected"
psql_q "INSERT INTO student_courseenrollment (user_id, course_id, is_active, mode, created)
	VALUES (9999999, '$course', true, 'audit', now())" >/dev/null
assert_eq "new enrollment" 1 "$(incremental enrolled)"
assert_eq "graded" 1 "$(psql_q "SELECT count(*) FROM grades_persistentcoursegrade
	WHERE user_id = 9999999")"

log "a new course version selects every learner"
psql_q "UPDATE courses SET version = version || '-2'" >/dev/null
assert_eq "new version" "$((LEARNERS + 1))" "$(incremental version)"
assert_eq "then nothing" 0 "$(incremental settled)"
refcheck version

log "regrading unchanged learners rewrites no row; missing rows are put back"
psql_q "DELETE FROM grades_persistentsubsectiongrade WHERE id IN (SELECT id
	FROM grades_persistentsubsectiongrade ORDER BY user_id, usage_key LIMIT 3)" >/dev/null
psql_q "DELETE FROM grades_persistentcoursegrade WHERE user_id = (SELECT max(user_id)
	FROM grades_persistentcoursegrade)" >/dev/null
before=$(psql_q "SELECT now()")
publish "$TMP/again.json"
drain
assert_eq "rows written: only the four missing" 4 "$(psql_q "SELECT
	(SELECT count(*) FROM grades_persistentsubsectiongrade WHERE modified > '$before') +
	(SELECT count(*) FROM grades_persistentcoursegrade WHERE modified > '$before')")"
refcheck rewritten

fresh_release_queues
log "ok"
