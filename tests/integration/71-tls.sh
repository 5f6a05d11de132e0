#!/usr/bin/env bash
# TLS for both servers: a publish and a consumer --drain over amqps:// (with
# the CA in amqp_cacert and a client certificate) and PostgreSQL with
# sslmode=verify-full; then a CA that did not sign the servers' certificates
# is refused, by the broker connection and by libpq, each with one clear
# line. Needs the servers started with GRADEQ_TLS=1 (tools/servers start).
#
# Environment: VHOST (default gradeq-t71), DB (default gradeq_t71).
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/prodlib.sh
. "$(dirname "${BASH_SOURCE[0]}")/prodlib.sh"

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
	exit 0
fi

VHOST=${VHOST:-gradeq-t71}
DB=${DB:-gradeq_t71}
RELEASE=t71-$$-$RANDOM
need_cmd psql jq curl timeout openssl
ADMIN=$(require_bin gradeq-admin)
PUBLISH=$(require_bin gradeq-publish)
CONSUMER=$(require_bin gradeq-consumer)
# The TLS settings come from the servers themselves (tools/servers env).
eval "$("$GRADEQ_SRC/tools/servers" env | grep -E 'GRADEQ_(TLS|AMQPS_PORT)')"
[[ ${GRADEQ_TLS:-0} == 1 && -r ${GRADEQ_TLS_CA:-} ]] ||
	skip "the servers run without TLS (start them with GRADEQ_TLS=1 tools/servers start)"
(exec 3<>"/dev/tcp/127.0.0.1/$GRADEQ_AMQPS_PORT") 2>/dev/null ||
	skip "nothing listens on the AMQPS port $GRADEQ_AMQPS_PORT"
cd "$GRADEQ_SRC"
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"

WORK=$(mktemp -d)
cleanup() {
	mgmt_curl DELETE "api/vhosts/$(urlenc "$VHOST")" >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT

# A vhost of our own for the admin user of the test broker.
mgmt_put "api/vhosts/$(urlenc "$VHOST")" '{}'
mgmt_put "api/permissions/$(urlenc "$VHOST")/$(urlenc "${GRADEQ_MGMT_USER:-gradeq}")" \
	'{"configure": ".*", "write": ".*", "read": ".*"}'
own_db "$DB"
"$ADMIN" migrate --with-input-tables >/dev/null 2>&1 || die "migrate failed"
"$ADMIN" seed --courses small --learners 80 >/dev/null 2>&1 || die "seed failed"
PLAIN_DSN=$GRADEQ_PG_DSN

# The servers' certificates name localhost and 127.0.0.1.
AMQPS_URL=$(amqp_url_as "${GRADEQ_MGMT_USER:-gradeq}" "$GRADEQ_MGMT_PASSWORD" "$VHOST")
AMQPS_URL=${AMQPS_URL/amqp:\/\//amqps://}
AMQPS_URL=${AMQPS_URL/127.0.0.1:${GRADEQ_AMQP_PORT:-5673}/localhost:$GRADEQ_AMQPS_PORT}
cat >"$WORK/tls.conf" <<EOF
amqp_cacert = "$GRADEQ_TLS_CA";
amqp_cert = "$GRADEQ_TLS_CERT";
amqp_key = "$GRADEQ_TLS_KEY";
EOF

# A CA of nobody's.
(
	cd "$WORK"
	openssl req -x509 -newkey rsa:2048 -nodes -keyout wrong.key -out wrong-ca.pem -days 1 \
		-subj "/CN=some other CA" >/dev/null 2>&1
) || die "cannot make the wrong CA"
sed "s#^amqp_cacert = .*#amqp_cacert = \"$WORK/wrong-ca.pem\";#" "$WORK/tls.conf" >"$WORK/wrong.conf"

export GRADEQ_AMQP_URL=$AMQPS_URL
export GRADEQ_PG_DSN="$PLAIN_DSN sslmode=verify-full sslrootcert=$GRADEQ_TLS_CA"

# --- happy path -------------------------------------------------------------
"$PUBLISH" -c "$WORK/tls.conf" --release "$RELEASE" --all-courses --batch-size 40 --json \
	>"$WORK/pub.json" 2>"$WORK/err" || die "publish over TLS failed: $(cat "$WORK/err")"
assert_eq "jobs published over TLS" 2 "$(jq -r .jobs "$WORK/pub.json")"
timeout 120 "$CONSUMER" -c "$WORK/tls.conf" --release "$RELEASE" --drain 2>"$WORK/consumer.log" ||
	die "consumer over TLS failed: $(tail -n 3 "$WORK/consumer.log")"
assert_eq "course grades" 80 "$(psql_q "SELECT count(*) FROM grades_persistentcoursegrade")"
# libpq really used TLS, verified against the CA.
assert_eq "PostgreSQL session over TLS" t \
	"$(psql -X -A -t -d "$GRADEQ_PG_DSN" -c "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")"
log "publish and drain over amqps:// and sslmode=verify-full"

# --- a wrong CA ---------------------------------------------------------------
if timeout 60 "$CONSUMER" -c "$WORK/wrong.conf" --release "$RELEASE" --drain \
	>/dev/null 2>"$WORK/err"; then
	die "the consumer trusted a broker certificate of another CA"
fi
one_line_error "broker with a wrong CA" "$WORK/err" \
	"^gradeq-consumer: error: TLS handshake with RabbitMQ at localhost:$GRADEQ_AMQPS_PORT failed: SSL peer cert verification failed: its certificate does not chain to a CA in .*wrong-ca.pem"
if "$PUBLISH" -c "$WORK/wrong.conf" --release "$RELEASE" --all-courses -q >/dev/null 2>"$WORK/err"; then
	die "the publisher trusted a broker certificate of another CA"
fi
one_line_error "publisher with a wrong CA" "$WORK/err" "^gradeq-publish: error: TLS handshake .* does not chain to a CA"
log "broker: a certificate of another CA is refused"

if GRADEQ_PG_DSN="$PLAIN_DSN sslmode=verify-full sslrootcert=$WORK/wrong-ca.pem" \
	"$ADMIN" -c "$WORK/tls.conf" status >/dev/null 2>"$WORK/err"; then
	die "libpq trusted a server certificate of another CA"
fi
one_line_error "PostgreSQL with a wrong CA" "$WORK/err" "^gradeq-admin: error: .*certificate verify failed"
log "PostgreSQL: a certificate of another CA is refused"
log "PASS"
