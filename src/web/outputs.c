/* gradeq-web's /outputs/ID: job outputs (grade reports) served through
 * signed, expiring links that gradeq-report url prints. No session: the
 * link is the credential, checked with the course team at download time
 * (report.c); the file goes out by sendfile (MHD_create_response_from_fd),
 * never copied through this process. A refused link is a 403 and a log
 * line. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "gradeq/log.h"
#include "gradeq/report.h"
#include "web/internal.h"

int api_output_download(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r)
{
	const char *user = req_arg(q, "user"), *expires = req_arg(q, "expires"),
		   *sig = req_arg(q, "sig");
	struct gradeq_store *st;
	long long size = 0;
	bool use_once = false;
	char disp[128], redirect[2048] = "";
	int fd = -1, rc;

	pthread_mutex_lock(&q->w->lib_lock);
	rc = web_store(q->w, &st);
	if (!rc)
		rc = gradeq_report_open_download(st, q->w->cli->cfg, p[0], user, expires, sig, &fd,
						 &size, &use_once, redirect, sizeof(redirect));
	if (rc == GRADEQ_ERR_ACCESS)
		log_warn("event=output_link_refused output=%s user=%s addr=%s reason=\"%s\"", p[0],
			 user ? user : "-", q->addr, gradeq_errmsg(rc));
	pthread_mutex_unlock(&q->w->lib_lock);
	if (rc == GRADEQ_ERR_ACCESS)
		return reply_error(r, 403, "this link is not valid");
	if (rc == GRADEQ_ERR_NOT_FOUND)
		return reply_error(r, 404, "no such output");
	if (rc)
		return reply_error(r, 503, "the database cannot be reached");
	if (redirect[0]) {
		/* s3 backend: the bucket serves the bytes through a short-lived
		 * presigned GET; the download is recorded now (a use-once output
		 * is kept until it expires: the bucket cannot say when the
		 * transfer ended) */
		r->raw = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
		if (!r->raw)
			return reply_error(r, 500, "out of memory");
		r->status = 302;
		MHD_add_response_header(r->raw, "Location", redirect);
		MHD_add_response_header(r->raw, "Cache-Control", "no-store");
		if (!use_once)
			snprintf(q->downloaded, sizeof(q->downloaded), "%s", p[0]);
		return 0;
	}
	r->raw = MHD_create_response_from_fd((uint64_t)size, fd);
	if (!r->raw) {
		close(fd);
		return reply_error(r, 500, "out of memory");
	}
	r->status = 200;
	MHD_add_response_header(r->raw, "Content-Type", "text/csv; charset=utf-8");
	snprintf(disp, sizeof(disp), "attachment; filename=\"%s.csv\"", p[0]);
	MHD_add_response_header(r->raw, "Content-Disposition", disp);
	/* on_done() records the download once it is complete */
	snprintf(q->downloaded, sizeof(q->downloaded), "%s", p[0]);
	return 0;
}

void web_output_done(struct web *w, const char *output_id)
{
	struct gradeq_store *st;
	int rc;

	pthread_mutex_lock(&w->lib_lock);
	rc = web_store(w, &st);
	if (!rc)
		rc = gradeq_report_downloaded(st, w->cli->cfg, output_id);
	if (rc)
		log_warn("event=output_download_not_recorded output=%s error=\"%s\"", output_id,
			 gradeq_errmsg(rc));
	else
		log_info("event=output_downloaded output=%s", output_id);
	pthread_mutex_unlock(&w->lib_lock);
}

int api_outputs(struct req *q, char p[][GRADEQ_WEB_PARAM_MAX], struct reply *r)
{
	const char *course = req_arg(q, "course");
	struct gradeq_store *st;
	char *out = NULL;
	int rc;

	(void)p;
	if (!course || !*course || strlen(course) > 255)
		return reply_error(r, 400, "give course=ID");
	pthread_mutex_lock(&q->w->lib_lock);
	rc = web_store(q->w, &st);
	if (!rc)
		rc = gradeq_report_list_json(st, course, &out);
	pthread_mutex_unlock(&q->w->lib_lock);
	if (rc)
		return reply_error(r, 503, "the database cannot be reached");
	return reply_json(r, 200, out);
}
