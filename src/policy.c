/* Grading policy: parse and validate the courses.grading_policy JSON, and
 * hash it the way the platform does (GradesTransformer.grading_policy_hash:
 * base64 of the SHA-1 of json.dumps(policy, sort_keys=True,
 * separators=(',', ':'))).
 *
 * Missing GRADER or GRADE_CUTOFFS: the platform's course block fills each
 * missing key with its built-in default when it loads the course
 * (CourseBlock.set_grading_policy, CourseFields.grading_policy.default), and
 * both the grader and the hash see the filled-in policy. We do the same:
 * gradeq_policy_parse() grades and hashes the effective policy. Present but
 * malformed keys (null included) are an error, as grader_from_conf() raises
 * on them. gradeq_policy_canonical()/gradeq_policy_hash() are plain JSON
 * canonicalisation of the text given, without defaults. */
#include "gradeq/grading.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

/* CourseFields.grading_policy.default on the platform. */
static const char default_grader[] =
	"[{\"type\":\"Homework\",\"min_count\":12,\"drop_count\":2,\"short_label\":\"HW\",\"weight\":0.15},"
	"{\"type\":\"Lab\",\"min_count\":12,\"drop_count\":2,\"weight\":0.15},"
	"{\"type\":\"Midterm Exam\",\"min_count\":1,\"drop_count\":0,\"short_label\":\"Midterm\",\"weight\":0.3},"
	"{\"type\":\"Final Exam\",\"min_count\":1,\"drop_count\":0,\"short_label\":\"Final\",\"weight\":0.4}]";
static const char default_cutoffs[] = "{\"Pass\":0.5}";

static int policy_fail(char *err, size_t errlen, const char *fmt, ...) GRADEQ_PRINTF(3, 4);

static int policy_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
		/* a message cut by the buffer ends with whole characters */
		gradeq_utf8_cut_end(err);
	}
	return GRADEQ_ERR_POLICY;
}

void gradeq_utf8_cut_end(char *s)
{
	size_t n = strlen(s), lead = n, want;
	unsigned char c;

	while (lead > 0 && n - lead < 4 && ((unsigned char)s[lead - 1] & 0xc0) == 0x80)
		lead--;
	if (lead == 0 || (unsigned char)s[lead - 1] < 0xc0)
		return;
	c = (unsigned char)s[lead - 1];
	want = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
	if (n - (lead - 1) < want)
		s[lead - 1] = '\0';
}

/* Growable output buffer; 'oom' sticks so callers check once at the end. */
struct sbuf {
	char *p;
	size_t len, cap;
	bool oom;
	bool fixed;            /* p is the caller's buffer: never realloc it */
	const struct doc *doc; /* the document's big integers, or NULL */
};

/* A parsed policy: jansson's tree, and the integers too big for jansson's
 * 64 bits (jsonb prints a number such as 1e308 as an integer of 309
 * digits). Each of those is a real in the tree, and keeps its digits for
 * the canonical text, where Python prints the integer it read. */
struct bignum {
	json_t *value; /* the real in the tree */
	char *digits;  /* as written */
};

struct doc {
	json_t *root;
	struct bignum *big;
	size_t nbig;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
	size_t cap;
	char *p;

	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		if (b->fixed) {
			b->oom = true;
			return;
		}
		cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_puts(struct sbuf *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

/* Python's str escaping with ensure_ascii=True: printable ASCII except '"'
 * and '\\' as is, the five short escapes, everything else \uXXXX in lower
 * case hex, code points above U+FFFF as a surrogate pair. The text comes
 * from jansson, so it is valid UTF-8. */
static void sb_put_string(struct sbuf *b, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	char esc[16];
	uint32_t cp;

	sb_put(b, "\"", 1);
	while (p < end) {
		if (*p < 0x80) {
			cp = *p++;
		} else if (*p < 0xe0) {
			cp = (uint32_t)(p[0] & 0x1f) << 6 | (p[1] & 0x3f);
			p += 2;
		} else if (*p < 0xf0) {
			cp = (uint32_t)(p[0] & 0x0f) << 12 | (uint32_t)(p[1] & 0x3f) << 6 |
			     (p[2] & 0x3f);
			p += 3;
		} else {
			cp = (uint32_t)(p[0] & 0x07) << 18 | (uint32_t)(p[1] & 0x3f) << 12 |
			     (uint32_t)(p[2] & 0x3f) << 6 | (p[3] & 0x3f);
			p += 4;
		}
		switch (cp) {
		case '"': sb_put(b, "\\\"", 2); continue;
		case '\\': sb_put(b, "\\\\", 2); continue;
		case '\n': sb_put(b, "\\n", 2); continue;
		case '\r': sb_put(b, "\\r", 2); continue;
		case '\t': sb_put(b, "\\t", 2); continue;
		case '\b': sb_put(b, "\\b", 2); continue;
		case '\f': sb_put(b, "\\f", 2); continue;
		}
		if (cp >= 0x20 && cp <= 0x7e) {
			esc[0] = (char)cp;
			sb_put(b, esc, 1);
		} else if (cp < 0x10000) {
			snprintf(esc, sizeof(esc), "\\u%04" PRIx32, cp);
			sb_put(b, esc, 6);
		} else {
			cp -= 0x10000;
			snprintf(esc, sizeof(esc), "\\u%04" PRIx32 "\\u%04" PRIx32,
				 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
			sb_put(b, esc, 12);
		}
	}
	sb_put(b, "\"", 1);
}

/* The p significant digits of mantissa m and decimal exponent e as a string
 * strtod reads back: "d.ddde<e>". */
static bool digits_roundtrip(uint64_t m, int p, int e, double x, char *buf, size_t size)
{
	char digits[24];

	snprintf(digits, sizeof(digits), "%0*" PRIu64, p, m);
	snprintf(buf, size, "%c.%se%d", digits[0], digits + 1, e);
	return strtod(buf, NULL) == x;
}

/* Shortest decimal digits that read back as x (finite, > 0), nearest to x
 * among those of that length, as David Gay's mode 0 that Python's repr uses
 * gives them. Writes the digits without trailing zeros and returns the
 * decimal exponent of the first digit. */
static int shortest_digits(double x, char *out, size_t outsize)
{
	static const uint64_t pow10[] = {1ULL,
					 10ULL,
					 100ULL,
					 1000ULL,
					 10000ULL,
					 100000ULL,
					 1000000ULL,
					 10000000ULL,
					 100000000ULL,
					 1000000000ULL,
					 10000000000ULL,
					 100000000000ULL,
					 1000000000000ULL,
					 10000000000000ULL,
					 100000000000000ULL,
					 1000000000000000ULL,
					 10000000000000000ULL,
					 100000000000000000ULL};
	char buf[40], *ex;
	uint64_t m, n;
	int p, e, ne, len;

	for (p = 1; p <= 17; p++) {
		/* Nearest p-digit decimal first ... */
		snprintf(buf, sizeof(buf), "%.*e", p - 1, x);
		ex = strchr(buf, 'e');
		e = (int)strtol(ex + 1, NULL, 10);
		m = 0;
		for (const char *q = buf; q < ex; q++)
			if (*q != '.')
				m = m * 10 + (uint64_t)(*q - '0');
		if (strtod(buf, NULL) == x)
			goto found;
		/* ... else its neighbour on the other side of x, which can
		 * still read back when x sits just above a power of two. */
		ne = e;
		if (strtod(buf, NULL) > x) {
			n = m - 1;
			if (n < pow10[p - 1]) {
				n = pow10[p] - 1;
				ne = e - 1;
			}
		} else {
			n = m + 1;
			if (n == pow10[p]) {
				n = pow10[p - 1];
				ne = e + 1;
			}
		}
		if (digits_roundtrip(n, p, ne, x, buf, sizeof(buf))) {
			m = n;
			e = ne;
			goto found;
		}
	}
	/* Not reached: 17 digits always read back. */
	p = 17;
found:
	snprintf(buf, sizeof(buf), "%0*" PRIu64, p, m);
	len = p;
	while (len > 1 && buf[len - 1] == '0')
		len--;
	if ((size_t)len >= outsize)
		len = (int)outsize - 1;
	memcpy(out, buf, (size_t)len);
	out[len] = '\0';
	return e;
}

/* Python's repr(float) for finite x: shortest round-trip digits, fixed
 * notation with at least one decimal when -4 <= exponent < 16, else
 * "d[.ddd]e[+-]XX". */
static void format_pyfloat(double x, char *out, size_t size)
{
	char digits[24];
	struct sbuf b = {.p = out, .cap = size, .fixed = true};
	int e, nd, decpt, i;

	if (signbit(x))
		sb_put(&b, "-", 1);
	if (x == 0) {
		sb_puts(&b, "0.0");
		return;
	}
	e = shortest_digits(fabs(x), digits, sizeof(digits));
	nd = (int)strlen(digits);
	decpt = e + 1;
	if (e < -4 || e >= 16) {
		sb_put(&b, digits, 1);
		if (nd > 1) {
			sb_put(&b, ".", 1);
			sb_puts(&b, digits + 1);
		}
		snprintf(digits, sizeof(digits), "e%c%02d", e < 0 ? '-' : '+', abs(e));
		sb_puts(&b, digits);
	} else if (decpt <= 0) {
		sb_put(&b, "0.", 2);
		for (i = decpt; i < 0; i++)
			sb_put(&b, "0", 1);
		sb_puts(&b, digits);
	} else if (decpt >= nd) {
		sb_puts(&b, digits);
		for (i = nd; i < decpt; i++)
			sb_put(&b, "0", 1);
		sb_put(&b, ".0", 2);
	} else {
		sb_put(&b, digits, (size_t)decpt);
		sb_put(&b, ".", 1);
		sb_puts(&b, digits + decpt);
	}
}

struct kv {
	const char *key;
	size_t len;
	json_t *value;
};

/* Code-point order: for valid UTF-8 that is unsigned byte order. */
static int kv_cmp(const void *a, const void *b)
{
	const struct kv *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int r = memcmp(x->key, y->key, n);

	if (r)
		return r;
	return (x->len > y->len) - (x->len < y->len);
}

/* Recursion is bounded by jansson's parser depth limit. */
static void sb_put_json(struct sbuf *b, json_t *j)
{
	char num[64];
	struct kv *kvs = NULL;
	size_t n = 0, i;
	void *it;

	switch (json_typeof(j)) {
	case JSON_OBJECT:
		n = json_object_size(j);
		kvs = n ? malloc(n * sizeof(*kvs)) : NULL;
		if (n && !kvs) {
			b->oom = true;
			return;
		}
		i = 0;
		for (it = json_object_iter(j); it && i < n;
		     it = json_object_iter_next(j, it), i++) {
			kvs[i].key = json_object_iter_key(it);
			kvs[i].len = json_object_iter_key_len(it);
			kvs[i].value = json_object_iter_value(it);
		}
		n = i;
		if (n > 1)
			qsort(kvs, n, sizeof(*kvs), kv_cmp);
		sb_put(b, "{", 1);
		for (i = 0; i < n; i++) {
			if (i)
				sb_put(b, ",", 1);
			sb_put_string(b, kvs[i].key, kvs[i].len);
			sb_put(b, ":", 1);
			sb_put_json(b, kvs[i].value);
		}
		sb_put(b, "}", 1);
		free(kvs);
		break;
	case JSON_ARRAY:
		sb_put(b, "[", 1);
		for (i = 0; i < json_array_size(j); i++) {
			if (i)
				sb_put(b, ",", 1);
			sb_put_json(b, json_array_get(j, i));
		}
		sb_put(b, "]", 1);
		break;
	case JSON_STRING: sb_put_string(b, json_string_value(j), json_string_length(j)); break;
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(j));
		sb_puts(b, num);
		break;
	case JSON_REAL:
		for (i = 0; b->doc && i < b->doc->nbig; i++)
			if (b->doc->big[i].value == j)
				break;
		if (b->doc && i < b->doc->nbig) {
			sb_puts(b, b->doc->big[i].digits);
			break;
		}
		format_pyfloat(json_real_value(j), num, sizeof(num));
		sb_puts(b, num);
		break;
	case JSON_TRUE: sb_puts(b, "true"); break;
	case JSON_FALSE: sb_puts(b, "false"); break;
	case JSON_NULL: sb_puts(b, "null"); break;
	}
}

static void doc_free(struct doc *d)
{
	json_decref(d->root);
	/* each real has a reference of ours besides its parent's */
	for (size_t i = 0; i < d->nbig; i++) {
		json_decref(d->big[i].value);
		free(d->big[i].digits);
	}
	free(d->big);
	memset(d, 0, sizeof(*d));
}

/* A big integer's stand-in: a string jansson keeps (big_mark in JSON,
 * BIG_MARK once decoded), swapped for a real after parsing. A policy that
 * holds the mark's text itself is not rewritten. */
static const char big_mark[] = "\\u0000gradeq-bignum:";
#define BIG_MARK_TEXT "gradeq-bignum:"
#define BIG_MARK "\0" BIG_MARK_TEXT
#define BIG_MARK_LEN (sizeof(BIG_MARK) - 1)

static bool contains(const char *s, size_t len, const char *what)
{
	size_t n = strlen(what);

	for (size_t i = 0; i + n <= len; i++)
		if (memcmp(s + i, what, n) == 0)
			return true;
	return false;
}

/* Is the token a JSON integer: an optional minus, then digits without a
 * leading zero? */
static bool json_int_token(const char *s, size_t n)
{
	size_t i = s[0] == '-';

	if (i >= n || (s[i] == '0' && n - i > 1))
		return false;
	for (; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* Does an integer token fit jansson's json_int_t? */
static bool int_fits(const char *s, size_t n)
{
	char buf[32], *end;

	if (n >= sizeof(buf))
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	errno = 0;
	(void)strtoll(buf, &end, 10);
	return errno != ERANGE && *end == '\0';
}

/* The text with every integer token too big for 64 bits (outside strings)
 * written as a marked string, in b (b->oom when out of memory). */
static void mark_big_ints(struct sbuf *b, const char *json, size_t len)
{
	bool in_str = false;
	size_t i = 0, k;

	while (i < len) {
		char c = json[i];

		k = i + 1;
		if (in_str) {
			if (c == '\\' && k < len)
				k++;
			else if (c == '"')
				in_str = false;
		} else if (c == '"') {
			in_str = true;
		} else if (c == '-' || (c >= '0' && c <= '9')) {
			while (k < len && json[k] && strchr("+-0123456789.eE", json[k]))
				k++;
			if (json_int_token(json + i, k - i) && !int_fits(json + i, k - i)) {
				sb_put(b, "\"", 1);
				sb_puts(b, big_mark);
				sb_put(b, json + i, k - i);
				sb_put(b, "\"", 1);
				i = k;
				continue;
			}
		}
		sb_put(b, json + i, k - i);
		i = k;
	}
}

static bool is_marked(json_t *v)
{
	return json_is_string(v) && json_string_length(v) > BIG_MARK_LEN &&
	       memcmp(json_string_value(v), BIG_MARK, BIG_MARK_LEN) == 0;
}

/* The real for a marked string, its digits recorded in d; NULL with *rc
 * set on error. */
static json_t *big_real(struct doc *d, json_t *v, int *rc, char *err, size_t errlen)
{
	const char *digits = json_string_value(v) + BIG_MARK_LEN;
	double x = strtod(digits, NULL);
	struct bignum *nb;
	json_t *r;

	if (!isfinite(x)) {
		*rc = policy_fail(err, errlen, "grading policy number %.20s... is out of range",
				  digits);
		return NULL;
	}
	nb = realloc(d->big, (d->nbig + 1) * sizeof(*d->big));
	if (!nb) {
		*rc = GRADEQ_ERR_NOMEM;
		return NULL;
	}
	d->big = nb;
	r = json_real(x);
	nb[d->nbig].digits = strdup(digits);
	if (!r || !nb[d->nbig].digits) {
		json_decref(r);
		free(nb[d->nbig].digits);
		*rc = GRADEQ_ERR_NOMEM;
		return NULL;
	}
	nb[d->nbig++].value = r;
	return r;
}

/* Swaps the marked strings under j for reals (the parent holds them). */
static int unmark_big_ints(struct doc *d, json_t *j, char *err, size_t errlen)
{
	json_t *v, *r;
	const char *key;
	void *tmp;
	size_t i;
	int rc = 0;

	if (json_is_object(j)) {
		json_object_foreach_safe(j, tmp, key, v)
		{
			if (is_marked(v)) {
				if (!(r = big_real(d, v, &rc, err, errlen)))
					return rc;
				if (json_object_set(j, key, r))
					return GRADEQ_ERR_NOMEM;
			} else if ((rc = unmark_big_ints(d, v, err, errlen))) {
				return rc;
			}
		}
	} else if (json_is_array(j)) {
		json_array_foreach(j, i, v)
		{
			if (is_marked(v)) {
				if (!(r = big_real(d, v, &rc, err, errlen)))
					return rc;
				if (json_array_set(j, i, r))
					return GRADEQ_ERR_NOMEM;
			} else if ((rc = unmark_big_ints(d, v, err, errlen))) {
				return rc;
			}
		}
	}
	return 0;
}

static int load_json(const char *json, size_t len, struct doc *d, char *err, size_t errlen)
{
	struct sbuf marked = {0};
	json_error_t jerr;
	json_t *r;
	int rc = 0;

	memset(d, 0, sizeof(*d));
	if (!json)
		return policy_fail(err, errlen, "grading policy is missing");
	/* Integers stay integers so that "12" and "12.0" hash differently,
	 * as they do in Python. */
	d->root = json_loadb(json, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (d->root)
		return 0;
	/* An integer beyond 64 bits is a number too (Python reads it): it is
	 * parsed as a real that keeps its digits for the canonical text. */
	if (json_error_code(&jerr) != json_error_numeric_overflow ||
	    contains(json, len, BIG_MARK_TEXT))
		goto bad;
	mark_big_ints(&marked, json, len);
	if (marked.oom) {
		free(marked.p);
		return GRADEQ_ERR_NOMEM;
	}
	d->root = json_loadb(marked.p, marked.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	free(marked.p);
	if (!d->root)
		goto bad;
	if (is_marked(d->root)) {
		/* the whole document is one big integer */
		r = big_real(d, d->root, &rc, err, errlen);
		json_decref(d->root);
		d->root = r ? json_incref(r) : NULL;
	} else {
		rc = unmark_big_ints(d, d->root, err, errlen);
	}
	if (rc)
		doc_free(d);
	return rc;
bad:
	return policy_fail(err, errlen, "grading policy is not valid JSON: %s (line %d, column %d)",
			   jerr.text, jerr.line, jerr.column);
}

static int canonical_of(const struct doc *d, char **out, size_t *outlen)
{
	struct sbuf b = {.doc = d};

	sb_put_json(&b, d->root);
	if (b.oom) {
		free(b.p);
		return GRADEQ_ERR_NOMEM;
	}
	*out = b.p;
	if (outlen)
		*outlen = b.len;
	return 0;
}

static int hash_of(const char *s, size_t len, char out[29])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (!EVP_Digest(s, len, md, &mdlen, EVP_sha1(), NULL) || mdlen != 20)
		return GRADEQ_ERR_NOMEM;
	EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
	out[28] = '\0';
	return 0;
}

int gradeq_policy_canonical(const char *json, size_t len, char **out, size_t *outlen, char *err,
			    size_t errlen)
{
	struct doc d;
	int rc;

	if (!out)
		return GRADEQ_ERR_INVALID;
	*out = NULL;
	rc = load_json(json, len, &d, err, errlen);
	if (rc)
		return rc;
	rc = canonical_of(&d, out, outlen);
	doc_free(&d);
	return rc;
}

int gradeq_policy_hash(const char *json, size_t len, char out[29], char *err, size_t errlen)
{
	char *canon = NULL;
	size_t clen = 0;
	int rc;

	if (!out)
		return GRADEQ_ERR_INVALID;
	rc = gradeq_policy_canonical(json, len, &canon, &clen, err, errlen);
	if (rc)
		goto out;
	rc = hash_of(canon, clen, out);
out:
	free(canon);
	return rc;
}

/* The largest n' <= n such that s[0..n') is whole UTF-8 characters (s is
 * valid UTF-8 of at least n bytes). */
static size_t utf8_boundary(const char *s, size_t n)
{
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return n;
}

/* For messages: a JSON key as one printable line, cut short between whole
 * characters and marked "..." when it does not fit (the message is stored
 * and sent: a character cut in two would make it invalid text). */
static const char *printable(const char *s, char *buf, size_t size)
{
	size_t len = strlen(s), cut = len, i;

	if (len >= size)
		cut = utf8_boundary(s, size - 4);
	for (i = 0; i < cut; i++)
		buf[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
	if (cut < len)
		memcpy(buf + i, "...", 3), i += 3;
	buf[i] = '\0';
	return buf;
}

static char *dup_string(json_t *j)
{
	size_t n = json_string_length(j);
	char *s = malloc(n + 1);

	if (s)
		memcpy(s, json_string_value(j), n + 1);
	return s;
}

/* A JSON integer in [0, INT_MAX]. min_count may also be an integral real:
 * the platform reads it through int(float(min_count)). */
static bool get_count(json_t *v, bool allow_real, int *out)
{
	double d;

	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0 || json_integer_value(v) > INT_MAX)
			return false;
		*out = (int)json_integer_value(v);
		return true;
	}
	if (allow_real && json_is_real(v)) {
		d = json_real_value(v);
		if (d < 0 || d > INT_MAX || d != floor(d))
			return false;
		*out = (int)d;
		return true;
	}
	return false;
}

static int parse_entry(json_t *e, size_t i, struct gradeq_grader_entry *g, char *err, size_t errlen)
{
	json_t *v;

	if (!json_is_object(e))
		return policy_fail(err, errlen, "GRADER[%zu] must be an object", i);
	v = json_object_get(e, "type");
	if (!json_is_string(v))
		return policy_fail(err, errlen, "GRADER[%zu]: 'type' must be a string", i);
	/* A NUL could never match a format read from PostgreSQL text, and
	 * would cut our C string short: refuse it. */
	if (strlen(json_string_value(v)) != json_string_length(v))
		return policy_fail(err, errlen, "GRADER[%zu]: 'type' contains a NUL character", i);
	g->type = dup_string(v);
	if (!g->type)
		return GRADEQ_ERR_NOMEM;
	v = json_object_get(e, "min_count");
	if (!v)
		return policy_fail(err, errlen, "GRADER[%zu]: 'min_count' is missing", i);
	if (!get_count(v, true, &g->min_count))
		return policy_fail(err, errlen,
				   "GRADER[%zu]: 'min_count' must be a non-negative integer", i);
	v = json_object_get(e, "drop_count");
	g->drop_count = 0;
	if (v && !get_count(v, false, &g->drop_count))
		return policy_fail(err, errlen,
				   "GRADER[%zu]: 'drop_count' must be a non-negative integer", i);
	v = json_object_get(e, "weight");
	g->weight = 0;
	if (v && !json_is_number(v))
		return policy_fail(err, errlen, "GRADER[%zu]: 'weight' must be a number", i);
	if (v)
		g->weight = json_number_value(v);
	v = json_object_get(e, "short_label");
	if (v && !json_is_null(v)) {
		if (!json_is_string(v))
			return policy_fail(err, errlen,
					   "GRADER[%zu]: 'short_label' must be a string", i);
		if (strlen(json_string_value(v)) != json_string_length(v))
			return policy_fail(err, errlen,
					   "GRADER[%zu]: 'short_label' contains a NUL character",
					   i);
		g->short_label = dup_string(v);
		if (!g->short_label)
			return GRADEQ_ERR_NOMEM;
	}
	return 0;
}

static int parse_grader(json_t *grader, struct gradeq_policy *p, char *err, size_t errlen)
{
	size_t i, n;
	int rc;

	if (!json_is_array(grader))
		return policy_fail(err, errlen, "GRADER must be a list");
	n = json_array_size(grader);
	p->graders = n ? calloc(n, sizeof(*p->graders)) : NULL;
	if (n && !p->graders)
		return GRADEQ_ERR_NOMEM;
	for (i = 0; i < n; i++) {
		p->ngraders = i + 1; /* so that gradeq_policy_free() sees it */
		rc = parse_entry(json_array_get(grader, i), i, &p->graders[i], err, errlen);
		if (rc)
			return rc;
	}
	p->ngraders = n;
	return 0;
}

struct cut_sort {
	size_t index;
	struct gradeq_cutoff c;
};

/* Descending by cutoff; equal cutoffs keep their JSON order, as Python's
 * stable sorted(..., reverse=True) does in _compute_letter_grade. */
static int cut_cmp(const void *a, const void *b)
{
	const struct cut_sort *x = a, *y = b;

	if (x->c.cutoff != y->c.cutoff)
		return x->c.cutoff < y->c.cutoff ? 1 : -1;
	return (x->index > y->index) - (x->index < y->index);
}

static int parse_cutoffs(json_t *cutoffs, struct gradeq_policy *p, char *err, size_t errlen)
{
	struct cut_sort *tmp = NULL;
	char pbuf[256];
	const char *key;
	size_t i = 0, n;
	json_t *v;
	double d;
	int rc = 0;

	if (!json_is_object(cutoffs))
		return policy_fail(err, errlen, "GRADE_CUTOFFS must be an object");
	n = json_object_size(cutoffs);
	p->pass_cutoff = INFINITY;
	if (!n)
		return 0;
	tmp = calloc(n, sizeof(*tmp));
	p->cutoffs = calloc(n, sizeof(*p->cutoffs));
	if (!tmp || !p->cutoffs) {
		rc = GRADEQ_ERR_NOMEM;
		goto out;
	}
	json_object_foreach(cutoffs, key, v)
	{
		if (!json_is_number(v) ||
		    !(json_number_value(v) >= 0 && json_number_value(v) <= 1)) {
			rc = policy_fail(err, errlen,
					 "GRADE_CUTOFFS['%s'] must be a number between 0 and 1",
					 printable(key, pbuf, sizeof(pbuf)));
			goto out;
		}
		d = json_number_value(v);
		tmp[i].index = i;
		tmp[i].c.cutoff = d;
		tmp[i].c.letter = strdup(key);
		if (!tmp[i].c.letter) {
			rc = GRADEQ_ERR_NOMEM;
			goto out;
		}
		/* The platform's _compute_passed: smallest non-zero cutoff. */
		if (d > 0 && d < p->pass_cutoff)
			p->pass_cutoff = d;
		i++;
	}
	qsort(tmp, i, sizeof(*tmp), cut_cmp);
	for (size_t k = 0; k < i; k++) {
		p->cutoffs[k] = tmp[k].c;
		tmp[k].c.letter = NULL;
	}
	p->ncutoffs = i;
out:
	for (size_t k = 0; tmp && k < n; k++)
		free(tmp[k].c.letter);
	free(tmp);
	return rc;
}

/* Adds the platform default for a missing top-level key. */
static int fill_default(json_t *root, const char *key, const char *def)
{
	json_t *v;

	if (json_object_get(root, key))
		return 0;
	v = json_loads(def, 0, NULL);
	if (!v || json_object_set_new(root, key, v))
		return GRADEQ_ERR_NOMEM;
	return 0;
}

int gradeq_policy_parse(const char *json, size_t len, struct gradeq_policy **out, char *err,
			size_t errlen)
{
	struct gradeq_policy *p = NULL;
	struct doc d = {0};
	json_t *root;
	char *canon = NULL;
	size_t clen = 0;
	int rc;

	if (!out)
		return GRADEQ_ERR_INVALID;
	*out = NULL;
	rc = load_json(json, len, &d, err, errlen);
	if (rc)
		goto out;
	root = d.root;
	if (!json_is_object(root)) {
		rc = policy_fail(err, errlen, "grading policy must be a JSON object");
		goto out;
	}
	rc = fill_default(root, "GRADER", default_grader);
	if (!rc)
		rc = fill_default(root, "GRADE_CUTOFFS", default_cutoffs);
	if (rc)
		goto out;
	p = calloc(1, sizeof(*p));
	if (!p) {
		rc = GRADEQ_ERR_NOMEM;
		goto out;
	}
	rc = parse_grader(json_object_get(root, "GRADER"), p, err, errlen);
	if (rc)
		goto out;
	rc = parse_cutoffs(json_object_get(root, "GRADE_CUTOFFS"), p, err, errlen);
	if (rc)
		goto out;
	rc = canonical_of(&d, &canon, &clen);
	if (rc)
		goto out;
	rc = hash_of(canon, clen, p->hash);
	if (rc)
		goto out;
	*out = p;
	p = NULL;
out:
	free(canon);
	doc_free(&d);
	gradeq_policy_free(p);
	return rc;
}

void gradeq_policy_free(struct gradeq_policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->ngraders; i++) {
		free(p->graders[i].type);
		free(p->graders[i].short_label);
	}
	free(p->graders);
	for (size_t i = 0; i < p->ncutoffs; i++)
		free(p->cutoffs[i].letter);
	free(p->cutoffs);
	free(p);
}
