#include "gradeq/parse.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* strtol and strtod skip leading space themselves; a value with any is a
 * typo, not a number. */
static bool starts_clean(const char *s)
{
	return s && *s && *s != ' ' && *s != '\t' && *s != '\n' && *s != '\r' && *s != '\f' &&
	       *s != '\v';
}

int gradeq_parse_long(const char *s, long min, long max, long *out)
{
	char *end = NULL;
	long v;

	if (!starts_clean(s))
		return GRADEQ_ERR_INVALID;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return GRADEQ_ERR_INVALID;
	*out = v;
	return 0;
}

int gradeq_parse_int(const char *s, int min, int max, int *out)
{
	long v;
	int rc = gradeq_parse_long(s, min, max, &v);

	if (!rc)
		*out = (int)v;
	return rc;
}

int gradeq_parse_double(const char *s, const char *suffix, double min, double max, double *out)
{
	char *end = NULL;
	double v;

	if (!starts_clean(s))
		return GRADEQ_ERR_INVALID;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || !isfinite(v))
		return GRADEQ_ERR_INVALID;
	if (*end && !(suffix && strcmp(end, suffix) == 0))
		return GRADEQ_ERR_INVALID;
	if (!(v >= min && v <= max))
		return GRADEQ_ERR_INVALID;
	*out = v;
	return 0;
}

int gradeq_parse_duration(const char *s, long *secs)
{
	static const struct {
		char unit;
		long mul;
	} units[] = {{'\0', 1}, {'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
	const long max_secs = GRADEQ_DURATION_MAX_DAYS * 86400L;
	long v = 0;
	size_t i = 0;

	if (!s || !*s)
		return GRADEQ_ERR_INVALID;
	for (; s[i] >= '0' && s[i] <= '9'; i++) {
		if (v > max_secs)
			return GRADEQ_ERR_INVALID;
		v = v * 10 + (s[i] - '0');
	}
	if (i == 0 || (s[i] && s[i + 1]))
		return GRADEQ_ERR_INVALID;
	for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++)
		if (s[i] == units[u].unit) {
			if (v > max_secs / units[u].mul)
				return GRADEQ_ERR_INVALID;
			*secs = v * units[u].mul;
			return 0;
		}
	return GRADEQ_ERR_INVALID;
}

static bool reserved_segment(const char *seg, size_t n)
{
	static const char *const reserved[] = {"dead", "retry", "events"};

	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		if (strlen(reserved[i]) == n && memcmp(seg, reserved[i], n) == 0)
			return true;
	return false;
}

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '-' || c == '_';
}

bool gradeq_release_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0, seg = 0;

	if (n == 0 || n > GRADEQ_RELEASE_NAME_MAX || name[0] == '.' || name[0] == '-' ||
	    name[0] == '_')
		return false;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && !name_char(name[i]))
			return false;
		if (i < n && name[i] != '.')
			continue;
		if (i == seg || reserved_segment(name + seg, i - seg))
			return false;
		seg = i + 1;
	}
	return true;
}

void gradeq_rfc3339(char *buf, size_t len, time_t t)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	if (strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0 && len)
		buf[0] = '\0';
}

void gradeq_rfc3339_ms(char *buf, size_t len, const struct timespec *ts)
{
	struct tm tm;
	size_t n;

	gmtime_r(&ts->tv_sec, &tm);
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	if (n == 0) {
		if (len)
			buf[0] = '\0';
		return;
	}
	snprintf(buf + n, len - n, ".%03ldZ", ts->tv_nsec / 1000000);
}

time_t gradeq_parse_rfc3339(const char *s)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
			 &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return timegm(&tm);
}
