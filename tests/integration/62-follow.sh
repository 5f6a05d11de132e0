#!/usr/bin/env bash
# gradeq-publish --follow: the incremental regrade as a daemon, while a load
# generator changes learners' scores at a steady rate. Iterations run one
# after the other and are recorded (gradeq_follow_iterations: data window,
# time, learners) and logged (one logfmt line each); status shows them;
# once the changes stop, the grades equal the reference; a restarted
# --follow starts from the stored watermark (only what changed meanwhile is
# published); SIGTERM while an iteration waits for its jobs (no consumer
# running) lets it finish, then exits 0.
#
# Environment: RELEASE (default follow), LEARNERS (default 300).
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RELEASE=${RELEASE:-follow}
LEARNERS=${LEARNERS:-300}
QUEUE=gradeq.grades.$RELEASE
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-300}
REFGRADE=$GRADEQ_SRC/tests/integration/refgrade.py

need_cmd psql jq curl timeout python3
ADMIN=$(require_bin gradeq-admin)
PUBLISH=$(require_bin gradeq-publish)
CONSUMER=$(require_bin gradeq-consumer)
cd "$GRADEQ_SRC"
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
TMP=$(mktemp -d)
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
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

refcheck() {
	python3 "$REFGRADE" check --history --limit-errors 20 >"$TMP/ref.out" 2>&1 ||
		{ cat "$TMP/ref.out" >&2; die "$1: grade rows differ from the reference"; }
	log "$1: $(cat "$TMP/ref.out")"
}

iterations() { psql_q "SELECT count(*) FROM gradeq_follow_iterations WHERE state <> 'running'"; }
# iterations_over N: more than N iterations are over.
iterations_over() { (($(iterations) > $1)); }
# busy_iterations_over N: more than N iterations published something.
busy_iterations_over() {
	(($(psql_q "SELECT count(*) FROM gradeq_follow_iterations WHERE learners > 0
		AND state = 'complete'") > $1))
}

start_follow() {
	"$PUBLISH" --release "$RELEASE" --all-courses --batch-size 50 --follow --every 1 \
		2>>"$TMP/follow.log" &
	FOLLOW_PID=$!
	PIDS+=("$FOLLOW_PID")
}

# stop_follow: SIGTERM; it must exit 0 with no iteration left running.
stop_follow() {
	kill -TERM "$FOLLOW_PID"
	local rc=0
	wait "$FOLLOW_PID" || rc=$?
	((rc == 0)) || { tail -n 5 "$TMP/follow.log" >&2; die "--follow exited $rc on SIGTERM"; }
	assert_eq "no iteration left running" 0 "$(psql_q "SELECT count(*)
		FROM gradeq_follow_iterations WHERE state = 'running'")"
}

# A steady change rate: two learners every 0.2 s get a score row raised
# (the load generator's pace; the test waits on conditions, not on it).
load_generator() {
	while :; do
		pg_q "WITH pick AS (SELECT DISTINCT ON (student_id) id FROM courseware_studentmodule
			WHERE grade < max_grade AND student_id IN (SELECT user_id
			FROM student_courseenrollment ORDER BY random() LIMIT 6)
			ORDER BY student_id, id LIMIT 2)
			UPDATE courseware_studentmodule m SET grade = m.max_grade, modified = now()
			FROM pick WHERE m.id = pick.id" >/dev/null || exit 1
		sleep 0.2
	done
}

fresh_db
fresh_release_queues
"$ADMIN" migrate --with-input-tables >/dev/null 2>&1 || die "migrate failed"
"$ADMIN" seed --courses small --learners "$LEARNERS" >/dev/null 2>&1 || die "seed failed"

log "backfill"
"$PUBLISH" --release "$RELEASE" --all-courses --batch-size 50 --quiet >/dev/null 2>"$TMP/pub.err" ||
	die "backfill publish failed: $(cat "$TMP/pub.err")"
timeout "$DRAIN_TIMEOUT" "$CONSUMER" --release "$RELEASE" --drain >"$TMP/drain.log" 2>&1 ||
	die "backfill did not drain"

log "two consumers, --follow, and a steady change rate"
CONSUMERS=()
for i in 1 2; do
	"$CONSUMER" --release "$RELEASE" >"$TMP/consumer$i.log" 2>&1 &
	CONSUMERS+=($!)
	PIDS+=($!)
done
start_follow
load_generator &
LOAD_PID=$!
PIDS+=("$LOAD_PID")
wait_until 120 "three iterations that published changes" busy_iterations_over 2
kill "$LOAD_PID"
wait "$LOAD_PID" 2>/dev/null || true
last_change=$(psql_q "SELECT max(modified) FROM courseware_studentmodule")
log "changes stopped at $last_change: waiting for an iteration that read past them"
read_past() {
	(($(psql_q "SELECT count(*) FROM gradeq_follow_iterations WHERE state = 'complete'
		AND window_to > '$last_change'::timestamptz + interval '1 s'") > 0))
}
wait_until 120 "an iteration that read past the last change" read_past
stop_follow

log "iterations: recorded, logged once each, one after the other"
n=$(iterations)
assert_ge "iterations" 4 "$n"
assert_eq "one log line per iteration" "$n" "$(grep -c 'event=follow_iteration ' "$TMP/follow.log")"
assert_eq "iterations never overlap" 0 "$(psql_q "SELECT count(*) FROM gradeq_follow_iterations a
	JOIN gradeq_follow_iterations b ON b.id = a.id + 1 WHERE b.started_at < a.finished_at")"
assert_eq "every busy iteration's run complete" 0 "$(psql_q "SELECT count(*)
	FROM gradeq_follow_iterations i JOIN gradeq_runs r USING (run_id) WHERE r.state <> 'complete'")"
assert_eq "windows follow each other" 0 "$(psql_q "SELECT count(*) FROM gradeq_follow_iterations a
	JOIN gradeq_follow_iterations b ON b.id = a.id + 1 WHERE b.window_from > a.window_to")"
refcheck "after the changes"

log "status shows the iterations"
"$ADMIN" status >"$TMP/status.txt" 2>&1 || die "status failed"
grep -q '^FOLLOW' "$TMP/status.txt" || die "no FOLLOW table in status: $(cat "$TMP/status.txt")"
"$ADMIN" --json status >"$TMP/status.json" || die "status --json failed"
assert_ge "status --json follow" 1 "$(jq '.follow | length' "$TMP/status.json")"
python3 "$GRADEQ_SRC/tests/integration/jsonshape.py" "$GRADEQ_SRC/docs/status.schema.json" \
	<"$TMP/status.json" || die "status --json does not match docs/status.schema.json"

log "the iterations learned their run's end from its event, not by polling"
assert_eq "no polling" 0 "$(grep -c 'event=run_wait mode=poll' "$TMP/follow.log" || true)"

log "plan --iterations fits the loop's own O and P over the recorded iterations"
"$ADMIN" --json plan --arrival-rate 10 --iterations "$RELEASE" >"$TMP/plan.json" 2>"$TMP/plan.err" ||
	die "plan --iterations failed: $(cat "$TMP/plan.err")"
assert_eq "plan: the loop's release" "$RELEASE" "$(jq -r .loop.release "$TMP/plan.json")"
assert_ge "plan: the iterations that published" 3 "$(jq -r .loop.iterations "$TMP/plan.json")"
"$ADMIN" plan --arrival-rate 10 --iterations "$RELEASE" >"$TMP/plan.txt" 2>&1 ||
	die "plan --iterations failed: $(cat "$TMP/plan.txt")"
grep -q "^loop ${RELEASE}[ :]" "$TMP/plan.txt" || die "plan --iterations: no loop line: $(cat "$TMP/plan.txt")"
assert_fails "--iterations without --arrival-rate" "$ADMIN" plan --iterations "$RELEASE"

log "restart with no consumer: the watermark is where the last iteration left it"
kill "${CONSUMERS[@]}"
wait "${CONSUMERS[@]}" || true
mark=$(psql_q "SELECT watermark FROM gradeq_watermarks WHERE release = '$RELEASE'")
before=$(psql_q "SELECT coalesce(max(id), 0) FROM gradeq_follow_iterations")
psql_q "WITH pick AS (SELECT DISTINCT ON (student_id) id FROM courseware_studentmodule
	WHERE grade < max_grade ORDER BY student_id, id LIMIT 5)
	UPDATE courseware_studentmodule m SET grade = m.max_grade, modified = now()
	FROM pick WHERE m.id = pick.id" >/dev/null
start_follow
waiting_for_jobs() {
	(($(psql_q "SELECT count(*) FROM gradeq_follow_iterations WHERE id > $before
		AND state = 'running' AND run_id IS NULL AND EXISTS (SELECT 1 FROM gradeq_runs r
		WHERE r.state = 'running' AND r.created_at > (SELECT started_at
		FROM gradeq_follow_iterations WHERE id = $before))") > 0))
}
wait_until 120 "an iteration waiting for its run's jobs" waiting_for_jobs

log "SIGTERM while the iteration waits for its jobs: it finishes it first"
kill -TERM "$FOLLOW_PID"
kill -0 "$FOLLOW_PID" 2>/dev/null || die "--follow exited with its iteration's jobs not done"
assert_eq "the iteration is still running" running "$(psql_q "SELECT state
	FROM gradeq_follow_iterations WHERE id > $before ORDER BY id LIMIT 1")"
"$CONSUMER" --release "$RELEASE" >"$TMP/consumer3.log" 2>&1 &
CONSUMERS=($!)
PIDS+=($!)
rc=0
wait "$FOLLOW_PID" || rc=$?
assert_eq "--follow exit status after SIGTERM" 0 "$rc"
first=$(psql_q "SELECT id FROM gradeq_follow_iterations WHERE id > $before ORDER BY id LIMIT 1")
assert_eq "that iteration complete" complete \
	"$(psql_q "SELECT state FROM gradeq_follow_iterations WHERE id = $first")"
assert_eq "it read from the stored watermark" "$mark" \
	"$(psql_q "SELECT window_from FROM gradeq_follow_iterations WHERE id = $first")"
assert_eq "and published the five changed meanwhile" 5 \
	"$(psql_q "SELECT learners FROM gradeq_follow_iterations WHERE id = $first")"
assert_eq "no later iteration" 0 "$(psql_q "SELECT count(*) FROM gradeq_follow_iterations
	WHERE id > $first")"
refcheck "after the restart"

kill "${CONSUMERS[@]}"
wait "${CONSUMERS[@]}" || true
fresh_release_queues
log "ok"
