#!/usr/bin/env bash
# gradeq-admin seed: three courses of the backfill strategy's sizes, with the
# shape the grading rules expect (sequentials under chapters, positions
# unique among siblings, every odd case of score rows) and the platform's
# shape (about half of the problems attempted, some learners none and some
# all, as many rows of opened blocks that are not problems with NULL grades,
# a learner's rows of several courses side by side in the table), and the
# same data again when seeded twice with the same seed.
#
# Environment: LEARNERS (default 500) learners per course.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LEARNERS=${LEARNERS:-500}

need_cmd psql
ADMIN=$(require_bin gradeq-admin)
# The programs read conf/gradeq.conf relative to the working directory.
cd "$GRADEQ_SRC"

# dump_md5: one md5 over every input table, rows in a fixed order, without
# the bigserial ids (a replace gives new ones).
dump_md5() {
	psql_q "SELECT md5(string_agg(t, E'\n' ORDER BY t)) FROM (
	  SELECT 'c|' || x::text AS t FROM courses x
	  UNION ALL SELECT 'b|' || x::text FROM course_blocks x
	  UNION ALL SELECT 'e|' || x::text FROM (SELECT user_id, course_id, is_active, mode,
	    created FROM student_courseenrollment) x
	  UNION ALL SELECT 's|' || x::text FROM (SELECT student_id, course_id, module_state_key,
	    module_type, grade, max_grade, created, modified FROM courseware_studentmodule) x
	) d"
}

fresh_db
assert_ok "migrate" "$ADMIN" migrate --with-input-tables >/dev/null
start=$SECONDS
assert_ok "seed" "$ADMIN" seed --courses small,medium,large --learners "$LEARNERS" --seed 7 >/dev/null
log "seeded 3 x $LEARNERS learners in $((SECONDS - start)) s"

# --- counts --------------------------------------------------------------
assert_eq "courses" \
	"course-v1:gradeq+large1+2026,course-v1:gradeq+medium1+2026,course-v1:gradeq+small1+2026" \
	"$(psql_q "SELECT string_agg(course_id, ',' ORDER BY course_id) FROM courses")"
assert_eq "enrollments" $((3 * LEARNERS)) "$(psql_q "SELECT count(*) FROM student_courseenrollment")"
assert_eq "enrollments per course" "$LEARNERS" \
	"$(psql_q "SELECT DISTINCT count(*) FROM student_courseenrollment GROUP BY course_id")"
while IFS='|' read -r course n; do
	case $course in
	*+small1+*) lo=8 hi=12 ;;
	*+medium1+*) lo=36 hi=44 ;;
	*+large1+*) lo=110 hi=130 ;;
	*) die "unexpected course '$course'" ;;
	esac
	((n >= lo && n <= hi)) || die "$course: $n sequentials, expected $lo..$hi"
done < <(psql_q "SELECT course_id, count(*) FROM course_blocks WHERE block_type = 'sequential'
		 GROUP BY 1")
assert_eq "courses with problems" 3 \
	"$(psql_q "SELECT count(DISTINCT course_id) FROM course_blocks WHERE block_type = 'problem'")"

# --- structure -------------------------------------------------------------
assert_eq "one course block per course" 3 \
	"$(psql_q "SELECT count(*) FROM course_blocks WHERE block_type = 'course' AND parent_key IS NULL")"
assert_eq "sequentials not under a chapter" 0 \
	"$(psql_q "SELECT count(*) FROM course_blocks s LEFT JOIN course_blocks p
		 ON p.course_id = s.course_id AND p.usage_key = s.parent_key
		 WHERE s.block_type = 'sequential' AND p.block_type IS DISTINCT FROM 'chapter'")"
assert_eq "blocks with a missing parent" 0 \
	"$(psql_q "SELECT count(*) FROM course_blocks s LEFT JOIN course_blocks p
		 ON p.course_id = s.course_id AND p.usage_key = s.parent_key
		 WHERE s.parent_key IS NOT NULL AND p.usage_key IS NULL")"
assert_eq "positions shared by siblings" 0 \
	"$(psql_q "SELECT count(*) FROM (SELECT 1 FROM course_blocks
		 GROUP BY course_id, parent_key, position HAVING count(*) > 1) d")"
assert_eq "graded subsections of each type" "Final Exam|3,Homework|3,Lab|3,Midterm Exam|3" \
	"$(psql_q "SELECT string_agg(format || '|' || n, ',' ORDER BY format) FROM (
		 SELECT format, count(DISTINCT course_id) n FROM course_blocks
		 WHERE block_type = 'sequential' AND graded AND format IN
		 ('Homework', 'Lab', 'Midterm Exam', 'Final Exam') GROUP BY 1) d")"
assert_eq "problem mix (weight NULL, weight 0, max_score NULL, ungraded)" "t|t|t|t" \
	"$(psql_q "SELECT bool_or(weight IS NULL), bool_or(weight = 0), bool_or(max_score IS NULL),
		 bool_or(NOT graded) FROM course_blocks WHERE block_type = 'problem'")"
assert_eq "letter grades in the medium course" "t" \
	"$(psql_q "SELECT grading_policy->'GRADE_CUTOFFS' ? 'A' FROM courses
		 WHERE course_id LIKE '%+medium1+%'")"
assert_match "course version" '^v1-[0-9a-f]{16}$' \
	"$(psql_q "SELECT version FROM courses WHERE course_id LIKE '%+small1+%'")"

# --- learners and scores -----------------------------------------------------
assert_ge "learners in three courses" $((LEARNERS / 5)) \
	"$(psql_q "SELECT count(*) FROM (SELECT user_id FROM student_courseenrollment
		 GROUP BY 1 HAVING count(*) = 3) d")"
IFS='|' read -r rows grade_null max_null max_zero over < <(psql_q "SELECT count(*),
	count(*) FILTER (WHERE grade IS NULL), count(*) FILTER (WHERE max_grade IS NULL),
	count(*) FILTER (WHERE max_grade = 0), count(*) FILTER (WHERE grade > max_grade OR grade < 0)
	FROM courseware_studentmodule WHERE module_type = 'problem'")
assert_ge "score rows" $((LEARNERS * 3)) "$rows"
assert_ge "rows with grade NULL" 1 "$grade_null"
assert_ge "rows with max_grade NULL" 1 "$max_null"
assert_ge "rows with max_grade 0" 1 "$max_zero"
assert_eq "grades out of [0, max_grade]" 0 "$over"
assert_eq "module rows of no block of the course, or of another type" 0 \
	"$(psql_q "SELECT count(*) FROM courseware_studentmodule m LEFT JOIN course_blocks b
		 ON b.course_id = m.course_id AND b.usage_key = m.module_state_key
		 AND b.block_type = m.module_type WHERE b.usage_key IS NULL")"
assert_eq "module types" "chapter,html,problem,sequential,vertical,video" \
	"$(psql_q "SELECT string_agg(DISTINCT module_type, ',' ORDER BY module_type)
		 FROM courseware_studentmodule")"
assert_eq "grades of blocks that are not problems" 0 \
	"$(psql_q "SELECT count(*) FROM courseware_studentmodule WHERE module_type <> 'problem'
		 AND (grade IS NOT NULL OR max_grade IS NOT NULL)")"
# Per course: problem rows and other rows per learner, the mean share of
# the problems attempted, learners with none and with all of them.
while IFS='|' read -r course prows orows share none all; do
	log "$course: $prows problem rows and $orows others per learner, share $share," \
		"$none learners attempted none, $all all"
	awk -v s="$share" 'BEGIN { exit !(s > 0.4 && s < 0.6) }' ||
		die "$course: mean share of problems attempted $share, expected about half"
	awk -v p="$prows" -v o="$orows" 'BEGIN { exit !(o > 0.7 * p && o < 1.4 * p) }' ||
		die "$course: $orows other rows per learner against $prows problem rows"
	((none > 0 && all > 0)) || die "$course: $none learners attempted none, $all all"
done < <(psql_q "WITH p AS (SELECT course_id, count(*) AS n FROM course_blocks
		 WHERE block_type = 'problem' GROUP BY 1),
	per AS (SELECT e.course_id, e.user_id,
		 count(m.id) FILTER (WHERE m.module_type = 'problem') AS np,
		 count(m.id) FILTER (WHERE m.module_type <> 'problem') AS no
		 FROM student_courseenrollment e LEFT JOIN courseware_studentmodule m
		 ON m.course_id = e.course_id AND m.student_id = e.user_id GROUP BY 1, 2)
	SELECT per.course_id, round(avg(np), 1), round(avg(no), 1), round(avg(np::numeric / p.n), 2),
		 count(*) FILTER (WHERE np = 0), count(*) FILTER (WHERE np = p.n)
	FROM per JOIN p USING (course_id) GROUP BY per.course_id, p.n")
# Physical order: learner by learner across the courses, so that one
# learner's rows of different courses are neighbours (the course changes
# from one row to the next far more often than three times).
assert_ge "course changes along the table" $((LEARNERS / 2)) \
	"$(psql_q "SELECT count(*) FROM (SELECT course_id, lag(course_id) OVER (ORDER BY id) AS prev
		 FROM courseware_studentmodule) d WHERE course_id <> prev")"
assert_eq "rows in user id order" 0 \
	"$(psql_q "SELECT count(*) FROM (SELECT student_id, lag(student_id) OVER (ORDER BY id) AS prev
		 FROM courseware_studentmodule) d WHERE student_id < prev")"
assert_eq "score rows of no enrollment" 0 \
	"$(psql_q "SELECT count(*) FROM courseware_studentmodule m LEFT JOIN student_courseenrollment e
		 ON e.course_id = m.course_id AND e.user_id = m.student_id WHERE e.id IS NULL")"
assert_ge "problems unattempted (learner-problem pairs without a row)" 1 \
	"$(psql_q "SELECT (SELECT sum(p.n * e.n) FROM
		 (SELECT course_id, count(*) n FROM course_blocks WHERE block_type = 'problem' GROUP BY 1) p
		 JOIN (SELECT course_id, count(*) n FROM student_courseenrollment GROUP BY 1) e
		 USING (course_id)) - $rows")"

# --- the same seed gives the same data ----------------------------------------
first=$(dump_md5)
assert_ok "seed again" "$ADMIN" seed --courses small,medium,large --learners "$LEARNERS" --seed 7 \
	--replace >/dev/null
assert_eq "data after seeding twice" "$first" "$(dump_md5)"
assert_eq "enrollments after seeding twice" $((3 * LEARNERS)) \
	"$(psql_q "SELECT count(*) FROM student_courseenrollment")"

# --- another course beside them: a non-ASCII id, the others untouched ---------
assert_ok "seed a non-ASCII course" "$ADMIN" seed --courses small --learners 20 --seed 8 \
	--prefix 'course-v1:gradéq+' --replace >/dev/null
assert_eq "non-ASCII course" "20|t" \
	"$(psql_q "SELECT count(*), bool_and(b.ok) FROM student_courseenrollment e,
		 (SELECT bool_and(usage_key LIKE 'block-v1:gradéq+small1+2026+type@%') ok
		  FROM course_blocks WHERE course_id = 'course-v1:gradéq+small1+2026') b
		 WHERE e.course_id = 'course-v1:gradéq+small1+2026'")"
psql_q "DELETE FROM courseware_studentmodule WHERE course_id = 'course-v1:gradéq+small1+2026';
	DELETE FROM student_courseenrollment WHERE course_id = 'course-v1:gradéq+small1+2026';
	DELETE FROM course_blocks WHERE course_id = 'course-v1:gradéq+small1+2026';
	DELETE FROM courses WHERE course_id = 'course-v1:gradéq+small1+2026'" >/dev/null
assert_eq "other courses untouched" "$first" "$(dump_md5)"

# --- a seed longer than the configured statement_timeout -----------------------
# (the one COPY of every course's rows runs for minutes on a benchmark's
# seed; the timeout is for the grading's statements)
conf=$(mktemp)
printf 'statement_timeout_ms = 50;\n' >"$conf"
assert_ok "seed under a 50 ms statement_timeout" "$ADMIN" -c "$conf" seed \
	--courses medium --learners 300 --prefix 'course-v1:timeout+' >/dev/null
rm -f "$conf"
assert_eq "rows of the course seeded under the timeout" "300|t" \
	"$(psql_q "SELECT count(*), (SELECT count(*) > 300 * 100 FROM courseware_studentmodule
		 WHERE course_id = 'course-v1:timeout+medium1+2026') FROM student_courseenrollment
		 WHERE course_id = 'course-v1:timeout+medium1+2026'")"

log "ok"
