/*
 * Publisher confirms for replies, against the real broker.  A reply that
 * no queue takes (its reply_to queue does not exist) comes back as a
 * basic.return: the worker logs it once, counts it in warren.status,
 * acks the request (a retry cannot help) and goes on serving.  One the
 * broker refuses (a full reply queue with x-overflow reject-publish)
 * comes back as a basic.nack: the worker holds the request and sends the
 * reply again for [pool] reply_retry seconds, then gives it up, logged
 * and counted.  Ordinary replies, acked only after their confirm, keep
 * flowing.
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

/* Take one message off QUEUE (no ack needed); its body and correlation id
 * into BODY and CORR, or 0 when the queue is empty. */
static int take_one(amqp_connection_state_t conn, const char *queue, char *body, size_t body_len,
                    char *corr, size_t corr_len)
{
    amqp_rpc_reply_t r = amqp_basic_get(conn, CH, amqp_cstring_bytes(queue), 1 /* no_ack */);
    amqp_message_t msg;
    const amqp_basic_properties_t *p = &msg.properties;

    cr_assert_eq(r.reply_type, AMQP_RESPONSE_NORMAL, "basic.get %s", queue);
    if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD)
        return 0;
    cr_assert_eq(amqp_read_message(conn, CH, &msg, 0).reply_type, AMQP_RESPONSE_NORMAL);
    snprintf(body, body_len, "%.*s", (int)msg.body.len, (char *)msg.body.bytes);
    snprintf(corr, corr_len, "%.*s",
             (p->_flags & AMQP_BASIC_CORRELATION_ID_FLAG) ? (int)p->correlation_id.len : 0,
             (p->_flags & AMQP_BASIC_CORRELATION_ID_FLAG) ? (char *)p->correlation_id.bytes : "");
    amqp_destroy_message(&msg);
    return 1;
}

/* What each nacked-reply test has: warren with one worker, a connection
 * and a client of the test's own, and a classic reply queue that refuses
 * what does not fit (x-overflow reject-publish), so that the broker nacks
 * a reply published to it while it is full. */
typedef struct {
    wr_test_warren w;
    amqp_connection_state_t conn;
    wr_client *c;
    char reply_queue[128];
} nack_case;

/* Start T's warren (with up to two -o KEY=VALUE OVERRIDES, unless NULL)
 * and declare its reply queue, of at most MAX messages. */
static void nack_case_open(nack_case *t, int max, const char *override, const char *override2)
{
    amqp_table_entry_t args[4] = {
        {.key = amqp_cstring_bytes("x-max-length"),
         .value = {.kind = AMQP_FIELD_KIND_I32, .value.i32 = max}},
        {.key = amqp_cstring_bytes("x-overflow"),
         .value = {.kind = AMQP_FIELD_KIND_UTF8,
                   .value.bytes = amqp_cstring_bytes("reject-publish")}},
        {.key = amqp_cstring_bytes("x-queue-type"),
         .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes("classic")}},
        {.key = amqp_cstring_bytes("x-expires"),
         .value = {.kind = AMQP_FIELD_KIND_I32, .value.i32 = 120000}},
    };

    *t = (nack_case){0};
    wr_test_warren_write_conf(&t->w, 1, NULL);
    char *argv[] = {"warren",          "-c", t->w.conf,         "-o",
                    (char *) override, "-o", (char *)override2, NULL};
    if (!override2)
        argv[5] = NULL;
    if (!override)
        argv[3] = NULL;
    wr_test_warren_spawn(&t->w, argv, NULL);
    cr_assert(wr_test_log_wait(&t->w, "ready: ", 1, 30000), "not ready:\n%s",
              wr_test_log_read(&t->w));
    t->conn = wr_test_amqp_connect();
    t->c = wr_test_client(0);
    wr_test_queue_name(t->reply_queue, sizeof t->reply_queue, "small-reply-queue");
    amqp_queue_declare(t->conn, CH, amqp_cstring_bytes(t->reply_queue), 0, 1 /* durable */, 0, 0,
                       (amqp_table_t){.num_entries = 4, .entries = args});
    cr_assert_eq(amqp_get_rpc_reply(t->conn).reply_type, AMQP_RESPONSE_NORMAL, "declare %s",
                 t->reply_queue);
}

/* Delete T's queues, close its connections, stop warren (if the test has
 * not) and expect exit 0. */
static void nack_case_close(nack_case *t)
{
    amqp_queue_delete(t->conn, CH, amqp_cstring_bytes(t->reply_queue), 0, 0);
    amqp_queue_delete(t->conn, CH, amqp_cstring_bytes(t->w.queue), 0, 0);
    wr_client_close(t->c);
    wr_amqp_close(t->conn);
    cr_assert_eq(wr_test_warren_stop(&t->w), 0, "%s", wr_test_log_read(&t->w));
}

/* warren.status of T's worker: COUNTER. */
static long long nack_case_counter(nack_case *t, const char *name)
{
    json_t *st = status(t->c, t->w.queue);
    long long n = counter(st, name);

    json_decref(st);
    return n;
}

/* The reply queue is full until the test takes the message that fills
 * it: meanwhile the worker holds the request unacked and sends the reply
 * again, and the caller gets it once there is room. */
Test(confirms, a_reply_the_broker_nacks_is_sent_again_until_it_is_taken, .timeout = 120)
{
    nack_case t;
    char body[512], corr[64];
    amqp_basic_properties_t fp = {0};
    int got = 0;

    nack_case_open(&t, 1, NULL, NULL);
    fp._flags = AMQP_BASIC_CORRELATION_ID_FLAG;
    fp.correlation_id = amqp_cstring_bytes("filler");
    cr_assert_eq(amqp_basic_publish(t.conn, CH, amqp_empty_bytes, amqp_cstring_bytes(t.reply_queue),
                                    0, 0, &fp, amqp_cstring_bytes("filler")),
                 AMQP_STATUS_OK);
    for (int i = 0; i < 100 && wr_test_queue_stat(t.reply_queue, "messages") != 1; i++)
        usleep(100000);
    cr_assert_eq(wr_test_queue_stat(t.reply_queue, "messages"), 1, "the filler is not in %s",
                 t.reply_queue);

    request(t.conn, t.w.queue, t.reply_queue, "again-1");
    cr_assert(wr_test_log_wait(&t.w, "holding the request", 1, 20000), "no nack logged:\n%s",
              wr_test_log_read(&t.w));
    usleep(500000);
    cr_assert_eq(wr_test_queue_stat(t.w.queue, "messages_unacknowledged"), 1,
                 "the request was not held while its reply was refused");
    cr_assert(take_one(t.conn, t.reply_queue, body, sizeof body, corr, sizeof corr));
    cr_assert_str_eq(corr, "filler");

    /* Resent 0.1 s apart, doubling: room is seen within a few seconds. */
    for (int i = 0; i < 200 && !got; i++) {
        got = take_one(t.conn, t.reply_queue, body, sizeof body, corr, sizeof corr);
        if (!got)
            usleep(100000);
    }
    cr_assert(got, "the reply never came once there was room:\n%s", wr_test_log_read(&t.w));
    cr_assert_str_eq(corr, "again-1");
    cr_assert(strstr(body, "\"result\""), "%s", body);
    expect_settled(t.w.queue);
    cr_assert(wr_test_log_wait(&t.w, "was confirmed on try", 1, 10000), "%s",
              wr_test_log_read(&t.w));
    cr_assert_eq(nack_case_counter(&t, "replies_nacked"), 0, "nothing was given up");
    cr_assert_geq(nack_case_counter(&t, "replies_resent"), 1);
    nack_case_close(&t);
}

/* A stop while a reply is held: the worker does not wait out
 * reply_retry; the held request goes back to the queue, unanswered,
 * for the next worker. */
Test(confirms, a_stop_hands_a_held_request_back_to_the_queue, .timeout = 120)
{
    nack_case t;

    nack_case_open(&t, 0, NULL, NULL);
    request(t.conn, t.w.queue, t.reply_queue, "held-1");
    cr_assert(wr_test_log_wait(&t.w, "holding the request", 1, 20000), "no nack logged:\n%s",
              wr_test_log_read(&t.w));
    cr_assert_eq(wr_test_warren_stop(&t.w), 0, "%s", wr_test_log_read(&t.w));
    cr_assert_eq(wr_test_log_count(&t.w, "1 request whose reply the broker refused goes back"), 1,
                 "%s", wr_test_log_read(&t.w));
    cr_assert_eq(wr_test_log_count(&t.w, "its reply is lost"), 0);
    cr_assert_eq(wr_test_queue_stat(t.w.queue, "messages_ready"), 1, "the request is not back");
    nack_case_close(&t);
}

/* A reply queue that never takes anything: after [pool] reply_retry the
 * reply is given up, logged and counted, and the request acked. */
Test(confirms, a_reply_nacked_past_reply_retry_is_counted_and_its_request_acked, .timeout = 120)
{
    nack_case t;

    nack_case_open(&t, 0, "pool.reply_retry=2", NULL);
    request(t.conn, t.w.queue, t.reply_queue, "full-1");
    request(t.conn, t.w.queue, t.reply_queue, "full-2");
    cr_assert(wr_test_log_wait(&t.w, "its reply is lost", 2, 20000), "no give-up logged:\n%s",
              wr_test_log_read(&t.w));
    expect_settled(t.w.queue);
    cr_assert_eq(wr_test_queue_stat(t.reply_queue, "messages"), 0);
    cr_assert_eq(wr_test_log_count(&t.w, "holding the request"), 2, "one warning each at first");
    cr_assert_eq(nack_case_counter(&t, "replies_nacked"), 2);
    /* 0.1, 0.2, 0.4, 0.8 s and at 2 s: several tries each. */
    cr_assert_geq(nack_case_counter(&t, "replies_resent"), 4);
    cr_assert_eq(nack_case_counter(&t, "replies_returned"), 0);
    nack_case_close(&t);
}

/* reply_retry = 0: a nacked reply is given up at once. */
Test(confirms, a_reply_nacked_with_reply_retry_off_is_given_up_at_once, .timeout = 120)
{
    nack_case t;

    nack_case_open(&t, 0, "pool.reply_retry=0", NULL);
    request(t.conn, t.w.queue, t.reply_queue, "off-1");
    cr_assert(wr_test_log_wait(&t.w, "reply_retry = 0", 1, 20000), "no nack logged:\n%s",
              wr_test_log_read(&t.w));
    expect_settled(t.w.queue);
    cr_assert_eq(nack_case_counter(&t, "replies_nacked"), 1);
    cr_assert_eq(nack_case_counter(&t, "replies_resent"), 0);
    nack_case_close(&t);
}

/* With calls in flight, the broker confirms replies to different queues
 * out of order (a quorum queue's once its log has it, a classic one's at
 * once), and a worker acks a request confirmed early together with the
 * older ones.  Every request still gets acked, and once: an ack of a tag
 * twice would close the channel, and the requests would come back. */
Test(confirms, replies_confirmed_out_of_order_all_get_their_requests_acked, .timeout = 120)
{
    amqp_table_entry_t quorum_args[1] = {
        {.key = amqp_cstring_bytes("x-queue-type"),
         .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes("quorum")}},
    };
    enum { CALLS = 400 };
    nack_case t;
    char quorum[128], corr[32];
    int in_quorum = 0, in_classic = 0;

    nack_case_open(&t, CALLS, "pool.prefetch=16", NULL);
    wr_test_queue_name(quorum, sizeof quorum, "quorum-reply-queue");
    amqp_queue_declare(t.conn, CH, amqp_cstring_bytes(quorum), 0, 1 /* durable */, 0, 0,
                       (amqp_table_t){.num_entries = 1, .entries = quorum_args});
    cr_assert_eq(amqp_get_rpc_reply(t.conn).reply_type, AMQP_RESPONSE_NORMAL, "declare %s", quorum);
    /* The last reply goes to the classic queue: confirmed before the one
     * ahead of it, its request is the last to be acked. */
    for (int i = 0; i < CALLS; i++) {
        snprintf(corr, sizeof corr, "order-%d", i);
        request(t.conn, t.w.queue, i % 2 ? t.reply_queue : quorum, corr);
    }
    for (int i = 0; i < 200 && in_quorum + in_classic < CALLS; i++) {
        usleep(100000);
        in_quorum = wr_test_queue_stat(quorum, "messages");
        in_classic = wr_test_queue_stat(t.reply_queue, "messages");
    }
    cr_assert_eq(in_quorum, CALLS / 2, "replies in the quorum queue\n%s", wr_test_log_read(&t.w));
    cr_assert_eq(in_classic, CALLS / 2, "replies in the classic queue");
    expect_settled(t.w.queue);
    /* Nothing came back to be answered twice. */
    usleep(500000);
    cr_assert_eq(wr_test_queue_stat(quorum, "messages"), CALLS / 2);
    cr_assert_eq(wr_test_queue_stat(t.reply_queue, "messages"), CALLS / 2);
    cr_assert_eq(wr_test_log_count(&t.w, "lost"), 0, "%s", wr_test_log_read(&t.w));
    cr_assert_eq(wr_test_log_count(&t.w, "failed"), 0, "%s", wr_test_log_read(&t.w));
    amqp_queue_delete(t.conn, CH, amqp_cstring_bytes(quorum), 0, 0);
    nack_case_close(&t);
}

/* [pool] publisher_confirms = no: the channel is not in confirm mode, and
 * a request is acked once its reply is written.  Every call is answered
 * and acked; a reply that no queue takes is still logged with its
 * request's id, and counted. */
Test(confirms, with_confirms_off_requests_are_acked_as_their_replies_are_written, .timeout = 120)
{
    enum { CALLS = 200 };
    nack_case t;
    char corr[32], missing[128], *channels;
    int replies = 0;

    nack_case_open(&t, CALLS, "pool.publisher_confirms=no", "pool.prefetch=16");
    cr_assert_eq(wr_test_log_count(&t.w, "publisher confirms off"), 1, "%s",
                 wr_test_log_read(&t.w));
    /* warren's channel is the one with prefetch 16. */
    channels = wr_test_broker_ctl("list_channels prefetch_count confirm");
    cr_assert(strstr(channels, "16\tfalse") && !strstr(channels, "16\ttrue"), "%s", channels);
    free(channels);

    for (int i = 0; i < CALLS; i++) {
        snprintf(corr, sizeof corr, "fast-%d", i);
        request(t.conn, t.w.queue, t.reply_queue, corr);
    }
    for (int i = 0; i < 200 && replies < CALLS; i++) {
        usleep(100000);
        replies = wr_test_queue_stat(t.reply_queue, "messages");
    }
    cr_assert_eq(replies, CALLS, "%s", wr_test_log_read(&t.w));
    expect_settled(t.w.queue);

    wr_test_queue_name(missing, sizeof missing, "no-such-reply-queue");
    request(t.conn, t.w.queue, missing, "gone-unconfirmed");
    cr_assert(wr_test_log_wait(&t.w, "reached no queue", 1, 20000), "no return logged:\n%s",
              wr_test_log_read(&t.w));
    cr_assert_eq(wr_test_log_count(&t.w, "gone-unconfirmed"), 1, "the log names the request:\n%s",
                 wr_test_log_read(&t.w));
    expect_settled(t.w.queue);
    cr_assert_eq(nack_case_counter(&t, "replies_returned"), 1);
    cr_assert_eq(wr_test_queue_stat(t.reply_queue, "messages"), CALLS, "no reply twice");
    nack_case_close(&t);
}
