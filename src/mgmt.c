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
	json_t *placed;  /* object: queue name -> {"leader": s, "members": [s...]} */
};

/* The placement of one queue entry: a quorum queue's "leader" and
 * "members", a classic queue's "node" (its only member). NULL when the
 * entry says neither. */
static json_t *placement_of(json_t *q)
{
	json_t *leader = json_object_get(q, "leader"), *members = json_object_get(q, "members");
	json_t *node = json_object_get(q, "node"), *list;
	size_t i;
	json_t *v;

	if (!json_is_string(leader))
		leader = json_is_string(node) ? node : NULL;
	list = json_array();
	if (!list)
		return NULL;
	if (json_is_array(members)) {
		json_array_foreach(members, i, v)
		{
			if (json_is_string(v))
				json_array_append(list, v);
		}
	} else if (json_is_string(node)) {
		json_array_append(list, node);
	}
	if (!leader && json_array_size(list) == 0) {
		json_decref(list);
		return NULL;
	}
	return json_pack("{s:s,s:o}", "leader", leader ? json_string_value(leader) : "", "members",
			 list);
}

int gradeq_mgmt_parse(const char *json, size_t len, struct gradeq_mgmt **out)
{
	json_error_t jerr;
	json_t *root, *map, *placed;
	struct gradeq_mgmt *m;
	size_t i;
	json_t *q;

	*out = NULL;
	/* Duplicate keys are not refused: RabbitMQ 3.10 listed a quorum queue's
	 * "members" twice just after rabbitmq-queues add_member (the last one
	 * wins) */
	root = json_loadb(json, len, 0, &jerr);
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
	placed = json_object();
	m = calloc(1, sizeof(*m));
	if (!map || !placed || !m)
		goto nomem;
	json_array_foreach(root, i, q)
	{
		json_t *name = json_object_get(q, "name");
		json_t *n = json_object_get(q, "messages_unacknowledged"), *p;

		if (!json_is_string(name))
			continue;
		p = placement_of(q);
		if (p && json_object_set_new(placed, json_string_value(name), p))
			goto nomem;
		if (!json_is_integer(n) || json_integer_value(n) < 0)
			continue;
		if (json_object_set_new(map, json_string_value(name),
					json_integer(json_integer_value(n))))
			goto nomem;
	}
	json_decref(root);
	m->unacked = map;
	m->placed = placed;
	*out = m;
	return 0;
nomem:
	json_decref(map);
	json_decref(placed);
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

/* GET base_url + path (path starts with "api/"; "%s" in it becomes the
 * percent-encoded vhost of amqp_url) as amqp_url's user; the body (NUL
 * terminated, malloc'd) into *out on HTTP 200. */
static int http_get(const char *base_url, const char *amqp_url, const char *cacert, int timeout_ms,
		    const char *path, char **out, size_t *outlen)
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
	*outlen = 0;
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
	ulen = blen + (vhost ? strlen(vhost) : 0) + strlen(path) + 2;
	url = malloc(ulen);
	if (!vhost || !url) {
		rc = gradeq_error(GRADEQ_ERR_NOMEM, "out of memory");
		goto out;
	}
	{
		int n = snprintf(url, ulen, "%.*s/",
				 (int)(blen && base_url[blen - 1] == '/' ? blen - 1 : blen),
				 base_url);
		const char *v = strstr(path, "%s");

		if (v)
			snprintf(url + n, ulen - (size_t)n, "%.*s%s%s", (int)(v - path), path,
				 vhost, v + 2);
		else
			snprintf(url + n, ulen - (size_t)n, "%s", path);
	}
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
	*out = body.buf;
	*outlen = body.len;
	body.buf = NULL;
	rc = 0;
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
	char *body;
	size_t len;
	int rc;

	*out = NULL;
	rc = http_get(base_url, amqp_url, cacert, timeout_ms,
		      "api/queues/%s?columns=name,messages_unacknowledged,leader,members,node",
		      &body, &len);
	if (rc)
		return rc;
	rc = gradeq_mgmt_parse(body ? body : "", len, out);
	free(body);
	return rc;
}

int gradeq_mgmt_connections(const char *base_url, const char *amqp_url, const char *cacert,
			    int timeout_ms, char **out)
{
	size_t len;
	int rc = http_get(base_url, amqp_url, cacert, timeout_ms,
			  "api/vhosts/%s/connections?columns=name,user_provided_name,connected_at,"
			  "client_properties",
			  out, &len);

	if (!rc && !*out) {
		*out = strdup("");
		if (!*out)
			rc = gradeq_error(GRADEQ_ERR_NOMEM, "out of memory");
	}
	return rc;
}

int gradeq_mgmt_parse_nodes(const char *json, size_t len, char ***names, size_t *n)
{
	json_t *root = json_loadb(json, len, 0, NULL), *v;
	size_t i;

	*names = NULL;
	*n = 0;
	if (!json_is_array(root)) {
		json_decref(root);
		return gradeq_error(GRADEQ_ERR_DECODE, "management API: expected a list of nodes");
	}
	*names = calloc(json_array_size(root) + 1, sizeof(char *));
	if (!*names) {
		json_decref(root);
		return gradeq_error(GRADEQ_ERR_NOMEM, "out of memory");
	}
	json_array_foreach(root, i, v)
	{
		json_t *name = json_object_get(v, "name");

		if (!json_is_string(name) || !json_is_true(json_object_get(v, "running")))
			continue;
		(*names)[*n] = strdup(json_string_value(name));
		if (!(*names)[*n]) {
			gradeq_mgmt_free_nodes(*names, *n);
			*names = NULL;
			*n = 0;
			json_decref(root);
			return gradeq_error(GRADEQ_ERR_NOMEM, "out of memory");
		}
		(*n)++;
	}
	json_decref(root);
	return 0;
}

int gradeq_mgmt_fetch_nodes(const char *base_url, const char *amqp_url, const char *cacert,
			    int timeout_ms, char ***names, size_t *n)
{
	char *body;
	size_t len;
	int rc;

	*names = NULL;
	*n = 0;
	rc = http_get(base_url, amqp_url, cacert, timeout_ms, "api/nodes?columns=name,running",
		      &body, &len);
	if (rc)
		return rc;
	rc = gradeq_mgmt_parse_nodes(body ? body : "", len, names, n);
	free(body);
	return rc;
}

void gradeq_mgmt_free_nodes(char **names, size_t n)
{
	for (size_t i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
}

int64_t gradeq_mgmt_unacked(const struct gradeq_mgmt *m, const char *queue)
{
	json_t *n;

	if (!m)
		return -1;
	n = json_object_get(m->unacked, queue);
	return json_is_integer(n) ? (int64_t)json_integer_value(n) : -1;
}

int gradeq_mgmt_placement(const struct gradeq_mgmt *m, const char *queue, const char **leader,
			  const char **members, size_t max)
{
	json_t *p = m ? json_object_get(m->placed, queue) : NULL, *list, *v;
	size_t i, n = 0;

	*leader = NULL;
	if (!p)
		return -1;
	*leader = json_string_value(json_object_get(p, "leader"));
	if (*leader && !**leader)
		*leader = NULL;
	list = json_object_get(p, "members");
	json_array_foreach(list, i, v)
	{
		if (n < max)
			members[n] = json_string_value(v);
		n++;
	}
	return (int)(n < max ? n : max);
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
	json_decref(m->placed);
	free(m);
}
