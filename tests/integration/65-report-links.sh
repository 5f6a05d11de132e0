#!/usr/bin/env bash
# Signed download links: gradeq-report url refuses a user who is not on the
# course team (one line, non-zero); gradeq-web serves a member's link (the
# sealed bytes), refuses a tampered or expired one with 403 and a log line,
# and refuses a link whose user left the team since it was signed; a
# global operator (output_operators) reads any course's output; a
# use-once output is gone after one complete download. The output.<id>.ready
# events carry no link.
set -euo pipefail
# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"
# shellcheck source=tests/integration/weblib.sh
. "$(dirname "${BASH_SOURCE[0]}")/weblib.sh"

REPORT=$(require_bin gradeq-report)
need_cmd openssl curl sha256sum
own_db gradeq_it_links65
fresh_release links65
seed small 120
export GRADEQ_OUTPUT_DIR=$WORK/outputs
web_links
# 9100 is a global operator: on no course team
config "$WORK/r.conf" "output_link_key_file=\"$WORK/link.key\"" "output_link_base=\"$BASE\"" \
	"output_operators=[9100, 9101]"
config "$WORK/noop.conf" "output_link_key_file=\"$WORK/link.key\"" "output_link_base=\"$BASE\""
declare_topology -c "$WORK/r.conf"
publish_jobs --course "$SMALL" >/dev/null
"$CONSUMER" -c "$WORK/r.conf" --release "$RELEASE" --drain >"$WORK/grades.log" 2>&1 || die "grading failed"

# staff 9001 and instructor 9002 are on the team; 9003 is a learner only
psql_q "INSERT INTO student_courseaccessrole (user_id, course_id, role) VALUES
	(9001, '$SMALL', 'staff'), (9002, '$SMALL', 'instructor'), (9003, '$SMALL', 'beta_testers')" >/dev/null

# output.<id>.ready reaches gradeq.events (gradeq-admin events follows it)
"$ADMIN" -c "$WORK/r.conf" events --json >"$WORK/events.out" 2>"$WORK/events.log" &
CONSUMER_PIDS+=("$!")
followed() {
	mgmt_curl GET "api/exchanges/$(urlenc "$TEST_VHOST")/gradeq.events/bindings/source" |
		jq -e 'any(.[]; .routing_key == "output.#")'
}
wait_until 60 "gradeq-admin events follows output events" followed
out=$("$REPORT" -c "$WORK/r.conf" --release "$RELEASE" --course "$SMALL" --batch-size 50)
once=$("$REPORT" -c "$WORK/r.conf" --release "$RELEASE" --course "$SMALL" --batch-size 50 --use-once)
"$CONSUMER" -c "$WORK/r.conf" --release "$RELEASE" --drain >"$WORK/report.log" 2>&1 || die "report failed"
assert_eq "sealed" "sealed sealed" "$(psql_q "SELECT string_agg(state, ' ') FROM gradeq_outputs")"
ready_events() { (($(grep -c '"event":"output.ready"' "$WORK/events.out") >= 2)); }
wait_until 60 "output.<id>.ready events" ready_events
assert_eq "event of $out" "output.ready $out" \
	"$(jq -r "select(.output == \"$out\") | \"\(.event) \(.output)\"" "$WORK/events.out")"
assert_fails "no link in the event" grep -q 'sig=\|/outputs/' "$WORK/events.out"

log "url: team members only"
rc=0
"$REPORT" -c "$WORK/r.conf" url "$out" --user 9003 >"$WORK/url.out" 2>"$WORK/url.err" || rc=$?
assert_ne "exit for a non-member" 0 "$rc"
assert_eq "one error line" 1 "$(wc -l <"$WORK/url.err")"
assert_match "why" 'user 9003 is not on the course team' "$(cat "$WORK/url.err")"
assert_eq "nothing on stdout" 0 "$(wc -c <"$WORK/url.out")"
assert_fails "an unknown output" "$REPORT" -c "$WORK/r.conf" url 00000000-0000-4000-8000-000000000000 --user 9001
url=$("$REPORT" -c "$WORK/r.conf" url "$out" --user 9001 --expires 10m)
assert_match "absolute URL" "^$BASE/outputs/$out\\?user=9001&expires=[0-9]+&sig=[0-9a-f]{64}\$" "$url"
assert_fails "the key never in argv" grep -q "$(cat "$WORK/link.key")" <<<"$url"

VIEW_PW=$(openssl rand -hex 12)
printf 'vera:viewer:%s\n' "$(openssl passwd -6 "$VIEW_PW")" >"$WORK/users"
start_web "$WORK/r.conf" --users "$WORK/users"
code() { curl -s -o "$WORK/body" -w '%{http_code}' "$1"; }

log "a member's link serves the sealed bytes"
assert_eq "download" 200 "$(code "$url")"
cmp "$WORK/body" "$GRADEQ_OUTPUT_DIR/$out.csv" || die "downloaded bytes differ from the output"
assert_eq "sha256" "$(psql_q "SELECT sha256 FROM gradeq_outputs WHERE output_id = '$out'")" \
	"$(sha256sum "$WORK/body" | cut -d' ' -f1)"
assert_eq "again (not use-once)" 200 "$(code "$url")"

log "tampered and expired links: 403 and a log line"
sig=${url##*sig=}
exp=${url#*expires=}
exp=${exp%%&*}
assert_eq "another user" 403 "$(code "$BASE/outputs/$out?user=9002&expires=$exp&sig=$sig")"
assert_eq "another output" 403 "$(code "$BASE/outputs/$once?user=9001&expires=$exp&sig=$sig")"
assert_eq "a later expiry" 403 "$(code "$BASE/outputs/$out?user=9001&expires=$((exp + 3600))&sig=$sig")"
assert_eq "no signature" 403 "$(code "$BASE/outputs/$out?user=9001&expires=$exp")"
short=$("$REPORT" -c "$WORK/r.conf" url "$out" --user 9002 --expires 1s)
# the link's expiry is a whole second; wait until it has passed
s_exp=${short#*expires=}
s_exp=${s_exp%%&*}
past() { (($(date +%s) > $1)); }
wait_until 30 "the short link's expiry passes" past "$s_exp"
assert_eq "expired" 403 "$(code "$short")"
refusals() { (($(grep -c 'event=output_link_refused' "$WORK/web.log") >= $1)); }
wait_until 30 "refusals logged" refusals 5
assert_match "expiry logged" 'reason="link expired"' "$(cat "$WORK/web.log")"

log "a member who left the team: refused at download time"
url2=$("$REPORT" -c "$WORK/r.conf" url "$out" --user 9002)
psql_q "DELETE FROM student_courseaccessrole WHERE user_id = 9002" >/dev/null
assert_eq "left the team" 403 "$(code "$url2")"

log "a global operator (output_operators) reads any course's output"
op=$("$REPORT" -c "$WORK/r.conf" url "$out" --user 9100)
assert_eq "operator's download" 200 "$(code "$op")"
cmp "$WORK/body" "$GRADEQ_OUTPUT_DIR/$out.csv" || die "the operator's download differs"
assert_fails "not an operator without the setting" "$REPORT" -c "$WORK/noop.conf" url "$out" --user 9100
assert_fails "an operator's id is no team role" "$REPORT" -c "$WORK/r.conf" url "$out" --user 9102

log "a signed-in user lists the course's outputs"
assert_eq "without a session" 401 "$(code "$BASE/api/outputs?course=$SMALL")"
curl -s -o /dev/null -c "$WORK/jar" -d user=vera --data-urlencode "password=$VIEW_PW" "$BASE/api/login"
curl -s -b "$WORK/jar" -o "$WORK/outputs.json" -G --data-urlencode "course=$SMALL" "$BASE/api/outputs"
assert_eq "listed" "2 $out" "$(jq -r 'length as $n | map(select(.output_id == "'"$out"'"))[0] |
	"\($n) \(.output_id)"' "$WORK/outputs.json")"

log "use-once: gone after one complete download"
u1=$("$REPORT" -c "$WORK/r.conf" url "$once" --user 9001)
assert_eq "first download" 200 "$(code "$u1")"
cmp -s "$WORK/body" <(printf '') && die "first download was empty"
state_is() { [[ $(psql_q "SELECT state FROM gradeq_outputs WHERE output_id = '$1'") == "$2" ]]; }
wait_until 30 "use-once output deleted" state_is "$once" deleted
[[ ! -e $GRADEQ_OUTPUT_DIR/$once.csv ]] || die "use-once output's file is still there"
assert_eq "second download" 404 "$(code "$u1")"
assert_eq "downloaded_at recorded" t \
	"$(psql_q "SELECT downloaded_at IS NOT NULL FROM gradeq_outputs WHERE output_id = '$once'")"
log "ok"
