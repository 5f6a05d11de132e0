#!/usr/bin/env bash
# The dashboard in a real browser: Debian's chromium, headless, driven by
# puppeteer-core (tests/browser/dashboard.js) against a gradeq-web of the
# test's own, during a backfill with two consumers and one broken course:
# - the run's progress rises to its end on the page without a reload, and
#   the page's numbers equal `gradeq-admin status --json`;
# - the broken course's dead jobs are listed with their reason, and listing
#   them never redelivers the dead queue's messages;
# - a viewer sees no replay button and the API refuses its replay (403);
# - an operator cancels a run from its page (another release's, unread);
# - an operator exports the dead jobs from the page (a download of them all),
#   mends the course, replays its dead jobs from the page (click,
#   confirm), and they are graded once, as the reference grades them; the
#   page, its event stream cut meanwhile, says it polls and shows the run
#   complete;
# - a course team member (a dashboard user mapped to platform user 9001,
#   staff of a course) opens the Outputs view, sees a grade report of the
#   course turn sealed live and downloads it from the page: the file's
#   SHA-256 and size are the listing's, its bytes the stored output's.
# Screenshots of the runs, run and dead-jobs pages are kept in the build
# directory (web-browser/, with the page, the browser's log and gradeq-web's
# log of a failed run), where the docs/img/ copies come from.
#
# node, npm and chromium are required (tools/deps installs them): the test
# fails, not skips, without them. npm installs puppeteer-core from
# tests/browser/package-lock.json into the build directory, never into the
# source tree.
set -euo pipefail
# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
for c in node npm openssl python3; do
	command -v "$c" >/dev/null 2>&1 || die "$c not found: run tools/deps (as root)"
done
[[ -x $CHROMIUM ]] || die "$CHROMIUM not found: run tools/deps (as root) to install Debian's chromium"
WEB=$(require_bin gradeq-web)
BAD=course-v1:gradeq+small2+2026
LEARNERS=400
BATCH=50

# --- puppeteer-core, from the lockfile, into the build directory -------------
NODE_DIR=$GRADEQ_BIN/browser-test
install_driver() {
	local src=$GRADEQ_SRC/tests/browser stamp
	mkdir -p "$NODE_DIR"
	stamp=$(cat "$src/package.json" "$src/package-lock.json" | md5sum | cut -d' ' -f1)
	if [[ -f $NODE_DIR/.stamp && $(cat "$NODE_DIR/.stamp") == "$stamp" && -d $NODE_DIR/node_modules/puppeteer-core ]]; then
		return 0
	fi
	cp "$src/package.json" "$src/package-lock.json" "$NODE_DIR/"
	# puppeteer-core downloads no browser; the cache stays in the build directory
	(cd "$NODE_DIR" && npm ci --no-audit --no-fund --cache "$NODE_DIR/.npm-cache") >"$WORK/npm.log" 2>&1 ||
		die "npm ci of tests/browser failed: $(tail -n 5 "$WORK/npm.log")"
	printf '%s\n' "$stamp" >"$NODE_DIR/.stamp"
}
install_driver
cp "$GRADEQ_SRC/tests/browser/dashboard.js" "$NODE_DIR/"

# --- the database, the release, a broken course -------------------------------
own_db gradeq_it_w81
fresh_release w81
seed small,small,medium "$LEARNERS"
good_policy=$(psql_q "SELECT grading_policy FROM courses WHERE course_id = '$BAD'")
psql_q "UPDATE courses SET grading_policy = '{\"GRADER\": {\"type\": \"Homework\"},
	\"GRADE_CUTOFFS\": {\"Pass\": 0.5}}' WHERE course_id = '$BAD'" >/dev/null
# grade reports: the consumers, gradeq-report and gradeq-web share these
export GRADEQ_OUTPUT_DIR=$WORK/outputs
openssl rand -hex 32 >"$WORK/link.key"
chmod 600 "$WORK/link.key"
config "$WORK/w81.conf" 'retry_tiers=[1, 2]' "output_link_key_file=\"$WORK/link.key\""
declare_topology -c "$WORK/w81.conf"

# --- gradeq-web on a port of its own, with a viewer and an operator ------------
free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}
random_pw() {
	head -c 48 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9' | head -c 20
}
VIEWER_PW=$(random_pw)
OPERATOR_PW=$(random_pw)
MEMBER_PW=$(random_pw)
{
	printf 'vera:viewer:%s\n' "$(openssl passwd -6 -stdin <<<"$VIEWER_PW")"
	printf 'otto:operator:%s\n' "$(openssl passwd -6 -stdin <<<"$OPERATOR_PW")"
	# a dashboard user mapped to platform user 9001
	printf 'olga:viewer:%s:9001\n' "$(openssl passwd -6 -stdin <<<"$MEMBER_PW")"
} >"$WORK/users"
chmod 600 "$WORK/users"
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
"$WEB" -c "$WORK/w81.conf" --listen "127.0.0.1:$PORT" --users "$WORK/users" >"$WORK/web.log" 2>&1 &
WEB_PID=$!
CONSUMER_PIDS+=("$WEB_PID") # ended with the consumers when the test ends
web_up() {
	kill -0 "$WEB_PID" 2>/dev/null || die "gradeq-web exited: $(tail -n 5 "$WORK/web.log")"
	[[ $(curl -s -o /dev/null -w '%{http_code}' "$URL/api/session") == 401 ]]
}
wait_until 60 "gradeq-web answers on $URL" web_up

# screenshots (and the page of a failed phase) outlive the test's WORK
SHOTS=$GRADEQ_BIN/web-browser
rm -rf "$SHOTS"
mkdir -p "$SHOTS"
# so do the browser's and gradeq-web's logs of a failed run (WORK is removed)
_w81_exit() {
	local rc=$?
	((rc == 0)) || cp "$WORK"/browser-*.log "$WORK"/web.log "$SHOTS"/ 2>/dev/null || true
	set +e
	(exit "$rc") # _fail_cleanup reads the test's status from $?
	_fail_cleanup
}
trap _w81_exit EXIT
export WEB_URL=$URL SHOT_DIR=$SHOTS WORK_DIR=$WORK RELEASE BAD_COURSE=$BAD CHROMIUM GRADEQ_ADMIN=$ADMIN
# dashboard PHASE USER PASSWORD [VAR=VALUE...]: one phase of the browser test.
dashboard() {
	local phase=$1 user=$2 pw=$3
	shift 3
	env WEB_USER="$user" WEB_PASSWORD="$pw" "$@" node "$NODE_DIR/dashboard.js" "$phase" \
		2>>"$WORK/browser-$phase.log" || die "browser phase $phase failed: $(grep -m1 FAIL "$WORK/browser-$phase.log")"
	log "browser phase $phase: $(grep -c '^ok:' "$WORK/browser-$phase.log") checks passed"
}

# --- the backfill, watched from the runs page ------------------------------------
run=$(publish_jobs -c "$WORK/w81.conf" --course "$SMALL" --course "$BAD" --course "$MEDIUM" --batch-size "$BATCH")
bad_jobs=$(psql_q "SELECT count(*) FROM gradeq_jobs WHERE run_id = '$run' AND course_id = '$BAD'")
assert_eq "jobs of $BAD" $((LEARNERS / BATCH)) "$bad_jobs"
total=$(psql_q "SELECT learners_total FROM gradeq_runs WHERE run_id = '$run'")

WEB_USER=otto WEB_PASSWORD=$OPERATOR_PW RUN_ID=$run EXPECT_STATE=failed \
	EXPECT_LEARNERS_COMPLETE=$((total - LEARNERS)) \
	node "$NODE_DIR/dashboard.js" watch 2>>"$WORK/browser-watch.log" &
watch_pid=$!
CONSUMER_PIDS+=("$watch_pid")
watch_failed() {
	wait "$watch_pid" && die "browser phase watch ended early"
	die "browser phase watch failed: $(grep -m1 FAIL "$WORK/browser-watch.log")"
}
watching() {
	kill -0 "$watch_pid" 2>/dev/null || return 0 # ended: see below
	[[ -e $WORK/watching ]]
}
wait_until 120 "the runs page shows the run" watching
[[ -e $WORK/watching ]] || watch_failed
# only now the jobs are graded: the page saw the run at 0
consumers=()
for i in 1 2; do
	start_consumer "consumer-$i.log" -c "$WORK/w81.conf" --prefetch 4
	consumers+=("$CONSUMER_PID")
done
wait "$watch_pid" || watch_failed
log "browser phase watch: $(grep -c '^ok:' "$WORK/browser-watch.log") checks passed"
assert_eq "state of the run" failed "$(psql_q "SELECT state FROM gradeq_runs WHERE run_id = '$run'")"

# --- dead jobs: listed by the page, the dead queue untouched ------------------------
wait_until 60 "$bad_jobs messages in $(dead_queue)" depth_is "$(dead_queue)" "$bad_jobs"
# delivery_counts: "message_id count" per dead message, by the test's own
# peek (which, requeueing, adds one to each).
delivery_counts() {
	peek "$(dead_queue)" | jq -r '.[] | "\(.properties.message_id) \(.properties.headers."x-delivery-count" // 0)"' | sort
}
before=$(delivery_counts)
assert_eq "dead messages peeked" "$bad_jobs" "$(grep -c . <<<"$before")"
dashboard dead otto "$OPERATOR_PW" EXPECT_DEAD="$bad_jobs"
# an error text is not trusted: one job's reason gets markup, which the page
# must show as text
HOSTILE='<img src=x onerror="window.__pwned=1"><b id="pwned">bold</b>'
psql_q "UPDATE gradeq_jobs SET last_error = last_error || ' $HOSTILE' WHERE job_id =
	(SELECT job_id FROM gradeq_jobs WHERE run_id = '$run' AND course_id = '$BAD' ORDER BY seq LIMIT 1)" >/dev/null
dashboard viewer vera "$VIEWER_PW" EXPECT_DEAD="$bad_jobs" HOSTILE="$HOSTILE" EXPECT_PIDS="${consumers[*]}" \
	EXPECT_DONE=$((total / BATCH - bad_jobs))
after=$(delivery_counts)
# each message was delivered once more: by the test's first peek, not by the page
expected=$(awk '{ print $1, $2 + 1 }' <<<"$before")
assert_eq "delivery counts of the dead messages after the page listed them" "$expected" "$after"
assert_eq "dead jobs of $BAD after the viewer's try" "$bad_jobs" \
	"$(psql_q "SELECT count(*) FROM gradeq_jobs WHERE run_id = '$run' AND course_id = '$BAD' AND state = 'dead'")"

# --- the operator mends the course and replays from the page -------------------------
psql_q "UPDATE courses SET grading_policy = '$good_policy' WHERE course_id = '$BAD'" >/dev/null
dashboard replay otto "$OPERATOR_PW" EXPECT_DEAD="$bad_jobs" RUN_ID="$run"
# the export the operator downloaded first holds the dead jobs
exported() {
	[[ -f $WORK/gradeq-dead-$RELEASE.jsonl ]] &&
		[[ $(tail -n1 "$WORK/gradeq-dead-$RELEASE.jsonl" | jq .records) == "$bad_jobs" ]]
}
wait_until 30 "the page's export downloaded with $bad_jobs records" exported
wait_until 120 "run $run complete" run_complete "$run"
check_exactly_once "$run"
assert_eq "replays recorded with the operator's name" "$bad_jobs" \
	"$(psql_q "SELECT count(*) FROM gradeq_job_events WHERE run_id = '$run' AND from_state = 'dead'
		AND to_state = 'pending' AND by = 'web:otto'")"
for c in "$SMALL" "$BAD" "$MEDIUM"; do
	assert_fully_graded "$c"
done
refcheck --course "$SMALL" --course "$BAD" --course "$MEDIUM"
wait_until 30 "$(dead_queue) empty" depth_is "$(dead_queue)" 0

# --- a course team member watches a grade report arrive and downloads it ---------------
psql_q "INSERT INTO student_courseaccessrole (user_id, course_id, role) VALUES (9001, '$SMALL', 'staff')" >/dev/null
WEB_USER=olga WEB_PASSWORD=$MEMBER_PW COURSE=$SMALL PLATFORM_USER=9001 \
	node "$NODE_DIR/dashboard.js" outputs 2>>"$WORK/browser-outputs.log" &
outputs_pid=$!
CONSUMER_PIDS+=("$outputs_pid")
outputs_failed() {
	wait "$outputs_pid" && die "browser phase outputs ended early"
	die "browser phase outputs failed: $(grep -m1 FAIL "$WORK/browser-outputs.log")"
}
outputs_open() {
	kill -0 "$outputs_pid" 2>/dev/null || return 0 # ended: see below
	[[ -e $WORK/outputs-open ]]
}
wait_until 120 "the Outputs view open" outputs_open
[[ -e $WORK/outputs-open ]] || outputs_failed
# only now the report is made (by the running consumers): the page saw none
report=$("$(require_bin gradeq-report)" -c "$WORK/w81.conf" --release "$RELEASE" --course "$SMALL" --batch-size 100)
wait "$outputs_pid" || outputs_failed
log "browser phase outputs: $(grep -c '^ok:' "$WORK/browser-outputs.log") checks passed"
cmp "$(cat "$WORK/outputs-downloaded")" "$GRADEQ_OUTPUT_DIR/$report.csv" ||
	die "the page's download differs from the stored output"

# --- the operator cancels a run from its page ---------------------------------------
# a release no consumer reads, so that its run waits to be canceled (its
# jobs are marked canceled when a consumer takes them: as gradeq-admin cancel)
fresh_release w81c
declare_topology -c "$WORK/w81.conf"
run2=$(publish_jobs -c "$WORK/w81.conf" --course "$SMALL" --batch-size 100)
jobs2=$(psql_q "SELECT count(*) FROM gradeq_jobs WHERE run_id = '$run2'")
dashboard cancel otto "$OPERATOR_PW" RUN_ID="$run2" EXPECT_JOBS="$jobs2"
assert_eq "state of the canceled run" canceled "$(psql_q "SELECT state FROM gradeq_runs WHERE run_id = '$run2'")"
assert_eq "the cancel recorded with the operator's name" 1 "$(psql_q "SELECT count(*) FROM gradeq_job_events
	WHERE run_id = '$run2' AND job_id IS NULL AND to_state = 'canceled' AND by = 'web:otto'")"

log "screenshots in $SHOTS: $(cd "$SHOTS" && echo web-*.png)"
log ok
