#!/usr/bin/env bash
# amqp_url as a list of nodes: a consumer and a publisher given nodes that
# are down besides the one that is up pass over the dead ones and work
# (each process shuffles the list, so either may meet a dead node first);
# check-config shows the list with its passwords masked. A consumer whose
# only node is down keeps trying with backoff, and a SIGTERM while it
# reconnects still ends with event=stopped and exit status 0.
set -euo pipefail
# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"

own_db gradeq_it_f45
fresh_release f45
seed small 300

# two ports nothing listens on: nodes that are down (refused at once)
read -r port1 port2 < <(python3 -c 'import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
good=$GRADEQ_AMQP_URL
rest=${good#*://}
creds=${rest%%@*}
vhost=${good##*/}
down1="amqp://$creds@127.0.0.1:$port1/$vhost"
down2="amqp://$creds@127.0.0.1:$port2/$vhost"

# check-config: the list, masked
out=$(GRADEQ_AMQP_URL="$down1, $good,$down2" "$ADMIN" check-config --json) || die "check-config refused the list"
assert_eq "amqp_url entries" 3 "$(jq '.settings.amqp_url | length' <<<"$out")"
if [[ $creds == *:* ]]; then
	[[ $out != *"${creds#*:}@"* ]] || die "check-config shows a password"
	assert_match "masked entry" '^amqp://[^:]*:\*\*\*\*@' "$(jq -r '.settings.amqp_url[1]' <<<"$out")"
fi
GRADEQ_AMQP_URL="$good,amqp://someone-else@127.0.0.1:$port1/$vhost" "$ADMIN" check-config \
	>/dev/null 2>"$WORK/cc.err" && die "check-config took two users"
grep -q "every node of the list must take the same user" "$WORK/cc.err" ||
	die "no clear error for two users: $(cat "$WORK/cc.err")"

# 1. Publisher and consumer on the list: the dead nodes are passed over.
export GRADEQ_AMQP_URL="$down1,$down2,$good"
declare_topology
run=$(publish_jobs --course "$SMALL" --batch-size 50)
start_consumer consumer.log
pid=$CONSUMER_PID
wait_until 60 "run $run complete" run_complete "$run"
check_exactly_once "$run"
kill -TERM "$pid"
wait_exit "$pid" 30
assert_eq "exit status on SIGTERM" 0 "$EXIT_STATUS"
log "list of three nodes, two down: run graded"

# 2. The only node down: the consumer retries; SIGTERM while it does.
export GRADEQ_AMQP_URL="$down1"
start_consumer lost.log
pid=$CONSUMER_PID
wait_until 30 "the consumer reporting the broker unavailable" log_has lost.log 'event=broker_unavailable'
kill -TERM "$pid"
wait_exit "$pid" 30
assert_eq "exit status on SIGTERM while reconnecting" 0 "$EXIT_STATUS"
log_has lost.log 'event=stopped release=f45' || die "no event=stopped after SIGTERM while reconnecting"
log_has lost.log 'level=error' && die "an error logged on a clean stop: $(grep 'level=error' "$WORK/lost.log")"
log "SIGTERM while reconnecting: event=stopped, exit 0"
log ok
