#!/usr/bin/env bash
# gradeq-web's API with curl against the real servers (docs/web-api.md):
# login (401 on a wrong password, 429 after repeated failures), 401
# without a session, /api/status equal to gradeq-admin status --json, the
# read routes, Server-Sent Events delivering a run's events, dead jobs
# listed from the database (reason, first user ids) while the dead queue's
# messages are never delivered, a viewer's action and an action without
# the CSRF token refused with 403, an operator's replay graded once and an
# operator's cancel recorded with by = web:NAME, and no password, cookie or
# token in the daemon's log.
set -euo pipefail
# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"

WEB=$(require_bin gradeq-web)
need_cmd openssl
BROKEN=$MEDIUM
own_db gradeq_it_web61
fresh_release web61
seed small,medium 300
good_policy=$(psql_q "SELECT grading_policy FROM courses WHERE course_id = '$BROKEN'")
psql_q "UPDATE courses SET grading_policy = '{\"GRADER\": {\"type\": \"Homework\"},
	\"GRADE_CUTOFFS\": {\"Pass\": 0.5}}' WHERE course_id = '$BROKEN'" >/dev/null
config "$WORK/w.conf" 'retry_tiers=[1]'
declare_topology -c "$WORK/w.conf"

# a users file with a viewer and an operator
VIEW_PW=$(openssl rand -hex 12)
OPS_PW=$(openssl rand -hex 12)
{
	printf '# gradeq-web users\n'
	printf 'vera:viewer:%s\n' "$(openssl passwd -6 "$VIEW_PW")"
	printf 'otto:operator:%s\n' "$(openssl passwd -6 "$OPS_PW")"
} >"$WORK/users"
chmod 600 "$WORK/users"

# a free port of the loopback interface
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
"$WEB" -c "$WORK/w.conf" --listen "127.0.0.1:$PORT" --users "$WORK/users" 2>"$WORK/web.log" &
WEB_PID=$!
CONSUMER_PIDS+=("$WEB_PID")
wait_until 30 "gradeq-web answers" \
	bash -c "[[ \$(curl -s -o /dev/null -w '%{http_code}' $BASE/api/session) == 401 ]]"

# code METHOD PATH [CURL ARGS...]: the HTTP status of a request
code() {
	local m=$1 p=$2
	shift 2
	curl -s -o "$WORK/body" -w '%{http_code}' -X "$m" "$@" "$BASE$p"
}

# --- login, sessions ---------------------------------------------------------
assert_eq "status without a session" 401 "$(code GET /api/status)"
assert_eq "wrong password" 401 "$(code POST /api/login -d user=otto -d password=nope)"
assert_eq "unknown user" 401 "$(code POST /api/login -d user=nobody -d password=nope)"
assert_eq "viewer login" 200 "$(code POST /api/login -c "$WORK/vjar" -d user=vera --data-urlencode "password=$VIEW_PW")"
assert_eq "viewer role" viewer "$(jq -r .role "$WORK/body")"
assert_eq "operator login" 200 "$(code POST /api/login -c "$WORK/ojar" -D "$WORK/login.headers" \
	-d user=otto --data-urlencode "password=$OPS_PW")"
OPS_CSRF=$(jq -r .csrf_token "$WORK/body")
assert_match "session cookie flags" 'Set-Cookie: gradeq_session=[0-9a-f]{64}; Path=/; HttpOnly; SameSite=Strict' \
	"$(tr -d '\r' <"$WORK/login.headers")"
OPS_COOKIE=$(awk '$6 == "gradeq_session" { print $7 }' "$WORK/ojar")
assert_eq "session" 200 "$(code GET /api/session -b "$WORK/ojar")"
assert_eq "session's csrf token" "$OPS_CSRF" "$(jq -r .csrf_token "$WORK/body")"
VIEW_CSRF=$(curl -s -b "$WORK/vjar" "$BASE/api/session" | jq -r .csrf_token)
assert_eq "a forged cookie" 401 "$(code GET /api/status -H "Cookie: gradeq_session=$(printf '%064d' 0)")"
assert_eq "no such route" 404 "$(code GET /api/nothing -b "$WORK/ojar")"
assert_eq "a method the route does not take" 405 "$(code DELETE /api/status -b "$WORK/ojar")"

# the page, with its security headers
assert_eq "the page" 200 "$(code GET / -D "$WORK/page.headers")"
h=$(tr -d '\r' <"$WORK/page.headers")
assert_match "page's content type" 'Content-Type: text/html' "$h"
assert_match "page's CSP" "Content-Security-Policy: default-src 'self'" "$h"
assert_match "nosniff" 'X-Content-Type-Options: nosniff' "$h"
assert_match "no frames" 'X-Frame-Options: DENY' "$h"
assert_match "no referrer" 'Referrer-Policy: no-referrer' "$h"
assert_match "no cache" 'Cache-Control: no-cache' "$h"
assert_eq "the script" 200 "$(code GET /static/app.js)"
assert_eq "the script is the file" "$(sha256sum <"$GRADEQ_SRC/web/app.js")" "$(sha256sum <"$WORK/body")"
assert_eq "the style sheet" 200 "$(code GET /static/style.css)"

# --- live events: a stream opened before the run ---------------------------
curl -s -N -b "$WORK/vjar" "$BASE/api/events" >"$WORK/events.txt" 2>/dev/null &
SSE_PID=$!
CONSUMER_PIDS+=("$SSE_PID")
wait_until 20 "the event stream opened" grep -q '^retry: 3000' "$WORK/events.txt"

# --- a run: the small course graded, the broken one's jobs dead --------------
run=$(publish_jobs --course "$SMALL" --course "$BROKEN" --batch-size 100)
"$CONSUMER" -c "$WORK/w.conf" --release "$RELEASE" --drain >>"$WORK/consumer.log" 2>&1 ||
	die "consumer failed"
dead=$(psql_q "SELECT count(*) FROM gradeq_jobs WHERE run_id = '$run' AND state = 'dead'")
assert_ge "dead jobs of the broken course" 1 "$dead"
wait_until 20 "an event of the run on the stream" grep -q "\"routing_key\":\"run\\.$run\\." "$WORK/events.txt"
assert_match "events are framed" '^event: gradeq$' "$(grep -m1 '^event:' "$WORK/events.txt")"

# status equals gradeq-admin status --json (runs, their jobs and learners)
pick='[.runs[] | {run_id, release, state, jobs, learners_total, learners_complete}]'
assert_eq "status" 200 "$(code GET /api/status -b "$WORK/vjar")"
assert_eq "status equals gradeq-admin status --json" \
	"$("$ADMIN" -c "$WORK/w.conf" status --json | jq -c "$pick")" "$(jq -c "$pick" "$WORK/body")"
assert_eq "status's releases" "$RELEASE" "$(jq -r --arg r "$RELEASE" '.releases[] | select(.name == $r) | .name' "$WORK/body")"
assert_eq "status of one run" 200 "$(code GET "/api/status?run=$run" -b "$WORK/vjar")"
assert_eq "runs of status?run" "[\"$run\"]" "$(jq -c '[.runs[].run_id]' "$WORK/body")"

# the read routes
assert_eq "states" 200 "$(code GET /api/states -b "$WORK/vjar")"
assert_match "job states" '"pending"' "$(jq -c .job.states "$WORK/body")"
assert_match "run transitions" '\["publishing","running"\]' "$(jq -c .run.transitions "$WORK/body")"
assert_eq "run" 200 "$(code GET "/api/runs/$run" -b "$WORK/vjar")"
assert_eq "run's dead jobs by state" "$dead" "$(jq .jobs_by_state.dead "$WORK/body")"
assert_eq "run's object" "$run" "$(jq -r .run.run_id "$WORK/body")"
assert_eq "run's courses" 2 "$(jq '.jobs_by_course | length' "$WORK/body")"
assert_eq "unknown run" 404 "$(code GET /api/runs/00000000-0000-0000-0000-000000000000 -b "$WORK/vjar")"
assert_eq "run's dead jobs" 200 "$(code GET "/api/runs/$run/jobs?state=dead&limit=1000" -b "$WORK/vjar")"
assert_eq "total of the filter" "$dead" "$(jq .total "$WORK/body")"
assert_eq "only the broken course" "[\"$BROKEN\"]" "$(jq -c '[.jobs[].course_id] | unique' "$WORK/body")"
job=$(jq -r '.jobs[0].job_id' "$WORK/body")
assert_eq "a bad state filter" 400 "$(code GET "/api/runs/$run/jobs?state=bogus" -b "$WORK/vjar")"
assert_eq "job" 200 "$(code GET "/api/jobs/$job" -b "$WORK/vjar")"
assert_eq "job's events oldest first" pending "$(jq -r '.events[0].from_state' "$WORK/body")"
assert_eq "job's last event" dead "$(jq -r '.events[-1].to_state' "$WORK/body")"
assert_eq "job's first user ids" \
	"$(psql_q "SELECT array_to_json(first_user_ids) FROM gradeq_jobs WHERE job_id = '$job'")" \
	"$(jq -c .first_user_ids "$WORK/body")"
assert_eq "at most 10 first user ids" 10 "$(jq '.first_user_ids | length' "$WORK/body")"
assert_eq "consumers" 200 "$(code GET /api/consumers -b "$WORK/vjar")"
assert_eq "consumers is a list" array "$(jq -r '.consumers | type' "$WORK/body")"

# --- dead jobs from the database; the dead queue is never delivered from ----
# Each message's delivery count, by message id: peeking (the management
# API's get, requeueing) delivers every message once, so two peeks around
# the listing differ by exactly one when the listing delivered nothing.
counts() {
	peek "$(dead_queue)" | jq -c 'map({(.properties.message_id): (.properties.headers["x-delivery-count"] // 0)}) | add'
}
wait_until 30 "the dead queue holds the dead jobs" depth_is "$(dead_queue)" "$dead"
before=$(counts)
assert_eq "dead list" 200 "$(code GET "/api/dead?release=$RELEASE" -b "$WORK/vjar")"
assert_eq "dead total" "$dead" "$(jq .total "$WORK/body")"
assert_match "dead reason" 'grader|GRADER|policy' "$(jq -r '.dead[0].last_error' "$WORK/body")"
assert_eq "dead job's first user ids" 10 "$(jq '.dead[0].first_user_ids | length' "$WORK/body")"
assert_eq "dead job's course" "$BROKEN" "$(jq -r '.dead[0].course_id' "$WORK/body")"
assert_eq "dead by course" "$dead" \
	"$(curl -s -G -b "$WORK/vjar" --data-urlencode "release=$RELEASE" --data-urlencode "course=$BROKEN" \
		"$BASE/api/dead" | jq .total)"
assert_eq "dead of another course" 0 \
	"$(curl -s -G -b "$WORK/vjar" --data-urlencode "course=$SMALL" "$BASE/api/dead" | jq .total)"
after=$(counts)
assert_eq "dead messages peeked" "$dead" "$(jq length <<<"$after")"
assert_eq "the listing delivered no dead message" "$(jq -c 'map_values(. + 1)' <<<"$before")" "$after"

# --- actions: role, CSRF, confirmation ---------------------------------------
body=$(jq -nc --arg r "$RELEASE" --arg c "$BROKEN" '{confirm: true, release: $r, course: $c}')
assert_eq "a viewer's replay" 403 "$(code POST /api/dead/replay -b "$WORK/vjar" \
	-H "X-CSRF-Token: $VIEW_CSRF" -H 'Content-Type: application/json' -d "$body")"
assert_eq "a replay without the CSRF token" 403 "$(code POST /api/dead/replay -b "$WORK/ojar" \
	-H 'Content-Type: application/json' -d "$body")"
assert_eq "a replay with a wrong CSRF token" 403 "$(code POST /api/dead/replay -b "$WORK/ojar" \
	-H "X-CSRF-Token: $VIEW_CSRF" -H 'Content-Type: application/json' -d "$body")"
assert_eq "an unconfirmed replay" 400 "$(code POST /api/dead/replay -b "$WORK/ojar" \
	-H "X-CSRF-Token: $OPS_CSRF" -H 'Content-Type: application/json' \
	-d "$(jq -c '.confirm = false' <<<"$body")")"
assert_eq "dead jobs still dead" "$dead" "$(psql_q "SELECT count(*) FROM gradeq_jobs WHERE state = 'dead'")"

# an export is the file gradeq-replay export writes; the messages stay
assert_eq "operator's export" 200 "$(code POST /api/dead/export -b "$WORK/ojar" -D "$WORK/export.headers" \
	-H "X-CSRF-Token: $OPS_CSRF" -H 'Content-Type: application/json' -d "$body")"
h=$(tr -d '\r' <"$WORK/export.headers")
assert_match "export's type" 'Content-Type: application/octet-stream' "$h"
assert_match "export is an attachment" 'Content-Disposition: attachment; filename=' "$h"
assert_eq "export's format" gradeq-dead-letters "$(head -n1 "$WORK/body" | jq -r .format)"
assert_eq "export's records" "$dead" "$(tail -n1 "$WORK/body" | jq .records)"
assert_eq "the dead queue after an export" "$dead" "$(queue_depth "$(dead_queue)")"

# the operator mends the course and replays its dead jobs
psql_q "UPDATE courses SET grading_policy = '$good_policy' WHERE course_id = '$BROKEN'" >/dev/null
assert_eq "operator's replay" 200 "$(code POST /api/dead/replay -b "$WORK/ojar" \
	-H "X-CSRF-Token: $OPS_CSRF" -H 'Content-Type: application/json' -d "$body")"
assert_eq "replayed" "$dead" "$(jq .replayed "$WORK/body")"
assert_eq "replay events by web:otto" "$dead" "$(psql_q "SELECT count(*) FROM gradeq_job_events
	WHERE run_id = '$run' AND from_state = 'dead' AND to_state = 'pending' AND by = 'web:otto'")"
"$CONSUMER" -c "$WORK/w.conf" --release "$RELEASE" --drain >>"$WORK/consumer.log" 2>&1 ||
	die "consumer failed"
assert_fully_graded "$BROKEN"
check_exactly_once "$run"
assert_eq "nothing left dead" 0 "$(curl -s -b "$WORK/vjar" "$BASE/api/dead?release=$RELEASE" | jq .total)"

# --- purge -----------------------------------------------------------------
psql_q "UPDATE courses SET grading_policy = '{\"GRADER\": {\"type\": \"Homework\"},
	\"GRADE_CUTOFFS\": {\"Pass\": 0.5}}' WHERE course_id = '$BROKEN'" >/dev/null
run3=$(publish_jobs --course "$BROKEN" --batch-size 100)
"$CONSUMER" -c "$WORK/w.conf" --release "$RELEASE" --drain >>"$WORK/consumer.log" 2>&1 ||
	die "consumer failed"
dead3=$(psql_q "SELECT count(*) FROM gradeq_jobs WHERE run_id = '$run3' AND state = 'dead'")
assert_ge "dead jobs of the broken course again" 1 "$dead3"
wait_until 30 "the dead queue holds them" depth_is "$(dead_queue)" "$dead3"
assert_eq "operator's purge" 200 "$(code POST /api/dead/purge -b "$WORK/ojar" \
	-H "X-CSRF-Token: $OPS_CSRF" -H 'Content-Type: application/json' -d "$body")"
assert_eq "purged" "$dead3" "$(jq .purged "$WORK/body")"
assert_eq "purged jobs discarded by web:otto" "$dead3" "$(psql_q "SELECT count(*) FROM gradeq_job_events
	WHERE run_id = '$run3' AND to_state = 'discarded' AND by = 'web:otto'")"
wait_until 30 "the dead queue empty" depth_is "$(dead_queue)" 0

# --- cancel ----------------------------------------------------------------
run2=$(publish_jobs --course "$SMALL" --batch-size 100)
assert_eq "a viewer's cancel" 403 "$(code POST "/api/runs/$run2/cancel" -b "$WORK/vjar" \
	-H "X-CSRF-Token: $VIEW_CSRF" -d '{"confirm": true}')"
assert_eq "operator's cancel" 200 "$(code POST "/api/runs/$run2/cancel" -b "$WORK/ojar" \
	-H "X-CSRF-Token: $OPS_CSRF" -d '{"confirm": true}')"
assert_eq "canceled jobs" "$(psql_q "SELECT count(*) FROM gradeq_jobs WHERE run_id = '$run2'")" \
	"$(jq .canceled_jobs "$WORK/body")"
assert_eq "cancel recorded by web:otto" "running|canceled|web:otto" "$(psql_q "SELECT from_state || '|' ||
	to_state || '|' || by FROM gradeq_job_events WHERE run_id = '$run2' AND job_id IS NULL
	AND to_state = 'canceled'")"
assert_eq "cancel of a finished run" 409 "$(code POST "/api/runs/$run/cancel" -b "$WORK/ojar" \
	-H "X-CSRF-Token: $OPS_CSRF" -d '{"confirm": true}')"

# --- logout, rate limit ------------------------------------------------------
assert_eq "logout" 200 "$(code POST /api/logout -b "$WORK/ojar" -H "X-CSRF-Token: $OPS_CSRF")"
assert_eq "the session is gone" 401 "$(code GET /api/session -b "$WORK/ojar")"
for _ in 1 2 3 4 5; do
	code POST /api/login -d user=vera -d password=wrong >/dev/null
done
assert_eq "login after repeated failures" 429 "$(code POST /api/login -D "$WORK/429.headers" \
	-d user=vera --data-urlencode "password=$VIEW_PW")"
assert_match "Retry-After" 'Retry-After: [1-9]' "$(tr -d '\r' <"$WORK/429.headers")"

# --- consumers: from the management API's connections, with the job held --
# the grade table locked, the consumer waits inside its first job
lock_table
run4=$(publish_jobs --course "$SMALL" --batch-size 100)
start_consumer consumer-live.log -c "$WORK/w.conf"
# consumer_entry: the consumer's entry in /api/consumers (listed once)
consumer_entry() {
	curl -s -b "$WORK/vjar" "$BASE/api/consumers" |
		jq -ce --argjson pid "$CONSUMER_PID" --arg r "$RELEASE" \
			'[.consumers[] | select(.pid == $pid and .release == $r)] | if length == 1 then .[0] else error("not once") end'
}
holding() {
	[[ $(consumer_entry | jq -r .course_id) == "$SMALL" ]]
}
wait_until 60 "the consumer listed with the job it holds" holding
c=$(consumer_entry)
assert_match "consumer's connection name" "^gradeq-consumer release=$RELEASE host=.* pid=$CONSUMER_PID" "$(jq -r .connection <<<"$c")"
assert_eq "the job it holds" in_progress "$(psql_q "SELECT state FROM gradeq_jobs WHERE job_id = '$(jq -r .job_id <<<"$c")'")"
assert_match "for how long" '^[0-9]+(\.[0-9]+)?$' "$(jq -r .holding_s <<<"$c")"
assert_match "consumer's connected_at" '^20[0-9-]+T[0-9:]+Z$' "$(jq -r .connected_at <<<"$c")"
unlock_table
wait_until 60 "the run graded" run_complete "$run4"
idle() {
	[[ $(consumer_entry | jq -r '"\(.job_id) \(.done)"') == "null $(psql_q "SELECT count(*) FROM gradeq_jobs WHERE run_id = '$run4'")" ]]
}
wait_until 60 "the consumer idle, its jobs counted done" idle
kill -TERM "$CONSUMER_PID"
wait_exit "$CONSUMER_PID" 60

# --- TLS and a trusted reverse proxy's header -------------------------------
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/web.key" -out "$WORK/web.pem" -days 1 \
	-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1 || die "openssl req failed"
config "$WORK/tls.conf" "web_tls_cert=\"$WORK/web.pem\"" "web_tls_key=\"$WORK/web.key\"" \
	'web_trusted_header="X-Remote-User"' 'web_trusted_proxy="127.0.0.1"'
PORT2=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
TLS=https://127.0.0.1:$PORT2
"$WEB" -c "$WORK/tls.conf" --listen "127.0.0.1:$PORT2" --users "$WORK/users" 2>"$WORK/web-tls.log" &
TLS_PID=$!
CONSUMER_PIDS+=("$TLS_PID")
wait_until 30 "gradeq-web answers over TLS" \
	bash -c "[[ \$(curl -s --cacert '$WORK/web.pem' -o /dev/null -w '%{http_code}' $TLS/api/session) == 401 ]]"
assert_eq "login over TLS" 200 "$(curl -s --cacert "$WORK/web.pem" -o /dev/null -D "$WORK/tls.headers" \
	-w '%{http_code}' -d user=vera --data-urlencode "password=$VIEW_PW" "$TLS/api/login")"
assert_match "the cookie is Secure over TLS" 'Set-Cookie: gradeq_session=[0-9a-f]{64}; Path=/; HttpOnly; SameSite=Strict; Secure' \
	"$(tr -d '\r' <"$WORK/tls.headers")"
assert_eq "plain HTTP to the TLS port" 000 "$(curl -s -o /dev/null -w '%{http_code}' -m 5 "http://127.0.0.1:$PORT2/api/session" || true)"
tcode() {
	curl -s --cacert "$WORK/web.pem" -o "$WORK/body" -w '%{http_code}' "$@"
}
assert_eq "the proxy's header" 200 "$(tcode -H 'X-Remote-User: otto' "$TLS/api/session")"
assert_eq "role from the users file" operator "$(jq -r .role "$WORK/body")"
PROXY_CSRF=$(jq -r .csrf_token "$WORK/body")
assert_eq "status through the proxy" 200 "$(tcode -H 'X-Remote-User: vera' "$TLS/api/status")"
assert_eq "an unknown user in the header" 401 "$(tcode -H 'X-Remote-User: mallory' "$TLS/api/status")"
assert_eq "the header from another address" 401 "$(tcode --interface 127.0.0.2 -H 'X-Remote-User: otto' "$TLS/api/status")"
assert_eq "an action through the proxy without CSRF" 403 "$(tcode -H 'X-Remote-User: otto' \
	-d '{"confirm": true}' "$TLS/api/runs/$run2/cancel")"
assert_eq "an action through the proxy" 200 "$(tcode -H 'X-Remote-User: otto' -H "X-CSRF-Token: $PROXY_CSRF" \
	-d '{"confirm": true}' "$TLS/api/runs/$run2/cancel")"
kill -TERM "$TLS_PID"
wait_exit "$TLS_PID" 20

# SIGHUP reopens the log and the server goes on
kill -HUP "$WEB_PID"
wait_until 30 "the log reopened" grep -q 'event=log_reopened' "$WORK/web.log"
assert_eq "answers after SIGHUP" 401 "$(code GET /api/session)"

# --- the log: one line per request, no secret --------------------------------
assert_match "requests logged" "event=request method=GET path=/api/status status=200 user=vera" "$(cat "$WORK/web.log")"
for secret in "$VIEW_PW" "$OPS_PW" "$OPS_COOKIE" "$OPS_CSRF" "$VIEW_CSRF" "$PROXY_CSRF"; do
	if grep -qF -- "$secret" "$WORK/web.log" "$WORK/web-tls.log"; then
		die "a secret is in gradeq-web's log"
	fi
done
kill -TERM "$WEB_PID"
wait_exit "$WEB_PID" 20
assert_eq "gradeq-web's exit on SIGTERM" 0 "$EXIT_STATUS"
log "gradeq-web's API, roles, CSRF, live events, dead jobs and actions"
