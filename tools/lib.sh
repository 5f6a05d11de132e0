# shellcheck shell=bash
# Common functions for the scripts in tools/. Source it; it sets no shell
# options of its own (the scripts use set -euo pipefail).

GRADEQ_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROG=${PROG:-$(basename "$0")}

die() {
	printf '%s: error: %s\n' "$PROG" "$*" >&2
	exit 1
}

warn() {
	printf '%s: warning: %s\n' "$PROG" "$*" >&2
}

info() {
	printf '%s: %s\n' "$PROG" "$*" >&2
}

need_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || die "'$c' not found; run tools/deps (as root)"
	done
}

# The throwaway directory that holds the local servers' state: .state in the
# repository, unless the servers' users (rabbitmq, postgres) could not reach
# it there: a clone inside a private (mode 700) directory then keeps its
# state in /var/tmp, under a name derived from the repository's path.
gradeq_state_dir() {
	if [[ -n ${GRADEQ_STATE_DIR:-} ]]; then
		printf '%s\n' "$GRADEQ_STATE_DIR"
		return
	fi
	local d=$GRADEQ_ROOT
	while [[ $d != / ]]; do
		if [[ $(stat -c %A "$d" 2>/dev/null) != ?????????[xt] ]]; then
			printf '/var/tmp/gradeq-state-%s\n' "$(printf '%s' "$GRADEQ_ROOT" | md5sum | cut -c1-12)"
			return
		fi
		d=$(dirname "$d")
	done
	printf '%s\n' "$GRADEQ_ROOT/.state"
}

# Install (as root) or check (otherwise) the Debian packages we need.
ensure_deps() {
	"$GRADEQ_ROOT/tools/deps"
}

# gradeq_build DIR [CMAKE_ARGS...] [-- TARGETS...]: configure and build
# into DIR (all targets unless some are named). Extra configure arguments
# also come from $GRADEQ_CMAKE_ARGS (split on whitespace).
gradeq_build() {
	local dir=$1
	shift
	local -a cargs=() targets=() extra=()
	while (($#)); do
		if [[ $1 == -- ]]; then
			shift
			targets=("$@")
			break
		fi
		cargs+=("$1")
		shift
	done
	if [[ -n ${GRADEQ_CMAKE_ARGS:-} ]]; then
		read -r -a extra <<<"$GRADEQ_CMAKE_ARGS"
	fi
	need_cmd cmake
	mkdir -p "$dir"
	info "building in ${dir#"$GRADEQ_ROOT"/}"
	if ! cmake -S "$GRADEQ_ROOT" -B "$dir" "${cargs[@]}" "${extra[@]}" >"$dir/configure.log" 2>&1; then
		tail -n 30 "$dir/configure.log" >&2
		die "cmake configure failed in $dir (log: $dir/configure.log)"
	fi
	local -a t=()
	((${#targets[@]})) && t=(--target "${targets[@]}")
	cmake --build "$dir" --parallel "$(nproc)" "${t[@]}" || die "build failed in $dir"
}

# The default build directory, honouring $GRADEQ_BUILD_DIR.
gradeq_build_dir() {
	printf '%s\n' "${GRADEQ_BUILD_DIR:-$GRADEQ_ROOT/build}"
}

# Start the project's servers (a no-op when they run) and export their
# environment: GRADEQ_AMQP_URL, GRADEQ_PG_DSN, GRADEQ_MGMT_URL, ...
ensure_servers() {
	"$GRADEQ_ROOT/tools/servers" start
	local envtext
	envtext=$("$GRADEQ_ROOT/tools/servers" env) || die "cannot read the servers' environment"
	eval "$envtext"
}

# pg_q SQL: run SQL against $GRADEQ_PG_DSN, print tuples only, unaligned,
# fields separated by '|'.
pg_q() {
	[[ -n ${GRADEQ_PG_DSN:-} ]] || die "GRADEQ_PG_DSN is not set (eval \"\$(tools/servers env)\")"
	psql -X -q -v ON_ERROR_STOP=1 -A -t -d "$GRADEQ_PG_DSN" -c "$1"
}

# mgmt_curl METHOD PATH [JSON]: call the RabbitMQ management HTTP API;
# PATH is relative to the API root, e.g. "api/overview". Prints the body;
# fails on an HTTP error. GRADEQ_MGMT_URL may be a comma-separated list (a
# cluster's nodes, tools/cluster env): the next is tried while one cannot
# be reached.
mgmt_curl() {
	local method=$1 path=$2 body=${3:-} base rc=7
	[[ -n ${GRADEQ_MGMT_URL:-} ]] || die "GRADEQ_MGMT_URL is not set (eval \"\$(tools/servers env)\")"
	local -a args=(-sS --fail-with-body --max-time 30 --connect-timeout 3 -X "$method"
		-H 'content-type: application/json' -K -) bases
	[[ -n $body ]] && args+=(--data "$body")
	IFS=, read -r -a bases <<<"$GRADEQ_MGMT_URL"
	for base in "${bases[@]}"; do
		# The credentials go through stdin, not the command line.
		rc=0
		curl "${args[@]}" "${base%/}/${path#/}" \
			<<<"user = \"${GRADEQ_MGMT_USER:-guest}:${GRADEQ_MGMT_PASSWORD:-guest}\"" || rc=$?
		# 7: cannot connect (a node that is down); anything else is the
		# answer (a request that timed out may have been done: not repeated)
		[[ $rc == 7 ]] || return "$rc"
	done
	return "$rc"
}

# --- shared by tools/servers and tools/cluster -------------------------------

# as USER CMD...: run CMD as USER (only root switches users).
as() {
	local u=$1
	shift
	if ((EUID == 0)) && [[ $u != root ]]; then
		runuser -u "$u" -- "$@"
	else
		"$@"
	fi
}

# shq VALUE: VALUE single-quoted for sh.
shq() {
	local s=${1//\'/\'\\\'\'}
	printf "'%s'" "$s"
}

gen_password() {
	local pw
	pw=$(head -c 64 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9' | head -c 24)
	[[ ${#pw} -eq 24 ]] || die "cannot generate a password"
	printf '%s\n' "$pw"
}

# tcp_open PORT: is something listening on 127.0.0.1:PORT?
tcp_open() {
	timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

EPMD=
find_epmd() {
	EPMD=$(command -v epmd || true)
	if [[ -z $EPMD ]]; then
		EPMD=$(find /usr/lib/erlang -path '*/bin/epmd' -type f 2>/dev/null | head -n1 || true)
	fi
	[[ -n $EPMD ]] || die "epmd not found; run tools/deps (as root)"
}
