/*
 * Publisher confirms for replies, against the real broker.  A reply that
 * no queue takes (its reply_to queue does not exist) comes back as a
 * basic.return; one the broker refuses (a full reply queue with
 * x-overflow reject-publish) comes back as a basic.nack.  Either way the
 * worker logs it once, counts it in warren.status, acks the request (it
 * leaves the request queue: a retry cannot help) and goes on serving;
 * and ordinary replies, acked only after their confirm, keep flowing.
 */
#include <amqp.h>
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/amqp_conn.h"
#include "tests/integration/harness.h"

#define CH 1

/* One JSON-RPC echo request to warren's queue, its reply to REPLY_TO. */
static void request(amqp_connection_state_t conn, const char *queue, const char *reply_to,
                    const char *corr)
{
    amqp_basic_properties_t p = {0};
    const char *body = "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[1],\"id\":1}";

    p._flags = AMQP_BASIC_REPLY_TO_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG;
    p.reply_to = amqp_cstring_bytes(reply_to);
    p.correlation_id = amqp_cstring_bytes(corr);
    cr_assert_eq(amqp_basic_publish(conn, CH, amqp_empty_bytes, amqp_cstring_bytes(queue), 0, 0, &p,
                                    amqp_cstring_bytes(body)),
                 AMQP_STATUS_OK);
}

/* warren.status from the (one) worker, as JSON; fails the test on no
 * answer. */
static json_t *status(wr_client *c, const char *queue)
{
    char *reply = wr_test_rpc(
        c, queue, "{\"jsonrpc\":\"2.0\",\"method\":\"warren.status\",\"id\":7}", "st", 20000);
    json_t *j;

    cr_assert_not_null(reply, "no answer to warren.status");
    j = json_loads(reply, 0, NULL);
    cr_assert_not_null(j, "%s", reply);
    free(reply);
    return j;
}

static long long counter(json_t *st, const char *name)
{
    json_t *v = json_object_get(json_object_get(st, "result"), name);

    cr_assert(json_is_integer(v), "warren.status has no %s", name);
    return json_integer_value(v);
}

/* Wait until QUEUE has no message ready or unacked (the request was
 * acked), up to 20 s. */
static void expect_settled(const char *queue)
{
    for (int i = 0; i < 200; i++) {
        if (wr_test_queue_stat(queue, "messages_ready") == 0 &&
            wr_test_queue_stat(queue, "messages_unacknowledged") == 0)
            return;
        usleep(100000);
    }
    cr_assert_fail("queue %s still holds the request: ready %d, unacked %d", queue,
                   wr_test_queue_stat(queue, "messages_ready"),
                   wr_test_queue_stat(queue, "messages_unacknowledged"));
}

Test(confirms, a_reply_no_queue_takes_is_returned_counted_and_its_request_acked, .timeout = 120)
{
    wr_test_warren w = {0};
    pid_t before[1], after[1];
    char missing[128];
    amqp_connection_state_t conn;
    wr_client *c;
    json_t *st;

    wr_test_warren_start(&w, 1, NULL, 1);
    cr_assert_eq(wr_test_worker_pids(&w, before, 1), 1);
    conn = wr_test_amqp_connect();
    c = wr_test_client(0);
    wr_test_queue_name(missing, sizeof missing, "no-such-reply-queue");

    request(conn, w.queue, missing, "gone-1");
    cr_assert(wr_test_log_wait(&w, "reached no queue", 1, 20000), "no return logged:\n%s",
              wr_test_log_read(&w));
    expect_settled(w.queue);
    st = status(c, w.queue);
    cr_assert_eq(counter(st, "replies_returned"), 1);
    cr_assert_eq(counter(st, "replies_nacked"), 0);
    json_decref(st);
    cr_assert_eq(wr_test_log_count(&w, "reached no queue"), 1, "logged once");
    cr_assert_eq(wr_test_log_count(&w, "gone-1"), 1, "the log names the request");

    /* The same worker, still answering. */
    for (int i = 0; i < 20; i++) {
        char corr[32], *reply;
        snprintf(corr, sizeof corr, "ok-%d", i);
        reply = wr_test_rpc(c, w.queue,
                            "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[2],\"id\":2}",
                            corr, 20000);
        cr_assert_not_null(reply, "call %d unanswered", i);
        cr_assert(strstr(reply, "\"result\""), "%s", reply);
        free(reply);
    }
    cr_assert_eq(wr_test_worker_pids(&w, after, 1), 1);
    cr_assert_eq(before[0], after[0], "the worker was replaced");
    wr_client_close(c);
    wr_amqp_close(conn);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}

Test(confirms, a_reply_the_broker_nacks_is_counted_and_its_request_acked, .timeout = 120)
{
    wr_test_warren w = {0};
    char full[128];
    amqp_connection_state_t conn;
    amqp_table_entry_t args[4] = {
        {.key = amqp_cstring_bytes("x-max-length"),
         .value = {.kind = AMQP_FIELD_KIND_I32, .value.i32 = 0}},
        {.key = amqp_cstring_bytes("x-overflow"),
         .value = {.kind = AMQP_FIELD_KIND_UTF8,
                   .value.bytes = amqp_cstring_bytes("reject-publish")}},
        {.key = amqp_cstring_bytes("x-queue-type"),
         .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes("classic")}},
        {.key = amqp_cstring_bytes("x-expires"),
         .value = {.kind = AMQP_FIELD_KIND_I32, .value.i32 = 120000}},
    };
    wr_client *c;
    json_t *st;

    wr_test_warren_start(&w, 1, NULL, 1);
    conn = wr_test_amqp_connect();
    c = wr_test_client(0);
    /* A reply queue that is always full and refuses what it cannot take:
     * the broker nacks every publish to it. */
    wr_test_queue_name(full, sizeof full, "full-reply-queue");
    amqp_queue_declare(conn, CH, amqp_cstring_bytes(full), 0, 1 /* durable */, 0, 0,
                       (amqp_table_t){.num_entries = 4, .entries = args});
    cr_assert_eq(amqp_get_rpc_reply(conn).reply_type, AMQP_RESPONSE_NORMAL, "declare %s", full);

    request(conn, w.queue, full, "full-1");
    request(conn, w.queue, full, "full-2");
    cr_assert(wr_test_log_wait(&w, "nacked", 2, 20000), "no nack logged:\n%s",
              wr_test_log_read(&w));
    expect_settled(w.queue);
    cr_assert_eq(wr_test_queue_stat(full, "messages"), 0);
    st = status(c, w.queue);
    cr_assert_eq(counter(st, "replies_nacked"), 2);
    cr_assert_eq(counter(st, "replies_returned"), 0);
    json_decref(st);

    amqp_queue_delete(conn, CH, amqp_cstring_bytes(full), 0, 0);
    wr_client_close(c);
    wr_amqp_close(conn);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}
