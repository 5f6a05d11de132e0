#!/usr/bin/env bash
# The shared throughput budget (gradeq-admin throttle):
#  1. With a budget and three consumers, the rate the run achieved (its
#     learners over the span of its job timings) is not above the budget by
#     more than 10% (an upper bound only: a slow machine passes).
#  2. A raise while a run is being graded reaches every consumer (their
#     event=throttle_applied line; the time it took is logged); status and
#     throttle show report the budget, the achieved rate and each consumer.
#  3. throttle off: every consumer paces no more (rate unlimited).
#  4. throttle schedule: a window around the server's local time sets the
#     budget (status shows it), one later does not; --clear lifts it.
# Every run's jobs complete exactly once and its grades are right.
set -euo pipefail
# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"

own_db gradeq_it_t52
fresh_release t52
LEARNERS=6000
BUDGET=400
seed small "$LEARNERS"
declare_topology

throttle() {
	"$ADMIN" throttle "$@" --release "$RELEASE" >>"$WORK/admin.log" 2>&1 ||
		die "gradeq-admin throttle $* failed: $(tail -n 3 "$WORK/admin.log")"
}
# all_logs REGEX: each of the three consumers' logs matches
all_logs() {
	local i
	for i in 1 2 3; do
		log_has "c$i.log" "$1" || return 1
	done
}
# achieved RUN: learners a second over the span of the run's job timings
achieved() {
	psql_q "SELECT round(sum(learners) / extract(epoch FROM max(finished_at) - min(started_at)))
		FROM gradeq_jobs WHERE run_id = '$1'"
}

throttle set --learners-per-s "$BUDGET"
# the budget alone sets the rate: no back-off, which a machine loaded by
# other work can trigger (distress), capping the rate below the budget and
# keeping it capped after "throttle off" (tests 53 and 54 cover back-off)
config "$WORK/t52.conf" 'throttle_backoff=false'
for i in 1 2 3; do
	start_consumer "c$i.log" -c "$WORK/t52.conf"
done
wait_until 60 "every consumer applying budget $BUDGET" all_logs "event=throttle_applied .*budget=$BUDGET.0"
# every share is a third once each consumer counted the other two
wait_until 60 "every consumer counting three consumers" all_logs 'consumers=3'

# 1. the budget holds for the sum of the three
run=$(publish_jobs --course "$SMALL" --batch-size 50)
wait_until 300 "run $run complete" run_complete "$run"
check_exactly_once "$run"
rate=$(achieved "$run")
log "budget $BUDGET learners/s, three consumers: achieved $rate learners/s"
((rate <= BUDGET * 110 / 100)) || die "achieved $rate learners/s, more than 10% above the budget $BUDGET"
refcheck --course "$SMALL"

# 2. a raise while a run is graded reaches every consumer
run=$(publish_jobs --course "$SMALL" --batch-size 50)
# a function, so that every poll counts again
one_complete() {
	(($(psql_q "SELECT count(*) FROM gradeq_jobs WHERE run_id = '$1' AND state = 'complete'") > 0))
}
wait_until 60 "run $run started" one_complete "$run"
t0=$(date +%s%3N)
throttle set --learners-per-s $((BUDGET * 3))
wait_until 30 "every consumer applying the raise" all_logs "event=throttle_applied .*budget=$((BUDGET * 3)).0"
latest=0
for i in 1 2 3; do
	ms=$(python3 -c 'import sys, datetime
for line in open(sys.argv[1]):
    if "event=throttle_applied" in line and "budget=" + sys.argv[2] + ".0" in line:
        ts = line.split()[0][3:]
        t = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
        print(int(t.timestamp() * 1000)); break' "$WORK/c$i.log" $((BUDGET * 3)))
	((ms - t0 > latest)) && latest=$((ms - t0))
done
log "raise to $((BUDGET * 3)) learners/s applied by all three consumers within $latest ms"
show=$("$ADMIN" --json throttle show --release "$RELEASE")
assert_eq "budget in throttle show" "$((BUDGET * 3))" "$(jq -r '.[0].learners_per_s' <<<"$show")"
wait_until 30 "run $run complete" run_complete "$run"
check_exactly_once "$run"
# status: the budget, the achieved rate and the three consumers' reports
status=$("$ADMIN" --json status)
jq -e --arg r "$RELEASE" '.throttle[] | select(.release == $r) |
	(.learners_per_s | type == "number") and (.achieved_learners_per_s | type == "number")
	and (.consumers | length == 3)' <<<"$status" >/dev/null ||
	die "status lacks the throttle of $RELEASE: $(jq -c .throttle <<<"$status")"
"$ADMIN" status | grep -Eq "^$RELEASE +budget=$((BUDGET * 3)) learners/s +achieved=" ||
	die "status text lacks the throttle line"

# 3. off: no pacing any more
throttle off
wait_until 30 "every consumer told the budget is off" all_logs 'event=throttle_applied .*budget=unlimited'
# a function, so that every poll reads the reports again
no_limit_reported() {
	[[ $("$ADMIN" --json throttle show --release "$RELEASE" |
		jq '[.[0].consumers[] | select(.rate == null)] | length') == 3 ]]
}
wait_until 30 "every consumer reporting no limit" no_limit_reported
run=$(publish_jobs --course "$SMALL" --batch-size 500)
wait_until 120 "run $run complete" run_complete "$run"
check_exactly_once "$run"
refcheck --course "$SMALL"
log "unthrottled: achieved $(achieved "$run") learners/s"

# 4. quiet hours: the window the server's local time is in sets the budget
now_win=$(psql_q "SELECT to_char(localtime - interval '1 hour', 'HH24:MI') || '-' ||
	to_char(localtime + interval '1 hour', 'HH24:MI')")
later_win=$(psql_q "SELECT to_char(localtime + interval '3 hours', 'HH24:MI') || '-' ||
	to_char(localtime + interval '4 hours', 'HH24:MI')")
"$ADMIN" throttle schedule --release "$RELEASE" "$now_win=700" "$later_win=1" >>"$WORK/admin.log" 2>&1 ||
	die "throttle schedule failed: $(tail -n 3 "$WORK/admin.log")"
wait_until 30 "every consumer applying the window's budget" all_logs 'event=throttle_applied .*budget=700.0 '
"$ADMIN" --json status | jq -e --arg r "$RELEASE" '.throttle[] | select(.release == $r) |
	.effective_learners_per_s == 700 and (.schedule | length == 2)' >/dev/null ||
	die "status does not show the schedule: $("$ADMIN" --json throttle show --release "$RELEASE")"
unlimited_twice() {
	local i
	for i in 1 2 3; do
		(($(grep -c 'event=throttle_applied .*budget=unlimited' "$WORK/c$i.log") >= 2)) || return 1
	done
}
"$ADMIN" throttle schedule --release "$RELEASE" --clear >>"$WORK/admin.log" 2>&1 || die "schedule --clear failed"
wait_until 30 "every consumer unlimited again once the schedule is cleared" unlimited_twice

# a throttle of another release is none of these consumers' business
"$ADMIN" throttle set --learners-per-s 1 --release t52-other >>"$WORK/admin.log" 2>&1 || die "throttle set t52-other failed"
for i in 1 2 3; do
	kill -TERM "${CONSUMER_PIDS[$((i - 1))]}"
done
for i in 1 2 3; do
	wait_exit "${CONSUMER_PIDS[$((i - 1))]}" 30
	assert_eq "consumer $i exit status" 0 "$EXIT_STATUS"
done
# the jobs a group holds (basic.get, unacked) are consumers of their own
# to a quorum queue: the share must not count them
over=$(grep -h 'event=throttle_share' "$WORK"/c?.log | grep -Eo 'consumers=[0-9]+' | cut -d= -f2 | sort -n | tail -n 1)
((over <= 3)) || die "a consumer counted $over consumers of three: $(grep -h "consumers=$over " "$WORK"/c?.log | head -n 1)"
if grep -qF 'budget=1.0 ' "$WORK"/c?.log; then
	die "a consumer applied another release's budget"
fi
log ok
