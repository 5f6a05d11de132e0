/* Signed download links (outputlink.h). */
#include "gradeq/outputlink.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

int gradeq_link_key_read(const char *path, unsigned char *key, size_t *len)
{
	FILE *fp;
	size_t n;

	*len = 0;
	if (!path || !*path)
		return gradeq_error(GRADEQ_ERR_CONFIG, "output_link_key_file is not set");
	fp = fopen(path, "rb");
	if (!fp)
		return gradeq_error(GRADEQ_ERR_CONFIG, "link key file '%s': %s", path,
				    strerror(errno));
	n = fread(key, 1, GRADEQ_LINK_KEY_MAX, fp);
	fclose(fp);
	if (n && key[n - 1] == '\n')
		n--;
	if (n < GRADEQ_LINK_KEY_MIN)
		return gradeq_error(GRADEQ_ERR_CONFIG,
				    "link key file '%s' holds %zu bytes, fewer than %d", path, n,
				    GRADEQ_LINK_KEY_MIN);
	*len = n;
	return 0;
}

void gradeq_link_sign(const unsigned char *key, size_t keylen, const char *output_id, int32_t user,
		      int64_t expires, char sig[GRADEQ_LINK_SIG_HEX])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char msg[160];
	int n;

	/* every field delimited, so that no two triples sign the same bytes */
	n = snprintf(msg, sizeof(msg), "gradeq-output-link\n%s\n%" PRId32 "\n%" PRId64, output_id,
		     user, expires);
	sig[0] = '\0';
	if (n < 0 || (size_t)n >= sizeof(msg) ||
	    !HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg, (size_t)n, md,
		  &mdlen) ||
	    mdlen != 32)
		return;
	for (unsigned i = 0; i < mdlen; i++) {
		sig[2 * i] = digits[md[i] >> 4];
		sig[2 * i + 1] = digits[md[i] & 0xf];
	}
	sig[64] = '\0';
}

int gradeq_link_verify(const unsigned char *key, size_t keylen, const char *output_id, int32_t user,
		       int64_t expires, const char *sig, time_t now)
{
	char want[GRADEQ_LINK_SIG_HEX];

	gradeq_link_sign(key, keylen, output_id, user, expires, want);
	if (!want[0] || !sig || strlen(sig) != 64 || CRYPTO_memcmp(want, sig, 64) != 0)
		return gradeq_error(GRADEQ_ERR_ACCESS, "link signature does not match");
	if ((int64_t)now > expires)
		return gradeq_error(GRADEQ_ERR_ACCESS, "link expired");
	return 0;
}

int gradeq_link_path(char *buf, size_t len, const char *output_id, int32_t user, int64_t expires,
		     const char *sig)
{
	int n = snprintf(buf, len, "/outputs/%s?user=%" PRId32 "&expires=%" PRId64 "&sig=%s",
			 output_id, user, expires, sig);

	if (n < 0 || (size_t)n >= len)
		return gradeq_error(GRADEQ_ERR_INVALID, "link too long");
	return 0;
}
