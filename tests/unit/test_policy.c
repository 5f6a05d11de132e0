/* Grading policy: canonical JSON, hash, validation, defaults. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gradeq/grading.h"

#define DESIGN_POLICY                                                                              \
	"{\"GRADER\": [{\"type\": \"Homework\", \"min_count\": 12, \"drop_count\": 2, "            \
	"\"short_label\": \"HW\", \"weight\": 0.15}], "                                            \
	"\"GRADE_CUTOFFS\": {\"A\": 0.9, \"B\": 0.8, \"Pass\": 0.5}}"

static void assert_canonical(const char *in, const char *want)
{
	char err[256] = "", *out = NULL;
	size_t len = 0;

	assert_int_equal(gradeq_policy_canonical(in, strlen(in), &out, &len, err, sizeof(err)), 0);
	assert_string_equal(out, want);
	assert_int_equal(len, strlen(want));
	free(out);
}

static struct gradeq_policy *parse_ok(const char *json)
{
	struct gradeq_policy *p = NULL;
	char err[256] = "";
	int rc = gradeq_policy_parse(json, strlen(json), &p, err, sizeof(err));

	if (rc)
		fail_msg("parse failed: %s", err);
	return p;
}

static void assert_policy_error(const char *json, const char *msg)
{
	struct gradeq_policy *p = (struct gradeq_policy *)1;
	char err[256] = "";

	assert_int_equal(gradeq_policy_parse(json, strlen(json), &p, err, sizeof(err)),
			 GRADEQ_ERR_POLICY);
	assert_null(p);
	if (!strstr(err, msg))
		fail_msg("error '%s' does not say '%s'", err, msg);
	assert_null(strchr(err, '\n'));
}

/* Keys sorted ("GRADER" < "GRADE_CUTOFFS": 'R' 0x52 < '_' 0x5f), no
 * spaces, 0.15 and 12 as written. */
static void test_canonical_design_example(void **state)
{
	(void)state;
	assert_canonical(DESIGN_POLICY,
			 "{\"GRADER\":[{\"drop_count\":2,\"min_count\":12,\"short_label\":\"HW\","
			 "\"type\":\"Homework\",\"weight\":0.15}],"
			 "\"GRADE_CUTOFFS\":{\"A\":0.9,\"B\":0.8,\"Pass\":0.5}}");
}

/* Python's repr: 1.0 stays 1.0, 1e-5 -> 1e-05, 0.0001 fixed, 1e16 and up in
 * exponent form with a sign and two digits, -0 integer is 0, -0.0 real
 * keeps its sign, 1E2 -> 100.0, 17 digits only when needed. */
static void test_canonical_numbers(void **state)
{
	(void)state;
	assert_canonical(
		"[1.0, 1, 1e-5, 0.0001, 0.00012, 1.5e16, 1e16, 9999999999999998.0, "
		"123456789012345.6, -0, -0.0, 1E2, 0.1, 1e-400, 5e-324, 1.7976931348623157e308,"
		" 0.30000000000000004, -2.5e-7, 9007199254740993]",
		"[1.0,1,1e-05,0.0001,0.00012,1.5e+16,1e+16,9999999999999998.0,"
		"123456789012345.6,0,-0.0,100.0,0.1,0.0,5e-324,1.7976931348623157e+308,"
		"0.30000000000000004,-2.5e-07,9007199254740993]");
}

/* ensure_ascii: U+00E9 -> \u00e9, U+1F600 -> surrogate pair \ud83d\ude00,
 * DEL and control characters as \u00XX, the short escapes, '/' as is; keys
 * in code-point order ("a\x7f" before "\u00e9"). */
static void test_canonical_strings(void **state)
{
	(void)state;
	assert_canonical("{\"\xc3\xa9\": \"\xf0\x9f\x98\x80\", \"a\\u007f\": "
			 "\"\\n\\t\\\"\\\\\\b\\f\\r\\u0001/\\u0000\"}",
			 "{\"a\\u007f\":\"\\n\\t\\\"\\\\\\b\\f\\r\\u0001/\\u0000\","
			 "\"\\u00e9\":\"\\ud83d\\ude00\"}");
	/* U+FFFF < U+10000 by code point, and by UTF-8 bytes too. */
	assert_canonical("{\"\\ud800\\udc00\": 2, \"\\uffff\": 1, \"\\u00ff\": 3}",
			 "{\"\\u00ff\":3,\"\\uffff\":1,\"\\ud800\\udc00\":2}");
}

/* Nesting, literals, duplicate keys (the last value wins, as in Python). */
static void test_canonical_structure(void **state)
{
	(void)state;
	assert_canonical(" {\"b\": [true, false, null, {}, []], \"a\": 1, \"a\": 2} ",
			 "{\"a\":2,\"b\":[true,false,null,{},[]]}");
	assert_canonical("\"x\"", "\"x\"");
}

/* Expected hash computed independently:
 * python3 -c 'import json,hashlib,base64; p=json.loads(open(0).read());
 *   print(base64.b64encode(hashlib.sha1(json.dumps(p, sort_keys=True,
 *   separators=(",", ":")).encode()).digest()).decode())' <<< "$DESIGN_POLICY"
 * -> 9VDKR9jneY6ptxWGA+bs1NKTLy0= */
static void test_hash_vector(void **state)
{
	struct gradeq_policy *p;
	char out[29], err[128];

	(void)state;
	assert_int_equal(
		gradeq_policy_hash(DESIGN_POLICY, strlen(DESIGN_POLICY), out, err, sizeof(err)), 0);
	assert_string_equal(out, "9VDKR9jneY6ptxWGA+bs1NKTLy0=");
	p = parse_ok(DESIGN_POLICY);
	assert_string_equal(p->hash, "9VDKR9jneY6ptxWGA+bs1NKTLy0=");
	gradeq_policy_free(p);
}

/* Missing GRADER and GRADE_CUTOFFS take the platform default, and the
 * course hash is the hash of that effective policy:
 * python3 -c 'import json,hashlib,base64; d={"GRADER":[{"type":"Homework",
 *   "min_count":12,"drop_count":2,"short_label":"HW","weight":0.15},
 *   {"type":"Lab","min_count":12,"drop_count":2,"weight":0.15},
 *   {"type":"Midterm Exam","min_count":1,"drop_count":0,"short_label":"Midterm",
 *   "weight":0.3},{"type":"Final Exam","min_count":1,"drop_count":0,
 *   "short_label":"Final","weight":0.4}],"GRADE_CUTOFFS":{"Pass":0.5}};
 *   print(base64.b64encode(hashlib.sha1(json.dumps(d,sort_keys=True,
 *   separators=(",",":")).encode()).digest()).decode())'
 * -> ChVp0lHGQGCevD0t4njna/C44zQ= */
static void test_defaults(void **state)
{
	struct gradeq_policy *p;

	(void)state;
	p = parse_ok("{}");
	assert_int_equal(p->ngraders, 4);
	assert_string_equal(p->graders[0].type, "Homework");
	assert_string_equal(p->graders[0].short_label, "HW");
	assert_int_equal(p->graders[0].min_count, 12);
	assert_int_equal(p->graders[0].drop_count, 2);
	assert_true(p->graders[1].short_label == NULL);
	assert_string_equal(p->graders[3].type, "Final Exam");
	assert_true(p->graders[3].weight == 0.4);
	assert_int_equal(p->ncutoffs, 1);
	assert_string_equal(p->cutoffs[0].letter, "Pass");
	assert_true(p->pass_cutoff == 0.5);
	assert_string_equal(p->hash, "ChVp0lHGQGCevD0t4njna/C44zQ=");
	gradeq_policy_free(p);

	/* Only one key missing: the other is kept as given. */
	p = parse_ok("{\"GRADE_CUTOFFS\": {\"A\": 0.8}}");
	assert_int_equal(p->ngraders, 4);
	assert_int_equal(p->ncutoffs, 1);
	assert_string_equal(p->cutoffs[0].letter, "A");
	gradeq_policy_free(p);
}

/* Optional fields: drop_count 0, weight 0, short_label NULL; extra keys
 * ignored (the platform drops unknown grader arguments); min_count 12.0
 * accepted (int(float(min_count)) on the platform). */
static void test_optional_fields(void **state)
{
	struct gradeq_policy *p;

	(void)state;
	p = parse_ok("{\"GRADER\": [{\"type\": \"Lab\", \"min_count\": 12.0, \"color\": \"red\"}], "
		     "\"GRADE_CUTOFFS\": {}, \"extra\": 1}");
	assert_int_equal(p->ngraders, 1);
	assert_int_equal(p->graders[0].min_count, 12);
	assert_int_equal(p->graders[0].drop_count, 0);
	assert_true(p->graders[0].weight == 0);
	assert_null(p->graders[0].short_label);
	assert_int_equal(p->ncutoffs, 0);
	assert_true(isinf(p->pass_cutoff));
	gradeq_policy_free(p);
}

/* Descending, ties in JSON order (Python's stable sort); pass = smallest
 * non-zero; a zero cutoff never passes anyone. */
static void test_cutoffs_sorted(void **state)
{
	struct gradeq_policy *p;

	(void)state;
	p = parse_ok("{\"GRADER\": [], \"GRADE_CUTOFFS\": {\"F\": 0, \"C\": 0.6, \"B2\": 0.8, "
		     "\"A\": 0.9, \"B1\": 0.8, \"D\": 1}}");
	assert_int_equal(p->ncutoffs, 6);
	assert_string_equal(p->cutoffs[0].letter, "D");
	assert_string_equal(p->cutoffs[1].letter, "A");
	assert_string_equal(p->cutoffs[2].letter, "B2");
	assert_string_equal(p->cutoffs[3].letter, "B1");
	assert_string_equal(p->cutoffs[4].letter, "C");
	assert_string_equal(p->cutoffs[5].letter, "F");
	assert_true(p->pass_cutoff == 0.6);
	gradeq_policy_free(p);

	p = parse_ok("{\"GRADER\": [], \"GRADE_CUTOFFS\": {\"F\": 0}}");
	assert_true(isinf(p->pass_cutoff));
	gradeq_policy_free(p);
}

static void test_validation_errors(void **state)
{
	(void)state;
	assert_policy_error("{\"GRADER\": {}}", "GRADER must be a list");
	assert_policy_error("{\"GRADER\": null}", "GRADER must be a list");
	assert_policy_error("{\"GRADER\": [1]}", "GRADER[0] must be an object");
	assert_policy_error("{\"GRADER\": [{\"min_count\": 1}]}",
			    "GRADER[0]: 'type' must be a string");
	assert_policy_error(
		"{\"GRADER\": [{\"type\": \"a\", \"min_count\": 1}, {\"type\": \"b\"}]}",
		"GRADER[1]: 'min_count' is missing");
	assert_policy_error(
		"{\"GRADER\": [{\"type\": \"a\", \"min_count\": 1}, "
		"{\"type\": \"a\", \"min_count\": 1}, {\"type\": \"b\", \"min_count\": -1}]}",
		"GRADER[2]: 'min_count' must be a non-negative integer");
	assert_policy_error("{\"GRADER\": [{\"type\": \"a\", \"min_count\": 1.5}]}",
			    "'min_count' must be a non-negative integer");
	assert_policy_error("{\"GRADER\": [{\"type\": \"a\", \"min_count\": true}]}",
			    "'min_count' must be a non-negative integer");
	assert_policy_error("{\"GRADER\": [{\"type\": \"a\", \"min_count\": 99999999999}]}",
			    "'min_count' must be a non-negative integer");
	assert_policy_error(
		"{\"GRADER\": [{\"type\": \"a\", \"min_count\": 1, \"drop_count\": 2.0}]}",
		"GRADER[0]: 'drop_count' must be a non-negative integer");
	assert_policy_error(
		"{\"GRADER\": [{\"type\": \"a\", \"min_count\": 1, \"weight\": \"1\"}]}",
		"GRADER[0]: 'weight' must be a number");
	assert_policy_error("{\"GRADER\": [{\"type\": \"a\", \"min_count\": 1, \"weight\": null}]}",
			    "GRADER[0]: 'weight' must be a number");
	assert_policy_error(
		"{\"GRADER\": [{\"type\": \"a\", \"min_count\": 1, \"short_label\": 3}]}",
		"GRADER[0]: 'short_label' must be a string");
	assert_policy_error("{\"GRADER\": [{\"type\": \"a\\u0000b\", \"min_count\": 1}]}",
			    "'type' contains a NUL");
	assert_policy_error("{\"GRADE_CUTOFFS\": []}", "GRADE_CUTOFFS must be an object");
	assert_policy_error("{\"GRADE_CUTOFFS\": {\"A\": 1.5}}",
			    "GRADE_CUTOFFS['A'] must be a number between 0 and 1");
	assert_policy_error("{\"GRADE_CUTOFFS\": {\"A\\nB\": \"x\"}}", "GRADE_CUTOFFS['A?B']");
	assert_policy_error("[]", "must be a JSON object");
	assert_policy_error("null", "must be a JSON object");
	assert_policy_error("{\"GRADER\": [", "not valid JSON");
	assert_policy_error("", "not valid JSON");
	/* A real beyond double's range, written as such or as an integer */
	assert_policy_error("{\"x\": 1e400}", "not valid JSON");
	{
		char json[600] = "{\"x\": 1";

		memset(json + strlen(json), '0', 400);
		strcat(json, "}");
		assert_policy_error(json, "is out of range");
	}
}

/* True when s is valid UTF-8. */
static bool utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		int n = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 : 4;

		for (int k = 1; k < n; k++)
			if ((p[k] & 0xc0) != 0x80)
				return false;
		p += n;
	}
	return true;
}

/* A long non-ASCII letter grade is kept whole; a message naming it is cut
 * only between characters, whatever the buffer. */
static void test_long_letter_grades(void **state)
{
	char name[601], json[1400], err[1024];
	struct gradeq_policy *p;

	(void)state;
	strcpy(name, "\xc3\x84"); /* Ä, then é... */
	for (int i = 1; i < 99; i++)
		strcat(name, "\xc3\xa9");
	strcat(name, "\xc3\x96");
	assert_int_equal(strlen(name), 200);
	snprintf(json, sizeof(json), "{\"GRADE_CUTOFFS\": {\"%s\": 0.5}}", name);
	p = parse_ok(json);
	assert_int_equal(p->ncutoffs, 1);
	assert_string_equal(p->cutoffs[0].letter, name);
	gradeq_policy_free(p);
	/* refused: the message names the cutoff whole */
	snprintf(json, sizeof(json), "{\"GRADE_CUTOFFS\": {\"%s\": \"x\"}}", name);
	assert_policy_error(json, name);
	/* a small buffer: cut between characters, at every size */
	for (size_t n = 1; n < 80; n++) {
		p = (struct gradeq_policy *)1;
		memset(err, 'z', sizeof(err));
		assert_int_equal(gradeq_policy_parse(json, strlen(json), &p, err, n),
				 GRADEQ_ERR_POLICY);
		assert_true(strlen(err) < n);
		if (!utf8_valid(err))
			fail_msg("message cut inside a character at %zu bytes", n);
	}
	/* a name too long for a message: cut between characters, marked */
	for (int i = 0; i < 200; i++)
		strcat(name, "\xc3\xa9");
	snprintf(json, sizeof(json), "{\"GRADE_CUTOFFS\": {\"%s\": \"x\"}}", name);
	p = (struct gradeq_policy *)1;
	assert_int_equal(gradeq_policy_parse(json, strlen(json), &p, err, sizeof(err)),
			 GRADEQ_ERR_POLICY);
	assert_true(utf8_valid(err));
	assert_non_null(strstr(err, "...'] must be a number between 0 and 1"));
}

static void test_utf8_cut_end(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"", ""},
		{"abc", "abc"},
		{"a\xc3\xa9", "a\xc3\xa9"},               /* é whole */
		{"a\xc3", "a"},                           /* é cut */
		{"a\xe2\x82\xac", "a\xe2\x82\xac"},       /* € whole */
		{"a\xe2\x82", "a"},                       /* € cut */
		{"a\xe2", "a"},                           /* € cut */
		{"\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"}, /* an emoji whole */
		{"b\xf0\x9f\x98", "b"},                   /* an emoji cut */
	};
	char buf[16];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(buf, sizeof(buf), "%s", cases[i].in);
		gradeq_utf8_cut_end(buf);
		assert_string_equal(buf, cases[i].out);
	}
}

/* jsonb prints a number such as 1e308 as an integer of 309 digits, beyond
 * jansson's 64 bits: it is a number (a real), and the canonical text keeps
 * its digits as Python's json.dumps prints the integer it read. */
static void test_big_integers(void **state)
{
	char big[400], json[1200], want[1200], *canon = NULL;
	struct gradeq_policy *p;
	size_t len = 0;

	(void)state;
	big[0] = '1';
	memset(big + 1, '0', 308);
	big[309] = '\0';
	/* a key gradeq does not use, in an array too, negative, and a bare one */
	snprintf(json, sizeof(json),
		 "{\"z\": [-%s, 1, \"gradeq\"], \"a\": %s, \"GRADE_CUTOFFS\": {\"A\": 0.5}}", big,
		 big);
	assert_int_equal(gradeq_policy_canonical(json, strlen(json), &canon, &len, NULL, 0), 0);
	snprintf(want, sizeof(want),
		 "{\"GRADE_CUTOFFS\":{\"A\":0.5},\"a\":%s,\"z\":[-%s,1,\"gradeq\"]}", big, big);
	assert_string_equal(canon, want);
	assert_int_equal(len, strlen(want));
	free(canon);
	p = parse_ok(json);
	assert_int_equal(p->ncutoffs, 1);
	gradeq_policy_free(p);
	assert_int_equal(gradeq_policy_canonical(big, strlen(big), &canon, NULL, NULL, 0), 0);
	assert_string_equal(canon, big);
	free(canon);
	/* as a weight: a number */
	snprintf(json, sizeof(json),
		 "{\"GRADER\": [{\"type\": \"a\", \"min_count\": 1, \"weight\": %s}]}", big);
	p = parse_ok(json);
	assert_true(p->graders[0].weight == 1e308);
	gradeq_policy_free(p);
	/* as a cutoff: a number, out of range */
	snprintf(json, sizeof(json), "{\"GRADE_CUTOFFS\": {\"Huge\": %s}}", big);
	assert_policy_error(json, "GRADE_CUTOFFS['Huge'] must be a number between 0 and 1");
	/* as a count: not an integer gradeq can use */
	snprintf(json, sizeof(json), "{\"GRADER\": [{\"type\": \"a\", \"min_count\": %s}]}", big);
	assert_policy_error(json, "'min_count' must be a non-negative integer");
	/* strings that look like numbers stay strings; a policy holding the
	 * stand-in's text is not rewritten */
	assert_int_equal(gradeq_policy_canonical("[\"123456789012345678901234567890\", "
						 "123456789012345678901234567890]",
						 66, &canon, NULL, NULL, 0),
			 0);
	assert_string_equal(canon, "[\"123456789012345678901234567890\","
				   "123456789012345678901234567890]");
	free(canon);
	assert_int_equal(
		gradeq_policy_canonical("[\"gradeq-bignum:\", 123456789012345678901234567890]", 50,
					&canon, NULL, NULL, 0),
		GRADEQ_ERR_POLICY);
	/* only JSON integers are big integers: what is no number stays bad */
	assert_int_equal(gradeq_policy_canonical("[-, 123456789012345678901234567890]", 35, &canon,
						 NULL, NULL, 0),
			 GRADEQ_ERR_POLICY);
	assert_int_equal(gradeq_policy_canonical("[0123456789012345678901234567890]", 33, &canon,
						 NULL, NULL, 0),
			 GRADEQ_ERR_POLICY);
}

static void test_hash_errors(void **state)
{
	char out[29], err[128] = "", *canon = (char *)1;

	(void)state;
	assert_int_equal(gradeq_policy_hash("{", 1, out, err, sizeof(err)), GRADEQ_ERR_POLICY);
	assert_true(strlen(err) > 0);
	assert_int_equal(gradeq_policy_canonical("[1,]", 4, &canon, NULL, NULL, 0),
			 GRADEQ_ERR_POLICY);
	assert_null(canon);
	/* Not NUL-terminated input: only len bytes are read. */
	assert_int_equal(gradeq_policy_hash("[1]]]]", 3, out, NULL, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_canonical_design_example),
		cmocka_unit_test(test_canonical_numbers),
		cmocka_unit_test(test_canonical_strings),
		cmocka_unit_test(test_canonical_structure),
		cmocka_unit_test(test_hash_vector),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_optional_fields),
		cmocka_unit_test(test_cutoffs_sorted),
		cmocka_unit_test(test_validation_errors),
		cmocka_unit_test(test_hash_errors),
		cmocka_unit_test(test_big_integers),
		cmocka_unit_test(test_long_letter_grades),
		cmocka_unit_test(test_utf8_cut_end),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
