/* The rate limiter of gradeq-replay's --rate: a token bucket of depth one. */
#include "gradeq/ratelimit.h"

void gradeq_ratelimit_init(struct gradeq_ratelimit *rl, double rate)
{
	rl->rate = rate;
	rl->next = 0;
}

double gradeq_ratelimit_wait(struct gradeq_ratelimit *rl, double now)
{
	if (rl->rate <= 0)
		return 0;
	if (rl->next < now)
		rl->next = now; /* idle time is not saved up */
	return rl->next - now;
}

void gradeq_ratelimit_take(struct gradeq_ratelimit *rl, double now)
{
	if (rl->rate <= 0)
		return;
	/* the next token counts from when this event really went: an event
	 * that went late (the process was descheduled) must not let the next
	 * one follow closer than 1/rate, or a second could hold rate + 1 */
	if (rl->next < now)
		rl->next = now;
	rl->next += 1.0 / rl->rate;
}
