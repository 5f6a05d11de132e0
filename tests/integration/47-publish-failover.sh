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

# one job per learner, each confirmed before the next is sent: a run that
# lasts long enough to be cut in its middle
config "$WORK/slow.conf" confirm_window=1
"$PUBLISH" -c "$WORK/slow.conf" --release "$RELEASE" --course "$LARGE" --batch-size 1 --json \
	>"$WORK/publish.json" 2>"$WORK/publish.log" &
ppid=$!
CONSUMER_PIDS+=("$ppid")

run_id() {
	psql_q "SELECT run_id FROM gradeq_runs WHERE release = '$RELEASE' ORDER BY created_at DESC LIMIT 1"
}
published_some() {
	local run
	run=$(run_id)
	[[ -n $run ]] && (($(queue_depth_ctl "$(work_queue)") > 0))
}
# the publisher's connection, once it has published part of the run
wait_until 60 "the first jobs of the run in $(work_queue)" published_some
run=$(run_id)
conn=$(rabbitmq_ctl list_connections -q --no-table-headers pid client_properties |
	sed -nE 's/^([^\t]*)\t.*\{"connection_name","gradeq-publish release=f47 [^"]*pid='"$ppid"' role=publish"\}.*/\1/p')
[[ -n $conn ]] || die "the publisher's connection was not found"
state=$(psql_q "SELECT state FROM gradeq_runs WHERE run_id = '$run'")
assert_eq "run state when its connection is closed" publishing "$state"
rabbitmq_ctl close_connection "$conn" "closed by test 47" >/dev/null || die "close_connection failed"
log "closed the publisher's connection in the middle of run $run"

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
