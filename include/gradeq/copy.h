/* The one COPY writer: a store module begins a COPY ... FROM STDIN with an
 * SQL text it owns, adds fields and rows in COPY's text format, and ends it,
 * reading the server's verdict. Rows are buffered and sent in chunks. */
#ifndef GRADEQ_COPY_H
#define GRADEQ_COPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gradeq/err.h"

struct gradeq_store;
struct gradeq_copy;

/* Escapes s for COPY's text format (backslash, tab, newline, carriage
 * return) into dst of cap bytes, always NUL-terminated; returns the length
 * written. A value that does not fit is cut at a character boundary of the
 * escaped form. cap >= 2 * strlen(s) + 1 always fits. */
size_t gradeq_copy_escape(char *dst, size_t cap, const char *s);

/* Starts sql (a COPY ... FROM STDIN in text format) on st; what names the
 * work in error messages ("writing grades"). *out is NULL on error. */
int gradeq_copy_begin(struct gradeq_store *st, const char *sql, const char *what,
		      struct gradeq_copy **out) GRADEQ_MUST_CHECK;

/* Field writers: each adds one field to the current row (a tab before all
 * but the first). They return 0 or an error; after an error the COPY only
 * waits for gradeq_copy_end(), which reports it. */
int gradeq_copy_text(struct gradeq_copy *c, const char *s); /* escaped */
int gradeq_copy_null(struct gradeq_copy *c);                /* \N */
int gradeq_copy_int(struct gradeq_copy *c, long long v);
int gradeq_copy_double(struct gradeq_copy *c, double v); /* %.17g: reads back exactly */
int gradeq_copy_bool(struct gradeq_copy *c, bool v);     /* t or f */
/* A value the caller knows needs no escaping (digits, a uuid, a timestamp):
 * copied as is, n bytes. */
int gradeq_copy_raw(struct gradeq_copy *c, const char *s, size_t n);
/* Ends the current row. */
int gradeq_copy_row(struct gradeq_copy *c);

/* Ends the COPY and frees c: sends the rest, or aborts the COPY when failed
 * is non-zero or a field failed, and reads the server's verdict. Returns
 * failed, the first field error, or the COPY's error, in that order.
 * gradeq_copy_end(NULL, failed) returns failed. */
int gradeq_copy_end(struct gradeq_copy *c, int failed);
/* gradeq_copy_end() that also leaves the SQLSTATE of the server's error in
 * sqlstate (6 bytes; "" when none), so that a caller can tell a unique
 * violation (23505) from other failures. */
int gradeq_copy_finish(struct gradeq_copy *c, int failed, char sqlstate[6]);

/* The one COPY reader: COPY (...) TO STDOUT (FORMAT binary), read row by
 * row without building a result: the rows of a large read stream through
 * in constant memory. */
struct gradeq_copy_out;
struct gradeq_copy_field {
	const char *p; /* network byte order, valid until the next row */
	int32_t len;   /* -1: NULL */
};

/* Starts sql (a COPY ... TO STDOUT in binary format) on st; *out is NULL on
 * error. */
int gradeq_copy_out_begin(struct gradeq_store *st, const char *sql, const char *what,
			  struct gradeq_copy_out **out) GRADEQ_MUST_CHECK;
/* The next row into f (nf fields, the count the query returns): 1 a row,
 * 0 the end of the data, negative an error (malformed data, a row with
 * another field count, a lost connection). */
int gradeq_copy_out_next(struct gradeq_copy_out *c, struct gradeq_copy_field *f,
			 int nf) GRADEQ_MUST_CHECK;
/* Reads what is left (after an early stop), the server's verdict, and frees
 * c. Returns failed, else the COPY's error. gradeq_copy_out_end(NULL, failed)
 * returns failed. */
int gradeq_copy_out_end(struct gradeq_copy_out *c, int failed);
/* One CopyData message of a binary COPY of nf fields a row: the file
 * header first when *header is false (then set), then a row into f (1) or
 * the trailer (0); -1 when malformed. The fields point into msg. */
int gradeq_copy_parse(const char *msg, size_t n, bool *header, struct gradeq_copy_field *f, int nf);
/* Binary field values: int4, int8 (and timestamptz: microseconds since
 * 2000-01-01), float8. */
int32_t gradeq_copy_i32(const char *p);
int64_t gradeq_copy_i64(const char *p);
double gradeq_copy_f64(const char *p);

#endif
