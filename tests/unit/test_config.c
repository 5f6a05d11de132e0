/* Configuration: defaults, a full file, each kind of error with its file,
 * line and setting, environment overrides and password handling. Files are
 * written into a fresh temporary directory per test. */
#include <dirent.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "gradeq/config.h"
#include "gradeq/log.h"

struct fixture {
	char cwd[PATH_MAX]; /* restored by teardown: tests may chdir */
	char dir[64];
	char path[PATH_MAX];
	char err[512];
};

static void rm_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[PATH_MAX];

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		struct stat st;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
			rm_tree(p);
		else
			unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/gradeq-config-XXXXXX");
	if (!getcwd(f->cwd, sizeof(f->cwd)) || !mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	unsetenv("GRADEQ_AMQP_URL");
	unsetenv("GRADEQ_PG_DSN");
	unsetenv("GRADEQ_MGMT_URL");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (chdir(f->cwd) != 0)
		return -1;
	rm_tree(f->dir);
	free(f);
	unsetenv("GRADEQ_AMQP_URL");
	unsetenv("GRADEQ_PG_DSN");
	unsetenv("GRADEQ_MGMT_URL");
	return 0;
}

/* Writes 'text' to dir/name with 'mode'; f->path gets its path. */
static const char *write_file(struct fixture *f, const char *name, mode_t mode, const char *text)
{
	FILE *fp;

	snprintf(f->path, sizeof(f->path), "%s/%s", f->dir, name);
	fp = fopen(f->path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	assert_int_equal(chmod(f->path, mode), 0);
	return f->path;
}

/* Loads 'text' and expects GRADEQ_ERR_CONFIG with "<path>:<line>:" and
 * 'substr' in the message. */
static void expect_error(struct fixture *f, const char *text, int line, const char *substr)
{
	struct gradeq_config *cfg = (struct gradeq_config *)1;
	char where[PATH_MAX + 16];
	int ret;

	write_file(f, "bad.conf", 0600, text);
	ret = gradeq_config_load(f->path, &cfg, f->err, sizeof(f->err));
	snprintf(where, sizeof(where), "%s:%d: ", f->path, line);
	if (ret != GRADEQ_ERR_CONFIG || !strstr(f->err, where) || !strstr(f->err, substr))
		print_error("got %d '%s', want '%s' and '%s'\n", ret, f->err, where, substr);
	assert_int_equal(ret, GRADEQ_ERR_CONFIG);
	assert_null(cfg);
	assert_non_null(strstr(f->err, where));
	assert_non_null(strstr(f->err, substr));
	assert_string_equal(gradeq_errmsg(GRADEQ_ERR_CONFIG), f->err);
}

static void assert_defaults(const struct gradeq_config *c)
{
	assert_string_equal(c->amqp_url, "amqp://guest:guest@127.0.0.1:5672");
	assert_null(c->amqp_password_file);
	assert_string_equal(c->pg_dsn, "");
	assert_null(c->release);
	assert_int_equal(c->heartbeat, 60);
	assert_int_equal(c->prefetch, 1);
	assert_int_equal(c->batch_size, 100);
	assert_int_equal(c->confirm_window, 256);
	assert_int_equal(c->delivery_limit, 5);
	assert_int_equal(c->nretry_tiers, 3);
	assert_int_equal(c->retry_tiers[0], 5);
	assert_int_equal(c->retry_tiers[1], 30);
	assert_int_equal(c->retry_tiers[2], 300);
	assert_int_equal(c->quorum_group_size, 3);
	assert_string_equal(c->queue_leader_locator, "balanced");
	assert_int_equal(c->course_cache, 16);
	assert_int_equal(c->statement_timeout_ms, 300000);
	assert_true(c->job_events);
	assert_int_equal(c->retention_days, 90);
	assert_string_equal(c->log_level, "info");
	assert_string_equal(c->log_file, "");
}

static void test_defaults(void **state)
{
	struct gradeq_config *c = gradeq_config_defaults();

	(void)state;
	assert_non_null(c);
	assert_defaults(c);
	assert_null(c->path);
	gradeq_config_free(c);
	gradeq_config_free(NULL);
}

/* Without -c: conf/gradeq.conf under the working directory when it is
 * there, else the defaults. */
static void test_null_path(void **state)
{
	struct fixture *f = *state;
	struct gradeq_config *c = NULL;
	char cwd[PATH_MAX], sub[PATH_MAX];

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(f->dir), 0);
	assert_int_equal(gradeq_config_load(NULL, &c, f->err, sizeof(f->err)), 0);
	assert_defaults(c);
	assert_null(c->path);
	gradeq_config_free(c);

	snprintf(sub, sizeof(sub), "%s/conf", f->dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	write_file(f, "conf/gradeq.conf", 0600, "prefetch = 7;\n");
	assert_int_equal(gradeq_config_load(NULL, &c, f->err, sizeof(f->err)), 0);
	assert_int_equal(c->prefetch, 7);
	assert_string_equal(c->path, GRADEQ_DEFAULT_CONF);
	gradeq_config_free(c);
	assert_int_equal(chdir(cwd), 0);
}

/* The shipped example documents every setting at its default. */
static void test_shipped_example(void **state)
{
	static const char *names[] = {
		"amqp_url",         "amqp_password_file", "pg_dsn",
		"release",          "heartbeat",          "prefetch",
		"batch_size",       "confirm_window",     "delivery_limit",
		"retry_tiers",      "course_cache",       "statement_timeout_ms",
		"job_events",       "retention_days",     "log_level",
		"log_file",         "quorum_group_size",  "queue_leader_locator",
		"reconnect_max_ms", "management_url",
	};
	struct fixture *f = *state;
	struct gradeq_config *c = NULL;
	const char *data = getenv("GRADEQ_TEST_DATA");
	char path[PATH_MAX], text[16384], key[64], *tail;
	size_t n;
	FILE *fp;

	if (!data)
		skip();
	/* GRADEQ_TEST_DATA is <source>/tests/data, which may not exist yet */
	snprintf(path, sizeof(path), "%s", data);
	tail = strstr(path, "/tests/data");
	assert_non_null(tail);
	snprintf(tail, sizeof(path) - (size_t)(tail - path), "/conf/gradeq.conf");
	assert_int_equal(gradeq_config_load(path, &c, f->err, sizeof(f->err)), 0);
	assert_defaults(c);
	gradeq_config_free(c);

	fp = fopen(path, "r");
	assert_non_null(fp);
	n = fread(text, 1, sizeof(text) - 1, fp);
	fclose(fp);
	text[n] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(key, sizeof(key), "\n%s = ", names[i]);
		if (!strstr(text, key)) {
			snprintf(key, sizeof(key), "\n#%s = ", names[i]);
			if (!strstr(text, key))
				fail_msg("conf/gradeq.conf does not show '%s'", names[i]);
		}
	}
}

static void test_full_file(void **state)
{
	struct fixture *f = *state;
	struct gradeq_config *c = NULL;

	assert_int_equal(chdir(f->dir), 0);
	write_file(f, "amqp.pw", 0600, "pw\n");
	write_file(f, "full.conf", 0600,
		   "# every setting\n"
		   "amqp_url = \"amqps://gq@rabbit:5671/grades\";\n"
		   "amqp_password_file = \"amqp.pw\";\n"
		   "pg_dsn = \"host=db dbname=lms\";\n"
		   "release = \"2026.11\";\n"
		   "heartbeat = 0;\n"
		   "prefetch = 65535;\n"
		   "batch_size = 500;\n"
		   "confirm_window = 1;\n"
		   "delivery_limit = 10;\n"
		   "retry_tiers = (1, 10, 100, 1000, 86400);\n"
		   "course_cache = 4;\n"
		   "statement_timeout_ms = 0;\n"
		   "job_events = false;\n"
		   "retention_days = 30;\n"
		   "log_level = \"debug\";\n"
		   "log_file = \"/var/log/gradeq.log\";\n");
	assert_int_equal(gradeq_config_load(f->path, &c, f->err, sizeof(f->err)), 0);
	assert_string_equal(c->path, f->path);
	assert_string_equal(c->amqp_url, "amqps://gq@rabbit:5671/grades");
	assert_string_equal(c->amqp_password_file, "amqp.pw");
	assert_string_equal(c->pg_dsn, "host=db dbname=lms");
	assert_string_equal(c->release, "2026.11");
	assert_int_equal(c->heartbeat, 0);
	assert_int_equal(c->prefetch, 65535);
	assert_int_equal(c->batch_size, 500);
	assert_int_equal(c->confirm_window, 1);
	assert_int_equal(c->delivery_limit, 10);
	assert_int_equal(c->nretry_tiers, 5);
	assert_int_equal(c->retry_tiers[4], 86400);
	assert_int_equal(c->course_cache, 4);
	assert_int_equal(c->statement_timeout_ms, 0);
	assert_false(c->job_events);
	assert_int_equal(c->retention_days, 30);
	assert_string_equal(c->log_level, "debug");
	assert_string_equal(c->log_file, "/var/log/gradeq.log");
	gradeq_config_free(c);
}

static void test_syntax_error(void **state)
{
	struct fixture *f = *state;

	expect_error(f, "prefetch = 2;\n\nheartbeat = ;\n", 3, "syntax error");
	expect_error(f, "prefetch = 2;\nprefetch = 3;\n", 2, "duplicate");
}

static void test_wrong_type(void **state)
{
	struct fixture *f = *state;

	expect_error(f, "heartbeat = 10;\n# comment\nprefetch = \"ten\";\n", 3,
		     "'prefetch' must be an integer from 1 to 65535");
	expect_error(f, "prefetch = 1.5;\n", 1, "'prefetch' must be an integer");
	expect_error(f, "job_events = 1;\n", 1, "'job_events' must be true or false");
	expect_error(f, "log_file = 3;\n", 1, "'log_file' must be a string");
	expect_error(f, "retry_tiers = 5;\n", 1, "'retry_tiers' must be a list of integers");
}

static void test_out_of_range(void **state)
{
	struct fixture *f = *state;

	expect_error(f, "prefetch = 0;\n", 1, "'prefetch' must be an integer from 1 to 65535");
	expect_error(f, "\nheartbeat = 70000;\n", 2,
		     "'heartbeat' must be an integer from 0 to 65535");
	expect_error(f, "batch_size = 9999999999L;\n", 1, "'batch_size' must be an integer from 1");
	expect_error(f, "log_level = \"verbose\";\n", 1,
		     "'log_level' must be one of debug, info, warn, error");
	expect_error(f, "release = \"2026 11\";\n", 1, "'release' may contain only");
	expect_error(f, "amqp_url = \"http://x/\";\n", 1, "'amqp_url' must be a URL");
	expect_error(f, "amqp_password_file = \"/nonexistent/pw\";\n", 1,
		     "'amqp_password_file' names a file this user cannot read");
	expect_error(f, "amqp_password_file = \"/\";\n", 1,
		     "'amqp_password_file' names a directory, not a file");
}

static void test_unknown_setting(void **state)
{
	struct fixture *f = *state;

	expect_error(f, "prefetch = 2;\nprefech = 2;\n", 2,
		     "unknown setting 'prefech' (did you mean 'prefetch'?)");
	expect_error(f, "broker: { url = \"x\"; };\n", 1, "unknown setting 'broker'");
}

static void test_bad_retry_tiers(void **state)
{
	struct fixture *f = *state;

	expect_error(f, "retry_tiers = [];\n", 1,
		     "'retry_tiers' must have from 1 to 8 entries, not 0");
	expect_error(f, "retry_tiers = [1, 2, 3, 4, 5, 6, 7, 8, 9];\n", 1,
		     "'retry_tiers' must have from 1 to 8 entries, not 9");
	expect_error(f, "retry_tiers = [5, 0];\n", 1,
		     "'retry_tiers' entry 2 must be from 1 to 86400");
	expect_error(f, "retry_tiers = [86401];\n", 1,
		     "'retry_tiers' entry 1 must be from 1 to 86400");
	expect_error(f, "retry_tiers = [30, 5];\n", 1, "'retry_tiers' must be ascending");
	expect_error(f, "retry_tiers = [5, 5];\n", 1, "'retry_tiers' must be ascending");
	expect_error(f, "retry_tiers = (5, \"30\");\n", 1,
		     "'retry_tiers' entry 2 must be an integer");
}

/* Placement settings: bounded group size, two leader locators, and an
 * empty locator that leaves the choice to the broker. */
static void test_placement(void **state)
{
	struct fixture *f = *state;
	struct gradeq_config *c = NULL;

	expect_error(f, "quorum_group_size = 0;\n", 1,
		     "'quorum_group_size' must be an integer from 1 to 7");
	expect_error(f, "quorum_group_size = 8;\n", 1,
		     "'quorum_group_size' must be an integer from 1 to 7");
	expect_error(f, "queue_leader_locator = \"least-leaders\";\n", 1,
		     "'queue_leader_locator' must be balanced or client-local");
	write_file(f, "p.conf", 0600,
		   "quorum_group_size = 5;\nqueue_leader_locator = \"client-local\";\n");
	assert_int_equal(gradeq_config_load(f->path, &c, f->err, sizeof(f->err)), 0);
	assert_int_equal(c->quorum_group_size, 5);
	assert_string_equal(c->queue_leader_locator, "client-local");
	gradeq_config_free(c);
	c = NULL;
	write_file(f, "p.conf", 0600, "queue_leader_locator = \"\";\n");
	assert_int_equal(gradeq_config_load(f->path, &c, f->err, sizeof(f->err)), 0);
	assert_null(c->queue_leader_locator);
	gradeq_config_free(c);
}

/* output_operators: empty by default, any order, 1..64 user ids; the
 * s3 backend's settings are accepted with output_backend = "s3". */
static void test_output_operators(void **state)
{
	struct fixture *f = *state;
	struct gradeq_config *c = NULL;

	assert_int_equal(gradeq_config_load(NULL, &c, f->err, sizeof(f->err)), 0);
	assert_int_equal(c->noutput_operators, 0);
	assert_string_equal(c->output_backend, "file");
	gradeq_config_free(c);
	write_file(f, "ops.conf", 0600,
		   "output_operators = [9100, 42];\noutput_backend = \"s3\";\n"
		   "s3_endpoint = \"http://127.0.0.1:9000\";\ns3_bucket = \"b\";\n");
	assert_int_equal(gradeq_config_load(f->path, &c, f->err, sizeof(f->err)), 0);
	assert_int_equal(c->noutput_operators, 2);
	assert_int_equal(c->output_operators[0], 9100);
	assert_int_equal(c->output_operators[1], 42);
	assert_string_equal(c->output_backend, "s3");
	assert_string_equal(c->s3_region, "us-east-1");
	assert_int_equal(c->s3_link_ttl_s, 300);
	gradeq_config_free(c);
	write_file(f, "ops.conf", 0600, "output_operators = [];\n");
	assert_int_equal(gradeq_config_load(f->path, &c, f->err, sizeof(f->err)), 0);
	assert_int_equal(c->noutput_operators, 0);
	gradeq_config_free(c);
	expect_error(f, "output_operators = [0];\n", 1,
		     "'output_operators' entry 1 must be from 1 to 2147483647");
	expect_error(f, "output_operators = [\"alice\"];\n", 1,
		     "'output_operators' entry 1 must be an integer");
	expect_error(f, "output_backend = \"ftp\";\n", 1, "must be file or s3");
}

static void test_missing_file(void **state)
{
	struct fixture *f = *state;
	struct gradeq_config *c = (struct gradeq_config *)1;
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/nope.conf", f->dir);
	assert_int_equal(gradeq_config_load(path, &c, f->err, sizeof(f->err)), GRADEQ_ERR_CONFIG);
	assert_null(c);
	assert_non_null(strstr(f->err, path));
	assert_non_null(strstr(f->err, "No such file"));

	assert_int_equal(gradeq_config_load(f->dir, &c, f->err, sizeof(f->err)), GRADEQ_ERR_CONFIG);
	assert_non_null(strstr(f->err, "not a regular file"));
}

static void test_include_relative(void **state)
{
	struct fixture *f = *state;
	struct gradeq_config *c = NULL;
	char inc[PATH_MAX + 32];

	write_file(f, "local.conf", 0600, "prefetch = 9;\n");
	write_file(f, "main.conf", 0600, "heartbeat = 5;\n@include \"local.conf\"\n");
	assert_int_equal(gradeq_config_load(f->path, &c, f->err, sizeof(f->err)), 0);
	assert_int_equal(c->prefetch, 9);
	assert_int_equal(c->heartbeat, 5);
	gradeq_config_free(c);

	/* an error in the included file names that file */
	write_file(f, "local.conf", 0600, "\nprefetch = 0;\n");
	write_file(f, "main.conf", 0600, "@include \"local.conf\"\n");
	assert_int_equal(gradeq_config_load(f->path, &c, f->err, sizeof(f->err)),
			 GRADEQ_ERR_CONFIG);
	snprintf(inc, sizeof(inc), "local.conf:2: 'prefetch'");
	assert_non_null(strstr(f->err, inc));
}

static void test_env_overrides(void **state)
{
	struct fixture *f = *state;
	struct gradeq_config *c = NULL;

	write_file(f, "env.conf", 0600,
		   "amqp_url = \"amqp://file@h1/\";\npg_dsn = \"host=file\";\nprefetch = 3;\n");
	setenv("GRADEQ_AMQP_URL", "amqp://env@h2:5673/v", 1);
	setenv("GRADEQ_PG_DSN", "host=env dbname=lms", 1);
	assert_int_equal(gradeq_config_load(f->path, &c, f->err, sizeof(f->err)), 0);
	assert_string_equal(c->amqp_url, "amqp://env@h2:5673/v");
	assert_string_equal(c->pg_dsn, "host=env dbname=lms");
	assert_int_equal(c->prefetch, 3);
	gradeq_config_free(c);

	setenv("GRADEQ_AMQP_URL", "rabbit:5672", 1);
	assert_int_equal(gradeq_config_load(f->path, &c, f->err, sizeof(f->err)),
			 GRADEQ_ERR_CONFIG);
	assert_non_null(strstr(f->err, "GRADEQ_AMQP_URL"));
	assert_null(c);
}

static void test_mask(void **state)
{
	char buf[256], small[16];

	(void)state;
	assert_string_equal(gradeq_config_mask("amqp://gq:s3cret@rabbit:5672/v", buf, sizeof(buf)),
			    "amqp://gq:****@rabbit:5672/v");
	assert_string_equal(gradeq_config_mask("amqp://gq:p@ss/w@rabbit/", buf, sizeof(buf)),
			    "amqp://gq:****@rabbit/");
	assert_string_equal(gradeq_config_mask("amqp://gq@rabbit/", buf, sizeof(buf)),
			    "amqp://gq@rabbit/");
	assert_string_equal(gradeq_config_mask("amqp://rabbit:5672/", buf, sizeof(buf)),
			    "amqp://rabbit:5672/");
	assert_string_equal(gradeq_config_mask("postgresql://u:pw@db/lms", buf, sizeof(buf)),
			    "postgresql://u:****@db/lms");
	/* URI-form DSNs may carry the password as a query parameter */
	assert_string_equal(
		gradeq_config_mask("postgresql://u:pw@h/db?password=s3cret&sslmode=require", buf,
				   sizeof(buf)),
		"postgresql://u:****@h/db?password=****&sslmode=require");
	assert_string_equal(
		gradeq_config_mask("postgresql://u@h/db?sslmode=require&password=s3cret", buf,
				   sizeof(buf)),
		"postgresql://u@h/db?sslmode=require&password=****");
	assert_string_equal(
		gradeq_config_mask("postgresql://h/db?password=s3cret", buf, sizeof(buf)),
		"postgresql://h/db?password=****");
	/* an '@' in the query: masked too much rather than too little */
	assert_null(strstr(
		gradeq_config_mask("postgresql://h/db?password=se@cret", buf, sizeof(buf)), "se"));
	assert_null(strstr(
		gradeq_config_mask("postgresql://u:pw@h/db?password=se@cret", buf, sizeof(buf)),
		"se"));
	assert_string_equal(gradeq_config_mask("postgresql://h/db?passwordx=1", buf, sizeof(buf)),
			    "postgresql://h/db?passwordx=1");
	assert_string_equal(
		gradeq_config_mask("host=db password=s3cret dbname=lms", buf, sizeof(buf)),
		"host=db password=**** dbname=lms");
	assert_string_equal(gradeq_config_mask("password = 'a b\\' c' user=x", buf, sizeof(buf)),
			    "password = **** user=x");
	assert_string_equal(gradeq_config_mask("host=db passwordx=1", buf, sizeof(buf)),
			    "host=db passwordx=1");
	assert_string_equal(gradeq_config_mask("host=db password", buf, sizeof(buf)),
			    "host=db password");
	assert_string_equal(gradeq_config_mask("host=db password secret", buf, sizeof(buf)),
			    "host=db password ****");
	assert_string_equal(gradeq_config_mask("", buf, sizeof(buf)), "");
	assert_string_equal(gradeq_config_mask(NULL, buf, sizeof(buf)), "");
	gradeq_config_mask("amqp://user:longpassword@host/", small, sizeof(small));
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_null(strstr(small, "long"));
}

static void test_password_file(void **state)
{
	struct fixture *f = *state;
	struct gradeq_config *c = gradeq_config_defaults();
	char *url = NULL;

	assert_non_null(c);
	write_file(f, "amqp.pw", 0600, "s3cr@t/x y\nsecond line\n");
	free(c->amqp_password_file);
	c->amqp_password_file = strdup(f->path);
	free(c->amqp_url);
	c->amqp_url = strdup("amqp://bob:old@rabbit:5672/grades");
	assert_int_equal(gradeq_config_amqp_url(c, &url), 0);
	assert_string_equal(url, "amqp://bob:s3cr%40t%2Fx%20y@rabbit:5672/grades");
	free(url);

	free(c->amqp_url);
	c->amqp_url = strdup("amqp://rabbit/");
	assert_int_equal(gradeq_config_amqp_url(c, &url), 0);
	assert_string_equal(url, "amqp://guest:s3cr%40t%2Fx%20y@rabbit/");
	free(url);

	write_file(f, "empty.pw", 0600, "\n");
	free(c->amqp_password_file);
	c->amqp_password_file = strdup(f->path);
	assert_int_equal(gradeq_config_amqp_url(c, &url), GRADEQ_ERR_IO);
	assert_null(url);
	assert_non_null(strstr(gradeq_errmsg(GRADEQ_ERR_IO), "has an empty first line"));

	/* the real problem named: no bytes at all, a directory, a binary file */
	write_file(f, "none.pw", 0600, "");
	free(c->amqp_password_file);
	c->amqp_password_file = strdup(f->path);
	assert_int_equal(gradeq_config_amqp_url(c, &url), GRADEQ_ERR_IO);
	assert_non_null(strstr(gradeq_errmsg(GRADEQ_ERR_IO), "is empty"));
	free(c->amqp_password_file);
	c->amqp_password_file = strdup(f->dir);
	assert_int_equal(gradeq_config_amqp_url(c, &url), GRADEQ_ERR_IO);
	assert_non_null(strstr(gradeq_errmsg(GRADEQ_ERR_IO), "is a directory, not a file"));
	write_file(f, "bin.pw", 0600,
		   "\x7f"
		   "ELF\x02\x01\x01\n");
	free(c->amqp_password_file);
	c->amqp_password_file = strdup(f->path);
	assert_int_equal(gradeq_config_amqp_url(c, &url), GRADEQ_ERR_IO);
	assert_non_null(strstr(gradeq_errmsg(GRADEQ_ERR_IO), "is it a binary file?"));
	assert_null(url);

	free(c->amqp_password_file);
	c->amqp_password_file = strdup("/nonexistent/gradeq.pw");
	assert_int_equal(gradeq_config_amqp_url(c, &url), GRADEQ_ERR_IO);
	assert_non_null(strstr(gradeq_errmsg(GRADEQ_ERR_IO), "/nonexistent/gradeq.pw"));

	free(c->amqp_password_file);
	c->amqp_password_file = NULL;
	assert_int_equal(gradeq_config_amqp_url(c, &url), 0);
	assert_string_equal(url, "amqp://rabbit/");
	free(url);
	gradeq_config_free(c);
}

static bool log_has(const char *path, const char *s)
{
	char text[4096];
	size_t n;
	FILE *fp = fopen(path, "r");

	if (!fp)
		return false;
	n = fread(text, 1, sizeof(text) - 1, fp);
	fclose(fp);
	text[n] = '\0';
	return strstr(text, s) != NULL;
}

static void test_world_readable_warning(void **state)
{
	struct fixture *f = *state;
	struct gradeq_config *c = NULL;
	char log[PATH_MAX];

	snprintf(log, sizeof(log), "%s/test.log", f->dir);
	assert_int_equal(gradeq_log_init("test_config", GRADEQ_LOG_INFO, log), 0);

	write_file(f, "open.conf", 0644, "pg_dsn = \"host=db password=x\";\n");
	assert_int_equal(gradeq_config_load(f->path, &c, f->err, sizeof(f->err)), 0);
	gradeq_config_free(c);
	assert_true(log_has(log, "level=warn"));
	assert_true(log_has(log, "open.conf"));

	write_file(f, "closed.conf", 0600, "pg_dsn = \"host=db password=x\";\n");
	assert_int_equal(gradeq_config_load(f->path, &c, f->err, sizeof(f->err)), 0);
	gradeq_config_free(c);
	/* the default URL's guest:guest is not the file's password */
	write_file(f, "nopw.conf", 0644, "amqp_url = \"amqp://rabbit/\";\nprefetch = 2;\n");
	assert_int_equal(gradeq_config_load(f->path, &c, f->err, sizeof(f->err)), 0);
	gradeq_config_free(c);
	assert_false(log_has(log, "closed.conf"));
	assert_false(log_has(log, "nopw.conf"));
	assert_int_equal(gradeq_log_init("test_config", GRADEQ_LOG_INFO, NULL), 0);
}

static void test_url_lists(void **state)
{
	struct fixture *f = *state;
	struct gradeq_config *c = NULL;
	char *text = NULL, *url = NULL;
	size_t len = 0;
	FILE *out;

	/* a libconfig list, one entry per node */
	write_file(f, "list.conf", 0600,
		   "amqp_url = [\"amqp://gq:s3cret@n1:5672/grades\", "
		   "\"amqp://gq:s3cret@n2:5672/grades\"];\n"
		   "management_url = [\"http://n1:15672/\", \"http://n2:15672/\"];\n");
	assert_int_equal(gradeq_config_load(f->path, &c, f->err, sizeof(f->err)), 0);
	assert_string_equal(c->amqp_url,
			    "amqp://gq:s3cret@n1:5672/grades, amqp://gq:s3cret@n2:5672/grades");
	assert_string_equal(c->management_url, "http://n1:15672/, http://n2:15672/");
	assert_int_equal(c->reconnect_max_ms, 5000);
	/* check-config's view: a list, every password masked */
	out = open_memstream(&text, &len);
	assert_non_null(out);
	gradeq_config_print(c, out);
	fclose(out);
	assert_non_null(strstr(text, "amqp_url = [\"amqp://gq:****@n1:5672/grades\", "
				     "\"amqp://gq:****@n2:5672/grades\"];"));
	assert_non_null(strstr(text, "management_url = [\"http://n1:15672/\", "
				     "\"http://n2:15672/\"];"));
	assert_null(strstr(text, "s3cret"));
	free(text);
	gradeq_config_free(c);

	/* a single string as before */
	write_file(f, "one.conf", 0600, "amqp_url = \"amqp://gq:s3cret@n1/grades\";\n");
	assert_int_equal(gradeq_config_load(f->path, &c, f->err, sizeof(f->err)), 0);
	assert_string_equal(c->amqp_url, "amqp://gq:s3cret@n1/grades");
	gradeq_config_free(c);

	/* comma-separated in the environment */
	setenv("GRADEQ_AMQP_URL", "amqp://gq@h1:5673/v,amqp://gq@h2:5673/v", 1);
	assert_int_equal(gradeq_config_load(f->path, &c, f->err, sizeof(f->err)), 0);
	assert_string_equal(c->amqp_url, "amqp://gq@h1:5673/v,amqp://gq@h2:5673/v");
	gradeq_config_free(c);
	setenv("GRADEQ_AMQP_URL", "amqp://gq@h1:5673/v,amqp://bob@h2:5673/v", 1);
	assert_int_equal(gradeq_config_load(f->path, &c, f->err, sizeof(f->err)),
			 GRADEQ_ERR_CONFIG);
	assert_non_null(strstr(f->err, "GRADEQ_AMQP_URL"));
	assert_non_null(strstr(f->err, "the same user"));
	unsetenv("GRADEQ_AMQP_URL");

	/* the password file's password goes into every entry */
	write_file(f, "amqp.pw", 0600, "p,w\n");
	c = gradeq_config_defaults();
	assert_non_null(c);
	c->amqp_password_file = strdup(f->path);
	free(c->amqp_url);
	c->amqp_url = strdup("amqp://gq@n1/v, amqp://gq:old@n2:5673/v");
	assert_int_equal(gradeq_config_amqp_url(c, &url), 0);
	assert_string_equal(url, "amqp://gq:p%2Cw@n1/v,amqp://gq:p%2Cw@n2:5673/v");
	free(url);
	gradeq_config_free(c);
}

static void test_url_list_errors(void **state)
{
	struct fixture *f = *state;

	expect_error(f, "amqp_url = [\"amqp://gq@n1/a\", \"amqp://gq@n2/b\"];\n", 1,
		     "'amqp_url' entry 2 names vhost 'b' but entry 1 'a'");
	expect_error(f, "\namqp_url = [\"amqp://gq@n1/a\", \"amqp://bob@n2/a\"];\n", 2,
		     "'amqp_url' entry 2 logs in as 'bob' but entry 1 as 'gq'");
	expect_error(f, "amqp_url = [\"amqp://n1/\", \"n2:5672\"];\n", 1,
		     "'amqp_url' entry 2 must be a URL starting with amqp://");
	expect_error(f, "amqp_url = (\"amqp://n1/\", 5672);\n", 1,
		     "'amqp_url' entry 2 must be a string");
	expect_error(f, "amqp_url = [\"amqp://a:x,y@n1/\"];\n", 1, "percent-encode it");
	expect_error(f, "amqp_url = [];\n", 1, "'amqp_url' is an empty list");
	expect_error(f, "amqp_url = 5;\n", 1, "a string in double quotes or a list of them");
	expect_error(f, "management_url = [\"http://n1/\", \"ftp://n2/\"];\n", 1,
		     "'management_url' entry 2 must be a URL starting with http://");
	expect_error(f, "management_url = [\"http://n1/\", \"http://u:p@n2/\"];\n", 1,
		     "'management_url' entry 2 must not hold credentials");
	expect_error(f, "reconnect_max_ms = 10;\n", 1,
		     "'reconnect_max_ms' must be an integer from 100 to 600000");
	/* a list only where a list is meant */
	expect_error(f, "pg_dsn = [\"host=a\"];\n", 1,
		     "'pg_dsn' must be a string in double quotes");
}

static void test_reload(void **state)
{
	struct gradeq_config *a = gradeq_config_defaults(), *b = gradeq_config_defaults();
	char applied[256], restart[256];

	(void)state;
	assert_int_equal(
		gradeq_config_reload(a, b, applied, sizeof(applied), restart, sizeof(restart)), 0);
	assert_string_equal(applied, "");
	assert_string_equal(restart, "");
	b->retention_days = 7;
	b->job_events = false;
	b->statement_timeout_ms = 1000;
	free(b->log_level);
	b->log_level = strdup("debug");
	b->retry_tiers[1] = 31;
	b->release = strdup("2026.11");
	b->reconnect_max_ms = 2000;
	assert_int_equal(
		gradeq_config_reload(a, b, applied, sizeof(applied), restart, sizeof(restart)), 5);
	assert_string_equal(applied, "reconnect_max_ms,statement_timeout_ms,job_events,"
				     "retention_days,log_level");
	assert_int_equal(a->reconnect_max_ms, 2000);
	assert_string_equal(restart, "release,retry_tiers");
	/* the reloadable ones moved, the others kept */
	assert_int_equal(a->retention_days, 7);
	assert_false(a->job_events);
	assert_int_equal(a->statement_timeout_ms, 1000);
	assert_string_equal(a->log_level, "debug");
	assert_string_equal(b->log_level, "info");
	assert_int_equal(a->retry_tiers[1], 30);
	assert_null(a->release);
	gradeq_config_free(a);
	gradeq_config_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test_setup_teardown(test_null_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shipped_example, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_syntax_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_type, setup, teardown),
		cmocka_unit_test_setup_teardown(test_out_of_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_setting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_retry_tiers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_placement, setup, teardown),
		cmocka_unit_test_setup_teardown(test_output_operators, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_include_relative, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env_overrides, setup, teardown),
		cmocka_unit_test(test_mask),
		cmocka_unit_test_setup_teardown(test_password_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_world_readable_warning, setup, teardown),
		cmocka_unit_test_setup_teardown(test_url_lists, setup, teardown),
		cmocka_unit_test_setup_teardown(test_url_list_errors, setup, teardown),
		cmocka_unit_test(test_reload),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
