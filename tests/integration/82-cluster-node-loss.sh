#!/usr/bin/env bash
# A node of a 3-node cluster dies in the middle of a backfill: consumers
# given the three nodes (amqp_url as a list) spread over them; the node that
# most of them use is SIGKILLed while they work. The run completes, every
# job exactly once (one completion event each), the queue ends empty, and
# every grade equals the reference implementation's (refgrade.py). The
# time from the kill to the next completion, overall and for each consumer
# that lost its node, is measured from the job events and printed (not
# asserted: the machine may be loaded).
set -euo pipefail
# shellcheck source=tests/integration/clusterlib.sh
. "$(dirname "${BASH_SOURCE[0]}")/clusterlib.sh"

cluster_up
own_db gradeq_t82_node_loss
fresh_release t82
seed large 3000
declare_topology

# six consumers, each grading one job of five learners at a time
start_consumers 6
log "consumers by node: $(consumer_nodes | awk '{ print $2 }' | sort | uniq -c | tr -s ' \n' ' ')"
run=$(publish_jobs --course "$LARGE" --batch-size 5)
jobs=$(psql_q "SELECT count(*) FROM gradeq_jobs WHERE run_id = '$run'")

complete_at_least() {
	(($(psql_q "SELECT count(*) FROM gradeq_jobs WHERE run_id = '$run' AND state = 'complete'") >= $1))
}
wait_until 120 "a tenth of the run complete" complete_at_least $((jobs / 10))

# the node most consumers use
read -r count victim < <(consumer_nodes | awk '{ print $2 }' | sort | uniq -c | sort -rn | head -n1)
n=$(node_of "$victim")
mapfile -t lost_pids < <(consumer_nodes | awk -v v="$victim" '$2 == v { print $1 }')
done_before=$(psql_q "SELECT count(*) FROM gradeq_jobs WHERE run_id = '$run' AND state = 'complete'")
t0=$(now_ms)
cluster kill "$n"
log "killed node $n ($victim), used by $count of 6 consumers, with $done_before of $jobs jobs complete"

wait_until 300 "run $run complete" run_complete "$run"
check_exactly_once "$run"
assert_fully_graded "$LARGE"
wait_until 60 "$(work_queue) empty" depth_is "$(work_queue)" 0
refcheck --course "$LARGE" --fresh

# every consumer is still there (none gave up) and stops cleanly
stop_consumers

# recovery figures
first=$(completed_after "$run" "$t0")
fresh=$(fresh_completed_after "$run" "$t0")
last=$(psql_q "SELECT (extract(epoch FROM max(at)) * 1000)::bigint FROM gradeq_job_events
	WHERE run_id = '$run' AND to_state = 'complete'")
recover=() down=()
for p in "${lost_pids[@]}"; do
	at=$(completed_after "$run" "$t0" "$p")
	[[ -n $at ]] && recover+=($((at - t0)))
	for i in "${!CONSUMERS[@]}"; do
		[[ ${CONSUMERS[i]} == "$p" ]] || continue
		d=$(grep -m1 -oE 'event=reconnected what=broker .*down_ms=[0-9]+' "$WORK/consumer-$i.log" |
			sed -E 's/.*down_ms=//' || true)
		[[ -n $d ]] && down+=("$d")
	done
done
log "FIGURE node loss: the run's last completion $((last - t0)) ms after the kill;" \
	"consumers back on another node after $(percentiles "${down[@]}") ms (${#down[@]} reconnected)"
log "FIGURE node loss: $jobs jobs; first completion $((first - t0)) ms after the kill" \
	"(of a job started after it: $((fresh - t0)) ms);" \
	"consumers that lost their node (${#lost_pids[@]}): next completion after the kill" \
	"$(percentiles "${recover[@]}") ms (${#recover[@]} of them completed a job after it)"
log ok
