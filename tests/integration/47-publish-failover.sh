#!/usr/bin/env bash
# A publish interrupted by a lost connection resumes: the broker's operator
# closes gradeq-publish's connection (rabbitmqctl close_connection) in the
# middle of a run; the publisher connects again and publishes the jobs the
# broker had not confirmed once more, under their message ids. Every job of
# the run is recorded once and graded once (a consumer acks a copy of a
# job already complete without work), and --json says how many jobs were
# published again.
set -euo pipefail
# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"

own_db gradeq_it_f47
fresh_release f47
seed large 2000
declare_topology

# one job per learner, each confirmed before the next is sent
config "$WORK/slow.conf" confirm_window=1
"$PUBLISH" -c "$WORK/slow.conf" --release "$RELEASE" --course "$LARGE" --batch-size 1 --json \
	>"$WORK/publish.json" 2>"$WORK/publish.log" &
ppid=$!
CONSUMER_PIDS+=("$ppid")

run_id() {
	psql_q "SELECT run_id FROM gradeq_runs WHERE release = '$RELEASE' ORDER BY created_at DESC LIMIT 1"
}
recorded() {
	psql_q "SELECT count(*) FROM gradeq_jobs j JOIN gradeq_runs r USING (run_id) WHERE r.release = '$RELEASE'"
}
# Jobs are recorded 512 at a time, then published one by one, each
# confirmed before the next. The publisher is frozen (SIGSTOP) as soon as
# the first ones are recorded, so that its connection is closed while it
# is in the middle of the run whatever the machine's speed, and thawed.
deadline=$((SECONDS + ${GRADEQ_TEST_PATIENCE:-180}))
until (($(recorded) > 0)); do
	kill -0 "$ppid" 2>/dev/null || die "gradeq-publish exited early: $(cat "$WORK/publish.log")"
	((SECONDS < deadline)) || die "no job of the run recorded"
	sleep 0.05
done
kill -STOP "$ppid"
run=$(run_id)
n=$(recorded)
((n < 2000)) || die "all 2000 jobs recorded before the publisher could be frozen"
assert_eq "run state when its connection is closed" publishing \
	"$(psql_q "SELECT state FROM gradeq_runs WHERE run_id = '$run'")"
conn=$(rabbitmq_ctl list_connections -q --no-table-headers pid client_properties |
	sed -nE 's/^([^\t]*)\t.*\{"connection_name","gradeq-publish release=f47 [^"]*pid='"$ppid"' role=publish"\}.*/\1/p')
[[ -n $conn ]] || die "the publisher's connection was not found"
rabbitmq_ctl close_connection "$conn" "closed by test 47" >/dev/null || die "close_connection failed"
kill -CONT "$ppid"
log "closed the publisher's connection in the middle of run $run ($n of 2000 jobs recorded)"

wait_exit "$ppid" 300
assert_eq "gradeq-publish exit status" 0 "$EXIT_STATUS"
grep -q 'event=publish_failover' "$WORK/publish.log" || die "the publisher did not fail over: $(cat "$WORK/publish.log")"
out=$(cat "$WORK/publish.json")
republished=$(jq -r '.republished' <<<"$out")
[[ $republished =~ ^[0-9]+$ ]] || die "--json has no republished count: $out"
jobs=$(jq -r '.jobs' <<<"$out")
assert_eq "jobs of the run" 2000 "$jobs"
assert_eq "job rows of the run" "$jobs" "$(psql_q "SELECT count(*) FROM gradeq_jobs WHERE run_id = '$run'")"
assert_eq "run state after publishing" running "$(psql_q "SELECT state FROM gradeq_runs WHERE run_id = '$run'")"

# two consumers drain the run side by side
"$CONSUMER" --release "$RELEASE" --drain >"$WORK/consumer1.log" 2>&1 &
c1=$!
CONSUMER_PIDS+=("$c1")
"$CONSUMER" --release "$RELEASE" --drain >"$WORK/consumer2.log" 2>&1 || die "a consumer failed"
wait_exit "$c1" 300
assert_eq "the other consumer's exit status" 0 "$EXIT_STATUS"
check_exactly_once "$run"
assert_fully_graded "$LARGE"
graded=$(cat "$WORK"/consumer[12].log | grep -c 'event=job .*outcome=graded' || true)
assert_eq "jobs graded" "$jobs" "$graded"
dups=$(cat "$WORK"/consumer[12].log | grep -c 'event=job .*outcome=already_complete' || true)
secs=$(jq -r .seconds <<<"$out")
log "connection closed mid-publish (publish took ${secs} s): $republished job(s) published again, $dups duplicate(s) acked without work; $jobs jobs graded once each"
log ok
