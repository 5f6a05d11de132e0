#!/usr/bin/env bash
# No leaks in the daemons' normal run: a publish and a draining consumer
# under valgrind's memcheck, which must report no error and nothing
# definitely or indirectly lost. Skipped (77) in sanitizer builds, where
# valgrind cannot run; .ci/run runs it on a plain build.
set -euo pipefail
# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"

command -v valgrind >/dev/null || skip "valgrind is not installed"
if grep -q 'GRADEQ_SANITIZE:BOOL=ON' "$GRADEQ_BIN/CMakeCache.txt" 2>/dev/null; then
	skip "sanitizer build: valgrind runs on a plain build"
fi

own_db gradeq_it_valgrind
fresh_release vg
RELEASE=vg
seed small,medium 300

# shellcheck disable=SC2054 # the commas are valgrind's list syntax
VG=(valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect
	--errors-for-leak-kinds=definite,indirect --error-exitcode=99)
"${VG[@]}" "$PUBLISH" --release vg --all-courses --batch-size 50 -q >"$WORK/publish.out" \
	2>"$WORK/publish-vg.log" || die "gradeq-publish under valgrind: $(grep -m3 '==' "$WORK/publish-vg.log")"
"${VG[@]}" "$CONSUMER" --release vg --drain 2>"$WORK/consumer-vg.log" ||
	die "gradeq-consumer under valgrind: $(grep -m5 '==' "$WORK/consumer-vg.log")"
grep -q 'event=drained' "$WORK/consumer-vg.log" || die "the consumer did not drain"
assert_eq "learners graded" 600 "$(psql_q "SELECT count(*) FROM grades_persistentcoursegrade")"

# SIGTERM path of a long-running consumer
"${VG[@]}" "$CONSUMER" --release vg 2>"$WORK/consumer-term-vg.log" &
pid=$!
CONSUMER_PIDS+=("$pid")
wait_until 60 "consumer consuming" grep -q 'event=consuming' "$WORK/consumer-term-vg.log"
kill -TERM "$pid"
wait_exit "$pid" 60
assert_eq "exit status after SIGTERM under valgrind" 0 "$EXIT_STATUS"

# gradeq-web: a login, status, the reads, an event stream, then SIGTERM
WEB=$(require_bin gradeq-web)
printf 'vg:operator:%s\n' "$(openssl passwd -6 vgpass)" >"$WORK/users"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
"${VG[@]}" "$WEB" --listen "127.0.0.1:$PORT" --users "$WORK/users" 2>"$WORK/web-vg.log" &
pid=$!
CONSUMER_PIDS+=("$pid")
wait_until 60 "gradeq-web listening" grep -q 'event=events_following' "$WORK/web-vg.log"
curl -s -c "$WORK/jar" -d user=vg -d password=vgpass "$BASE/api/login" >/dev/null
curl -s -N -m 3 -b "$WORK/jar" "$BASE/api/events" >/dev/null || true
run=$(psql_q "SELECT run_id FROM gradeq_runs LIMIT 1")
for path in /api/status /api/states "/api/runs/$run" "/api/runs/$run/jobs" /api/dead /api/consumers /; do
	curl -s -o /dev/null -b "$WORK/jar" "$BASE$path"
done
assert_eq "gradeq-web under valgrind answers" 200 "$(curl -s -o /dev/null -w '%{http_code}' -b "$WORK/jar" "$BASE/api/status")"
kill -TERM "$pid"
wait_exit "$pid" 60
assert_eq "gradeq-web's exit after SIGTERM under valgrind" 0 "$EXIT_STATUS"
log "ok"
