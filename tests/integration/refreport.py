#!/usr/bin/env python3
"""The grade report of a course computed independently from the grade
tables, as gradeq-report's CSV must be byte for byte (docs/reports.md):

    refreport.py DSN COURSE_ID > expected.csv

Columns: user_id, percent (2 decimals), letter, passed (a passed_timestamp
is stored); per GRADER entry, the earned share of its type's graded
subsections; per graded subsection in course order, its percent (rule 5).
Course order and the GRADER list come from refgrade.py, the reference of
the grading rules."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import refgrade  # noqa: E402


def field(s):
    if any(c in s for c in ',"\r\n') or (s and (s[0] == " " or s[-1] == " ")):
        return '"' + s.replace('"', '""') + '"'
    return s


def fraction(earned, possible):
    v = round(earned / possible * 1e4) / 1e4 if possible > 0 else 0.0
    return "%.4f" % v


def report(dsn, course):
    q = refgrade.sql_str(course)
    rows = refgrade.fetch_all(dsn, "SELECT version, grading_policy::text FROM courses"
                                   " WHERE course_id = %s" % q)
    if not rows:
        raise SystemExit("refreport: unknown course %s" % course)
    c = refgrade.load_course(dsn, course, rows[0][0], rows[0][1])
    formats = [g[0] for g in c.graders]
    first = {}
    for i, t in enumerate(formats):
        first.setdefault(t, i)
    seqs = [(key, fmt) for key, graded, fmt, _ in c.seqs if graded]
    owner = [first.get(fmt, -1) if fmt is not None else -1 for _, fmt in seqs]
    subs = {}
    for uid, key, e, p in refgrade.fetch_all(
            dsn, "SELECT user_id, usage_key, earned_graded, possible_graded"
                 " FROM grades_persistentsubsectiongrade WHERE course_id = %s" % q):
        subs[(int(uid), key)] = (float(e), float(p))
    out = ["user_id,percent,letter,passed" + "".join("," + field(t) for t in formats) +
           "".join("," + field(k) for k, _ in seqs) + "\n"]
    for uid, pct, letter, passed in refgrade.fetch_all(
            dsn, "SELECT g.user_id, g.percent_grade, g.letter_grade,"
                 " g.passed_timestamp IS NOT NULL FROM grades_persistentcoursegrade g"
                 " WHERE g.course_id = %s AND EXISTS (SELECT 1 FROM student_courseenrollment e"
                 " WHERE e.course_id = g.course_id AND e.user_id = g.user_id)"
                 " ORDER BY g.user_id" % q):
        uid = int(uid)
        line = "%d,%.2f,%s,%s" % (uid, float(pct), field(letter),
                                  "true" if passed == "t" else "false")
        cells = [subs.get((uid, k)) for k, _ in seqs]
        for e in range(len(formats)):
            te = tp = 0.0
            for i, cell in enumerate(cells):
                if owner[i] == e and cell is not None and cell[1] > 0:
                    te += cell[0]
                    tp += cell[1]
            line += "," + fraction(te, tp)
        for cell in cells:
            line += "," + (fraction(cell[0], cell[1]) if cell is not None else "")
        out.append(line + "\n")
    return "".join(out)


def main(argv):
    if len(argv) != 3:
        print("usage: refreport.py DSN COURSE_ID", file=sys.stderr)
        return 2
    sys.stdout.write(report(argv[1], argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
