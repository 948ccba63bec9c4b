/* AMQP 1.0 addresses in reply_to, to an exchange and a key; see address.h. */
#include "worker/address.h"

#include <stdlib.h>
#include <string.h>

#include "common/uri.h"

/* A new string of the LEN bytes at S, percent-decoded when DECODE, or NULL
 * with *ERR set: malformed %XX, an encoded NUL, or (when DECODE) a literal
 * '/' are WR_ADDRESS_EINVAL. */
static char *part(const char *s, size_t len, int decode, int *err)
{
    char *out = malloc(len + 1), *o = out;

    if (!out) {
        *err = WR_ADDRESS_ENOMEM;
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        int hi, lo;

        if (s[i] == '\0' || (decode && s[i] == '/'))
            goto bad;
        if (!decode || s[i] != '%') {
            *o++ = s[i];
            continue;
        }
        if (len - i < 3)
            goto bad;
        hi = wr_uri_hex(s[i + 1]);
        lo = wr_uri_hex(s[i + 2]);
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
            goto bad;
        *o++ = (char)(hi << 4 | lo);
        i += 2;
    }
    *o = '\0';
    return out;
bad:
    free(out);
    *err = WR_ADDRESS_EINVAL;
    return NULL;
}

enum form { QUEUE, EXCHANGE, TOPIC };

/* The forms, each with the prefix that marks it and whether its parts are
 * percent-encoded (v2) or literal (v1). */
static const struct {
    const char *prefix;
    enum form form;
    int decode;
} forms[] = {
    {"/queues/", QUEUE, 1},    {"/exchanges/", EXCHANGE, 1}, {"/queue/", QUEUE, 0},
    {"/amq/queue/", QUEUE, 0}, {"/exchange/", EXCHANGE, 0},  {"/topic/", TOPIC, 0},
};

int wr_address_resolve(const char *reply_to, size_t len, char **exchange, char **key)
{
    const char *rest = reply_to, *slash;
    size_t rlen = len, n;
    enum form form = QUEUE;
    int decode = 0, err = WR_ADDRESS_OK, plain = 1;
    char *ex = NULL, *k = NULL;

    *exchange = *key = NULL;
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        n = strlen(forms[i].prefix);
        if (len >= n && memcmp(reply_to, forms[i].prefix, n) == 0) {
            rest = reply_to + n;
            rlen = len - n;
            form = forms[i].form;
            decode = forms[i].decode;
            plain = 0;
            break;
        }
    }
    switch (form) {
    case QUEUE: /* a plain reply_to is a queue name too, empty or not */
        if ((ex = strdup("")) && (k = part(rest, rlen, decode, &err)) && !k[0] && !plain)
            err = WR_ADDRESS_EINVAL;
        break;
    case TOPIC:
        if ((ex = strdup("amq.topic")))
            k = part(rest, rlen, 0, &err);
        break;
    case EXCHANGE:
        /* The exchange, then optionally '/' and the key (v1: the key is
         * the rest, slashes and all; v2: one more encoded part). */
        slash = memchr(rest, '/', rlen);
        n = slash ? (size_t)(slash - rest) : rlen;
        if (!(ex = part(rest, n, decode, &err)))
            break;
        if (!ex[0])
            err = WR_ADDRESS_EINVAL;
        else
            k = slash ? part(slash + 1, rlen - n - 1, decode, &err) : strdup("");
        break;
    }
    if (!err && (!ex || !k))
        err = WR_ADDRESS_ENOMEM;
    if (err) {
        free(ex);
        free(k);
        return err;
    }
    *exchange = ex;
    *key = k;
    return WR_ADDRESS_OK;
}

const char *wr_address_strerror(int err)
{
    switch (err) {
    case WR_ADDRESS_OK:
        return "ok";
    case WR_ADDRESS_EINVAL:
        return "not a valid AMQP 1.0 address (bad percent-encoding, an empty name, or a '/' "
               "unencoded in a /queues/ or /exchanges/ part)";
    case WR_ADDRESS_ENOMEM:
        return "out of memory";
    default:
        return "unknown error";
    }
}
