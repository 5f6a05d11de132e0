#!/usr/bin/env bash
# A use-once output is served to one download at a time, and only a
# complete download deletes it. A client that holds its download open (it
# stops reading a file far larger than the socket buffers) keeps the output
# claimed: a second request meanwhile gets 409. A download cut short leaves
# the output (sealed, its file there) for the next try; the next complete
# one gets the exact bytes and the output is gone (404 after). On the file
# backend; the s3 backend goes through the same claim (67-report-s3-once).
set -euo pipefail
# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"
# shellcheck source=tests/integration/weblib.sh
. "$(dirname "${BASH_SOURCE[0]}")/weblib.sh"

REPORT=$(require_bin gradeq-report)
need_cmd openssl curl python3 cmp
own_db gradeq_it_once69
fresh_release once69
seed small 40
export GRADEQ_OUTPUT_DIR=$WORK/outputs
web_links
config "$WORK/r.conf" "output_link_key_file=\"$WORK/link.key\"" "output_link_base=\"$BASE\""
declare_topology -c "$WORK/r.conf"
publish_jobs --course "$SMALL" >/dev/null
"$CONSUMER" -c "$WORK/r.conf" --release "$RELEASE" --drain >"$WORK/grades.log" 2>&1 || die "grading failed"
psql_q "INSERT INTO student_courseaccessrole (user_id, course_id, role) VALUES (9001, '$SMALL', 'staff')" >/dev/null
once=$("$REPORT" -c "$WORK/r.conf" --release "$RELEASE" --course "$SMALL" --use-once)
"$CONSUMER" -c "$WORK/r.conf" --release "$RELEASE" --drain >"$WORK/report.log" 2>&1 || die "report failed"
field() { psql_q "SELECT $1 FROM gradeq_outputs WHERE output_id = '$once'"; }
assert_eq "sealed" sealed "$(field state)"
# a file far larger than loopback's socket buffers (a few MiB each way), so
# that a client which stops reading holds the transfer open
FILE=$GRADEQ_OUTPUT_DIR/$once.csv
head -c $((48 * 1024 * 1024)) /dev/urandom >"$FILE"
cp "$FILE" "$WORK/expected"

start_web "$WORK/r.conf" --users /dev/null
url=$("$REPORT" -c "$WORK/r.conf" url "$once" --user 9001)
code() { curl -s -o /dev/null -w '%{http_code}' "$url"; }

# holder NAME: GETs the link, writes the status line to NAME.status, stops
# reading until NAME.go holds "read" (then reads the rest into NAME.body)
# or "close" (then hangs up)
holder() {
	python3 - "$PORT" "${url#"$BASE"}" "$WORK/$1" <<'PY' &
import os, socket, sys, time
port, path, name = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
s.sendall(("GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" % path).encode())
buf = b""
while b"\r\n\r\n" not in buf:
    chunk = s.recv(4096)
    if not chunk:
        sys.exit("connection closed before the headers")
    buf += chunk
head, body = buf.split(b"\r\n\r\n", 1)
with open(name + ".status", "w") as f:
    f.write(head.split(b"\r\n", 1)[0].decode() + "\n")
while not os.path.exists(name + ".go"):
    time.sleep(0.05)  # waiting for the test's word, not for the server
what = open(name + ".go").read().strip()
if what == "close":
    s.close()
    sys.exit(0)
with open(name + ".body", "wb") as f:
    f.write(body)
    while True:
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        f.write(chunk)
PY
	HOLDER_PID=$!
	CONSUMER_PIDS+=("$HOLDER_PID")
}
status_of() { [[ -s $WORK/$1.status ]]; }

log "a download under way holds the use-once output: another request gets 409"
holder a
wait_until 60 "the first download started" status_of a
assert_match "first" '^HTTP/1.1 200' "$(cat "$WORK/a.status")"
assert_eq "a second request meanwhile" 409 "$(code)"
assert_eq "still sealed" sealed "$(field state)"

log "a download cut short leaves the output"
echo close >"$WORK/a.go"
wait "$HOLDER_PID" || die "the first client failed"
incomplete() { grep -q "event=output_download_incomplete output=$once" "$WORK/web.log"; }
wait_until 60 "gradeq-web to see the download cut short" incomplete
assert_eq "still sealed" sealed "$(field state)"
[[ -e $FILE ]] || die "the file went with an incomplete download"
assert_eq "no download recorded" t "$(field 'downloaded_at IS NULL')"

log "the next complete download gets the bytes, then the output is gone"
holder b
wait_until 60 "the second download started" status_of b
assert_match "second" '^HTTP/1.1 200' "$(cat "$WORK/b.status")"
assert_eq "a request meanwhile" 409 "$(code)"
echo read >"$WORK/b.go"
wait "$HOLDER_PID" || die "the second client failed"
cmp "$WORK/b.body" "$WORK/expected" || die "the complete download differs from the output"
deleted() { [[ $(field state) == deleted ]]; }
wait_until 60 "the use-once output deleted" deleted
[[ ! -e $FILE ]] || die "the use-once output's file is still there"
assert_eq "after" 404 "$(code)"
log "ok"
