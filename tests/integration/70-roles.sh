#!/usr/bin/env bash
# Least privilege, enforced by the broker: packaging/rabbitmq/setup applied
# to a vhost of this test's own, then each role does its work and nothing
# else. The publisher cannot declare, consume or get, yet gradeq-publish
# succeeds once the operator declared the release's queues (and says which
# command creates them before); the consumer cannot publish to another
# exchange nor enter another vhost; every denial by a gradeq program is one
# line on stderr naming what was refused. The happy path (publish, consume
# --drain) works under the roles.
#
# Environment: VHOST (default gradeq-t70), DB (default gradeq_t70).
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/prodlib.sh
. "$(dirname "${BASH_SOURCE[0]}")/prodlib.sh"

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
	exit 0
fi

VHOST=${VHOST:-gradeq-t70}
DB=${DB:-gradeq_t70}
RELEASE=t70-$$-$RANDOM
need_cmd psql jq curl timeout
if ! [[ -x $PY ]] || ! "$PY" -c 'import pika' 2>/dev/null; then
	skip "python3-pika is not installed (tools/deps)"
fi
ADMIN=$(require_bin gradeq-admin)
PUBLISH=$(require_bin gradeq-publish)
CONSUMER=$(require_bin gradeq-consumer)
PROBE=$GRADEQ_SRC/tests/integration/amqp_probe.py
cd "$GRADEQ_SRC"
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"

WORK=$(mktemp -d)
cleanup() {
	mgmt_curl DELETE "api/vhosts/$(urlenc "$VHOST")" >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT

# --- setup, twice: idempotent ------------------------------------------------
setup_roles "$VHOST"
setup_roles "$VHOST"
perms=$(mgmt_get "api/vhosts/$(urlenc "$VHOST")/permissions" |
	jq -r 'sort_by(.user)[] | "\(.user) \(.configure) \(.write) \(.read)"')
assert_eq "publisher permissions" 'gradeq-publisher ^$ ^(gradeq|gradeq\.events)$ ^$' "$(grep publisher <<<"$perms")"
assert_match "consumer configures only its queues and the events log" \
	'^gradeq-consumer \^\(gradeq\\\.grades\\\.\.\+\|gradeq\\\.events\\\.log\)\$ ' \
	"$(grep consumer <<<"$perms")"
exchanges=$(mgmt_get "api/exchanges/$(urlenc "$VHOST")?columns=name,type" |
	jq -r '[.[] | select(.name | startswith("gradeq")) | "\(.name):\(.type)"] | sort | join(" ")')
assert_eq "exchanges" "gradeq.dead:direct gradeq.events:topic gradeq:direct" "$exchanges"
log "setup applied twice to vhost $VHOST"

PUB_URL=$(amqp_url_as gradeq-publisher "$PUB_PW" "$VHOST")
CON_URL=$(amqp_url_as gradeq-consumer "$CON_PW" "$VHOST")
OP_URL=$(amqp_url_as gradeq-operator "$OP_PW" "$VHOST")
QUEUE=gradeq.grades.$RELEASE

own_db "$DB"
"$ADMIN" migrate --with-input-tables >/dev/null 2>&1 || die "migrate failed"
"$ADMIN" seed --courses small --learners 120 >/dev/null 2>&1 || die "seed failed"
COURSE=$(psql_q "SELECT course_id FROM courses LIMIT 1")

# --- publisher --------------------------------------------------------------
# Before the queues exist: refused, one line that names the command.
if GRADEQ_AMQP_URL=$PUB_URL "$PUBLISH" --release "$RELEASE" --course "$COURSE" -q \
	>/dev/null 2>"$WORK/err"; then
	die "publisher published to a release without queues"
fi
one_line_error "publish without queues" "$WORK/err" \
	"queue '$QUEUE' does not exist.*ACCESS_REFUSED.*gradeq-publisher.*gradeq-admin release promote $RELEASE"
# The publisher cannot declare: a consumer started with its credentials stops.
if GRADEQ_AMQP_URL=$PUB_URL timeout 30 "$CONSUMER" --release "$RELEASE" --drain \
	>/dev/null 2>"$WORK/err"; then
	die "a consumer ran with the publisher's credentials"
fi
# (an existing queue is checked passively, which needs no permission, and
# bound: the refusal then comes from the binding)
one_line_error "publisher declares" "$WORK/err" \
	"^gradeq-consumer: error: (declaring|binding) queue .*ACCESS_REFUSED - access to queue '.*' in vhost '$VHOST' refused for user 'gradeq-publisher'"
log "publisher: cannot declare; told which command creates the queues"

# The operator creates the release's queues.
GRADEQ_AMQP_URL=$OP_URL "$ADMIN" release promote "$RELEASE" >/dev/null 2>"$WORK/err" ||
	die "operator could not promote: $(cat "$WORK/err")"
queue_exists "$QUEUE" "$VHOST" || die "promote did not declare $QUEUE"

GRADEQ_AMQP_URL=$PUB_URL "$PUBLISH" --release "$RELEASE" --course "$COURSE" --batch-size 40 \
	--json 2>"$WORK/err" >"$WORK/pub.json" || die "publisher could not publish: $(cat "$WORK/err")"
assert_eq "jobs published" 3 "$(jq -r .jobs "$WORK/pub.json")"
log "publisher: published 3 jobs after checking the queues passively"

# basic.get and basic.consume need read: the publisher has none.
out=$(GRADEQ_PROBE_URL=$PUB_URL "$PY" "$PROBE" get "$QUEUE") && die "publisher got a message"
assert_match "publisher basic.get" "^ACCESS_REFUSED - access to queue '$QUEUE' in vhost '$VHOST' refused for user 'gradeq-publisher'$" "$out"
out=$(GRADEQ_PROBE_URL=$PUB_URL "$PY" "$PROBE" publish amq.direct x) && die "publisher wrote to amq.direct"
assert_match "publisher other exchange" "^ACCESS_REFUSED - access to exchange 'amq.direct'" "$out"
out=$(GRADEQ_PROBE_URL=$PUB_URL "$PY" "$PROBE" declare gradeq.grades.x-$RELEASE) && die "publisher declared"
assert_match "publisher declare" "^ACCESS_REFUSED" "$out"
log "publisher: basic.get, declare and other exchanges refused"

# --- consumer -----------------------------------------------------------------
out=$(GRADEQ_PROBE_URL=$CON_URL "$PY" "$PROBE" publish amq.topic x) && die "consumer wrote to amq.topic"
assert_match "consumer other exchange" "^ACCESS_REFUSED - access to exchange 'amq.topic' in vhost '$VHOST' refused for user 'gradeq-consumer'$" "$out"
out=$(GRADEQ_PROBE_URL=$CON_URL "$PY" "$PROBE" declare not-gradeq) && die "consumer declared not-gradeq"
assert_match "consumer foreign queue" "^ACCESS_REFUSED" "$out"
# Another vhost: the login itself is refused, and the consumer stops at once.
OTHER_URL=$(amqp_url_as gradeq-consumer "$CON_PW" /)
if GRADEQ_AMQP_URL=$OTHER_URL timeout 30 "$CONSUMER" --release "$RELEASE" --drain \
	>/dev/null 2>"$WORK/err"; then
	die "the consumer entered vhost /"
fi
one_line_error "consumer in another vhost" "$WORK/err" \
	"^gradeq-consumer: error: login: .*access to vhost '/' refused for user 'gradeq-consumer'"
out=$(GRADEQ_PROBE_URL=$OTHER_URL "$PY" "$PROBE" get "$QUEUE") && die "consumer read vhost /"
assert_match "consumer reads vhost /" "access to vhost '/' refused" "$out"
log "consumer: other exchanges, foreign queues and other vhosts refused"

# --- happy path under the roles ------------------------------------------------
GRADEQ_AMQP_URL=$CON_URL timeout 120 "$CONSUMER" --release "$RELEASE" --drain \
	2>"$WORK/consumer.log" || die "consumer failed: $(tail -n 3 "$WORK/consumer.log")"
assert_eq "course grades" 120 "$(psql_q "SELECT count(*) FROM grades_persistentcoursegrade")"
assert_eq "jobs complete" 3 "$(psql_q "SELECT count(*) FROM gradeq_jobs WHERE state = 'complete'")"
GRADEQ_AMQP_URL=$OP_URL "$ADMIN" status >/dev/null 2>"$WORK/err" ||
	die "operator status failed: $(cat "$WORK/err")"
log "happy path: 3 jobs published by gradeq-publisher, graded by gradeq-consumer"
log "PASS"
