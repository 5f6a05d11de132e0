# shellcheck shell=bash
# Its variables (SMALL, EXIT_STATUS, ...) are for the tests that source it.
# shellcheck disable=SC2034
# Helpers of the failure tests (3N-*.sh), on top of lib.sh. Each test works
# in a database and a release of its own, so that it neither sees nor
# disturbs what other tests or people do on the same servers: the database
# is dropped and created again when the test starts, the release's queues
# deleted (and only those).

# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_cmd jq curl psql base64 python3

ADMIN=$(require_bin gradeq-admin)
PUBLISH=$(require_bin gradeq-publish)
CONSUMER=$(require_bin gradeq-consumer)
SMALL=course-v1:gradeq+small1+2026
MEDIUM=course-v1:gradeq+medium1+2026
LARGE=course-v1:gradeq+large1+2026

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gradeq-$TEST_NAME.XXXXXX")
CONSUMER_PIDS=()
KEEP_DB=1

_fail_cleanup() {
	local rc=$? pid
	for pid in "${CONSUMER_PIDS[@]}"; do
		kill -KILL "$pid" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	[[ -n ${LOCK_PID:-} ]] && kill "$LOCK_PID" 2>/dev/null
	if ((rc != 0)); then
		local f
		for f in "$WORK"/*.log; do
			[[ -e $f ]] || continue
			printf '==== %s (last 30 lines)\n' "${f##*/}" >&2
			tail -n 30 "$f" >&2
		done
	fi
	if ((rc == 0 && !KEEP_DB)); then
		psql -X -q -d "$ADMIN_DSN" -c "DROP DATABASE IF EXISTS $TEST_DB WITH (FORCE)" >/dev/null 2>&1 || true
	fi
	if [[ -n ${GRADEQ_TEST_KEEP_WORK:-} ]]; then echo "work kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap _fail_cleanup EXIT

# dsn_with_db DSN DB: the libpq conninfo or URI DSN naming database DB.
dsn_with_db() {
	local dsn=$1 db=$2
	if [[ $dsn == postgres://* || $dsn == postgresql://* ]]; then
		local base=${dsn%%\?*} query=
		[[ $dsn == *\?* ]] && query="?${dsn#*\?}"
		local rest=${base#*://}
		if [[ $rest == */* ]]; then
			base=${base%/*}
		fi
		printf '%s/%s%s\n' "$base" "$db" "$query"
	elif [[ $dsn =~ (^|[[:space:]])dbname=[^[:space:]]* ]]; then
		printf '%s\n' "$(sed -E "s/(^|[[:space:]])dbname=[^[:space:]]*/\\1dbname=$db/" <<<"$dsn")"
	else
		printf '%s dbname=%s\n' "$dsn" "$db"
	fi
}

# own_db NAME: a new, empty database NAME with gradeq's schema and the input
# tables; GRADEQ_PG_DSN names it from now on. Dropped again when the test
# passes.
own_db() {
	TEST_DB=$1
	ADMIN_DSN=$GRADEQ_PG_DSN
	# an autovacuum worker (not ours to terminate) may hold the old one
	# for a moment
	local i
	for ((i = 0; ; i++)); do
		psql -X -q -v ON_ERROR_STOP=1 -d "$ADMIN_DSN" -c "DROP DATABASE IF EXISTS $TEST_DB WITH (FORCE)" \
			>/dev/null 2>"$WORK/dropdb.err" && break
		((i < 30)) || die "cannot drop database $TEST_DB: $(cat "$WORK/dropdb.err")"
		sleep 1
	done
	psql -X -q -v ON_ERROR_STOP=1 -d "$ADMIN_DSN" -c "CREATE DATABASE $TEST_DB" >/dev/null ||
		die "cannot create database $TEST_DB"
	export GRADEQ_PG_DSN
	GRADEQ_PG_DSN=$(dsn_with_db "$ADMIN_DSN" "$TEST_DB")
	KEEP_DB=0
	"$ADMIN" migrate --with-input-tables >/dev/null 2>"$WORK/migrate.log" || die "migrate failed"
}

# seed CLASSES LEARNERS: demo courses (small1, medium1, large1 ...).
seed() {
	"$ADMIN" seed --courses "$1" --learners "$2" >/dev/null 2>"$WORK/seed.log" || die "seed failed"
}

# fresh_release R: delete the release's queues (work, retry tiers, dead).
fresh_release() {
	RELEASE=$1
	clear_release_queues "$RELEASE"
}

work_queue() { printf 'gradeq.grades.%s\n' "$RELEASE"; }
dead_queue() { printf 'gradeq.grades.%s.dead\n' "$RELEASE"; }

# config FILE KEY=VALUE...: a configuration file with these settings.
config() {
	local f=$1 kv
	shift
	: >"$f"
	for kv in "$@"; do
		printf '%s = %s;\n' "${kv%%=*}" "${kv#*=}" >>"$f"
	done
}

# free_port: a TCP port of the loopback interface that is free now, for a
# server the test starts.
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# declare_topology [ARGS]: let a consumer declare the release's queues (it
# declares, then drains at once since nothing was published).
declare_topology() {
	"$CONSUMER" --release "$RELEASE" --drain "$@" >"$WORK/declare.log" 2>&1 ||
		die "declaring the topology failed"
}

# publish_jobs ARGS...: gradeq-publish to the test's release; prints the run id.
publish_jobs() {
	local out
	out=$("$PUBLISH" --release "$RELEASE" -q --json "$@" 2>>"$WORK/publish.log") ||
		die "gradeq-publish $* failed"
	jq -r .run_id <<<"$out"
}

# publish_raw BODY_FILE MESSAGE_ID [HEADERS_JSON]: publish a file's bytes as
# they are to the release's routing key through the management API.
publish_raw() {
	local body
	body=$(jq -n --arg key "grades.$RELEASE" --arg id "$2" --argjson h "${3:-"{}"}" \
		--arg p "$(base64 -w0 <"$1")" \
		'{routing_key: $key, payload: $p, payload_encoding: "base64",
		  properties: {message_id: $id, delivery_mode: 2, content_type: "application/msgpack",
		               type: "grades.compute", headers: $h}}')
	local out
	out=$(mgmt_curl POST "api/exchanges/$VH/gradeq/publish" "$body") || die "publishing $2 failed"
	assert_eq "routed $2" true "$(jq -r .routed <<<"$out")"
}

# peek QUEUE [N]: up to N messages (default 500) of QUEUE as a JSON array,
# left in the queue (fetched and requeued).
peek() {
	mgmt_curl POST "api/queues/$VH/$(urlenc "$1")/get" \
		"{\"count\":${2:-500},\"ackmode\":\"ack_requeue_true\",\"encoding\":\"base64\"}" ||
		die "fetching messages of $1 failed"
}

# depth_is QUEUE N: the management API reports N messages (ready + unacked).
depth_is() {
	[[ $(queue_depth "$1") == "$2" ]]
}

# ready_unacked QUEUE: "ready unacked" from rabbitmqctl.
ready_unacked() {
	rabbitmq_ctl list_queues -p "$TEST_VHOST" -q --no-table-headers name messages_ready messages_unacknowledged |
		awk -v q="$1" '$1 == q { print $2, $3 }'
}

# start_consumer LOG [ARGS...]: a consumer of the release in the background;
# its pid in CONSUMER_PID (killed when the test ends).
start_consumer() {
	local log=$1
	shift
	"$CONSUMER" --release "$RELEASE" "$@" >>"$WORK/$log" 2>&1 &
	CONSUMER_PID=$!
	CONSUMER_PIDS+=("$CONSUMER_PID")
}

# wait_exit PID TIMEOUT: wait for PID (a child of this shell) to exit; its
# exit status in EXIT_STATUS.
wait_exit() {
	local pid=$1 deadline=$((SECONDS + $2))
	while kill -0 "$pid" 2>/dev/null; do
		((SECONDS < deadline)) || die "process $pid did not exit within $2 s"
		sleep 0.1
	done
	EXIT_STATUS=0
	wait "$pid" || EXIT_STATUS=$?
}

# log_has LOG REGEX: the consumer log matches.
log_has() {
	grep -Eq -- "$2" "$WORK/$1"
}

# job_states RUN: "state count" lines of the run's jobs.
job_states() {
	psql_q "SELECT state || ' ' || count(*) FROM gradeq_jobs WHERE run_id = '$1' GROUP BY state ORDER BY state"
}

# run_complete RUN: every job of the run is complete.
run_complete() {
	[[ $(psql_q "SELECT count(*) FILTER (WHERE state <> 'complete') || ' ' || count(*)
		FROM gradeq_jobs WHERE run_id = '$1'") =~ ^0\ [1-9] ]]
}

# check_exactly_once RUN: every job of the run complete, completed once (one
# 'complete' event each), the run's counters equal to its totals.
check_exactly_once() {
	local run=$1
	assert_eq "jobs of run $run not complete" 0 \
		"$(psql_q "SELECT count(*) FROM gradeq_jobs WHERE run_id = '$run' AND state <> 'complete'")"
	assert_eq "jobs completed more or less than once" 0 "$(psql_q "
		SELECT count(*) FROM gradeq_jobs j WHERE j.run_id = '$run' AND (SELECT count(*)
		 FROM gradeq_job_events e WHERE e.job_id = j.job_id AND e.to_state = 'complete') <> 1")"
	assert_eq "run counters (jobs, learners) against totals" \
		"$(psql_q "SELECT jobs_total || ' ' || learners_total || ' complete' FROM gradeq_runs WHERE run_id = '$run'")" \
		"$(psql_q "SELECT jobs_complete || ' ' || learners_complete || ' ' || state FROM gradeq_runs WHERE run_id = '$run'")"
}

# snapshot_grades TABLE COURSE: copy the course's grades into TABLE (in the
# test database) to compare them with a later grading.
snapshot_grades() {
	psql_q "DROP TABLE IF EXISTS $1_c, $1_s;
		CREATE TABLE $1_c AS SELECT user_id, course_version, grading_policy_hash, percent_grade,
		 letter_grade, passed_timestamp IS NOT NULL AS passed FROM grades_persistentcoursegrade
		 WHERE course_id = '$2';
		CREATE TABLE $1_s AS SELECT user_id, usage_key, course_version, earned_all, possible_all,
		 earned_graded, possible_graded, first_attempted FROM grades_persistentsubsectiongrade
		 WHERE course_id = '$2'" >/dev/null
}

# same_grades A B: two snapshots hold the same rows (both ways).
same_grades() {
	local d
	d=$(psql_q "SELECT (SELECT count(*) FROM ((TABLE $1_c EXCEPT TABLE $2_c) UNION ALL
		(TABLE $2_c EXCEPT TABLE $1_c)) x) + (SELECT count(*) FROM ((TABLE $1_s EXCEPT TABLE $2_s)
		UNION ALL (TABLE $2_s EXCEPT TABLE $1_s)) y)")
	assert_eq "grade rows differing between $1 and $2" 0 "$d"
}

# grade_counts COURSE: "course_rows subsection_rows enrollments sequentials".
grade_counts() {
	psql_q "SELECT (SELECT count(*) FROM grades_persistentcoursegrade WHERE course_id = '$1') || ' ' ||
		(SELECT count(*) FROM grades_persistentsubsectiongrade WHERE course_id = '$1') || ' ' ||
		(SELECT count(*) FROM student_courseenrollment WHERE course_id = '$1') || ' ' ||
		(SELECT count(*) FROM course_blocks WHERE course_id = '$1' AND block_type = 'sequential')"
}

# assert_fully_graded COURSE: one course row per enrollment, one subsection
# row per enrollment and sequential.
assert_fully_graded() {
	local c s e q
	read -r c s e q <<<"$(grade_counts "$1")"
	assert_ge "enrollments of $1" 1 "$e"
	assert_eq "course grade rows of $1" "$e" "$c"
	assert_eq "subsection grade rows of $1" "$((e * q))" "$s"
}

# regrade_reference COURSE SNAP: grade COURSE again from scratch, undisturbed
# (grade rows deleted, a new run, one consumer that drains), into snapshot SNAP.
regrade_reference() {
	psql_q "DELETE FROM grades_persistentcoursegrade WHERE course_id = '$1';
		DELETE FROM grades_persistentsubsectiongrade WHERE course_id = '$1'" >/dev/null
	publish_jobs --course "$1" --batch-size 500 >/dev/null
	"$CONSUMER" --release "$RELEASE" --drain >>"$WORK/reference.log" 2>&1 ||
		die "reference consumer failed"
	snapshot_grades "$2" "$1"
}

# log_ms LOG EVENT: the timestamp (ms since the epoch) of EVENT's first line
# in LOG after line FROM (default 0).
log_ms() {
	local line
	line=$(tail -n +"$((${3:-0} + 1))" "$WORK/$1" | grep -m1 -E "event=$2( |$)" || true)
	[[ -n $line ]] || return 1
	local ts=${line#ts=}
	ts=${ts%% *}
	python3 -c 'import sys, datetime
t = datetime.datetime.strptime(sys.argv[1], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
print(int(t.timestamp() * 1000))' "$ts"
}

# runs_complete RUN...: every job of each run is complete.
runs_complete() {
	local r
	for r in "$@"; do
		run_complete "$r" || return 1
	done
}

# refcheck ARGS...: refgrade.py (the rules' second implementation) finds
# every stored grade of the courses right; a no-op where it does not exist.
refcheck() {
	local ref=$GRADEQ_SRC/tests/integration/refgrade.py
	[[ -f $ref ]] || { log "refgrade.py not found: grades compared with counts only"; return 0; }
	python3 "$ref" check --limit-errors 20 "$@" >"$WORK/refgrade.out" 2>&1 ||
		die "refgrade.py check $* found wrong grades: $(tail -n 25 "$WORK/refgrade.out")"
}

# lock_table [MODE]: a session of the test's own holds the grade table
# locked (ACCESS EXCLUSIVE unless MODE says otherwise) until unlock_table,
# so that a consumer's write waits on it; returns once the lock is held.
LOCK_APP=gradeq-test-$TEST_NAME-lock
lock_table() {
	local mode=${1:-ACCESS EXCLUSIVE}
	PGAPPNAME=$LOCK_APP psql -X -q -d "$GRADEQ_PG_DSN" -c 'BEGIN' \
		-c "LOCK TABLE grades_persistentcoursegrade IN $mode MODE" \
		-c 'SELECT pg_sleep(600)' >/dev/null 2>&1 &
	LOCK_PID=$!
	wait_until 30 "the lock on the grade table is held" table_locked "${mode// /}Lock"
}
# table_locked MODE: the grade table of the test's database is locked in
# MODE (AccessExclusiveLock, ShareLock, ...), granted.
table_locked() {
	[[ $(psql_q "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
		WHERE l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND c.relname = 'grades_persistentcoursegrade' AND lower(l.mode) = lower('$1')
		AND l.granted") == 1 ]]
}
unlock_table() {
	psql_q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '$LOCK_APP'" >/dev/null
	wait "$LOCK_PID" 2>/dev/null || true
	LOCK_PID=
}
