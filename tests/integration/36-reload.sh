#!/usr/bin/env bash
# SIGHUP applies every setting a reload may change, keeps the others (logged
# as needing a restart) and keeps the whole old configuration when the new
# file does not load.
#  1. log_level info: a job leaves no debug line.
#  2. A file with a syntax error: event=reload_failed, nothing changes.
#  3. log_level debug, statement_timeout_ms 1000, prefetch 2: the first two
#     apply (debug lines for the next job; a job held by a lock on the grade
#     table fails with a statement timeout instead of waiting the 300 s of
#     the old one), prefetch is logged as needing a restart.
set -euo pipefail
# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"

own_db gradeq_it_f36
fresh_release f36
seed small 200
CONF=$WORK/f36.conf
config "$CONF" 'retry_tiers=[1, 2]' 'log_level="info"'
PUB=$WORK/publish.conf # the producer's, unchanged throughout
cp "$CONF" "$PUB"
declare_topology -c "$CONF"

count_lines() {
	grep -c -- "$1" "$WORK/consumer.log" || true
}
lines_at_least() {
	(($(count_lines "$1") >= $2))
}
# hup N: SIGHUP, then wait for the consumer's Nth answer to one
hup() {
	kill -HUP "$pid"
	wait_until 30 "reload $1 handled" lines_at_least 'event=reload\(ed\|_failed\)' "$1"
}

start_consumer consumer.log -c "$CONF"
pid=$CONSUMER_PID
wait_until 30 "the consumer consuming" log_has consumer.log 'event=consuming'

# 1. info: no debug line
run=$(publish_jobs -c "$PUB" --course "$SMALL" --batch-size 1000)
wait_until 30 "run $run complete" run_complete "$run"
assert_eq "debug lines at log_level info" 0 "$(count_lines 'level=debug')"

# 2. a bad file keeps the old configuration
printf 'log_level = "debug"\nstatement_timeout_ms = \n' >"$CONF"
hup 1
log_has consumer.log 'event=reload_failed .*keeping=old' || die "no event=reload_failed"
run=$(publish_jobs -c "$PUB" --course "$SMALL" --batch-size 1000)
wait_until 30 "run $run complete" run_complete "$run"
assert_eq "debug lines after a failed reload" 0 "$(count_lines 'level=debug')"

# 3. reloadable settings apply, prefetch needs a restart
config "$CONF" 'retry_tiers=[1, 2]' 'log_level="debug"' 'statement_timeout_ms=1000' 'prefetch=2'
hup 2
log_has consumer.log 'event=reloaded changed=statement_timeout_ms,log_level' ||
	die "the reload did not apply statement_timeout_ms and log_level"
log_has consumer.log 'level=warn .*event=reload_needs_restart settings=prefetch keeping=old' ||
	die "the prefetch change was not logged as needing a restart"

run=$(publish_jobs -c "$PUB" --course "$SMALL" --batch-size 1000)
wait_until 30 "run $run complete" run_complete "$run"
assert_ge "debug lines at log_level debug" 1 "$(count_lines 'level=debug .*event=delivery')"

lock_table
run=$(publish_jobs -c "$PUB" --course "$SMALL" --batch-size 1000)
job=$(psql_q "SELECT job_id FROM gradeq_jobs WHERE run_id = '$run'")
wait_until 30 "job $job retried after a statement timeout" \
	log_has consumer.log "event=job_retry job=$job .*statement timeout"
unlock_table
wait_until 30 "run $run complete" run_complete "$run"
check_exactly_once "$run"

kill -TERM "$pid"
wait_exit "$pid" 30
assert_eq "consumer exit status after SIGTERM" 0 "$EXIT_STATUS"
log ok
