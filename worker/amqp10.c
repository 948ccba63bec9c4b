/*
 * AMQP 1.0 sections → text and JSON; see amqp10.h for the mapping.
 *
 * Proton does the decoding, one section at a time.  Before a section
 * reaches pn_data_decode, skim() walks its encoding without decoding any
 * value (constructors and sizes only, an explicit stack, no recursion), so
 * that what Proton is given is known to be whole, at most
 * WR_AMQP10_MAX_DEPTH deep, within the node count a pn_data_t can hold,
 * and free of described values inside the section: Proton 0.37's decoder
 * recurses once per nesting level and would run off the stack on a
 * message nested 100,000 deep.
 */
#include "worker/amqp10.h"

#include <inttypes.h>
#include <math.h>
#include <proton/codec.h>
#include <proton/error.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A pn_data_t holds at most 65535 nodes (pni_nid_t is 16 bits). */
#define MAX_VALUES 65000

/* Section descriptors (AMQP 1.0 part 3.2). */
enum {
    SEC_HEADER = 0x70,
    SEC_DELIVERY_ANNOTATIONS = 0x71,
    SEC_MESSAGE_ANNOTATIONS = 0x72,
    SEC_PROPERTIES = 0x73,
    SEC_APPLICATION_PROPERTIES = 0x74,
    SEC_DATA = 0x75,
    SEC_AMQP_SEQUENCE = 0x76,
    SEC_AMQP_VALUE = 0x77,
    SEC_FOOTER = 0x78,
};

static const char *const section_symbols[] = {
    "amqp:header:list",
    "amqp:delivery-annotations:map",
    "amqp:message-annotations:map",
    "amqp:properties:list",
    "amqp:application-properties:map",
    "amqp:data:binary",
    "amqp:amqp-sequence:list",
    "amqp:amqp-value:*",
    "amqp:footer:map",
};

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static size_t be(const uint8_t *p, size_t width)
{
    size_t v = 0;

    for (size_t i = 0; i < width; i++)
        v = v << 8 | p[i];
    return v;
}

typedef struct frame {
    const uint8_t *end; /* where the container's bytes end */
    size_t left;        /* children still to come */
    uint8_t elem;       /* an array's element constructor; 0 in lists and maps */
} frame;

/*
 * The length of the section at BUF (LEN bytes available, OFF its offset in
 * the body, for messages): a descriptor (a ulong or a symbol) and one
 * value, checked as the file comment says.  0 with *USED, or -1 with ERR.
 */
static int skim(const uint8_t *buf, size_t len, size_t off, size_t *used, char *err, size_t errlen)
{
    const uint8_t *p = buf, *end = buf + len;
    frame st[WR_AMQP10_MAX_DEPTH];
    int depth = 0;
    size_t values = 0;

    size_t at = 2; /* after the descriptor */

    if (len < 2 || p[0] != 0x00)
        return fail(err, errlen, "byte %zu: expected a section (a described value)", off);
    switch (p[1]) {
    case 0x44: /* ulong0 */
        break;
    case 0x53: /* smallulong */
        at += 1;
        break;
    case 0x80: /* ulong */
        at += 8;
        break;
    case 0xa3: /* sym8 */
        at += len > 2 ? 1 + (size_t)p[2] : 1;
        break;
    case 0xb3: /* sym32 */
        at += len >= 6 ? 4 + be(p + 2, 4) : 4;
        break;
    default:
        return fail(err, errlen, "byte %zu: a section descriptor must be a ulong or a symbol", off);
    }
    if (at > len)
        return fail(err, errlen, "byte %zu: truncated section descriptor", off);
    p += at;

    for (;;) {
        const uint8_t *lim = depth ? st[depth - 1].end : end;
        uint8_t code;
        size_t w;

        if (++values > MAX_VALUES)
            return fail(err, errlen, "byte %zu: more than %d values in one section", off,
                        MAX_VALUES);
        if (depth && st[depth - 1].elem) {
            code = st[depth - 1].elem;
        } else {
            if (p >= lim)
                return fail(err, errlen, "byte %zu: truncated section", off + (size_t)(p - buf));
            code = *p++;
            if (code == 0x00)
                return fail(err, errlen, "byte %zu: a described value inside a section",
                            off + (size_t)(p - buf) - 1);
        }
        switch (code >> 4) {
        case 0x4:
            w = 0;
            break;
        case 0x5:
            w = 1;
            break;
        case 0x6:
            w = 2;
            break;
        case 0x7:
            w = 4;
            break;
        case 0x8:
            w = 8;
            break;
        case 0x9:
            w = 16;
            break;
        case 0xa:
        case 0xb: {
            size_t sw = (code >> 4) == 0xa ? 1 : 4;
            if ((size_t)(lim - p) < sw)
                return fail(err, errlen, "byte %zu: truncated section", off + (size_t)(p - buf));
            w = sw + be(p, sw);
            break;
        }
        case 0xc:
        case 0xd:
        case 0xe:
        case 0xf: {
            size_t sw = ((code >> 4) == 0xc || (code >> 4) == 0xe) ? 1 : 4;
            size_t size, count;
            const uint8_t *cend;
            if ((size_t)(lim - p) < 2 * sw)
                return fail(err, errlen, "byte %zu: truncated section", off + (size_t)(p - buf));
            size = be(p, sw);
            count = be(p + sw, sw);
            if (size < sw || size > (size_t)(lim - p) - sw)
                return fail(err, errlen, "byte %zu: a list, map or array runs past its end",
                            off + (size_t)(p - buf) - 1);
            cend = p + sw + size;
            p += 2 * sw;
            if (depth == WR_AMQP10_MAX_DEPTH)
                return fail(err, errlen, "byte %zu: nested deeper than %d levels",
                            off + (size_t)(p - buf), WR_AMQP10_MAX_DEPTH);
            st[depth] = (frame){.end = cend, .left = count, .elem = 0};
            if ((code >> 4) >= 0xe) {
                if (p >= cend)
                    return fail(err, errlen, "byte %zu: an array without an element type",
                                off + (size_t)(p - buf));
                if ((st[depth].elem = *p++) == 0x00)
                    return fail(err, errlen, "byte %zu: an array of described values",
                                off + (size_t)(p - buf) - 1);
            }
            depth++;
            w = 0;
            break;
        }
        default:
            return fail(err, errlen, "byte %zu: unknown type code 0x%02x",
                        off + (size_t)(p - buf) - 1, code);
        }
        if ((size_t)(lim - p) < w)
            return fail(err, errlen, "byte %zu: truncated section", off + (size_t)(p - buf));
        p += w;
        while (depth && st[depth - 1].left == 0) {
            if (p != st[depth - 1].end)
                return fail(err, errlen,
                            "byte %zu: a list, map or array's size does not match "
                            "its contents",
                            off + (size_t)(p - buf));
            depth--;
        }
        if (!depth)
            break;
        st[depth - 1].left--;
    }
    *used = (size_t)(p - buf);
    return 0;
}

/*
 * Decode the section at BUF (what skim measured: LEN bytes) into D and
 * leave D on its value.  Returns the section's descriptor code (0x70 ..
 * 0x78), or -1 with ERR (an unknown descriptor included).
 */
static int decode_section(pn_data_t *d, const uint8_t *buf, size_t len, size_t off, char *err,
                          size_t errlen)
{
    ssize_t n;
    int code = -1;

    pn_data_clear(d);
    n = pn_data_decode(d, (const char *)buf, len);
    if (n < 0 || (size_t)n != len)
        return fail(err, errlen, "byte %zu: undecodable section: %s", off,
                    n < 0 ? pn_code((int)n) : "length mismatch");
    pn_data_rewind(d);
    if (!pn_data_next(d) || pn_data_type(d) != PN_DESCRIBED || !pn_data_enter(d) ||
        !pn_data_next(d))
        return fail(err, errlen, "byte %zu: expected a section (a described value)", off);
    if (pn_data_type(d) == PN_ULONG) {
        uint64_t v = pn_data_get_ulong(d);
        if (v >= SEC_HEADER && v <= SEC_FOOTER)
            code = (int)v;
        else
            return fail(err, errlen, "byte %zu: unknown section descriptor 0x%" PRIx64, off, v);
    } else if (pn_data_type(d) == PN_SYMBOL) {
        pn_bytes_t s = pn_data_get_symbol(d);
        for (int i = 0; i <= SEC_FOOTER - SEC_HEADER; i++)
            if (strlen(section_symbols[i]) == s.size &&
                !memcmp(section_symbols[i], s.start, s.size))
                code = SEC_HEADER + i;
        if (code < 0)
            return fail(err, errlen, "byte %zu: unknown section descriptor \"%.*s\"", off,
                        (int)(s.size > 64 ? 64 : s.size), s.start);
    } else {
        return fail(err, errlen, "byte %zu: a section descriptor must be a ulong or a symbol", off);
    }
    if (!pn_data_next(d))
        return fail(err, errlen, "byte %zu: a section without a value", off);
    return code;
}

static char *base64(const char *in, size_t len)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *s = (const unsigned char *)in;
    char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;

    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (i + 1 < len ? (unsigned)s[i + 1] << 8 : 0) |
                     (i + 2 < len ? s[i + 2] : 0);
        *o++ = abc[v >> 18 & 63];
        *o++ = abc[v >> 12 & 63];
        *o++ = i + 1 < len ? abc[v >> 6 & 63] : '=';
        *o++ = i + 2 < len ? abc[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

/* A binary: its text when it is UTF-8, else its base64. */
static json_t *binary_json(pn_bytes_t b)
{
    json_t *s = json_stringn(b.start ? b.start : "", b.size);
    char *text;

    if (s)
        return s;
    if (!(text = base64(b.start, b.size)))
        return NULL;
    s = json_string(text);
    free(text);
    return s;
}

static json_t *char_json(pn_char_t c)
{
    char u[4];
    size_t n;

    if (c < 0x80) {
        u[0] = (char)c;
        n = 1;
    } else if (c < 0x800) {
        u[0] = (char)(0xc0 | c >> 6);
        u[1] = (char)(0x80 | (c & 0x3f));
        n = 2;
    } else if (c < 0x10000) {
        u[0] = (char)(0xe0 | c >> 12);
        u[1] = (char)(0x80 | (c >> 6 & 0x3f));
        u[2] = (char)(0x80 | (c & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | c >> 18);
        u[1] = (char)(0x80 | (c >> 12 & 0x3f));
        u[2] = (char)(0x80 | (c >> 6 & 0x3f));
        u[3] = (char)(0x80 | (c & 0x3f));
        n = 4;
    }
    return c > 0x10ffff ? NULL : json_stringn(u, n); /* NULL for surrogates too */
}

static json_t *value_json(pn_data_t *d, const char **why);

/* The children of the container D is on (entered, N of them), as an array. */
static json_t *items_json(pn_data_t *d, size_t n, json_t *into, const char **why)
{
    json_t *a = into ? into : json_array();

    pn_data_enter(d);
    for (size_t i = 0; a && i < n; i++) {
        json_t *v;
        if (!pn_data_next(d) || !(v = value_json(d, why)) || json_array_append_new(a, v) < 0) {
            if (!into)
                json_decref(a);
            a = NULL;
        }
    }
    pn_data_exit(d);
    return a;
}

static json_t *map_json(pn_data_t *d, const char **why)
{
    size_t n = pn_data_get_map(d);
    json_t *o = json_object();

    if (n % 2) {
        *why = "a map with a key and no value";
        json_decref(o);
        return NULL;
    }
    pn_data_enter(d);
    for (size_t i = 0; o && i < n; i += 2) {
        json_t *k = NULL, *v = NULL;
        char *ktext = NULL;
        int ok = pn_data_next(d) && (k = value_json(d, why)) && pn_data_next(d) &&
                 (v = value_json(d, why));
        if (ok && json_is_string(k))
            ok = json_object_setn_new(o, json_string_value(k), json_string_length(k), v) == 0;
        else if (ok && (ktext = json_dumps(k, JSON_COMPACT | JSON_ENCODE_ANY)))
            ok = json_object_set_new(o, ktext, v) == 0;
        else if (ok) {
            ok = 0;
            json_decref(v);
        } else {
            json_decref(v);
        }
        free(ktext);
        json_decref(k);
        if (!ok) {
            json_decref(o);
            o = NULL;
        }
    }
    pn_data_exit(d);
    return o;
}

/* The value D is on as JSON (a new reference), or NULL with *WHY set
 * when it has no JSON form (NULL *WHY: out of memory). */
static json_t *value_json(pn_data_t *d, const char **why)
{
    json_t *v = NULL;

    switch (pn_data_type(d)) {
    case PN_NULL:
        return json_null();
    case PN_BOOL:
        return json_boolean(pn_data_get_bool(d));
    case PN_UBYTE:
        return json_integer(pn_data_get_ubyte(d));
    case PN_BYTE:
        return json_integer(pn_data_get_byte(d));
    case PN_USHORT:
        return json_integer(pn_data_get_ushort(d));
    case PN_SHORT:
        return json_integer(pn_data_get_short(d));
    case PN_UINT:
        return json_integer(pn_data_get_uint(d));
    case PN_INT:
        return json_integer(pn_data_get_int(d));
    case PN_LONG:
        return json_integer(pn_data_get_long(d));
    case PN_TIMESTAMP:
        return json_integer(pn_data_get_timestamp(d));
    case PN_ULONG: {
        uint64_t u = pn_data_get_ulong(d);
        return u > INT64_MAX ? json_sprintf("%" PRIu64, u) : json_integer((json_int_t)u);
    }
    case PN_FLOAT: {
        double f = pn_data_get_float(d);
        return isfinite(f) ? json_real(f) : json_null();
    }
    case PN_DOUBLE: {
        double f = pn_data_get_double(d);
        return isfinite(f) ? json_real(f) : json_null();
    }
    case PN_CHAR:
        if (!(v = char_json(pn_data_get_char(d))))
            *why = "a char that is not a Unicode scalar value";
        return v;
    case PN_UUID: {
        const unsigned char *b = (const unsigned char *)pn_data_get_uuid(d).bytes;
        return json_sprintf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
                            "%02x%02x%02x%02x%02x%02x",
                            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
                            b[11], b[12], b[13], b[14], b[15]);
    }
    case PN_BINARY:
        return binary_json(pn_data_get_binary(d));
    case PN_STRING:
    case PN_SYMBOL: {
        pn_bytes_t s = pn_data_type(d) == PN_STRING ? pn_data_get_string(d) : pn_data_get_symbol(d);
        if (!(v = json_stringn(s.start ? s.start : "", s.size)))
            *why = "a string that is not UTF-8";
        return v;
    }
    case PN_LIST:
        return items_json(d, pn_data_get_list(d), NULL, why);
    case PN_ARRAY:
        return items_json(d, pn_data_get_array(d), NULL, why);
    case PN_MAP:
        return map_json(d, why);
    case PN_DECIMAL32:
    case PN_DECIMAL64:
    case PN_DECIMAL128:
        *why = "a decimal value (no JSON form)";
        return NULL;
    default:
        *why = "a described value inside a section";
        return NULL;
    }
}

/* Append LEN bytes of S to the growing *BUF. */
static int append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t want = *cap ? *cap : 256;
        char *p;
        while (want < *len + n + 1)
            want *= 2;
        if (!(p = realloc(*buf, want)))
            return -1;
        *buf = p;
        *cap = want;
    }
    if (n)
        memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

int wr_amqp10_unwrap(const void *body, size_t len, char **out, size_t *outlen, char *err,
                     size_t errlen)
{
    const uint8_t *p = body;
    pn_data_t *d = pn_data(16);
    json_t *seq = NULL;
    char *buf = NULL, *text;
    size_t blen = 0, cap = 0, off = 0, used;
    int kind = 0; /* the body's section kind, once one was seen */
    int rc = -1;
    const char *why = NULL;

    *out = NULL;
    *outlen = 0;
    if (!d) {
        fail(err, errlen, "out of memory");
        return WR_AMQP10_ENOMEM;
    }
    while (off < len) {
        int code;
        pn_bytes_t b;
        json_t *v;

        if (skim(p + off, len - off, off, &used, err, errlen) < 0 ||
            (code = decode_section(d, p + off, used, off, err, errlen)) < 0)
            goto out;
        if (code >= SEC_DATA && code <= SEC_AMQP_VALUE) {
            if (kind && (kind != code || code == SEC_AMQP_VALUE)) {
                fail(err, errlen, "byte %zu: %s", off,
                     kind == code ? "a second amqp-value section"
                                  : "data, amqp-sequence and amqp-value sections mixed");
                goto out;
            }
            kind = code;
        }
        switch (code) {
        case SEC_DATA:
            if (pn_data_type(d) != PN_BINARY) {
                fail(err, errlen, "byte %zu: a data section that holds no binary", off);
                goto out;
            }
            b = pn_data_get_binary(d);
            if (append(&buf, &blen, &cap, b.start, b.size) < 0)
                goto oom;
            break;
        case SEC_AMQP_SEQUENCE:
            if (pn_data_type(d) != PN_LIST) {
                fail(err, errlen, "byte %zu: an amqp-sequence section that holds no list", off);
                goto out;
            }
            if (!seq && !(seq = json_array()))
                goto oom;
            if (!items_json(d, pn_data_get_list(d), seq, &why))
                goto bad_value;
            break;
        case SEC_AMQP_VALUE:
            if (pn_data_type(d) == PN_STRING || pn_data_type(d) == PN_BINARY) {
                b = pn_data_type(d) == PN_STRING ? pn_data_get_string(d) : pn_data_get_binary(d);
                if (append(&buf, &blen, &cap, b.start, b.size) < 0)
                    goto oom;
                break;
            }
            if (!(v = value_json(d, &why)))
                goto bad_value;
            text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            json_decref(v);
            if (!text || append(&buf, &blen, &cap, text, strlen(text)) < 0) {
                free(text);
                goto oom;
            }
            free(text);
            break;
        default: /* header, annotations, properties, footer: not the body */
            break;
        }
        off += used;
    }
    if (seq) {
        text = json_dumps(seq, JSON_COMPACT);
        if (!text || append(&buf, &blen, &cap, text, strlen(text)) < 0) {
            free(text);
            goto oom;
        }
        free(text);
    }
    if (!buf && append(&buf, &blen, &cap, "", 0) < 0)
        goto oom;
    *out = buf;
    *outlen = blen;
    buf = NULL;
    rc = 0;
    goto out;
bad_value:
    if (why) {
        fail(err, errlen, "byte %zu: %s", off, why);
        goto out;
    }
oom:
    fail(err, errlen, "out of memory");
    rc = WR_AMQP10_ENOMEM;
out:
    free(buf);
    json_decref(seq);
    pn_data_free(d);
    return rc;
}

static const char *const property_names[] = {
    "message-id",        "user-id",          "to",
    "subject",           "reply-to",         "correlation-id",
    "content-type",      "content-encoding", "absolute-expiry-time",
    "creation-time",     "group-id",         "group-sequence",
    "reply-to-group-id",
};

int wr_amqp10_section_to_json(const void *buf, size_t len, json_t **out, char *err, size_t errlen)
{
    pn_data_t *d = pn_data(16);
    const char *why = NULL;
    size_t used;
    int code, rc = -1;

    *out = NULL;
    if (!d) {
        fail(err, errlen, "out of memory");
        return WR_AMQP10_ENOMEM;
    }
    if (skim(buf, len, 0, &used, err, errlen) < 0 ||
        (code = decode_section(d, buf, used, 0, err, errlen)) < 0)
        goto out;
    if (used != len) {
        fail(err, errlen, "byte %zu: bytes after the section", used);
        goto out;
    }
    if (code == SEC_PROPERTIES && pn_data_type(d) == PN_LIST) {
        size_t n = pn_data_get_list(d);
        json_t *o = json_object();
        pn_data_enter(d);
        for (size_t i = 0; o && i < n && pn_data_next(d); i++) {
            json_t *v;
            if (pn_data_type(d) == PN_NULL || i >= sizeof property_names / sizeof *property_names)
                continue;
            if (!(v = value_json(d, &why)) || json_object_set_new(o, property_names[i], v) < 0) {
                json_decref(o);
                o = NULL;
            }
        }
        *out = o;
    } else {
        *out = value_json(d, &why);
    }
    if (*out)
        rc = 0;
    else if (why)
        fail(err, errlen, "%s", why);
    else {
        fail(err, errlen, "out of memory");
        rc = WR_AMQP10_ENOMEM;
    }
out:
    pn_data_free(d);
    return rc;
}

#define PROPERTY_CORRELATION_ID 5 /* field index in the properties list */

/* Put D's current value, a message id (ulong, uuid, binary or string:
 * the only types one may have), into OUT.  0, or -1 for another type. */
static int put_message_id(pn_data_t *out, pn_data_t *d)
{
    switch (pn_data_type(d)) {
    case PN_ULONG:
        return pn_data_put_ulong(out, pn_data_get_ulong(d));
    case PN_UUID:
        return pn_data_put_uuid(out, pn_data_get_uuid(d));
    case PN_BINARY:
        return pn_data_put_binary(out, pn_data_get_binary(d));
    case PN_STRING:
        return pn_data_put_string(out, pn_data_get_string(d));
    default:
        return -1;
    }
}

int wr_amqp10_reply_properties(const void *req, size_t req_len, const char *content_type,
                               char **out, size_t *outlen)
{
    pn_data_t *d = pn_data(16), *r = pn_data(16);
    char err[128];
    size_t used;
    ssize_t n;
    int rc = WR_AMQP10_EBAD, found = 0;

    *out = NULL;
    if (!d || !r) {
        rc = WR_AMQP10_ENOMEM;
        goto done;
    }
    /* The header comes from whoever published the request: measured by
     * skim() before Proton's recursive decoder sees it. */
    if (skim(req, req_len, 0, &used, err, sizeof err) < 0 || used != req_len ||
        decode_section(d, req, used, 0, err, sizeof err) != SEC_PROPERTIES ||
        pn_data_type(d) != PN_LIST)
        goto done;
    pn_data_put_described(r);
    pn_data_enter(r);
    pn_data_put_ulong(r, SEC_PROPERTIES);
    pn_data_put_list(r);
    pn_data_enter(r);
    for (int i = 0; i < PROPERTY_CORRELATION_ID; i++)
        pn_data_put_null(r);
    {
        size_t count = pn_data_get_list(d);
        pn_data_enter(d);
        for (size_t i = 0; i < count && pn_data_next(d); i++) {
            if (i != PROPERTY_CORRELATION_ID)
                continue;
            found = pn_data_type(d) != PN_NULL && put_message_id(r, d) == 0;
            break;
        }
    }
    if (!found)
        goto done;
    pn_data_put_symbol(r, pn_bytes(strlen(content_type), content_type));
    pn_data_exit(r);
    pn_data_exit(r);
    n = pn_data_encoded_size(r);
    if (n <= 0 || !(*out = malloc((size_t)n))) {
        rc = WR_AMQP10_ENOMEM;
        goto done;
    }
    if (pn_data_encode(r, *out, (size_t)n) != n) {
        free(*out);
        *out = NULL;
        goto done;
    }
    *outlen = (size_t)n;
    rc = 0;
done:
    pn_data_free(d);
    pn_data_free(r);
    return rc;
}
