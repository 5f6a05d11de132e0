#include "gradeq/log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int gradeq_log_level = GRADEQ_LOG_INFO;
static const char *log_prog = "gradeq";
static FILE *log_fp;

static FILE *log_out(void)
{
	return log_fp ? log_fp : stderr;
}

int gradeq_log_init(const char *prog, int level, const char *path)
{
	FILE *fp;

	if (prog)
		log_prog = prog;
	if (level >= GRADEQ_LOG_DEBUG && level <= GRADEQ_LOG_ERROR)
		gradeq_log_level = level;
	if (log_fp) {
		fclose(log_fp);
		log_fp = NULL;
	}
	if (!path || !*path)
		return 0;
	/* opened anew each time, so a rotated file is let go of */
	fp = fopen(path, "a");
	if (!fp)
		return gradeq_error(GRADEQ_ERR_IO, "cannot open log file '%s'", path);
	setvbuf(fp, NULL, _IOLBF, 0);
	log_fp = fp;
	return 0;
}

int gradeq_log_level_parse(const char *s)
{
	static const char *names[] = {"debug", "info", "warn", "error"};

	for (int i = 0; s && i < 4; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

/* A growing line. On allocation failure it stops growing and says so. */
struct line {
	char *p;
	size_t len, cap;
	bool oom;
};

static void line_put(struct line *l, const char *s, size_t n)
{
	if (l->oom)
		return;
	if (l->len + n + 1 > l->cap) {
		size_t cap = l->cap ? l->cap : 256;
		char *p;

		while (l->len + n + 1 > cap)
			cap *= 2;
		p = realloc(l->p, cap);
		if (!p) {
			l->oom = true;
			return;
		}
		l->p = p;
		l->cap = cap;
	}
	memcpy(l->p + l->len, s, n);
	l->len += n;
	l->p[l->len] = '\0';
}

static void line_putc(struct line *l, char c)
{
	line_put(l, &c, 1);
}

/* printf of one conversion; spec is never the caller's text as a whole */
static void line_printf(struct line *l, const char *fmt, ...)
{
	char small[128];
	va_list ap, ap2;
	int n;

	va_start(ap, fmt);
	va_copy(ap2, ap);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	if (n >= 0 && (size_t)n < sizeof(small)) {
		line_put(l, small, (size_t)n);
	} else if (n > 0) {
		char *big = malloc((size_t)n + 1);

		if (big) {
			vsnprintf(big, (size_t)n + 1, fmt, ap2);
			line_put(l, big, (size_t)n);
			free(big);
		} else {
			l->oom = true;
		}
	}
	va_end(ap2);
	va_end(ap);
}

static bool is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/* The escape of a control byte, quote or backslash inside a quoted value. */
static void put_escaped(struct line *l, unsigned char c)
{
	switch (c) {
	case '"': line_put(l, "\\\"", 2); break;
	case '\\': line_put(l, "\\\\", 2); break;
	case '\n': line_put(l, "\\n", 2); break;
	case '\r': line_put(l, "\\r", 2); break;
	case '\t': line_put(l, "\\t", 2); break;
	default: line_printf(l, "\\u%04x", c); break;
	}
}

/* A logfmt value: bare when it is a plain word, else in double quotes with
 * \" \\ \n \r \t and \u00XX escapes. Bytes >= 0x80 pass (UTF-8). */
static void put_value(struct line *l, const char *s, size_t n)
{
	bool quote = n == 0;
	size_t i, run = 0;

	for (i = 0; i < n && !quote; i++) {
		unsigned char c = (unsigned char)s[i];

		quote = c == ' ' || c == '"' || c == '=' || c == '\\' || is_ctl(c);
	}
	if (!quote) {
		line_put(l, s, n);
		return;
	}
	line_putc(l, '"');
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\' || is_ctl(c)) {
			line_put(l, s + run, i - run);
			put_escaped(l, c);
			run = i + 1;
		}
	}
	line_put(l, s + run, n - run);
	line_putc(l, '"');
}

/* One printf conversion, parsed. */
struct conv {
	char spec[32]; /* "%...X", as written */
	int nstar;     /* '*' width and precision taken from the arguments */
	bool has_prec; /* a precision given ('.' then digits or '*') */
	int prec;      /* digits of the precision (when not '*') */
	char len[3];   /* length modifier: "", "hh", "h", "l", "ll", "L", "z", "j", "t" */
	char conv;     /* the conversion character, '\0' when unknown */
};

/* Parses the conversion at p ('%'); returns the byte after it. */
static const char *conv_parse(const char *p, struct conv *c)
{
	const char *start = p++;
	size_t n;

	memset(c, 0, sizeof(*c));
	p += strspn(p, "-+ #0'");
	if (*p == '*') {
		c->nstar++;
		p++;
	} else {
		p += strspn(p, "0123456789");
	}
	if (*p == '.') {
		c->has_prec = true;
		p++;
		if (*p == '*') {
			c->nstar++;
			p++;
		} else {
			c->prec = atoi(p);
			p += strspn(p, "0123456789");
		}
	}
	n = strspn(p, "hlLqzjt");
	if (n > 2)
		n = 2;
	memcpy(c->len, p, n);
	p += n;
	if (*p && strchr("diouxXeEfFgGaAcspn%", *p))
		c->conv = *p++;
	n = (size_t)(p - start);
	if (n >= sizeof(c->spec))
		n = sizeof(c->spec) - 1;
	memcpy(c->spec, start, n);
	return p;
}

#define CONV_ARG(T)                                                                                \
	do {                                                                                       \
		T v_ = va_arg(*ap, T);                                                             \
		if (c->nstar == 0)                                                                 \
			line_printf(l, c->spec, v_);                                               \
		else if (c->nstar == 1)                                                            \
			line_printf(l, c->spec, star[0], v_);                                      \
		else                                                                               \
			line_printf(l, c->spec, star[0], star[1], v_);                             \
	} while (0)

/* Formats one conversion as printf would, or, for a string in value position,
 * as a logfmt value. */
static void conv_emit(struct line *l, const struct conv *c, bool value, va_list *ap)
{
	int star[2] = {0, 0};
	bool lng = c->len[0] == 'l', llng = strcmp(c->len, "ll") == 0 || c->len[0] == 'q';

	for (int i = 0; i < c->nstar; i++)
		star[i] = va_arg(*ap, int);
	switch (c->conv) {
	case '%': line_putc(l, '%'); break;
	case 's':
		if (value) {
			const char *s = va_arg(*ap, const char *);
			int prec = c->nstar ? star[c->nstar - 1] : c->prec;

			if (!s)
				s = "(null)";
			put_value(l, s,
				  c->has_prec && prec >= 0 ? strnlen(s, (size_t)prec) : strlen(s));
		} else {
			CONV_ARG(const char *);
		}
		break;
	case 'd':
	case 'i':
		if (llng)
			CONV_ARG(long long);
		else if (lng)
			CONV_ARG(long);
		else if (c->len[0] == 'z' || c->len[0] == 't')
			CONV_ARG(ptrdiff_t);
		else if (c->len[0] == 'j')
			CONV_ARG(intmax_t);
		else
			CONV_ARG(int);
		break;
	case 'o':
	case 'u':
	case 'x':
	case 'X':
		if (llng)
			CONV_ARG(unsigned long long);
		else if (lng)
			CONV_ARG(unsigned long);
		else if (c->len[0] == 'z' || c->len[0] == 't')
			CONV_ARG(size_t);
		else if (c->len[0] == 'j')
			CONV_ARG(uintmax_t);
		else
			CONV_ARG(unsigned int);
		break;
	case 'e':
	case 'E':
	case 'f':
	case 'F':
	case 'g':
	case 'G':
	case 'a':
	case 'A':
		if (c->len[0] == 'L')
			CONV_ARG(long double);
		else
			CONV_ARG(double);
		break;
	case 'c': CONV_ARG(int); break;
	case 'p': CONV_ARG(void *); break;
	case 'n':
		(void)va_arg(*ap, void *); /* never written through */
		break;
	default:
		line_put(l, c->spec,
			 strlen(c->spec)); /* the compiler's format check refuses these */
		break;
	}
}

/*
 * The body of a line. A '%s' right after '=' is a value: quoted and escaped.
 * A '="' in the format opens a value that runs to the format's next '"':
 * its text and conversions are gathered as they are, then written as one
 * quoted and escaped value (so key="%s" and key=%s write the same).
 */
static void format_body(struct line *l, const char *fmt, va_list *ap)
{
	struct line val = {0};
	bool quoted = false;
	const char *p = fmt;

	while (*p) {
		struct conv c;

		if (*p != '%') {
			if (quoted && *p == '"') {
				put_value(l, val.p ? val.p : "", val.len);
				val.len = 0;
				l->oom |= val.oom;
				quoted = false;
			} else if (!quoted && p[0] == '=' && p[1] == '"') {
				line_putc(l, '=');
				quoted = true;
				p++;
			} else {
				line_putc(quoted ? &val : l, *p);
			}
			p++;
			continue;
		}
		bool value = !quoted && p > fmt && p[-1] == '=';

		p = conv_parse(p, &c);
		conv_emit(quoted ? &val : l, &c, value, ap);
	}
	if (quoted) /* a '="' never closed: still one value */
		put_value(l, val.p ? val.p : "", val.len);
	l->oom |= val.oom;
	free(val.p);
}

/* The last defence: no control byte leaves a line as it is, whatever wrote
 * it (a '%s' not in value position, a literal). */
static void escape_controls(struct line *l)
{
	struct line out = {0};
	size_t run = 0, i;

	for (i = 0; i < l->len && !is_ctl((unsigned char)l->p[i]); i++)
		;
	if (i == l->len)
		return;
	for (; i < l->len; i++) {
		unsigned char c = (unsigned char)l->p[i];

		if (is_ctl(c)) {
			line_put(&out, l->p + run, i - run);
			put_escaped(&out, c);
			run = i + 1;
		}
	}
	line_put(&out, l->p + run, l->len - run);
	free(l->p);
	*l = out;
}

static char *format_line(const char *head, const char *fmt, va_list ap)
{
	struct line l = {0};
	va_list cp;

	if (head)
		line_put(&l, head, strlen(head));
	va_copy(cp, ap);
	format_body(&l, fmt, &cp);
	va_end(cp);
	escape_controls(&l);
	if (l.oom || !l.p) {
		free(l.p);
		return l.oom ? NULL : strdup("");
	}
	return l.p;
}

char *gradeq_logfmt_vformat(const char *fmt, va_list ap)
{
	return format_line(NULL, fmt, ap);
}

char *gradeq_logfmt_format(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = format_line(NULL, fmt, ap);
	va_end(ap);
	return s;
}

/* One write of the whole line and its newline, so lines never interleave. */
static int put_line(FILE *fp, const char *s)
{
	size_t n = strlen(s);
	int rc = 0;

	if (fwrite(s, 1, n, fp) != n || fputc('\n', fp) == EOF)
		rc = GRADEQ_ERR_IO;
	if (fflush(fp))
		rc = GRADEQ_ERR_IO;
	return rc;
}

int gradeq_logfmt_print(FILE *fp, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int rc;

	va_start(ap, fmt);
	s = format_line(NULL, fmt, ap);
	va_end(ap);
	if (!s)
		return GRADEQ_ERR_NOMEM;
	rc = put_line(fp, s);
	free(s);
	return rc;
}

void gradeq_log_write(int level, const char *fmt, ...)
{
	static const char *names[] = {"debug", "info", "warn", "error"};
	char head[160], stamp[32];
	struct timespec ts;
	struct tm tm;
	struct line h = {0};
	va_list ap;
	char *s;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(head, sizeof(head), "ts=%s.%03ldZ level=%s prog=", stamp, ts.tv_nsec / 1000000,
		 names[level < 0   ? 0
		       : level > 3 ? 3
				   : level]);
	line_put(&h, head, strlen(head));
	put_value(&h, log_prog, strlen(log_prog));
	line_putc(&h, ' ');
	va_start(ap, fmt);
	s = h.oom ? NULL : format_line(h.p, fmt, ap);
	va_end(ap);
	free(h.p);
	if (!s) {
		fprintf(log_out(), "%s event=log_line_lost error=\"out of memory\"\n", head);
		fflush(log_out());
		return;
	}
	put_line(log_out(), s);
	free(s);
}

const char *gradeq_log_quote(char *buf, unsigned long size, const char *value)
{
	struct line l = {0};
	size_t n;

	if (!size)
		return "";
	if (!value)
		value = "";
	put_value(&l, value, strlen(value));
	if (l.oom || !l.p) {
		buf[0] = '\0';
		free(l.p);
		return buf;
	}
	n = l.len;
	if (n >= size) {
		/* cut at an escape's start, never inside one, and close the quote */
		bool q = l.p[0] == '"';
		size_t keep = size - 1 - (q ? 1 : 0);

		n = 0;
		for (size_t i = 0; i < keep;) {
			size_t step = l.p[i] == '\\' ? (l.p[i + 1] == 'u' ? 6 : 2) : 1;

			if (i + step > keep)
				break;
			i += step;
			n = i;
		}
		/* nor inside a UTF-8 sequence */
		while (n > 1 && ((unsigned char)l.p[n] & 0xc0) == 0x80)
			n--;
		memcpy(buf, l.p, n);
		if (q)
			buf[n++] = '"';
	} else {
		memcpy(buf, l.p, n);
	}
	buf[n] = '\0';
	free(l.p);
	return buf;
}
