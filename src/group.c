/* Groups of small jobs: what joins one, write order, acks (group.h). */
#include "gradeq/group.h"

#include <string.h>

bool gradeq_group_admits(const struct gradeq_group_limits *l, int njobs, size_t held, size_t nusers,
			 bool redelivered)
{
	if (l->max_jobs <= 1 || redelivered || nusers > l->max_learners)
		return false;
	return njobs < l->max_jobs && (njobs == 0 || held + nusers <= l->max_total);
}

size_t gradeq_group_paced_total(double rate, double paced_s, size_t max)
{
	double t = rate * paced_s;

	if (rate <= 0 || t >= (double)max)
		return max;
	return (size_t)t;
}

void gradeq_group_order(const char *const *keys, int *order, int n)
{
	/* insertion sort: stable, and groups are small */
	for (int i = 0; i < n; i++) {
		int j = i;

		while (j > 0 && strcmp(keys[order[j - 1]], keys[i]) > 0) {
			order[j] = order[j - 1];
			j--;
		}
		order[j] = i;
	}
}

uint64_t gradeq_group_ack_upto(const uint64_t *tags, const enum gradeq_group_settle *settle, int n)
{
	uint64_t upto = 0;

	for (int i = 0; i < n; i++)
		if (settle[i] == GRADEQ_SETTLE_ACK && tags[i] > upto)
			upto = tags[i];
	for (int i = 0; i < n; i++)
		if (settle[i] == GRADEQ_SETTLE_HELD && tags[i] < upto)
			return 0;
	return upto;
}
