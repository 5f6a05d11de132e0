#include "gradeq/log.h"

#include <stdarg.h>
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

void gradeq_log_write(int level, const char *fmt, ...)
{
	static const char *names[] = {"debug", "info", "warn", "error"};
	char line[4096];
	struct timespec ts;
	struct tm tm;
	size_t n;
	int r;
	va_list ap;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "ts=%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n, ".%03ldZ level=%s prog=%s ", ts.tv_nsec / 1000000,
		     names[level < 0   ? 0
			   : level > 3 ? 3
				       : level],
		     log_prog);
	if (r > 0 && (size_t)r < sizeof(line) - n)
		n += (size_t)r;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	fprintf(log_out(), "%s\n", line);
	fflush(log_out());
}

const char *gradeq_log_quote(char *buf, unsigned long size, const char *value)
{
	size_t o = 0;

	if (!size)
		return "";
	if (!value)
		value = "";
	if (*value && !strpbrk(value, " \t\"=\n\\")) {
		snprintf(buf, size, "%s", value);
		return buf;
	}
	buf[o++] = '"';
	for (const char *p = value; *p && o + 3 < size; p++) {
		if (*p == '"' || *p == '\\')
			buf[o++] = '\\';
		buf[o++] = (*p == '\n' || *p == '\t') ? ' ' : *p;
	}
	if (o + 1 < size)
		buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}
