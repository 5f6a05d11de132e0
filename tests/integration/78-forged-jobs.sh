#!/usr/bin/env bash
# Job bodies that do not match their job row (DESIGN.md section 4). (a) Two
# messages reusing a pending job's id, one with other user ids (as many as
# the genuine batch: only the digest tells them apart) and one with three,
# are delivered before the genuine message: both are dead-lettered
# permanent with the reason, the genuine job is then graded, and the run
# completes only with it (no job counted dead, no learner left out).
# (b) Well-formed jobs gradeq never recorded (an unknown job id in a known
# run, an unknown run id) are dead-lettered permanent "unknown job" and
# nothing is graded for their learners.
set -euo pipefail
# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"

SMALL2=course-v1:gradeq+small2+2026
own_db gradeq_it_f38
fresh_release f38
seed small,small 300
declare_topology

run=$(publish_jobs --course "$SMALL" --batch-size 100)
total=$(psql_q "SELECT jobs_total FROM gradeq_runs WHERE run_id = '$run'")
assert_ge "jobs of run $run" 2 "$total"
wait_until 30 "$total jobs in $(work_queue)" depth_is "$(work_queue)" "$total"

# Take the genuine messages out of the queue, to deliver them after the
# forged ones.
genuine=$(mgmt_curl POST "api/queues/$VH/$(urlenc "$(work_queue)")/get" \
	"{\"count\":$total,\"ackmode\":\"ack_requeue_false\",\"encoding\":\"base64\"}") ||
	die "taking the genuine messages failed"
assert_eq "genuine messages taken" "$total" "$(jq length <<<"$genuine")"
read -r target learners <<<"$(psql_q "SELECT job_id || ' ' || learners FROM gradeq_jobs
	WHERE run_id = '$run' ORDER BY seq LIMIT 1")"
others=$(psql_q "SELECT string_agg(user_id::text, ',' ORDER BY user_id) FROM
	(SELECT user_id FROM student_courseenrollment WHERE course_id = '$SMALL2'
	 ORDER BY user_id LIMIT 50) u")

python3 - "$WORK" "$target" "$run" "$SMALL" "$SMALL2" "$learners" "$others" <<'EOF'
import struct, sys, uuid
d, target, run, small, small2, learners, others = sys.argv[1:]
def pk(v):
    if isinstance(v, int):
        if 0 <= v < 128: return bytes([v])
        return b'\xd3' + struct.pack('>q', v)
    if isinstance(v, str):
        b = v.encode(); return b'\xd9' + bytes([len(b)]) + b
    if isinstance(v, list): return b'\xdc' + struct.pack('>H', len(v)) + b''.join(pk(x) for x in v)
    if isinstance(v, dict): return bytes([0x80 | len(v)]) + b''.join(pk(k) + pk(x) for k, x in v.items())
    raise TypeError(v)
def job(j, r, course, users):
    return pk({'schema': 2, 'job': j, 'run': r, 'course': course, 'release': 'f38',
               'users': users, 'created': 1, 'seq': 0})
n = int(learners)
theirs = [int(x) for x in others.split(',')]
bodies = {
    'same-count': job(target, run, small, [900000000 + i for i in range(n)]),
    'three': job(target, run, small, [1, 2, 3]),
    'unknown-job': job(str(uuid.uuid4()), run, small2, theirs),
    'unknown-run': job(str(uuid.uuid4()), str(uuid.uuid4()), small2, theirs),
}
for name, body in bodies.items():
    open(f'{d}/{name}', 'wb').write(body)
EOF

forged=(same-count three unknown-job unknown-run)
declare -A want=(
	[same-count]="^job body does not match its record: user ids differ \\(job $target\\)"
	[three]="^job body does not match its record: learner count differs \\(job $target: body 3, recorded $learners\\)"
	[unknown-job]='^unknown job: job [0-9a-f-]{36} was never recorded'
	[unknown-run]='^unknown job: run [0-9a-f-]{36} was never recorded'
)
for f in "${forged[@]}"; do
	publish_raw "$WORK/$f" "forged-$f" '{"gradeq-attempt": 1}'
done
# the genuine messages again, as they were
for ((i = 0; i < total; i++)); do
	body=$(jq -c --argjson i "$i" --arg key "grades.$RELEASE" '.[$i] | {routing_key: $key,
		payload: .payload, payload_encoding: "base64", properties: .properties}' <<<"$genuine")
	out=$(mgmt_curl POST "api/exchanges/$VH/gradeq/publish" "$body") || die "republishing failed"
	assert_eq "genuine message $i routed" true "$(jq -r .routed <<<"$out")"
done

start_consumer consumer.log --prefetch 1
pid=$CONSUMER_PID
finished() {
	[[ $(psql_q "SELECT state FROM gradeq_runs WHERE run_id = '$run'") =~ ^(complete|failed)$ ]]
}
wait_until 60 "run $run finished" finished
wait_until 30 "${#forged[@]} messages in $(dead_queue)" depth_is "$(dead_queue)" "${#forged[@]}"
wait_until 30 "$(work_queue) empty" depth_is "$(work_queue)" 0

msgs=$(peek "$(dead_queue)")
for f in "${forged[@]}"; do
	m=$(jq -c --arg id "forged-$f" '[.[] | select(.properties.message_id == $id)]' <<<"$msgs")
	assert_eq "dead copies of $f" 1 "$(jq length <<<"$m")"
	h=$(jq -c '.[0].properties.headers' <<<"$m")
	assert_eq "gradeq-error-class of $f" permanent "$(jq -r '."gradeq-error-class"' <<<"$h")"
	err=$(jq -r '."gradeq-error"' <<<"$h")
	assert_match "gradeq-error of $f" "${want[$f]}" "$err"
	log "$f -> permanent: $err"
done

# (a) the genuine job graded; the forged ones left its row alone
check_exactly_once "$run"
assert_fully_graded "$SMALL"
assert_eq "jobs of run $run dead" 0 "$(psql_q "SELECT jobs_dead FROM gradeq_runs WHERE run_id = '$run'")"
assert_eq "state and attempts of job $target" "complete 1" \
	"$(psql_q "SELECT state || ' ' || attempts FROM gradeq_jobs WHERE job_id = '$target'")"
assert_eq "failures recorded on job $target" 0 \
	"$(psql_q "SELECT count(*) FROM gradeq_job_events WHERE job_id = '$target'
		AND (to_state IN ('dead', 'retrying') OR detail IS NOT NULL)")"
assert_eq "run finished after job $target" t \
	"$(psql_q "SELECT r.finished_at >= j.finished_at FROM gradeq_runs r JOIN gradeq_jobs j
		USING (run_id) WHERE j.job_id = '$target'")"
assert_eq "grade rows of forged user ids" 0 \
	"$(psql_q "SELECT count(*) FROM grades_persistentcoursegrade WHERE user_id >= 900000000")"
# (b) nothing graded, nothing recorded for jobs gradeq never recorded
assert_eq "grade rows of $SMALL2" 0 \
	"$(psql_q "SELECT count(*) FROM grades_persistentcoursegrade WHERE course_id = '$SMALL2'")"
assert_eq "subsection grade rows of $SMALL2" 0 \
	"$(psql_q "SELECT count(*) FROM grades_persistentsubsectiongrade WHERE course_id = '$SMALL2'")"
assert_eq "job rows" "$total" "$(psql_q "SELECT count(*) FROM gradeq_jobs")"
assert_eq "runs" 1 "$(psql_q "SELECT count(*) FROM gradeq_runs")"

kill -0 "$pid" 2>/dev/null || die "the consumer exited"
kill -TERM "$pid"
wait_exit "$pid" 30
assert_eq "consumer exit status after SIGTERM" 0 "$EXIT_STATUS"
log ok
