/* AMQP URIs; see uri.h. */
#include "common/uri.h"

#include <string.h>

int wr_uri_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decode S in place.  -1 for a bad escape, or %00 (a NUL would
 * cut the string short without a word). */
static int decode(char *s)
{
    char *out = s;

    for (; *s; s++) {
        if (*s != '%') {
            *out++ = *s;
            continue;
        }
        int hi = wr_uri_hex(s[1]), lo = hi < 0 ? -1 : wr_uri_hex(s[2]);

        if (lo < 0 || (hi == 0 && lo == 0))
            return -1;
        *out++ = (char)(hi * 16 + lo);
        s += 2;
    }
    *out = '\0';
    return 0;
}

int wr_uri_parse(char *url, struct amqp_connection_info *out)
{
    char *authority, *slash, *at, *host, *colon;
    int bracketed = 0;

    memset(out, 0, sizeof *out);
    out->user = out->password = "guest";
    out->host = "localhost";
    out->vhost = "/";
    if (strncmp(url, "amqp://", 7) == 0) {
        authority = url + 7;
        out->port = 5672;
    } else if (strncmp(url, "amqps://", 8) == 0) {
        authority = url + 8;
        out->port = 5671;
        out->ssl = 1;
    } else {
        return -1;
    }
    if (strpbrk(authority, "?#"))
        return -1; /* no query or fragment options */

    slash = strchr(authority, '/');
    if (slash) {
        *slash = '\0';
        out->vhost = slash + 1;
        if (strchr(out->vhost, '/') || decode(out->vhost) < 0)
            return -1;
    }

    at = strrchr(authority, '@');
    host = authority;
    if (at) {
        char *pass;

        *at = '\0';
        host = at + 1;
        pass = strchr(authority, ':');
        if (pass) {
            *pass = '\0';
            out->password = pass + 1;
            if (decode(out->password) < 0)
                return -1;
        }
        out->user = authority;
        if (decode(out->user) < 0)
            return -1;
    }

    if (*host == '[') { /* [IPv6] */
        char *end = strchr(host, ']');
        if (!end || end == host + 1)
            return -1;
        *end = '\0';
        colon = end[1] == ':' ? end + 1 : NULL;
        if (end[1] && !colon)
            return -1;
        host++;
        bracketed = 1;
    } else {
        if (strpbrk(host, "[]"))
            return -1;
        colon = strchr(host, ':');
    }
    if (colon) {
        long port = 0;

        *colon = '\0';
        if (!colon[1] || strlen(colon + 1) > 5)
            return -1;
        for (const char *p = colon + 1; *p; p++) {
            if (*p < '0' || *p > '9')
                return -1;
            port = port * 10 + (*p - '0');
        }
        if (port < 1 || port > 65535)
            return -1;
        out->port = (int)port;
    }
    if (!bracketed && strchr(host, ':'))
        return -1; /* an IPv6 address without brackets */
    if (*host) {
        if (decode(host) < 0)
            return -1;
        out->host = host;
    }
    return 0;
}
