#!/usr/bin/env bash
# gradeq-web's outputs for a signed-in dashboard user. The users file maps
# a dashboard user to a platform user (name:role:hash:PLATFORM_USER_ID);
# that platform user's course team roles (student_courseaccessrole: staff,
# instructor) or its place in output_operators decide which courses the
# user sees and which outputs it may download. A member asks for a link
# (POST /api/outputs/ID/link, CSRF) that downloads the exact bytes of the
# listing's SHA-256; a non-member gets 403; a user without a platform user
# gets no link and a message saying why; a global operator sees every
# course; a member deletes an output of its course. Links are never logged.
set -euo pipefail
# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"
# shellcheck source=tests/integration/weblib.sh
. "$(dirname "${BASH_SOURCE[0]}")/weblib.sh"

REPORT=$(require_bin gradeq-report)
need_cmd openssl curl sha256sum jq
own_db gradeq_it_webout68
fresh_release webout68
"$ADMIN" seed --courses small,medium --learners 80 >/dev/null 2>"$WORK/seed.log" || die "seed failed"
export GRADEQ_OUTPUT_DIR=$WORK/outputs
web_links
config "$WORK/r.conf" "output_link_key_file=\"$WORK/link.key\"" "output_link_base=\"$BASE\"" \
	"output_operators=[9100]"
declare_topology -c "$WORK/r.conf"
publish_jobs --course "$SMALL" >/dev/null
publish_jobs --course "$MEDIUM" >/dev/null
"$CONSUMER" -c "$WORK/r.conf" --release "$RELEASE" --drain >"$WORK/grades.log" 2>&1 || die "grading failed"
# 9001 is staff of SMALL, 9002 instructor of MEDIUM, 9003 a beta tester
psql_q "INSERT INTO student_courseaccessrole (user_id, course_id, role) VALUES
	(9001, '$SMALL', 'staff'), (9002, '$MEDIUM', 'instructor'), (9003, '$SMALL', 'beta_testers')" >/dev/null

small=$("$REPORT" -c "$WORK/r.conf" --release "$RELEASE" --course "$SMALL" --batch-size 30)
once=$("$REPORT" -c "$WORK/r.conf" --release "$RELEASE" --course "$SMALL" --batch-size 30 --use-once)
medium=$("$REPORT" -c "$WORK/r.conf" --release "$RELEASE" --course "$MEDIUM" --batch-size 30)
"$CONSUMER" -c "$WORK/r.conf" --release "$RELEASE" --drain >"$WORK/report.log" 2>&1 || die "report failed"
assert_eq "sealed" "sealed sealed sealed" "$(psql_q "SELECT string_agg(state, ' ') FROM gradeq_outputs")"
# recorded, never built: no consumer runs after this
pending=$("$REPORT" -c "$WORK/r.conf" --release "$RELEASE" --course "$SMALL" --batch-size 30)

PW=$(openssl rand -hex 12)
HASH=$(openssl passwd -6 "$PW")
{
	printf '# dashboard users; the fourth field is the platform user id\n'
	printf 'mem:viewer:%s:9001\n' "$HASH"
	printf 'other:viewer:%s:9002\n' "$HASH"
	printf 'beta:viewer:%s:9003\n' "$HASH"
	printf 'op:viewer:%s:9100\n' "$HASH"
	printf 'nomap:operator:%s\n' "$HASH"
} >"$WORK/users"
start_web "$WORK/r.conf" --users "$WORK/users"

# login NAME: a cookie jar $WORK/NAME.jar; prints the CSRF token
login() {
	curl -s -c "$WORK/$1.jar" -d "user=$1" --data-urlencode "password=$PW" "$BASE/api/login" |
		jq -r .csrf_token
}
# get NAME PATH: GET as NAME into $WORK/body; prints the status
get() { curl -s -b "$WORK/$1.jar" -o "$WORK/body" -w '%{http_code}' "$BASE$2"; }
# post NAME CSRF PATH: POST as NAME into $WORK/body; prints the status
post() {
	curl -s -b "$WORK/$1.jar" -H "X-CSRF-Token: $2" -X POST -o "$WORK/body" -w '%{http_code}' "$BASE$3"
}
enc() { jq -rn --arg s "$1" '$s | @uri'; }
field() { psql_q "SELECT $2 FROM gradeq_outputs WHERE output_id = '$1'"; }

MEM=$(login mem)
OTHER=$(login other)
BETA=$(login beta)
OP=$(login op)
NOMAP=$(login nomap)
[[ $MEM =~ ^[0-9a-f]{64}$ && $NOMAP =~ ^[0-9a-f]{64}$ ]] || die "logins failed"

log "a course team member sees its courses and downloads through a minted link"
assert_eq "courses" 200 "$(get mem /api/outputs/courses)"
assert_eq "mem's courses" "9001 false [\"$SMALL\"] null" \
	"$(jq -r '"\(.platform_user) \(.operator) \(.courses | tojson) \(.message)"' "$WORK/body")"
assert_eq "list" 200 "$(get mem "/api/outputs?course=$(enc "$SMALL")")"
cp "$WORK/body" "$WORK/small.json"
assert_eq "newest first, what each allows" "$pending pending false true
$once sealed true true
$small sealed true true" \
	"$(jq -r '.[] | "\(.output_id) \(.state) \(.can_download) \(.can_delete)"' "$WORK/small.json")"
assert_eq "no CSRF token, no link" 403 "$(post mem "" "/api/outputs/$small/link")"
assert_eq "link" 200 "$(post mem "$MEM" "/api/outputs/$small/link")"
link=$(jq -r .url "$WORK/body")
assert_match "a relative signed link" "^/outputs/$small\\?user=9001&expires=[0-9]+&sig=[0-9a-f]{64}\$" "$link"
assert_eq "download" 200 "$(curl -s -o "$WORK/dl" -w '%{http_code}' "$BASE$link")"
cmp "$WORK/dl" "$GRADEQ_OUTPUT_DIR/$small.csv" || die "downloaded bytes differ from the output"
assert_eq "the listing's sha256" "$(jq -r --arg id "$small" '.[] | select(.output_id == $id) | .sha256' \
	"$WORK/small.json")" "$(sha256sum "$WORK/dl" | cut -d' ' -f1)"
assert_eq "not sealed yet" 409 "$(post mem "$MEM" "/api/outputs/$pending/link")"
assert_eq "unknown output" 404 "$(post mem "$MEM" "/api/outputs/00000000-0000-4000-8000-000000000000/link")"

log "a non-member: no link, nothing downloadable"
assert_eq "another course's output" 403 "$(post mem "$MEM" "/api/outputs/$medium/link")"
assert_eq "list of another course" 200 "$(get mem "/api/outputs?course=$(enc "$MEDIUM")")"
assert_eq "nothing downloadable" "false false" "$(jq -r '.[] | "\(.can_download) \(.can_delete)"' "$WORK/body")"
assert_eq "instructor of another course" 403 "$(post other "$OTHER" "/api/outputs/$small/link")"
assert_match "why" "not on this output's course team" "$(jq -r .error "$WORK/body")"
assert_eq "a beta tester is no team" 403 "$(post beta "$BETA" "/api/outputs/$small/link")"
assert_eq "beta's courses" 200 "$(get beta /api/outputs/courses)"
assert_eq "none" "[] your platform user is on no course team" \
	"$(jq -r '"\(.courses | tojson) \(.message)"' "$WORK/body")"

log "no platform user: no links, and why"
assert_eq "courses" 200 "$(get nomap /api/outputs/courses)"
assert_eq "nomap" "null [] true" \
	"$(jq -r '"\(.platform_user) \(.courses | tojson) \(.message | test("no platform user"))"' "$WORK/body")"
assert_eq "list" 200 "$(get nomap "/api/outputs?course=$(enc "$SMALL")")"
assert_eq "nothing downloadable" "false" "$(jq -r '[.[] | .can_download] | unique | .[]' "$WORK/body")"
assert_eq "no link even as a dashboard operator" 403 "$(post nomap "$NOMAP" "/api/outputs/$small/link")"
assert_match "why" "no platform user" "$(jq -r .error "$WORK/body")"

log "a global operator sees every course"
assert_eq "courses" 200 "$(get op /api/outputs/courses)"
assert_eq "op's courses" "9100 true $(jq -cn --arg a "$MEDIUM" --arg b "$SMALL" '[$a, $b] | sort')" \
	"$(jq -r '"\(.platform_user) \(.operator) \(.courses | tojson)"' "$WORK/body")"
assert_eq "link" 200 "$(post op "$OP" "/api/outputs/$medium/link")"
assert_eq "download" 200 "$(curl -s -o "$WORK/dl" -w '%{http_code}' "$BASE$(jq -r .url "$WORK/body")")"
cmp "$WORK/dl" "$GRADEQ_OUTPUT_DIR/$medium.csv" || die "the operator's download differs"

log "a member deletes an output of its course; others may not"
assert_eq "a non-member" 403 "$(post other "$OTHER" "/api/outputs/$once/delete")"
assert_eq "no platform user" 403 "$(post nomap "$NOMAP" "/api/outputs/$once/delete")"
assert_eq "no CSRF token" 403 "$(post mem "" "/api/outputs/$once/delete")"
assert_eq "still sealed" sealed "$(field "$once" state)"
assert_eq "member" 200 "$(post mem "$MEM" "/api/outputs/$once/delete")"
assert_eq "deleted" deleted "$(field "$once" state)"
[[ ! -e $GRADEQ_OUTPUT_DIR/$once.csv ]] || die "the deleted output's file is still there"
assert_eq "again" 404 "$(post mem "$MEM" "/api/outputs/$once/delete")"

log "links and signatures are never logged"
sig=${link##*sig=}
assert_fails "no signature in the log" grep -q "$sig" "$WORK/web.log"
assert_fails "no link in the log" grep -q 'sig=' "$WORK/web.log"
assert_match "minting logged" "event=output_link_minted output=$small user=\"?mem\"? platform_user=9001" \
	"$(cat "$WORK/web.log")"
log "ok"
