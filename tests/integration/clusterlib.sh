# shellcheck shell=bash
# Its variables are for the tests that source it.
# shellcheck disable=SC2034
# Helpers of the cluster tests (8N-cluster-*.sh), on top of faillib.sh: a
# 3-node RabbitMQ cluster of the test's own (tools/cluster, with a state
# directory, node names and ports of its own), started by cluster_up and
# deleted when the test ends. PostgreSQL stays the one of tools/servers.
#
# The ports come from GRADEQ_TEST_CLUSTER_BASE_PORT (6040: AMQP 6041-6043,
# management 6051-6053, distribution 6061-6063, epmd 6070), clear of
# tools/servers' defaults; the cluster tests hold the CTest resource lock
# gradeq-cluster, so that only one such cluster runs at a time.

# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"

CLUSTER_DIR=$(gradeq_state_dir)/cluster-$TEST_NAME
CLUSTER_BASE=${GRADEQ_TEST_CLUSTER_BASE_PORT:-6040}
CLUSTER_PREFIX=gradeq-t${TEST_NAME%%-*}-
RABBITMQ_QUEUES_BIN=/usr/lib/rabbitmq/bin/rabbitmq-queues

# cluster ARGS: tools/cluster on the test's cluster.
cluster() {
	GRADEQ_CLUSTER_DIR=$CLUSTER_DIR GRADEQ_CLUSTER_BASE_PORT=$CLUSTER_BASE \
		GRADEQ_CLUSTER_PREFIX=$CLUSTER_PREFIX "$GRADEQ_SRC/tools/cluster" "$@"
}

_cluster_cleanup() {
	local rc=$?
	if [[ -d $CLUSTER_DIR ]]; then
		if ((rc != 0)); then
			local n
			for n in 1 2 3; do
				printf '==== node %s log (last 15 lines)\n' "$n" >&2
				tail -n 15 "$CLUSTER_DIR/n$n/log/${CLUSTER_PREFIX}$n@localhost.log" >&2 2>/dev/null || true
			done
		fi
		cluster reset >/dev/null 2>&1 || true
	fi
	# faillib's cleanup, with the test's status in $?
	set +e
	(exit "$rc")
	_fail_cleanup
	exit "$rc"
}
trap _cluster_cleanup EXIT

# cluster_up: a fresh cluster; GRADEQ_AMQP_URL and GRADEQ_MGMT_URL name its
# three nodes (comma-separated lists) and the test's vhost on it.
# CLUSTER_URLS holds the AMQP URLs, one per node.
cluster_up() {
	[[ -x $GRADEQ_SRC/tools/cluster ]] || skip "tools/cluster is missing"
	[[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]] || skip "rabbitmq-server is not installed"
	cluster reset >/dev/null 2>&1 || true
	cluster start >"$WORK/cluster-start.log" 2>&1 ||
		die "tools/cluster start failed: $(tail -n 5 "$WORK/cluster-start.log")"
	local envtext
	envtext=$(cluster env) || die "tools/cluster env failed"
	eval "$envtext"
	export RABBITMQ_CONF_ENV_FILE=$CLUSTER_DIR/n1/rabbitmq-env.conf
	mgmt_put "api/vhosts/$VH" '{}'
	mgmt_put "api/permissions/$VH/gradeq" '{"configure": ".*", "write": ".*", "read": ".*"}'
	local u
	CLUSTER_URLS=()
	IFS=, read -r -a CLUSTER_URLS <<<"$GRADEQ_AMQP_URL"
	for u in "${!CLUSTER_URLS[@]}"; do
		CLUSTER_URLS[u]=${CLUSTER_URLS[u]%/*}/$VH
	done
	GRADEQ_AMQP_URL=$(IFS=,; printf '%s' "${CLUSTER_URLS[*]}")
	export GRADEQ_AMQP_URL GRADEQ_MGMT_URL
}

# rabbitmq_ctl ARGS: rabbitmqctl on the cluster's first node that is up.
rabbitmq_ctl() {
	local n
	for n in 1 2 3; do
		if cluster pid "$n" >/dev/null 2>&1; then
			cluster ctl "$n" "$@"
			return
		fi
	done
	die "no node of the cluster is up"
}

# node_of NODENAME: the cluster's number (1-3) of a node name.
node_of() {
	local n=${1%%@*}
	printf '%s\n' "${n##*-}"
}

# queue_leader QUEUE: the node leading QUEUE, from the management API.
queue_leader() {
	mgmt_curl GET "api/queues/$VH/$(urlenc "$1")?columns=leader" | jq -r '.leader // empty'
}

# queue_members QUEUE: the members of QUEUE, sorted, comma-separated.
queue_members() {
	mgmt_curl GET "api/queues/$VH/$(urlenc "$1")?columns=members" | jq -r '.members // [] | sort | join(",")'
}

# connections_by_node: "NODE COUNT" lines of the vhost's AMQP connections
# (the consumers' and anything else connected).
connections_by_node() {
	mgmt_curl GET "api/vhosts/$VH/connections?columns=node" |
		jq -r '[.[].node] | group_by(.) | map("\(.[0]) \(length)") | .[]'
}

# --- consumers spread over the nodes, and recovery times -------------------

# consumer_nodes: "PID NODE" of each consumer's consuming connection
# (connection_name "gradeq-consumer release=R host=H pid=N role=consume").
consumer_nodes() {
	mgmt_curl GET "api/vhosts/$VH/connections?columns=node,client_properties" |
		jq -r '.[] | (.client_properties.connection_name // "") as $n
			| select($n | test("^gradeq-consumer .* role=consume"))
			| "\($n | capture("pid=(?<p>[0-9]+)").p) \(.node)"'
}

# consumers_connected N: N consumers have their consuming connection.
consumers_connected() {
	(($(consumer_nodes | wc -l) == $1))
}

# start_consumers N [ARGS...]: N consumers of the release (their pids in
# CONSUMERS), started again until their connections are on two nodes at
# least (each process shuffles the node list on its own: all on one node
# is rare, not impossible); returns once every one consumes.
start_consumers() {
	local n=$1 try i
	shift
	for ((try = 0; try < 5; try++)); do
		CONSUMERS=()
		for ((i = 0; i < n; i++)); do
			start_consumer "consumer-$i.log" "$@"
			CONSUMERS+=("$CONSUMER_PID")
		done
		wait_until 60 "$n consumers connected" consumers_connected "$n"
		(($(consumer_nodes | awk '{ print $2 }' | sort -u | wc -l) >= 2)) && return 0
		log "all $n consumers on one node; starting them again"
		for i in "${CONSUMERS[@]}"; do
			kill -TERM "$i" 2>/dev/null || true
			wait "$i" 2>/dev/null || true
		done
	done
	die "the consumers' connections never spread over two nodes"
}

# stop_consumers: SIGTERM every consumer; each must exit 0.
stop_consumers() {
	local p
	for p in "${CONSUMERS[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in "${CONSUMERS[@]}"; do
		wait_exit "$p" 120
		assert_eq "consumer $p exit status" 0 "$EXIT_STATUS"
	done
}

now_ms() { date +%s%3N; }

# completed_after RUN MS [PID]: the first completion of RUN after MS (ms
# since the epoch), from the job events (by PID's consumer when given), in
# ms since the epoch; empty when none. A consumer records itself as
# HOST:PID.
completed_after() {
	local by=${3:+" AND by ~ ':$3\$'"}
	psql_q "SELECT (extract(epoch FROM min(at)) * 1000)::bigint FROM gradeq_job_events
		WHERE run_id = '$1' AND to_state = 'complete' AND at > to_timestamp($2 / 1000.0)$by"
}

# percentiles NUMBERS...: "p50=N max=N" (nearest rank).
percentiles() {
	printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "p50=- max=-"; exit }
		i = int((NR + 1) / 2); printf "p50=%d max=%d\n", v[i], v[NR] }'
}

# fresh_completed_after RUN MS: the first completion (ms since the epoch)
# of a job of RUN whose grading started after MS: work delivered after a
# loss, not a job that was in hand when it happened.
fresh_completed_after() {
	psql_q "SELECT (extract(epoch FROM min(finished_at)) * 1000)::bigint FROM gradeq_jobs
		WHERE run_id = '$1' AND state = 'complete' AND started_at > to_timestamp($2 / 1000.0)"
}
