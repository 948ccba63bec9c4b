/*
 * Unit tests for worker/envelope.c: an envelope built from a delivery and
 * its content header keeps every name, property and header after the
 * frames it came from are gone (rabbitmq-c recycles them), leaves room for
 * exactly the announced body, and refuses a body no allocation can hold.
 * The frames themselves come from a real broker in every integration test.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "worker/envelope.h"

/* A heap copy of TEXT as amqp bytes, so that scribbling over it after the
 * build shows whether the envelope still points at it. */
static amqp_bytes_t heap(const char *text)
{
    amqp_bytes_t b = {strlen(text), malloc(strlen(text) + 1)};
    cr_assert_not_null(b.bytes);
    memcpy(b.bytes, text, b.len + 1);
    return b;
}

static void scribble(amqp_bytes_t b)
{
    memset(b.bytes, '#', b.len);
    free(b.bytes);
}

static int is(amqp_bytes_t b, const char *text)
{
    return b.len == strlen(text) && memcmp(b.bytes, text, b.len) == 0;
}

Test(envelope, every_name_property_and_header_outlives_its_frames)
{
    amqp_basic_deliver_t d = {.consumer_tag = heap("ctag-1"),
                              .delivery_tag = 42,
                              .redelivered = 1,
                              .exchange = heap("ex"),
                              .routing_key = heap("rpc.key")};
    amqp_basic_properties_t p = {0};
    amqp_table_entry_t entries[2];
    amqp_bytes_t trace = heap("00-abc-01");
    amqp_bytes_t k0 = heap("x-delivery-count"), k1 = heap("traceparent");
    amqp_envelope_t env;

    p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_CONTENT_ENCODING_FLAG |
               AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_PRIORITY_FLAG |
               AMQP_BASIC_CORRELATION_ID_FLAG | AMQP_BASIC_REPLY_TO_FLAG |
               AMQP_BASIC_EXPIRATION_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TIMESTAMP_FLAG |
               AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_USER_ID_FLAG | AMQP_BASIC_APP_ID_FLAG |
               AMQP_BASIC_CLUSTER_ID_FLAG;
    p.content_type = heap("application/json");
    p.content_encoding = heap("utf-8");
    p.delivery_mode = 2;
    p.priority = 7;
    p.correlation_id = heap("corr-9");
    p.reply_to = heap("amq.gen-reply");
    p.expiration = heap("60000");
    p.message_id = heap("msg-3");
    p.timestamp = 1700000000;
    p.type = heap("rpc");
    p.user_id = heap("guest");
    p.app_id = heap("billing");
    p.cluster_id = heap("c1");
    entries[0].key = k0;
    entries[0].value.kind = AMQP_FIELD_KIND_I64;
    entries[0].value.value.i64 = 3;
    entries[1].key = k1;
    entries[1].value.kind = AMQP_FIELD_KIND_UTF8;
    entries[1].value.value.bytes = trace;
    p.headers.num_entries = 2;
    p.headers.entries = entries;

    cr_assert_eq(wr_envelope_build(&env, 1, &d, &p, 5), 0);
    memcpy(env.message.body.bytes, "hello", 5);

    scribble(d.consumer_tag);
    scribble(d.exchange);
    scribble(d.routing_key);
    amqp_bytes_t *strs[] = {&p.content_type, &p.content_encoding, &p.correlation_id, &p.reply_to,
                            &p.expiration,   &p.message_id,       &p.type,           &p.user_id,
                            &p.app_id,       &p.cluster_id};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        scribble(*strs[i]);
    scribble(trace);
    scribble(k0);
    scribble(k1);
    memset(entries, 0xa5, sizeof entries);

    const amqp_basic_properties_t *q = &env.message.properties;
    cr_assert_eq(env.channel, 1);
    cr_assert_eq(env.delivery_tag, 42);
    cr_assert_eq(env.redelivered, 1);
    cr_assert(is(env.consumer_tag, "ctag-1"));
    cr_assert(is(env.exchange, "ex"));
    cr_assert(is(env.routing_key, "rpc.key"));
    cr_assert_eq(q->_flags, p._flags);
    cr_assert(is(q->content_type, "application/json"));
    cr_assert(is(q->content_encoding, "utf-8"));
    cr_assert_eq(q->delivery_mode, 2);
    cr_assert_eq(q->priority, 7);
    cr_assert(is(q->correlation_id, "corr-9"));
    cr_assert(is(q->reply_to, "amq.gen-reply"));
    cr_assert(is(q->expiration, "60000"));
    cr_assert(is(q->message_id, "msg-3"));
    cr_assert_eq(q->timestamp, 1700000000);
    cr_assert(is(q->type, "rpc"));
    cr_assert(is(q->user_id, "guest"));
    cr_assert(is(q->app_id, "billing"));
    cr_assert(is(q->cluster_id, "c1"));
    cr_assert_eq(q->headers.num_entries, 2);
    cr_assert(is(q->headers.entries[0].key, "x-delivery-count"));
    cr_assert_eq(q->headers.entries[0].value.kind, AMQP_FIELD_KIND_I64);
    cr_assert_eq(q->headers.entries[0].value.value.i64, 3);
    cr_assert(is(q->headers.entries[1].key, "traceparent"));
    cr_assert(is(q->headers.entries[1].value.value.bytes, "00-abc-01"));
    cr_assert_eq(env.message.body.len, 5);
    cr_assert_eq(memcmp(env.message.body.bytes, "hello", 5), 0);
    wr_envelope_free(&env);
    cr_assert_null(env.consumer_tag.bytes);
}

Test(envelope, unset_properties_are_not_copied_and_an_empty_body_is_empty)
{
    amqp_basic_deliver_t d = {.consumer_tag = {0, NULL}, .delivery_tag = 1};
    amqp_basic_properties_t p = {0};
    amqp_envelope_t env;

    /* A value with no flag is garbage a decoder left: never read it. */
    p.reply_to.len = 1u << 30;
    p.reply_to.bytes = NULL;
    p._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
    p.delivery_mode = 1;
    cr_assert_eq(wr_envelope_build(&env, 1, &d, &p, 0), 0);
    cr_assert_eq(env.message.body.len, 0);
    cr_assert_eq(env.consumer_tag.len, 0);
    cr_assert_not_null(env.consumer_tag.bytes); /* the block, even when empty */
    cr_assert_eq(env.message.properties.headers.num_entries, 0);
    cr_assert_eq(env.message.properties.delivery_mode, 1);
    wr_envelope_free(&env);
}

Test(envelope, a_body_too_big_to_hold_is_refused)
{
    amqp_basic_deliver_t d = {.consumer_tag = {3, "tag"}, .delivery_tag = 1};
    amqp_basic_properties_t p = {0};
    amqp_envelope_t env;

    cr_assert_eq(wr_envelope_build(&env, 1, &d, &p, UINT64_MAX), AMQP_STATUS_BAD_AMQP_DATA);
    cr_assert_null(env.consumer_tag.bytes);
    wr_envelope_free(&env); /* an empty envelope frees fine */
}

Test(envelope, freeing_twice_is_harmless)
{
    amqp_basic_deliver_t d = {.consumer_tag = {3, "tag"}, .delivery_tag = 1};
    amqp_basic_properties_t p = {0};
    amqp_envelope_t env;

    cr_assert_eq(wr_envelope_build(&env, 1, &d, &p, 16), 0);
    wr_envelope_free(&env);
    wr_envelope_free(&env);
    cr_assert_null(env.message.body.bytes);
}
