#!/usr/bin/env bash
# Grade reports on the s3 backend (output_backend = "s3"), against the local
# S3-compatible test server (tests/s3/s3-server: s3rver, pinned by its
# lockfile). The same report yields the same bytes (the same SHA-256, size)
# as on the file backend; the part objects are gone after the seal; a
# download link to gradeq-web answers 302 to a presigned GET that returns
# the bytes (its signature checked by an independent implementation,
# tests/s3/presign_check.py, since s3rver does not verify V4 signatures);
# delete removes
# the object; purge-history removes an expired output's object. Needs node
# and npm: missing, the test fails (tools/deps installs them).
set -euo pipefail
# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"
# shellcheck source=tests/integration/weblib.sh
. "$(dirname "${BASH_SOURCE[0]}")/weblib.sh"
# shellcheck source=tests/integration/s3lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/s3lib.sh"

REPORT=$(require_bin gradeq-report)
need_cmd node npm openssl curl sha256sum flock
own_db gradeq_it_s3_64
fresh_release s3r64
seed small 300

# the test server on GRADEQ_S3_PORT when set
start_s3 gradeq-t64 "${GRADEQ_S3_PORT:-}"
web_links
export GRADEQ_OUTPUT_DIR=$WORK/outputs
config "$WORK/file.conf" "output_link_key_file=\"$WORK/link.key\""
s3_config "$WORK/s3.conf" "output_link_key_file=\"$WORK/link.key\"" "output_link_base=\"$BASE\"" \
	"s3_link_ttl_s=120"
declare_topology -c "$WORK/s3.conf"
publish_jobs --course "$SMALL" >/dev/null
"$CONSUMER" -c "$WORK/s3.conf" --release "$RELEASE" --drain >"$WORK/grades.log" 2>&1 || die "grading failed"
psql_q "INSERT INTO student_courseaccessrole (user_id, course_id, role) VALUES
	(9001, '$SMALL', 'staff')" >/dev/null

row() { psql_q "SELECT backend || ' ' || state || ' ' || size || ' ' || sha256 FROM gradeq_outputs WHERE output_id = '$1'"; }

log "the same report on the file and the s3 backend: the same bytes"
fout=$("$REPORT" -c "$WORK/file.conf" --release "$RELEASE" --course "$SMALL" --batch-size 40)
"$CONSUMER" -c "$WORK/file.conf" --release "$RELEASE" --drain >"$WORK/file.log" 2>&1 || die "file report failed"
sout=$("$REPORT" -c "$WORK/s3.conf" --release "$RELEASE" --course "$SMALL" --batch-size 40)
"$CONSUMER" -c "$WORK/s3.conf" --release "$RELEASE" --drain >"$WORK/s3report.log" 2>&1 ||
	{ tail -n 20 "$WORK/s3report.log" >&2; die "s3 report failed"; }
frow=$(row "$fout")
srow=$(row "$sout")
assert_match "file output sealed" '^file sealed [0-9]+ [0-9a-f]{64}$' "$frow"
assert_eq "s3 output: same size and SHA-256" "s3 ${frow#file }" "$srow"
assert_eq "the bucket holds the sealed object only (parts dropped)" "$sout.csv" "$(bucket_keys)"
s3curl -o "$WORK/object" "$S3/$BUCKET/$sout.csv"
cmp "$WORK/object" "$GRADEQ_OUTPUT_DIR/$fout.csv" || die "the s3 object differs from the file output"
assert_fails "no secret in the logs" grep -rq 'S3RVER' "$WORK/s3report.log"

log "a download link redirects to a presigned GET that returns the bytes"
printf 'vera:viewer:%s\n' "$(openssl passwd -6 "$(openssl rand -hex 12)")" >"$WORK/users"
start_web "$WORK/s3.conf" --users "$WORK/users"
url=$("$REPORT" -c "$WORK/s3.conf" url "$sout" --user 9001)
curl -s -o /dev/null -D "$WORK/headers" "$url"
assert_match "302" '^HTTP/1.1 302' "$(head -n 1 "$WORK/headers")"
loc=$(sed -n 's/^Location: //Ip' "$WORK/headers" | tr -d '\r')
assert_match "presigned" "^$S3/$BUCKET/$sout.csv\\?X-Amz-Algorithm=AWS4-HMAC-SHA256&.*X-Amz-Expires=120&.*X-Amz-Signature=[0-9a-f]{64}\$" "$loc"
assert_eq "presigned GET" 200 "$(curl -s -o "$WORK/body" -w '%{http_code}' "$loc")"
assert_eq "sha256 of the download" "${srow##* }" "$(sha256sum "$WORK/body" | cut -d' ' -f1)"
# s3rver checks the access key and the expiry of a V4 presigned URL, not
# its signature: presign_check.py (Python's hmac) recomputes that
python3 "$GRADEQ_SRC/tests/s3/presign_check.py" "$loc" S3RVER || die "the presigned URL's signature is wrong"
assert_fails "a tampered signature is detected" python3 "$GRADEQ_SRC/tests/s3/presign_check.py" \
	"${loc/X-Amz-Expires=120/X-Amz-Expires=121}" S3RVER
assert_eq "another access key" 403 "$(curl -s -o /dev/null -w '%{http_code}' "${loc/Credential=S3RVER/Credential=OTHER}")"
assert_eq "a tampered link" 403 "$(curl -s -o /dev/null -w '%{http_code}' "${url%?}x")"

log "delete removes the object"
"$REPORT" -c "$WORK/s3.conf" delete "$sout" >/dev/null
assert_eq "deleted" deleted "$(psql_q "SELECT state FROM gradeq_outputs WHERE output_id = '$sout'")"
assert_eq "bucket after delete" "" "$(bucket_keys)"
assert_eq "the link now" 404 "$(curl -s -o /dev/null -w '%{http_code}' "$url")"

log "purge-history removes an expired output's object"
p1=$("$REPORT" -c "$WORK/s3.conf" --release "$RELEASE" --course "$SMALL" --batch-size 100 --keep-until 2099-01-01)
p2=$("$REPORT" -c "$WORK/s3.conf" --release "$RELEASE" --course "$SMALL" --batch-size 100 --keep-until 2099-01-01)
"$CONSUMER" -c "$WORK/s3.conf" --release "$RELEASE" --drain >"$WORK/purge.log" 2>&1 || die "reports failed"
assert_eq "two objects" "$(printf '%s\n' "$p1.csv" "$p2.csv" | sort)" "$(bucket_keys)"
psql_q "UPDATE gradeq_outputs SET keep_until = now() - interval '1 second'
	WHERE output_id IN ('$p1', '$fout')" >/dev/null
"$ADMIN" -c "$WORK/s3.conf" purge-history --yes --json >"$WORK/purge.json"
assert_eq "purged outputs" 1 "$(jq -r .deleted_outputs "$WORK/purge.json")"
assert_eq "bucket after purge" "$p2.csv" "$(bucket_keys)"
assert_eq "a file output is not purged through s3" sealed \
	"$(psql_q "SELECT state FROM gradeq_outputs WHERE output_id = '$fout'")"
assert_fails "nor deleted through s3" "$REPORT" -c "$WORK/s3.conf" delete "$fout"
"$ADMIN" -c "$WORK/file.conf" purge-history --yes --json >"$WORK/purge2.json"
assert_eq "purged with its backend" 1 "$(jq -r .deleted_outputs "$WORK/purge2.json")"
[[ ! -e $GRADEQ_OUTPUT_DIR/$fout.csv ]] || die "the purged file output is still there"

log "the service down: parts wait in a retry tier, then seal once it is back"
kill "$S3_PID"
wait "$S3_PID" 2>/dev/null || true
p3=$("$REPORT" -c "$WORK/s3.conf" --release "$RELEASE" --course "$SMALL" --batch-size 100)
"$CONSUMER" -c "$WORK/s3.conf" --release "$RELEASE" >"$WORK/outage.log" 2>&1 &
CONSUMER_PIDS+=("$!")
retrying() {
	[[ $(psql_q "SELECT count(*) FROM gradeq_jobs p JOIN gradeq_outputs o USING (run_id)
		WHERE o.output_id = '$p3' AND p.state = 'retrying'") -gt 0 ]]
}
wait_until 60 "a part retrying while the service is down" retrying
assert_eq "no part dead" 0 "$(psql_q "SELECT count(*) FROM gradeq_jobs p JOIN gradeq_outputs o
	USING (run_id) WHERE o.output_id = '$p3' AND p.state = 'dead'")"
s3_server s3-again.log
sealed() { [[ $(psql_q "SELECT state FROM gradeq_outputs WHERE output_id = '$p3'") == sealed ]]; }
wait_until 120 "the output sealed after the outage" sealed
assert_eq "same bytes after the outage" "${srow##* }" \
	"$(psql_q "SELECT sha256 FROM gradeq_outputs WHERE output_id = '$p3'")"
log "ok"
