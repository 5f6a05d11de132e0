#!/usr/bin/env bash
# Queue placement on a 3-node cluster: a release's quorum queues are created
# on all three nodes with their leaders spread (quorum_group_size 3,
# queue_leader_locator balanced); gradeq-admin release list shows members
# and leaders; changing the placement settings for an existing release does
# not make a declare fail (the queue keeps what it was declared with);
# gradeq-admin release rebalance grows a release created on fewer nodes
# onto all of them and spreads its leaders, and the grown queues work.
set -euo pipefail
# shellcheck source=tests/integration/clusterlib.sh
. "$(dirname "${BASH_SOURCE[0]}")/clusterlib.sh"

cluster_up
admin() { "$ADMIN" "$@"; }
own_db gradeq_t81_placement
seed small 30

# --- a release promoted with the defaults ----------------------------------
fresh_release t81a
admin release promote t81a >/dev/null 2>"$WORK/promote.log" || die "promote failed"
all="${CLUSTER_PREFIX}1@localhost,${CLUSTER_PREFIX}2@localhost,${CLUSTER_PREFIX}3@localhost"
placed_on_all() {
	local q
	for q in gradeq.grades.t81a gradeq.grades.t81a.retry.5s gradeq.grades.t81a.dead; do
		[[ $(queue_members "$q") == "$all" ]] || return 1
	done
}
wait_until 60 "t81a's queues on all three nodes" placed_on_all
qargs=$(mgmt_get "api/queues/$VH/gradeq.grades.t81a" | jq -c .arguments)
assert_eq "group size argument" 3 "$(jq -r '."x-quorum-initial-group-size"' <<<"$qargs")"
assert_eq "leader locator argument" balanced "$(jq -r '."x-queue-leader-locator"' <<<"$qargs")"

# release list shows each queue's members and leader (the management API's
# statistics lag: wait for them)
listed() {
	admin release list --json 2>/dev/null | jq -e '.[] | select(.name == "t81a")
		| (.queues | length) == 5 and all(.queues[]; (.members | length) == 3 and (.leader | type) == "string")' >/dev/null
}
wait_until 60 "release list --json shows t81a's five queues placed" listed
json=$(admin release list --json 2>/dev/null)
leaders=$(jq -r '.[] | select(.name == "t81a") | [.queues[].leader] | unique | length' <<<"$json")
log "t81a's five queues have $leaders distinct leaders: $(jq -c '[.[] | select(.name == "t81a") | .queues[] | {name, leader}]' <<<"$json")"
assert_ge "distinct leaders of t81a's queues (balanced)" 2 "$leaders"
text=$(admin release list 2>/dev/null)
assert_match "release list shows a leader and members" \
	"gradeq\.grades\.t81a +leader ${CLUSTER_PREFIX}[123]@localhost +members [^ ]+,[^ ]+,[^ ]+" "$text"

# --- other placement settings for the same release --------------------------
config "$WORK/small.conf" quorum_group_size=1 'queue_leader_locator="client-local"' delivery_limit=7
"$CONSUMER" -c "$WORK/small.conf" --release t81a --drain >"$WORK/redeclare.log" 2>&1 ||
	die "a consumer with other placement settings failed on the existing queues: $(tail -n 3 "$WORK/redeclare.log")"
assert_eq "t81a keeps its members" "$all" "$(queue_members gradeq.grades.t81a)"
qargs=$(mgmt_get "api/queues/$VH/gradeq.grades.t81a" | jq -c .arguments)
assert_eq "t81a keeps its group size argument" 3 "$(jq -r '."x-quorum-initial-group-size"' <<<"$qargs")"
assert_eq "t81a keeps its delivery limit" 5 "$(jq -r '."x-delivery-limit"' <<<"$qargs")"

# --- a release made on one node, then rebalanced ------------------------------
fresh_release t81b
admin -c "$WORK/small.conf" release promote t81b >/dev/null 2>>"$WORK/promote.log" || die "promote t81b failed"
one_member() { [[ $(queue_members gradeq.grades.t81b) =~ ^[^,]+$ ]]; }
wait_until 60 "t81b's work queue on one node" one_member
run=$(publish_jobs --course "$SMALL" --batch-size 7)
export GRADEQ_RABBITMQ_QUEUES=$RABBITMQ_QUEUES_BIN
admin release rebalance t81b --dry-run >"$WORK/dry.out" 2>"$WORK/dry.log" || die "rebalance --dry-run failed"
assert_match "dry run names add_member" "add_member --vhost $TEST_VHOST gradeq\.grades\.t81b ${CLUSTER_PREFIX}" "$(cat "$WORK/dry.out")"
assert_eq "dry run leaves the queue alone" 1 "$(queue_members gradeq.grades.t81b | tr ',' '\n' | wc -l)"
admin release rebalance t81b --json >"$WORK/rebalance.json" 2>"$WORK/rebalance.log" ||
	die "release rebalance failed: $(tail -n 5 "$WORK/rebalance.log")"
assert_eq "members added (2 for each of 5 queues)" 10 "$(jq '.added | length' "$WORK/rebalance.json")"
assert_eq "leaders rebalanced" true "$(jq -r .leaders_rebalanced "$WORK/rebalance.json")"
grown() {
	local q
	for q in gradeq.grades.t81b gradeq.grades.t81b.retry.5s gradeq.grades.t81b.retry.30s \
		gradeq.grades.t81b.retry.300s gradeq.grades.t81b.dead; do
		[[ $(queue_members "$q") == "$all" ]] || return 1
	done
}
wait_until 60 "t81b's queues grown onto all three nodes" grown
# a second rebalance has nothing to add
admin release rebalance t81b --json >"$WORK/rebalance2.json" 2>"$WORK/rebalance2.log" ||
	die "second rebalance failed: $(grep -v "^.(0" "$WORK/rebalance2.log" | tail -n 4)"
assert_eq "nothing left to add" 0 "$(jq '.added | length' "$WORK/rebalance2.json")"

# the jobs published before the growth are graded from the grown queue
"$CONSUMER" --release t81b --drain >"$WORK/consumer.log" 2>&1 || die "consumer failed"
check_exactly_once "$run"
refcheck --course "$SMALL"

# --- what the command refuses --------------------------------------------
assert_fails "rebalance of an unknown release" admin release rebalance t81-none
err=$(admin release rebalance t81-none 2>&1 || true)
assert_match "error names the release" "release 't81-none' is not known" "$err"
# --- the events log's node down ----------------------------------------------
# gradeq.events.log is a classic queue: it lives on one node. While that
# node is down, programs start and work without it.
home=$(mgmt_get "api/queues/$VH/gradeq.events.log?columns=node" | jq -r .node)
hn=$(node_of "$home")
cluster stop-node "$hn"
log "stopped node $hn, home of gradeq.events.log"
run2=$(publish_jobs --course "$SMALL" --batch-size 10)
"$CONSUMER" --release t81b --drain >"$WORK/consumer2.log" 2>&1 ||
	die "a consumer failed while the events log's node was down: $(tail -n 3 "$WORK/consumer2.log")"
log_has consumer2.log 'event=events_log_unavailable' || die "the consumer did not say the events log is unavailable"
check_exactly_once "$run2"
cluster start-node "$hn"
log "placement on the cluster checked"
