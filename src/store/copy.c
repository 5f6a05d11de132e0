/* COPY FROM STDIN in text format: one buffer, flushed in chunks. */
#include "gradeq/copy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "gradeq/store.h"
#include "store/internal.h"

/* Bytes sent to the server in one PQputCopyData: large enough that a batch
 * of grade rows costs a handful of calls. */
#define COPY_CHUNK 65536

struct gradeq_copy {
	struct gradeq_store *st;
	const char *what;
	char *buf;
	size_t len, cap;
	bool in_row; /* a field was written in the current row */
	int err;     /* first failure, kept for gradeq_copy_end */
};

size_t gradeq_copy_escape(char *dst, size_t cap, const char *s)
{
	size_t o = 0;

	if (!cap)
		return 0;
	for (; *s; s++) {
		char e = *s == '\\'   ? '\\'
			 : *s == '\t' ? 't'
			 : *s == '\n' ? 'n'
			 : *s == '\r' ? 'r'
				      : 0;

		if (o + (e ? 2 : 1) >= cap)
			break;
		if (e) {
			dst[o++] = '\\';
			dst[o++] = e;
		} else {
			dst[o++] = *s;
		}
	}
	dst[o] = '\0';
	return o;
}

static int flush(struct gradeq_copy *c)
{
	if (c->len && PQputCopyData(gradeq_store_conn(c->st), c->buf, (int)c->len) != 1)
		return gradeq_store_result_error(c->st, NULL, c->what);
	c->len = 0;
	return 0;
}

/* Room for n more bytes, flushing a full chunk first. */
static int room(struct gradeq_copy *c, size_t n)
{
	if (c->err)
		return c->err;
	if (c->len + n > c->cap || c->len >= COPY_CHUNK) {
		c->err = flush(c);
		if (c->err)
			return c->err;
	}
	if (n > c->cap) {
		char *nb = realloc(c->buf, n);

		if (!nb)
			return c->err = GRADEQ_ERR_NOMEM;
		c->buf = nb;
		c->cap = n;
	}
	return 0;
}

/* Room for a field of up to n bytes, its separator written. */
static int field(struct gradeq_copy *c, size_t n)
{
	int rc = room(c, n + 1);

	if (rc)
		return rc;
	if (c->in_row)
		c->buf[c->len++] = '\t';
	c->in_row = true;
	return 0;
}

int gradeq_copy_begin(struct gradeq_store *st, const char *sql, const char *what,
		      struct gradeq_copy **out)
{
	struct gradeq_copy *c = NULL;
	PGresult *res = NULL;
	int rc = 0;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (c)
		c->buf = malloc(COPY_CHUNK + 1024);
	if (!c || !c->buf) {
		rc = GRADEQ_ERR_NOMEM;
		goto out;
	}
	c->st = st;
	c->what = what;
	c->cap = COPY_CHUNK + 1024;
	res = PQexec(gradeq_store_conn(st), sql);
	if (PQresultStatus(res) != PGRES_COPY_IN) {
		rc = gradeq_store_result_error(st, res, what);
		goto out;
	}
	*out = c;
	c = NULL;
out:
	PQclear(res);
	if (c)
		free(c->buf);
	free(c);
	return rc;
}

int gradeq_copy_raw(struct gradeq_copy *c, const char *s, size_t n)
{
	int rc = field(c, n);

	if (rc)
		return rc;
	memcpy(c->buf + c->len, s, n);
	c->len += n;
	return 0;
}

int gradeq_copy_text(struct gradeq_copy *c, const char *s)
{
	size_t n = 2 * strlen(s);
	int rc = field(c, n);

	if (rc)
		return rc;
	c->len += gradeq_copy_escape(c->buf + c->len, n + 1, s);
	return 0;
}

int gradeq_copy_null(struct gradeq_copy *c)
{
	return gradeq_copy_raw(c, "\\N", 2);
}

int gradeq_copy_bool(struct gradeq_copy *c, bool v)
{
	return gradeq_copy_raw(c, v ? "t" : "f", 1);
}

int gradeq_copy_int(struct gradeq_copy *c, long long v)
{
	char s[24];
	int n = snprintf(s, sizeof(s), "%lld", v);

	return gradeq_copy_raw(c, s, (size_t)n);
}

int gradeq_copy_double(struct gradeq_copy *c, double v)
{
	char s[40];
	int n = snprintf(s, sizeof(s), "%.17g", v);

	return gradeq_copy_raw(c, s, (size_t)n);
}

int gradeq_copy_row(struct gradeq_copy *c)
{
	int rc = room(c, 1);

	if (rc)
		return rc;
	c->buf[c->len++] = '\n';
	c->in_row = false;
	return 0;
}

int gradeq_copy_finish(struct gradeq_copy *c, int failed, char sqlstate[6])
{
	PGconn *conn;
	PGresult *res;
	int rc = failed;

	if (sqlstate)
		sqlstate[0] = '\0';
	if (!c)
		return failed;
	conn = gradeq_store_conn(c->st);
	if (!rc)
		rc = c->err;
	if (!rc)
		rc = flush(c);
	if (PQputCopyEnd(conn, rc ? "aborted" : NULL) != 1 && !rc)
		rc = gradeq_store_result_error(c->st, NULL, c->what);
	while ((res = PQgetResult(conn))) {
		if (PQresultStatus(res) != PGRES_COMMAND_OK && !rc) {
			const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

			if (sqlstate && state)
				snprintf(sqlstate, 6, "%s", state);
			rc = gradeq_store_result_error(c->st, res, c->what);
		}
		PQclear(res);
	}
	free(c->buf);
	free(c);
	return rc;
}

int gradeq_copy_end(struct gradeq_copy *c, int failed)
{
	return gradeq_copy_finish(c, failed, NULL);
}

/* COPY TO STDOUT in binary format: one CopyData message a row (the first
 * also carries the file header, the last may be the trailer alone). */
struct gradeq_copy_out {
	struct gradeq_store *st;
	const char *what;
	char *msg;   /* the message in hand (PQfreemem) */
	bool header; /* the file header was read */
	bool done;   /* the trailer or the end of the data was seen */
	bool ended;  /* PQgetCopyData said the COPY is over: no more data */
};

static const char copy_signature[11] = "PGCOPY\n\377\r\n\0";

int gradeq_copy_out_begin(struct gradeq_store *st, const char *sql, const char *what,
			  struct gradeq_copy_out **out)
{
	struct gradeq_copy_out *c = calloc(1, sizeof(*c));
	PGresult *res = NULL;
	int rc = 0;

	*out = NULL;
	if (!c)
		return GRADEQ_ERR_NOMEM;
	c->st = st;
	c->what = what;
	res = PQexec(gradeq_store_conn(st), sql);
	if (PQresultStatus(res) != PGRES_COPY_OUT || PQbinaryTuples(res) != 1) {
		rc = gradeq_store_result_error(st, res, what);
		free(c);
	} else {
		*out = c;
	}
	PQclear(res);
	return rc;
}

int gradeq_copy_parse(const char *msg, size_t n, bool *header, struct gradeq_copy_field *f, int nf)
{
	const char *p = msg, *end = msg + n;
	int16_t count;

	if (!*header) {
		uint32_t ext;

		if (n < 19 || memcmp(p, copy_signature, sizeof(copy_signature)) != 0)
			return -1;
		ext = (uint32_t)gradeq_copy_i32(p + 15);
		if (ext > n - 19)
			return -1;
		p += 19 + ext;
		*header = true;
	}
	if (end - p < 2)
		return -1;
	count = (int16_t)(((unsigned char)p[0] << 8) | (unsigned char)p[1]);
	p += 2;
	if (count == -1)
		return 0;
	if (count != nf)
		return -1;
	for (int i = 0; i < nf; i++) {
		int32_t len;

		if (end - p < 4)
			return -1;
		len = gradeq_copy_i32(p);
		p += 4;
		if (len < -1 || (len > 0 && end - p < len))
			return -1;
		f[i].p = len > 0 ? p : "";
		f[i].len = len;
		if (len > 0)
			p += len;
	}
	return 1;
}

/* The COPY ended without its trailer: the error from its result, never
 * the end of the data (the rows read are not all the rows). */
static int copy_out_failed(struct gradeq_copy_out *c)
{
	PGconn *conn = gradeq_store_conn(c->st);
	PGresult *res;
	int rc = 0;

	while ((res = PQgetResult(conn))) {
		if (PQresultStatus(res) != PGRES_COMMAND_OK && !rc)
			rc = gradeq_store_result_error(c->st, res, c->what);
		PQclear(res);
	}
	if (!rc)
		rc = gradeq_store_broken(c->st)
			     ? gradeq_store_result_error(c->st, NULL, c->what)
			     : gradeq_error(GRADEQ_ERR_DB, "%s: COPY ended without its trailer",
					    c->what);
	return rc;
}

int gradeq_copy_out_next(struct gradeq_copy_out *c, struct gradeq_copy_field *f, int nf)
{
	int n, rc;

	if (c->done)
		return 0;
	PQfreemem(c->msg);
	c->msg = NULL;
	n = PQgetCopyData(gradeq_store_conn(c->st), &c->msg, 0);
	if (n == -1) {
		/* over before the trailer: the server ended it with an error
		 * (a terminated session, a restart), which the result says */
		c->done = c->ended = true;
		return copy_out_failed(c);
	}
	if (n < 0) {
		c->done = c->ended = true;
		return gradeq_store_result_error(c->st, NULL, c->what);
	}
	rc = gradeq_copy_parse(c->msg, (size_t)n, &c->header, f, nf);
	if (rc < 0)
		return gradeq_error(GRADEQ_ERR_DB, "%s: malformed binary COPY data", c->what);
	if (rc == 0)
		c->done = true;
	return rc;
}

int gradeq_copy_out_end(struct gradeq_copy_out *c, int failed)
{
	PGconn *conn;
	PGresult *res;
	char *msg;
	int rc = failed, n;

	if (!c)
		return failed;
	conn = gradeq_store_conn(c->st);
	PQfreemem(c->msg);
	/* the rest of the data after an early stop: the connection is in
	 * COPY state until it is read (unless the COPY is over already: a
	 * second read would only say "no COPY in progress") */
	if (!c->ended) {
		while ((n = PQgetCopyData(conn, &msg, 0)) > 0)
			PQfreemem(msg);
		if (n < -1 && !rc)
			rc = gradeq_store_result_error(c->st, NULL, c->what);
	}
	while ((res = PQgetResult(conn))) {
		if (PQresultStatus(res) != PGRES_COMMAND_OK && !rc)
			rc = gradeq_store_result_error(c->st, res, c->what);
		PQclear(res);
	}
	free(c);
	return rc;
}

int32_t gradeq_copy_i32(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;

	return (int32_t)((uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 |
			 (uint32_t)u[3]);
}

int64_t gradeq_copy_i64(const char *p)
{
	return (int64_t)((uint64_t)(uint32_t)gradeq_copy_i32(p) << 32 |
			 (uint64_t)(uint32_t)gradeq_copy_i32(p + 4));
}

double gradeq_copy_f64(const char *p)
{
	uint64_t v = (uint64_t)gradeq_copy_i64(p);
	double d;

	memcpy(&d, &v, sizeof(d));
	return d;
}
