#!/usr/bin/env bash
# Runs and jobs operators can see and steer: a run canceled before any
# consumer grades nobody while another run of the same release completes;
# status --json shows both with their counts and matches its documented
# shape; counters equal a recount of the jobs; cancel mid-run stops the
# rest; events show run.<id>.running; the management API names the
# consumer's connection; purge-history removes old runs and nothing else.
set -euo pipefail
# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
own_db gradeq_it_observe
fresh_release obs
seed small,medium 300

# the release's topology (and the gradeq.events exchange) exist before the
# listener binds: the test's vhost starts empty
declare_topology
# events of the runs to come, followed live
"$ADMIN" events >"$WORK/events.txt" 2>"$WORK/events.log" &
EVENTS_PID=$!
CONSUMER_PIDS+=("$EVENTS_PID")
events_bound() {
	mgmt_get "api/exchanges/$VH/gradeq.events/bindings/source" |
		jq -e '[.[] | select(.destination | startswith("amq.gen-"))] | length > 0' >/dev/null
}
wait_until 30 "gradeq-admin events bound to gradeq.events" events_bound

canceled=$(publish_jobs --course "$SMALL" --batch-size 50)
assert_ok "cancel $canceled" "$ADMIN" cancel "$canceled" --yes >/dev/null
kept=$(publish_jobs --course "$MEDIUM" --batch-size 50)

# a long-running consumer (no --drain), so its connection can be seen
start_consumer consumer.log
pid=$CONSUMER_PID
# the management UI tells who is who: the connection carries the program,
# release, host, pid and role
named() {
	mgmt_get 'api/connections?columns=client_properties.connection_name' |
		jq -e --arg n "gradeq-consumer release=obs host=$(hostname) pid=$pid role=consume" \
			'[.[].client_properties.connection_name] | index($n) != null' >/dev/null
}
wait_until 30 "consumer connection named in the management API" named
kept_done() {
	[[ $(psql_q "SELECT state FROM gradeq_runs WHERE run_id = '$kept'") == complete ]]
}
wait_until 120 "run $kept complete" kept_done
wait_until 30 "every job of $canceled settled" bash -c "[[ \$(psql -X -At -d \"\$GRADEQ_PG_DSN\" \
	-c \"SELECT count(*) FROM gradeq_jobs WHERE run_id = '$canceled' AND state = 'pending'\") == 0 ]]"
kill -TERM "$pid"
wait_exit "$pid" 60
assert_eq "consumer exit status after SIGTERM" 0 "$EXIT_STATUS"

assert_eq "grade rows of the canceled run's course" 0 \
	"$(psql_q "SELECT count(*) FROM grades_persistentcoursegrade WHERE course_id = '$SMALL'")"
assert_eq "jobs of the canceled run not canceled" 0 \
	"$(psql_q "SELECT count(*) FROM gradeq_jobs WHERE run_id = '$canceled' AND state <> 'canceled'")"
assert_eq "learners of the kept run graded" 300 \
	"$(psql_q "SELECT count(*) FROM grades_persistentcoursegrade WHERE course_id = '$MEDIUM'")"

status=$("$ADMIN" status --json)
python3 "$SRC/tests/integration/jsonshape.py" "$SRC/docs/status.schema.json" <<<"$status" ||
	die "status --json does not match docs/status.schema.json"
assert_eq "canceled run in status" "canceled 6 6" \
	"$(jq -r --arg r "$canceled" '.runs[] | select(.run_id == $r) |
		"\(.state) \(.jobs.total) \(.jobs.canceled)"' <<<"$status")"
assert_eq "complete run in status" "complete 6 6 300" \
	"$(jq -r --arg r "$kept" '.runs[] | select(.run_id == $r) |
		"\(.state) \(.jobs.total) \(.jobs.complete) \(.learners_complete)"' <<<"$status")"
assert_eq "release queues in status" "0 0" \
	"$(jq -r '.releases[] | select(.name == "obs") | "\(.queues.work.ready) \(.queues.dead.ready)"' <<<"$status")"

# the incremental counters equal a recount of the jobs
assert_eq "counters equal a recount" "" "$(psql_q "
	SELECT r.run_id FROM gradeq_runs r JOIN (SELECT run_id,
	  count(*) FILTER (WHERE state = 'complete') c, count(*) FILTER (WHERE state = 'dead') d,
	  count(*) FILTER (WHERE state = 'canceled') x, sum(learners) FILTER (WHERE state = 'complete') l
	  FROM gradeq_jobs GROUP BY run_id) j USING (run_id)
	WHERE (r.jobs_complete, r.jobs_dead, r.jobs_canceled, r.learners_complete)
	  IS DISTINCT FROM (j.c::int, j.d::int, j.x::int, coalesce(j.l, 0))")"
# every transition was recorded
assert_eq "events of the kept run's jobs" 12 \
	"$(psql_q "SELECT count(*) FROM gradeq_job_events WHERE run_id = '$kept' AND job_id IS NOT NULL")"

grep -q "^run\.$kept\.running" "$WORK/events.txt" || die "no run.$kept.running event"
grep -q "^run\.$canceled\.publishing" "$WORK/events.txt" || die "no run.$canceled.publishing event"

# cancel mid-run: what is in hand finishes, the rest is not graded. A lock
# on the grade table holds the first job in hand while the run is canceled.
mid=$(publish_jobs --course "$SMALL" --batch-size 10)
# The lock is held until the run is canceled (then its backend is ended).
lock_table SHARE
# one job in hand at a time: no group of the small jobs that are ready
config "$WORK/one.conf" 'group_jobs=1'
start_consumer consumer2.log --drain -c "$WORK/one.conf"
pid=$CONSUMER_PID
in_hand() {
	(($(psql_q "SELECT count(*) FROM gradeq_jobs WHERE run_id = '$mid' AND state = 'in_progress'") >= 1))
}
wait_until 20 "a job of $mid in hand" in_hand
# the job in hand is the work queue's one unacknowledged message, which only
# the management API reports (its statistics lag by up to 5 s)
unacked_one() {
	[[ $("$ADMIN" status --json | jq -c --arg r "$RELEASE" \
		'.releases[] | select(.name == $r) | .queues.work | [.ready, .unacked]') == "[29,1]" ]]
}
wait_until 10 "status: work queue 29 ready, 1 unacked" unacked_one
assert_match "status text shows unacked" "work ready=29 unacked=1 consumers=1" "$("$ADMIN" status)"
assert_match "release list shows unacked" '"work_unacked":1' "$("$ADMIN" release list --json)"
# without the management API: unknown, said once, and the rest still shown
GRADEQ_MGMT_URL=http://127.0.0.1:1/ "$ADMIN" status --json >"$WORK/nomgmt.json" 2>"$WORK/nomgmt.err" ||
	die "status failed without the management API: $(cat "$WORK/nomgmt.err")"
assert_eq "unacked without the management API" "29 null 1" \
	"$(jq -r --arg r "$RELEASE" '.releases[] | select(.name == $r) | .queues.work | "\(.ready) \(.unacked) \(.consumers)"' "$WORK/nomgmt.json")"
assert_eq "warning lines without the management API" 1 "$(grep -c 'management_unavailable' "$WORK/nomgmt.err")"
python3 "$SRC/tests/integration/jsonshape.py" "$SRC/docs/status.schema.json" <"$WORK/nomgmt.json" ||
	die "status --json without the management API does not match docs/status.schema.json"
"$ADMIN" cancel "$mid" --yes >/dev/null
unlock_table
wait_exit "$pid" 120
assert_eq "consumer exit status" 0 "$EXIT_STATUS"
done_jobs=$(psql_q "SELECT count(*) FROM gradeq_jobs WHERE run_id = '$mid' AND state = 'complete'")
canceled_jobs=$(psql_q "SELECT count(*) FROM gradeq_jobs WHERE run_id = '$mid' AND state = 'canceled'")
assert_eq "every job of $mid complete or canceled" 30 $((done_jobs + canceled_jobs))
((canceled_jobs > 0)) || die "cancel mid-run stopped nothing ($done_jobs of 30 complete)"
assert_eq "graded learners of $mid" $((done_jobs * 10)) \
	"$(psql_q "SELECT count(*) FROM grades_persistentcoursegrade WHERE course_id = '$SMALL'")"
assert_eq "state of $mid" canceled "$(psql_q "SELECT state FROM gradeq_runs WHERE run_id = '$mid'")"

# retention: old finished runs go, with their jobs and events; grades stay
grades_before=$(psql_q "SELECT count(*) FROM grades_persistentcoursegrade")
psql_q "UPDATE gradeq_runs SET finished_at = now() - interval '100 days' WHERE run_id = '$kept'" >/dev/null
assert_match "purge-history without --yes" "would delete 1" "$("$ADMIN" purge-history --older-than 90d)"
assert_eq "runs after a dry purge" 3 "$(psql_q "SELECT count(*) FROM gradeq_runs")"
"$ADMIN" purge-history --older-than 90d --yes >/dev/null
assert_eq "purged run gone" 0 "$(psql_q "SELECT count(*) FROM gradeq_runs WHERE run_id = '$kept'")"
assert_eq "its jobs gone" 0 "$(psql_q "SELECT count(*) FROM gradeq_jobs WHERE run_id = '$kept'")"
assert_eq "its events gone" 0 "$(psql_q "SELECT count(*) FROM gradeq_job_events WHERE run_id = '$kept'")"
assert_eq "other runs kept" 2 "$(psql_q "SELECT count(*) FROM gradeq_runs")"
assert_eq "grades untouched" "$grades_before" "$(psql_q "SELECT count(*) FROM grades_persistentcoursegrade")"

# an illegal transition is refused by the database
assert_fails "complete job back to pending" psql -X -q -v ON_ERROR_STOP=1 -d "$GRADEQ_PG_DSN" -c \
	"UPDATE gradeq_jobs SET state = 'pending' WHERE run_id = '$mid' AND state = 'complete'"
log "ok"
