# shellcheck shell=bash
# Helpers for the production tests (70-79): a database and a vhost of their
# own, so that they never disturb other tests on the shared servers.
# Source after lib.sh.

# shellcheck disable=SC2034 # for the tests that source this file
PY=/usr/bin/python3 # Debian's, where python3-pika lives

# own_db NAME: (re)create database NAME with an empty public schema and
# point GRADEQ_PG_DSN at it.
own_db() {
	local name=$1
	if [[ -z $(pg_q "SELECT 1 FROM pg_database WHERE datname = '$name'") ]]; then
		pg_q "CREATE DATABASE $name" >/dev/null || die "cannot create database $name"
	fi
	GRADEQ_PG_DSN=$(sed -E "s/(^| )dbname=[^ ]*/\\1dbname=$name/" <<<"$GRADEQ_PG_DSN")
	[[ $GRADEQ_PG_DSN == *"dbname=$name"* ]] || GRADEQ_PG_DSN="$GRADEQ_PG_DSN dbname=$name"
	export GRADEQ_PG_DSN
	psql_q "DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;" >/dev/null
}

# random_pw: a throwaway password.
random_pw() {
	head -c 48 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9' | head -c 20
}

# amqp_url_as USER PASSWORD VHOST: a URL to the test broker.
amqp_url_as() {
	printf 'amqp://%s:%s@127.0.0.1:%s/%s' "$1" "$2" "${GRADEQ_AMQP_PORT:-5673}" "$(urlenc "$3")"
}

# one_line_error WHAT FILE REGEX: FILE (a program's stderr) is exactly one
# line and it matches REGEX.
one_line_error() {
	local n
	n=$(grep -c '' "$2" || true)
	[[ $n == 1 ]] || die "$1: expected one line on stderr, got $n: $(cat "$2")"
	assert_match "$1" "$3" "$(cat "$2")"
}

# setup_roles VHOST: packaging/rabbitmq/setup against the test node, with
# fresh passwords in PUB_PW, CON_PW, OP_PW.
setup_roles() {
	PUB_PW=$(random_pw) CON_PW=$(random_pw) OP_PW=$(random_pw)
	# rabbitmqctl's environment for our node (RABBITMQ_NODENAME and co.)
	(
		eval "$("$GRADEQ_SRC/tools/servers" env)"
		GRADEQ_PUBLISHER_PASSWORD=$PUB_PW GRADEQ_CONSUMER_PASSWORD=$CON_PW \
			GRADEQ_OPERATOR_PASSWORD=$OP_PW \
			"$GRADEQ_SRC/packaging/rabbitmq/setup" --vhost "$1"
	) 2>"$WORK/setup.err" || die "setup failed: $(cat "$WORK/setup.err")"
}
