/* A list of broker (or management) URLs: one node of a cluster each.
 * Pure: parsing, the per-process shuffle and the rotation on a lost node
 * are functions of their inputs, so that they can be tested alone; the
 * broker module keeps the process's list and cursor. */
#ifndef GRADEQ_URLS_H
#define GRADEQ_URLS_H

#include <stddef.h>
#include <stdint.h>

#include "gradeq/err.h"
#include "gradeq/limits.h"

struct gradeq_urls {
	int n;
	char *url[GRADEQ_URLS_MAX]; /* the entries as written, blanks trimmed */
	int order[GRADEQ_URLS_MAX]; /* connection order: a permutation of 0..n-1 */
	int cur;                    /* position in order of the node in use */
};

/* Splits a comma-separated list into u (entries trimmed of blanks; a comma
 * inside a password must be percent-encoded as %2C). 0, or
 * GRADEQ_ERR_CONFIG with why (may be NULL) saying what is wrong: an empty
 * list or entry, more than GRADEQ_URLS_MAX entries; GRADEQ_ERR_NOMEM. The
 * order is the written one until gradeq_urls_shuffle(). Free with
 * gradeq_urls_release() in either case. */
int gradeq_urls_split(const char *list, struct gradeq_urls *u, char *why,
		      size_t whylen) GRADEQ_MUST_CHECK;

/* gradeq_urls_split(), then each entry must be an amqp:// or amqps:// URL
 * that rabbitmq-c reads, and every entry must name the same user and vhost
 * as the first (one cluster, one login). why names the entry by its number
 * and never shows a password. */
int gradeq_urls_parse_amqp(const char *list, struct gradeq_urls *u, char *why,
			   size_t whylen) GRADEQ_MUST_CHECK;

/* Frees the entries; u is empty afterwards. */
void gradeq_urls_release(struct gradeq_urls *u);

/* Puts the connection order in a pseudo-random order drawn from seed
 * (the same seed, the same order), so that the processes of a fleet, each
 * with its own seed, spread over the nodes. cur goes back to 0. */
void gradeq_urls_shuffle(struct gradeq_urls *u, uint64_t seed);

/* Index in url[] of the node to try at step (0: the one in use, 1: the
 * next one, ...), wrapping around. */
int gradeq_urls_at(const struct gradeq_urls *u, int step);

/* The node at step became the one in use (a connection to it opened). */
void gradeq_urls_use(struct gradeq_urls *u, int step);

/* The node in use was lost: the next open starts at the one after it,
 * unless another loss already moved on (lost is the index in url[] of the
 * node the lost connection used). */
void gradeq_urls_lost(struct gradeq_urls *u, int lost);

/* Delay before reconnect attempt 'attempt' (0 = the first after a loss):
 * 0 for the first (it goes to the next node), then a jittered exponential
 * backoff from GRADEQ_BACKOFF_FIRST_MS doubling up to cap_ms: a value in
 * [base/2, base], base = min(cap_ms, first * 2^(attempt-1)). jitter is a
 * random number (any value); the result is a pure function of the three. */
int gradeq_backoff_ms(int attempt, int cap_ms, uint32_t jitter);

#endif
