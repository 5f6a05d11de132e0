#!/usr/bin/env bash
# Bodies that are no job: garbage bytes, truncated msgpack, arrays nested
# 10000 deep (malformed, not out of memory), a map missing fields, a wrong schema version, a huge array header, a well-formed job
# gradeq never recorded, and a recorded job of an unknown course. Each is parked in the release's dead queue with
# gradeq-error-class=permanent and a readable gradeq-error; the consumer
# keeps running, grades the valid jobs published alongside, and exits 0 on
# SIGTERM.
set -euo pipefail
# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"

own_db gradeq_it_f30
fresh_release f30
seed small 300
declare_topology

# The bodies, written by a few lines of msgpack (no external module).
python3 - "$WORK" <<'EOF'
import hashlib, struct, sys, uuid
d = sys.argv[1]
def pk(v):
    if isinstance(v, bool): return b'\xc3' if v else b'\xc2'
    if isinstance(v, int):
        if 0 <= v < 128: return bytes([v])
        return b'\xd3' + struct.pack('>q', v)
    if isinstance(v, str):
        b = v.encode(); return bytes([0xa0 | len(b)]) + b if len(b) < 32 else b'\xd9' + bytes([len(b)]) + b
    if isinstance(v, list): return bytes([0x90 | len(v)]) + b''.join(pk(x) for x in v)
    if isinstance(v, dict): return bytes([0x80 | len(v)]) + b''.join(pk(k) + pk(x) for k, x in v.items())
    raise TypeError(v)
job = {'schema': 2, 'job': str(uuid.uuid4()), 'run': str(uuid.uuid4()),
       'course': 'course-v1:gradeq+small1+2026', 'release': 'f30', 'users': [1, 2, 3],
       'created': 1, 'seq': 0}
good = pk(job)
open(f'{d}/garbage', 'wb').write(b'\x00GET / HTTP/1.1\r\n\xff\xfe not a job')
open(f'{d}/truncated', 'wb').write(good[:len(good) // 2])
open(f'{d}/deep', 'wb').write(b'\x91' * 10000 + b'\xc0')
open(f'{d}/missing', 'wb').write(pk({'schema': 2, 'job': job['job'], 'course': job['course']}))
open(f'{d}/schema9', 'wb').write(pk(dict(job, schema=9)))
# "users" declares 2^32-1 elements and holds none
huge = dict(job); del huge['users']
body = pk(huge)
open(f'{d}/hugearray', 'wb').write(bytes([body[0] + 1]) + body[1:] + pk('users') + b'\xdd\xff\xff\xff\xff')
nocourse = dict(job, course='course-v1:nobody+nothing+2026')
open(f'{d}/nocourse', 'wb').write(pk(nocourse))
# the job row gradeq-publish would have recorded for it (SQL values)
digest = hashlib.sha256(struct.pack('<3i', *job['users'])).hexdigest()
open(f'{d}/nocourse.row', 'w').write(
    f"'{job['job']}', '{job['run']}', '{nocourse['course']}', 0, 3, '\\x{digest}'\n")
open(f'{d}/nocourse.run', 'w').write(job['run'] + '\n')
open(f'{d}/unrecorded', 'wb').write(pk(dict(job, job=str(uuid.uuid4()))))
EOF

bad=(garbage truncated deep missing schema9 hugearray unrecorded nocourse)
declare -A want=(
	[garbage]='^malformed job message: body is not a job'
	[truncated]='truncated'
	[deep]='^malformed job message: body is not a job: msgpack nested deeper'
	[missing]="missing key"
	[schema9]='schema 9 not accepted'
	[hugearray]='more (elements|user ids)|truncated'
	[unrecorded]='^unknown job: '
	[nocourse]='unknown course'
)

start_consumer consumer.log
pid=$CONSUMER_PID
run1=$(publish_jobs --course "$SMALL" --batch-size 50)
# a consumer grades only jobs gradeq recorded: record the job of the unknown
# course (in a run of its own) as gradeq-publish would have
psql_q "INSERT INTO gradeq_runs (run_id, release, state, jobs_total, learners_total)
	VALUES ('$(cat "$WORK/nocourse.run")', '$RELEASE', 'running', 1, 3);
	INSERT INTO gradeq_jobs (job_id, run_id, course_id, seq, learners, users_digest)
	VALUES ($(cat "$WORK/nocourse.row"))" >/dev/null
for b in "${bad[@]}"; do
	publish_raw "$WORK/$b" "poison-$b" '{"gradeq-attempt": 1}'
done
run2=$(publish_jobs --course "$SMALL" --batch-size 100)

wait_until 60 "both runs complete" runs_complete "$run1" "$run2"
wait_until 30 "${#bad[@]} messages in $(dead_queue)" depth_is "$(dead_queue)" "${#bad[@]}"
wait_until 30 "$(work_queue) empty" depth_is "$(work_queue)" 0
kill -0 "$pid" 2>/dev/null || die "the consumer exited"

msgs=$(peek "$(dead_queue)")
assert_eq "dead messages" "${#bad[@]}" "$(jq length <<<"$msgs")"
for b in "${bad[@]}"; do
	m=$(jq -c --arg id "poison-$b" '[.[] | select(.properties.message_id == $id)]' <<<"$msgs")
	assert_eq "dead copies of $b" 1 "$(jq length <<<"$m")"
	h=$(jq -c '.[0].properties.headers' <<<"$m")
	assert_eq "gradeq-error-class of $b" permanent "$(jq -r '."gradeq-error-class"' <<<"$h")"
	err=$(jq -r '."gradeq-error"' <<<"$h")
	assert_match "gradeq-error of $b" "${want[$b]}" "$err"
	assert_match "gradeq-failed-at of $b" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$' \
		"$(jq -r '."gradeq-failed-at"' <<<"$h")"
	assert_eq "gradeq-failed-by of $b" "gradeq-consumer release=f30 host=$(hostname) pid=$pid" \
		"$(jq -r '."gradeq-failed-by"' <<<"$h")"
	assert_eq "gradeq-origin-queue of $b" "$(work_queue)" "$(jq -r '."gradeq-origin-queue"' <<<"$h")"
	assert_eq "gradeq-attempt of $b" 1 "$(jq -r '."gradeq-attempt"' <<<"$h")"
	# the body is kept byte for byte
	assert_eq "body of $b" "$(base64 -w0 <"$WORK/$b")" "$(jq -r '.[0].payload' <<<"$m")"
	log "$b -> permanent: $err"
done

check_exactly_once "$run1"
check_exactly_once "$run2"
assert_fully_graded "$SMALL"

kill -0 "$pid" 2>/dev/null || die "the consumer exited"
kill -TERM "$pid"
wait_exit "$pid" 30
assert_eq "consumer exit status after SIGTERM" 0 "$EXIT_STATUS"
log ok
