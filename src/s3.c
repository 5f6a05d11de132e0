/* The s3 backend's client: SigV4 query presigning computed here with
 * libcrypto's HMAC-SHA256 (what gradeq-web redirects a download to), and
 * PUT/GET/DELETE over libcurl, which signs them itself (CURLOPT_AWS_SIGV4).
 * Path-style addressing (ENDPOINT/BUCKET/KEY) so one endpoint setting
 * serves AWS, MinIO-like servers and the test server alike. */
#include "gradeq/s3.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { S3_TIMEOUT_S = 60 /* one object call; parts are a batch's rows */ };

void gradeq_s3_uri_encode(const char *in, int keep_slash, char *out, size_t len)
{
	static const char digits[] = "0123456789ABCDEF";
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)in; *p && o + 4 < len; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '~' ||
		    (keep_slash && *p == '/')) {
			out[o++] = (char)*p;
		} else {
			out[o++] = '%';
			out[o++] = digits[*p >> 4];
			out[o++] = digits[*p & 15];
		}
	}
	if (len)
		out[o < len ? o : len - 1] = '\0';
}

static void hexify(const unsigned char *md, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[md[i] >> 4];
		out[2 * i + 1] = digits[md[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hmac(const void *key, size_t klen, const char *msg, unsigned char out[32])
{
	unsigned int n = 0;

	return HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out,
		    &n) && n == 32
		       ? 0
		       : GRADEQ_ERR_NOMEM;
}

int gradeq_s3_presign_url(const char *scheme, const char *host, const char *path,
			  const char *region, const char *access, const char *secret, int64_t now,
			  long expires_s, char *buf, size_t len)
{
	char date[9], stamp[17], cred[256], credenc[512], query[1024], canon[4096];
	char sts[1024], hash[65], kbuf[256], sighex[65];
	unsigned char md[32], k[32];
	unsigned int mdn = 0;
	time_t t = (time_t)now;
	struct tm tm;
	int rc;

	if (!gmtime_r(&t, &tm) || strlen(secret) > 200)
		return gradeq_error(GRADEQ_ERR_INVALID, "cannot presign");
	strftime(date, sizeof(date), "%Y%m%d", &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	snprintf(cred, sizeof(cred), "%s/%s/%s/s3/aws4_request", access, date, region);
	gradeq_s3_uri_encode(cred, 0, credenc, sizeof(credenc));
	snprintf(query, sizeof(query),
		 "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=%s&X-Amz-Date=%s"
		 "&X-Amz-Expires=%ld&X-Amz-SignedHeaders=host",
		 credenc, stamp, expires_s);
	snprintf(canon, sizeof(canon), "GET\n%s\n%s\nhost:%s\n\nhost\nUNSIGNED-PAYLOAD", path,
		 query, host);
	if (!EVP_Digest(canon, strlen(canon), md, &mdn, EVP_sha256(), NULL) || mdn != 32)
		return GRADEQ_ERR_NOMEM;
	hexify(md, 32, hash);
	snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256\n%s\n%s/%s/s3/aws4_request\n%s", stamp, date,
		 region, hash);
	snprintf(kbuf, sizeof(kbuf), "AWS4%s", secret);
	rc = hmac(kbuf, strlen(kbuf), date, k);
	OPENSSL_cleanse(kbuf, sizeof(kbuf));
	if (!rc)
		rc = hmac(k, 32, region, k);
	if (!rc)
		rc = hmac(k, 32, "s3", k);
	if (!rc)
		rc = hmac(k, 32, "aws4_request", k);
	if (!rc)
		rc = hmac(k, 32, sts, md);
	OPENSSL_cleanse(k, sizeof(k));
	if (rc)
		return rc;
	hexify(md, 32, sighex);
	if ((size_t)snprintf(buf, len, "%s://%s%s?%s&X-Amz-Signature=%s", scheme, host, path, query,
			     sighex) >= len)
		return gradeq_error(GRADEQ_ERR_INVALID, "presigned URL too long");
	return 0;
}

/* The first line of a credentials file, without its newline. */
static int read_secret(const char *what, const char *path, char **out)
{
	char line[512];
	FILE *fp;
	size_t n;

	*out = NULL;
	if (!path || !*path)
		return gradeq_error(GRADEQ_ERR_CONFIG, "%s is not set", what);
	fp = fopen(path, "r");
	if (!fp)
		return gradeq_error(GRADEQ_ERR_CONFIG, "%s '%s': %s", what, path, strerror(errno));
	if (!fgets(line, sizeof(line), fp))
		line[0] = '\0';
	fclose(fp);
	n = strcspn(line, "\r\n");
	line[n] = '\0';
	if (n == 0 || strchr(line, ':')) {
		OPENSSL_cleanse(line, sizeof(line));
		return gradeq_error(GRADEQ_ERR_CONFIG, "%s '%s' holds no key", what, path);
	}
	*out = strdup(line);
	OPENSSL_cleanse(line, sizeof(line));
	return *out ? 0 : GRADEQ_ERR_NOMEM;
}

int gradeq_s3_open(const char *endpoint, const char *bucket, const char *region,
		   const char *access_file, const char *secret_file, struct gradeq_s3 **out)
{
	struct gradeq_s3 *s;
	size_t n;
	int rc;

	*out = NULL;
	if (!endpoint || strncmp(endpoint, "http", 4) != 0 || !strstr(endpoint, "://"))
		return gradeq_error(GRADEQ_ERR_CONFIG, "s3_endpoint is not an http(s) URL");
	if (!bucket || !*bucket || strchr(bucket, '/'))
		return gradeq_error(GRADEQ_ERR_CONFIG, "s3_bucket is not set");
	if (!region || !*region || strchr(region, ':'))
		return gradeq_error(GRADEQ_ERR_CONFIG, "s3_region is not set");
	s = calloc(1, sizeof(*s));
	if (!s)
		return GRADEQ_ERR_NOMEM;
	s->endpoint = strdup(endpoint);
	s->bucket = strdup(bucket);
	s->region = strdup(region);
	if (!s->endpoint || !s->bucket || !s->region) {
		gradeq_s3_free(s);
		return GRADEQ_ERR_NOMEM;
	}
	n = strlen(s->endpoint);
	while (n > 0 && s->endpoint[n - 1] == '/')
		s->endpoint[--n] = '\0';
	rc = read_secret("s3_access_key_file", access_file, &s->access);
	if (!rc)
		rc = read_secret("s3_secret_key_file", secret_file, &s->secret);
	if (rc) {
		gradeq_s3_free(s);
		return rc;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	*out = s;
	return 0;
}

void gradeq_s3_free(struct gradeq_s3 *s)
{
	if (!s)
		return;
	if (s->secret) {
		OPENSSL_cleanse(s->secret, strlen(s->secret));
		free(s->secret);
	}
	free(s->access);
	free(s->endpoint);
	free(s->bucket);
	free(s->region);
	free(s);
}

struct mem_in {
	const char *p;
	size_t left;
};

static size_t read_mem(char *buf, size_t size, size_t n, void *arg)
{
	struct mem_in *m = arg;
	size_t c = size * n < m->left ? size * n : m->left;

	memcpy(buf, m->p, c);
	m->p += c;
	m->left -= c;
	return c;
}

static size_t discard(char *buf, size_t size, size_t n, void *arg)
{
	(void)buf;
	(void)arg;
	return size * n;
}

enum method { M_PUT_MEM, M_PUT_FILE, M_GET, M_DELETE };

/* The service could not be reached or did not answer: transient (the job
 * goes to a retry tier), as a 5xx is; anything else is permanent. */
static bool unreachable(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE: return true;
	default: return false;
	}
}

/* The SHA-256 of an empty payload (GET, DELETE). */
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* payload_sha: the body's SHA-256 in hex, sent as x-amz-content-sha256 and
 * signed (curl takes the header's value into the signature): S3 requires
 * the header and checks a PUT's bytes against it. */
static int call(struct gradeq_s3 *s, enum method m, const char *key, const void *data, size_t len,
		FILE *fp, long long flen, const char *payload_sha)
{
	char url[2048], enc[1024], sigv4[160], errbuf[CURL_ERROR_SIZE] = "", hdr[128];
	struct mem_in in = {data, len};
	struct curl_slist *headers = NULL, *h;
	long status = 0;
	CURL *c;
	CURLcode cc;
	int rc = 0;

	gradeq_s3_uri_encode(key, 1, enc, sizeof(enc));
	if ((size_t)snprintf(url, sizeof(url), "%s/%s/%s", s->endpoint, s->bucket, enc) >=
	    sizeof(url))
		return gradeq_error(GRADEQ_ERR_INVALID, "object URL too long");
	snprintf(sigv4, sizeof(sigv4), "aws:amz:%s:s3", s->region);
	snprintf(hdr, sizeof(hdr), "x-amz-content-sha256: %s", payload_sha);
	/* no "Expect: 100-continue" round trip for a part's few kilobytes */
	headers = curl_slist_append(NULL, hdr);
	h = headers ? curl_slist_append(headers, "Expect:") : NULL;
	c = h ? curl_easy_init() : NULL;
	if (!c) {
		curl_slist_free_all(headers);
		return GRADEQ_ERR_NOMEM;
	}
	headers = h;
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_AWS_SIGV4, sigv4);
	curl_easy_setopt(c, CURLOPT_USERNAME, s->access);
	curl_easy_setopt(c, CURLOPT_PASSWORD, s->secret);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)S3_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	switch (m) {
	case M_PUT_MEM:
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, read_mem);
		curl_easy_setopt(c, CURLOPT_READDATA, &in);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
		break;
	case M_PUT_FILE:
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_READDATA, fp);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)flen);
		break;
	case M_GET:
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, NULL);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, fp);
		break;
	case M_DELETE: curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE"); break;
	}
	cc = curl_easy_perform(c);
	if (cc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	curl_slist_free_all(headers);
	if (cc != CURLE_OK)
		rc = gradeq_error(unreachable(cc) ? GRADEQ_ERR_TIMEOUT : GRADEQ_ERR_IO,
				  "s3 %s/%s: %s", s->bucket, key,
				  *errbuf ? errbuf : curl_easy_strerror(cc));
	else if (status == 404 && m == M_DELETE)
		rc = 0;
	else if (status == 404)
		rc = gradeq_error(GRADEQ_ERR_NOT_FOUND, "s3 object %s/%s is missing", s->bucket,
				  key);
	else if (status == 403 || status == 401)
		rc = gradeq_error(GRADEQ_ERR_ACCESS, "s3 %s/%s: HTTP %ld (check the keys)",
				  s->bucket, key, status);
	else if (status >= 500 || status == 429)
		/* InternalError, SlowDown, ServiceUnavailable: a retry tier */
		rc = gradeq_error(GRADEQ_ERR_TIMEOUT, "s3 %s/%s: HTTP %ld", s->bucket, key, status);
	else if (status < 200 || status > 299)
		rc = gradeq_error(GRADEQ_ERR_IO, "s3 %s/%s: HTTP %ld", s->bucket, key, status);
	return rc;
}

int gradeq_s3_put(struct gradeq_s3 *s, const char *key, const void *data, size_t len)
{
	unsigned char md[32];
	unsigned int n = 0;
	char sha[65];

	if (!data)
		data = "";
	if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) || n != 32)
		return GRADEQ_ERR_NOMEM;
	hexify(md, 32, sha);
	return call(s, M_PUT_MEM, key, data, len, NULL, 0, sha);
}

int gradeq_s3_put_file(struct gradeq_s3 *s, const char *key, FILE *fp, long long len,
		       const char *sha256)
{
	return call(s, M_PUT_FILE, key, NULL, 0, fp, len, sha256);
}

int gradeq_s3_get(struct gradeq_s3 *s, const char *key, FILE *fp)
{
	return call(s, M_GET, key, NULL, 0, fp, 0, EMPTY_SHA256);
}

int gradeq_s3_delete(struct gradeq_s3 *s, const char *key)
{
	return call(s, M_DELETE, key, NULL, 0, NULL, 0, EMPTY_SHA256);
}

int gradeq_s3_presign(const struct gradeq_s3 *s, const char *key, long expires_s, char *buf,
		      size_t len)
{
	char path[1200], enc[1024], scheme[8];
	const char *host = strstr(s->endpoint, "://");
	size_t sl = (size_t)(host - s->endpoint);

	if (sl >= sizeof(scheme))
		return gradeq_error(GRADEQ_ERR_CONFIG, "s3_endpoint is not an http(s) URL");
	memcpy(scheme, s->endpoint, sl);
	scheme[sl] = '\0';
	host += 3;
	if (strchr(host, '/'))
		return gradeq_error(GRADEQ_ERR_CONFIG, "s3_endpoint must have no path");
	gradeq_s3_uri_encode(key, 1, enc, sizeof(enc));
	snprintf(path, sizeof(path), "/%s/%s", s->bucket, enc);
	return gradeq_s3_presign_url(scheme, host, path, s->region, s->access, s->secret,
				     (int64_t)time(NULL), expires_s, buf, len);
}
