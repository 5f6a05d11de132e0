#!/usr/bin/env bash
# Back-off on database distress: a session holds the grade table locked
# while three throttled consumers grade a run. Every consumer backs off
# (event=throttled with the reason: lock waits seen in a health sample, or
# the slow write of the job the lock held up), status shows the back-off
# and its reason, and each climbs back to its share of the budget once the
# lock is gone. No job is lost or graded twice; the grades are right.
set -euo pipefail
# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"

own_db gradeq_it_t53
fresh_release t53
BUDGET=600
seed small 3000
CONF=$WORK/t53.conf
# groups of two jobs: the run's 60 jobs keep all three consumers busy
config "$CONF" 'distress_interval_s=2' 'backoff_increase=40' 'group_jobs=2'
declare_topology -c "$CONF"

all_logs() {
	local i
	for i in 1 2 3; do
		log_has "c$i.log" "$1" || return 1
	done
}
# waiters_for SECONDS: all three consumers wait for the grade table's lock,
# each for at least SECONDS
waiters_for() {
	[[ $(psql_q "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
		AND application_name LIKE 'gradeq-consumer%' AND wait_event_type = 'Lock'
		AND now() - state_change >= make_interval(secs => $1)") == 3 ]]
}
backoff_in_status() {
	"$ADMIN" --json status | jq -e --arg r "$RELEASE" '[.throttle[] | select(.release == $r)
		| .consumers[] | select(.state == "backoff" and .reason != "")] | length > 0' >/dev/null
}

"$ADMIN" throttle set --learners-per-s "$BUDGET" --release "$RELEASE" >/dev/null || die "throttle set failed"
for i in 1 2 3; do
	start_consumer "c$i.log" -c "$CONF"
done
wait_until 60 "every consumer counting three consumers at budget $BUDGET" all_logs 'consumers=3'

# a first run gives every consumer its latency baseline for the course
warm=$(publish_jobs -c "$CONF" --course "$SMALL" --batch-size 50)
wait_until 120 "run $warm complete" run_complete "$warm"
if grep -q 'event=throttled' "$WORK"/c?.log; then
	log "note: a back-off before the lock: $(grep -h 'event=throttled' "$WORK"/c?.log | head -n 3)"
fi
lines=()
for i in 1 2 3; do
	lines+=("$(wc -l <"$WORK/c$i.log")")
done

run=$(publish_jobs -c "$CONF" --course "$SMALL" --batch-size 50)
# a function, so that every poll reads the count again
run_started() {
	(($(psql_q "SELECT count(*) FROM gradeq_jobs WHERE run_id = '$1' AND state = 'complete'") > 0))
}
wait_until 60 "run $run started" run_started "$run"
lock_table
wait_until 60 "all three consumers held up by the lock for a second" waiters_for 1
unlock_table

# after_lock I REGEX: consumer I logged REGEX after the lock was taken
after_lock() {
	tail -n +"$((lines[$1 - 1] + 1))" "$WORK/c$1.log" | grep -Eq -- "$2"
}
all_after_lock() {
	local i
	for i in 1 2 3; do
		after_lock "$i" "$1" || return 1
	done
}
wait_until 60 "every consumer backing off with a reason" \
	all_after_lock 'level=warn .*event=throttled reason=(lock_waits|write_latency) rate=[0-9]'
grep -h 'event=throttled reason=' "$WORK"/c?.log | sed -E 's/.*(reason=[a-z_]+ rate=[0-9.a-z]+).*/\1/' |
	sort | uniq -c | while read -r n what; do log "$n x $what"; done
wait_until 60 "status showing a consumer backing off with its reason" backoff_in_status
wait_until 120 "every consumer back at its share of the budget" \
	all_after_lock 'event=throttled reason=recovered rate=200.0'
wait_until 120 "run $run complete" run_complete "$run"
check_exactly_once "$warm"
check_exactly_once "$run"
assert_fully_graded "$SMALL"
refcheck --course "$SMALL"

for pid in "${CONSUMER_PIDS[@]}"; do
	kill -TERM "$pid"
done
for pid in "${CONSUMER_PIDS[@]}"; do
	wait_exit "$pid" 30
	assert_eq "consumer exit status" 0 "$EXIT_STATUS"
done
log ok
