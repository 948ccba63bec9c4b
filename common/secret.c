/*
 * The broker password: shown nowhere, read from a file or the environment
 * instead of the config where possible, and warned about where it is not.
 */
#include "common/secret.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"

#define MAX_PASSWORD 4096

/* Where TEXT's URI keeps its password: *START and *END (exclusive), or 0
 * when it has none.  The userinfo is what precedes the last '@' of the
 * authority (between "://" and the first '/', '?' or '#'); the password
 * follows its first ':'. */
static int find_password(const char *text, const char **start, const char **end)
{
    const char *auth = strstr(text, "://"), *stop, *at = NULL, *colon;

    if (!auth)
        return 0;
    auth += 3;
    stop = auth + strcspn(auth, "/?#");
    for (const char *p = auth; p < stop; p++)
        if (*p == '@')
            at = p;
    if (!at)
        return 0;
    colon = memchr(auth, ':', (size_t)(at - auth));
    if (!colon)
        return 0;
    *start = colon + 1;
    *end = at;
    return 1;
}

const char *wr_secret_mask_uri(const char *text, char *buf, size_t len)
{
    const char *s, *e;

    if (!find_password(text, &s, &e))
        snprintf(buf, len, "%s", text);
    else
        snprintf(buf, len, "%.*s***%s", (int)(s - text), text, e);
    return buf;
}

int wr_secret_uri_has_password(const char *text)
{
    const char *s, *e;

    return find_password(text, &s, &e);
}

char *wr_secret_read_file(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char *buf;
    size_t n;

    if (!f) {
        snprintf(err, errlen, "cannot open \"%s\": %s", path, strerror(errno));
        return NULL;
    }
    buf = calloc(1, MAX_PASSWORD + 2);
    if (!buf) {
        fclose(f);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    n = fread(buf, 1, MAX_PASSWORD + 1, f);
    if (ferror(f)) {
        snprintf(err, errlen, "cannot read \"%s\": %s", path, strerror(errno));
        goto fail;
    }
    fclose(f);
    f = NULL;
    if (n > MAX_PASSWORD) {
        snprintf(err, errlen, "\"%s\" is longer than %d bytes: not a password file", path,
                 MAX_PASSWORD);
        goto fail;
    }
    if (memchr(buf, '\0', n)) {
        snprintf(err, errlen, "\"%s\" holds a NUL byte", path);
        goto fail;
    }
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    if (strpbrk(buf, "\r\n")) {
        snprintf(err, errlen,
                 "\"%s\" holds more than one line (the password is the whole file, "
                 "one line)",
                 path);
        goto fail;
    }
    if (!n) {
        snprintf(err, errlen, "\"%s\" is empty", path);
        goto fail;
    }
    return buf;
fail:
    if (f)
        fclose(f);
    wr_secret_free(buf);
    return NULL;
}

void wr_secret_free(char *s)
{
    if (!s)
        return;
    explicit_bzero(s, strlen(s));
    free(s);
}

int wr_secret_scrub_args(int argc, char **argv)
{
    int masked = 0;

    for (int i = 1; i < argc; i++) {
        char *arg = argv[i];
        const char *s, *e;
        size_t pw, tail;

        if (!find_password(arg, &s, &e))
            continue;
        pw = (size_t)(e - s);
        if (pw >= 3) {
            /* "***" and the rest move left; NULs fill what is left over. */
            char *p = arg + (s - arg);

            tail = strlen(e) + 1;
            memcpy(p, "***", 3);
            memmove(p + 3, e, tail);
            memset(p + 3 + tail, '\0', pw - 3);
        } else {
            memset(arg + (s - arg), '*', pw);
        }
        masked++;
    }
    return masked;
}

int wr_secret_warn_if_readable(const char *path, int line)
{
    struct stat st;

    if (stat(path, &st) < 0 || !(st.st_mode & 044))
        return 0;
    wr_warn("%s:%d: this file holds the broker password (in [broker] uri) and other users can "
            "read it (mode %04o): chmod 600 %s, or move the password to [broker] password_file "
            "or $" WR_SECRET_PASSWORD_ENV,
            path, line, (unsigned)(st.st_mode & 07777), path);
    return 1;
}
