/* One line an event, key=value, to stderr (for journald) or a file. */
#ifndef GRADEQ_LOG_H
#define GRADEQ_LOG_H

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

/* Writes 'ts=... level=... prog=... ' then the formatted key=value body. */
void gradeq_log_write(int level, const char *fmt, ...) GRADEQ_PRINTF(2, 3);

/* Quotes a value for key=value output when it has spaces, quotes or '='
 * (into buf, always NUL-terminated); returns buf. */
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
