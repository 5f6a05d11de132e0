#!/usr/bin/env bash
# The broker cancels a consumer (basic.cancel): the consumer advertises
# consumer_cancel_notify, so deleting its work queue through the management
# API reaches it at once. It logs the cancel, declares the release's
# topology again and consumes the new queue: a job published afterwards is
# graded. When the registry says the release was retired, the consumer does
# not bring its queues back: it exits non-zero with one clear error.
set -euo pipefail
# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"

own_db gradeq_it_f44
fresh_release f44
seed small 200
declare_topology
# a first run records the release in the registry (active)
run=$(publish_jobs --course "$SMALL" --batch-size 100)
"$CONSUMER" --release "$RELEASE" --drain >"$WORK/first.log" 2>&1 || die "the first run failed"
run_complete "$run" || die "run $run not complete"

consuming_count() {
	grep -c 'event=consuming ' "$WORK/consumer.log" || true
}
consuming_again() {
	(($(consuming_count) >= $1))
}

start_consumer consumer.log
pid=$CONSUMER_PID
wait_until 30 "the consumer consuming" log_has consumer.log "event=consuming queue=$(work_queue)"

# the capability is what makes the broker tell the consumer
caps=$(rabbitmq_ctl list_connections -q --no-table-headers client_properties | grep -F "pid=$pid role=consume" || true)
[[ $caps == *'{"consumer_cancel_notify",true}'* ]] ||
	die "the consuming connection does not advertise consumer_cancel_notify: $caps"
[[ $caps == *'{"connection.blocked",true}'* ]] ||
	die "the consuming connection does not advertise connection.blocked: $caps"

# 1. The work queue deleted under a waiting consumer: resumed on a new one.
t0=$(date +%s%3N)
mgmt_delete "api/queues/$VH/$(urlenc "$(work_queue)")"
wait_until 30 "the cancel logged" log_has consumer.log "event=consumer_canceled queue=$(work_queue)"
wait_until 30 "the consumer consuming again" consuming_again 2
resumed=$(log_ms consumer.log consuming "$(grep -n -m1 'event=consumer_canceled' "$WORK/consumer.log" | cut -d: -f1)")
log_has consumer.log "event=topology_redeclare release=$RELEASE reason=consumer_canceled registry=active" ||
	die "the re-declare was not logged"
queue_exists "$(work_queue)" || die "$(work_queue) was not declared again"
kill -0 "$pid" 2>/dev/null || die "the consumer exited after the cancel"
run=$(publish_jobs --course "$SMALL" --batch-size 100)
wait_until 60 "run $run complete" run_complete "$run"
check_exactly_once "$run"
log "queue deleted: consuming the re-declared queue $((resumed - t0)) ms after the delete request"

# 2. Retired in the registry, then the queue deleted: exit with the error.
psql_q "UPDATE gradeq_releases SET state = 'retired' WHERE name = '$RELEASE'" >/dev/null
mgmt_delete "api/queues/$VH/$(urlenc "$(work_queue)")"
wait_exit "$pid" 60
assert_ne "exit status of a consumer whose release was retired" 0 "$EXIT_STATUS"
errors=$(grep -c 'gradeq-consumer: error: ' "$WORK/consumer.log" || true)
assert_eq "error lines" 1 "$errors"
log_has consumer.log "gradeq-consumer: error: release '$RELEASE' was retired" ||
	die "no clear error for the retired release"
queue_exists "$(work_queue)" && die "the retired release's work queue was declared again"
log "retired release: exit status $EXIT_STATUS, one error line"
log ok
