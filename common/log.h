/*
 * Logging: one line per event on stderr, written with a single write(2) so
 * lines from the supervisor and its workers never interleave.
 *   2026-11-23T10:50:00.123Z warren[1234] supervisor: INFO: message
 *
 * Under journald (JOURNAL_STREAM names our stderr) each line starts with
 * its syslog priority instead of the time, which journald adds itself:
 *   <6>warren[1234] supervisor: INFO: message
 *
 * With the JSON format (wr_log_set_format) each line is one object:
 *   {"time":"2026-11-23T10:50:00.123Z","level":"info","role":"worker",
 *    "worker":2,"pid":1240,"route":"rpc","msg":"..."}
 * holding the structured fields of the line (wr_log_fields) besides the
 * message; the text format writes the message alone, so a line reads the
 * same whichever call wrote it.
 */
#ifndef WR_LOG_H
#define WR_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum wr_log_level { WR_LOG_ERROR = 0, WR_LOG_WARN, WR_LOG_INFO, WR_LOG_DEBUG };

enum wr_log_format { WR_LOG_TEXT = 0, WR_LOG_JSON };

/* Set the name that follows the pid ("supervisor", "worker 2").  The string
 * is copied.  It is also the "role" of JSON lines, except that "worker N"
 * gives role "worker" and "worker": N. */
void wr_log_set_ident(const char *ident);
/* Lines above LEVEL are dropped. */
void wr_log_set_level(int level);
/* WR_LOG_TEXT (the default) or WR_LOG_JSON. */
void wr_log_set_format(int format);
/* Look at $JOURNAL_STREAM again (the first line looks once by itself):
 * for a program that moved its stderr after logging. */
void wr_log_detect_journal(void);

void wr_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void wr_logv(int level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* One structured field of a line.  KEY and STR are borrowed for the call.
 * A field whose KEY is NULL, and a string field whose STR is NULL, are
 * left out (for fields that only some lines have).  "worker" and "pid" replace
 * the line's own (a supervisor line about a worker names that worker);
 * "time", "level", "role" and "msg" are reserved and such fields are left
 * out. */
typedef struct wr_log_field {
    const char *key;
    enum { WR_LOG_FIELD_STR, WR_LOG_FIELD_INT, WR_LOG_FIELD_DOUBLE } type;
    const char *str;
    long long num;
    double dbl;
} wr_log_field;

#define WR_LOG_STR(k, v) ((wr_log_field){.key = (k), .type = WR_LOG_FIELD_STR, .str = (v)})
#define WR_LOG_INT(k, v) ((wr_log_field){.key = (k), .type = WR_LOG_FIELD_INT, .num = (v)})
#define WR_LOG_DOUBLE(k, v) ((wr_log_field){.key = (k), .type = WR_LOG_FIELD_DOUBLE, .dbl = (v)})

/* Log FMT like wr_log, with the N fields F in JSON lines (text lines are
 * the message alone).  At most WR_LOG_MAX_FIELDS are written. */
#define WR_LOG_MAX_FIELDS 16
void wr_log_fields(int level, const wr_log_field *f, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void wr_log_fieldsv(int level, const wr_log_field *f, size_t n, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

/* The array and count arguments of wr_log_fields from a list of fields:
 *   wr_log_fields(WR_LOG_WARN, WR_LOG_FIELDS(WR_LOG_STR("route", r)), "...") */
#define WR_LOG_FIELDS(...)                                                                         \
    ((const wr_log_field[]){__VA_ARGS__}),                                                         \
        (sizeof((const wr_log_field[]){__VA_ARGS__}) / sizeof(wr_log_field))

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
