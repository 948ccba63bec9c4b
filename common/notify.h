/* STUB until the notify branch lands: see /work/briefs/notify.md. */
#ifndef WR_NOTIFY_H
#define WR_NOTIFY_H
int wr_notify(const char *state);
int wr_notify_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
long wr_notify_watchdog_ms(void);
int wr_notify_reloading(void);
#endif
