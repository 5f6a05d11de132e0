/* libFuzzer target for the binary COPY reader's message parser: any bytes,
 * as the first message (with the file header) or a later one, must be
 * refused or parsed into fields that lie inside the message. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "gradeq/copy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const char *msg, size_t n, bool header, int nf)
{
	struct gradeq_copy_field f[8];
	int rc = gradeq_copy_parse(msg, n, &header, f, nf);

	if (rc != 1)
		return;
	for (int i = 0; i < nf; i++) {
		if (f[i].len < -1)
			__builtin_trap();
		if (f[i].len > 0 && (f[i].p < msg || f[i].p + f[i].len > msg + n))
			__builtin_trap();
		/* touch every byte: ASan sees a read outside the message */
		for (int32_t k = 0; k < f[i].len; k++)
			(void)*(volatile const char *)&f[i].p[k];
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int nf = size ? data[0] % 9 : 0;

	if (size)
		data++, size--;
	check((const char *)data, size, false, nf);
	check((const char *)data, size, true, nf);
	return 0;
}
