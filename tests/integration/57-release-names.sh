#!/usr/bin/env bash
# Release names that would collide with another release's queues
# (`demo.dead` owns gradeq.grades.demo.dead, release demo's dead queue) or
# that are no names at all are refused by every program and setting with
# one line and exit 2, before anything is registered or declared; and
# retiring one release leaves every queue of another in place, even one
# whose name starts the same way.
set -euo pipefail
# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"

REPLAY=$(require_bin gradeq-replay)
own_db gradeq_it_r57
fresh_release demo
seed small 20

# refused NAME WHAT CMD...: CMD exits 2 with one line on stderr that starts
# with the program's name and names the release.
refused() {
	local name=$1 what=$2 out rc=0
	shift 2
	out=$("$@" 2>&1 >/dev/null </dev/null) || rc=$?
	assert_eq "$what '$name': exit status" 2 "$rc"
	assert_eq "$what '$name': one line ($out)" 1 "$(wc -l <<<"$out")"
	assert_match "$what '$name': the message" "^gradeq-[a-z]+: .*release" "$out"
	[[ $out == *"'$name'"* ]] || die "$what '$name': the message does not name it: $out"
}

# bad_config NAME CMD...: CMD fails with one line naming the file's line.
bad_config() {
	local name=$1 out
	shift
	if out=$("$@" 2>&1 >/dev/null </dev/null); then
		die "'$*' accepted release '$name' from its configuration file"
	fi
	assert_eq "'$*': config '$name': one line" 1 "$(wc -l <<<"$out")"
	assert_match "'$*': config '$name'" "^gradeq-[a-z]+: error: .*bad\.conf:1: 'release' " "$out"
}

for name in demo.dead demo.retry.5s demo.events a..b 'x*' .demo demo. 'de mo'; do
	refused "$name" "publish --dry-run" "$PUBLISH" --release "$name" --course "$SMALL" --dry-run
	refused "$name" "publish" "$PUBLISH" --release "$name" --course "$SMALL"
	refused "$name" "consumer" "$CONSUMER" --release "$name" --drain
	refused "$name" "replay list" "$REPLAY" list --release "$name"
	refused "$name" "replay --to-release" "$REPLAY" replay --release demo --to-release "$name" --yes
	refused "$name" "release promote" "$ADMIN" release promote "$name"
	refused "$name" "release drain" "$ADMIN" release drain "$name"
	refused "$name" "release retire" "$ADMIN" release retire "$name"
	refused "$name" "release retire --move-dead-to" "$ADMIN" release retire demo --move-dead-to "$name"
	# the configuration file's release: refused when the file is read
	config "$WORK/bad.conf" "release=\"$name\""
	bad_config "$name" "$PUBLISH" -c "$WORK/bad.conf" --course "$SMALL" --dry-run
	bad_config "$name" "$CONSUMER" -c "$WORK/bad.conf" --drain
	bad_config "$name" "$ADMIN" -c "$WORK/bad.conf" release list
done

# a dry run of a good release never seen before changes nothing either; its
# progress lines and --json agree that there is no run
out=$("$PUBLISH" --release fresh57 --course "$SMALL" --dry-run --json 2>"$WORK/dry.err") ||
	die "dry run failed: $(cat "$WORK/dry.err")"
assert_eq "dry run: run id" null "$(jq .run_id <<<"$out")"
assert_eq "dry run: release" fresh57 "$(jq -r .release <<<"$out")"
assert_eq "dry run: learners" 20 "$(jq .learners <<<"$out")"
"$PUBLISH" --release fresh57 --course "$SMALL" --dry-run >"$WORK/dry.out" 2>"$WORK/dry.err" ||
	die "dry run failed: $(cat "$WORK/dry.err")"
grep -q 'event=progress run=none ' "$WORK/dry.err" || die "no progress line with run=none: $(cat "$WORK/dry.err")"
if grep -v 'event=progress run=none ' "$WORK/dry.err" | grep -q 'run='; then
	die "a dry run's progress names a run: $(cat "$WORK/dry.err")"
fi
assert_match "dry run: report" "^dry run: 1 courses, 1 jobs, 20 learners for release fresh57" "$(cat "$WORK/dry.out")"
assert_eq "nothing registered" 0 "$(psql_q "SELECT count(*) FROM gradeq_releases")"
assert_eq "no run recorded" 0 "$(psql_q "SELECT count(*) FROM gradeq_runs")"
assert_eq "no queue declared" "[]" \
	"$(mgmt_get "api/queues/$VH?columns=name" | jq -c '[.[].name | select(startswith("gradeq."))]')"

# demo and a release whose queue names start with demo's: a demo consumer
# running, demo.v2 drained and retired
config "$WORK/r.conf" 'retry_tiers=[1, 5]'
assert_ok "promote demo.v2" "$ADMIN" -c "$WORK/r.conf" release promote demo.v2 >/dev/null
assert_ok "promote demo" "$ADMIN" -c "$WORK/r.conf" release promote demo >/dev/null
start_consumer consumer.log -c "$WORK/r.conf"
demo_consumers() {
	[[ $(mgmt_curl GET "api/queues/$VH/gradeq.grades.demo" | jq .consumers) == 1 ]]
}
wait_until 30 "the demo consumer on its queue" demo_consumers
demo_queues=(gradeq.grades.demo gradeq.grades.demo.retry.1s gradeq.grades.demo.retry.5s gradeq.grades.demo.dead)
for q in "${demo_queues[@]}" gradeq.grades.demo.v2 gradeq.grades.demo.v2.dead; do
	queue_exists "$q" || die "queue $q was not declared"
done
assert_ok "retire demo.v2" "$ADMIN" -c "$WORK/r.conf" release retire demo.v2 >/dev/null
assert_eq "demo.v2 retired" retired "$(psql_q "SELECT state FROM gradeq_releases WHERE name = 'demo.v2'")"
for q in gradeq.grades.demo.v2 gradeq.grades.demo.v2.retry.1s gradeq.grades.demo.v2.dead; do
	! queue_exists "$q" || die "retiring demo.v2 left its queue $q"
done
for q in "${demo_queues[@]}"; do
	queue_exists "$q" || die "retiring demo.v2 deleted demo's queue $q"
done

# a consumer of a release the registry has never seen warns once, and
# declares its queues; retire cleans them up (and only them) though the
# registry has no entry; a release neither side knows is an error
"$CONSUMER" -c "$WORK/r.conf" --release ghost57 --drain >"$WORK/ghost.log" 2>&1 || die "ghost57 consumer failed"
assert_eq "one release_unknown warning" 1 \
	"$(grep -c 'level=warn .*event=release_unknown release=ghost57 ' "$WORK/ghost.log")"
! log_has consumer.log 'event=release_unknown' || die "the demo consumer warned about a known release"
queue_exists gradeq.grades.ghost57 || die "ghost57's queue was not declared"
out=$("$ADMIN" -c "$WORK/r.conf" release retire ghost57 2>&1) || die "retire of a broker-only release failed: $out"
assert_match "retired" "^release ghost57 retired" "$out"
for q in gradeq.grades.ghost57 gradeq.grades.ghost57.retry.1s gradeq.grades.ghost57.retry.5s gradeq.grades.ghost57.dead; do
	! queue_exists "$q" || die "retire left ghost57's queue $q"
done
assert_eq "ghost57 not registered" 0 "$(psql_q "SELECT count(*) FROM gradeq_releases WHERE name = 'ghost57'")"
if out=$("$ADMIN" -c "$WORK/r.conf" release retire nosuch57 2>&1); then
	die "retire of a release nobody knows succeeded: $out"
fi
assert_match "unknown release" "^gradeq-admin: error: release 'nosuch57' does not exist" "$out"
for q in "${demo_queues[@]}"; do
	queue_exists "$q" || die "retiring ghost57 deleted demo's queue $q"
done
kill -0 "$CONSUMER_PID" || die "the demo consumer stopped"
log ok
