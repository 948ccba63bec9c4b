/* STUB until the notify branch lands. */
#include "common/notify.h"
int wr_notify(const char *state)
{
    (void)state;
    return 0;
}
int wr_notify_fmt(const char *fmt, ...)
{
    (void)fmt;
    return 0;
}
long wr_notify_watchdog_ms(void)
{
    return 0;
}
int wr_notify_reloading(void)
{
    return 0;
}
