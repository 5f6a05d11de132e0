#!/usr/bin/env python3
"""Reference implementation of gradeq's grading rules (DESIGN.md section 2).

An independent second implementation, written from the design brief and the
platform's own code (lms/djangoapps/grades, xmodule/graders.py), used by the
integration tests to check that every grade row gradeq wrote is exactly what
the rules give, float for float.

    refgrade.py check [--course ID ...] [--active-only] [--allow-missing]
                      [--history] [--fresh] [--limit-errors N]
    refgrade.py selftest

The database is the libpq conninfo in GRADEQ_PG_DSN; rows are read with psql
(COPY ... TO STDOUT), one course at a time, score and grade rows streamed in
user order, so memory does not grow with the number of learners.

Standard library only.
"""

import argparse
import base64
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time

# The platform's defaults when a course's policy lacks GRADER or
# GRADE_CUTOFFS (xmodule/course_block.py); the hash is taken over the
# effective policy, as the platform's course.grading_policy gives it.
DEFAULT_GRADER = [
    {"type": "Homework", "min_count": 12, "drop_count": 2, "short_label": "HW", "weight": 0.15},
    {"type": "Lab", "min_count": 12, "drop_count": 2, "weight": 0.15},
    {"type": "Midterm Exam", "min_count": 1, "drop_count": 0, "short_label": "Midterm", "weight": 0.3},
    {"type": "Final Exam", "min_count": 1, "drop_count": 0, "short_label": "Final", "weight": 0.4},
]
DEFAULT_CUTOFFS = {"Pass": 0.5}


class RefError(Exception):
    pass


# --- the rules ------------------------------------------------------------


def policy_hash(policy):
    """Rule 10: base64(sha1(compact key-sorted JSON))."""
    text = json.dumps(policy, sort_keys=True, separators=(",", ":"))
    return base64.b64encode(hashlib.sha1(text.encode("utf-8")).digest()).decode("ascii")


def effective_policy(policy):
    if not isinstance(policy, dict):
        raise RefError("grading policy is not a JSON object")
    grader = policy.get("GRADER", DEFAULT_GRADER)
    cutoffs = policy.get("GRADE_CUTOFFS", DEFAULT_CUTOFFS)
    return {"GRADER": grader, "GRADE_CUTOFFS": cutoffs}


def subsection_percent(earned, possible):
    """Rule 5: round half to even to 4 decimals (Python's round() of a float
    is half to even, as C's rint in the default rounding mode)."""
    if possible > 0:
        return round(earned / possible * 1e4) / 1e4
    return 0.0


class Course:
    """A course compiled for grading: problems and sequentials in course
    order, per-problem defaults for learners with no score row, the policy."""

    def __init__(self, course_id, version, blocks, policy):
        """blocks: iterable of dicts with usage_key, block_type, parent_key,
        position, graded, format, weight, max_score. policy: parsed JSON."""
        self.course_id = course_id
        self.version = version
        pol = effective_policy(policy)
        self.policy_hash = policy_hash(pol)
        self.graders = []
        for g in pol["GRADER"]:
            if not isinstance(g, dict) or "min_count" not in g or "type" not in g:
                raise RefError("GRADER entry without type or min_count: %r" % (g,))
            self.graders.append((g["type"], int(float(g["min_count"])),
                                 int(g.get("drop_count", 0)), g.get("weight", 0)))
        cut = pol["GRADE_CUTOFFS"]
        # Rule 9: sorted descending by cutoff (stable, as Python's sorted with
        # reverse=True keeps equal keys in their original order).
        self.cutoffs = [(k, cut[k]) for k in sorted(cut, key=lambda k: cut[k], reverse=True)]
        nonzero = [v for v in cut.values() if v > 0]
        self.pass_cutoff = min(nonzero) if nonzero else None

        by_key = {}
        children = {}
        for b in blocks:
            by_key[b["usage_key"]] = b
            children.setdefault(b["parent_key"], []).append(b)
        for lst in children.values():
            lst.sort(key=lambda b: (b["position"], b["usage_key"]))

        # Course order: depth first from the root(s), by position.
        order = []
        roots = [b for b in children.get(None, [])]
        seen = set()
        stack = list(reversed(roots))
        while stack:
            b = stack.pop()
            if b["usage_key"] in seen:
                continue
            seen.add(b["usage_key"])
            order.append(b)
            stack.extend(reversed(children.get(b["usage_key"], [])))
        rank = {b["usage_key"]: i for i, b in enumerate(order)}
        # Blocks not reachable from a root keep a place after the rest.
        for b in sorted(by_key.values(), key=lambda b: b["usage_key"]):
            if b["usage_key"] not in rank:
                rank[b["usage_key"]] = len(rank)

        problems = sorted((b for b in by_key.values() if b["block_type"] == "problem"),
                          key=lambda b: rank[b["usage_key"]])
        self.problem_index = {b["usage_key"]: i for i, b in enumerate(problems)}
        self.problem_weight = [b["weight"] for b in problems]
        self.problem_graded = [bool(b["graded"]) for b in problems]
        # Rules 1-3 for a learner with no valid score row: raw (0, max_score).
        self.defaults = []
        for b in problems:
            self.defaults.append(self.problem_score(self.problem_index[b["usage_key"]],
                                                    0.0, b["max_score"] if b["max_score"] is not None else 0.0,
                                                    None))

        seqs = sorted((b for b in by_key.values() if b["block_type"] == "sequential"),
                      key=lambda b: rank[b["usage_key"]])
        self.seqs = []
        for s in seqs:
            # Rule 4: every problem of the whole subtree, in course order.
            sub = []
            stack = [s["usage_key"]]
            visited = set()
            while stack:
                k = stack.pop()
                if k in visited:
                    continue
                visited.add(k)
                for c in children.get(k, []):
                    if c["block_type"] == "problem":
                        sub.append(self.problem_index[c["usage_key"]])
                    stack.append(c["usage_key"])
            sub.sort()
            self.seqs.append((s["usage_key"], bool(s["graded"]), s["format"], tuple(sub)))

    def problem_score(self, i, raw_earned, raw_possible, attempted):
        """Rules 2 and 3: (earned, possible, graded, first_attempted)."""
        weight = self.problem_weight[i]
        if weight is not None and raw_possible > 0:
            earned = raw_earned * weight / raw_possible
            possible = weight
        else:
            earned, possible = raw_earned, raw_possible
        return (earned, possible, possible > 0 and self.problem_graded[i], attempted)

    def scores_from_rows(self, rows):
        """rows: iterable of (usage_key, grade, max_grade, created_us) from
        courseware_studentmodule. Rule 1. Returns per-problem tuples."""
        vals = list(self.defaults)
        index = self.problem_index
        for key, grade, max_grade, created in rows:
            i = index.get(key)
            if i is None or max_grade is None:
                continue
            if grade is not None:
                vals[i] = self.problem_score(i, grade, max_grade, created)
            else:
                vals[i] = self.problem_score(i, 0.0, max_grade, None)
        return vals

    def grade(self, vals):
        """Rules 4-9 for one learner. Returns (subsections, course) with
        subsections a list of (usage_key, earned_all, possible_all,
        earned_graded, possible_graded, first_attempted) in course order and
        course a tuple (percent_grade, letter_grade, passed)."""
        subs = []
        sheet = {}
        for key, seq_graded, fmt, probs in self.seqs:
            ea = pa = eg = pg = 0.0
            fa = None
            for i in probs:
                e, p, g, t = vals[i]
                ea += e
                pa += p
                if g:
                    eg += e
                    pg += p
                if t is not None and (fa is None or t < fa):
                    fa = t
            subs.append((key, ea, pa, eg, pg, fa))
            # Rule 6: grader input.
            if seq_graded and pg > 0:
                sheet.setdefault(fmt, []).append(subsection_percent(eg, pg))
        # Rule 7.
        raw = 0.0
        for typ, min_count, drop_count, weight in self.graders:
            pcts = list(sheet.get(typ, ()))
            if len(pcts) < min_count:
                pcts.extend([0.0] * (min_count - len(pcts)))
            dropped = set()
            if drop_count > 0:
                order = sorted(range(len(pcts)), key=lambda j: -pcts[j])
                dropped = set(order[-drop_count:])
            total = 0.0
            kept = 0
            for j, p in enumerate(pcts):
                if j not in dropped:
                    total += p
                    kept += 1
            avg = total / kept if kept > 0 else 0.0
            raw += avg * weight
        # Rule 8.
        percent = math.floor(raw * 100 + 0.05 + 0.5) / 100
        # Rule 9.
        letter = ""
        for name, cutoff in self.cutoffs:
            if percent >= cutoff:
                letter = name
                break
        passed = self.pass_cutoff is not None and percent >= self.pass_cutoff
        return subs, (percent, letter, passed)


# --- database ---------------------------------------------------------------


def sql_str(s):
    return "'" + s.replace("'", "''") + "'"


_UNESCAPE = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


def _unescape(field):
    if field == "\\N":
        return None
    if "\\" not in field:
        return field
    out = []
    i = 0
    while i < len(field):
        c = field[i]
        if c == "\\" and i + 1 < len(field):
            n = field[i + 1]
            out.append(_UNESCAPE.get(n, n))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


class Copy:
    """Stream the rows of `COPY (query) TO STDOUT` (text format) through psql:
    iterate for lists of fields (None for NULL)."""

    def __init__(self, dsn, query):
        self.query = query
        env = dict(os.environ)
        # Shortest round-trip float8 output (the default since PostgreSQL 12,
        # made explicit).
        env["PGOPTIONS"] = (env.get("PGOPTIONS", "") + " -c extra_float_digits=3").strip()
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn,
             "-c", "COPY (%s) TO STDOUT" % query],
            stdout=subprocess.PIPE, stderr=self.err, env=env,
            encoding="utf-8", errors="strict", bufsize=1 << 20)

    def __iter__(self):
        for line in self.proc.stdout:
            line = line[:-1] if line.endswith("\n") else line
            yield [_unescape(f) for f in line.split("\t")]
        self.close()

    def close(self):
        if self.proc is None:
            return
        self.proc.stdout.close()
        rc = self.proc.wait()
        self.proc = None
        self.err.seek(0)
        msg = self.err.read().decode("utf-8", "replace").strip()
        self.err.close()
        if rc != 0:
            raise RefError("psql failed (%s) on: %s" % (msg or "exit %d" % rc, self.query))

    def abort(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            self.err.close()


def fetch_all(dsn, query):
    c = Copy(dsn, query)
    return list(c)


def to_float(s):
    return None if s is None else float(s)


def to_int(s):
    return None if s is None else int(s)


def to_bool(s):
    return s == "t"


def grouped(rows, key=0):
    """Group consecutive rows by int(row[key]): yields (uid, [rows])."""
    cur = None
    group = []
    for r in rows:
        uid = int(r[key])
        if uid != cur:
            if group:
                yield cur, group
            cur = uid
            group = []
        group.append(r)
    if group:
        yield cur, group


def load_course(dsn, course_id, version, policy_text):
    blocks = []
    for r in Copy(dsn, "SELECT usage_key, block_type, parent_key, position, graded, format,"
                       " weight, max_score FROM course_blocks WHERE course_id = %s"
                       % sql_str(course_id)):
        blocks.append({"usage_key": r[0], "block_type": r[1], "parent_key": r[2],
                       "position": int(r[3]), "graded": to_bool(r[4]), "format": r[5],
                       "weight": to_float(r[6]), "max_score": to_float(r[7])})
    return Course(course_id, version, blocks, json.loads(policy_text))


# --- check --------------------------------------------------------------------


class Report:
    def __init__(self, limit):
        self.limit = limit
        self.errors = 0

    def add(self, course, user, key, field, expected, got):
        self.errors += 1
        if self.errors <= self.limit:
            print("MISMATCH course=%s user=%s usage_key=%s field=%s expected=%s got=%s"
                  % (course, user, key if key is not None else "-", field,
                     fmt(expected), fmt(got)))


def fmt(v):
    if isinstance(v, float):
        return repr(v)
    if v is None:
        return "NULL"
    return str(v)


def same_float(a, b):
    return a == b or (a != a and b != b)


def check_course(dsn, course, args, rep, totals):
    cq = sql_str(course.course_id)
    enroll = [(int(r[0]), to_bool(r[1])) for r in
              Copy(dsn, "SELECT user_id, is_active FROM student_courseenrollment"
                        " WHERE course_id = %s ORDER BY user_id" % cq)]
    enrolled = dict(enroll)
    scores = Copy(dsn, "SELECT student_id, module_state_key, grade, max_grade,"
                       " (extract(epoch from created) * 1000000)::bigint"
                       " FROM courseware_studentmodule WHERE course_id = %s"
                       " ORDER BY student_id" % cq)
    subrows = Copy(dsn, "SELECT user_id, usage_key, course_version, earned_all, possible_all,"
                        " earned_graded, possible_graded,"
                        " (extract(epoch from first_attempted) * 1000000)::bigint"
                        " FROM grades_persistentsubsectiongrade WHERE course_id = %s"
                        " ORDER BY user_id, usage_key" % cq)
    crsrows = Copy(dsn, "SELECT user_id, course_version, grading_policy_hash, percent_grade,"
                        " letter_grade, passed_timestamp IS NOT NULL"
                        " FROM grades_persistentcoursegrade WHERE course_id = %s"
                        " ORDER BY user_id" % cq)
    streams = [grouped(iter(scores)), grouped(iter(subrows)), grouped(iter(crsrows))]
    heads = [next(s, None) for s in streams]
    cid = course.course_id
    seq_keys = [s[0] for s in course.seqs]
    users = iter(u for u, _ in enroll)
    nxt_enrolled = next(users, None)
    try:
        while True:
            cands = [h[0] for h in heads if h is not None]
            if nxt_enrolled is not None:
                cands.append(nxt_enrolled)
            if not cands:
                break
            uid = min(cands)
            if uid == nxt_enrolled:
                nxt_enrolled = next(users, None)
            parts = []
            for n in range(3):
                h = heads[n]
                if h is not None and h[0] == uid:
                    parts.append(h[1])
                    heads[n] = next(streams[n], None)
                else:
                    parts.append(())
            score_rows, stored_subs, stored_course = parts
            expect = uid in enrolled and (enrolled[uid] or not args.active_only)
            if not expect:
                for r in stored_subs:
                    rep.add(cid, uid, r[1], "row", "none (%s)" % (
                        "inactive enrollment" if uid in enrolled else "not enrolled"), "subsection row")
                for r in stored_course:
                    rep.add(cid, uid, None, "row", "none (%s)" % (
                        "inactive enrollment" if uid in enrolled else "not enrolled"), "course row")
                continue
            vals = course.scores_from_rows(
                (r[1], to_float(r[2]), to_float(r[3]), int(r[4])) for r in score_rows)
            subs, (percent, letter, passed) = course.grade(vals)
            totals["learners"] += 1

            # Course row.
            if not stored_course:
                if not args.allow_missing:
                    rep.add(cid, uid, None, "row", "course row", "missing")
            else:
                r = stored_course[0]
                totals["course_rows"] += 1
                if r[1] != course.version:
                    rep.add(cid, uid, None, "course_version", course.version, r[1])
                if r[2] != course.policy_hash:
                    rep.add(cid, uid, None, "grading_policy_hash", course.policy_hash, r[2])
                got = float(r[3])
                if not same_float(percent, got):
                    rep.add(cid, uid, None, "percent_grade", percent, got)
                if r[4] != letter:
                    rep.add(cid, uid, None, "letter_grade", repr(letter), repr(r[4]))
                has_ts = to_bool(r[5])
                if passed and not has_ts:
                    rep.add(cid, uid, None, "passed_timestamp", "not NULL (passes now)", "NULL")
                if args.fresh and not passed and has_ts:
                    rep.add(cid, uid, None, "passed_timestamp", "NULL (never passed)", "not NULL")

            # Subsection rows.
            stored = {}
            for r in stored_subs:
                stored[r[1]] = r
            for key, ea, pa, eg, pg, fa in subs:
                r = stored.pop(key, None)
                if r is None:
                    if not args.allow_missing:
                        rep.add(cid, uid, key, "row", "subsection row", "missing")
                    continue
                totals["subsection_rows"] += 1
                if r[2] != course.version:
                    rep.add(cid, uid, key, "course_version", course.version, r[2])
                for name, want, got in (("earned_all", ea, r[3]), ("possible_all", pa, r[4]),
                                        ("earned_graded", eg, r[5]), ("possible_graded", pg, r[6])):
                    got = float(got)
                    if not same_float(want, got):
                        rep.add(cid, uid, key, name, want, got)
                got_fa = to_int(r[7])
                if got_fa != fa:
                    # With --history a stored first_attempted may be earlier
                    # (it is kept on update when earlier).
                    if not (args.history and got_fa is not None and (fa is None or got_fa < fa)):
                        rep.add(cid, uid, key, "first_attempted", fa, got_fa)
            for key in sorted(stored):
                rep.add(cid, uid, key, "row", "none (not a sequential of the course)", "subsection row")
    except BaseException:
        for c in (scores, subrows, crsrows):
            c.abort()
        raise
    for c in (scores, subrows, crsrows):
        c.close()
    del seq_keys


def cmd_check(args):
    dsn = os.environ.get("GRADEQ_PG_DSN")
    if not dsn:
        raise RefError("GRADEQ_PG_DSN is not set")
    courses = fetch_all(dsn, "SELECT course_id, version, grading_policy::text FROM courses"
                             " ORDER BY course_id")
    if args.course:
        have = {r[0] for r in courses}
        for c in args.course:
            if c not in have:
                raise RefError("unknown course %r" % c)
        want = set(args.course)
        courses = [r for r in courses if r[0] in want]
    rep = Report(args.limit_errors)
    totals = {"learners": 0, "subsection_rows": 0, "course_rows": 0}
    t0 = time.monotonic()
    for course_id, version, policy_text in courses:
        try:
            course = load_course(dsn, course_id, version, policy_text)
        except (RefError, ValueError) as e:
            rep.add(course_id, "-", None, "course", "a gradable course", "cannot grade: %s" % e)
            continue
        check_course(dsn, course, args, rep, totals)
    dt = time.monotonic() - t0
    summary = ("refgrade: %d courses, %d learners, %d subsection rows, %d course rows checked"
               % (len(courses), totals["learners"], totals["subsection_rows"],
                  totals["course_rows"]))
    if rep.errors:
        more = rep.errors - min(rep.errors, rep.limit)
        print("%s: FAILED, %d mismatches%s (%.1f s)"
              % (summary, rep.errors, " (%d not shown)" % more if more else "", dt))
        return 1
    print("%s: OK (%.1f s)" % (summary, dt))
    return 0


# --- selftest -------------------------------------------------------------------


def _blocks(spec):
    """spec: list of (usage_key, block_type, parent_key, position, extras)."""
    out = []
    for key, typ, parent, pos, extra in spec:
        b = {"usage_key": key, "block_type": typ, "parent_key": parent, "position": pos,
             "graded": True, "format": None, "weight": None, "max_score": None}
        b.update(extra)
        out.append(b)
    return out


def cmd_selftest(_args):
    failures = []

    def expect(what, got, want):
        if not (got == want or (isinstance(got, float) and isinstance(want, float)
                                and same_float(got, want))):
            failures.append("%s: expected %r, got %r" % (what, want, got))

    # Course A: weights, padding to min_count, pass.
    #   hw1 (Homework): p1 weight 2, row 1/1 -> 1*2/1 = 2 of 2;
    #                   p2 no weight, row 1/3 -> raw 1 of 3.   hw1 = 3/5 = 0.6
    #   ex1 (Exam):     p3 weight 10, row 3/4 -> 3*10/4 = 7.5 of 10 = 0.75
    #   Homework min_count 2: [0.6, 0.0] -> 0.3; Exam: 0.75
    #   raw = 0.3*0.5 + 0.75*0.5 = 0.525; floor(52.5 + 0.05 + 0.5) = 53 -> 0.53
    #   cutoffs {Pass: 0.5}: 'Pass', passed. first_attempted: hw1 min(200, 100).
    #   Learner 2 has no rows: p1 0 of 2 (weight 2 over max_score 1), p2 0 of 3,
    #   p3 0 of 10; all sums 0 of 5 / 0 of 10, percent 0.0, '' and not passed.
    pol_a = {"GRADER": [{"type": "Homework", "min_count": 2, "drop_count": 0, "weight": 0.5},
                        {"type": "Exam", "min_count": 1, "drop_count": 0, "weight": 0.5}],
             "GRADE_CUTOFFS": {"Pass": 0.5}}
    a = Course("A", "v1", _blocks([
        ("c", "course", None, 0, {}),
        ("ch", "chapter", "c", 0, {}),
        ("hw1", "sequential", "ch", 0, {"format": "Homework"}),
        ("v1", "vertical", "hw1", 0, {}),
        ("p1", "problem", "v1", 0, {"weight": 2.0, "max_score": 1.0}),
        ("p2", "problem", "v1", 1, {"max_score": 3.0}),
        ("ex1", "sequential", "ch", 1, {"format": "Exam"}),
        ("v2", "vertical", "ex1", 0, {}),
        ("p3", "problem", "v2", 0, {"weight": 10.0, "max_score": 4.0}),
    ]), pol_a)
    subs, crs = a.grade(a.scores_from_rows([("p1", 1.0, 1.0, 200), ("p2", 1.0, 3.0, 100),
                                            ("p3", 3.0, 4.0, 300)]))
    expect("A.subs", subs, [("hw1", 3.0, 5.0, 3.0, 5.0, 100), ("ex1", 7.5, 10.0, 7.5, 10.0, 300)])
    expect("A.course", crs, (0.53, "Pass", True))
    subs, crs = a.grade(a.scores_from_rows([]))
    expect("A2.subs", subs, [("hw1", 0.0, 5.0, 0.0, 5.0, None), ("ex1", 0.0, 10.0, 0.0, 10.0, None)])
    expect("A2.course", crs, (0.0, "", False))
    # The hash of the design brief's example policy (canonical JSON, SHA-1):
    #   {"GRADER":[{"drop_count":2,"min_count":12,"short_label":"HW","type":"Homework",
    #   "weight":0.15}],"GRADE_CUTOFFS":{"A":0.9,"B":0.8,"Pass":0.5}}
    expect("hash", policy_hash({"GRADER": [{"type": "Homework", "min_count": 12, "drop_count": 2,
                                            "short_label": "HW", "weight": 0.15}],
                                "GRADE_CUTOFFS": {"A": 0.9, "B": 0.8, "Pass": 0.5}}),
           "9VDKR9jneY6ptxWGA+bs1NKTLy0=")

    # Course B: half-even rounding, nested verticals, drops, exclusions.
    #   s1 HW: p1 row 1/32 -> 0.03125 -> rint(312.5) = 312 -> 0.0312 (half to even)
    #   s2 HW: v/v/p2 weight 4 row 2/2 -> 4 of 4; p3 ungraded row 1/1 -> 1 of 1:
    #          all 5 of 5, graded 4 of 4 -> 1.0
    #   s3 HW: p4 row grade 5 with max_grade NULL -> max_score 5: 0 of 5, no attempt -> 0.0
    #   s4 Quiz: p5 row 1/1; Quiz is no GRADER type: ignored.
    #   s5 HW ungraded sequential: p6 row 1/1; not grader input.
    #   s6 HW: p7 weight 0 row 1/1 -> 1*0/1 = 0 of 0: not graded, possible_graded 0: excluded.
    #   Homework min 3 drop 1: [0.0312, 1.0, 0.0] drop 0.0 -> (0.0312 + 1.0) / 2 = 0.5156
    #   raw = 0.5156 * 1.0; floor(51.56 + 0.05 + 0.5) = 52 -> 0.52
    #   cutoffs A 0.9, B 0.8, F 0: 'F'; passing needs 0.8 (smallest non-zero): not passed.
    pol_b = {"GRADER": [{"type": "Homework", "min_count": 3, "drop_count": 1, "weight": 1.0}],
             "GRADE_CUTOFFS": {"F": 0, "A": 0.9, "B": 0.8}}
    b = Course("B", "v1", _blocks([
        ("c", "course", None, 0, {}),
        ("ch", "chapter", "c", 0, {}),
        ("s2", "sequential", "ch", 1, {"format": "Homework"}),
        ("s1", "sequential", "ch", 0, {"format": "Homework"}),
        ("s3", "sequential", "ch", 2, {"format": "Homework"}),
        ("s4", "sequential", "ch", 3, {"format": "Quiz"}),
        ("s5", "sequential", "ch", 4, {"format": "Homework", "graded": False}),
        ("s6", "sequential", "ch", 5, {"format": "Homework"}),
        ("p1", "problem", "s1", 0, {"max_score": 1.0}),
        ("va", "vertical", "s2", 0, {}),
        ("vb", "vertical", "va", 0, {}),
        ("p2", "problem", "vb", 0, {"weight": 4.0, "max_score": 1.0}),
        ("p3", "problem", "va", 1, {"weight": 1.0, "graded": False}),
        ("p4", "problem", "s3", 0, {"max_score": 5.0}),
        ("p5", "problem", "s4", 0, {"max_score": 1.0}),
        ("p6", "problem", "s5", 0, {"max_score": 1.0}),
        ("p7", "problem", "s6", 0, {"weight": 0.0, "max_score": 1.0}),
    ]), pol_b)
    subs, crs = b.grade(b.scores_from_rows([
        ("p1", 1.0, 32.0, 10), ("p2", 2.0, 2.0, 20), ("p3", 1.0, 1.0, 5),
        ("p4", 5.0, None, 1), ("p5", 1.0, 1.0, 30), ("p6", 1.0, 1.0, 40),
        ("p7", 1.0, 1.0, 50), ("elsewhere", 1.0, 1.0, 0)]))
    expect("B.subs", subs, [("s1", 1.0, 32.0, 1.0, 32.0, 10), ("s2", 5.0, 5.0, 4.0, 4.0, 5),
                            ("s3", 0.0, 5.0, 0.0, 5.0, None), ("s4", 1.0, 1.0, 1.0, 1.0, 30),
                            ("s5", 1.0, 1.0, 1.0, 1.0, 40), ("s6", 0.0, 0.0, 0.0, 0.0, 50)])
    expect("B.course", crs, (0.52, "F", False))

    # Rule 5 on its own: 1/32 = 0.03125 -> 312.5 -> 312 -> 0.0312 (half to
    # even, not 0.0313); 3/32 -> 937.5 -> 938 -> 0.0938; 5/32 -> 1562.5 -> 0.1562.
    expect("pct.1/32", subsection_percent(1.0, 32.0), 0.0312)
    expect("pct.3/32", subsection_percent(3.0, 32.0), 0.0938)
    expect("pct.5/32", subsection_percent(5.0, 32.0), 0.1562)
    expect("pct.0/0", subsection_percent(0.0, 0.0), 0.0)

    # Course C: the +0.05 of rule 8, and a letter exactly at its cutoff.
    #   e1 Final: p1 row 0.8445 of 1 -> 0.8445; raw = 0.8445 * 1
    #   0.8445 * 100 = 84.45 (as a double); + 0.05 = 84.5; + 0.5 = 85.0 -> 0.85
    #   (plain half-even rounding to 2 decimals would give 0.84). 0.85 >= B 0.85: 'B'.
    #   Lab min 0 drop 2 with one Lab subsection: all dropped -> 0, and its
    #   missing weight counts 0.
    pol_c = {"GRADER": [{"type": "Final", "min_count": 1, "drop_count": 0, "weight": 1},
                        {"type": "Lab", "min_count": 0, "drop_count": 2}],
             "GRADE_CUTOFFS": {"B": 0.85, "C": 0.7}}
    c = Course("C", "v1", _blocks([
        ("c", "course", None, 0, {}),
        ("ch", "chapter", "c", 0, {}),
        ("e1", "sequential", "ch", 0, {"format": "Final"}),
        ("p1", "problem", "e1", 0, {"max_score": 1.0}),
        ("l1", "sequential", "ch", 1, {"format": "Lab"}),
        ("p2", "problem", "l1", 0, {"max_score": 1.0}),
    ]), pol_c)
    subs, crs = c.grade(c.scores_from_rows([("p1", 0.8445, 1.0, 7), ("p2", 1.0, 1.0, 8)]))
    expect("C.course", crs, (0.85, "B", True))

    # Course D: a row with grade NULL counts max_grade (not max_score) and no
    # attempt; first_attempted is the earliest of the subtree, graded or not.
    #   q1 Homework: p1 max_score 10, row grade NULL max_grade 4 -> 0 of 4, no attempt;
    #   p2 ungraded row 1/2 at t=900; p3 row 2/2 at t=700 -> all 3 of 8, graded 2 of 6,
    #   first_attempted 700. 2/6 = 0.3333.. -> rint(3333.33) -> 0.3333.
    #   Homework min 1 drop 0 weight 0.3: raw = 0.3333 * 0.3 = 0.09999 (double);
    #   9.999 + 0.05 + 0.5 = 10.549 -> 10 -> 0.1; cutoffs {}: '' and not passed.
    pol_d = {"GRADER": [{"type": "Homework", "min_count": 1, "drop_count": 0, "weight": 0.3}],
             "GRADE_CUTOFFS": {}}
    d = Course("D", "v1", _blocks([
        ("c", "course", None, 0, {}),
        ("ch", "chapter", "c", 0, {}),
        ("q1", "sequential", "ch", 0, {"format": "Homework"}),
        ("p1", "problem", "q1", 0, {"max_score": 10.0}),
        ("p2", "problem", "q1", 1, {"max_score": 2.0, "graded": False}),
        ("p3", "problem", "q1", 2, {"max_score": 2.0}),
    ]), pol_d)
    subs, crs = d.grade(d.scores_from_rows([("p1", None, 4.0, 100), ("p2", 1.0, 2.0, 900),
                                            ("p3", 2.0, 2.0, 700)]))
    expect("D.subs", subs, [("q1", 3.0, 8.0, 2.0, 6.0, 700)])
    expect("D.course", crs, (0.1, "", False))
    # The platform's defaults stand in for a missing GRADER and GRADE_CUTOFFS.
    expect("defaults.hash", Course("E", "v1", [], {}).policy_hash, "ChVp0lHGQGCevD0t4njna/C44zQ=")

    for f in failures:
        print("refgrade selftest: FAIL " + f)
    if failures:
        return 1
    print("refgrade selftest: OK (4 courses)")
    return 0


def main(argv):
    ap = argparse.ArgumentParser(prog="refgrade.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    ck = sub.add_parser("check", help="check the stored grade rows against the rules")
    ck.add_argument("--course", action="append", default=[], metavar="ID",
                    help="a course to check (repeatable; default: every course)")
    ck.add_argument("--active-only", action="store_true",
                    help="only active enrollments are graded; rows of inactive ones are errors")
    ck.add_argument("--allow-missing", action="store_true",
                    help="do not fail on missing rows (a partial run)")
    ck.add_argument("--history", action="store_true",
                    help="rows were graded before: a stored first_attempted may be earlier")
    ck.add_argument("--fresh", action="store_true",
                    help="no earlier grading: passed_timestamp must be NULL unless passing now")
    ck.add_argument("--limit-errors", type=int, default=20, metavar="N",
                    help="print at most N mismatches (default 20)")
    sub.add_parser("selftest", help="check the rules on hand-computed courses")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "check":
            return cmd_check(args)
        return cmd_selftest(args)
    except RefError as e:
        print("refgrade: error: %s" % e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
