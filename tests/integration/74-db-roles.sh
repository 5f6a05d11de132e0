#!/usr/bin/env bash
# Database roles: migrations run by a superuser create the NOLOGIN roles
# gradeq_owner and gradeq_consumer; a login role granted only
# gradeq_consumer runs a consumer to the end, may read the platform's input
# tables but not change them, and cannot run the migrations, which a member
# of gradeq_owner can.
#
# Environment: DB (default gradeq_t74).
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/prodlib.sh
. "$(dirname "${BASH_SOURCE[0]}")/prodlib.sh"

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
	exit 0
fi

DB=${DB:-gradeq_t74}
RELEASE=t74-$$-$RANDOM
WORKER=gradeq_t74_worker
need_cmd psql timeout
ADMIN=$(require_bin gradeq-admin)
PUBLISH=$(require_bin gradeq-publish)
CONSUMER=$(require_bin gradeq-consumer)
cd "$GRADEQ_SRC"
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
SOCKET=${GRADEQ_STATE_DIR:-$GRADEQ_SRC/.state}/postgresql/run
[[ -S $SOCKET/.s.PGSQL.${GRADEQ_PG_PORT:-5433} ]] || skip "no superuser socket in $SOCKET"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

own_db "$DB"
SUPER_DSN="host=$SOCKET port=${GRADEQ_PG_PORT:-5433} dbname=$DB user=postgres"
super() {
	psql -X -q -v ON_ERROR_STOP=1 -A -t -d "$SUPER_DSN" -c "$1"
}
super "SELECT 1" >/dev/null || skip "cannot connect as the superuser over $SOCKET"

# The migrations as the superuser: roles, grants, ownership.
GRADEQ_PG_DSN=$SUPER_DSN "$ADMIN" migrate --with-input-tables >/dev/null 2>"$WORK/err" ||
	die "migrate as superuser failed: $(cat "$WORK/err")"
GRADEQ_PG_DSN=$SUPER_DSN "$ADMIN" seed --courses small --learners 60 >/dev/null 2>&1 ||
	die "seed failed"
assert_eq "roles" "gradeq_consumer|false gradeq_owner|false" \
	"$(super "SELECT string_agg(rolname || '|' || rolcanlogin, ' ' ORDER BY rolname) FROM pg_roles WHERE rolname IN ('gradeq_owner', 'gradeq_consumer')")"
assert_eq "owner of gradeq_jobs" gradeq_owner \
	"$(super "SELECT tableowner FROM pg_tables WHERE tablename = 'gradeq_jobs' AND schemaname = current_schema()")"

# A login role that is only a gradeq_consumer.
PW=$(random_pw)
super "DO \$\$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$WORKER') THEN
    CREATE ROLE $WORKER LOGIN;
  END IF;
END \$\$;
ALTER ROLE $WORKER PASSWORD '$PW' NOSUPERUSER NOCREATEDB NOCREATEROLE;
GRANT gradeq_consumer TO $WORKER;" >/dev/null
WORKER_DSN="host=127.0.0.1 port=${GRADEQ_PG_PORT:-5433} dbname=$DB user=$WORKER"
worker_sql() {
	PGPASSWORD=$PW psql -X -q -v ON_ERROR_STOP=1 -A -t -d "$WORKER_DSN" -c "$1"
}

GRADEQ_PG_DSN=$SUPER_DSN "$PUBLISH" --release "$RELEASE" --all-courses --batch-size 20 -q \
	>/dev/null 2>"$WORK/err" || die "publish failed: $(cat "$WORK/err")"
PGPASSWORD=$PW GRADEQ_PG_DSN=$WORKER_DSN timeout 120 "$CONSUMER" --release "$RELEASE" --drain \
	2>"$WORK/consumer.log" || die "consumer as $WORKER failed: $(tail -n 3 "$WORK/consumer.log")"
assert_eq "course grades written by $WORKER" 60 \
	"$(super "SELECT count(*) FROM grades_persistentcoursegrade")"
assert_eq "jobs complete" 3 "$(super "SELECT count(*) FROM gradeq_jobs WHERE state = 'complete'")"
log "a gradeq_consumer login graded 3 jobs"

# Input tables: read, never written.
assert_eq "reads courses" 1 "$(worker_sql "SELECT count(*) FROM courses")"
if worker_sql "UPDATE courses SET version = version" 2>"$WORK/err"; then
	die "$WORKER updated courses"
fi
assert_match "UPDATE courses refused" "permission denied for table courses" "$(cat "$WORK/err")"
if worker_sql "DELETE FROM grades_persistentcoursegrade" 2>"$WORK/err"; then
	die "$WORKER deleted grades"
fi
assert_match "DELETE grades refused" "permission denied" "$(cat "$WORK/err")"
if worker_sql "CREATE TABLE gradeq_evil (x int)" 2>"$WORK/err"; then
	die "$WORKER created a table"
fi
log "gradeq_consumer cannot UPDATE courses, DELETE grades or CREATE tables"

# Migrations belong to gradeq_owner: a member may run them, the consumer not.
super "DO \$\$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gradeq_t74_migrator') THEN
    CREATE ROLE gradeq_t74_migrator LOGIN;
  END IF;
END \$\$;
ALTER ROLE gradeq_t74_migrator PASSWORD '$PW' NOSUPERUSER NOCREATEROLE;
GRANT gradeq_owner TO gradeq_t74_migrator;" >/dev/null
PGPASSWORD=$PW GRADEQ_PG_DSN=${WORKER_DSN/$WORKER/gradeq_t74_migrator} "$ADMIN" migrate \
	>/dev/null 2>"$WORK/err" || die "migrate as a gradeq_owner member failed: $(cat "$WORK/err")"
if PGPASSWORD=$PW GRADEQ_PG_DSN=$WORKER_DSN "$ADMIN" migrate >/dev/null 2>"$WORK/err"; then
	die "$WORKER ran the migrations"
fi
one_line_error "migrate as gradeq_consumer" "$WORK/err" "permission denied"
log "migrations: run by gradeq_owner members only"
log "PASS"
