/* A grade report's CSV: columns, header, rows, escaping. Pure. */
#include "gradeq/reportfmt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradeq/grading.h"
#include "gradeq/outputs.h"

void gradeq_buf_release(struct gradeq_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

void gradeq_buf_put(struct gradeq_buf *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->data, cap);
		if (!p) {
			b->failed = true;
			return;
		}
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static void put_str(struct gradeq_buf *b, const char *s)
{
	gradeq_buf_put(b, s, strlen(s));
}

void gradeq_csv_field(struct gradeq_buf *b, const char *s)
{
	size_t n = strlen(s);
	bool quote = strpbrk(s, ",\"\r\n") != NULL || (n && (s[0] == ' ' || s[n - 1] == ' '));

	if (!quote) {
		gradeq_buf_put(b, s, n);
		return;
	}
	gradeq_buf_put(b, "\"", 1);
	for (const char *p = s; *p; p++) {
		const char *q = strchr(p, '"');

		if (!q) {
			put_str(b, p);
			break;
		}
		gradeq_buf_put(b, p, (size_t)(q - p + 1));
		gradeq_buf_put(b, "\"", 1);
		p = q;
	}
	gradeq_buf_put(b, "\"", 1);
}

int gradeq_report_layout_init(struct gradeq_report_layout *l, const struct gradeq_course *c)
{
	const struct gradeq_policy *p = gradeq_course_policy(c);
	size_t ns = gradeq_course_nsubsections(c);

	memset(l, 0, sizeof(*l));
	l->formats = calloc(p->ngraders ? p->ngraders : 1, sizeof(*l->formats));
	l->sub_keys = calloc(ns ? ns : 1, sizeof(*l->sub_keys));
	l->sub_format = calloc(ns ? ns : 1, sizeof(*l->sub_format));
	if (!l->formats || !l->sub_keys || !l->sub_format) {
		gradeq_report_layout_release(l);
		return GRADEQ_ERR_NOMEM;
	}
	for (size_t e = 0; e < p->ngraders; e++)
		l->formats[l->nformats++] = p->graders[e].type;
	for (size_t i = 0; i < ns; i++) {
		const char *format;

		if (!gradeq_course_subsection_graded(c, i, &format))
			continue;
		l->sub_format[l->nsubs] = -1;
		/* the first GRADER entry of its type: a type listed twice is one
		 * column */
		for (size_t e = 0; format && e < l->nformats; e++)
			if (strcmp(l->formats[e], format) == 0) {
				l->sub_format[l->nsubs] = (int)e;
				break;
			}
		l->sub_keys[l->nsubs++] = gradeq_course_subsection_key(c, i);
	}
	return 0;
}

void gradeq_report_layout_release(struct gradeq_report_layout *l)
{
	free(l->formats);
	free(l->sub_keys);
	free(l->sub_format);
	memset(l, 0, sizeof(*l));
}

void gradeq_report_header(struct gradeq_buf *b, const struct gradeq_report_layout *l)
{
	put_str(b, "user_id,percent,letter,passed");
	for (size_t e = 0; e < l->nformats; e++) {
		gradeq_buf_put(b, ",", 1);
		gradeq_csv_field(b, l->formats[e]);
	}
	for (size_t i = 0; i < l->nsubs; i++) {
		gradeq_buf_put(b, ",", 1);
		gradeq_csv_field(b, l->sub_keys[i]);
	}
	gradeq_buf_put(b, "\n", 1);
}

static void put_fraction(struct gradeq_buf *b, double earned, double possible)
{
	char num[64];
	double v = possible > 0 ? rint(earned / possible * 1e4) / 1e4 : 0.0;

	snprintf(num, sizeof(num), ",%.4f", v);
	put_str(b, num);
}

void gradeq_report_row(struct gradeq_buf *b, const struct gradeq_report_layout *l,
		       const struct gradeq_output_grade *g)
{
	char num[64];

	snprintf(num, sizeof(num), "%d,%.2f,", (int)g->user_id, g->percent);
	put_str(b, num);
	gradeq_csv_field(b, g->letter ? g->letter : "");
	put_str(b, g->passed ? ",true" : ",false");
	for (size_t e = 0; e < l->nformats; e++) {
		double earned = 0.0, possible = 0.0;

		/* in course order, so that the float sums are reproducible */
		for (size_t i = 0; i < l->nsubs; i++)
			if (l->sub_format[i] == (int)e && g->has[i] && g->possible[i] > 0) {
				earned += g->earned[i];
				possible += g->possible[i];
			}
		put_fraction(b, earned, possible);
	}
	for (size_t i = 0; i < l->nsubs; i++) {
		if (g->has[i])
			put_fraction(b, g->earned[i], g->possible[i]);
		else
			gradeq_buf_put(b, ",", 1);
	}
	gradeq_buf_put(b, "\n", 1);
}
