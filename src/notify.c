#include "gradeq/notify.h"

#ifdef GRADEQ_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

void gradeq_notify(const char *state)
{
#ifdef GRADEQ_HAVE_SYSTEMD
	(void)sd_notify(0, state);
#else
	(void)state;
#endif
}
