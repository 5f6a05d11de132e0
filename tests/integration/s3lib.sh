# shellcheck shell=bash
# Helpers of the tests of the s3 output backend, on top of faillib.sh
# (source it first): the local S3-compatible test server
# (tests/s3/s3-server: s3rver, pinned by its lockfile), requests of the
# test itself to it, and the backend's configuration. Needs node and npm:
# missing, the test fails (tools/deps installs them).

need_cmd node npm flock curl

# start_s3 BUCKET [PORT]: the test server on PORT (a free port when empty)
# with BUCKET created, answering: S3PORT, S3 (its URL), BUCKET, S3_PID;
# s3rver's fixed test credentials in $WORK/s3.access and $WORK/s3.secret.
start_s3() {
	BUCKET=$1
	S3PORT=${2:-$(free_port)}
	S3=http://127.0.0.1:$S3PORT
	s3_server s3.log
	# from files, as gradeq reads them
	printf 'S3RVER\n' >"$WORK/s3.access"
	printf 'S3RVER\n' >"$WORK/s3.secret"
	chmod 600 "$WORK/s3.access" "$WORK/s3.secret"
}

# s3_server LOG: (again) the test server on S3PORT, its objects under
# $WORK/s3, its output in $WORK/LOG, its pid in S3_PID (killed when the
# test ends). Returns once it answers.
s3_server() {
	S3_LOG=$WORK/$1
	"$GRADEQ_SRC/tests/s3/s3-server" "$WORK/s3" "$S3PORT" "$BUCKET" >"$S3_LOG" 2>&1 &
	S3_PID=$!
	CONSUMER_PIDS+=("$S3_PID")
	# the check that it exited is made here, not in the condition:
	# wait_until sends the condition's output (and a die's) to /dev/null
	wait_until 180 "the S3 test server answers" s3_up_or_gone
	s3_up || die "the S3 test server exited: $(tail -n 20 "$S3_LOG")"
}

# s3_up: the test server answers on S3.
s3_up() {
	[[ $(curl -s -o /dev/null -w '%{http_code}' "$S3/") == 200 ]]
}

# s3_up_or_gone: the test server (S3_PID) answers, or it has exited.
s3_up_or_gone() {
	s3_up || ! kill -0 "$S3_PID" 2>/dev/null
}

# s3curl ARGS...: curl with the test credentials' V4 signature. The payload
# goes unsigned, so that one header serves a GET and a PUT with a body.
s3curl() {
	curl -s -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
		--aws-sigv4 aws:amz:us-east-1:s3 --user S3RVER:S3RVER "$@"
}

# bucket_keys: the bucket's object keys, sorted, one a line.
bucket_keys() {
	s3curl "$S3/$BUCKET?list-type=2" | grep -o '<Key>[^<]*</Key>' | sed 's/<[^>]*>//g' | sort
}

# s3_config FILE [KEY=VALUE...]: a configuration file (config) with the s3
# backend's settings for the test server, then KEY=VALUE....
s3_config() {
	local f=$1
	shift
	config "$f" 'output_backend="s3"' "s3_endpoint=\"$S3\"" "s3_bucket=\"$BUCKET\"" \
		's3_region="us-east-1"' "s3_access_key_file=\"$WORK/s3.access\"" \
		"s3_secret_key_file=\"$WORK/s3.secret\"" "$@"
}
