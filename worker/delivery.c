/* Envelope → wr_delivery; see delivery.h. */
#include "worker/delivery.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/amqp_conn.h"
#include "worker/amqp10.h"

static json_t *field_to_json(const amqp_field_value_t *v);

static json_t *array_to_json(const amqp_array_t *a)
{
    json_t *out = json_array();

    for (int i = 0; out && i < a->num_entries; i++)
        json_array_append_new(out, field_to_json(&a->entries[i]));
    return out;
}

static json_t *field_to_json(const amqp_field_value_t *v)
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
        return json_integer((json_int_t)v->value.u64);
    case AMQP_FIELD_KIND_F32:
        return json_real(v->value.f32);
    case AMQP_FIELD_KIND_F64:
        return json_real(v->value.f64);
    case AMQP_FIELD_KIND_UTF8:
    case AMQP_FIELD_KIND_BYTES: {
        json_t *s = json_stringn(v->value.bytes.bytes, v->value.bytes.len);
        return s ? s : json_null();
    }
    case AMQP_FIELD_KIND_TABLE:
        return wr_amqp_table_to_json(&v->value.table);
    case AMQP_FIELD_KIND_ARRAY:
        return array_to_json(&v->value.array);
    default:
        return json_null();
    }
}

json_t *wr_amqp_table_to_json(const amqp_table_t *t)
{
    json_t *out = json_object();

    for (int i = 0; out && i < t->num_entries; i++) {
        char *key = wr_amqp_strdup(t->entries[i].key);
        if (key)
            json_object_set_new(out, key, field_to_json(&t->entries[i].value));
        free(key);
    }
    return out;
}

/* A copy of B when FLAG is among FLAGS and B is not empty, else NULL.
 * Sets *OOM when the copy failed. */
static char *prop(amqp_flags_t flags, amqp_flags_t flag, amqp_bytes_t b, int *oom)
{
    char *s;

    if (!(flags & flag) || b.len == 0)
        return NULL;
    s = wr_amqp_strdup(b);
    if (!s)
        *oom = 1;
    return s;
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
    out->content_type = prop(p->_flags, AMQP_BASIC_CONTENT_TYPE_FLAG, p->content_type, &oom);
    out->correlation_id = prop(p->_flags, AMQP_BASIC_CORRELATION_ID_FLAG, p->correlation_id, &oom);
    out->reply_to = prop(p->_flags, AMQP_BASIC_REPLY_TO_FLAG, p->reply_to, &oom);
    out->exchange = wr_amqp_strdup(env->exchange);
    out->routing_key = wr_amqp_strdup(env->routing_key);
    if (!out->exchange || !out->routing_key)
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
    free((char *)d->content_type);
    free((char *)d->correlation_id);
    free((char *)d->reply_to);
    free((char *)d->exchange);
    free((char *)d->routing_key);
    json_decref(d->headers);
    free(d->body_buf);
    memset(d, 0, sizeof *d);
}
