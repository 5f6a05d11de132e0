/* A grade report's CSV, pure: the columns of a course, the header, a
 * learner's row, CSV escaping. No I/O, so that it is tested alone
 * (tests/unit/test_reportfmt.c). */
#ifndef GRADEQ_REPORTFMT_H
#define GRADEQ_REPORTFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gradeq/err.h"

struct gradeq_course;
struct gradeq_output_grade;

/* A growable byte buffer. */
struct gradeq_buf {
	char *data;
	size_t len, cap;
	bool failed; /* an allocation failed: the content is incomplete */
};

void gradeq_buf_release(struct gradeq_buf *b);
void gradeq_buf_put(struct gradeq_buf *b, const char *s, size_t n);

/* Appends s as one CSV field (RFC 4180): quoted, with quotes doubled,
 * when it holds a comma, a quote, CR or LF, or starts or ends with a
 * space; as it is otherwise. */
void gradeq_csv_field(struct gradeq_buf *b, const char *s);

/* The report's columns for a course: user_id, percent, letter, passed;
 * one per GRADER entry (its type, in GRADER order); one per graded
 * subsection (its usage_key, in course order). */
struct gradeq_report_layout {
	size_t nformats;
	const char **formats; /* GRADER types; owned by the course */
	size_t nsubs;
	const char **sub_keys; /* owned by the course */
	int *sub_format;       /* index into formats, -1 when none */
};

int gradeq_report_layout_init(struct gradeq_report_layout *l,
			      const struct gradeq_course *c) GRADEQ_MUST_CHECK;
void gradeq_report_layout_release(struct gradeq_report_layout *l);

/* Appends the header line (CRLF-free: lines end with \n). */
void gradeq_report_header(struct gradeq_buf *b, const struct gradeq_report_layout *l);

/* Appends a learner's line: user id; percent with 2 decimals; letter;
 * passed (true/false); per format, the earned share of its graded
 * subsections (sum of earned_graded over sum of possible_graded, 4
 * decimals rounded half to even, 0.0000 when nothing is possible); per
 * subsection, its percent (DESIGN.md section 2 rule 5) or empty when no
 * row is stored. g's arrays follow l->sub_keys. */
void gradeq_report_row(struct gradeq_buf *b, const struct gradeq_report_layout *l,
		       const struct gradeq_output_grade *g);

#endif
