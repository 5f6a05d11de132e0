/* gradeq-web's pure parts: route matching, the listen address, the users
 * file, crypt(3) verification, CSRF comparison, session expiry, the login
 * rate limit and the Server-Sent Events frame. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <crypt.h>
#include <jansson.h>

#include "gradeq/web.h"

static void test_match(void **state)
{
	char p[4][GRADEQ_WEB_PARAM_MAX];
	char longseg[GRADEQ_WEB_PARAM_MAX + 20];

	(void)state;
	assert_int_equal(gradeq_web_match("/", "/", p, 4), 0);
	assert_int_equal(gradeq_web_match("/api/status", "/api/status", p, 4), 0);
	assert_int_equal(gradeq_web_match("/api/status", "/api/status/", p, 4), -1);
	assert_int_equal(gradeq_web_match("/api/status", "/api/statusx", p, 4), -1);
	assert_int_equal(gradeq_web_match("/api/status", "/api/stat", p, 4), -1);
	assert_int_equal(gradeq_web_match("/api/runs/:", "/api/runs/abc", p, 4), 1);
	assert_string_equal(p[0], "abc");
	assert_int_equal(gradeq_web_match("/api/runs/:", "/api/runs/", p, 4), -1);
	assert_int_equal(gradeq_web_match("/api/runs/:", "/api/runs/abc/jobs", p, 4), -1);
	assert_int_equal(gradeq_web_match("/api/runs/:/jobs", "/api/runs/r1/jobs", p, 4), 1);
	assert_string_equal(p[0], "r1");
	assert_int_equal(gradeq_web_match("/api/runs/:/cancel", "/api/runs/r1/jobs", p, 4), -1);
	assert_int_equal(gradeq_web_match("/a/:/b/:", "/a/x/b/y", p, 4), 2);
	assert_string_equal(p[1], "y");
	assert_int_equal(gradeq_web_match("/a/:/b/:", "/a/x/b/y", p, 1), -1);
	assert_int_equal(gradeq_web_match("/api/status", "api/status", p, 4), -1);
	memset(longseg, 'x', sizeof(longseg) - 1);
	longseg[sizeof(longseg) - 1] = '\0';
	longseg[0] = '/';
	assert_int_equal(gradeq_web_match("/:", longseg, p, 4), -1);
}

static void test_listen(void **state)
{
	char host[64];
	uint16_t port = 0;

	(void)state;
	assert_int_equal(gradeq_web_parse_listen("127.0.0.1:8470", host, sizeof(host), &port), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 8470);
	assert_int_equal(gradeq_web_parse_listen("[::1]:9000", host, sizeof(host), &port), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 9000);
	assert_int_not_equal(gradeq_web_parse_listen("127.0.0.1", host, sizeof(host), &port), 0);
	assert_int_not_equal(gradeq_web_parse_listen(":80", host, sizeof(host), &port), 0);
	assert_int_not_equal(gradeq_web_parse_listen("h:0", host, sizeof(host), &port), 0);
	assert_int_not_equal(gradeq_web_parse_listen("h:65536", host, sizeof(host), &port), 0);
	assert_int_not_equal(gradeq_web_parse_listen("h:80x", host, sizeof(host), &port), 0);
	assert_int_not_equal(gradeq_web_parse_listen("::1:80", host, sizeof(host), &port), 0);
	assert_int_not_equal(gradeq_web_parse_listen("", host, sizeof(host), &port), 0);
}

static void test_users_parse(void **state)
{
	struct gradeq_web_users u;
	char why[200] = "";

	(void)state;
	assert_int_equal(gradeq_web_users_parse("# users\n\nana:viewer:$6$s$h\r\n"
						"bo:operator:$y$j9T$x$y\n",
						&u, why, sizeof(why)),
			 0);
	assert_int_equal(u.n, 2);
	assert_string_equal(u.v[0].name, "ana");
	assert_int_equal(u.v[0].role, GRADEQ_WEB_VIEWER);
	assert_string_equal(u.v[0].hash, "$6$s$h");
	assert_int_equal(gradeq_web_users_find(&u, "bo")->role, GRADEQ_WEB_OPERATOR);
	assert_null(gradeq_web_users_find(&u, "cy"));
	gradeq_web_users_release(&u);

	assert_int_equal(gradeq_web_users_parse("ana:admin:$6$s$h\n", &u, why, sizeof(why)),
			 GRADEQ_ERR_CONFIG);
	assert_string_equal(why, "line 1: the role must be viewer or operator");
	assert_int_equal(gradeq_web_users_parse("ok:viewer:$6$a$b\nana\n", &u, why, sizeof(why)),
			 GRADEQ_ERR_CONFIG);
	assert_string_equal(why, "line 2: expected name:role:hash");
	assert_int_equal(gradeq_web_users_parse("a b:viewer:$6$a$b\n", &u, why, sizeof(why)),
			 GRADEQ_ERR_CONFIG);
	assert_int_equal(gradeq_web_users_parse("ana:viewer:\n", &u, why, sizeof(why)),
			 GRADEQ_ERR_CONFIG);
	assert_int_equal(gradeq_web_users_parse("ana:viewer:$6$a$b\nana:operator:$6$a$b\n", &u, why,
						sizeof(why)),
			 GRADEQ_ERR_CONFIG);
	assert_string_equal(why, "line 2: the user is listed twice");
	assert_int_equal(u.n, 0);
}

/* The optional fourth field maps a dashboard user to a platform user; old
 * three-field files keep their meaning (no platform user). */
static void test_users_platform(void **state)
{
	struct gradeq_web_users u;
	char why[200] = "";

	(void)state;
	assert_int_equal(gradeq_web_users_parse("ana:viewer:$6$s$h:9001\n"
						"bo:operator:$6$s$h\n"
						"cy:viewer:!:2147483647\n",
						&u, why, sizeof(why)),
			 0);
	assert_int_equal(u.n, 3);
	assert_string_equal(u.v[0].hash, "$6$s$h");
	assert_int_equal(u.v[0].platform_user, 9001);
	assert_int_equal(u.v[1].platform_user, 0);
	assert_string_equal(u.v[2].hash, "!");
	assert_int_equal(u.v[2].platform_user, INT32_MAX);
	gradeq_web_users_release(&u);

	static const char *const bad[] = {
		"ana:viewer:$6$s$h:\n",           "ana:viewer:$6$s$h:0\n",
		"ana:viewer:$6$s$h:-3\n",         "ana:viewer:$6$s$h:12a\n",
		"ana:viewer:$6$s$h:2147483648\n", "ana:viewer:$6$s$h:99999999999\n",
		"ana:viewer:$6$s$h:1:2\n",        "ana:viewer::9001\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(gradeq_web_users_parse(bad[i], &u, why, sizeof(why)),
				 GRADEQ_ERR_CONFIG);
		assert_int_equal(u.n, 0);
	}
	assert_int_equal(gradeq_web_users_parse("ana:viewer:$6$s$h:x\n", &u, why, sizeof(why)),
			 GRADEQ_ERR_CONFIG);
	assert_string_equal(why,
			    "line 1: the platform user id must be a number from 1 to 2147483647");
}

static void test_password(void **state)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE], hash[CRYPT_OUTPUT_SIZE];
	const char *h;

	(void)state;
	/* SHA-512, as openssl passwd -6 makes */
	h = crypt("s3cret", "$6$gradeqsalt$");
	assert_non_null(h);
	snprintf(hash, sizeof(hash), "%s", h);
	assert_true(gradeq_web_password_ok(hash, "s3cret"));
	assert_false(gradeq_web_password_ok(hash, "s3cret "));
	assert_false(gradeq_web_password_ok(hash, ""));
	/* yescrypt */
	assert_non_null(crypt_gensalt_rn("$y$", 0, NULL, 0, setting, sizeof(setting)));
	h = crypt("pw", setting);
	assert_non_null(h);
	snprintf(hash, sizeof(hash), "%s", h);
	assert_true(gradeq_web_password_ok(hash, "pw"));
	assert_false(gradeq_web_password_ok(hash, "pW"));
	/* locked and malformed hashes never match */
	assert_false(gradeq_web_password_ok("!", ""));
	assert_false(gradeq_web_password_ok("*", "*"));
	assert_false(gradeq_web_password_ok("", ""));
	assert_false(gradeq_web_password_ok(NULL, "x"));
	assert_false(gradeq_web_password_ok("$6$gradeqsalt$", "x"));
}

static void test_csrf(void **state)
{
	(void)state;
	assert_true(gradeq_web_csrf_ok("abcd", "abcd"));
	assert_false(gradeq_web_csrf_ok("abcd", "abce"));
	assert_false(gradeq_web_csrf_ok("abcd", "abc"));
	assert_false(gradeq_web_csrf_ok("abcd", "abcde"));
	assert_false(gradeq_web_csrf_ok("abcd", ""));
	assert_false(gradeq_web_csrf_ok("abcd", NULL));
	assert_false(gradeq_web_csrf_ok("", ""));
}

static void test_sessions(void **state)
{
	struct gradeq_web_sessions s = {NULL, 0, 0, 100};
	struct gradeq_web_session a, b, got;

	(void)state;
	assert_int_equal(gradeq_web_session_open(&s, "ana", GRADEQ_WEB_VIEWER, 1000, &a), 0);
	assert_int_equal(gradeq_web_session_open(&s, "bo", GRADEQ_WEB_OPERATOR, 1000, &b), 0);
	assert_int_equal(strlen(a.token), GRADEQ_WEB_TOKEN_HEX);
	assert_int_equal(strlen(a.csrf), GRADEQ_WEB_TOKEN_HEX);
	assert_string_not_equal(a.token, b.token);
	assert_string_not_equal(a.token, a.csrf);
	assert_true(gradeq_web_session_find(&s, a.token, 1099, &got));
	assert_string_equal(got.user, "ana");
	assert_string_equal(got.csrf, a.csrf);
	/* seen at 1099: alive until 1199 */
	assert_true(gradeq_web_session_find(&s, a.token, 1198, &got));
	/* b idle since 1000 */
	assert_false(gradeq_web_session_find(&s, b.token, 1100, &got));
	assert_false(gradeq_web_session_find(&s, b.token, 1101, &got));
	assert_false(gradeq_web_session_find(&s, "nope", 1100, &got));
	gradeq_web_session_close(&s, a.token);
	assert_false(gradeq_web_session_find(&s, a.token, 1198, &got));
	gradeq_web_sessions_release(&s);
}

static void test_ratelimit(void **state)
{
	struct gradeq_web_ratelimit *r = calloc(1, sizeof(*r));

	(void)state;
	assert_non_null(r);
	for (int i = 0; i < GRADEQ_WEB_LOGIN_FAILURES - 1; i++) {
		gradeq_web_rl_fail(r, "user:ana", 100 + i);
		assert_int_equal(gradeq_web_rl_wait(r, "user:ana", 100 + i), 0);
	}
	gradeq_web_rl_fail(r, "user:ana", 110);
	assert_int_equal(gradeq_web_rl_wait(r, "user:ana", 110), GRADEQ_WEB_LOGIN_WINDOW_S);
	assert_int_equal(gradeq_web_rl_wait(r, "user:ana", 140), GRADEQ_WEB_LOGIN_WINDOW_S - 30);
	assert_int_equal(gradeq_web_rl_wait(r, "user:bo", 140), 0);
	assert_int_equal(gradeq_web_rl_wait(r, "user:ana", 110 + GRADEQ_WEB_LOGIN_WINDOW_S), 0);
	/* failures spread beyond the window never block */
	for (int i = 0; i < 3 * GRADEQ_WEB_LOGIN_FAILURES; i++) {
		gradeq_web_rl_fail(r, "addr:x", 1000 + (time_t)i * GRADEQ_WEB_LOGIN_WINDOW_S);
		assert_int_equal(gradeq_web_rl_wait(r, "addr:x",
						    1000 + (time_t)i * GRADEQ_WEB_LOGIN_WINDOW_S),
				 0);
	}
	/* a success forgets the failures before a block */
	gradeq_web_rl_fail(r, "user:cy", 5000);
	gradeq_web_rl_ok(r, "user:cy");
	for (int i = 0; i < GRADEQ_WEB_LOGIN_FAILURES - 1; i++)
		gradeq_web_rl_fail(r, "user:cy", 5001);
	assert_int_equal(gradeq_web_rl_wait(r, "user:cy", 5001), 0);
	free(r);
}

static void test_sse_frame(void **state)
{
	const char body[] = "{\"run_id\":\"r\",\"state\":\"running\",\"detail\":\"a\\nb\"}";
	char *f, *data;
	json_t *o;
	size_t n;

	(void)state;
	f = gradeq_web_sse_frame("run.r.running", 13, body, strlen(body));
	assert_non_null(f);
	assert_true(strncmp(f, "event: gradeq\ndata: ", 20) == 0);
	n = strlen(f);
	assert_true(n > 22 && f[n - 1] == '\n' && f[n - 2] == '\n');
	/* one data line: no line break inside */
	data = strndup(f + 20, n - 22);
	assert_null(strchr(data, '\n'));
	o = json_loads(data, 0, NULL);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "routing_key")), "run.r.running");
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(o, "body"), "detail")), "a\nb");
	json_decref(o);
	free(data);
	free(f);
	/* a body that is no JSON is carried as a string */
	f = gradeq_web_sse_frame("job.dead", 8, "not\njson", 8);
	assert_non_null(f);
	assert_non_null(strstr(f, "\"body\":\"not\\njson\""));
	assert_int_equal(strchr(f + 20, '\n') - f, (long)strlen(f) - 2);
	free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_match),       cmocka_unit_test(test_listen),
		cmocka_unit_test(test_users_parse), cmocka_unit_test(test_users_platform),
		cmocka_unit_test(test_password),    cmocka_unit_test(test_csrf),
		cmocka_unit_test(test_sessions),    cmocka_unit_test(test_ratelimit),
		cmocka_unit_test(test_sse_frame),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
