#!/usr/bin/env bash
# Fan-out in groups: a small course published one learner a job, twice (a
# first backfill, then a regrade), with an undecodable message between the
# two runs and one learner whose grade write fails (a trigger refuses his
# course row). Two consumers take the small jobs in groups (one transaction
# and one commit for the jobs in hand, acked together after it). Only the
# poisoned jobs are dead-lettered, each alone with its reason (the
# learner's two jobs as database errors, the message as malformed); every
# other learner's grades are exact against the reference; every job row is
# complete or dead, each completed job completed once; the runs' counters
# add up; the queues are empty; and groups did form. Then a consumer killed
# between a group's commit and its ack: the next one acks the group's jobs
# without grading them again. Last, small jobs followed by large ones in
# the queue, taken at prefetch 32 (a fan-out's setting): the groups come
# from the deliveries in hand, the broker connection is never lost on the
# way, and every grade is exact.
set -euo pipefail
# shellcheck source=tests/integration/faillib.sh
. "$(dirname "${BASH_SOURCE[0]}")/faillib.sh"

LEARNERS=300
own_db gradeq_it_f77
fresh_release f77
seed small "$LEARNERS"
declare_topology

# the poisoned learner: one in the middle of the course's enrollments
victim=$(psql_q "SELECT user_id FROM student_courseenrollment WHERE course_id = '$SMALL'
	ORDER BY user_id OFFSET $((LEARNERS / 2)) LIMIT 1")
assert_match "poisoned learner" '^[0-9]+$' "$victim"
psql_q "CREATE FUNCTION f77_refuse() RETURNS trigger LANGUAGE plpgsql AS \$\$
	BEGIN
	 IF NEW.user_id = $victim THEN
	  RAISE EXCEPTION 'f77: the grade of learner % is refused', NEW.user_id;
	 END IF;
	 RETURN NEW;
	END \$\$;
	CREATE TRIGGER f77_refuse BEFORE INSERT OR UPDATE ON grades_persistentcoursegrade
	 FOR EACH ROW EXECUTE FUNCTION f77_refuse()" >/dev/null

printf '\x00\xffnot a job at all' >"$WORK/garbage"
run1=$(publish_jobs --course "$SMALL" --batch-size 1)
publish_raw "$WORK/garbage" poison-garbage '{"gradeq-attempt": 1}'
run2=$(publish_jobs --course "$SMALL" --batch-size 1)
wait_until 60 "$((2 * LEARNERS + 1)) messages in $(work_queue)" depth_is "$(work_queue)" \
	"$((2 * LEARNERS + 1))"

# two consumers drain everything (--drain: each exits 0 once the queues are
# empty and nothing is in progress)
start_consumer consumer1.log --drain
c1=$CONSUMER_PID
start_consumer consumer2.log --drain
c2=$CONSUMER_PID
wait_exit "$c1" 600
assert_eq "consumer 1 exit status" 0 "$EXIT_STATUS"
wait_exit "$c2" 600
assert_eq "consumer 2 exit status" 0 "$EXIT_STATUS"

# groups formed: a job line says how many jobs its group held
grep -hoE 'event=job .* group=[0-9]+' "$WORK"/consumer[12].log | grep -oE 'group=[0-9]+$' |
	sort | uniq -c >"$WORK/groups" || true
log "jobs by group size: $(tr -s ' \n' ' ' <"$WORK/groups")"
grep -qE 'group=([2-9]|[1-9][0-9]+)$' "$WORK/groups" || die "no job went in a group of several"

# the dead queue: exactly the three poisoned messages, each with its reason
wait_until 60 "3 messages in $(dead_queue)" depth_is "$(dead_queue)" 3
wait_until 60 "$(work_queue) empty" depth_is "$(work_queue)" 0
msgs=$(peek "$(dead_queue)")
assert_eq "dead messages" 3 "$(jq length <<<"$msgs")"
m=$(jq -c '[.[] | select(.properties.message_id == "poison-garbage")]' <<<"$msgs")
assert_eq "dead copies of the undecodable message" 1 "$(jq length <<<"$m")"
assert_eq "its class" permanent "$(jq -r '.[0].properties.headers."gradeq-error-class"' <<<"$m")"
assert_match "its reason" '^malformed job message' \
	"$(jq -r '.[0].properties.headers."gradeq-error"' <<<"$m")"
dead_jobs=$(psql_q "SELECT job_id FROM gradeq_jobs WHERE state = 'dead' ORDER BY job_id")
victim_jobs=$(psql_q "SELECT job_id FROM gradeq_jobs WHERE learners = 1 AND
	first_user_ids = ARRAY[$victim] ORDER BY job_id")
assert_eq "dead job rows: the poisoned learner's two jobs" "$victim_jobs" "$dead_jobs"
for j in $dead_jobs; do
	m=$(jq -c --arg id "$j" '[.[] | select(.properties.message_id == $id)]' <<<"$msgs")
	assert_eq "dead copies of job $j" 1 "$(jq length <<<"$m")"
	assert_eq "class of job $j" permanent \
		"$(jq -r '.[0].properties.headers."gradeq-error-class"' <<<"$m")"
	assert_match "reason of job $j" "f77: the grade of learner $victim is refused" \
		"$(jq -r '.[0].properties.headers."gradeq-error"' <<<"$m")"
	assert_match "last_error of job $j" "f77: the grade of learner $victim is refused" \
		"$(psql_q "SELECT last_error FROM gradeq_jobs WHERE job_id = '$j'")"
done

# every job row complete or dead; completed once; the counters add up
for run in "$run1" "$run2"; do
	assert_eq "jobs of run $run by state" "complete $((LEARNERS - 1)),dead 1" \
		"$(job_states "$run" | paste -sd, -)"
	assert_eq "jobs of run $run completed more or less than once" 0 "$(psql_q "
		SELECT count(*) FROM gradeq_jobs j WHERE j.run_id = '$run' AND j.state = 'complete'
		AND (SELECT count(*) FROM gradeq_job_events e WHERE e.job_id = j.job_id
		 AND e.to_state = 'complete') <> 1")"
	assert_eq "counters of run $run (complete, learners, dead, state)" \
		"$((LEARNERS - 1)) $((LEARNERS - 1)) 1 failed" \
		"$(psql_q "SELECT jobs_complete || ' ' || learners_complete || ' ' || jobs_dead || ' ' ||
			state FROM gradeq_runs WHERE run_id = '$run'")"
done

# every other learner's grades exact; the poisoned learner has none (his
# jobs were rolled back whole, the rest of their groups committed)
read -r c s e q <<<"$(grade_counts "$SMALL")"
assert_eq "enrollments" "$LEARNERS" "$e"
assert_eq "course grade rows" "$((LEARNERS - 1))" "$c"
assert_eq "subsection grade rows" "$(((LEARNERS - 1) * q))" "$s"
assert_eq "grade rows of the poisoned learner" 0 "$(psql_q "
	SELECT (SELECT count(*) FROM grades_persistentcoursegrade WHERE user_id = $victim) +
	 (SELECT count(*) FROM grades_persistentsubsectiongrade WHERE user_id = $victim)")"
refcheck --course "$SMALL" --allow-missing

# A consumer killed between a group's commit and its ack: the broker hands
# the group's jobs to the next consumer, which finds them complete and acks
# them without grading them again (each completed once).
psql_q "DROP TRIGGER f77_refuse ON grades_persistentcoursegrade" >/dev/null
run3=$(publish_jobs --course "$SMALL" --batch-size 1)
wait_until 60 "$LEARNERS messages in $(work_queue)" depth_is "$(work_queue)" "$LEARNERS"
GRADEQ_TEST_ABORT_AFTER_COMMIT=1 start_consumer killed.log --drain
wait_exit "$CONSUMER_PID" 120
assert_ne "exit status of the consumer killed after its commit" 0 "$EXIT_STATUS"
log_has killed.log 'event=test_abort jobs=[0-9]+' || die "the consumer did not stop after a commit"
committed=$(psql_q "SELECT count(*) FROM gradeq_jobs WHERE run_id = '$run3' AND state = 'complete'")
assert_ge "jobs committed before the kill" 2 "$committed"
start_consumer after.log --drain
wait_exit "$CONSUMER_PID" 600
assert_eq "exit status of the next consumer" 0 "$EXIT_STATUS"
already=$(grep -c 'event=job .*outcome=already_complete' "$WORK/after.log" || true)
assert_eq "jobs found complete and acked without work" "$committed" "$already"
check_exactly_once "$run3"
wait_until 60 "$(work_queue) empty" depth_is "$(work_queue)" 0
assert_fully_graded "$SMALL"
refcheck --course "$SMALL"

# Small jobs, then large ones, in the queue, at prefetch 32: a group is
# what is in hand (a basic.get at a prefetch above 1 would read its reply's
# content from the frames of deliveries queued meanwhile: "unexpected
# protocol state", and the connection rebuilt).
psql_q "UPDATE courseware_studentmodule SET grade = max_grade, modified = now()
	WHERE course_id = '$SMALL' AND student_id % 3 = 0 AND max_grade > 0" >/dev/null
run4=$(publish_jobs --course "$SMALL" --batch-size 1)
# 150 learners a job: above group_learners, large
run5=$(publish_jobs --course "$SMALL" --batch-size 150)
wait_until 60 "$((LEARNERS + 2)) messages in $(work_queue)" depth_is "$(work_queue)" \
	"$((LEARNERS + 2))"
start_consumer mixed.log --drain --prefetch 32
wait_exit "$CONSUMER_PID" 600
assert_eq "exit status of the consumer of mixed jobs" 0 "$EXIT_STATUS"
assert_eq "broker connections lost" 0 "$(grep -c 'event=broker_lost' "$WORK/mixed.log" || true)"
grep -qE 'event=job .* group=([2-9]|[1-9][0-9]+)$' "$WORK/mixed.log" ||
	die "no group formed at prefetch 32"
check_exactly_once "$run4"
check_exactly_once "$run5"
wait_until 60 "$(work_queue) empty" depth_is "$(work_queue)" 0
assert_fully_graded "$SMALL"
refcheck --course "$SMALL"
log ok
