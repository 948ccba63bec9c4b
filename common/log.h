/*
 * Logging: one line per event on stderr, written with a single write(2) so
 * lines from the supervisor and its workers never interleave.
 *   2026-11-23T10:50:00.123Z warren[1234] supervisor: INFO: message
 */
#ifndef WR_LOG_H
#define WR_LOG_H

#include <stdarg.h>

enum wr_log_level { WR_LOG_ERROR = 0, WR_LOG_WARN, WR_LOG_INFO, WR_LOG_DEBUG };

/* Set the name that follows the pid ("supervisor", "worker 2").  The string
 * is copied. */
void wr_log_set_ident(const char *ident);
/* Lines above LEVEL are dropped. */
void wr_log_set_level(int level);
void wr_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void wr_logv(int level, const char *fmt, va_list ap);

/* Call FN(LEVEL, MSG) for each line written, after it is written: MSG is
 * the message text alone (no time, pid or level), NUL-terminated, valid
 * only during the call.  FN runs on the thread that logged and must not
 * log.  NULL removes the hook.  The worker copies its ERROR lines into
 * its scoreboard slot with it. */
void wr_log_set_hook(void (*fn)(int level, const char *msg));

#define wr_error(...) wr_log(WR_LOG_ERROR, __VA_ARGS__)
#define wr_warn(...) wr_log(WR_LOG_WARN, __VA_ARGS__)
#define wr_info(...) wr_log(WR_LOG_INFO, __VA_ARGS__)
#define wr_debug(...) wr_log(WR_LOG_DEBUG, __VA_ARGS__)

#endif
