/* Publisher confirms of one channel, settled by delivery tag. The broker
 * may confirm a channel's messages out of publish order (a transient event
 * before the persistent jobs published ahead of it on a quorum queue), one
 * at a time or many at once (multiple: every unsettled tag up to this one):
 * each tag is counted once, as acked or nacked, whatever the order.
 * Pure (no I/O): src/broker.c feeds it the basic.ack and basic.nack frames.
 *
 * At most `window` tags are outstanding at a time (the publisher waits
 * while the window is full); tags above the settled prefix are kept in a
 * ring of window + 1 flags. */
#ifndef GRADEQ_CONFIRMS_H
#define GRADEQ_CONFIRMS_H

#include <stdbool.h>
#include <stdint.h>

#include "gradeq/err.h"

struct gradeq_confirms {
	uint64_t next_tag; /* the tag of the next publish (tags start at 1) */
	uint64_t upto;     /* every tag <= upto is settled */
	uint64_t acked;    /* tags settled by basic.ack, in all */
	uint64_t nacked;   /* tags settled by basic.nack, in all */
	uint8_t *done;     /* ring: done[tag % cap] for upto < tag < next_tag */
	uint64_t cap;
};

/* A window of at most window outstanding tags (< 1 counts as 1). */
int gradeq_confirms_init(struct gradeq_confirms *c, int window) GRADEQ_MUST_CHECK;
void gradeq_confirms_free(struct gradeq_confirms *c);
/* A new channel: numbering from 1 again, nothing outstanding (the counts
 * stay). */
void gradeq_confirms_reset(struct gradeq_confirms *c);
/* A publish went out: its tag. */
uint64_t gradeq_confirms_publish(struct gradeq_confirms *c);
/* basic.ack (ack) or basic.nack of tag (multiple: and of every unsettled
 * tag below it). Tags already settled or never published are ignored.
 * Returns the number of tags this settled. */
uint64_t gradeq_confirms_settle(struct gradeq_confirms *c, uint64_t tag, bool multiple, bool ack);
/* Published and not settled. */
uint64_t gradeq_confirms_outstanding(const struct gradeq_confirms *c);

#endif
