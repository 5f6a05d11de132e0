#!/usr/bin/env bash
# A use-once output on the s3 backend is gone after its first complete
# download. gradeq-web cannot see a presigned transfer end, so for a
# use-once output it does not redirect: it copies the object from the
# bucket, checks it against the seal's SHA-256 and size, sends it itself
# and, after the last byte went out, deletes the object and marks the row.
# A second request is refused (404); an object changed in the bucket is
# never sent (502) and stays for an operator to look at. A kept output
# still redirects to a presigned GET. Against the local S3-compatible test
# server (tests/s3/s3-server, s3rver).
set -euo pipefail
# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"
# shellcheck source=tests/integration/weblib.sh
. "$(dirname "${BASH_SOURCE[0]}")/weblib.sh"
# shellcheck source=tests/integration/s3lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/s3lib.sh"

REPORT=$(require_bin gradeq-report)
need_cmd node npm openssl curl sha256sum flock
own_db gradeq_it_s3once67
fresh_release s3o67
seed small 200

start_s3 gradeq-t67
web_links
s3_config "$WORK/s3.conf" "output_link_key_file=\"$WORK/link.key\"" "output_link_base=\"$BASE\"" \
	"s3_link_ttl_s=120"
declare_topology -c "$WORK/s3.conf"
publish_jobs --course "$SMALL" >/dev/null
"$CONSUMER" -c "$WORK/s3.conf" --release "$RELEASE" --drain >"$WORK/grades.log" 2>&1 || die "grading failed"
psql_q "INSERT INTO student_courseaccessrole (user_id, course_id, role) VALUES
	(9001, '$SMALL', 'staff')" >/dev/null

once=$("$REPORT" -c "$WORK/s3.conf" --release "$RELEASE" --course "$SMALL" --batch-size 50 --use-once)
bad=$("$REPORT" -c "$WORK/s3.conf" --release "$RELEASE" --course "$SMALL" --batch-size 50 --use-once)
kept=$("$REPORT" -c "$WORK/s3.conf" --release "$RELEASE" --course "$SMALL" --batch-size 50)
"$CONSUMER" -c "$WORK/s3.conf" --release "$RELEASE" --drain >"$WORK/report.log" 2>&1 ||
	{ tail -n 20 "$WORK/report.log" >&2; die "the reports failed"; }
assert_eq "sealed" "sealed sealed sealed" "$(psql_q "SELECT string_agg(state, ' ') FROM gradeq_outputs")"
assert_eq "three objects" "$(printf '%s.csv\n' "$once" "$bad" "$kept" | sort)" "$(bucket_keys)"
field() { psql_q "SELECT $2 FROM gradeq_outputs WHERE output_id = '$1'"; }

start_web "$WORK/s3.conf" --users /dev/null

log "use-once on s3: gradeq-web sends the bytes itself, no redirect"
url=$("$REPORT" -c "$WORK/s3.conf" url "$once" --user 9001)
assert_eq "first download" 200 "$(curl -s -o "$WORK/body" -D "$WORK/headers" -w '%{http_code}' "$url")"
assert_fails "no redirect to the bucket" grep -qi '^Location:' "$WORK/headers"
assert_eq "the exact bytes (sha256)" "$(field "$once" sha256)" "$(sha256sum "$WORK/body" | cut -d' ' -f1)"
assert_eq "the exact bytes (size)" "$(field "$once" size)" "$(wc -c <"$WORK/body")"
deleted() { [[ $(field "$1" state) == deleted ]]; }
wait_until 30 "the use-once output marked deleted" deleted "$once"
assert_eq "downloaded_at recorded" t "$(field "$once" 'downloaded_at IS NOT NULL')"
assert_eq "the object is gone from the bucket" "$(printf '%s.csv\n' "$bad" "$kept" | sort)" "$(bucket_keys)"
assert_eq "a second request is refused" 404 "$(curl -s -o /dev/null -w '%{http_code}' "$url")"
assert_match "logged" "event=output_downloaded output=$once use_once=true" "$(cat "$WORK/web.log")"
assert_fails "no signature in the log" grep -q 'sig=' "$WORK/web.log"

log "an object changed in the bucket is not sent, and stays"
printf 'user_id,percent\n1,100\n' >"$WORK/forged.csv"
s3curl -X PUT --data-binary "@$WORK/forged.csv" "$S3/$BUCKET/$bad.csv" >/dev/null
burl=$("$REPORT" -c "$WORK/s3.conf" url "$bad" --user 9001)
assert_eq "refused" 502 "$(curl -s -o /dev/null -w '%{http_code}' "$burl")"
assert_eq "still sealed" sealed "$(field "$bad" state)"
assert_match "why, logged" "event=output_unreadable output=$bad .*not what was sealed" "$(cat "$WORK/web.log")"

log "a kept output still redirects to a presigned GET"
kurl=$("$REPORT" -c "$WORK/s3.conf" url "$kept" --user 9001)
curl -s -o /dev/null -D "$WORK/kheaders" "$kurl"
assert_match "302" '^HTTP/1.1 302' "$(head -n 1 "$WORK/kheaders")"
loc=$(sed -n 's/^Location: //Ip' "$WORK/kheaders" | tr -d '\r')
assert_eq "presigned GET" 200 "$(curl -s -o "$WORK/kbody" -w '%{http_code}' "$loc")"
assert_eq "kept bytes" "$(field "$kept" sha256)" "$(sha256sum "$WORK/kbody" | cut -d' ' -f1)"
assert_eq "kept stays" sealed "$(field "$kept" state)"
log "ok"
