/* The state machines: every legal transition is in the table, every other
 * pair of states is refused, and the JSON says the same. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gradeq/states.h"

static void test_legal_transitions(void **state)
{
	(void)state;
	assert_true(gradeq_transition_allowed(GRADEQ_STATE_JOB, "pending", "in_progress"));
	assert_true(gradeq_transition_allowed(GRADEQ_STATE_JOB, "in_progress", "complete"));
	assert_true(gradeq_transition_allowed(GRADEQ_STATE_JOB, "in_progress", "retrying"));
	assert_true(gradeq_transition_allowed(GRADEQ_STATE_JOB, "retrying", "in_progress"));
	assert_true(gradeq_transition_allowed(GRADEQ_STATE_JOB, "dead", "pending"));
	assert_true(gradeq_transition_allowed(GRADEQ_STATE_JOB, "dead", "discarded"));
	assert_true(gradeq_transition_allowed(GRADEQ_STATE_RUN, "publishing", "running"));
	assert_true(gradeq_transition_allowed(GRADEQ_STATE_RUN, "running", "complete"));
	assert_true(gradeq_transition_allowed(GRADEQ_STATE_RUN, "running", "canceled"));
}

/* Every pair not in the table is refused: finished jobs never move again,
 * and nothing goes back to pending but a replay of a dead job. */
static void test_every_illegal_transition_refused(void **state)
{
	static const enum gradeq_state_kind kinds[] = {GRADEQ_STATE_RUN, GRADEQ_STATE_JOB};

	(void)state;
	for (size_t k = 0; k < 2; k++) {
		const char *const *states = gradeq_states(kinds[k]);
		size_t n, legal = 0, allowed = 0;
		const struct gradeq_transition *t = gradeq_transitions(kinds[k], &n);

		for (const char *const *a = states; *a; a++)
			for (const char *const *b = states; *b; b++) {
				bool in_table = false;

				for (size_t i = 0; i < n; i++)
					if (!strcmp(t[i].from, *a) && !strcmp(t[i].to, *b))
						in_table = true;
				legal += in_table;
				allowed += gradeq_transition_allowed(kinds[k], *a, *b);
				assert_int_equal(in_table,
						 gradeq_transition_allowed(kinds[k], *a, *b));
			}
		assert_int_equal(legal, n);
		assert_int_equal(allowed, n);
	}
	assert_false(gradeq_transition_allowed(GRADEQ_STATE_JOB, "complete", "in_progress"));
	assert_false(gradeq_transition_allowed(GRADEQ_STATE_JOB, "complete", "pending"));
	assert_false(gradeq_transition_allowed(GRADEQ_STATE_JOB, "canceled", "in_progress"));
	assert_false(gradeq_transition_allowed(GRADEQ_STATE_JOB, "discarded", "pending"));
	assert_false(gradeq_transition_allowed(GRADEQ_STATE_JOB, "pending", "complete"));
	assert_false(gradeq_transition_allowed(GRADEQ_STATE_RUN, "complete", "running"));
	assert_false(gradeq_transition_allowed(GRADEQ_STATE_RUN, "canceled", "running"));
	assert_false(gradeq_transition_allowed(GRADEQ_STATE_JOB, "pending", "bogus"));
	assert_false(gradeq_transition_allowed(GRADEQ_STATE_JOB, NULL, "pending"));
}

static void test_final_states(void **state)
{
	(void)state;
	assert_true(gradeq_state_final(GRADEQ_STATE_JOB, "complete"));
	assert_true(gradeq_state_final(GRADEQ_STATE_JOB, "canceled"));
	assert_true(gradeq_state_final(GRADEQ_STATE_JOB, "discarded"));
	assert_true(gradeq_state_final(GRADEQ_STATE_JOB, "dead")); /* only replay leaves it */
	assert_false(gradeq_state_final(GRADEQ_STATE_JOB, "pending"));
	assert_false(gradeq_state_final(GRADEQ_STATE_JOB, "retrying"));
	assert_true(gradeq_state_final(GRADEQ_STATE_RUN, "complete"));
	assert_false(gradeq_state_final(GRADEQ_STATE_RUN, "running"));
	assert_false(gradeq_state_final(GRADEQ_STATE_RUN, "nonsense"));
}

static void test_enums_match_the_tables(void **state)
{
	const char *const *runs = gradeq_states(GRADEQ_STATE_RUN);
	const char *const *jobs = gradeq_states(GRADEQ_STATE_JOB);
	enum gradeq_run_state rs;
	enum gradeq_job_state js;

	(void)state;
	for (int i = 0; i < GRADEQ_RUN_NSTATES; i++) {
		assert_string_equal(gradeq_run_state_name((enum gradeq_run_state)i), runs[i]);
		assert_true(gradeq_run_state_parse(runs[i], &rs));
		assert_int_equal(rs, i);
	}
	assert_null(runs[GRADEQ_RUN_NSTATES]);
	for (int i = 0; i < GRADEQ_JOB_NSTATES; i++) {
		assert_string_equal(gradeq_job_state_name((enum gradeq_job_state)i), jobs[i]);
		assert_true(gradeq_job_state_parse(jobs[i], &js));
		assert_int_equal(js, i);
	}
	assert_null(jobs[GRADEQ_JOB_NSTATES]);
	assert_string_equal(gradeq_job_state_name(GRADEQ_JOB_IN_PROGRESS), "in_progress");
	assert_false(gradeq_job_state_parse("bogus", &js));
	assert_false(gradeq_run_state_parse(NULL, &rs));
	assert_true(gradeq_job_state_is_final(GRADEQ_JOB_DEAD));
	assert_false(gradeq_job_state_is_final(GRADEQ_JOB_RETRYING));
	assert_true(gradeq_run_state_is_final(GRADEQ_RUN_CANCELED));
	assert_false(gradeq_run_state_is_final(GRADEQ_RUN_PUBLISHING));
}

static void test_json_lists_the_tables(void **state)
{
	char *json = gradeq_states_json();

	(void)state;
	assert_non_null(json);
	assert_non_null(strstr(json, "\"run\":{\"states\":[\"publishing\",\"running\""));
	assert_non_null(strstr(json, "{\"from\":\"dead\",\"to\":\"pending\""));
	assert_non_null(strstr(json, "\"final\":[\"complete\",\"failed\",\"canceled\"]"));
	assert_null(strstr(json, "{\"from\":\"complete\""));
	free(json);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_legal_transitions),
		cmocka_unit_test(test_every_illegal_transition_refused),
		cmocka_unit_test(test_final_states),
		cmocka_unit_test(test_enums_match_the_tables),
		cmocka_unit_test(test_json_lists_the_tables),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
