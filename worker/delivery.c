/* Envelope → wr_delivery; see delivery.h. */
#include "worker/delivery.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/amqp_conn.h"
#include "worker/amqp10.h"

/* Tables and arrays nested deeper than this become null: a header frame
 * can hold thousands of levels, and nothing a handler wants is that deep. */
#define MAX_HEADER_DEPTH 64

static json_t *field_to_json(const amqp_field_value_t *v, int depth);
static json_t *table_to_json(const amqp_table_t *t, int depth);

static json_t *array_to_json(const amqp_array_t *a, int depth)
{
    json_t *out = json_array();

    for (int i = 0; out && i < a->num_entries; i++)
        json_array_append_new(out, field_to_json(&a->entries[i], depth));
    return out;
}

/* A JSON real, or null for NaN and infinities (JSON has no such numbers). */
static json_t *real_or_null(double d)
{
    json_t *r = json_real(d);
    return r ? r : json_null();
}

/* An AMQP decimal (VALUE scaled down by 10^DECIMALS) as its exact text:
 * "123.45", "0.005".  A string, because a JSON number would round it. */
static json_t *decimal_to_json(amqp_decimal_t d)
{
    char digits[16], text[300];
    int n = snprintf(digits, sizeof digits, "%u", (unsigned)d.value);
    int scale = d.decimals, pos = 0;

    if (scale == 0)
        return json_string(digits);
    if (n <= scale) {
        pos = snprintf(text, sizeof text, "0.");
        for (int i = n; i < scale; i++)
            text[pos++] = '0';
        snprintf(text + pos, sizeof text - (size_t)pos, "%s", digits);
    } else {
        snprintf(text, sizeof text, "%.*s.%s", n - scale, digits, digits + (n - scale));
    }
    return json_string(text);
}

static json_t *field_to_json(const amqp_field_value_t *v, int depth)
{
    switch (v->kind) {
    case AMQP_FIELD_KIND_BOOLEAN:
        return json_boolean(v->value.boolean);
    case AMQP_FIELD_KIND_I8:
        return json_integer(v->value.i8);
    case AMQP_FIELD_KIND_U8:
        return json_integer(v->value.u8);
    case AMQP_FIELD_KIND_I16:
        return json_integer(v->value.i16);
    case AMQP_FIELD_KIND_U16:
        return json_integer(v->value.u16);
    case AMQP_FIELD_KIND_I32:
        return json_integer(v->value.i32);
    case AMQP_FIELD_KIND_U32:
        return json_integer(v->value.u32);
    case AMQP_FIELD_KIND_I64:
        return json_integer((json_int_t)v->value.i64);
    case AMQP_FIELD_KIND_U64:
    case AMQP_FIELD_KIND_TIMESTAMP:
        if (v->value.u64 > (uint64_t)INT64_MAX) {
            /* Beyond a JSON integer: the digits, as the AMQP 1.0 mapping does. */
            char digits[24];
            snprintf(digits, sizeof digits, "%" PRIu64, v->value.u64);
            return json_string(digits);
        }
        return json_integer((json_int_t)v->value.u64);
    case AMQP_FIELD_KIND_F32:
        return real_or_null(v->value.f32);
    case AMQP_FIELD_KIND_F64:
        return real_or_null(v->value.f64);
    case AMQP_FIELD_KIND_DECIMAL:
        return decimal_to_json(v->value.decimal);
    case AMQP_FIELD_KIND_UTF8:
    case AMQP_FIELD_KIND_BYTES: {
        /* An empty one may come with a NULL pointer, which json_stringn
         * refuses. */
        json_t *s = v->value.bytes.len ? json_stringn(v->value.bytes.bytes, v->value.bytes.len)
                                       : json_string("");
        return s ? s : json_null();
    }
    case AMQP_FIELD_KIND_TABLE:
        return depth < MAX_HEADER_DEPTH ? table_to_json(&v->value.table, depth + 1) : json_null();
    case AMQP_FIELD_KIND_ARRAY:
        return depth < MAX_HEADER_DEPTH ? array_to_json(&v->value.array, depth + 1) : json_null();
    default: /* void */
        return json_null();
    }
}

static json_t *table_to_json(const amqp_table_t *t, int depth)
{
    json_t *out = json_object();

    for (int i = 0; out && i < t->num_entries; i++) {
        char *key = wr_amqp_strdup(t->entries[i].key);
        if (key)
            json_object_set_new(out, key, field_to_json(&t->entries[i].value, depth));
        free(key);
    }
    return out;
}

json_t *wr_amqp_table_to_json(const amqp_table_t *t)
{
    return table_to_json(t, 0);
}

long long wr_delivery_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The header NAME of P, or NULL. */
static const amqp_field_value_t *header(const amqp_basic_properties_t *p, const char *name)
{
    size_t n = strlen(name);

    if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG))
        return NULL;
    for (int i = 0; i < p->headers.num_entries; i++) {
        const amqp_table_entry_t *e = &p->headers.entries[i];
        if (e->key.len == n && memcmp(e->key.bytes, name, n) == 0)
            return &e->value;
    }
    return NULL;
}

/* TEXT (LEN bytes) as a number: all of it, and finite.  1 and *OUT, or 0. */
static int text_number(const void *text, size_t len, double *out)
{
    char buf[64], *end;

    if (len == 0 || len >= sizeof buf)
        return 0;
    memcpy(buf, text, len);
    buf[len] = '\0';
    errno = 0;
    *out = strtod(buf, &end);
    return end != buf && *end == '\0' && errno == 0 && isfinite(*out);
}

/*
 * A time header's value as unix ms: integers of any width, floats and
 * numeric strings are ms; an AMQP timestamp is seconds (ROUND_UP: taken as
 * the end of that second).  1 and *OUT, or 0 when V is no positive time.
 */
static int header_ms(const amqp_field_value_t *v, int round_up, long long *out)
{
    double d;

    switch (v->kind) {
    case AMQP_FIELD_KIND_I8:
        d = v->value.i8;
        break;
    case AMQP_FIELD_KIND_U8:
        d = v->value.u8;
        break;
    case AMQP_FIELD_KIND_I16:
        d = v->value.i16;
        break;
    case AMQP_FIELD_KIND_U16:
        d = v->value.u16;
        break;
    case AMQP_FIELD_KIND_I32:
        d = v->value.i32;
        break;
    case AMQP_FIELD_KIND_U32:
        d = v->value.u32;
        break;
    case AMQP_FIELD_KIND_I64:
        d = (double)v->value.i64;
        break;
    case AMQP_FIELD_KIND_U64:
        d = (double)v->value.u64;
        break;
    case AMQP_FIELD_KIND_F32:
        d = v->value.f32;
        break;
    case AMQP_FIELD_KIND_F64:
        d = v->value.f64;
        break;
    case AMQP_FIELD_KIND_TIMESTAMP:
        if (v->value.u64 == 0 || v->value.u64 > (uint64_t)(LLONG_MAX / 1000 - 1))
            return 0;
        *out = (long long)v->value.u64 * 1000 + (round_up ? 999 : 0);
        return 1;
    case AMQP_FIELD_KIND_UTF8:
    case AMQP_FIELD_KIND_BYTES:
        if (!text_number(v->value.bytes.bytes, v->value.bytes.len, &d))
            return 0;
        break;
    default:
        return 0;
    }
    /* Below 2^62: far beyond any real time, and safe to add a TTL to. */
    if (!(d >= 1 && d < 4611686018427387904.0))
        return 0;
    *out = (long long)d;
    return 1;
}

/* The deadline the expiration property sets, or 0; see delivery.h. */
static long long expiration_deadline(const amqp_basic_properties_t *p)
{
    static const char *const sent_headers[] = {"x-sent-at", "timestamp_in_ms"};
    const amqp_field_value_t *v;
    long long sent = 0;
    double ttl;

    if (!(p->_flags & AMQP_BASIC_EXPIRATION_FLAG) ||
        !text_number(p->expiration.bytes, p->expiration.len, &ttl) || !(ttl >= 1 && ttl < 1e15))
        return 0;
    for (size_t i = 0; i < sizeof sent_headers / sizeof sent_headers[0] && !sent; i++)
        if ((v = header(p, sent_headers[i])) && !header_ms(v, 1, &sent))
            sent = 0;
    if (!sent && (p->_flags & AMQP_BASIC_TIMESTAMP_FLAG) && p->timestamp > 0 &&
        p->timestamp < (uint64_t)(LLONG_MAX / 1000 - 1))
        sent = (long long)p->timestamp * 1000 + 999;
    return sent ? sent + (long long)ttl : 0;
}

long long wr_delivery_deadline_ms(const amqp_basic_properties_t *p, const char **from)
{
    const amqp_field_value_t *v = header(p, "x-deadline");
    long long deadline = 0, expires = expiration_deadline(p);
    const char *why = NULL;

    if (v && header_ms(v, 0, &deadline))
        why = "x-deadline";
    else
        deadline = 0;
    if (expires && (!deadline || expires < deadline)) {
        deadline = expires;
        why = "expiration";
    }
    if (from)
        *from = why;
    return deadline;
}

/* A copy of B when FLAG is among FLAGS and B is not empty, else NULL.
 * Sets *OOM when the copy failed. */
/*
 * The envelope's strings, NUL-terminated, in one allocation (OUT->strings;
 * one malloc per delivery instead of five).  An absent or empty property
 * is NULL; the exchange and routing key are always there ("" for none).
 * -1 out of memory.
 */
static int copy_strings(wr_delivery *out, const amqp_envelope_t *env)
{
    const amqp_basic_properties_t *p = &env->message.properties;
    amqp_bytes_t none = {0, NULL};
    amqp_bytes_t src[5] = {
        (p->_flags & AMQP_BASIC_CONTENT_TYPE_FLAG) ? p->content_type : none,
        (p->_flags & AMQP_BASIC_CORRELATION_ID_FLAG) ? p->correlation_id : none,
        (p->_flags & AMQP_BASIC_REPLY_TO_FLAG) ? p->reply_to : none,
        env->exchange,
        env->routing_key,
    };
    const char **dst[5] = {&out->content_type, &out->correlation_id, &out->reply_to, &out->exchange,
                           &out->routing_key};
    size_t total = 0;
    char *at;

    for (int i = 0; i < 5; i++)
        total += src[i].len + 1;
    at = out->strings = malloc(total);
    if (!at)
        return -1;
    for (int i = 0; i < 5; i++) {
        if (i < 3 && src[i].len == 0) {
            *dst[i] = NULL;
            continue;
        }
        if (src[i].len)
            memcpy(at, src[i].bytes, src[i].len);
        at[src[i].len] = '\0';
        *dst[i] = at;
        at += src[i].len + 1;
    }
    return 0;
}

#define AMQP10_TYPE "amqp-1.0"
#define AMQP10_TYPE_LEN (sizeof AMQP10_TYPE - 1)
#define AMQP10_HEADER_PREFIX "x-amqp-1.0-"

/*
 * RabbitMQ 3.x passes an AMQP 1.0 message's properties, application
 * properties, message annotations and footer as encoded sections in the
 * x-amqp-1.0-* headers (RabbitMQ 4 turns application properties and x-
 * annotations into plain headers itself).  Replace each such header in
 * HEADERS by its decoded JSON object, under the same key, so a handler
 * reads headers["x-amqp-1.0-app-properties"]["myprop"].  A header that
 * does not decode stays as the table gave it (a string, or null): the
 * body is what the request is judged by.
 */
static void amqp10_headers(json_t *headers, const amqp_table_t *t)
{
    for (int i = 0; i < t->num_entries; i++) {
        const amqp_table_entry_t *e = &t->entries[i];
        size_t plen = sizeof AMQP10_HEADER_PREFIX - 1;
        char err[128], *key;
        json_t *v;

        if (e->key.len <= plen || memcmp(e->key.bytes, AMQP10_HEADER_PREFIX, plen) != 0 ||
            (e->value.kind != AMQP_FIELD_KIND_UTF8 && e->value.kind != AMQP_FIELD_KIND_BYTES))
            continue;
        if (wr_amqp10_section_to_json(e->value.value.bytes.bytes, e->value.value.bytes.len, &v, err,
                                      sizeof err) < 0)
            continue;
        if ((key = wr_amqp_strdup(e->key)))
            json_object_set_new(headers, key, v);
        else
            json_decref(v);
        free(key);
    }
}

/* OUT's body is AMQP 1.0 sections: point it at their unwrapped form, or
 * mark OUT bad.  -1 only out of memory. */
static int amqp10_body(wr_delivery *out)
{
    char err[sizeof out->bad_message - 32];
    size_t len;

    int rc = wr_amqp10_unwrap(out->body, out->len, &out->body_buf, &len, err, sizeof err);

    if (rc == WR_AMQP10_ENOMEM)
        return -1;
    if (rc < 0) {
        out->bad_code = WARREN_ERR_PARSE;
        snprintf(out->bad_message, sizeof out->bad_message, "Parse error: AMQP 1.0 body: %s", err);
        return 0;
    }
    out->body = out->body_buf;
    out->len = len;
    return 0;
}

int wr_delivery_from_envelope(wr_delivery *out, const amqp_envelope_t *env)
{
    const amqp_basic_properties_t *p = &env->message.properties;
    int oom = 0;

    memset(out, 0, sizeof *out);
    out->body = env->message.body.bytes;
    out->len = env->message.body.len;
    out->redelivered = env->redelivered;
    out->deadline_ms = wr_delivery_deadline_ms(p, &out->deadline_from);
    if (copy_strings(out, env) < 0)
        oom = 1;
    if ((p->_flags & AMQP_BASIC_HEADERS_FLAG) && p->headers.num_entries > 0 &&
        !(out->headers = wr_amqp_table_to_json(&p->headers)))
        oom = 1;
    if (!oom && out->headers)
        amqp10_headers(out->headers, &p->headers);
    /* The one comparison a 0-9-1 delivery pays. */
    if (!oom && (p->_flags & AMQP_BASIC_TYPE_FLAG) && p->type.len == AMQP10_TYPE_LEN &&
        memcmp(p->type.bytes, AMQP10_TYPE, AMQP10_TYPE_LEN) == 0)
        oom = amqp10_body(out) < 0;
    if (oom) {
        wr_delivery_free(out);
        return -1;
    }
    return 0;
}

void wr_delivery_free(wr_delivery *d)
{
    free(d->strings);
    json_decref(d->headers);
    free(d->body_buf);
    memset(d, 0, sizeof *d);
}
