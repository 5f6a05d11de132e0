/* gradeq-report's commands (DESIGN.md section 6): a grade report is an
 * output built by part jobs ("report.part", report_job.h) of a run of its
 * own, on the release's queues; list and delete outputs; purge the ones
 * past keep-until. The program (src/bin/gradeq-report.c) only parses. */
#ifndef GRADEQ_REPORT_H
#define GRADEQ_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "gradeq/err.h"

struct gradeq_cli;
struct gradeq_store;
struct gradeq_config;

struct gradeq_report_options {
	const char *const *courses; /* one output per course */
	int ncourses;
	const char *release;    /* NULL: the promoted one */
	int batch_size;         /* learners per part */
	const char *keep_until; /* RFC 3339 or YYYY-MM-DD; NULL: kept */
	bool use_once;          /* deleted after its first complete download */
	const char *created_by; /* who asked (the user name, for the row) */
};

struct gradeq_report_result {
	char run_id[37];
	char release[65];
	int noutputs;
	char (*output_ids)[37]; /* malloc'd, one per course in order */
	long parts, learners;
};

void gradeq_report_result_release(struct gradeq_report_result *r);

/* Checks --keep-until: an RFC 3339 time or a date (midnight UTC), in the
 * future; writes it as RFC 3339 into out. GRADEQ_ERR_INVALID otherwise. */
int gradeq_report_keep_until(const char *s, char *out, size_t len) GRADEQ_MUST_CHECK;

/* Records the run and one output per course, then publishes a part job
 * per batch of the course's graded learners (in user id order), each
 * recorded before it is published and confirmed by the broker. */
int gradeq_report_create(struct gradeq_cli *cli, const struct gradeq_report_options *o,
			 struct gradeq_report_result *r) GRADEQ_MUST_CHECK;

/* Prints a course's outputs: a table, or (json) a JSON array of objects
 * with output_id, run_id, course_id, name, state, backend, size, sha256,
 * created_by, created_at, sealed_at, keep_until, use_once, downloaded_at,
 * deleted_at. */
int gradeq_report_list(struct gradeq_cli *cli, const char *course_id, bool json,
		       FILE *out) GRADEQ_MUST_CHECK;

/* The same JSON array as list --json, in a malloc'd *out. */
int gradeq_report_list_json(struct gradeq_store *st, const char *course_id,
			    char **out) GRADEQ_MUST_CHECK;

/* Deletes an output: its stored object and parts, then the row marked
 * deleted. GRADEQ_ERR_NOT_FOUND when there is no such output left. */
int gradeq_report_delete(struct gradeq_cli *cli, const char *output_id) GRADEQ_MUST_CHECK;

/* Deletes an output as user_id, who must be on its course team or a
 * global operator (GRADEQ_ERR_ACCESS otherwise); user_id -1: no check (the
 * command line, run by whoever holds the configuration). */
int gradeq_report_delete_by(struct gradeq_store *st, const struct gradeq_config *cfg,
			    const char *output_id, int32_t user_id) GRADEQ_MUST_CHECK;

/* True when user is one of output_operators. */
bool gradeq_report_is_operator(const struct gradeq_config *cfg, int32_t user);

/* *ok: user may read course_id's outputs now: a global operator or on the
 * course team (staff, instructor). A user <= 0 (none) never may. */
int gradeq_report_may_read(struct gradeq_store *st, const struct gradeq_config *cfg,
			   const char *course_id, int32_t user, bool *ok) GRADEQ_MUST_CHECK;

/* The path and query of a download link for output_id signed for user_id
 * until now + expires_s ("/outputs/ID?user=U&expires=E&sig=S", into path;
 * *expires gets E), with the checks and errors of gradeq_report_url. The
 * link is a credential: never log it. */
int gradeq_report_link(struct gradeq_store *st, const struct gradeq_config *cfg,
		       const char *output_id, int32_t user_id, long expires_s, char *path,
		       size_t len, int64_t *expires) GRADEQ_MUST_CHECK;

/* Prints on out one absolute download link for output_id, signed for
 * user_id until now + expires_s (output_link_base and the key of
 * output_link_key_file). GRADEQ_ERR_ACCESS ("user U is not on the course
 * team of C") when the user may not read the course's outputs;
 * GRADEQ_ERR_NOT_FOUND when the output is unknown or deleted;
 * GRADEQ_ERR_STATE when it is not sealed yet. */
int gradeq_report_url(struct gradeq_cli *cli, const char *output_id, int32_t user_id,
		      long expires_s, FILE *out) GRADEQ_MUST_CHECK;

/* A download through a signed link (gradeq-web's /outputs/ID): checks the
 * link (signature, expiry: GRADEQ_ERR_ACCESS), that the output is sealed
 * (GRADEQ_ERR_NOT_FOUND otherwise: unknown, deleted, or not sealed yet) and
 * that user is on the course team now (GRADEQ_ERR_ACCESS), then opens the
 * stored file: *fd (the caller closes it, or hands it to sendfile), *size,
 * *use_once. On the s3 backend no file is opened (*fd stays -1): redirect
 * gets a presigned GET URL of the object, valid s3_link_ttl_s seconds;
 * except for a use-once output, whose object is copied into an unlinked
 * temporary file (*fd) and checked against its seal's SHA-256 and size
 * (GRADEQ_ERR_IO otherwise): the caller sends it and, after the last byte,
 * calls gradeq_report_downloaded, which deletes the object. */
int gradeq_report_open_download(struct gradeq_store *st, const struct gradeq_config *cfg,
				const char *output_id, const char *user, const char *expires,
				const char *sig, int *fd, long long *size, bool *use_once,
				char *redirect, size_t rlen) GRADEQ_MUST_CHECK;

/* After a complete download: downloaded_at recorded, and a use-once
 * output deleted (object, then row). */
int gradeq_report_downloaded(struct gradeq_store *st, const struct gradeq_config *cfg,
			     const char *output_id) GRADEQ_MUST_CHECK;

/* Deletes every output past its keep-until (objects, then rows); *n gets
 * how many. For gradeq-admin purge-history. */
int gradeq_report_purge_expired(struct gradeq_store *st, const struct gradeq_config *cfg,
				long *n) GRADEQ_MUST_CHECK;

#endif
