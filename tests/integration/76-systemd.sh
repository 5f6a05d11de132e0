#!/usr/bin/env bash
# systemd: the consumer unit passes systemd-analyze verify (with the build's
# program and man pages in place of the installed ones), and the consumer
# speaks the notify protocol on NOTIFY_SOCKET: READY=1 once consuming,
# RELOADING=1 then READY=1 on SIGHUP, STOPPING=1 on SIGTERM, then exit 0.
#
# Environment: VHOST (default gradeq-t76), DB (default gradeq_t76).
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/prodlib.sh
. "$(dirname "${BASH_SOURCE[0]}")/prodlib.sh"

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
	exit 0
fi
VHOST=${VHOST:-gradeq-t76}
DB=${DB:-gradeq_t76}
RELEASE=t76-$$-$RANDOM
ADMIN=$(require_bin gradeq-admin)
CONSUMER=$(require_bin gradeq-consumer)
[[ $(ldd "$CONSUMER") == *libsystemd* ]] || skip "built without libsystemd (libsystemd-dev)"
WORK=$(mktemp -d)
PID=
cleanup() {
	if [[ -n $PID ]]; then kill -KILL "$PID" 2>/dev/null || true; fi
	mgmt_curl DELETE "api/vhosts/$(urlenc "$VHOST")" >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT

# --- the unit -----------------------------------------------------------------
if command -v systemd-analyze >/dev/null; then
	mkdir -p "$WORK/man/man1" "$WORK/man/man5"
	cp "$GRADEQ_SRC"/packaging/man/*.1 "$WORK/man/man1/"
	cp "$GRADEQ_SRC"/packaging/man/*.5 "$WORK/man/man5/"
	for unit in "$GRADEQ_SRC"/packaging/systemd/*.service; do
		sed "s#/usr/bin/#$GRADEQ_BIN/#g" "$unit" >"$WORK/$(basename "$unit")"
		if ! MANPATH=$WORK/man systemd-analyze verify "$WORK/$(basename "$unit")" \
			>"$WORK/verify.out" 2>&1 || [[ -s $WORK/verify.out ]]; then
			die "systemd-analyze verify $(basename "$unit"): $(cat "$WORK/verify.out")"
		fi
	done
	grep -q '^Type=notify$' "$GRADEQ_SRC/packaging/systemd/gradeq-consumer@.service" ||
		die "the consumer unit is not Type=notify"
	log "systemd-analyze verify: clean"
else
	log "systemd-analyze not found: unit not verified"
fi

# --- the protocol -----------------------------------------------------------------
mgmt_put "api/vhosts/$(urlenc "$VHOST")" '{}'
mgmt_put "api/permissions/$(urlenc "$VHOST")/$(urlenc "${GRADEQ_MGMT_USER:-gradeq}")" \
	'{"configure": ".*", "write": ".*", "read": ".*"}'
GRADEQ_AMQP_URL=$(amqp_url_as "${GRADEQ_MGMT_USER:-gradeq}" "$GRADEQ_MGMT_PASSWORD" "$VHOST")
export GRADEQ_AMQP_URL
own_db "$DB"
"$ADMIN" migrate --with-input-tables >/dev/null 2>&1 || die "migrate failed"

# A datagram socket that writes each message it receives on a line.
"$PY" - "$WORK/notify.sock" >"$WORK/notify.log" <<'PYEOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(60)
try:
    while True:
        print(s.recv(4096).decode().replace("\n", " "), flush=True)
except socket.timeout:
    pass
PYEOF
LISTENER=$!
wait_until 10 "the notify socket" test -S "$WORK/notify.sock"
got() {
	grep -qx "$1" "$WORK/notify.log"
}
cd "$GRADEQ_SRC"
NOTIFY_SOCKET=$WORK/notify.sock "$CONSUMER" --release "$RELEASE" 2>"$WORK/consumer.log" &
PID=$!
wait_until 30 "READY=1" got READY=1
kill -HUP "$PID"
wait_until 10 "RELOADING=1" got RELOADING=1
wait_until 10 "READY=1 after the reload" bash -c "[[ \$(grep -cx READY=1 '$WORK/notify.log') -ge 2 ]]"
kill -TERM "$PID"
wait_until 20 "STOPPING=1" got STOPPING=1
wait "$PID" || die "the consumer exited $? on SIGTERM"
PID=
kill "$LISTENER" 2>/dev/null || true
assert_eq "notifications in order" "READY=1 RELOADING=1 READY=1 STOPPING=1" "$(tr '\n' ' ' <"$WORK/notify.log" | sed 's/ $//')"
log "notify: READY=1, RELOADING=1, READY=1, STOPPING=1"
log "PASS"
