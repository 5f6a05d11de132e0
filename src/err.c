#include "gradeq/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* per thread: gradeq-web runs the library in several */
static _Thread_local char errdetail[1024];
static _Thread_local int errcode;

const char *gradeq_strerror(int err)
{
	switch (err) {
	case GRADEQ_OK: return "success";
	case GRADEQ_ERR_NOMEM: return "out of memory";
	case GRADEQ_ERR_INVALID: return "invalid value";
	case GRADEQ_ERR_CONFIG: return "bad configuration";
	case GRADEQ_ERR_DECODE: return "malformed job message";
	case GRADEQ_ERR_SCHEMA: return "unsupported job schema version";
	case GRADEQ_ERR_POLICY: return "malformed grading policy";
	case GRADEQ_ERR_NOT_FOUND: return "not found";
	case GRADEQ_ERR_BROKER: return "broker error";
	case GRADEQ_ERR_DB: return "database error";
	case GRADEQ_ERR_DB_TRANSIENT: return "transient database error";
	case GRADEQ_ERR_UNROUTABLE: return "message unroutable";
	case GRADEQ_ERR_NACKED: return "message refused by broker";
	case GRADEQ_ERR_TIMEOUT: return "timed out";
	case GRADEQ_ERR_ACCESS: return "access refused";
	case GRADEQ_ERR_IO: return "i/o error";
	case GRADEQ_ERR_STATE: return "illegal state";
	case GRADEQ_ERR_PRECONDITION: return "precondition failed";
	case GRADEQ_ERR_INTERRUPTED: return "interrupted";
	}
	return "unknown error";
}

bool gradeq_err_is_transient(int err)
{
	switch (err) {
	case GRADEQ_ERR_BROKER:
	case GRADEQ_ERR_DB_TRANSIENT:
	case GRADEQ_ERR_TIMEOUT:
	case GRADEQ_ERR_NACKED:
	case GRADEQ_ERR_NOMEM: return true;
	default: return false;
	}
}

int gradeq_error(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errdetail, sizeof(errdetail), fmt, ap);
	va_end(ap);
	errcode = err;
	return err;
}

const char *gradeq_errmsg(int err)
{
	if (err == errcode && errdetail[0])
		return errdetail;
	return gradeq_strerror(err);
}

static const char *const class_names[] = {
	[GRADEQ_CLASS_TRANSIENT] = "transient",
	[GRADEQ_CLASS_PERMANENT] = "permanent",
	[GRADEQ_CLASS_EXHAUSTED] = "exhausted",
};

enum gradeq_err_class gradeq_err_classify(int err, long long attempt, int ntiers)
{
	if (!gradeq_err_is_transient(err))
		return GRADEQ_CLASS_PERMANENT;
	return attempt > ntiers ? GRADEQ_CLASS_EXHAUSTED : GRADEQ_CLASS_TRANSIENT;
}

const char *gradeq_err_class_name(enum gradeq_err_class c)
{
	if ((unsigned)c < sizeof(class_names) / sizeof(class_names[0]))
		return class_names[c];
	return "unknown";
}

int gradeq_err_class_parse(const char *name, enum gradeq_err_class *out)
{
	for (size_t i = 0; name && i < sizeof(class_names) / sizeof(class_names[0]); i++)
		if (strcmp(name, class_names[i]) == 0) {
			*out = (enum gradeq_err_class)i;
			return 0;
		}
	return gradeq_error(GRADEQ_ERR_INVALID, "unknown error class '%s'", name ? name : "");
}
