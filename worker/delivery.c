/* Envelope → wr_delivery; see delivery.h. */
#include "worker/delivery.h"

#include <stdlib.h>
#include <string.h>

#include "common/amqp_conn.h"

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
    memset(d, 0, sizeof *d);
}
