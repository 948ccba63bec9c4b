/*
 * Logging to stderr.  Each line is formatted into one buffer and written
 * with a single write(2): the supervisor and its workers share stderr, and
 * a line must never be torn by another process's line.
 */
#include "common/log.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static char log_ident[64] = "warren";
static int log_level = WR_LOG_INFO;
static void (*log_hook)(int level, const char *msg);

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

void wr_log_set_ident(const char *ident)
{
    snprintf(log_ident, sizeof log_ident, "%s", ident);
}

void wr_log_set_level(int level)
{
    log_level = level;
}

void wr_log_set_hook(void (*fn)(int level, const char *msg))
{
    log_hook = fn;
}

void wr_logv(int level, const char *fmt, va_list ap)
{
    char line[2048];
    struct timeval tv;
    struct tm tm;
    size_t n, text;
    int r;

    if (level > log_level)
        return;
    if (level < WR_LOG_ERROR)
        level = WR_LOG_ERROR;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    r = snprintf(line + n, sizeof line - n, ".%03dZ warren[%d] %s: %s: ", (int)(tv.tv_usec / 1000),
                 (int)getpid(), log_ident, level_names[level < 4 ? level : 3]);
    if (r > 0)
        n += (size_t)r < sizeof line - n ? (size_t)r : sizeof line - n - 1;
    text = n;
    r = vsnprintf(line + n, sizeof line - n, fmt, ap);
    if (r > 0)
        n += (size_t)r < sizeof line - n ? (size_t)r : sizeof line - n - 1;
    if (n >= sizeof line - 1)
        n = sizeof line - 2;
    line[n++] = '\n';
    if (write(STDERR_FILENO, line, n) < 0) {
        /* Best effort: there is nowhere else to report a failed log
         * write.  The hook still sees the line. */
    }
    if (log_hook && text < n) {
        line[n - 1] = '\0'; /* the newline */
        log_hook(level, line + text);
    }
}

void wr_log(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    wr_logv(level, fmt, ap);
    va_end(ap);
}
