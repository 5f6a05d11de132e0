/* libFuzzer target for the log formatter: whatever bytes a value holds, the
 * line has no control byte, a logfmt reader gets the value back, and
 * key="%s" writes what key=%s does. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gradeq/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The value of the pair starting at s ("k=..."), unescaped into out;
 * returns the byte after it, or NULL when it does not parse. */
static const char *read_value(const char *s, char *out)
{
	size_t o = 0;

	s = strchr(s, '=');
	if (!s++)
		return NULL;
	if (*s != '"') {
		while (*s && *s != ' ') {
			if (*s == '"' || *s == '=')
				return NULL;
			out[o++] = *s++;
		}
		out[o] = '\0';
		return o ? s : NULL; /* an empty value is always quoted */
	}
	for (s++; *s != '"'; s++) {
		if (!*s)
			return NULL;
		if (*s != '\\') {
			out[o++] = *s;
			continue;
		}
		s++;
		if (*s == 'u') {
			char hex[5] = {0};

			memcpy(hex, s + 1, 4);
			if (strlen(hex) != 4)
				return NULL;
			out[o++] = (char)strtoul(hex, NULL, 16);
			s += 4;
		} else if (*s == 'n' || *s == 'r' || *s == 't') {
			out[o++] = *s == 'n' ? '\n' : *s == 'r' ? '\r' : '\t';
		} else if (*s == '"' || *s == '\\') {
			out[o++] = *s;
		} else {
			return NULL;
		}
	}
	out[o] = '\0';
	return s + 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *v = malloc(size + 1), *line, *got;
	const char *p;

	if (!v)
		return 0;
	memcpy(v, data, size);
	v[size] = '\0'; /* a C string ends at its first NUL, as the value does */
	line = gradeq_logfmt_format("k=%s q=\"%s\" raw=%d%s", v, v, 1, v);
	got = line ? malloc(strlen(line) + 1) : NULL;
	if (!line || !got)
		goto out;
	for (p = line; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			abort();
	p = read_value(line, got);
	if (!p || strcmp(got, v) != 0 || *p != ' ')
		abort();
	p = read_value(p, got);
	if (!p || strcmp(got, v) != 0)
		abort();
out:
	free(got);
	free(line);
	free(v);
	return 0;
}
