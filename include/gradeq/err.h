/* One error model for all of gradeq: functions return 0 or a negative
 * enum gradeq_err; gradeq_strerror() names the code and gradeq_errmsg() gives
 * the detail of the last error recorded with gradeq_error(). */
#ifndef GRADEQ_ERR_H
#define GRADEQ_ERR_H

#include <stdbool.h>

#define GRADEQ_MUST_CHECK __attribute__((warn_unused_result))
#define GRADEQ_PRINTF(a, b) __attribute__((format(printf, a, b)))

enum gradeq_err {
	GRADEQ_OK = 0,
	GRADEQ_ERR_NOMEM = -1,         /* out of memory */
	GRADEQ_ERR_INVALID = -2,       /* bad argument or value out of range */
	GRADEQ_ERR_CONFIG = -3,        /* bad configuration */
	GRADEQ_ERR_DECODE = -4,        /* message body is not a job */
	GRADEQ_ERR_SCHEMA = -5,        /* job schema version not accepted */
	GRADEQ_ERR_POLICY = -6,        /* grading policy malformed */
	GRADEQ_ERR_NOT_FOUND = -7,     /* unknown course, release, run */
	GRADEQ_ERR_BROKER = -8,        /* broker unreachable or connection lost */
	GRADEQ_ERR_DB = -9,            /* database error that retrying won't fix */
	GRADEQ_ERR_DB_TRANSIENT = -10, /* connection lost, deadlock, serialization... */
	GRADEQ_ERR_UNROUTABLE = -11,   /* broker returned a mandatory message */
	GRADEQ_ERR_NACKED = -12,       /* broker refused a message (basic.nack) */
	GRADEQ_ERR_TIMEOUT = -13,      /* no answer in time */
	GRADEQ_ERR_ACCESS = -14,       /* ACCESS_REFUSED or authentication failure */
	GRADEQ_ERR_IO = -15,           /* file or system call failed */
	GRADEQ_ERR_STATE = -16,        /* refused: illegal state or transition */
	GRADEQ_ERR_PRECONDITION = -17, /* broker object exists with other arguments */
	GRADEQ_ERR_INTERRUPTED = -18,  /* a signal asked us to stop */
};

/* Name of an error code; never NULL. */
const char *gradeq_strerror(int err);

/* True for errors a later attempt may not meet again (lost connections,
 * deadlocks, timeouts); false for permanent ones. */
bool gradeq_err_is_transient(int err);

/* What a failed job's attempt comes to: another try after a retry tier
 * (transient), or the dead queue because retrying will not help
 * (permanent) or the tiers are used up (exhausted). The names are the
 * gradeq-error-class header's values. */
enum gradeq_err_class {
	GRADEQ_CLASS_TRANSIENT,
	GRADEQ_CLASS_PERMANENT,
	GRADEQ_CLASS_EXHAUSTED,
};

/* The class of error err at attempt (1 for the first) when there are
 * ntiers retry tiers. */
enum gradeq_err_class gradeq_err_classify(int err, long long attempt, int ntiers);

/* "transient", "permanent", "exhausted"; never NULL. */
const char *gradeq_err_class_name(enum gradeq_err_class c);

/* Parses a class name; GRADEQ_ERR_INVALID when it is none of them. */
int gradeq_err_class_parse(const char *name, enum gradeq_err_class *out) GRADEQ_MUST_CHECK;

/* Records a human detail for code 'err' and returns 'err', so callers write
 * `return gradeq_error(GRADEQ_ERR_INVALID, "bad batch size '%s'", s);`. */
int gradeq_error(int err, const char *fmt, ...) GRADEQ_PRINTF(2, 3);

/* The detail recorded by the last gradeq_error() (or the code's name when
 * none was recorded for it); valid until the next gradeq_error(). */
const char *gradeq_errmsg(int err);

#endif
