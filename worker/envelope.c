/*
 * A delivery read by hand: one allocation for everything an envelope
 * points at (worker/envelope.h says why).
 *
 * The block starts at env->consumer_tag.bytes, always (even for an empty
 * tag), so that wr_envelope_free() finds it; then come the exchange, the
 * routing key, the properties' strings in the order of FIELDS below, and
 * the body.
 */
#include "worker/envelope.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* The properties that are strings, with the flag that says each is set. */
static const struct {
    amqp_flags_t flag;
    size_t offset;
} FIELDS[] = {
    {AMQP_BASIC_CONTENT_TYPE_FLAG, offsetof(amqp_basic_properties_t, content_type)},
    {AMQP_BASIC_CONTENT_ENCODING_FLAG, offsetof(amqp_basic_properties_t, content_encoding)},
    {AMQP_BASIC_CORRELATION_ID_FLAG, offsetof(amqp_basic_properties_t, correlation_id)},
    {AMQP_BASIC_REPLY_TO_FLAG, offsetof(amqp_basic_properties_t, reply_to)},
    {AMQP_BASIC_EXPIRATION_FLAG, offsetof(amqp_basic_properties_t, expiration)},
    {AMQP_BASIC_MESSAGE_ID_FLAG, offsetof(amqp_basic_properties_t, message_id)},
    {AMQP_BASIC_TYPE_FLAG, offsetof(amqp_basic_properties_t, type)},
    {AMQP_BASIC_USER_ID_FLAG, offsetof(amqp_basic_properties_t, user_id)},
    {AMQP_BASIC_APP_ID_FLAG, offsetof(amqp_basic_properties_t, app_id)},
    {AMQP_BASIC_CLUSTER_ID_FLAG, offsetof(amqp_basic_properties_t, cluster_id)},
};
#define NFIELDS (sizeof FIELDS / sizeof FIELDS[0])

/* Pages of the pool a headers table is cloned into: a table of a few
 * entries (x-death, x-delivery-count, a trace id) fits in one. */
#define HEADERS_PAGE 1024

static amqp_bytes_t *field(amqp_basic_properties_t *p, size_t i)
{
    return (amqp_bytes_t *)((char *)p + FIELDS[i].offset);
}

static const amqp_bytes_t *cfield(const amqp_basic_properties_t *p, size_t i)
{
    return (const amqp_bytes_t *)((const char *)p + FIELDS[i].offset);
}

/* Copy SRC to *AT and move *AT past it. */
static amqp_bytes_t put(char **at, amqp_bytes_t src)
{
    amqp_bytes_t b = {src.len, *at};
    if (src.len)
        memcpy(*at, src.bytes, src.len);
    *at += src.len;
    return b;
}

int wr_envelope_build(amqp_envelope_t *env, amqp_channel_t channel, const amqp_basic_deliver_t *d,
                      const amqp_basic_properties_t *props, uint64_t body_size)
{
    amqp_basic_properties_t *p = &env->message.properties;
    size_t strings = d->consumer_tag.len + d->exchange.len + d->routing_key.len, i;
    char *block, *at;

    memset(env, 0, sizeof *env);
    for (i = 0; i < NFIELDS; i++)
        if (props->_flags & FIELDS[i].flag)
            strings += cfield(props, i)->len;
    if (body_size > SIZE_MAX - strings - 1)
        return AMQP_STATUS_BAD_AMQP_DATA;
    /* + 1: never malloc(0), whose result may be NULL. */
    block = malloc(strings + (size_t)body_size + 1);
    if (!block)
        return AMQP_STATUS_NO_MEMORY;
    at = block;

    env->channel = channel;
    env->delivery_tag = d->delivery_tag;
    env->redelivered = d->redelivered;
    env->consumer_tag = put(&at, d->consumer_tag); /* at BLOCK: wr_envelope_free's handle */
    env->exchange = put(&at, d->exchange);
    env->routing_key = put(&at, d->routing_key);

    *p = *props;
    p->headers.num_entries = 0;
    p->headers.entries = NULL;
    for (i = 0; i < NFIELDS; i++)
        if (props->_flags & FIELDS[i].flag)
            *field(p, i) = put(&at, *cfield(props, i));
    init_amqp_pool(&env->message.pool, HEADERS_PAGE); /* allocates nothing yet */
    if ((props->_flags & AMQP_BASIC_HEADERS_FLAG) &&
        amqp_table_clone(&props->headers, &p->headers, &env->message.pool) != AMQP_STATUS_OK) {
        wr_envelope_free(env);
        return AMQP_STATUS_NO_MEMORY;
    }
    env->message.body.bytes = at;
    env->message.body.len = (size_t)body_size;
    return 0;
}

int wr_envelope_read(amqp_connection_state_t conn, const amqp_frame_t *deliver,
                     amqp_envelope_t *env)
{
    amqp_frame_t f;
    size_t got = 0;
    int st;

    memset(env, 0, sizeof *env);
    /* The frames already read stay valid until the caller's next
     * amqp_maybe_release_buffers(): rabbitmq-c copies each frame into its
     * channel's pool, so DELIVER survives reading the ones after it. */
    st = amqp_simple_wait_frame(conn, &f);
    if (st != AMQP_STATUS_OK)
        return st;
    if (f.frame_type != AMQP_FRAME_HEADER || f.channel != deliver->channel)
        return AMQP_STATUS_UNEXPECTED_STATE;
    st = wr_envelope_build(env, deliver->channel, deliver->payload.method.decoded,
                           f.payload.properties.decoded, f.payload.properties.body_size);
    if (st != 0)
        return st;
    while (got < env->message.body.len) {
        st = amqp_simple_wait_frame(conn, &f);
        if (st == AMQP_STATUS_OK &&
            (f.frame_type != AMQP_FRAME_BODY || f.channel != deliver->channel ||
             f.payload.body_fragment.len > env->message.body.len - got))
            st = AMQP_STATUS_UNEXPECTED_STATE;
        if (st != AMQP_STATUS_OK) {
            wr_envelope_free(env);
            return st;
        }
        memcpy((char *)env->message.body.bytes + got, f.payload.body_fragment.bytes,
               f.payload.body_fragment.len);
        got += f.payload.body_fragment.len;
    }
    return 0;
}

void wr_envelope_free(amqp_envelope_t *env)
{
    free(env->consumer_tag.bytes);
    empty_amqp_pool(&env->message.pool);
    memset(env, 0, sizeof *env);
}
