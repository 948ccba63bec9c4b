/*
 * Deadlines against the real broker: a request whose x-deadline (any
 * integer kind, a float, a numeric string) or expiration (counted from
 * x-sent-at or the timestamp property) has passed when a worker takes it
 * is answered with the -32000 timeout error in its route's shape, acked,
 * counted in warren.status, and never run: test.touch would leave a file.
 * The same for requests that waited in a worker's prefetch window behind a
 * slow one (where the broker no longer expires them), and for what
 * warren-call -t sends.  In-time requests beside them do run, so each test
 * can fail both ways.
 */
#include <amqp.h>
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/amqp_conn.h"
#include "tests/integration/harness.h"

#define CH 1
#define REPLY_WAIT_MS 30000

static amqp_connection_state_t conn;
static char replies[256]; /* our exclusive, server-named reply queue */

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void open_conn(void)
{
    amqp_queue_declare_ok_t *ok;

    conn = wr_test_amqp_connect();
    ok = amqp_queue_declare(conn, CH, amqp_empty_bytes, 0, 0, 1 /* exclusive */, 1,
                            amqp_empty_table);
    cr_assert_eq(amqp_get_rpc_reply(conn).reply_type, AMQP_RESPONSE_NORMAL, "reply queue");
    snprintf(replies, sizeof replies, "%.*s", (int)ok->queue.len, (char *)ok->queue.bytes);
}

/* What a request carries beside its body. */
typedef struct extra {
    const char *deadline_kind; /* x-deadline as "i64", "u64", "f64", "str" or NULL */
    long long deadline;
    const char *expiration; /* or NULL */
    long long sent_at;      /* x-sent-at (i64), 0: none */
    uint64_t timestamp;     /* the timestamp property (s), 0: none */
    int no_reply_to;
} extra;

/* Publish BODY to QUEUE with correlation id CORR and E's properties. */
static void publish(const char *queue, const char *body, const char *corr, const extra *e)
{
    amqp_basic_properties_t p = {0};
    amqp_table_entry_t h[2];
    char text[32];
    int n = 0;

    p._flags = AMQP_BASIC_CORRELATION_ID_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG;
    p.correlation_id = amqp_cstring_bytes(corr);
    p.content_type = amqp_cstring_bytes("application/json");
    if (!e || !e->no_reply_to) {
        p._flags |= AMQP_BASIC_REPLY_TO_FLAG;
        p.reply_to = amqp_cstring_bytes(replies);
    }
    if (e && e->deadline_kind) {
        amqp_table_entry_t *d = &h[n++];

        d->key = amqp_cstring_bytes("x-deadline");
        if (strcmp(e->deadline_kind, "i64") == 0) {
            d->value.kind = AMQP_FIELD_KIND_I64;
            d->value.value.i64 = e->deadline;
        } else if (strcmp(e->deadline_kind, "u64") == 0) {
            d->value.kind = AMQP_FIELD_KIND_U64;
            d->value.value.u64 = (uint64_t)e->deadline;
        } else if (strcmp(e->deadline_kind, "f64") == 0) {
            d->value.kind = AMQP_FIELD_KIND_F64;
            d->value.value.f64 = (double)e->deadline;
        } else {
            snprintf(text, sizeof text, "%lld", e->deadline);
            d->value.kind = AMQP_FIELD_KIND_UTF8;
            d->value.value.bytes = amqp_cstring_bytes(text);
        }
    }
    if (e && e->sent_at) {
        h[n].key = amqp_cstring_bytes("x-sent-at");
        h[n].value.kind = AMQP_FIELD_KIND_I64;
        h[n++].value.value.i64 = e->sent_at;
    }
    if (n) {
        p._flags |= AMQP_BASIC_HEADERS_FLAG;
        p.headers = (amqp_table_t){.num_entries = n, .entries = h};
    }
    if (e && e->expiration) {
        p._flags |= AMQP_BASIC_EXPIRATION_FLAG;
        p.expiration = amqp_cstring_bytes(e->expiration);
    }
    if (e && e->timestamp) {
        p._flags |= AMQP_BASIC_TIMESTAMP_FLAG;
        p.timestamp = e->timestamp;
    }
    cr_assert_eq(amqp_basic_publish(conn, CH, amqp_empty_bytes, amqp_cstring_bytes(queue), 0, 0, &p,
                                    amqp_cstring_bytes(body)),
                 AMQP_STATUS_OK);
}

/* The next reply, which must be the one to CORR; *MSG filled (free with
 * amqp_destroy_message).  With one worker, replies come in request order. */
static void next_reply(const char *corr, amqp_message_t *msg)
{
    for (int waited = 0; waited <= REPLY_WAIT_MS; waited += 20) {
        amqp_rpc_reply_t r = amqp_basic_get(conn, CH, amqp_cstring_bytes(replies), 1);

        cr_assert_eq(r.reply_type, AMQP_RESPONSE_NORMAL, "basic.get failed");
        if (r.reply.id == AMQP_BASIC_GET_OK_METHOD) {
            cr_assert_eq(amqp_read_message(conn, CH, msg, 0).reply_type, AMQP_RESPONSE_NORMAL);
            cr_assert(msg->properties._flags & AMQP_BASIC_CORRELATION_ID_FLAG);
            cr_assert(msg->properties.correlation_id.len == strlen(corr) &&
                          memcmp(msg->properties.correlation_id.bytes, corr, strlen(corr)) == 0,
                      "expected the reply to %s, got %.*s: %.*s", corr,
                      (int)msg->properties.correlation_id.len,
                      (char *)msg->properties.correlation_id.bytes, (int)msg->body.len,
                      (char *)msg->body.bytes);
            return;
        }
        usleep(20000);
    }
    cr_assert_fail("no reply to %s in %d s", corr, REPLY_WAIT_MS / 1000);
}

/* The next reply's body as JSON (must be the reply to CORR). */
static json_t *reply_json(const char *corr)
{
    amqp_message_t msg;
    json_t *j;

    next_reply(corr, &msg);
    j = json_loadb(msg.body.bytes, msg.body.len, 0, NULL);
    cr_assert_not_null(j, "%s: not JSON: %.*s", corr, (int)msg.body.len, (char *)msg.body.bytes);
    amqp_destroy_message(&msg);
    return j;
}

/* REPLY is the timeout error (from FROM); takes REPLY. */
static void expect_timeout(json_t *reply, const char *from, const char *what)
{
    json_t *e = json_object_get(reply, "error");
    const char *msg = json_string_value(json_object_get(e, "message"));

    cr_expect_eq(json_integer_value(json_object_get(e, "code")), -32000, "%s: code", what);
    cr_expect(msg && strncmp(msg, "deadline passed ", 16) == 0, "%s: message %s", what,
              msg ? msg : "(none)");
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(e, "data"), "from")), from,
                     "%s", what);
    cr_expect_null(json_object_get(reply, "result"), "%s", what);
    json_decref(reply);
}

static json_int_t status_counter(const char *queue, const char *name)
{
    json_t *r, *v;
    json_int_t n;

    publish(queue, "{\"jsonrpc\":\"2.0\",\"method\":\"warren.status\",\"id\":\"st\"}", "status",
            NULL);
    r = reply_json("status");
    v = json_object_get(json_object_get(r, "result"), name);
    cr_assert(json_is_integer(v), "warren.status has no %s", name);
    n = json_integer_value(v);
    json_decref(r);
    return n;
}

/* A test.touch request for PATH. */
static void touch_request(char *buf, size_t len, const char *path, int id)
{
    snprintf(buf, len,
             "{\"jsonrpc\":\"2.0\",\"method\":\"test.touch\",\"params\":[\"%s\"],\"id\":%d}", path,
             id);
}

TestSuite(deadlines, .timeout = 180);

Test(deadlines, expired_requests_are_answered_not_run)
{
    wr_test_warren w = {0};
    char never[400], ran[400], body[600], extra_cfg[256], raw_queue[160];
    long long past = now_ms() - 5000;
    amqp_message_t msg;
    json_t *r;

    wr_test_queue_name(w.queue, sizeof w.queue, "deadline");
    snprintf(raw_queue, sizeof raw_queue, "%s.raw", w.queue);
    snprintf(extra_cfg, sizeof extra_cfg,
             "[route raw]\nqueue = %s\nformat = raw\nmethod = test.touch\n", raw_queue);
    wr_test_warren_start(&w, 1, extra_cfg, 1);
    snprintf(never, sizeof never, "%s/never", wr_test_warren_dir(&w));
    snprintf(ran, sizeof ran, "%s/ran", wr_test_warren_dir(&w));
    open_conn();

    /* x-deadline in the past, in every form a client may write it. */
    static const char *const kinds[] = {"i64", "u64", "f64", "str"};
    for (int i = 0; i < 4; i++) {
        char corr[16];

        snprintf(corr, sizeof corr, "k%d", i);
        touch_request(body, sizeof body, never, i);
        publish(w.queue, body, corr, &(extra){.deadline_kind = kinds[i], .deadline = past});
        r = reply_json(corr);
        cr_expect_eq(json_integer_value(json_object_get(r, "id")), i, "the request's id");
        expect_timeout(r, "x-deadline", kinds[i]);
    }

    /* expiration, counted from x-sent-at and from the timestamp property:
     * sent two minutes ago with one minute to live (the broker, which
     * counts from when it queued the message, still delivers it). */
    touch_request(body, sizeof body, never, 10);
    publish(w.queue, body, "sent-at",
            &(extra){.expiration = "60000", .sent_at = now_ms() - 120000});
    expect_timeout(reply_json("sent-at"), "expiration", "x-sent-at");
    publish(w.queue, body, "timestamp",
            &(extra){.expiration = "60000", .timestamp = (uint64_t)(now_ms() / 1000 - 120)});
    expect_timeout(reply_json("timestamp"), "expiration", "timestamp");

    /* In time: it runs. */
    touch_request(body, sizeof body, ran, 11);
    publish(w.queue, body, "in-time",
            &(extra){.deadline_kind = "i64",
                     .deadline = now_ms() + 600000,
                     .expiration = "600000",
                     .timestamp = (uint64_t)(now_ms() / 1000)});
    r = reply_json("in-time");
    cr_expect_str_eq(json_string_value(json_object_get(r, "result")), ran, "in time: it ran");
    json_decref(r);
    cr_expect_eq(access(ran, F_OK), 0, "in time: test.touch ran");

    /* raw: its error shape, x-error-code and the {"error"} body. */
    publish(raw_queue, never, "raw", &(extra){.deadline_kind = "i64", .deadline = past});
    next_reply("raw", &msg);
    {
        int found = 0;
        for (int i = 0; i < msg.properties.headers.num_entries; i++) {
            amqp_table_entry_t *e = &msg.properties.headers.entries[i];
            if (e->key.len == 12 && memcmp(e->key.bytes, "x-error-code", 12) == 0) {
                long long code = e->value.kind == AMQP_FIELD_KIND_I64   ? e->value.value.i64
                                 : e->value.kind == AMQP_FIELD_KIND_I32 ? e->value.value.i32
                                                                        : 0;
                cr_expect_eq(code, -32000, "raw: x-error-code");
                found = 1;
            }
        }
        cr_expect(found, "raw: an x-error-code header");
        r = json_loadb(msg.body.bytes, msg.body.len, 0, NULL);
        cr_expect_eq(json_integer_value(json_object_get(json_object_get(r, "error"), "code")),
                     -32000, "raw: %.*s", (int)msg.body.len, (char *)msg.body.bytes);
        json_decref(r);
    }
    amqp_destroy_message(&msg);

    /* No reply address: no reply, still acked and counted (the next reply
     * is warren.status's). */
    touch_request(body, sizeof body, never, 12);
    publish(w.queue, body, "nobody",
            &(extra){.deadline_kind = "i64", .deadline = past, .no_reply_to = 1});

    cr_expect_eq(status_counter(w.queue, "expired"), 8, "warren.status counts them");
    cr_expect_neq(access(never, F_OK), 0, "an expired request ran");
    /* One info line (the next would come 10 s later), not one per request. */
    int lines = wr_test_log_count(&w, "not run: its ");
    cr_expect(lines >= 1 && lines < 8, "%d info lines for 8 expired requests", lines);
    cr_expect_eq(wr_test_log_count(&w, " exited "), 0, "a worker exited");
    cr_expect_eq(wr_test_queue_stat(w.queue, "messages"), 0, "all acked");
    cr_expect_eq(wr_test_queue_stat(raw_queue, "messages"), 0, "all acked (raw)");
    wr_amqp_close(conn);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}

Test(deadlines, behind_a_slow_one_in_the_prefetch_window)
{
    wr_test_warren w = {0};
    char never[400], ran[400], body[600];
    char *argv[] = {"warren", "-c", w.conf, "-o", "pool.prefetch=4", NULL};
    long long t0;
    int unacked = -1;
    json_t *r;

    wr_test_warren_write_conf(&w, 1, NULL);
    wr_test_warren_spawn(&w, argv, NULL);
    cr_assert(wr_test_log_wait(&w, "ready: ", 1, 30000), "not ready");
    snprintf(never, sizeof never, "%s/never", wr_test_warren_dir(&w));
    snprintf(ran, sizeof ran, "%s/ran", wr_test_warren_dir(&w));
    open_conn();

    /* The slow one, then three that the broker hands over at once (prefetch
     * 4): two with 3 s to live, one in time. */
    t0 = now_ms();
    publish(w.queue, "{\"jsonrpc\":\"2.0\",\"method\":\"test.sleep\",\"params\":[8],\"id\":1}",
            "slow", NULL);
    touch_request(body, sizeof body, never, 2);
    publish(w.queue, body, "x-deadline", &(extra){.deadline_kind = "i64", .deadline = t0 + 3000});
    publish(w.queue, body, "expiration", &(extra){.expiration = "3000", .sent_at = t0});
    touch_request(body, sizeof body, ran, 3);
    publish(w.queue, body, "in-time", &(extra){.deadline_kind = "i64", .deadline = t0 + 600000});

    /* They sit unacked in the worker, not in the queue (where the broker
     * would drop the expired ones itself). */
    for (int i = 0; i < 50 && unacked != 4; i++) {
        unacked = wr_test_queue_stat(w.queue, "messages_unacknowledged");
        if (unacked != 4)
            usleep(100000);
    }
    cr_expect_eq(unacked, 4, "all four in the worker's prefetch window");

    r = reply_json("slow");
    cr_expect_eq(json_integer_value(json_object_get(r, "result")), 8);
    json_decref(r);
    cr_expect(now_ms() - t0 >= 8000, "the slow one slept");
    expect_timeout(reply_json("x-deadline"), "x-deadline", "behind the slow one, x-deadline");
    expect_timeout(reply_json("expiration"), "expiration", "behind the slow one, expiration");
    r = reply_json("in-time");
    cr_expect_str_eq(json_string_value(json_object_get(r, "result")), ran);
    json_decref(r);

    cr_expect_neq(access(never, F_OK), 0, "an expired request ran");
    cr_expect_eq(access(ran, F_OK), 0, "the request in time ran");
    cr_expect_eq(status_counter(w.queue, "expired"), 2);
    cr_expect_eq(status_counter(w.queue, "requests"), 5, "slow, 2 expired, in-time, status");
    wr_amqp_close(conn);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}

/* Run warren-call with ARGS against QUEUE; its exit code. */
static int warren_call(const char *queue, const char *args)
{
    char cmd[2048];

    snprintf(cmd, sizeof cmd, "'%s' -u '%s' -q '%s' %s", getenv("WARREN_CALL_BIN"),
             wr_test_broker_uri(), queue, args);
    return wr_test_sh(cmd, NULL, NULL);
}

Test(deadlines, warren_call_timeout_is_the_deadline)
{
    wr_test_warren w = {0};
    char never[400], late[400], args[1024];
    char *argv[] = {"warren", "-c", w.conf, "-o", "pool.prefetch=2", NULL};
    int ready = -1;
    json_t *r;

    wr_test_warren_write_conf(&w, 1, NULL);
    wr_test_warren_spawn(&w, argv, NULL);
    cr_assert(wr_test_log_wait(&w, "ready: ", 1, 30000), "not ready");
    snprintf(never, sizeof never, "%s/never", wr_test_warren_dir(&w));
    snprintf(late, sizeof late, "%s/late", wr_test_warren_dir(&w));
    open_conn();

    /* The worker sleeps; the first call waits beside it in the prefetch
     * window (x-deadline), the second in the queue (expiration: the broker
     * drops it), the third, without a deadline, runs once the worker is
     * free, long after its caller gave up. */
    publish(w.queue, "{\"jsonrpc\":\"2.0\",\"method\":\"test.sleep\",\"params\":[12],\"id\":1}",
            "slow", NULL);
    snprintf(args, sizeof args, "-t 1 test.touch '[\"%s\"]'", never);
    cr_expect_eq(warren_call(w.queue, args), 2, "no reply within 1 s");
    cr_expect_eq(warren_call(w.queue, args), 2, "no reply within 1 s");
    snprintf(args, sizeof args, "--no-deadline -t 1 test.touch '[\"%s\"]'", late);
    warren_call(w.queue, args); /* 2, unless the machine is slower than 12 s */

    /* The broker dropped the queued one with a deadline once it expired:
     * only the one without is left in the queue. */
    for (int i = 0; i < 50 && ready != 1; i++) {
        ready = wr_test_queue_stat(w.queue, "messages_ready");
        if (ready != 1)
            usleep(100000);
    }
    cr_expect_eq(ready, 1, "the broker expired the queued call");

    r = reply_json("slow");
    json_decref(r);
    cr_expect_eq(status_counter(w.queue, "expired"), 1, "the call in the window was not run");
    cr_expect_eq(access(late, F_OK), 0, "without a deadline, it ran for nobody");
    cr_expect_neq(access(never, F_OK), 0, "a call whose caller gave up ran");
    wr_amqp_close(conn);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}
