/* Readiness for systemd (Type=notify): sd_notify when gradeq is built with
 * libsystemd, nothing otherwise. */
#ifndef GRADEQ_NOTIFY_H
#define GRADEQ_NOTIFY_H

/* Sends state ("READY=1", "RELOADING=1", "STOPPING=1", "STATUS=...") to
 * the service manager when NOTIFY_SOCKET names one; errors are ignored (a
 * daemon must run without systemd too). */
void gradeq_notify(const char *state);

#endif
