/*
 * Replies where an AMQP 1.0 caller asked, against the real broker: a
 * reply_to written as a RabbitMQ 4 v2 address (/queues/NAME,
 * /exchanges/NAME/KEY, percent-encoded) or a 3.x one (/queue/NAME,
 * /exchange/NAME/KEY, /topic/KEY, /amq/queue/NAME) reaches the queue it
 * names; a missing exchange or a malformed address drops that reply
 * without costing the channel; and the caller's correlation id comes back
 * in its own form, the x-correlation-id header's field kind included.
 * The requests are published with rabbitmq-c directly, as the broker
 * hands a 1.0 caller's message to a 0-9-1 consumer.
 */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/integration/harness.h"

#define CH 1

static void declare_queue(amqp_connection_state_t conn, const char *name)
{
    amqp_queue_declare(conn, CH, amqp_cstring_bytes(name), 0, 0, 0, 1 /* auto-delete */,
                       amqp_empty_table);
    cr_assert_eq(amqp_get_rpc_reply(conn).reply_type, AMQP_RESPONSE_NORMAL, "declare %s", name);
}

static void bind_queue(amqp_connection_state_t conn, const char *q, const char *ex, const char *k)
{
    amqp_queue_bind(conn, CH, amqp_cstring_bytes(q), amqp_cstring_bytes(ex), amqp_cstring_bytes(k),
                    amqp_empty_table);
    cr_assert_eq(amqp_get_rpc_reply(conn).reply_type, AMQP_RESPONSE_NORMAL, "bind %s", q);
}

/* A JSON-RPC echo of ID to warren's QUEUE with REPLY_TO, a correlation_id
 * CORR and, when HEADER is non-NULL, that one header. */
static void request(amqp_connection_state_t conn, const char *queue, const char *reply_to,
                    const char *corr, const amqp_table_entry_t *header, int id)
{
    amqp_basic_properties_t p = {0};
    char body[128];

    snprintf(body, sizeof body,
             "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[%d],\"id\":%d}", id, id);
    p._flags = AMQP_BASIC_REPLY_TO_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG;
    p.reply_to = amqp_cstring_bytes(reply_to);
    p.correlation_id = amqp_cstring_bytes(corr);
    if (header) {
        p._flags |= AMQP_BASIC_HEADERS_FLAG;
        p.headers = (amqp_table_t){.num_entries = 1, .entries = (amqp_table_entry_t *)header};
    }
    cr_assert_eq(amqp_basic_publish(conn, CH, amqp_empty_bytes, amqp_cstring_bytes(queue), 0, 0, &p,
                                    amqp_cstring_bytes(body)),
                 AMQP_STATUS_OK);
}

/* Wait up to 10 s for a message on QUEUE (basic.get, acked); 1 with *MSG
 * filled (free with amqp_destroy_message), 0 if none came. */
static int take(amqp_connection_state_t conn, const char *queue, amqp_message_t *msg, int ms)
{
    for (int waited = 0; waited <= ms; waited += 20) {
        amqp_rpc_reply_t r = amqp_basic_get(conn, CH, amqp_cstring_bytes(queue), 1);

        cr_assert_eq(r.reply_type, AMQP_RESPONSE_NORMAL, "basic.get %s failed", queue);
        if (r.reply.id == AMQP_BASIC_GET_OK_METHOD) {
            cr_assert_eq(amqp_read_message(conn, CH, msg, 0).reply_type, AMQP_RESPONSE_NORMAL);
            return 1;
        }
        usleep(20000);
    }
    return 0;
}

/* The reply on QUEUE to request ID, correlated by CORR, as JSON text. */
static void expect_reply(amqp_connection_state_t conn, const char *queue, const char *corr, int id)
{
    amqp_message_t msg;
    char want[64];

    cr_assert(take(conn, queue, &msg, 10000), "no reply to %s on %s", corr, queue);
    snprintf(want, sizeof want, "\"result\":[%d]", id);
    cr_expect(memmem(msg.body.bytes, msg.body.len, want, strlen(want)) != NULL, "%s: %.*s", corr,
              (int)msg.body.len, (char *)msg.body.bytes);
    cr_expect(msg.properties._flags & AMQP_BASIC_CORRELATION_ID_FLAG);
    cr_expect(msg.properties.correlation_id.len == strlen(corr) &&
                  memcmp(msg.properties.correlation_id.bytes, corr, strlen(corr)) == 0,
              "%s: correlation_id", corr);
    cr_expect(msg.properties._flags & AMQP_BASIC_CONTENT_TYPE_FLAG);
    cr_expect(msg.properties.content_type.len == strlen("application/json") &&
                  memcmp(msg.properties.content_type.bytes, "application/json", 16) == 0,
              "%s: content_type", corr);
    amqp_destroy_message(&msg);
}

Test(reply_addresses, each_form_reaches_what_it_names, .timeout = 120)
{
    wr_test_warren w = {0};
    amqp_connection_state_t conn;
    char base[96], q[128], qx[128], qt[128], qsp[128], ex[128], key[128], addr[512];
    char enc[256];
    int id = 0;
    amqp_message_t msg;

    wr_test_queue_name(base, sizeof base, "addr");
    snprintf(q, sizeof q, "%s.replies", base);
    snprintf(qx, sizeof qx, "%s.via-exchange", base);
    snprintf(qt, sizeof qt, "%s.via-topic", base);
    snprintf(qsp, sizeof qsp, "%s reply/queue", base); /* needs encoding in v2 */
    snprintf(ex, sizeof ex, "%s.X", base);
    snprintf(key, sizeof key, "%s.k", base);
    wr_test_warren_start(&w, 1, NULL, 1);
    conn = wr_test_amqp_connect();
    declare_queue(conn, q);
    declare_queue(conn, qx);
    declare_queue(conn, qt);
    declare_queue(conn, qsp);
    amqp_exchange_declare(conn, CH, amqp_cstring_bytes(ex), amqp_cstring_bytes("direct"), 0, 0, 1,
                          0, amqp_empty_table);
    cr_assert_eq(amqp_get_rpc_reply(conn).reply_type, AMQP_RESPONSE_NORMAL);
    bind_queue(conn, qx, ex, key);
    bind_queue(conn, qt, "amq.topic", key);

    /* Queues: v2, the 3.x forms, and a plain name as before. */
    snprintf(addr, sizeof addr, "/queues/%s", q);
    request(conn, w.queue, addr, "c-queues", NULL, ++id);
    expect_reply(conn, q, "c-queues", id);
    snprintf(addr, sizeof addr, "/queue/%s", q);
    request(conn, w.queue, addr, "c-queue", NULL, ++id);
    expect_reply(conn, q, "c-queue", id);
    snprintf(addr, sizeof addr, "/amq/queue/%s", q);
    request(conn, w.queue, addr, "c-amq-queue", NULL, ++id);
    expect_reply(conn, q, "c-amq-queue", id);
    request(conn, w.queue, q, "c-plain", NULL, ++id);
    expect_reply(conn, q, "c-plain", id);
    /* v2 percent-encoding: "NAME reply/queue" as /queues/NAME%20reply%2Fqueue. */
    snprintf(enc, sizeof enc, "%s%%20reply%%2Fqueue", base);
    snprintf(addr, sizeof addr, "/queues/%s", enc);
    request(conn, w.queue, addr, "c-encoded", NULL, ++id);
    expect_reply(conn, qsp, "c-encoded", id);

    /* Exchanges: v2 and 3.x, and 3.x's /topic/ on amq.topic. */
    snprintf(addr, sizeof addr, "/exchanges/%s/%s", ex, key);
    request(conn, w.queue, addr, "c-exchanges", NULL, ++id);
    expect_reply(conn, qx, "c-exchanges", id);
    snprintf(addr, sizeof addr, "/exchange/%s/%s", ex, key);
    request(conn, w.queue, addr, "c-exchange", NULL, ++id);
    expect_reply(conn, qx, "c-exchange", id);
    snprintf(addr, sizeof addr, "/exchanges/amq.topic/%s", key);
    request(conn, w.queue, addr, "c-exchanges-topic", NULL, ++id);
    expect_reply(conn, qt, "c-exchanges-topic", id);
    snprintf(addr, sizeof addr, "/topic/%s", key);
    request(conn, w.queue, addr, "c-topic", NULL, ++id);
    expect_reply(conn, qt, "c-topic", id);

    /* A missing exchange and a malformed address: that reply is dropped
     * with a warning, the request acked, and the channel survives (the
     * next call is answered without a reconnect). */
    snprintf(addr, sizeof addr, "/exchanges/%s.missing/%s", base, key);
    request(conn, w.queue, addr, "c-missing", NULL, ++id);
    cr_expect(wr_test_log_wait(&w, "reply dropped", 1, 10000), "no warning for a missing exchange");
    request(conn, w.queue, "/queues/bad%zz", "c-malformed", NULL, ++id);
    cr_expect(wr_test_log_wait(&w, "reply dropped", 2, 10000), "no warning for a bad address");
    snprintf(addr, sizeof addr, "/queues/%s", q);
    request(conn, w.queue, addr, "c-after", NULL, ++id);
    expect_reply(conn, q, "c-after", id);
    cr_expect_eq(take(conn, q, &msg, 0), 0, "a dropped reply arrived after all");
    cr_expect_eq(wr_test_log_count(&w, "broker closed the channel"), 0);
    cr_expect_eq(wr_test_log_count(&w, "reconnect"), 0);
    cr_expect_eq(wr_test_queue_stat(w.queue, "messages"), 0, "a request was left unacked");

    amqp_exchange_delete(conn, CH, amqp_cstring_bytes(ex), 0);
    amqp_channel_close(conn, CH, AMQP_REPLY_SUCCESS);
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}

/* The reply's x-correlation-id header, or NULL. */
static const amqp_field_value_t *corr_header(const amqp_message_t *msg)
{
    const amqp_table_t *t = &msg->properties.headers;

    if (!(msg->properties._flags & AMQP_BASIC_HEADERS_FLAG))
        return NULL;
    for (int i = 0; i < t->num_entries; i++)
        if (t->entries[i].key.len == 16 &&
            memcmp(t->entries[i].key.bytes, "x-correlation-id", 16) == 0)
            return &t->entries[i].value;
    return NULL;
}

Test(reply_addresses, x_correlation_id_comes_back_in_its_own_kind, .timeout = 120)
{
    static const unsigned char bin[] = {0x00, 0x01, 0xfe, 0xff, 0x7f, 'b', 'i', 'n'};
    wr_test_warren w = {0};
    amqp_connection_state_t conn;
    amqp_table_entry_t h = {.key = amqp_cstring_bytes("x-correlation-id")};
    const amqp_field_value_t *v;
    amqp_message_t msg;
    char q[128], extra[256], failq[160];

    wr_test_queue_name(q, sizeof q, "corr");
    snprintf(failq, sizeof failq, "%s.fail", q);
    /* A classic queue: a quorum queue re-encodes the headers it adds
     * x-delivery-count to, and RabbitMQ writes a u64 ('L') back as 'l'
     * before warren sees it. */
    snprintf(extra, sizeof extra,
             "queue_type = classic\n\n[route failing]\nqueue = %s\nformat = raw\n"
             "method = test.fail\n",
             failq);
    wr_test_warren_start(&w, 1, extra, 1);
    conn = wr_test_amqp_connect();
    declare_queue(conn, q);

    /* binary (RabbitMQ 3.x: a 1.0 binary or uuid correlation id). */
    h.value.kind = AMQP_FIELD_KIND_BYTES;
    h.value.value.bytes = (amqp_bytes_t){.len = sizeof bin, .bytes = (void *)bin};
    request(conn, w.queue, q, "c-bin", &h, 1);
    cr_assert(take(conn, q, &msg, 10000), "no reply");
    v = corr_header(&msg);
    cr_assert(v, "no x-correlation-id on the reply");
    cr_expect_eq(v->kind, AMQP_FIELD_KIND_BYTES, "kind %c", v->kind);
    cr_expect(v->value.bytes.len == sizeof bin &&
              memcmp(v->value.bytes.bytes, bin, sizeof bin) == 0);
    amqp_destroy_message(&msg);

    /* a 64-bit integer (a 1.0 ulong), as 'L' (u64) and as 'l' (i64,
     * what other 0-9-1 codecs write for it): each comes back as sent. */
    for (int i = 0; i < 2; i++) {
        char corr[32];

        h.value.kind = i ? AMQP_FIELD_KIND_I64 : AMQP_FIELD_KIND_U64;
        h.value.value.u64 = 0xfedcba9876543210ULL >> i;
        snprintf(corr, sizeof corr, "c-int64-%c", h.value.kind);
        request(conn, w.queue, q, corr, &h, 2 + i);
        cr_assert(take(conn, q, &msg, 10000), "no reply to %s", corr);
        v = corr_header(&msg);
        cr_assert(v, "no x-correlation-id on the reply to %s", corr);
        cr_expect_eq(v->kind, h.value.kind, "%s: kind %c", corr, v->kind);
        cr_expect_eq(v->value.u64, 0xfedcba9876543210ULL >> i, "%s", corr);
        amqp_destroy_message(&msg);
    }

    /* a string (a uuid written urn:uuid:...), beside the property. */
    h.value.kind = AMQP_FIELD_KIND_UTF8;
    h.value.value.bytes = amqp_cstring_bytes("urn:uuid:2f1d7c5e-3b4a-4c6d-9e8f-0a1b2c3d4e5f");
    request(conn, w.queue, q, "urn:uuid:2f1d7c5e-3b4a-4c6d-9e8f-0a1b2c3d4e5f", &h, 4);
    cr_assert(take(conn, q, &msg, 10000), "no reply");
    v = corr_header(&msg);
    cr_assert(v, "no x-correlation-id on the reply");
    cr_expect_eq(v->kind, AMQP_FIELD_KIND_UTF8, "kind %c", v->kind);
    cr_expect(v->value.bytes.len == 45);
    cr_expect(msg.properties.correlation_id.len == 45);
    amqp_destroy_message(&msg);

    /* a raw route's error reply: x-error-code and x-error-message beside it. */
    h.value.kind = AMQP_FIELD_KIND_BYTES;
    h.value.value.bytes = (amqp_bytes_t){.len = sizeof bin, .bytes = (void *)bin};
    request(conn, failq, q, "c-error", &h, 5);
    cr_assert(take(conn, q, &msg, 10000), "no error reply");
    v = corr_header(&msg);
    cr_assert(v, "no x-correlation-id on the error reply");
    cr_expect_eq(v->kind, AMQP_FIELD_KIND_BYTES, "kind %c", v->kind);
    cr_expect_eq(msg.properties.headers.num_entries, 3);
    for (int i = 0; i < msg.properties.headers.num_entries; i++) {
        const amqp_table_entry_t *e = &msg.properties.headers.entries[i];
        if (e->key.len == 12 && memcmp(e->key.bytes, "x-error-code", 12) == 0)
            cr_expect_eq(e->value.value.i32, 1001);
    }
    amqp_destroy_message(&msg);

    amqp_channel_close(conn, CH, AMQP_REPLY_SUCCESS);
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}
