# shellcheck shell=bash
# Helpers for the integration tests (tests/integration/NN-name.sh).
#
# A test sources this file after `set -euo pipefail`. CTest runs the tests
# serially with GRADEQ_BIN (the build directory) and GRADEQ_SRC (the source
# tree) set; tools/test exports the servers' environment (GRADEQ_AMQP_URL,
# GRADEQ_PG_DSN, GRADEQ_MGMT_URL, ...). Run by hand, a test picks that
# environment up from tools/servers itself.

GRADEQ_SRC=${GRADEQ_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
GRADEQ_BIN=${GRADEQ_BIN:-${GRADEQ_BUILD_DIR:-$GRADEQ_SRC/build}}
TEST_NAME=$(basename "$0" .sh)
PROG=$TEST_NAME
# shellcheck source=tools/lib.sh
. "$GRADEQ_SRC/tools/lib.sh"

die() {
	printf 'FAIL %s: %s\n' "$TEST_NAME" "$*" >&2
	exit 1
}

# A test that cannot run here (exit 77; CTest counts it as skipped once the
# test has SKIP_RETURN_CODE 77).
skip() {
	printf 'SKIP %s: %s\n' "$TEST_NAME" "$*" >&2
	exit 77
}

log() {
	printf '%s: %s\n' "$TEST_NAME" "$*" >&2
}

if [[ -z ${GRADEQ_AMQP_URL:-} || -z ${GRADEQ_PG_DSN:-} || -z ${GRADEQ_MGMT_URL:-} ]]; then
	_env=$("$GRADEQ_SRC/tools/servers" env) ||
		die "the servers' environment is not set and tools/servers env failed; run tools/servers start"
	eval "$_env"
	unset _env
fi

# --- a vhost and a database of the test's own --------------------------------
#
# CTest runs the integration tests side by side on the same servers, so
# every test works in a vhost (TEST_VHOST, gradeq-t-NN-name) and a database
# (TEST_DBNAME, gradeq_t_NN_name) of its own: GRADEQ_AMQP_URL and
# GRADEQ_PG_DSN name them from here on, and the management helpers below
# default to the vhost. Both are made afresh when the test starts (the vhost
# with everything in it; the database only when missing: fresh_db empties
# it). A test that restarts the servers is marked RUN_SERIAL in
# CMakeLists.txt.

TEST_VHOST=${TEST_VHOST:-gradeq-t-$TEST_NAME}
TEST_DBNAME=${TEST_DBNAME:-gradeq_t_$(tr -c 'a-z0-9\n' '_' <<<"${TEST_NAME,,}")}

# _own_vhost: delete and create TEST_VHOST, give the servers' admin user
# every permission in it and point GRADEQ_AMQP_URL at it.
_own_vhost() {
	local v u
	v=$(urlenc "$TEST_VHOST")
	u=${GRADEQ_AMQP_URL#*://}
	u=${u%%@*}
	u=${u%%:*}
	mgmt_curl DELETE "api/vhosts/$v" >/dev/null 2>&1 || true
	mgmt_put "api/vhosts/$v" '{}'
	mgmt_put "api/permissions/$v/$(urlenc "$u")" '{"configure": ".*", "write": ".*", "read": ".*"}'
	if [[ $u != "${GRADEQ_MGMT_USER:-$u}" ]]; then
		mgmt_put "api/permissions/$v/$(urlenc "$GRADEQ_MGMT_USER")" \
			'{"configure": ".*", "write": ".*", "read": ".*"}'
	fi
	GRADEQ_AMQP_URL=${GRADEQ_AMQP_URL%/*}/$v
	export GRADEQ_AMQP_URL
}

# _own_database: create TEST_DBNAME when missing and point GRADEQ_PG_DSN
# (a libpq conninfo, as tools/servers env gives it) at it.
_own_database() {
	if [[ -z $(pg_q "SELECT 1 FROM pg_database WHERE datname = '$TEST_DBNAME'") ]]; then
		pg_q "CREATE DATABASE $TEST_DBNAME" >/dev/null 2>&1 ||
			[[ -n $(pg_q "SELECT 1 FROM pg_database WHERE datname = '$TEST_DBNAME'") ]] ||
			die "cannot create database $TEST_DBNAME"
	fi
	if [[ $GRADEQ_PG_DSN =~ (^|[[:space:]])dbname=[^[:space:]]* ]]; then
		GRADEQ_PG_DSN=$(sed -E "s/(^|[[:space:]])dbname=[^[:space:]]*/\\1dbname=$TEST_DBNAME/" <<<"$GRADEQ_PG_DSN")
	else
		GRADEQ_PG_DSN="$GRADEQ_PG_DSN dbname=$TEST_DBNAME"
	fi
	export GRADEQ_PG_DSN
}

# --- assertions ----------------------------------------------------------

# assert_eq WHAT EXPECTED ACTUAL
assert_eq() {
	[[ $2 == "$3" ]] || die "$1: expected '$2', got '$3'"
}

# assert_ne WHAT UNEXPECTED ACTUAL
assert_ne() {
	[[ $2 != "$3" ]] || die "$1: did not expect '$3'"
}

# assert_ge WHAT MIN ACTUAL (integers)
assert_ge() {
	[[ $3 =~ ^-?[0-9]+$ ]] || die "$1: '$3' is not an integer"
	(($3 >= $2)) || die "$1: expected at least $2, got $3"
}

# assert_match WHAT REGEX ACTUAL (bash extended regex)
assert_match() {
	[[ $3 =~ $2 ]] || die "$1: '$3' does not match /$2/"
}

# assert_ok WHAT CMD...: CMD must succeed.
assert_ok() {
	local what=$1
	shift
	"$@" || die "$what: '$*' failed (exit $?)"
}

# assert_fails WHAT CMD...: CMD must fail.
assert_fails() {
	local what=$1
	shift
	if "$@"; then
		die "$what: '$*' succeeded but should have failed"
	fi
}

# --- waiting -----------------------------------------------------------------

# wait_until TIMEOUT_SECONDS WHAT CMD...: run CMD every half second until it
# succeeds; fail the test after TIMEOUT_SECONDS. The timeout is a safety
# net, never the assertion: it is at least GRADEQ_TEST_PATIENCE seconds
# (180), since tests share a machine that may be loaded, and waiting longer
# costs nothing when the condition holds.
wait_until() {
	local timeout=$1 what=$2
	shift 2
	((timeout >= ${GRADEQ_TEST_PATIENCE:-180})) || timeout=${GRADEQ_TEST_PATIENCE:-180}
	local deadline=$((SECONDS + timeout))
	until "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || die "timed out after ${timeout}s waiting for: $what"
		sleep 0.5
	done
}

# --- PostgreSQL --------------------------------------------------------------

# psql_q SQL: tuples only, unaligned, fields separated by '|'.
psql_q() {
	pg_q "$1" || die "SQL failed: $1"
}

# fresh_db: an empty public schema, so that each test starts clean.
fresh_db() {
	psql_q "DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;" >/dev/null
}

# --- RabbitMQ ----------------------------------------------------------------

# urlenc STRING: percent-encoded for a management API path segment.
urlenc() {
	jq -rn --arg s "$1" '$s|@uri'
}

# mgmt_get PATH: GET from the management API (PATH like /api/queues), JSON
# on stdout.
mgmt_get() {
	mgmt_curl GET "$1" || die "management API GET $1 failed"
}

# mgmt_put PATH JSON / mgmt_delete PATH
mgmt_put() {
	mgmt_curl PUT "$1" "$2" >/dev/null || die "management API PUT $1 failed"
}
mgmt_delete() {
	mgmt_curl DELETE "$1" >/dev/null || die "management API DELETE $1 failed"
}

# queue_depth QUEUE [VHOST]: ready + unacknowledged messages, from the
# management API. These statistics lag by seconds on quorum queues (3-4 s
# seen on RabbitMQ 3.10): poll with wait_until, never conclude from one read.
# Prints -1 when the queue does not exist.
queue_depth() {
	local vhost=${2:-$TEST_VHOST} out
	if ! out=$(mgmt_curl GET "api/queues/$(urlenc "$vhost")/$(urlenc "$1")" 2>/dev/null); then
		echo -1
		return 0
	fi
	jq -r '((.messages_ready // 0) + (.messages_unacknowledged // 0))' <<<"$out"
}

# queue_depth_ctl QUEUE: the same from rabbitmqctl list_queues (lags too).
# Prints -1 when the queue does not exist.
queue_depth_ctl() {
	local out
	out=$(rabbitmq_ctl list_queues -p "$TEST_VHOST" -q --no-table-headers name messages_ready messages_unacknowledged) ||
		die "rabbitmqctl list_queues failed"
	awk -v q="$1" 'BEGIN { d = -1 } $1 == q { d = $2 + $3 } END { print d }' <<<"$out"
}

# rabbitmq_ctl ARGS: rabbitmqctl against the project's node.
rabbitmq_ctl() {
	"$GRADEQ_SRC/tools/servers" ctl "$@"
}

# queue_exists QUEUE [VHOST]
queue_exists() {
	mgmt_curl GET "api/queues/$(urlenc "${2:-$TEST_VHOST}")/$(urlenc "$1")" >/dev/null 2>&1
}

# fresh_vhost: delete every gradeq.* queue and the gradeq exchanges
# (gradeq, gradeq.*) in the test's vhost.
fresh_vhost() {
	local name
	while IFS= read -r name; do
		[[ -n $name ]] || continue
		mgmt_delete "api/queues/$VH/$(urlenc "$name")"
	done < <(mgmt_get "api/queues/$VH?columns=name" | jq -r '.[].name | select(startswith("gradeq."))')
	while IFS= read -r name; do
		[[ -n $name ]] || continue
		mgmt_delete "api/exchanges/$VH/$(urlenc "$name")"
	done < <(mgmt_get "api/exchanges/$VH?columns=name" | jq -r '.[].name | select(. == "gradeq" or startswith("gradeq."))')
}

# clear_release_queues R: delete release R's queues (work queue, retry tiers,
# dead queue) and nothing else, so tests of other releases are not disturbed.
clear_release_queues() {
	local name
	while IFS= read -r name; do
		[[ -n $name ]] || continue
		mgmt_delete "api/queues/$VH/$(urlenc "$name")"
	done < <(mgmt_get "api/queues/$VH?columns=name" |
		jq -r --arg q "gradeq.grades.$1" '.[].name | select(. == $q or startswith($q + "."))')
}

if [[ -z ${GRADEQ_TEST_SHARED:-} ]]; then
	_own_vhost
	_own_database
fi
# VH: the test's vhost, encoded for a management API path.
VH=$(urlenc "$TEST_VHOST")

# require_bin NAME: the path of program NAME in the build directory; skips
# the test when it has not been built.
require_bin() {
	local p=$GRADEQ_BIN/$1
	[[ -x $p ]] || skip "$1 is not built in $GRADEQ_BIN"
	printf '%s\n' "$p"
}
