#!/usr/bin/env bash
# gradeq-admin check-config: a valid file prints every effective setting
# with passwords masked and exits 0; a bad one exits 1 with one line naming
# the file, the line and the setting. Needs no server.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
	exit 0
fi
ADMIN=$(require_bin gradeq-admin)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
unset GRADEQ_AMQP_URL GRADEQ_PG_DSN

# check CONF REGEX: check-config must fail with exactly one line matching.
check_bad() {
	if "$ADMIN" check-config "$1" >"$WORK/out" 2>"$WORK/err"; then
		die "check-config accepted $1"
	fi
	[[ $(grep -c '' "$WORK/err") == 1 ]] || die "expected one line for $1, got: $(cat "$WORK/err")"
	assert_match "check-config $1" "$2" "$(cat "$WORK/err")"
	[[ ! -s $WORK/out ]] || die "check-config printed settings for a bad file"
}

(umask 077 && cat >"$WORK/good.conf" <<'EOF2'
amqp_url = "amqps://gradeq:s3cr3t-amqp@rabbit.example.org:5671/gradeq";
pg_dsn = "host=db dbname=lms user=gradeq password=s3cr3t-pg sslmode=verify-full";
prefetch = 2;
retry_tiers = [5, 60];
EOF2
)
"$ADMIN" check-config "$WORK/good.conf" >"$WORK/out" 2>"$WORK/err" ||
	die "check-config refused a good file: $(cat "$WORK/err")"
grep -q 's3cr3t' "$WORK/out" "$WORK/err" && die "check-config shows a password"
assert_match "masked URL" 'amqp_url = "amqps://gradeq:\*\*\*\*@rabbit' "$(grep '^amqp_url' "$WORK/out")"
assert_match "masked DSN" 'password=\*\*\*\* sslmode=verify-full' "$(grep '^pg_dsn' "$WORK/out")"
assert_eq "prefetch" 'prefetch = 2;' "$(grep '^prefetch' "$WORK/out" | cut -d'#' -f1 | sed 's/ *$//')"
assert_eq "retry_tiers" 'retry_tiers = [5, 60];' "$(grep '^retry_tiers' "$WORK/out" | cut -d'#' -f1 | sed 's/ *$//')"
# every setting of the example file is printed
for name in $(grep -oE '^#?[a-z_]+ = ' "$GRADEQ_SRC/conf/gradeq.conf" | tr -d '#= '); do
	grep -q "^$name = " "$WORK/out" || die "setting $name is not printed"
done
# -c works as well as the argument
"$ADMIN" -c "$WORK/good.conf" check-config >/dev/null 2>&1 || die "-c FILE check-config failed"
log "a good file: settings printed, secrets masked"

printf 'prefetch = 1;\nprefech = 2;\n' >"$WORK/typo.conf"
check_bad "$WORK/typo.conf" "typo.conf:2: unknown setting 'prefech' \(did you mean 'prefetch'\?\)"
printf '\n\nheartbeat = -1;\n' >"$WORK/range.conf"
check_bad "$WORK/range.conf" "range.conf:3: 'heartbeat' must be an integer from 0 to 65535"
printf 'amqp_url = "amqps://u@h/v";\namqp_key = "%s";\n' "$WORK/typo.conf" >"$WORK/key.conf"
check_bad "$WORK/key.conf" "key.conf:2: 'amqp_key' is set without 'amqp_cert'"
printf 'pg_dsn = "host=db =x";\n' >"$WORK/dsn.conf"
check_bad "$WORK/dsn.conf" "dsn.conf:1: 'pg_dsn' is not a libpq conninfo"
printf 'amqp_password_file = "%s";\n' "$WORK/missing" >"$WORK/pw.conf"
check_bad "$WORK/pw.conf" "pw.conf:1: 'amqp_password_file' names a file this user cannot read"
printf 'log_level = "loud"\n' >"$WORK/syntax.conf"
check_bad "$WORK/syntax.conf" "syntax.conf:1: "
log "bad files: one line with file, line and setting"
log "PASS"
