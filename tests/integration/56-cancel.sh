#!/usr/bin/env bash
# gradeq-admin cancel records the state the run really left: a run canceled
# while still publishing has a 'publishing' -> 'canceled' event row, one
# canceled while running a 'running' one. Canceling again succeeds and
# records nothing; a finished run and an unknown run are refused with exit 1
# and one error line.
set -euo pipefail
# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"

own_db gradeq_it_cancel
psql_q "INSERT INTO gradeq_releases (name, schema_version) VALUES ('cancel-it', 2)" >/dev/null

# new_run STATE: a run of release cancel-it in STATE; prints its id
new_run() {
	local id
	id=$(python3 -c 'import uuid; print(uuid.uuid4())')
	psql_q "INSERT INTO gradeq_runs (run_id, release, state) VALUES ('$id', 'cancel-it', '$1')" \
		>/dev/null
	printf '%s\n' "$id"
}

# cancel_event RUN: from_state|to_state|by of the run's cancel event rows
cancel_event() {
	psql_q "SELECT from_state || '|' || to_state || '|' || by FROM gradeq_job_events
		WHERE run_id = '$1' AND job_id IS NULL AND to_state = 'canceled' ORDER BY id"
}

publishing=$(new_run publishing)
assert_eq "cancel of a publishing run" "run $publishing canceled" \
	"$("$ADMIN" cancel "$publishing" --yes 2>"$WORK/cancel.log")"
assert_eq "publishing run's state" canceled \
	"$(psql_q "SELECT state FROM gradeq_runs WHERE run_id = '$publishing'")"
assert_eq "publishing run's cancel event" "publishing|canceled|gradeq-admin" \
	"$(cancel_event "$publishing")"

running=$(new_run running)
assert_eq "cancel of a running run (json)" "{\"run_id\":\"$running\",\"state\":\"canceled\"}" \
	"$("$ADMIN" --json cancel "$running" --yes 2>>"$WORK/cancel.log")"
assert_eq "running run's cancel event" "running|canceled|gradeq-admin" \
	"$(cancel_event "$running")"

# again: still canceled, exit 0, no second event
assert_ok "cancel twice" "$ADMIN" cancel "$running" --yes >/dev/null 2>>"$WORK/cancel.log"
assert_eq "events after a second cancel" 1 \
	"$(psql_q "SELECT count(*) FROM gradeq_job_events WHERE run_id = '$running' AND to_state = 'canceled'")"

complete=$(new_run complete)
set +e
err=$("$ADMIN" cancel "$complete" --yes 2>&1 >/dev/null)
rc=$?
set -e
assert_eq "exit of canceling a complete run" 1 "$rc"
assert_eq "error of canceling a complete run" \
	"gradeq-admin: error: run '$complete' is already complete" "$err"
assert_eq "complete run untouched" complete \
	"$(psql_q "SELECT state FROM gradeq_runs WHERE run_id = '$complete'")"

set +e
err=$("$ADMIN" cancel 00000000-0000-0000-0000-000000000000 --yes 2>&1 >/dev/null)
rc=$?
set -e
assert_eq "exit of canceling an unknown run" 1 "$rc"
assert_eq "error of canceling an unknown run" \
	"gradeq-admin: error: unknown run '00000000-0000-0000-0000-000000000000'" "$err"

set +e
"$ADMIN" cancel >/dev/null 2>&1
rc=$?
set -e
assert_eq "exit of cancel without a run" 2 "$rc"
log "cancel records the true previous state"
