/* libFuzzer target for the message file of gradeq-replay import: hostile
 * files must be refused without crashing or leaking; a line that parses as
 * a record must survive a write and a parse unchanged (the second write
 * equals the first), and a whole file is checked through the reader. */
#define _GNU_SOURCE /* fmemopen */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradeq/msgfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Each line as a record: what parses writes back to a line that parses to
 * the same line again. */
static void lines(const uint8_t *data, size_t size)
{
	struct gradeq_msgfile_record rec, again;
	const char *p = (const char *)data, *end = p + size;

	memset(&rec, 0, sizeof(rec));
	memset(&again, 0, sizeof(again));
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		char *one = NULL, *two = NULL;

		if (gradeq_msgfile_parse_line(p, len, &rec) == 0 && !rec.end) {
			if (gradeq_msgfile_record_line(&rec.routing_key, &rec.props, rec.body.bytes,
						       rec.body.len, &one))
				abort();
			if (gradeq_msgfile_parse_line(one, strlen(one), &again) || again.end)
				abort();
			if (gradeq_msgfile_record_line(&again.routing_key, &again.props,
						       again.body.bytes, again.body.len, &two))
				abort();
			if (strcmp(one, two) != 0 || again.body.len != rec.body.len ||
			    (rec.body.len &&
			     memcmp(again.body.bytes, rec.body.bytes, rec.body.len)))
				abort();
		}
		free(one);
		free(two);
		p += len + 1;
	}
	gradeq_msgfile_record_release(&rec);
	gradeq_msgfile_record_release(&again);
}

/* The whole input as a file, as import reads it. */
static void file(const uint8_t *data, size_t size)
{
	struct gradeq_msgfile_reader r = {.name = "fuzz"};
	char release[80];
	long records = -1;

	if (size == 0)
		return;
	r.fp = fmemopen((void *)data, size, "r");
	if (!r.fp)
		return;
	if (gradeq_msgfile_read_header(&r, release, sizeof(release)) == 0 &&
	    gradeq_msgfile_check(&r, true, &records) == 0 && records < 0)
		abort();
	gradeq_msgfile_reader_release(&r);
	fclose(r.fp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	lines(data, size);
	file(data, size);
	return 0;
}
