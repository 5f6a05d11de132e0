#!/usr/bin/env bash
# The servers the other integration tests need are reachable: the AMQP port,
# the management API (including a quorum queue declaration, which the work
# queues depend on) and PostgreSQL through GRADEQ_PG_DSN.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# AMQP: the port of GRADEQ_AMQP_URL accepts connections.
hostport=${GRADEQ_AMQP_URL#*://}
hostport=${hostport#*@}
hostport=${hostport%%/*}
host=${hostport%:*}
port=${hostport##*:}
[[ $port =~ ^[0-9]+$ ]] || port=5672
timeout 5 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null ||
	die "nothing accepts connections on $host:$port (GRADEQ_AMQP_URL); run tools/servers start"

# AMQP handshake: the broker answers the protocol header with its own
# connection.start frame (type 1, channel 0).
reply=$(timeout 5 bash -c "exec 3<>/dev/tcp/$host/$port; printf 'AMQP\\x00\\x00\\x09\\x01' >&3; head -c 7 <&3 | od -An -tx1" 2>/dev/null || true)
assert_match "AMQP handshake on $host:$port" '^ *01 00 00' "$reply"

# Management API.
overview=$(mgmt_curl GET api/overview) ||
	die "the management API at $GRADEQ_MGMT_URL does not answer (user ${GRADEQ_MGMT_USER:-guest})"
version=$(jq -r .rabbitmq_version <<<"$overview")
assert_match "RabbitMQ version" '^[0-9]+\.[0-9]+' "$version"
log "RabbitMQ $version, node $(jq -r .node <<<"$overview")"

# A durable quorum queue can be declared, is of type quorum, and goes away.
q=gradeq.test.servers.$$
mgmt_put "api/queues/$VH/$q" '{"durable":true,"arguments":{"x-queue-type":"quorum"}}'
trap 'mgmt_curl DELETE "api/queues/$VH/$q" >/dev/null 2>&1 || true' EXIT
type=$(mgmt_get "api/queues/$VH/$q" | jq -r .type)
assert_eq "type of $q" quorum "$type"
mgmt_delete "api/queues/$VH/$q"
trap - EXIT
assert_fails "$q deleted" queue_exists "$q"

# PostgreSQL.
one=$(pg_q "select 1") || die "psql with GRADEQ_PG_DSN failed"
assert_eq "select 1" 1 "$one"
server_version=$(psql_q "show server_version_num")
assert_ge "PostgreSQL version" 150000 "$server_version"

log "ok"
