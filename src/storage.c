/* Output storage: the file backend (a directory). Parts are files under
 * KEY.parts/; the seal writes KEY.tmp, fsyncs it, renames it to KEY and
 * fsyncs the directory, so a reader sees the whole output or none.
 *
 * The s3 backend (s3.c does the HTTP): parts are objects KEY.parts/NNNNNN;
 * the seal fetches them in order through the consumer into a temporary
 * file, hashing as it goes, and PUTs the whole as KEY: one PUT makes the
 * object appear whole or not at all. Not a multipart upload: S3 refuses
 * parts under 5 MiB except the last, and a part job's rows are a batch
 * (kilobytes), so UploadPartCopy of the part objects would fail for every
 * real report; one PUT takes up to 5 GiB, far beyond a course's report. */
#include "gradeq/storage.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gradeq/config.h"
#include "gradeq/s3.h"

struct gradeq_storage {
	char *dir;            /* file backend */
	struct gradeq_s3 *s3; /* s3 backend */
};

static int mkdir_p(const char *path)
{
	char tmp[PATH_MAX + 8];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(tmp))
		return -1;
	memcpy(tmp, path, n + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0750) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(tmp, 0750) < 0 && errno != EEXIST ? -1 : 0;
}

int gradeq_storage_open(const struct gradeq_config *cfg, struct gradeq_storage **out)
{
	struct gradeq_storage *s;

	*out = NULL;
	if (cfg->output_backend && strcmp(cfg->output_backend, "s3") == 0) {
		int rc;

		s = calloc(1, sizeof(*s));
		if (!s)
			return GRADEQ_ERR_NOMEM;
		rc = gradeq_s3_open(cfg->s3_endpoint, cfg->s3_bucket, cfg->s3_region,
				    cfg->s3_access_key_file, cfg->s3_secret_key_file, &s->s3);
		if (rc) {
			free(s);
			return rc;
		}
		*out = s;
		return 0;
	}
	if (!cfg->output_dir || !*cfg->output_dir)
		return gradeq_error(GRADEQ_ERR_CONFIG, "output_dir is not set");
	if (mkdir_p(cfg->output_dir) < 0)
		return gradeq_error(GRADEQ_ERR_CONFIG, "output directory '%s': %s", cfg->output_dir,
				    strerror(errno));
	s = calloc(1, sizeof(*s));
	if (!s || !(s->dir = strdup(cfg->output_dir))) {
		free(s);
		return GRADEQ_ERR_NOMEM;
	}
	*out = s;
	return 0;
}

void gradeq_storage_free(struct gradeq_storage *s)
{
	if (!s)
		return;
	free(s->dir);
	gradeq_s3_free(s->s3);
	free(s);
}

const char *gradeq_storage_backend(const struct gradeq_storage *s)
{
	return s->s3 ? "s3" : "file";
}

/* A key is a file name the store made (UUID.csv): refuse anything that
 * could leave the directory. */
static bool key_ok(const char *key)
{
	return *key && key[0] != '.' && !strchr(key, '/') && strlen(key) < 200;
}

int gradeq_storage_path(const struct gradeq_storage *s, const char *key, char *buf, size_t len)
{
	if (!key_ok(key))
		return gradeq_error(GRADEQ_ERR_INVALID, "bad output key '%s'", key);
	if (s->s3)
		return gradeq_error(GRADEQ_ERR_INVALID, "an s3 output has no path");
	if ((size_t)snprintf(buf, len, "%s/%s", s->dir, key) >= len)
		return gradeq_error(GRADEQ_ERR_INVALID, "output path too long");
	return 0;
}

static int io_fail(const char *what, const char *path)
{
	/* ENOSPC, EIO...: another attempt may find the disk better */
	return gradeq_error(GRADEQ_ERR_IO, "%s '%s': %s", what, path, strerror(errno));
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return io_fail("opening directory", dir);
	if (fsync(fd) < 0)
		rc = io_fail("syncing directory", dir);
	close(fd);
	return rc;
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Writes path durably and atomically through path.tmp. */
static int write_atomic(const char *path, const char *dir, const void *data, size_t len)
{
	char tmp[PATH_MAX + 8];
	int fd, rc = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		return io_fail("creating", tmp);
	if (write_all(fd, data, len) < 0 || fsync(fd) < 0)
		rc = io_fail("writing", tmp);
	if (close(fd) < 0 && !rc)
		rc = io_fail("closing", tmp);
	if (!rc && rename(tmp, path) < 0)
		rc = io_fail("renaming", tmp);
	if (rc)
		unlink(tmp);
	return rc ? rc : fsync_dir(dir);
}

static void part_path(const struct gradeq_storage *s, const char *key, uint32_t part, char *buf,
		      size_t len)
{
	snprintf(buf, len, "%s/%s.parts/%06u", s->dir, key, (unsigned)part);
}

int gradeq_storage_put_part(struct gradeq_storage *s, const char *key, uint32_t part,
			    const void *data, size_t len)
{
	char dir[PATH_MAX], path[PATH_MAX];

	if (!key_ok(key))
		return gradeq_error(GRADEQ_ERR_INVALID, "bad output key '%s'", key);
	if (s->s3) {
		snprintf(path, sizeof(path), "%s.parts/%06u", key, (unsigned)part);
		return gradeq_s3_put(s->s3, path, data, len);
	}
	snprintf(dir, sizeof(dir), "%s/%s.parts", s->dir, key);
	if (mkdir(dir, 0750) < 0 && errno != EEXIST)
		return io_fail("creating", dir);
	part_path(s, key, part, path, sizeof(path));
	return write_atomic(path, dir, data, len);
}

/* Appends the file at path to fd, hashing it. */
static int append_file(int fd, const char *path, EVP_MD_CTX *md, long long *size)
{
	char buf[65536];
	int in = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

	if (in < 0)
		return errno == ENOENT
			       ? gradeq_error(GRADEQ_ERR_NOT_FOUND, "part '%s' is missing", path)
			       : io_fail("opening", path);
	for (;;) {
		ssize_t r = read(in, buf, sizeof(buf));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = io_fail("reading", path);
			break;
		}
		if (r == 0)
			break;
		if (write_all(fd, buf, (size_t)r) < 0) {
			rc = io_fail("writing the sealed output from", path);
			break;
		}
		EVP_DigestUpdate(md, buf, (size_t)r);
		*size += r;
	}
	close(in);
	return rc;
}

static void hex(const unsigned char *md, unsigned n, char out[65])
{
	static const char digits[] = "0123456789abcdef";

	for (unsigned i = 0; i < n && i < 32; i++) {
		out[2 * i] = digits[md[i] >> 4];
		out[2 * i + 1] = digits[md[i] & 0xf];
	}
	out[64] = '\0';
}

/* Copies fp (from its start) to out, hashing it. */
static int append_stream(FILE *fp, FILE *out, EVP_MD_CTX *md, long long *size)
{
	char buf[65536];
	size_t r;

	rewind(fp);
	while ((r = fread(buf, 1, sizeof(buf), fp)) > 0) {
		if (fwrite(buf, 1, r, out) != r)
			return gradeq_error(GRADEQ_ERR_IO, "writing the sealed output: %s",
					    strerror(errno));
		EVP_DigestUpdate(md, buf, r);
		*size += (long long)r;
	}
	return ferror(fp) ? gradeq_error(GRADEQ_ERR_IO, "reading a part: %s", strerror(errno)) : 0;
}

static int seal_s3(struct gradeq_storage *s, const char *key, const void *header, size_t hlen,
		   uint32_t nparts, long long *size, char sha256[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	char name[PATH_MAX];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	FILE *out = tmpfile(), *part = NULL;
	int rc = 0;

	if (!key_ok(key))
		rc = gradeq_error(GRADEQ_ERR_INVALID, "bad output key '%s'", key);
	else if (!ctx || !out || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		rc = gradeq_error(GRADEQ_ERR_IO, "temporary file for the seal: %s",
				  strerror(errno));
	if (!rc && fwrite(header, 1, hlen, out) != hlen)
		rc = gradeq_error(GRADEQ_ERR_IO, "writing the sealed output: %s", strerror(errno));
	if (!rc) {
		EVP_DigestUpdate(ctx, header, hlen);
		*size = (long long)hlen;
	}
	for (uint32_t i = 0; i < nparts && !rc; i++) {
		part = tmpfile();
		if (!part) {
			rc = gradeq_error(GRADEQ_ERR_IO, "temporary file: %s", strerror(errno));
			break;
		}
		snprintf(name, sizeof(name), "%s.parts/%06u", key, (unsigned)i);
		rc = gradeq_s3_get(s->s3, name, part);
		if (!rc && fflush(part) != 0)
			rc = gradeq_error(GRADEQ_ERR_IO, "temporary file: %s", strerror(errno));
		if (!rc)
			rc = append_stream(part, out, ctx, size);
		fclose(part);
	}
	if (!rc && fflush(out) != 0)
		rc = gradeq_error(GRADEQ_ERR_IO, "writing the sealed output: %s", strerror(errno));
	if (!rc && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 32)
		hex(md, mdlen, sha256);
	else if (!rc)
		rc = GRADEQ_ERR_NOMEM;
	if (!rc) {
		rewind(out);
		rc = gradeq_s3_put_file(s->s3, key, out, *size, sha256);
	}
	if (rc)
		sha256[0] = '\0';
	if (out)
		fclose(out);
	EVP_MD_CTX_free(ctx);
	return rc;
}

int gradeq_storage_seal(struct gradeq_storage *s, const char *key, const void *header, size_t hlen,
			uint32_t nparts, long long *size, char sha256[65])
{
	char path[PATH_MAX], tmp[PATH_MAX + 8], part[PATH_MAX];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	EVP_MD_CTX *ctx = NULL;
	int fd = -1, rc;

	*size = 0;
	sha256[0] = '\0';
	if (s->s3)
		return seal_s3(s, key, header, hlen, nparts, size, sha256);
	rc = gradeq_storage_path(s, key, path, sizeof(path));
	if (rc)
		return rc;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	ctx = EVP_MD_CTX_new();
	if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		rc = GRADEQ_ERR_NOMEM;
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0) {
		rc = io_fail("creating", tmp);
		goto out;
	}
	if (write_all(fd, header, hlen) < 0) {
		rc = io_fail("writing", tmp);
		goto out;
	}
	EVP_DigestUpdate(ctx, header, hlen);
	*size = (long long)hlen;
	for (uint32_t i = 0; i < nparts && !rc; i++) {
		part_path(s, key, i, part, sizeof(part));
		rc = append_file(fd, part, ctx, size);
	}
	if (!rc && fsync(fd) < 0)
		rc = io_fail("syncing", tmp);
	if (close(fd) < 0 && !rc)
		rc = io_fail("closing", tmp);
	fd = -1;
	if (!rc && rename(tmp, path) < 0)
		rc = io_fail("renaming", tmp);
	if (!rc)
		rc = fsync_dir(s->dir);
	if (!rc && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 32)
		hex(md, mdlen, sha256);
	else if (!rc)
		rc = GRADEQ_ERR_NOMEM;
out:
	if (fd >= 0)
		close(fd);
	if (rc)
		unlink(tmp);
	EVP_MD_CTX_free(ctx);
	return rc;
}

void gradeq_storage_drop_parts(struct gradeq_storage *s, const char *key, uint32_t nparts)
{
	char path[PATH_MAX];

	if (!key_ok(key))
		return;
	if (s->s3) {
		for (uint32_t i = 0; i < nparts; i++) {
			snprintf(path, sizeof(path), "%s.parts/%06u", key, (unsigned)i);
			if (gradeq_s3_delete(s->s3, path) != 0)
				continue; /* best effort: the output is sealed */
		}
		return;
	}
	for (uint32_t i = 0; i < nparts; i++) {
		part_path(s, key, i, path, sizeof(path));
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/%s.parts", s->dir, key);
	rmdir(path);
}

int gradeq_storage_remove(struct gradeq_storage *s, const char *key, uint32_t nparts)
{
	char path[PATH_MAX];
	int rc;

	if (s->s3) {
		if (!key_ok(key))
			return gradeq_error(GRADEQ_ERR_INVALID, "bad output key '%s'", key);
		gradeq_storage_drop_parts(s, key, nparts);
		return gradeq_s3_delete(s->s3, key);
	}
	rc = gradeq_storage_path(s, key, path, sizeof(path));

	if (rc)
		return rc;
	gradeq_storage_drop_parts(s, key, nparts);
	if (unlink(path) < 0 && errno != ENOENT)
		return io_fail("removing", path);
	return fsync_dir(s->dir);
}

int gradeq_storage_presign(const struct gradeq_storage *s, const char *key, long expires_s,
			   char *buf, size_t len)
{
	if (!s->s3)
		return gradeq_error(GRADEQ_ERR_INVALID, "the file backend has no presigned URLs");
	if (!key_ok(key))
		return gradeq_error(GRADEQ_ERR_INVALID, "bad output key '%s'", key);
	return gradeq_s3_presign(s->s3, key, expires_s, buf, len);
}

int gradeq_storage_fetch(struct gradeq_storage *s, const char *key, FILE *fp)
{
	if (!s->s3)
		return gradeq_error(GRADEQ_ERR_INVALID, "the file backend is read in place");
	if (!key_ok(key))
		return gradeq_error(GRADEQ_ERR_INVALID, "bad output key '%s'", key);
	return gradeq_s3_get(s->s3, key, fp);
}
