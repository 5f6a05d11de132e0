#!/usr/bin/env bash
# Score reads from a hot standby (pg_read_dsn), writes on the primary:
#  1. A backfill reads courseware_studentmodule on the standby only: the
#     primary's tuple counters of the table do not move, the standby's do.
#  2. Replay paused and scores changed on the primary: with read_fallback
#     primary, each job waits max_read_lag_ms, then reads the primary
#     (event=read_fallback) and grades the new scores; the lag is distress
#     (event=throttled reason=replica_lag).
#  3. Still paused, scores changed again: with read_fallback wait the first
#     job waits (event=read_wait) and none completes until replay resumes;
#     then all complete (event=standby_caught_up).
# Every run's jobs complete exactly once; after each run, every stored grade
# equals the reference computed from the primary's scores.
set -euo pipefail
# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"

"$GRADEQ_SRC/tools/servers" start-standby >"$WORK/standby.log" 2>&1 ||
	skip "no standby: $(tail -n 3 "$WORK/standby.log")"
# start-standby says "Standby ..." only when it started one: the test then
# stops it at the end, so that the rest of the run does not write it all
# twice
t54_started=0
grep -q '^Standby ' "$WORK/standby.log" && t54_started=1
eval "$("$GRADEQ_SRC/tools/servers" env)"
[[ -n ${GRADEQ_PG_READ_DSN:-} ]] || die "tools/servers env gives no GRADEQ_PG_READ_DSN"
SB_ADMIN_DSN=$GRADEQ_PG_READ_DSN

own_db gradeq_it_t54
fresh_release t54
seed small 2000
READ_DSN=$(dsn_with_db "$SB_ADMIN_DSN" "$TEST_DB")
sb_q() { psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$READ_DSN" -c "$1"; }
replay() { psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$SB_ADMIN_DSN" -c "SELECT pg_wal_replay_$1()" >/dev/null; }
# resume replay whatever happens: the standby is shared by the servers' users
# (faillib's cleanup then sees the test's own exit status)
_t54_cleanup() {
	local rc=$?
	replay resume >/dev/null 2>&1 || true
	((t54_started == 0)) || "$GRADEQ_SRC/tools/servers" stop-standby >/dev/null 2>&1 || true
	(exit "$rc")
	_fail_cleanup
}
trap _t54_cleanup EXIT

scores_q="SELECT count(*) || ' ' || coalesce(sum(grade), 0) FROM courseware_studentmodule"
standby_has_scores() {
	[[ $(sb_q "$scores_q" 2>/dev/null) == "$(psql_q "$scores_q")" ]]
}
wait_until 60 "the standby replaying the seeded scores" standby_has_scores

# tuples read from courseware_studentmodule, on the primary and the standby
reads_q="SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) FROM pg_stat_user_tables
	WHERE relname = 'courseware_studentmodule'"
# conf FALLBACK [LAG_MS]: the consumers' settings; a job waits LAG_MS
# (default 300) for the standby to replay what the primary had at its start
conf() {
	config "$WORK/t54.conf" "pg_read_dsn=\"$READ_DSN\"" "read_fallback=\"$1\"" \
		"max_read_lag_ms=${2:-300}" 'distress_interval_s=1'
}
drain() {
	"$CONSUMER" --release "$RELEASE" --drain -c "$WORK/t54.conf" >>"$WORK/$1" 2>&1 || die "consumer failed: $(tail -n 5 "$WORK/$1")"
}
declare_topology

# 1. reads on the standby only: a job waits for the standby's replay as
# long as it takes (up to 10 minutes) rather than fall back to the primary
# after 300 ms, which a loaded machine's replay can exceed
conf primary 600000
p0=$(psql_q "$reads_q")
s0=$(sb_q "$reads_q")
run=$(publish_jobs --course "$SMALL" --batch-size 200)
drain c1.log
check_exactly_once "$run"
standby_reads_moved() { (($(sb_q "$reads_q") > s0)); }
wait_until 30 "the standby's read counters moving" standby_reads_moved
p1=$(psql_q "$reads_q")
s1=$(sb_q "$reads_q")
log "courseware_studentmodule tuples read during the backfill: primary $((p1 - p0)), standby $((s1 - s0))"
((p1 - p0 <= (s1 - s0) / 100)) || die "the primary read $((p1 - p0)) score tuples (standby $((s1 - s0)))"
if log_has c1.log 'event=read_fallback'; then
	die "a job read from the primary though the standby was current"
fi
refcheck --course "$SMALL"

# 2. replay paused: read_fallback primary grades the primary's new scores
conf primary
replay pause
psql_q "UPDATE courseware_studentmodule SET grade = max_grade, modified = now()
	WHERE course_id = '$SMALL' AND student_id % 5 = 0 AND max_grade > 0" >/dev/null
run=$(publish_jobs --course "$SMALL" --batch-size 200)
drain c2.log
check_exactly_once "$run"
jobs=$(psql_q "SELECT count(*) FROM gradeq_jobs WHERE run_id = '$run'")
assert_eq "jobs that fell back to the primary" "$jobs" "$(grep -c 'event=read_fallback .*reading_from=primary' "$WORK/c2.log")"
# a standby that lags is distress: the consumer backs off
log_has c2.log 'level=warn .*event=throttled reason=replica_lag rate=' ||
	die "the lagging standby did not make the consumer back off"
refcheck --course "$SMALL"

# 3. still paused: read_fallback wait waits for the standby
conf wait
psql_q "UPDATE courseware_studentmodule SET grade = 0, modified = now()
	WHERE course_id = '$SMALL' AND student_id % 5 = 1" >/dev/null
run=$(publish_jobs --course "$SMALL" --batch-size 200)
start_consumer c3.log --drain -c "$WORK/t54.conf"
wait_until 60 "a job waiting for the standby" log_has c3.log 'event=read_wait '
assert_eq "jobs complete while replay is paused" 0 \
	"$(psql_q "SELECT count(*) FROM gradeq_jobs WHERE run_id = '$run' AND state = 'complete'")"
replay resume
wait_exit "$CONSUMER_PID" 120
assert_eq "consumer exit status" 0 "$EXIT_STATUS"
log_has c3.log 'event=standby_caught_up ' || die "no event=standby_caught_up"
if log_has c3.log 'event=read_fallback'; then
	die "read_fallback wait read from the primary"
fi
check_exactly_once "$run"
refcheck --course "$SMALL"
log ok
