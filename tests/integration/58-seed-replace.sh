#!/usr/bin/env bash
# gradeq-admin seed never touches the data of a course it would generate
# unless told to: without --replace, seeding courses that already have rows
# fails with one line naming --replace and leaves every row as it was (all
# courses checked before any is written); with --replace the courses are
# generated again.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_cmd psql
ADMIN=$(require_bin gradeq-admin)
cd "$GRADEQ_SRC"

counts() {
	psql_q "SELECT (SELECT count(*) FROM courses) || ' ' ||
		(SELECT count(*) FROM course_blocks) || ' ' ||
		(SELECT count(*) FROM student_courseenrollment) || ' ' ||
		(SELECT count(*) FROM courseware_studentmodule)"
}
enrolled() {
	psql_q "SELECT count(*) FROM student_courseenrollment WHERE course_id = '$1'"
}

fresh_db
assert_ok "migrate" "$ADMIN" migrate --with-input-tables >/dev/null
assert_ok "first seed" "$ADMIN" seed --courses small --learners 40 --seed 3 >/dev/null
before=$(counts)
assert_eq "enrolled" 40 "$(enrolled course-v1:gradeq+small1+2026)"

# the destructive case of the issue: no learners, no --replace
if out=$("$ADMIN" seed --courses small --learners 0 2>&1 >/dev/null); then
	die "seed --learners 0 over existing data succeeded"
fi
assert_eq "one error line" 1 "$(wc -l <<<"$out")"
assert_match "the error names --replace" "^gradeq-admin: .*course-v1:gradeq\+small1\+2026.*--replace" "$out"
assert_eq "rows untouched" "$before" "$(counts)"

# a new course beside an existing one: refused as a whole, nothing written
if out=$("$ADMIN" seed --courses medium,small --learners 10 2>&1 >/dev/null); then
	die "seed over an existing course succeeded"
fi
assert_match "the error names --replace" "--replace" "$out"
assert_eq "rows untouched (the new course not written either)" "$before" "$(counts)"
assert_eq "medium not written" 0 "$(enrolled course-v1:gradeq+medium1+2026)"

# a course that has no rows yet needs no --replace
assert_ok "seed a new course" "$ADMIN" seed --courses small --learners 5 --prefix 'course-v1:other+' >/dev/null
assert_eq "new course enrolled" 5 "$(enrolled course-v1:other+small1+2026)"
assert_eq "old course untouched" 40 "$(enrolled course-v1:gradeq+small1+2026)"

# with --replace it replaces
assert_ok "seed --replace" "$ADMIN" seed --courses small --learners 0 --replace >/dev/null
assert_eq "replaced" 0 "$(enrolled course-v1:gradeq+small1+2026)"
assert_eq "the other course untouched" 5 "$(enrolled course-v1:other+small1+2026)"
log ok
