#!/usr/bin/env bash
# Secrets never on a command line: a publish and a consumer run with the
# broker password in amqp_password_file and the database password in a
# pgpass file, while every process's /proc/PID/cmdline is sampled; neither
# password may appear in any. A configuration file readable by every user
# that holds a password is warned about on stderr by every program.
#
# Environment: VHOST (default gradeq-t72), DB (default gradeq_t72).
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/prodlib.sh
. "$(dirname "${BASH_SOURCE[0]}")/prodlib.sh"

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
	exit 0
fi

VHOST=${VHOST:-gradeq-t72}
DB=${DB:-gradeq_t72}
RELEASE=t72-$$-$RANDOM
need_cmd psql jq curl timeout
ADMIN=$(require_bin gradeq-admin)
PUBLISH=$(require_bin gradeq-publish)
CONSUMER=$(require_bin gradeq-consumer)
cd "$GRADEQ_SRC"
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"

WORK=$(mktemp -d)
PIDS=()
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	mgmt_curl DELETE "api/vhosts/$(urlenc "$VHOST")" >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT

mgmt_put "api/vhosts/$(urlenc "$VHOST")" '{}'
USER=${GRADEQ_MGMT_USER:-gradeq}
mgmt_put "api/permissions/$(urlenc "$VHOST")/$(urlenc "$USER")" \
	'{"configure": ".*", "write": ".*", "read": ".*"}'
own_db "$DB"
"$ADMIN" migrate --with-input-tables >/dev/null 2>&1 || die "migrate failed"
"$ADMIN" seed --courses small --learners 1500 >/dev/null 2>&1 || die "seed failed"

AMQP_PW=$GRADEQ_MGMT_PASSWORD
# tools/servers keeps the database password in a pgpass file (PGPASSFILE),
# so that no DSN handed to psql or gradeq holds it.
[[ $GRADEQ_PG_DSN != *password=* ]] || die "GRADEQ_PG_DSN holds a password"
PG_PW=$(cut -d: -f5- "${PGPASSFILE:?PGPASSFILE is not set}")
[[ -n $AMQP_PW && -n $PG_PW ]] || die "cannot find the servers' passwords"

# The broker password in a file of its own; the URL without one.
(umask 077 && printf '%s\n' "$AMQP_PW" >"$WORK/amqp.pw")
(umask 077 && cat >"$WORK/gradeq.conf" <<EOF
amqp_url = "amqp://$USER@127.0.0.1:${GRADEQ_AMQP_PORT:-5673}/$(urlenc "$VHOST")";
amqp_password_file = "$WORK/amqp.pw";
EOF
)
unset GRADEQ_AMQP_URL

# scan: the command line of every process on the machine (gradeq's programs,
# this test's helpers, psql); prints how many gradeq programs were seen.
scan() {
	local d cmd n=0
	for d in /proc/[0-9]*; do
		cmd=$(tr '\0' ' ' 2>/dev/null <"$d/cmdline") || continue
		[[ $cmd == *gradeq-publish* || $cmd == *gradeq-consumer* ]] && n=$((n + 1))
		if [[ $cmd == *"$AMQP_PW"* || $cmd == *"$PG_PW"* ]]; then
			cmd=${cmd//"$AMQP_PW"/<amqp password>}
			die "a password is on the command line of pid ${d#/proc/}: ${cmd//"$PG_PW"/<pg password>}"
		fi
	done
	echo "$n"
}

# The programs' lifetime is part of the test, not a race with the sampler:
# a transaction of the test's own holds an exclusive lock on the enrollments,
# so the publish waits on it while both programs are sampled; the lock is
# released only after the samples.
mkfifo "$WORK/lock.fifo"
psql -X -q -v ON_ERROR_STOP=1 -d "$GRADEQ_PG_DSN" <"$WORK/lock.fifo" >"$WORK/lock.out" 2>&1 &
PIDS+=($!)
exec 7>"$WORK/lock.fifo"
printf 'BEGIN;\nLOCK TABLE student_courseenrollment IN ACCESS EXCLUSIVE MODE;\n' >&7
lock_count() { # lock_count GRANTED: locks on the enrollments held (true) or awaited (false)
	psql_q "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
		WHERE l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND c.relname = 'student_courseenrollment' AND l.granted = $1"
}
lock_held() { (($(lock_count true) >= 1)); }
wait_until 60 "the test's lock on the enrollments" lock_held

"$CONSUMER" -c "$WORK/gradeq.conf" --release "$RELEASE" 2>"$WORK/consumer.log" &
PIDS+=($!)
CONSUMER_PID=$!
"$PUBLISH" -c "$WORK/gradeq.conf" --release "$RELEASE" --all-courses --batch-size 5 -q \
	>"$WORK/pub.out" 2>"$WORK/pub.err" &
PIDS+=($!)
PUB_PID=$!
wait_until 120 "the consumer to consume" grep -q 'event=consuming' "$WORK/consumer.log"
until (($(lock_count false) >= 1)); do
	kill -0 "$PUB_PID" 2>/dev/null || die "publish ended before it read the enrollments: $(cat "$WORK/pub.err")"
	sleep 0.2
done
samples=0
for _ in 1 2 3; do
	if ! kill -0 "$PUB_PID" || ! kill -0 "$CONSUMER_PID"; then
		die "a program ended while it should wait on the lock"
	fi
	n=$(scan)
	samples=$((samples + 1))
	assert_ge "gradeq programs seen in a sample" 2 "$n"
done
printf 'COMMIT;\n' >&7
exec 7>&-

wait "$PUB_PID" || die "publish failed: $(cat "$WORK/pub.err")"
deadline=$((SECONDS + 120))
until [[ $(psql_q "SELECT count(*) FROM gradeq_jobs WHERE state <> 'complete'") == 0 ]]; do
	((SECONDS < deadline)) || die "the consumer did not finish: $(tail -n 3 "$WORK/consumer.log")"
	scan >/dev/null
	samples=$((samples + 1))
done
assert_eq "course grades" 1500 "$(psql_q "SELECT count(*) FROM grades_persistentcoursegrade")"
kill -TERM "$CONSUMER_PID"
wait "$CONSUMER_PID" || die "consumer exited non-zero on SIGTERM"
PIDS=()
log "no password in any of $samples samples of every command line (3 with both programs held running)"

# A world-readable file with a password: every program says so on stderr.
cat >"$WORK/loose.conf" <<EOF
amqp_url = "amqp://$USER:$AMQP_PW@127.0.0.1:${GRADEQ_AMQP_PORT:-5673}/$(urlenc "$VHOST")";
EOF
chmod 644 "$WORK/loose.conf"
"$ADMIN" -c "$WORK/loose.conf" status >/dev/null 2>"$WORK/err" || true
assert_match "warning for a world-readable file" \
	"level=warn .*configuration file is readable by every user and holds a password" "$(cat "$WORK/err")"
grep -Fq -- "$AMQP_PW" "$WORK/err" && die "the warning shows the password"
chmod 600 "$WORK/loose.conf"
"$ADMIN" -c "$WORK/loose.conf" status >/dev/null 2>"$WORK/err" || true
grep -q "readable by every user" "$WORK/err" && die "warned about a file only its owner can read"
log "a world-readable configuration with a password is warned about"
log "PASS"
