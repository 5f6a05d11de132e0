/* One line an event, key=value, to stderr (for journald) or a file. */
#ifndef GRADEQ_LOG_H
#define GRADEQ_LOG_H

#include <stdarg.h>
#include <stdio.h>

#include "gradeq/err.h"

enum gradeq_log_level {
	GRADEQ_LOG_DEBUG = 0,
	GRADEQ_LOG_INFO = 1,
	GRADEQ_LOG_WARN = 2,
	GRADEQ_LOG_ERROR = 3,
};

extern int gradeq_log_level;

/* Sets the program name, the threshold and the destination (NULL or "" for
 * stderr), reopening the file (after rotation, on SIGHUP). Returns 0, or GRADEQ_ERR_IO when the file cannot be opened (the
 * log then stays on stderr). */
int gradeq_log_init(const char *prog, int level, const char *path);

/* Parses "debug", "info", "warn", "error"; returns the level or -1. */
int gradeq_log_level_parse(const char *s);

/*
 * Writes 'ts=... level=... prog=... ' then the formatted key=value body, as
 * one line. The body is formatted as logfmt, whatever the arguments hold:
 * a '%s' right after '=' (key=%s) is a value, written bare when it is a
 * plain word and otherwise in double quotes with \" \\ \n \r \t and \u00XX
 * escapes; key="...%s..." in the format is one value too (the format's
 * quotes are dropped and the whole value quoted and escaped, so key="%s"
 * writes what key=%s does). Other conversions format as printf would. Any
 * control byte still left (from a '%s' elsewhere or a literal) is escaped,
 * so one call is always exactly one line. Never pass gradeq_log_quote()'s
 * result as a value: it would be quoted twice.
 */
void gradeq_log_write(int level, const char *fmt, ...) GRADEQ_PRINTF(2, 3);

/* The body of a log line, formatted as gradeq_log_write() does (no ts=,
 * level=, prog=, no newline), in a new string the caller frees; NULL when
 * out of memory. */
char *gradeq_logfmt_vformat(const char *fmt, va_list ap) GRADEQ_PRINTF(1, 0);
char *gradeq_logfmt_format(const char *fmt, ...) GRADEQ_PRINTF(1, 2);

/* Writes such a body and a newline to fp (for key=value listings on stdout,
 * such as gradeq-replay list). Returns 0, GRADEQ_ERR_NOMEM or GRADEQ_ERR_IO. */
int gradeq_logfmt_print(FILE *fp, const char *fmt, ...) GRADEQ_PRINTF(2, 3);

/* Writes value as a logfmt value (bare, or quoted and escaped as above) into
 * buf, always NUL-terminated; a value that does not fit is cut before an
 * escape or a UTF-8 sequence and its quote closed. Returns buf. For text
 * that is not written through the functions above. */
const char *gradeq_log_quote(char *buf, unsigned long size, const char *value);

/* The macros skip formatting entirely when the level is off. */
#define GQ_LOG(lvl, ...)                                                                           \
	do {                                                                                       \
		if ((lvl) >= gradeq_log_level)                                                     \
			gradeq_log_write((lvl), __VA_ARGS__);                                      \
	} while (0)
#define log_debug(...) GQ_LOG(GRADEQ_LOG_DEBUG, __VA_ARGS__)
#define log_info(...) GQ_LOG(GRADEQ_LOG_INFO, __VA_ARGS__)
#define log_warn(...) GQ_LOG(GRADEQ_LOG_WARN, __VA_ARGS__)
#define log_error(...) GQ_LOG(GRADEQ_LOG_ERROR, __VA_ARGS__)

#endif
