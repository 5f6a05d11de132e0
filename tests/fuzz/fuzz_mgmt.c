/* libFuzzer target for the management API response parser: whatever a
 * confused or hostile server answers is refused with GRADEQ_ERR_DECODE or
 * parsed, without crashing or leaking, and a parsed answer holds no more
 * queues than the list had entries, each with a count that is not
 * negative. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gradeq/mgmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gradeq_mgmt *m = (struct gradeq_mgmt *)1;
	json_t *root, *q;
	size_t i;
	int ret;

	ret = gradeq_mgmt_parse((const char *)data, size, &m);
	if (ret < 0) {
		if (m || (ret != GRADEQ_ERR_DECODE && ret != GRADEQ_ERR_NOMEM))
			abort();
		return 0;
	}
	if (!m)
		abort();
	/* the parser takes the last of duplicate keys (RabbitMQ repeats
	 * 'members' just after add_member), and so does this reading */
	root = json_loadb((const char *)data, size, 0, NULL);
	if (!json_is_array(root) || gradeq_mgmt_count(m) > json_array_size(root))
		abort();
	/* every listed queue reads back with a count; absent ones as -1 */
	json_array_foreach(root, i, q)
	{
		const char *name = json_string_value(json_object_get(q, "name"));

		if (name && gradeq_mgmt_unacked(m, name) < -1)
			abort();
	}
	if (gradeq_mgmt_unacked(NULL, "x") != -1 || gradeq_mgmt_count(NULL) != 0)
		abort();
	json_decref(root);
	gradeq_mgmt_free(m);
	return 0;
}
