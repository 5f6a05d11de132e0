#!/usr/bin/env bash
# The command line of a careless or hostile operator: check-config's errors
# carry the program's name and honour --json, passwords stay masked in
# URI-form DSNs; usage errors exit 2; repeated options are merged or
# refused.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_cmd jq psql
ADMIN=$(require_bin gradeq-admin)
CONSUMER=$(require_bin gradeq-consumer)
REPLAY=$(require_bin gradeq-replay)
PUBLISH=$(require_bin gradeq-publish)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$GRADEQ_SRC"

# usage_error WHAT REGEX CMD...: CMD exits 2 with one line matching REGEX.
usage_error() {
	local what=$1 re=$2 out rc=0
	shift 2
	out=$("$@" 2>&1 >/dev/null </dev/null) || rc=$?
	assert_eq "$what: exit status ($out)" 2 "$rc"
	assert_eq "$what: one line ($out)" 1 "$(wc -l <<<"$out")"
	assert_match "$what" "$re" "$out"
}

# --- check-config --------------------------------------------------------------
(
	umask 077
	printf 'prefech = 2;\n' >"$WORK/typo.conf"
	printf 'pg_dsn = "postgresql://u:s3cr3t-a@db/lms?sslmode=require&password=s3cr3t-b";\n' >"$WORK/uri.conf"
)
if out=$(env -u GRADEQ_PG_DSN -u GRADEQ_AMQP_URL "$ADMIN" check-config "$WORK/typo.conf" 2>&1 >/dev/null); then
	die "check-config accepted a typo"
fi
assert_match "check-config error prefix" "^gradeq-admin: error: .*typo\.conf:1: unknown setting 'prefech'" "$out"
rc=0
out=$(env -u GRADEQ_PG_DSN -u GRADEQ_AMQP_URL "$ADMIN" check-config "$WORK/typo.conf" --json 2>/dev/null) || rc=$?
assert_eq "check-config --json of a bad file: status" 1 "$rc"
assert_eq "check-config --json of a bad file" false "$(jq .valid <<<"$out")"
assert_match "check-config --json error" "typo\.conf:1: unknown setting 'prefech'" "$(jq -r .error <<<"$out")"
out=$(env -u GRADEQ_PG_DSN -u GRADEQ_AMQP_URL "$ADMIN" check-config "$WORK/uri.conf" 2>"$WORK/err") ||
	die "check-config refused a URI DSN: $(cat "$WORK/err")"
grep -q s3cr3t <<<"$out" && die "check-config shows a URI DSN's password: $(grep pg_dsn <<<"$out")"
assert_match "masked URI DSN" '^pg_dsn = "postgresql://u:\*\*\*\*@db/lms\?sslmode=require&password=\*\*\*\*";' \
	"$(grep '^pg_dsn' <<<"$out")"
out=$(env -u GRADEQ_PG_DSN -u GRADEQ_AMQP_URL "$ADMIN" --json check-config "$WORK/uri.conf" 2>/dev/null) ||
	die "check-config --json refused a good file"
grep -q s3cr3t <<<"$out" && die "check-config --json shows a password"
assert_eq "check-config --json: one line" 1 "$(wc -l <<<"$out")"
assert_eq "check-config --json valid" true "$(jq .valid <<<"$out")"
assert_eq "check-config --json prefetch" number "$(jq -r ".settings.prefetch | type" <<<"$out")"
log "check-config: prefix, --json, masks"

# --- gradeq-replay export: a file only its owner reads, whatever the umask ------
"$CONSUMER" --release cli59 --drain >"$WORK/declare.log" 2>&1 || die "declaring cli59 failed: $(cat "$WORK/declare.log")"
(umask 022 && "$REPLAY" export --release cli59 "$WORK/dead.jsonl" >/dev/null 2>"$WORK/export.err") ||
	die "export failed: $(cat "$WORK/export.err")"
assert_eq "export file mode" 600 "$(stat -c %a "$WORK/dead.jsonl")"
log "replay export: mode 0600"

# --- status --json --watch: one JSON object per line ---------------------------
fresh_db
"$ADMIN" migrate --with-input-tables >/dev/null 2>&1 || die "migrate failed"
"$ADMIN" seed --courses small,small --learners 10 >/dev/null 2>&1 || die "seed failed"
for _ in 1 2; do
	"$PUBLISH" --release cli59 --all-courses -q >/dev/null 2>>"$WORK/publish.log" ||
		die "publish failed: $(cat "$WORK/publish.log")"
done
"$ADMIN" status --json --watch >"$WORK/watch.out" 2>"$WORK/watch.err" &
watch_pid=$!
lines() { (($(wc -l <"$WORK/watch.out") >= 2)); }
wait_until 30 "two status lines" lines
kill "$watch_pid"
wait "$watch_pid" || true
head -n 2 "$WORK/watch.out" >"$WORK/watch2.out"
while IFS= read -r line; do
	assert_eq "a status line is one object with both runs" 2 "$(jq '.runs | length' <<<"$line")"
done <"$WORK/watch2.out"
log "status --json --watch: one object per line"

# --- cancel: asks on a terminal, needs --yes elsewhere --------------------------
run=$(psql_q "SELECT run_id FROM gradeq_runs ORDER BY created_at LIMIT 1")
usage_error "cancel without --yes" "^gradeq-admin: error: .*--yes" "$ADMIN" cancel "$run"
assert_eq "not canceled" 0 "$(psql_q "SELECT count(*) FROM gradeq_runs WHERE state = 'canceled'")"
"$ADMIN" cancel "$run" --yes >/dev/null 2>"$WORK/cancel.err" || die "cancel --yes failed: $(cat "$WORK/cancel.err")"
assert_eq "canceled" canceled "$(psql_q "SELECT state FROM gradeq_runs WHERE run_id = '$run'")"
log "cancel: --yes needed without a terminal"

# --- repeated options: merged when they add up, else refused --------------------
course='course-v1:gradeq+small1+2026'
out=$("$PUBLISH" --release cli59 --course "$course" --course "$course" --dry-run --json 2>"$WORK/dup.err") ||
	die "publish with a repeated --course failed: $(cat "$WORK/dup.err")"
assert_eq "a repeated --course counts once: courses" 1 "$(jq .courses <<<"$out")"
assert_eq "a repeated --course counts once: learners" 10 "$(jq .learners <<<"$out")"
usage_error "publish --release twice" "^gradeq-publish: error: --release given twice" \
	"$PUBLISH" --release cli59 --release other59 --course "$course" --dry-run
usage_error "publish --batch-size twice" "^gradeq-publish: error: --batch-size given twice" \
	"$PUBLISH" --release cli59 --course "$course" -b 5 -b 6 --dry-run
usage_error "consumer --prefetch twice" "^gradeq-consumer: error: --prefetch given twice" \
	"$CONSUMER" --release cli59 --prefetch 1 --prefetch 2 --drain
usage_error "consumer --release twice" "^gradeq-consumer: error: --release given twice" \
	"$CONSUMER" --release cli59 --release other59 --drain
usage_error "replay --limit twice" "^gradeq-replay: error: --limit given twice" \
	"$REPLAY" list --release cli59 --limit 1 --limit 2
usage_error "replay --to-release twice" "^gradeq-replay: error: --to-release given twice" \
	"$REPLAY" replay --release cli59 --to-release a59 --to-release b59 --yes
usage_error "admin events --run twice" "^gradeq-admin: error: events: --run given twice" \
	"$ADMIN" events --run "$run" --run "$run"
usage_error "admin purge-history --older-than twice" "^gradeq-admin: error: purge-history: --older-than given twice" \
	"$ADMIN" purge-history --older-than 1d --older-than 2d
usage_error "seed --learners twice" "^gradeq-admin: error: --learners given twice" \
	"$ADMIN" seed --learners 1 --learners 2
usage_error "seed --learners out of range" "^gradeq-admin: error: --learners must be" \
	"$ADMIN" seed --learners -1
log "repeated options: merged or refused"

# --- extra words are usage errors, not ignored ----------------------------------
usage_error "release list with an extra word" "^gradeq-admin: error: usage: gradeq-admin release" \
	"$ADMIN" release list -c /nonexistent.conf
usage_error "states with an extra word" "^gradeq-admin: error: usage: gradeq-admin states \[--json\]$" \
	"$ADMIN" states extra
usage_error "check-config with two files" "^gradeq-admin: error: usage: gradeq-admin check-config \[FILE\]$" \
	"$ADMIN" check-config a.conf b.conf
usage_error "seed with an extra word" "^gradeq-admin: error: seed: unexpected argument 'extra'" \
	"$ADMIN" seed extra
log "extra words: usage errors"

# --- durations out of range: refused by gradeq, naming the range ---------------
usage_error "purge-history --older-than 10001d" "^gradeq-admin: error: --older-than takes a duration from 0 to 10000d" \
	"$ADMIN" purge-history --older-than 10001d
usage_error "replay --older-than 99999999999d" "^gradeq-replay: error: --older-than wants a duration from 0 to 10000d" \
	"$REPLAY" list --release cli59 --older-than 99999999999d
log "durations: range checked"

# --- a log file that cannot be opened is an error -------------------------------
printf 'log_file = "%s/no/such/dir/gradeq.log";\n' "$WORK" >"$WORK/log.conf"
rc=0
out=$("$PUBLISH" -c "$WORK/log.conf" --release cli59 --course "$course" --dry-run 2>&1 >/dev/null) || rc=$?
assert_eq "unopenable log file: exit status ($out)" 1 "$rc"
assert_eq "unopenable log file: one line" 1 "$(wc -l <<<"$out")"
assert_match "unopenable log file" "^gradeq-publish: error: cannot open log file '.*/no/such/dir/gradeq\.log': No such file" "$out"
log "log file: an error when it cannot be opened"

# --- the man pages and --help name the same options ------------------------------
# long_opts: the --options of standard input, one a line, sorted.
long_opts() { grep -oE -- '--[a-z][a-z-]*' | sort -u; }
for prog in gradeq-admin gradeq-publish gradeq-consumer gradeq-replay; do
	help=$("$GRADEQ_BIN/$prog" --help | long_opts)
	# the man page up to its examples (which quote other programs' options)
	man=$(sed -e '/^\.SH EXAMPLES/,$d' -e 's/\\-/-/g' "$GRADEQ_SRC/packaging/man/$prog.1" | long_opts)
	assert_eq "$prog: options in --help but not in the man page" "" "$(comm -23 <(echo "$help") <(echo "$man") | xargs)"
	assert_eq "$prog: options in the man page but not in --help" "" "$(comm -13 <(echo "$help") <(echo "$man") | xargs)"
	# the build's man page names the configuration file the build reads
	conf=$("$GRADEQ_BIN/$prog" --help | sed -n 's/.*configuration file (default \(.*\))$/\1/p')
	[[ -n $conf ]] || die "$prog --help names no default configuration file"
	grep -qF -- "$conf" "$GRADEQ_BIN/man/$prog.1" || die "the build's $prog.1 does not name $conf"
done
log "man pages and --help: the same options"

# --- tools/demo says where a password is, never the password -------------------
if grep -nE '\$\{?(GRADEQ_MGMT_PASSWORD|GRADEQ_PG_PASSWORD|RMQ_PASS|PG_PASS|PGPASSWORD)' "$GRADEQ_SRC/tools/demo"; then
	die "tools/demo expands a password variable"
fi
log "tools/demo: no password printed"
