/* The message file of gradeq-replay export/import: JSON lines. A header
 * {"format":"gradeq-dead-letters","version":1,"release":..,"queue":..,
 * "exported_at":..,"exported_by":..}, one record per message
 * {"routing_key":..,"properties":{..},"headers":[{"name":..,"type":..,
 * "value":..},..],"body":"<base64>"}, and a trailer
 * {"format":"gradeq-dead-letters","end":true,"records":N}.
 * Headers keep their AMQP types, order and repeated names; strings that are
 * not UTF-8 and byte arrays carry "base64" instead of "value"; floats that
 * are not finite carry "special" ("nan", "inf", "-inf").
 *
 * Pure codec: no I/O but the FILE* it is given, no connections. Errors are
 * gradeq_err codes with a detail that names the file (and line). */
#ifndef GRADEQ_MSGFILE_H
#define GRADEQ_MSGFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <amqp.h>

#include "gradeq/err.h"

#define GRADEQ_MSGFILE_FORMAT "gradeq-dead-letters"
#define GRADEQ_MSGFILE_VERSION 1

/* One decoded line: a record or the trailer. */
struct gradeq_msgfile_record {
	bool end;                      /* the trailer */
	long records;                  /* the trailer's count */
	amqp_bytes_t routing_key;      /* empty when the record has none */
	amqp_basic_properties_t props; /* points into the record */
	amqp_bytes_t body;             /* malloc'd */
	/* private */
	void *json;
	amqp_pool_t pool;
	bool pool_ready;
};

/* Frees what a parsed record holds; the struct may be parsed into again.
 * A zeroed record is a no-op. */
void gradeq_msgfile_record_release(struct gradeq_msgfile_record *rec);

/* Parses the header line (len bytes): 0 and the release named (may be "")
 * written into release[rlen]; GRADEQ_ERR_INVALID when it is no header,
 * GRADEQ_ERR_SCHEMA when it is of another version (*version_seen). */
int gradeq_msgfile_parse_header(const char *line, size_t len, char *release, size_t rlen,
				long *version_seen) GRADEQ_MUST_CHECK;

/* Parses a record or trailer line into rec (released first).
 * GRADEQ_ERR_DECODE when the line is no JSON, GRADEQ_ERR_INVALID when it is
 * JSON but no well-formed record; rec holds nothing then. */
int gradeq_msgfile_parse_line(const char *line, size_t len,
			      struct gradeq_msgfile_record *rec) GRADEQ_MUST_CHECK;

/* The record line (no newline) of a message, malloc'd, in *out.
 * GRADEQ_ERR_NOMEM. */
int gradeq_msgfile_record_line(const amqp_bytes_t *routing_key,
			       const amqp_basic_properties_t *props, const void *body, size_t len,
			       char **out) GRADEQ_MUST_CHECK;

/* --- files --------------------------------------------------------------- */

struct gradeq_msgfile_writer {
	FILE *fp;
	const char *name; /* for the error messages */
};

/* Each writes one line; GRADEQ_ERR_IO ("writing 'name': ...") or
 * GRADEQ_ERR_NOMEM. at: an RFC 3339 time; by: the host. */
int gradeq_msgfile_write_header(struct gradeq_msgfile_writer *w, const char *release,
				const char *queue, const char *at,
				const char *by) GRADEQ_MUST_CHECK;
int gradeq_msgfile_write_record(struct gradeq_msgfile_writer *w, const amqp_bytes_t *routing_key,
				const amqp_basic_properties_t *props, const void *body,
				size_t len) GRADEQ_MUST_CHECK;
int gradeq_msgfile_write_trailer(struct gradeq_msgfile_writer *w, long records) GRADEQ_MUST_CHECK;
/* Flushes, and syncs to disk unless fp is standard output. */
int gradeq_msgfile_sync(struct gradeq_msgfile_writer *w) GRADEQ_MUST_CHECK;

struct gradeq_msgfile_reader {
	FILE *fp;
	const char *name; /* for the error messages */
	char *line;       /* private: getline's buffer */
	size_t cap;
	long lineno;
};

/* Frees the reader's buffer (not fp). */
void gradeq_msgfile_reader_release(struct gradeq_msgfile_reader *r);

/* Reads the header line: see gradeq_msgfile_parse_header(); the error
 * says "'name' is not a gradeq-dead-letters file" or which version. */
int gradeq_msgfile_read_header(struct gradeq_msgfile_reader *r, char *release,
			       size_t rlen) GRADEQ_MUST_CHECK;

/* Reads the next line into rec: 0 with *eof at the end of the file, else
 * GRADEQ_ERR_INVALID "name:line: not JSON" or "name:line: malformed
 * record". */
int gradeq_msgfile_read(struct gradeq_msgfile_reader *r, struct gradeq_msgfile_record *rec,
			bool *eof) GRADEQ_MUST_CHECK;

/* Reads a whole file after its header: every record well-formed, nothing
 * after the trailer, the trailer's count equal to the records' (a file
 * without a trailer only with force). *records gets the count. */
int gradeq_msgfile_check(struct gradeq_msgfile_reader *r, bool force,
			 long *records) GRADEQ_MUST_CHECK;

#endif
