/* Management API reader: GET /api/queues/VHOST?columns=... once, keep a
 * name -> unacked map. */
#include "gradeq/mgmt.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <amqp.h>

/* A vhost of many releases lists a few hundred queues; this bounds a
 * confused or hostile server, not a real answer. */
#define MAX_BODY (32u << 20)

struct gradeq_mgmt {
	json_t *unacked; /* object: queue name -> integer */
};

int gradeq_mgmt_parse(const char *json, size_t len, struct gradeq_mgmt **out)
{
	json_error_t jerr;
	json_t *root, *map;
	struct gradeq_mgmt *m;
	size_t i;
	json_t *q;

	*out = NULL;
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return gradeq_error(GRADEQ_ERR_DECODE,
				    "management API: not JSON (line %d column %d: %s)", jerr.line,
				    jerr.column, jerr.text);
	if (!json_is_array(root)) {
		const char *what = json_is_object(root) ? "object" : "scalar";

		json_decref(root);
		return gradeq_error(GRADEQ_ERR_DECODE,
				    "management API: expected a list of queues, got a JSON %s",
				    what);
	}
	map = json_object();
	m = calloc(1, sizeof(*m));
	if (!map || !m)
		goto nomem;
	json_array_foreach(root, i, q)
	{
		json_t *name = json_object_get(q, "name");
		json_t *n = json_object_get(q, "messages_unacknowledged");

		if (!json_is_string(name) || !json_is_integer(n) || json_integer_value(n) < 0)
			continue;
		if (json_object_set_new(map, json_string_value(name),
					json_integer(json_integer_value(n))))
			goto nomem;
	}
	json_decref(root);
	m->unacked = map;
	*out = m;
	return 0;
nomem:
	json_decref(map);
	json_decref(root);
	free(m);
	return gradeq_error(GRADEQ_ERR_NOMEM, "out of memory");
}

struct body {
	char *buf;
	size_t len;
	bool too_big;
};

static size_t on_data(char *data, size_t size, size_t nmemb, void *arg)
{
	struct body *b = arg;
	size_t n = size * nmemb;
	char *p;

	if (b->len + n > MAX_BODY) {
		b->too_big = true;
		return 0;
	}
	p = realloc(b->buf, b->len + n + 1);
	if (!p)
		return 0;
	memcpy(p + b->len, data, n);
	b->buf = p;
	b->len += n;
	b->buf[b->len] = '\0';
	return n;
}

/* GETs base_url/api/<before>VHOST<after> as amqp_url's user; *out the
 * body (malloc'd) on HTTP 200. */
static int mgmt_get(const char *base_url, const char *amqp_url, const char *cacert, int timeout_ms,
		    const char *before, const char *after, char **out)
{
	struct amqp_connection_info ci;
	struct body body = {NULL, 0, false};
	char *copy = NULL, *vhost = NULL, *url = NULL, errbuf[CURL_ERROR_SIZE] = "";
	size_t ulen;
	CURL *curl = NULL;
	CURLcode cc;
	long status = 0;
	size_t blen;
	int rc;

	*out = NULL;
	copy = strdup(amqp_url);
	if (!copy)
		return gradeq_error(GRADEQ_ERR_NOMEM, "out of memory");
	amqp_default_connection_info(&ci);
	if (amqp_parse_url(copy, &ci) != AMQP_STATUS_OK) {
		rc = gradeq_error(GRADEQ_ERR_CONFIG, "amqp_url is not a URL");
		goto out;
	}
	curl = curl_easy_init();
	if (!curl) {
		rc = gradeq_error(GRADEQ_ERR_NOMEM, "cannot start an HTTP client");
		goto out;
	}
	vhost = curl_easy_escape(curl, ci.vhost, 0);
	blen = strlen(base_url);
	ulen = blen + (vhost ? strlen(vhost) : 0) + strlen(before) + strlen(after) + 16;
	url = malloc(ulen);
	if (!vhost || !url) {
		rc = gradeq_error(GRADEQ_ERR_NOMEM, "out of memory");
		goto out;
	}
	snprintf(url, ulen, "%.*s/api/%s%s%s",
		 (int)(blen && base_url[blen - 1] == '/' ? blen - 1 : blen), base_url, before,
		 vhost, after);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
	curl_easy_setopt(curl, CURLOPT_USERNAME, ci.user);
	curl_easy_setopt(curl, CURLOPT_PASSWORD, ci.password);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "gradeq/" GRADEQ_VERSION);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	if (cacert)
		curl_easy_setopt(curl, CURLOPT_CAINFO, cacert);
	cc = curl_easy_perform(curl);
	if (cc != CURLE_OK) {
		rc = gradeq_error(body.too_big ? GRADEQ_ERR_DECODE : GRADEQ_ERR_BROKER,
				  "management API %s: %s", base_url,
				  body.too_big ? "answer larger than 32 MiB"
				  : *errbuf    ? errbuf
					       : curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	if (status == 401 || status == 403) {
		rc = gradeq_error(GRADEQ_ERR_ACCESS,
				  "management API %s refused user '%s' (HTTP %ld): it needs the"
				  " 'monitoring' or 'management' tag",
				  base_url, ci.user, status);
		goto out;
	}
	if (status != 200) {
		rc = gradeq_error(GRADEQ_ERR_BROKER, "management API %s answered HTTP %ld",
				  base_url, status);
		goto out;
	}
	*out = body.buf ? body.buf : strdup("");
	body.buf = NULL;
	rc = *out ? 0 : gradeq_error(GRADEQ_ERR_NOMEM, "out of memory");
out:
	if (vhost)
		curl_free(vhost);
	curl_easy_cleanup(curl);
	free(url);
	free(body.buf);
	if (copy) {
		explicit_bzero(copy, strlen(amqp_url));
		free(copy);
	}
	return rc;
}

int gradeq_mgmt_fetch(const char *base_url, const char *amqp_url, const char *cacert,
		      int timeout_ms, struct gradeq_mgmt **out)
{
	char *body = NULL;
	int rc = mgmt_get(base_url, amqp_url, cacert, timeout_ms, "queues/",
			  "?columns=name,messages_unacknowledged", &body);

	*out = NULL;
	if (!rc)
		rc = gradeq_mgmt_parse(body, strlen(body), out);
	free(body);
	return rc;
}

int gradeq_mgmt_connections(const char *base_url, const char *amqp_url, const char *cacert,
			    int timeout_ms, char **out)
{
	return mgmt_get(base_url, amqp_url, cacert, timeout_ms, "vhosts/",
			"/connections?columns=name,user_provided_name,connected_at,"
			"client_properties",
			out);
}

int64_t gradeq_mgmt_unacked(const struct gradeq_mgmt *m, const char *queue)
{
	json_t *n;

	if (!m)
		return -1;
	n = json_object_get(m->unacked, queue);
	return json_is_integer(n) ? (int64_t)json_integer_value(n) : -1;
}

size_t gradeq_mgmt_count(const struct gradeq_mgmt *m)
{
	return m ? json_object_size(m->unacked) : 0;
}

void gradeq_mgmt_free(struct gradeq_mgmt *m)
{
	if (!m)
		return;
	json_decref(m->unacked);
	free(m);
}
