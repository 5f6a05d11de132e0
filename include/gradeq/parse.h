/* The one parser for what people type and programs exchange as text:
 * integers and real numbers with range checks, durations, release names
 * (DESIGN §3) and RFC 3339 timestamps. Every program and module calls
 * these instead of strtol/strtod/atoi of its own. Pure: no I/O. */
#ifndef GRADEQ_PARSE_H
#define GRADEQ_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "gradeq/err.h"
#include "gradeq/limits.h"

/* The longest release name is GRADEQ_RELEASE_NAME_MAX (limits.h);
 * GRADEQ_RELEASE_NAME_RULE says the grammar in the words of an error
 * message. */
#define GRADEQ_RELEASE_NAME_RULE                                                                   \
	"1-64 of letters, digits, '.', '-', '_', starting with a letter or digit, no "             \
	"empty or 'dead', 'retry', 'events' segment"

/* A decimal integer from min to max: optional sign, digits, nothing before
 * or after. Returns 0 and sets *out, else GRADEQ_ERR_INVALID (empty, junk,
 * overflow, out of range) and leaves *out alone. */
int gradeq_parse_long(const char *s, long min, long max, long *out) GRADEQ_MUST_CHECK;
/* The same for an int. */
int gradeq_parse_int(const char *s, int min, int max, int *out) GRADEQ_MUST_CHECK;

/* A finite real number from min to max (strtod's syntax, nothing before
 * or after), GRADEQ_ERR_INVALID otherwise. With suffix non-NULL, that
 * suffix may follow the number ("50/s"). */
int gradeq_parse_double(const char *s, const char *suffix, double min, double max,
			double *out) GRADEQ_MUST_CHECK;

/* A duration in seconds: "90" or "90s", "15m", "2h", "7d"; digits only
 * (no sign, no space), at most about 27 years (GRADEQ_DURATION_MAX_DAYS)
 * so that every unit converts without overflow and PostgreSQL's interval
 * arithmetic never sees a value out of its range. GRADEQ_ERR_INVALID
 * otherwise. */
#define GRADEQ_DURATION_MAX_DAYS 10000
#define GRADEQ_DURATION_RULE "a duration from 0 to 10000d like 90s, 15m, 2h or 7d"
int gradeq_parse_duration(const char *s, long *secs) GRADEQ_MUST_CHECK;

/* A release name by the grammar of DESIGN §3: 1-64 characters of A-Z a-z
 * 0-9 . _ -, starting with a letter or digit, no empty dot-separated
 * segment, no segment "dead", "retry" or "events" (those name a release's
 * own queues). NULL is not one. */
bool gradeq_release_name_ok(const char *name);

/* Writes t (UTC) as "2026-01-31T12:00:00Z"; len >= 21. */
void gradeq_rfc3339(char *buf, size_t len, time_t t);
/* Writes ts (UTC) with milliseconds: "2026-01-31T12:00:00.123Z"; len >= 25. */
void gradeq_rfc3339_ms(char *buf, size_t len, const struct timespec *ts);
/* Reads "2026-01-31T12:00:00Z" (a fraction and offset are ignored) into
 * seconds since the epoch; 0 when s is not one. */
time_t gradeq_parse_rfc3339(const char *s);

#endif
