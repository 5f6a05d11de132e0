#!/usr/bin/env bash
# Log injection: course ids that carry a newline and a forged
# 'ts=... level=error event=forged' tail. One course is graded, the other has
# a broken policy and is dead-lettered. Every line the publisher and the
# consumer write starts with ts=, a logfmt parser reads each line back as one
# event, none of them is the forged one, and the course value reads back as
# the course id itself; every job event body is JSON that reads it back.
# gradeq-replay list prints one line per parked message, with the course id
# escaped the same way.
set -euo pipefail
# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"

REPLAY=$(require_bin gradeq-replay)
FORGED='ts=2026-01-01T00:00:00.000Z level=error prog=gradeq-consumer event=forged job=x'
GOOD=$'course-v1:evil+graded+2026\n'"$FORGED"
BAD=$'course-v1:evil+dead+2026\r\n'"$FORGED"' "quoted" back\slash'
own_db gradeq_it_f59
fresh_release f59
seed small,small 60

# give the two demo courses the hostile ids (in every input table)
rename_course() {
	psql -X -q -v ON_ERROR_STOP=1 -d "$GRADEQ_PG_DSN" -v old="$1" -v new="$2" >/dev/null <<-'SQL' ||
		UPDATE courses SET course_id = :'new' WHERE course_id = :'old';
		UPDATE course_blocks SET course_id = :'new' WHERE course_id = :'old';
		UPDATE student_courseenrollment SET course_id = :'new' WHERE course_id = :'old';
		UPDATE courseware_studentmodule SET course_id = :'new' WHERE course_id = :'old';
	SQL
		die "renaming course $1 failed"
}
rename_course course-v1:gradeq+small1+2026 "$GOOD"
rename_course course-v1:gradeq+small2+2026 "$BAD"
psql -X -q -v ON_ERROR_STOP=1 -d "$GRADEQ_PG_DSN" -v c="$BAD" >/dev/null <<-'SQL' ||
	UPDATE courses SET grading_policy = '{"GRADER": {"type": "Homework"},
		"GRADE_CUTOFFS": {"Pass": 0.5}}' WHERE course_id = :'c';
SQL
	die "breaking the policy failed"
config "$WORK/f59.conf" 'retry_tiers=[1]'
declare_topology -c "$WORK/f59.conf"

# a queue of our own that keeps the job events (their JSON bodies)
mgmt_put "api/queues/$VH/f59-events" '{"durable": false, "auto_delete": false}'
mgmt_curl POST "api/bindings/$VH/e/gradeq.events/q/f59-events" '{"routing_key": "job.#"}' >/dev/null ||
	die "binding the events queue failed"

# not quiet: its progress lines are checked too
run=$("$PUBLISH" -c "$WORK/f59.conf" --release "$RELEASE" --json --all-courses --batch-size 20 \
	2>>"$WORK/publish.log" | jq -r .run_id) || die "gradeq-publish failed"
bad_jobs=$(psql_q "SELECT count(*) FROM gradeq_jobs WHERE run_id = '$run' AND course_id LIKE '%evil+dead%'")
assert_eq "jobs of the dead course" 3 "$bad_jobs"
"$CONSUMER" -c "$WORK/f59.conf" --release "$RELEASE" --drain >>"$WORK/consumer.log" 2>&1 ||
	die "consumer failed"
assert_eq "run state" failed "$(psql_q "SELECT state FROM gradeq_runs WHERE run_id = '$run'")"
wait_until 30 "$bad_jobs messages in $(dead_queue)" depth_is "$(dead_queue)" "$bad_jobs"

# logfmt LOGFILE PREFIX: parse every line of LOGFILE as logfmt (quoted values
# with \" \\ \n \r \t \uXXXX escapes); fails on a line that does not start
# with PREFIX or does not parse, or on an event=forged; prints one JSON object
# a line.
logfmt() {
	python3 - "$1" "$2" <<-'PY'
		import json, re, sys
		ESC = {'"': '"', '\\': '\\', 'n': '\n', 'r': '\r', 't': '\t'}
		def parse(line):
		    out, i, n = {}, 0, len(line)
		    while i < n:
		        while i < n and line[i] == ' ':
		            i += 1
		        if i >= n:
		            break
		        m = re.match(r'[^ ="]+', line[i:])
		        if not m:
		            raise ValueError('no key at %d' % i)
		        key = m.group(0)
		        i += len(key)
		        if i >= n or line[i] != '=':
		            out[key] = True
		            continue
		        i += 1
		        if i < n and line[i] == '"':
		            i += 1
		            v = []
		            while True:
		                if i >= n:
		                    raise ValueError('unterminated quote')
		                c = line[i]
		                if c == '"':
		                    i += 1
		                    break
		                if c == '\\':
		                    e = line[i + 1]
		                    if e == 'u':
		                        v.append(chr(int(line[i + 2:i + 6], 16)))
		                        i += 6
		                    else:
		                        v.append(ESC[e])
		                        i += 2
		                    continue
		                v.append(c)
		                i += 1
		            val = ''.join(v)
		        else:
		            m = re.match(r'[^ "]*', line[i:])
		            val = m.group(0)
		            i += len(val)
		        out[key] = val
		    return out
		path, prefix = sys.argv[1], sys.argv[2]
		with open(path, encoding='utf-8', errors='surrogateescape', newline='\n') as f:
		    data = f.read()
		for no, line in enumerate(data.split('\n')[:-1], 1):
		    if not line.startswith(prefix):
		        sys.exit('%s:%d does not start with %r: %r' % (path, no, prefix, line))
		    if any(ord(c) < 0x20 or ord(c) == 0x7f for c in line):
		        sys.exit('%s:%d holds a control byte: %r' % (path, no, line))
		    try:
		        rec = parse(line)
		    except (ValueError, KeyError, IndexError) as e:
		        sys.exit('%s:%d is no logfmt line (%s): %r' % (path, no, e, line))
		    if rec.get('event') == 'forged':
		        sys.exit('%s:%d is the forged line: %r' % (path, no, line))
		    print(json.dumps(rec))
	PY
}

for f in publish consumer; do
	log "checking $f.log ($(wc -l <"$WORK/$f.log") lines)"
	logfmt "$WORK/$f.log" ts= >"$WORK/$f.jsonl" || die "$f.log: not one logfmt event a line"
done
graded=$(jq -s --arg c "$GOOD" '[.[] | select(.event == "job" and .course == $c)] | length' \
	"$WORK/consumer.jsonl")
assert_ge "event=job lines whose course reads back as the hostile id" 3 "$graded"
dead=$(jq -s --arg c "$BAD" '[.[] | select(.event == "job_dead" and (.error | contains($c)))] | length' \
	"$WORK/consumer.jsonl")
assert_eq "event=job_dead lines whose error holds the hostile id" "$bad_jobs" "$dead"

# every job event body is JSON that reads the course id back
peek f59-events >"$WORK/events.json"
jq -r '.[].payload' "$WORK/events.json" | while read -r b; do
	base64 -d <<<"$b" | jq -c . || die "a job event body is no JSON: $(base64 -d <<<"$b")"
done >"$WORK/events.jsonl"
assert_ge "job events" 6 "$(wc -l <"$WORK/events.jsonl")"
assert_eq "job events whose course is one of the hostile ids" "$(wc -l <"$WORK/events.jsonl")" \
	"$(jq -s --arg g "$GOOD" --arg b "$BAD" '[.[] | select(.course == $g or .course == $b)] | length' \
		"$WORK/events.jsonl")"

"$REPLAY" list --release "$RELEASE" >"$WORK/list.out" 2>>"$WORK/replay.log" || die "list failed"
grep '^job=' "$WORK/list.out" >"$WORK/list.jobs" || die "no job lines in list: $(cat "$WORK/list.out")"
assert_eq "job lines in list" "$bad_jobs" "$(wc -l <"$WORK/list.jobs")"
logfmt "$WORK/list.jobs" job= >"$WORK/list.jsonl" || die "list: not one logfmt line a message"
assert_eq "list lines whose course reads back as the hostile id" "$bad_jobs" \
	"$(jq -s --arg c "$BAD" '[.[] | select(.course == $c)] | length' "$WORK/list.jsonl")"
if grep -q '^ts=' "$WORK/list.out"; then
	die "list printed a forged line: $(grep '^ts=' "$WORK/list.out")"
fi
log ok
