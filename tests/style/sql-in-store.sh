#!/usr/bin/env bash
# The store is gradeq's data layer: SQL text and libpq calls live only in its
# modules (src/store.c, src/store/*.c and the migrations in src/sql/). This
# check lists every other line of src/ and include/ that holds an SQL
# statement in a string literal or calls libpq, and fails when there is one.
#
# Usage: tests/style/sql-in-store.sh [SOURCE_DIR]
set -euo pipefail
src=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
cd "$src"

mapfile -t files < <(find src include -name '*.[ch]' ! -path 'src/store/*' ! -name 'store.c' | sort)
# a string literal that starts an SQL statement or clause, or a libpq call
sql='"[[:space:]]*(SELECT|INSERT INTO|UPDATE [a-z_]+ SET|DELETE FROM|WITH [a-z_]+ AS|CREATE (TABLE|INDEX|FUNCTION|TRIGGER|ROLE|DATABASE)|ALTER TABLE|DROP (TABLE|INDEX)|COPY [a-z_]+|TRUNCATE|LOCK TABLE|BEGIN|COMMIT|ROLLBACK|SET (LOCAL|SESSION)?)([[:space:]";(]|$)'
pq='(^|[^A-Za-z_])PQ[a-zA-Z]+[[:space:]]*\('
found=$(grep -nE -- "$sql|$pq" "${files[@]}" /dev/null || true)
if [[ -n $found ]]; then
	printf 'SQL or libpq outside the store modules:\n%s\n' "$found" >&2
	exit 1
fi
printf 'no SQL outside the store modules (%d files checked)\n' "${#files[@]}"
