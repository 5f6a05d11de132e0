# shellcheck shell=bash
# Helpers of the tests that serve outputs through gradeq-web (signed
# download links), on top of faillib.sh (source it first): the link key and
# the address the configuration names, and gradeq-web started on that
# address and answering.

need_cmd openssl curl python3
WEB=$(require_bin gradeq-web)

# web_links: what the configuration of download links names before
# gradeq-web starts: PORT, a free port for start_web, BASE, its URL
# (output_link_base), and a new key in $WORK/link.key (output_link_key_file).
web_links() {
	openssl rand -hex 32 >"$WORK/link.key"
	chmod 600 "$WORK/link.key"
	PORT=$(free_port)
	BASE=http://127.0.0.1:$PORT
}

# start_web CONF [ARGS...]: gradeq-web with configuration CONF and ARGS
# (--users FILE ...) on 127.0.0.1:PORT (a free port, and BASE, when PORT is
# not set), its stderr in $WORK/web.log; its pid in WEB_PID (killed when the
# test ends). Returns once it answers.
start_web() {
	local conf=$1
	shift
	if [[ -z ${PORT:-} ]]; then
		PORT=$(free_port)
		BASE=http://127.0.0.1:$PORT
	fi
	"$WEB" -c "$conf" --listen "127.0.0.1:$PORT" "$@" 2>"$WORK/web.log" &
	WEB_PID=$!
	CONSUMER_PIDS+=("$WEB_PID")
	# the check that it exited is made here, not in the condition:
	# wait_until sends the condition's output (and a die's) to /dev/null
	wait_until 30 "gradeq-web answers" web_up_or_gone
	web_up || die "gradeq-web exited: $(tail -n 5 "$WORK/web.log")"
}

# web_up: gradeq-web answers on BASE (401 to a request without a session).
web_up() {
	[[ $(curl -s -o /dev/null -w '%{http_code}' "$BASE/api/session") == 401 ]]
}

# web_up_or_gone: gradeq-web (WEB_PID) answers, or it has exited.
web_up_or_gone() {
	web_up || ! kill -0 "$WEB_PID" 2>/dev/null
}
