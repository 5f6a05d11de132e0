#!/usr/bin/env bash
# Upgrade in place: a backfill runs on release up1; up2 is promoted mid-run
# while a publish to up1 is still in flight; up1's consumer (no --drain)
# exits 0 by itself once up1 is empty; up2's consumers finish the rest;
# retire removes up1's queues. Every job is done exactly once and every
# grade is exact. Retire refuses with work left, with consumers attached
# and with dead letters (unless moved). A job of the previous message
# schema is graded.
set -euo pipefail
# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
own_db gradeq_it_upgrade
for r in up1 up2 up3; do fresh_release "$r"; done
RELEASE=up1
seed small,medium 1000

assert_match "publish with no release promoted" "promote" \
	"$("$PUBLISH" --all-courses 2>&1 >/dev/null || true)"
"$ADMIN" release promote up1 >/dev/null
run1=$("$PUBLISH" -q --json --course "$MEDIUM" --batch-size 25 | jq -r .run_id)
assert_eq "run1's release" up1 "$(psql_q "SELECT release FROM gradeq_runs WHERE run_id = '$run1'")"

start_consumer up1.log
old=$CONSUMER_PID
some_done() {
	(($(psql_q "SELECT count(*) FROM gradeq_jobs WHERE run_id = '$run1' AND state = 'complete'") >= 5))
}
wait_until 60 "first jobs of up1 complete" some_done

# a publish to up1 in flight while up2 is promoted: what it confirmed must
# still be done, by up1's consumer before it leaves
"$PUBLISH" -q --json --release up1 --course "$SMALL" --batch-size 1 >"$WORK/inflight.json" \
	2>>"$WORK/publish.log" &
inflight=$!
# promote only once the publish is past its release check (its run exists):
# a slow start (sanitizers, a loaded machine) must not make it a publish
# to an already draining release
inflight_started() {
	(($(psql_q "SELECT count(*) FROM gradeq_runs WHERE release = 'up1' AND run_id <> '$run1'") > 0)) ||
		! kill -0 "$inflight" 2>/dev/null
}
deadline=$((SECONDS + ${GRADEQ_TEST_PATIENCE:-180}))
until inflight_started; do
	((SECONDS < deadline)) || die "the in-flight publish to up1 never started its run"
	sleep 0.05
done
"$ADMIN" release promote up2 >"$WORK/promote.txt"
assert_match "promote names the draining release" "release up1 draining" "$(cat "$WORK/promote.txt")"
wait "$inflight" || die "the in-flight publish to up1 failed"
run_inflight=$(jq -r .run_id "$WORK/inflight.json")
assert_fails "publish to a draining release" "$PUBLISH" -q --release up1 --course "$SMALL"
run2=$("$PUBLISH" -q --json --course "$SMALL" --batch-size 100 | jq -r .run_id)
assert_eq "run2's release" up2 "$(psql_q "SELECT release FROM gradeq_runs WHERE run_id = '$run2'")"

RELEASE=up2
start_consumer up2a.log --drain
a=$CONSUMER_PID
start_consumer up2b.log --drain
b=$CONSUMER_PID
wait_exit "$old" 180
assert_eq "up1's consumer exit status" 0 "$EXIT_STATUS"
grep -q 'event=drained release=up1.*reason=release_draining' "$WORK/up1.log" ||
	die "up1's consumer did not say it drained"
for p in "$a" "$b"; do
	wait_exit "$p" 180
	assert_eq "up2 consumer exit status" 0 "$EXIT_STATUS"
done

for r in "$run1" "$run_inflight" "$run2"; do
	assert_eq "state of run $r" complete "$(psql_q "SELECT state FROM gradeq_runs WHERE run_id = '$r'")"
done
assert_eq "jobs done twice" 0 "$(psql_q "SELECT count(*) FROM (SELECT job_id FROM gradeq_job_events
	WHERE job_id IS NOT NULL AND to_state = 'complete' GROUP BY job_id HAVING count(*) > 1) d")"
python3 "$SRC/tests/integration/refgrade.py" check >"$WORK/refgrade.txt" 2>&1 ||
	die "grades differ from the reference: $(head -5 "$WORK/refgrade.txt")"

assert_ok "retire up1" "$ADMIN" release retire up1 >/dev/null
assert_ok "retire up1 again (idempotent)" "$ADMIN" release retire up1 >/dev/null
gone() {
	[[ $(mgmt_get "api/queues/$VH?columns=name" | jq '[.[].name | select(startswith("gradeq.grades.up1"))] | length') == 0 ]]
}
wait_until 15 "no queue of up1 in the management API" gone
assert_eq "up1 retired" retired "$(psql_q "SELECT state FROM gradeq_releases WHERE name = 'up1'")"
assert_fails "publish to a retired release" "$PUBLISH" -q --release up1 --course "$SMALL"

# retire refuses with work left, with a consumer, with dead letters
RELEASE=up3
"$PUBLISH" -q --release up3 --course "$SMALL" --batch-size 500 >/dev/null
out=$("$ADMIN" release retire up3 2>&1 || true)
assert_match "retire with work left" "not drained: queue 'gradeq.grades.up3' has 2 ready" "$out"
start_consumer up3.log
c3=$CONSUMER_PID
empty3() { [[ $(psql_q "SELECT count(*) FROM gradeq_jobs j JOIN gradeq_runs r USING (run_id)
	WHERE r.release = 'up3' AND j.state <> 'complete'") == 0 ]]; }
wait_until 60 "up3's jobs complete" empty3
out=$("$ADMIN" release retire up3 2>&1 || true)
assert_match "retire with a consumer" "1 consumer" "$out"
kill -TERM "$c3"
wait_exit "$c3" 30
printf 'not a job' >"$WORK/garbage"
publish_raw "$WORK/garbage" garbage-up3
start_consumer up3b.log --drain
wait_exit "$CONSUMER_PID" 60
wait_until 15 "garbage parked in up3's dead queue" depth_is gradeq.grades.up3.dead 1
out=$("$ADMIN" release retire up3 2>&1 || true)
assert_match "retire with dead letters" "1 dead letter" "$out"
assert_ok "retire moving dead letters" "$ADMIN" release retire up3 --move-dead-to up2 >/dev/null
wait_until 15 "the dead letter moved to up2" depth_is gradeq.grades.up2.dead 1

# schema N-1: a body of the previous release's layout is graded
RELEASE=up2
users=$(psql_q "SELECT string_agg(user_id::text, ',') FROM (SELECT user_id FROM
	student_courseenrollment WHERE course_id = '$SMALL' ORDER BY id LIMIT 3) u")
psql_q "DELETE FROM grades_persistentcoursegrade WHERE course_id = '$SMALL' AND user_id IN ($users)" >/dev/null
python3 - "$SMALL" "$users" "$WORK/v1.ids" >"$WORK/v1.bin" <<'PY'
import struct, sys, uuid
def s(x):
    b = x.encode()
    return (bytes([0xa0 | len(b)]) if len(b) < 32 else b"\xd9" + bytes([len(b)])) + b
def i(n):
    return bytes([n]) if 0 <= n < 128 else b"\xd2" + struct.pack(">i", n)
users = [int(u) for u in sys.argv[2].split(",")]
job, run = str(uuid.uuid4()), str(uuid.uuid4())
open(sys.argv[3], "w").write(f"{job} {run}\n")
body = b"\x86" + s("schema") + i(1) + s("job") + s(job) + s("run") + \
    s(run) + s("course") + s(sys.argv[1]) + s("release") + s("up1") + \
    s("user_ids") + bytes([0x90 | len(users)]) + b"".join(i(u) for u in users)
sys.stdout.buffer.write(body)
PY
# its job row, as the previous release recorded it (no digest of the user
# ids): checked on run, course and learner count
read -r v1job v1run <"$WORK/v1.ids"
psql_q "INSERT INTO gradeq_runs (run_id, release, state, jobs_total, learners_total)
	VALUES ('$v1run', 'up2', 'running', 1, 3);
	INSERT INTO gradeq_jobs (job_id, run_id, course_id, seq, learners)
	VALUES ('$v1job', '$v1run', '$SMALL', 0, 3)" >/dev/null
publish_raw "$WORK/v1.bin" schema1-job
start_consumer up2c.log --drain
wait_exit "$CONSUMER_PID" 60
assert_eq "learners of the schema 1 job graded" 3 "$(psql_q "SELECT count(*) FROM
	grades_persistentcoursegrade WHERE course_id = '$SMALL' AND user_id IN ($users)")"
assert_eq "the schema 1 job's row" complete "$(psql_q "SELECT state FROM gradeq_jobs WHERE job_id = '$v1job'")"
log "ok"
