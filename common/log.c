/*
 * Logging to stderr.  Each line is formatted into one buffer and written
 * with a single write(2): the supervisor and its workers share stderr, and
 * a line must never be torn by another process's line.
 *
 * Nothing here allocates: the message and the line are built in stack
 * buffers, and a message too long for them is cut with a marker.  The
 * worker logs from two threads, so there is no static buffer either; the
 * settings are written once at startup, before any thread exists.
 */
#include "common/log.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* The longest message; longer ones end with TRUNCATED instead. */
#define MSG_MAX 2048
/* A JSON line: the message may double in size when escaped, plus fields. */
#define JSON_MAX 4096
static const char truncated[] = "...[truncated]";
#define TRUNCATED_LEN (sizeof truncated - 1)

static char log_ident[64] = "warren";
static char log_role[64] = "warren";
static int log_worker = -1; /* the index of "worker N", else -1 */
static int log_level = WR_LOG_INFO;
static int log_format = WR_LOG_TEXT;
static int log_journal = -1; /* 1: stderr is journald's stream; -1: not looked yet */
static void (*log_hook)(int level, const char *msg);

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
static const char *const json_levels[] = {"error", "warn", "info", "debug"};
/* The syslog priorities journald reads from a "<N>" line prefix
 * (sd-daemon(3)): err, warning, info, debug. */
static const int priorities[] = {3, 4, 6, 7};

void wr_log_set_ident(const char *ident)
{
    int index;
    char rest;

    snprintf(log_ident, sizeof log_ident, "%s", ident);
    if (sscanf(ident, "worker %d%c", &index, &rest) == 1 && index >= 0) {
        snprintf(log_role, sizeof log_role, "worker");
        log_worker = index;
    } else {
        snprintf(log_role, sizeof log_role, "%s", ident);
        log_worker = -1;
    }
    /* Here, before the worker starts its second thread, not lazily. */
    wr_log_detect_journal();
}

void wr_log_set_level(int level)
{
    log_level = level;
}

void wr_log_set_format(int format)
{
    log_format = format == WR_LOG_JSON ? WR_LOG_JSON : WR_LOG_TEXT;
}

void wr_log_set_hook(void (*fn)(int level, const char *msg))
{
    log_hook = fn;
}

/* systemd sets JOURNAL_STREAM=DEV:INODE when it connects stdout/stderr to
 * journald; it is inherited by everything we start, so it counts only when
 * our stderr still is that stream (systemd.exec(5)). */
void wr_log_detect_journal(void)
{
    const char *v = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    char rest;

    log_journal = 0;
    if (!v || sscanf(v, "%llu:%llu%c", &dev, &ino, &rest) != 2)
        return;
    if (fstat(STDERR_FILENO, &st) == 0 && (unsigned long long)st.st_dev == dev &&
        (unsigned long long)st.st_ino == ino)
        log_journal = 1;
}

/* A bounded output buffer: appends that do not fit fail and leave it as
 * it was, so a line is always whole. */
struct out {
    char *p;
    size_t n, cap;
};

static int put(struct out *o, const char *s, size_t len)
{
    if (len > o->cap - o->n)
        return -1;
    memcpy(o->p + o->n, s, len);
    o->n += len;
    return 0;
}

static int putf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int putf(struct out *o, const char *fmt, ...)
{
    va_list ap;
    int r;

    va_start(ap, fmt);
    r = vsnprintf(o->p + o->n, o->cap - o->n, fmt, ap);
    va_end(ap);
    if (r < 0 || (size_t)r >= o->cap - o->n)
        return -1;
    o->n += (size_t)r;
    return 0;
}

/* The length of the valid UTF-8 sequence at S (LEN bytes left), or 0.
 * Overlong forms, surrogates and code points above U+10FFFF are invalid
 * (RFC 3629). */
static size_t utf8_len(const unsigned char *s, size_t len)
{
    unsigned char lo = 0x80, hi = 0xbf;
    size_t need;

    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        need = 2;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        need = 3;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        need = 4;
    else
        return 0;
    if (s[0] == 0xe0)
        lo = 0xa0;
    else if (s[0] == 0xed)
        hi = 0x9f;
    else if (s[0] == 0xf0)
        lo = 0x90;
    else if (s[0] == 0xf4)
        hi = 0x8f;
    if (len < need || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < need; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return need;
}

/*
 * S (LEN bytes) as a JSON string: quotes, backslashes and control
 * characters escaped, each byte that is not part of valid UTF-8 written as
 * U+FFFD.  With CUT, a string that does not fit ends with TRUNCATED;
 * without, it fails whole.
 */
static int json_str(struct out *o, const char *str, size_t len, int cut)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t start = o->n, i = 0;
    char esc[8];

    /* Room kept for the marker and the closing quote. */
    if (put(o, "\"", 1) < 0 || o->cap - o->n < TRUNCATED_LEN + 1) {
        o->n = start;
        return -1;
    }
    o->cap -= TRUNCATED_LEN + 1;
    while (i < len) {
        const char *piece = esc;
        size_t plen = 2, step = 1;

        esc[0] = '\\';
        if (s[i] == '"' || s[i] == '\\')
            esc[1] = (char)s[i];
        else if (s[i] == '\n')
            esc[1] = 'n';
        else if (s[i] == '\r')
            esc[1] = 'r';
        else if (s[i] == '\t')
            esc[1] = 't';
        else if (s[i] < 0x20)
            plen = (size_t)snprintf(esc, sizeof esc, "\\u%04x", s[i]);
        else if (s[i] < 0x80)
            piece = (const char *)s + i, plen = 1;
        else if ((step = utf8_len(s + i, len - i)) > 0)
            piece = (const char *)s + i, plen = step;
        else
            piece = "\\ufffd", plen = 6, step = 1;
        if (put(o, piece, plen) < 0)
            break;
        i += step;
    }
    o->cap += TRUNCATED_LEN + 1;
    if (i < len) {
        if (!cut) {
            o->n = start;
            return -1;
        }
        put(o, truncated, TRUNCATED_LEN);
    }
    put(o, "\"", 1);
    return 0;
}

/* ,"KEY": */
static int json_key(struct out *o, const char *key)
{
    return put(o, ",", 1) < 0 || json_str(o, key, strlen(key), 0) < 0 || put(o, ":", 1) < 0 ? -1
                                                                                            : 0;
}

static int json_field(struct out *o, const wr_log_field *f)
{
    size_t start = o->n;
    int rc;

    if (json_key(o, f->key) < 0) {
        o->n = start;
        return -1;
    }
    switch (f->type) {
    case WR_LOG_FIELD_STR:
        rc = json_str(o, f->str, strlen(f->str), 1);
        break;
    case WR_LOG_FIELD_INT:
        rc = putf(o, "%lld", f->num);
        break;
    default: /* JSON has no NaN or infinity */
        rc = isfinite(f->dbl) ? putf(o, "%.3f", f->dbl) : put(o, "null", 4);
        break;
    }
    if (rc < 0)
        o->n = start;
    return rc;
}

static int has_field(const wr_log_field *f, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (f[i].key && strcmp(f[i].key, key) == 0)
            return 1;
    return 0;
}

static int reserved(const char *key)
{
    return !strcmp(key, "time") || !strcmp(key, "level") || !strcmp(key, "role") ||
           !strcmp(key, "msg");
}

/* The JSON object of one line into O (without the newline). */
static void json_line(struct out *o, int level, const char *time, const wr_log_field *f, size_t n,
                      const char *msg, size_t mlen)
{
    putf(o, "{\"time\":\"%s\",\"level\":\"%s\",\"role\":", time, json_levels[level]);
    json_str(o, log_role, strlen(log_role), 1);
    if (log_worker >= 0 && !has_field(f, n, "worker"))
        putf(o, ",\"worker\":%d", log_worker);
    if (!has_field(f, n, "pid"))
        putf(o, ",\"pid\":%d", (int)getpid());
    for (size_t i = 0; i < n && i < WR_LOG_MAX_FIELDS; i++) {
        if (!f[i].key || reserved(f[i].key) || (f[i].type == WR_LOG_FIELD_STR && !f[i].str))
            continue;
        json_field(o, &f[i]);
    }
    if (put(o, ",\"msg\":", 7) == 0)
        json_str(o, msg, mlen, 1);
    put(o, "}", 1);
}

/* Format the message into MSG (MSG_MAX bytes); one too long ends with
 * TRUNCATED, cut before a UTF-8 sequence rather than inside one.  Return
 * its length. */
static size_t format_msg(char *msg, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static size_t format_msg(char *msg, const char *fmt, va_list ap)
{
    int r = vsnprintf(msg, MSG_MAX, fmt, ap);
    size_t at;

    if (r < 0) {
        msg[0] = '\0';
        return 0;
    }
    if (r < MSG_MAX)
        return (size_t)r;
    at = MSG_MAX - sizeof truncated;
    while (at > 0 && ((unsigned char)msg[at] & 0xc0) == 0x80)
        at--;
    memcpy(msg + at, truncated, sizeof truncated);
    return at + TRUNCATED_LEN;
}

void wr_log_fieldsv(int level, const wr_log_field *f, size_t n, const char *fmt, va_list ap)
{
    char msg[MSG_MAX], line[JSON_MAX], time[40] = "";
    struct out o = {line, 0, sizeof line - 1}; /* room for the newline */
    struct timeval tv;
    struct tm tm;
    size_t mlen;

    if (level > log_level)
        return;
    if (level < WR_LOG_ERROR)
        level = WR_LOG_ERROR;
    if (level > WR_LOG_DEBUG)
        level = WR_LOG_DEBUG;
    if (log_journal < 0)
        wr_log_detect_journal();
    mlen = format_msg(msg, fmt, ap);
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    if (strftime(time, sizeof time, "%Y-%m-%dT%H:%M:%S", &tm) > 0)
        snprintf(time + 19, sizeof time - 19, ".%03dZ", (int)(tv.tv_usec / 1000));

    if (log_journal)
        putf(&o, "<%d>", priorities[level]);
    if (log_format == WR_LOG_JSON) {
        json_line(&o, level, time, f, n, msg, mlen);
    } else {
        if (!log_journal)
            putf(&o, "%s ", time);
        putf(&o, "warren[%d] %s: %s: ", (int)getpid(), log_ident, level_names[level]);
        if (put(&o, msg, mlen) < 0) /* cannot happen: the line has room for MSG_MAX */
            put(&o, truncated, TRUNCATED_LEN);
    }
    line[o.n++] = '\n';
    if (write(STDERR_FILENO, line, o.n) < 0) {
        /* Best effort: there is nowhere else to report a failed log
         * write.  The hook still sees the line. */
    }
    if (log_hook)
        log_hook(level, msg);
}

void wr_log_fields(int level, const wr_log_field *f, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    wr_log_fieldsv(level, f, n, fmt, ap);
    va_end(ap);
}

void wr_logv(int level, const char *fmt, va_list ap)
{
    wr_log_fieldsv(level, NULL, 0, fmt, ap);
}

void wr_log(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    wr_logv(level, fmt, ap);
    va_end(ap);
}
