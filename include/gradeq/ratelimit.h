/* A token bucket without burst: at most `rate` events a second, evenly
 * spaced, never more than rate in any one second. Pure: the caller passes
 * the clock in, so the pacing can be tested without sleeping. */
#ifndef GRADEQ_RATELIMIT_H
#define GRADEQ_RATELIMIT_H

struct gradeq_ratelimit {
	double rate; /* events a second; <= 0: no limit */
	double next; /* when the next token is there (the caller's clock) */
};

/* Sets the bucket up for rate events a second (<= 0: unlimited). */
void gradeq_ratelimit_init(struct gradeq_ratelimit *rl, double rate);

/* Seconds to wait at time now before the next event may go (0: at once).
 * A bucket left idle does not save tokens up: no burst after a pause. */
double gradeq_ratelimit_wait(struct gradeq_ratelimit *rl, double now);

/* Takes the token of an event that goes at time now (call once the wait
 * is 0); the next one may go 1/rate after now, however late this one was. */
void gradeq_ratelimit_take(struct gradeq_ratelimit *rl, double now);

#endif
