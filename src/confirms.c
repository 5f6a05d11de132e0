/* Publisher confirms settled by delivery tag, in any order (see
 * confirms.h). */
#include "gradeq/confirms.h"

#include <stdlib.h>
#include <string.h>

int gradeq_confirms_init(struct gradeq_confirms *c, int window)
{
	memset(c, 0, sizeof(*c));
	c->cap = (uint64_t)(window > 0 ? window : 1) + 1;
	c->done = calloc(c->cap, 1);
	if (!c->done)
		return GRADEQ_ERR_NOMEM;
	c->next_tag = 1;
	return 0;
}

void gradeq_confirms_free(struct gradeq_confirms *c)
{
	free(c->done);
	c->done = NULL;
}

void gradeq_confirms_reset(struct gradeq_confirms *c)
{
	if (c->done)
		memset(c->done, 0, c->cap);
	c->next_tag = 1;
	c->upto = 0;
}

uint64_t gradeq_confirms_publish(struct gradeq_confirms *c)
{
	return c->next_tag++;
}

static uint64_t settle_one(struct gradeq_confirms *c, uint64_t tag, bool ack)
{
	uint8_t *d;

	if (tag <= c->upto || tag >= c->next_tag || tag - c->upto >= c->cap)
		return 0;
	d = &c->done[tag % c->cap];
	if (*d)
		return 0;
	*d = 1;
	if (ack)
		c->acked++;
	else
		c->nacked++;
	return 1;
}

uint64_t gradeq_confirms_settle(struct gradeq_confirms *c, uint64_t tag, bool multiple, bool ack)
{
	uint64_t n = 0;

	if (!c->done)
		return 0;
	if (multiple) {
		uint64_t last = tag < c->next_tag ? tag : c->next_tag - 1;

		for (uint64_t t = c->upto + 1; t <= last; t++)
			n += settle_one(c, t, ack);
	} else {
		n = settle_one(c, tag, ack);
	}
	/* the settled prefix grows over the tags done */
	while (c->upto + 1 < c->next_tag && c->done[(c->upto + 1) % c->cap]) {
		c->done[(c->upto + 1) % c->cap] = 0;
		c->upto++;
	}
	return n;
}

uint64_t gradeq_confirms_outstanding(const struct gradeq_confirms *c)
{
	return c->next_tag - 1 - c->upto;
}
