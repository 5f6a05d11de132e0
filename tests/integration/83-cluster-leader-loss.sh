#!/usr/bin/env bash
# The node leading the work queue dies while a run is being published and
# graded: the queue elects a new leader on the two others; the publish in
# flight completes (jobs the broker had not confirmed are published again,
# none is skipped, no job row is duplicated), the run completes, every job
# exactly once, and every grade equals the reference implementation's. The
# time from the kill to the next completion is measured from the job
# events and printed (not asserted).
set -euo pipefail
# shellcheck source=tests/integration/clusterlib.sh
. "$(dirname "${BASH_SOURCE[0]}")/clusterlib.sh"

cluster_up
own_db gradeq_t83_leader_loss
fresh_release t83
seed large 2000
declare_topology

start_consumers 4
# one job per learner, each confirmed before the next is sent: a publish
# long enough to be cut in its middle
config "$WORK/slow.conf" confirm_window=1
"$PUBLISH" -c "$WORK/slow.conf" --release "$RELEASE" --course "$LARGE" --batch-size 1 --json \
	>"$WORK/publish.json" 2>"$WORK/publish.log" &
ppid=$!
CONSUMER_PIDS+=("$ppid")

run_id() {
	psql_q "SELECT run_id FROM gradeq_runs WHERE release = '$RELEASE' ORDER BY created_at DESC LIMIT 1"
}
some_complete() {
	local run
	run=$(run_id)
	[[ -n $run ]] && (($(psql_q "SELECT count(*) FROM gradeq_jobs WHERE run_id = '$run' AND state = 'complete'") >= 50))
}
wait_until 120 "the first jobs of the run complete" some_complete
run=$(run_id)
kill -0 "$ppid" 2>/dev/null || die "the publish ended before the node could be killed: make the run longer"
assert_eq "run state when the leader is killed" publishing "$(psql_q "SELECT state FROM gradeq_runs WHERE run_id = '$run'")"

leader=$(queue_leader "$(work_queue)")
[[ -n $leader ]] || die "no leader for $(work_queue)"
n=$(node_of "$leader")
t0=$(now_ms)
cluster kill "$n"
log "killed node $n ($leader), leader of $(work_queue), in the middle of publishing run $run"

wait_exit "$ppid" 300
assert_eq "gradeq-publish exit status" 0 "$EXIT_STATUS"
out=$(cat "$WORK/publish.json")
jobs=$(jq -r .jobs <<<"$out")
republished=$(jq -r .republished <<<"$out")
assert_eq "jobs of the run (one per learner)" 2000 "$jobs"
[[ $republished =~ ^[0-9]+$ ]] || die "--json has no republished count: $out"
assert_eq "job rows of the run" "$jobs" "$(psql_q "SELECT count(*) FROM gradeq_jobs WHERE run_id = '$run'")"
assert_eq "distinct job sequence numbers" "$jobs" "$(psql_q "SELECT count(DISTINCT seq) FROM gradeq_jobs WHERE run_id = '$run'")"

wait_until 300 "run $run complete" run_complete "$run"
check_exactly_once "$run"
assert_fully_graded "$LARGE"
wait_until 60 "$(work_queue) empty" depth_is "$(work_queue)" 0
refcheck --course "$LARGE" --fresh
new_leader=$(queue_leader "$(work_queue)")
assert_ne "the work queue's leader after the kill" "$leader" "$new_leader"
stop_consumers

first=$(completed_after "$run" "$t0")
fresh=$(fresh_completed_after "$run" "$t0")
failover=$(grep -m1 -oE 'event=publish_failover .*' "$WORK/publish.log" || echo "none")
log "FIGURE leader loss: first completion $((first - t0)) ms after the kill, first of a job" \
	"started after it $((fresh - t0)) ms; new leader $new_leader;" \
	"publisher: $republished job(s) published again ($failover); $jobs jobs graded once each"
log ok
