#!/usr/bin/env bash
# End to end: seed three courses, publish every enrollment, drain the queue
# with two consumers in parallel, and check every grade row against the
# reference implementation of the grading rules (refgrade.py). Then grade
# everything again: nothing may change and nothing may be duplicated. Last,
# the producer must refuse an unknown course without leaving a trace.
#
# Environment: RELEASE (default e2e) names the release, so that runs by hand
# do not touch the queues of anyone else's release; LEARNERS (default 500)
# learners per course.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RELEASE=${RELEASE:-e2e}
LEARNERS=${LEARNERS:-500}
BATCH=100
QUEUE=gradeq.grades.$RELEASE
REFGRADE=$GRADEQ_SRC/tests/integration/refgrade.py
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-300}

need_cmd psql jq curl python3 timeout md5sum
ADMIN=$(require_bin gradeq-admin)
PUBLISH=$(require_bin gradeq-publish)
CONSUMER=$(require_bin gradeq-consumer)
# The programs read conf/gradeq.conf relative to the working directory.
cd "$GRADEQ_SRC"
# No NOTICEs from dropping the schema and the like.
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"

TMP=$(mktemp -d)
CONSUMER_PIDS=()
cleanup() {
	local pid
	for pid in "${CONSUMER_PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${CONSUMER_PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if [[ -n ${KEEP_TMP:-} ]]; then
		log "logs kept in $TMP"
	else
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT

# queue_messages_mgmt: the 'messages' field of the work queue (-1 when absent).
queue_messages_mgmt() {
	local out
	out=$(mgmt_curl GET "api/queues/$VH/$(urlenc "$QUEUE")" 2>/dev/null) || { echo -1; return 0; }
	jq -r '.messages // 0' <<<"$out"
}

# queue_messages_ctl: the same from rabbitmqctl list_queues name messages.
queue_messages_ctl() {
	rabbitmq_ctl list_queues -p "$TEST_VHOST" -q --no-table-headers name messages |
		awk -v q="$QUEUE" 'BEGIN { d = -1 } $1 == q { d = $2 } END { print d }'
}

# assert_queue_empty WHAT: both statistics report 0 messages. They lag by
# seconds on quorum queues (more on a loaded machine), so poll before
# concluding; the deadline is a safety net (see wait_until).
assert_queue_empty() {
	local what=$1 deadline=$((SECONDS + ${GRADEQ_TEST_PATIENCE:-180})) m c
	while :; do
		m=$(queue_messages_mgmt)
		c=$(queue_messages_ctl)
		[[ $m == 0 && $c == 0 ]] && return 0
		((SECONDS < deadline)) || die "$what: $QUEUE holds messages after ${GRADEQ_TEST_PATIENCE:-180} s (management API: $m, rabbitmqctl: $c)"
		sleep 1
	done
}

# publish_all OUT: publish every course; the JSON summary goes to OUT.
publish_all() {
	"$PUBLISH" --release "$RELEASE" --all-courses --batch-size "$BATCH" --json --quiet \
		>"$1" 2>"$TMP/publish.err" ||
		die "gradeq-publish failed: $(cat "$TMP/publish.err")"
	local jobs learners
	jobs=$(jq -r .jobs "$1")
	learners=$(jq -r .learners "$1")
	assert_eq "jobs published" "$expect_jobs" "$jobs"
	assert_eq "learners published" "$expect_learners" "$learners"
}

# drain_two: two consumers in parallel until the release's queues are empty;
# both must exit 0 within DRAIN_TIMEOUT seconds.
drain_two() {
	local tag=$1 i rc
	CONSUMER_PIDS=()
	for i in 1 2; do
		timeout "$DRAIN_TIMEOUT" "$CONSUMER" --release "$RELEASE" --drain \
			>"$TMP/consumer-$tag-$i.log" 2>&1 &
		CONSUMER_PIDS+=("$!")
	done
	for i in 1 2; do
		rc=0
		wait "${CONSUMER_PIDS[i - 1]}" || rc=$?
		if ((rc != 0)); then
			tail -n 20 "$TMP/consumer-$tag-$i.log" >&2
			((rc == 124)) && die "consumer $i ($tag) did not drain within ${DRAIN_TIMEOUT}s"
			die "consumer $i ($tag) exited $rc"
		fi
	done
	CONSUMER_PIDS=()
}

# assert_run_complete RUN_ID
assert_run_complete() {
	local run=$1 state jobs
	state=$(psql_q "SELECT state FROM gradeq_runs WHERE run_id = '$run'")
	assert_eq "state of run $run" complete "$state"
	jobs=$(psql_q "SELECT coalesce(string_agg(state || '=' || n, ',' ORDER BY state), '')
		FROM (SELECT state, count(*) AS n FROM gradeq_jobs WHERE run_id = '$run' GROUP BY state) s")
	assert_eq "jobs of run $run by state" "complete=$expect_jobs" "$jobs"
}

# assert_row_counts: one course row per enrollment, one subsection row per
# enrollment and sequential.
assert_row_counts() {
	local what=$1 n
	n=$(psql_q "SELECT count(*) FROM grades_persistentcoursegrade")
	assert_eq "$what: course rows" "$expect_course_rows" "$n"
	n=$(psql_q "SELECT count(*) FROM grades_persistentsubsectiongrade")
	assert_eq "$what: subsection rows" "$expect_sub_rows" "$n"
	n=$(psql_q "SELECT count(*) FROM (SELECT course_id, user_id FROM grades_persistentcoursegrade
		GROUP BY 1, 2 HAVING count(*) > 1) d")
	assert_eq "$what: duplicated course rows" 0 "$n"
}

# grades_digest: md5 of every output row in key order, without the
# created/modified columns (which a regrade may touch).
grades_digest() {
	{
		psql_q "COPY (SELECT id, user_id, course_id, usage_key, course_version,
			earned_all, possible_all, earned_graded, possible_graded, first_attempted
			FROM grades_persistentsubsectiongrade ORDER BY course_id, user_id, usage_key)
			TO STDOUT"
		psql_q "COPY (SELECT id, user_id, course_id, course_version, grading_policy_hash,
			percent_grade, letter_grade, passed_timestamp, course_edited_timestamp
			FROM grades_persistentcoursegrade ORDER BY course_id, user_id) TO STDOUT"
	} | md5sum | cut -d' ' -f1
}

# --- the reference itself -----------------------------------------------------

python3 "$REFGRADE" selftest >&2 || die "refgrade.py selftest failed: the reference is wrong"

# --- a fresh start --------------------------------------------------------------

log "fresh database and queues for release $RELEASE"
fresh_db
clear_release_queues "$RELEASE"
"$ADMIN" migrate --with-input-tables >/dev/null 2>"$TMP/admin.err" ||
	die "gradeq-admin migrate failed: $(cat "$TMP/admin.err")"
"$ADMIN" seed --courses small,medium,large --learners "$LEARNERS" --seed 11 >/dev/null 2>"$TMP/admin.err" ||
	die "gradeq-admin seed failed: $(cat "$TMP/admin.err")"

expect_learners=$((3 * LEARNERS))
expect_jobs=$(psql_q "SELECT sum((n + $BATCH - 1) / $BATCH) FROM
	(SELECT course_id, count(*) AS n FROM student_courseenrollment GROUP BY 1) e")
n=$(psql_q "SELECT count(*) FROM student_courseenrollment")
assert_eq "enrollments seeded" "$expect_learners" "$n"
if ((LEARNERS == 500)); then
	assert_eq "jobs expected" 15 "$expect_jobs"
fi
expect_course_rows=$expect_learners
expect_sub_rows=$(psql_q "SELECT sum(e.n * s.n) FROM
	(SELECT course_id, count(*) AS n FROM student_courseenrollment GROUP BY 1) e
	JOIN (SELECT course_id, count(*) AS n FROM course_blocks WHERE block_type = 'sequential'
	      GROUP BY 1) s USING (course_id)")

# --- first run ----------------------------------------------------------------

log "publish and drain with two consumers"
publish_all "$TMP/publish1.json"
run1=$(jq -r .run_id "$TMP/publish1.json")
assert_match "run id" '^[0-9a-f-]{36}$' "$run1"
drain_two first
assert_run_complete "$run1"
assert_row_counts "first run"
assert_queue_empty "after the first run"

# Sanity: the seed gives the rules something to do (otherwise a grader that
# writes zeros everywhere would pass).
spread=$(psql_q "SELECT count(DISTINCT percent_grade) > 10 AND bool_or(passed_timestamp IS NOT NULL)
	AND bool_or(passed_timestamp IS NULL) FROM grades_persistentcoursegrade")
assert_eq "grades vary and some learners pass" t "$spread"

log "checking every row against the reference"
python3 "$REFGRADE" check --fresh --limit-errors 20 >"$TMP/ref1.out" 2>&1 ||
	{ cat "$TMP/ref1.out" >&2; die "grade rows differ from the reference (first run)"; }
cat "$TMP/ref1.out" >&2

# --- second run: idempotent -----------------------------------------------------

digest1=$(grades_digest)
log "grading everything again"
publish_all "$TMP/publish2.json"
run2=$(jq -r .run_id "$TMP/publish2.json")
assert_ne "second run id" "$run1" "$run2"
drain_two second
assert_run_complete "$run2"
assert_row_counts "second run"
assert_queue_empty "after the second run"
digest2=$(grades_digest)
assert_eq "grade rows after grading twice (md5 without created/modified)" "$digest1" "$digest2"
python3 "$REFGRADE" check --fresh --limit-errors 20 >"$TMP/ref2.out" 2>&1 ||
	{ cat "$TMP/ref2.out" >&2; die "grade rows differ from the reference (second run)"; }

# --- an unknown course is refused -------------------------------------------------

runs_before=$(psql_q "SELECT count(*) FROM gradeq_runs")
rc=0
"$PUBLISH" --release "$RELEASE" --course nope >"$TMP/nope.out" 2>"$TMP/nope.err" || rc=$?
assert_ne "exit status of gradeq-publish --course nope" 0 "$rc"
lines=$(wc -l <"$TMP/nope.err")
assert_eq "lines on stderr of gradeq-publish --course nope ($(head -c 300 "$TMP/nope.err"))" 1 "$lines"
assert_match "stderr of gradeq-publish --course nope" 'nope' "$(cat "$TMP/nope.err")"
runs_after=$(psql_q "SELECT count(*) FROM gradeq_runs")
assert_eq "runs recorded after refusing an unknown course" "$runs_before" "$runs_after"
# Nothing published: the queue stays empty (give lagging statistics time to
# show a message that should not be there).
sleep 5
assert_queue_empty "after refusing an unknown course"

log "ok: $expect_learners learners, $expect_sub_rows subsection rows, graded twice, identical"
