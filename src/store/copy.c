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

int gradeq_copy_end(struct gradeq_copy *c, int failed)
{
	PGconn *conn;
	PGresult *res;
	int rc = failed;

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
		if (PQresultStatus(res) != PGRES_COMMAND_OK && !rc)
			rc = gradeq_store_result_error(c->st, res, c->what);
		PQclear(res);
	}
	free(c->buf);
	free(c);
	return rc;
}
