/* gradeq-admin check-config: a configuration file checked the way the
 * programs will use it, and its effective settings shown without secrets. */
#ifndef GRADEQ_CHECKCONFIG_H
#define GRADEQ_CHECKCONFIG_H

#include <stdbool.h>
#include <stdio.h>

#include "gradeq/err.h"

/* Loads path (NULL: the default file, as the programs do) with the
 * environment overrides, then checks what loading alone does not: the
 * broker URL parses, amqp_password_file gives a password, amqp_cert and
 * amqp_key go together, pg_dsn parses. On success writes the effective
 * settings, secrets masked, to out and returns 0; otherwise writes one line
 * "PROG: error: FILE:LINE: 'setting' ..." or "PROG: error: FILE: 'setting'
 * ..." to err and returns GRADEQ_ERR_CONFIG (or the loader's error). With
 * json, out gets one object either way: {"valid", "file", "settings"} or
 * {"valid": false, "file", "error"}. */
int gradeq_check_config(const char *prog, const char *path, bool json, FILE *out,
			FILE *err) GRADEQ_MUST_CHECK;

#endif
