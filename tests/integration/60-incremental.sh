#!/usr/bin/env bash
# Incremental regrade: after a full backfill, gradeq-publish --incremental
# publishes only learners whose score rows changed after their stored grade,
# who have no stored grade, or whose grade was stored under another course
# version or grading policy; --changed-since T compares with T instead.
# Grade rows deleted by hand are no change of the input: --rescan compares
# every learner again (61-watermark tests the watermark selection). With
# consumers running, --wait returns once the run is over, and a selection
# smaller than a batch is cut into one job per waiting consumer.
#
# Environment: RELEASE (default incr), LEARNERS (default 300).
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RELEASE=${RELEASE:-incr}
LEARNERS=${LEARNERS:-300}
QUEUE=gradeq.grades.$RELEASE
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-300}

need_cmd psql jq curl timeout
ADMIN=$(require_bin gradeq-admin)
PUBLISH=$(require_bin gradeq-publish)
CONSUMER=$(require_bin gradeq-consumer)
cd "$GRADEQ_SRC"
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
TMP=$(mktemp -d)
WARM=()
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
	if ((${#WARM[@]})); then
		kill "${WARM[@]}" 2>/dev/null || true
		wait "${WARM[@]}" 2>/dev/null || true
	fi
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

# publish OUT ARGS...: publish the seeded course; JSON summary to OUT.
publish() {
	local out=$1
	shift
	"$PUBLISH" --release "$RELEASE" --all-courses --batch-size 50 --json --quiet "$@" \
		>"$out" 2>"$TMP/publish.err" || die "gradeq-publish $* failed: $(cat "$TMP/publish.err")"
}

# learners_of ARGS...: learners a dry run would publish with these options.
learners_of() {
	publish "$TMP/dry.json" --dry-run "$@"
	jq -r .learners "$TMP/dry.json"
}

drain() {
	timeout "$DRAIN_TIMEOUT" "$CONSUMER" --release "$RELEASE" --drain >"$TMP/consumer.log" 2>&1 ||
		{ tail -n 20 "$TMP/consumer.log" >&2; die "consumer did not drain"; }
}

fresh_db
fresh_release_queues
"$ADMIN" migrate --with-input-tables >/dev/null 2>&1 || die "migrate failed"
"$ADMIN" seed --courses small --learners "$LEARNERS" >/dev/null 2>&1 || die "seed failed"
course=$(psql_q "SELECT course_id FROM courses")

log "before any grade: every learner is changed"
assert_eq "incremental, nothing graded" "$LEARNERS" "$(learners_of --incremental)"

log "full backfill, then nothing is changed"
publish "$TMP/full.json"
drain
assert_eq "course rows" "$LEARNERS" "$(psql_q "SELECT count(*) FROM grades_persistentcoursegrade")"
assert_eq "incremental after backfill" 0 "$(learners_of --incremental)"
assert_eq "changed since the future" 0 "$(learners_of --changed-since '2999-01-01 00:00Z')"
assert_eq "changed since the past" \
	"$(psql_q "SELECT count(DISTINCT student_id) FROM courseware_studentmodule")" \
	"$(learners_of --changed-since '1970-01-01 00:00Z')"

log "seven learners' scores change: only they are published and regraded"
psql_q "UPDATE courseware_studentmodule SET grade = max_grade, modified = now()
	WHERE student_id IN (SELECT DISTINCT student_id FROM courseware_studentmodule
	WHERE grade IS DISTINCT FROM max_grade ORDER BY student_id LIMIT 7)" >/dev/null
before=$(psql_q "SELECT max(modified) FROM grades_persistentcoursegrade")
publish "$TMP/incr.json" --incremental
assert_eq "incremental learners" 7 "$(jq -r .learners "$TMP/incr.json")"
drain
assert_eq "run complete" complete \
	"$(psql_q "SELECT state FROM gradeq_runs WHERE run_id = '$(jq -r .run_id "$TMP/incr.json")'")"
assert_ge "grade rows rewritten" 1 \
	"$(psql_q "SELECT count(*) FROM grades_persistentsubsectiongrade WHERE modified > '$before'")"
assert_eq "incremental after the regrade" 0 "$(learners_of --incremental)"

log "missing grade rows are published"
psql_q "DELETE FROM grades_persistentcoursegrade WHERE user_id IN (SELECT user_id
	FROM grades_persistentcoursegrade ORDER BY user_id LIMIT 3)" >/dev/null
assert_eq "incremental --rescan, three rows gone" 3 "$(learners_of --incremental --rescan)"
assert_eq "active only is honoured" \
	"$(psql_q "SELECT count(*) FROM student_courseenrollment e WHERE e.is_active AND NOT EXISTS
		(SELECT 1 FROM grades_persistentcoursegrade g WHERE g.user_id = e.user_id
		AND g.course_id = e.course_id)")" \
	"$(learners_of --incremental --rescan --active-only)"
publish "$TMP/incr2.json" --incremental --rescan
drain

log "consumers waiting: --wait returns once the run is over, a small selection is shared"
for i in 1 2; do
	"$CONSUMER" --release "$RELEASE" >"$TMP/warm$i.log" 2>&1 &
	WARM+=($!)
done
for i in 1 2; do
	wait_until 60 "consumer $i consuming" grep -q 'event=consuming' "$TMP/warm$i.log"
done
psql_q "UPDATE courseware_studentmodule SET grade = max_grade / 2, modified = now()
	WHERE student_id IN (SELECT DISTINCT student_id FROM courseware_studentmodule
	ORDER BY student_id DESC LIMIT 60)" >/dev/null
"$PUBLISH" --release "$RELEASE" --all-courses --batch-size 100 --json --quiet --incremental \
	--wait >"$TMP/wait.json" 2>"$TMP/publish.err" || die "publish --wait failed: $(cat "$TMP/publish.err")"
assert_eq "--wait: the run's state" complete "$(jq -r .state "$TMP/wait.json")"
assert_eq "--wait: the database agrees" complete \
	"$(psql_q "SELECT state FROM gradeq_runs WHERE run_id = '$(jq -r .run_id "$TMP/wait.json")'")"
assert_eq "60 learners published" 60 "$(jq -r .learners "$TMP/wait.json")"
assert_eq "60 learners under a batch of 100, 2 consumers waiting: 2 jobs" 2 "$(jq -r .jobs "$TMP/wait.json")"
assert_eq "each job graded 30" "30 30" "$(psql_q "SELECT string_agg(learners::text, ' ' ORDER BY seq)
	FROM gradeq_jobs WHERE run_id = '$(jq -r .run_id "$TMP/wait.json")'")"
assert_eq "incremental after --wait" 0 "$(learners_of --incremental)"
kill "${WARM[@]}"
wait "${WARM[@]}" || true
WARM=()

log "a policy change without a version change: every learner (hash differs)"
psql_q "UPDATE courses SET grading_policy = jsonb_set(grading_policy, '{GRADE_CUTOFFS}',
	'{\"Pass\": 0.41}') WHERE course_id = '$course'" >/dev/null
assert_eq "incremental after a policy change" "$LEARNERS" "$(learners_of --incremental)"

log "a new course version: every learner"
psql_q "UPDATE courses SET version = version || '-2'" >/dev/null
assert_eq "incremental after a version change" "$LEARNERS" "$(learners_of --incremental)"

fresh_release_queues
log "ok"
