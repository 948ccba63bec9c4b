/*
 * Routes for every client style, side by side in one instance, and
 * broadcast routes across instances, against the real broker: a raw route
 * (the RabbitMQ tutorial's bodies), an amqpbus route (the 2011 recipe,
 * with the exchange declared by warren), JSON-RPC beside them, and the
 * scatter-gather status call that every instance answers once.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/integration/harness.h"

/* Publish BODY to EXCHANGE/KEY with reply_to and CORR; collect the replies
 * with that correlation id for WINDOW_MS.  Returns how many came; the
 * first MAX bodies are stored in OUT (malloc'd). */
static int collect(wr_client *c, const char *exchange, const char *key, const char *body,
                   const char *corr, int window_ms, char **out, int max)
{
    char err[512];
    int n = 0;

    cr_assert_eq(wr_client_publish(c, exchange, key, body, strlen(body), corr, 0, err, sizeof err),
                 0, "publish: %s", err);
    for (;;) {
        wr_client_reply r;
        int got = wr_client_recv(c, window_ms, &r, err, sizeof err);

        cr_assert_neq(got, -1, "recv: %s", err);
        if (got == 0)
            return n;
        if (r.correlation_id && strcmp(r.correlation_id, corr) == 0) {
            if (n < max)
                out[n] = strdup(r.body);
            n++;
        }
        wr_client_reply_free(&r);
    }
}

static char *one(wr_client *c, const char *exchange, const char *key, const char *body,
                 const char *corr)
{
    char *got[2] = {NULL, NULL};
    int n = collect(c, exchange, key, body, corr, 3000, got, 2);

    cr_assert_eq(n, 1, "%d replies to %s (first: %s)", n, corr, got[0] ? got[0] : "-");
    return got[0];
}

Test(routes, jsonrpc_raw_and_amqpbus_side_by_side, .timeout = 120)
{
    wr_test_warren w = {0};
    char extra[2048], q[128], exchange[160], key[160], *reply;
    wr_client *c;
    char err[512];
    json_t *j;

    wr_test_queue_name(q, sizeof q, "routes");
    snprintf(exchange, sizeof exchange, "%s.TestExchange", q);
    snprintf(extra, sizeof extra,
             "[route tutorial]\nqueue = %s.raw\nformat = raw\nmethod = echo\n\n"
             "[route text]\nqueue = %s.text\nformat = raw\nmethod = test.first\n\n"
             "[route failing]\nqueue = %s.fail\nformat = raw\nmethod = test.fail\n\n"
             "[route bus]\nqueue = %s.bus\nformat = amqpbus\nmethod = echo\n"
             "exchange = %s\nexchange_declare = topic\nbindings = example.request.*\n"
             "reply_prefix = example.response\n",
             q, q, q, q, exchange);
    wr_test_warren_start(&w, 2, extra, 1);
    c = wr_test_client(WR_CLIENT_REPLY_QUEUE);

    /* JSON-RPC, as before. */
    reply =
        wr_test_rpc(c, w.queue, "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[7],\"id\":1}",
                    "j-1", 10000);
    cr_assert(reply && strstr(reply, "\"result\":[7]"), "%s", reply ? reply : "(none)");
    free(reply);

    /* raw: the tutorial's body 30 arrives as the integer 30. */
    snprintf(key, sizeof key, "%s.raw", q);
    reply = one(c, "", key, "30", "r-1");
    cr_expect_str_eq(reply, "[30]");
    free(reply);
    /* raw: text in, text out. */
    snprintf(key, sizeof key, "%s.text", q);
    reply = one(c, "", key, "hello, warren", "r-2");
    cr_expect_str_eq(reply, "hello, warren");
    free(reply);
    /* raw: an error is {"error": {...}}. */
    snprintf(key, sizeof key, "%s.fail", q);
    reply = one(c, "", key, "{\"why\":\"testing\"}", "r-3");
    j = json_loads(reply, 0, NULL);
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(j, "error"), "code")), 1001,
                 "%s", reply);
    json_decref(j);
    free(reply);
    /* raw: invalid UTF-8 is a parse error, and the worker lives. */
    snprintf(key, sizeof key, "%s.raw", q);
    reply = one(c, "", key, "\xff\xfe", "r-4");
    cr_expect(strstr(reply, "-32700") != NULL, "%s", reply);
    free(reply);

    /* amqpbus: the reply goes to <reply_prefix>.<qid> on the route's
     * exchange, which warren declared. */
    wr_client_close(c);
    c = wr_test_client(WR_CLIENT_REPLY_QUEUE);
    cr_assert_eq(wr_client_bind_reply(c, exchange, "example.response.q538", err, sizeof err), 0,
                 "%s", err);
    cr_assert_eq(wr_client_publish(c, exchange, "example.request.q538",
                                   "{\"q\": {\"msg\": \"hi\"}, \"qid\": \"q538\"}",
                                   strlen("{\"q\": {\"msg\": \"hi\"}, \"qid\": \"q538\"}"), NULL, 0,
                                   err, sizeof err),
                 0, "%s", err);
    {
        wr_client_reply r;
        int got = wr_client_recv(c, 10000, &r, err, sizeof err);

        cr_assert_eq(got, 1, "no amqpbus reply: %s", got < 0 ? err : "timeout");
        cr_expect_str_eq(r.routing_key, "example.response.q538");
        cr_expect_str_eq(r.body, "[{\"msg\":\"hi\"}]");
        wr_client_reply_free(&r);
    }
    /* amqpbus: a qid a routing key cannot carry gets the dialect's error. */
    cr_assert_eq(wr_client_publish(c, exchange, "example.request.x", "{\"q\": 1, \"qid\": \"a.b\"}",
                                   strlen("{\"q\": 1, \"qid\": \"a.b\"}"), "bad-qid", 0, err,
                                   sizeof err),
                 0, "%s", err);
    {
        wr_client_reply r;
        int got = wr_client_recv(c, 10000, &r, err, sizeof err);

        cr_assert_eq(got, 1, "no error reply: %s", got < 0 ? err : "timeout");
        cr_expect(strstr(r.body, "qid must be") != NULL, "%s", r.body);
        wr_client_reply_free(&r);
    }
    wr_client_close(c);

    cr_expect_eq(wr_test_log_count(&w, "killed by signal"), 0, "no worker died");
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}

/* The [route status] every instance of this test serves. */
static void status_route(char *buf, size_t len, const char *key)
{
    snprintf(buf, len,
             "[route status]\nbroadcast = yes\nexchange = amq.topic\nbindings = %s\n"
             "format = raw\nmethod = warren.status\n",
             key);
}

/* Ask every instance for its status; return how many answered, and set
 * bit I of *SEEN when instance I (its supervisor pid in PIDS) did. */
static int ask_all(const char *key, const pid_t *pids, int npids, unsigned *seen)
{
    static int round;
    wr_client *c = wr_test_client(WR_CLIENT_REPLY_QUEUE);
    char *got[8] = {NULL}, corr[32];
    int n;

    snprintf(corr, sizeof corr, "status-%d", round++);
    n = collect(c, "amq.topic", key, "", corr, 2000, got, 8);
    *seen = 0;
    for (int i = 0; i < n && i < 8; i++) {
        json_t *j = json_loads(got[i], 0, NULL);
        long pid = (long)json_integer_value(json_object_get(j, "supervisor_pid"));

        cr_expect(json_is_object(j), "reply %d: %s", i, got[i]);
        for (int k = 0; k < npids; k++)
            if (pids[k] == pid)
                *seen |= 1u << k;
        json_decref(j);
        free(got[i]);
    }
    wr_client_close(c);
    return n;
}

/* Is a broadcast queue of the instance with supervisor PID declared? */
static int has_queue_of(pid_t pid)
{
    char *queues = wr_test_broker_ctl("list_queues name"), suffix[32], *p;
    int found = 0;

    snprintf(suffix, sizeof suffix, ".%ld\n", (long)pid);
    for (p = queues; p && (p = strstr(p, "warren.status.")); p++) {
        char *nl = strchr(p, '\n');
        if (nl && (size_t)(nl - p) + 1 >= strlen(suffix) &&
            !strncmp(nl + 1 - strlen(suffix), suffix, strlen(suffix)))
            found = 1;
    }
    free(queues);
    return found;
}

Test(routes, broadcast_every_instance_answers_once, .timeout = 180)
{
    wr_test_warren a = {0}, b = {0}, c = {0};
    char key[64], extra[512];
    pid_t pids[3];
    unsigned seen;
    int n;

    snprintf(key, sizeof key, "wrtest.status.%ld", (long)getpid());
    status_route(extra, sizeof extra, key);
    wr_test_warren_start(&a, 2, extra, 1);
    wr_test_warren_start(&b, 1, extra, 1);
    pids[0] = a.pid;
    pids[1] = b.pid;

    /* One reply per instance, not per worker. */
    n = ask_all(key, pids, 2, &seen);
    cr_expect_eq(n, 2, "%d replies from 2 instances", n);
    cr_expect_eq(seen, 3u, "replies from both supervisors (seen %#x)", seen);

    /* An instance started later answers too. */
    wr_test_warren_start(&c, 1, extra, 1);
    pids[2] = c.pid;
    n = ask_all(key, pids, 3, &seen);
    cr_expect_eq(n, 3, "%d replies from 3 instances", n);
    cr_expect_eq(seen, 7u, "seen %#x", seen);

    /* A stopped instance leaves no queue behind, and no longer answers. */
    cr_assert(has_queue_of(b.pid), "instance b's broadcast queue is declared");
    cr_assert_eq(wr_test_warren_stop(&b), 0);
    cr_expect(!has_queue_of(b.pid), "instance b's queue is gone after its clean stop");
    n = ask_all(key, pids, 3, &seen);
    cr_expect_eq(n, 2, "%d replies after b stopped", n);
    cr_expect_eq(seen, 5u, "a and c answer (seen %#x)", seen);

    cr_assert_eq(wr_test_warren_stop(&a), 0);
    cr_assert_eq(wr_test_warren_stop(&c), 0);
    cr_expect(!has_queue_of(a.pid) && !has_queue_of(c.pid), "no broadcast queue left");
}

Test(routes, broadcast_without_reply_to_is_not_run, .timeout = 60)
{
    wr_test_warren w = {0};
    char key[64], extra[512], err[512];
    wr_client *c;

    snprintf(key, sizeof key, "wrtest.quiet.%ld", (long)getpid());
    status_route(extra, sizeof extra, key);
    wr_test_warren_start(&w, 1, extra, 1);
    c = wr_test_client(WR_CLIENT_NO_REPLY);
    cr_assert_eq(wr_client_publish(c, "amq.topic", key, "", 0, NULL, 0, err, sizeof err), 0, "%s",
                 err);
    cr_expect(wr_test_log_wait(&w, "a broadcast request without reply_to", 1, 10000));
    wr_client_close(c);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}

/*
 * Replies are written in one send when their body fits one frame
 * (worker/publish.c) and by rabbitmq-c otherwise: either side of the
 * frame size (131072: 131064 octets of body in a frame), empty, and over
 * two frames, each arrives whole, with its correlation id and
 * persistence, and the connection stays up.
 */
Test(routes, replies_of_every_size_arrive_whole, .timeout = 120)
{
    static const size_t sizes[] = {0, 1, 131063, 131064, 131065, 300000};
    wr_test_warren w = {0};
    char extra[512], q[128], key[160], corr[32], err[512];
    char *body = malloc(300000);
    wr_client *c;

    cr_assert(body);
    memset(body, 'x', 300000); /* not JSON: the text comes back as it is */
    wr_test_queue_name(q, sizeof q, "sizes");
    snprintf(extra, sizeof extra,
             "[route text]\nqueue = %s.text\nformat = raw\nmethod = test.first\n", q);
    wr_test_warren_start(&w, 1, extra, 1);
    c = wr_test_client(WR_CLIENT_REPLY_QUEUE);
    snprintf(key, sizeof key, "%s.text", q);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        wr_client_reply r;
        int got, persistent = (int)(i % 2);

        snprintf(corr, sizeof corr, "size-%zu", sizes[i]);
        cr_assert_eq(
            wr_client_publish(c, "", key, body, sizes[i], corr, persistent, err, sizeof err), 0,
            "%s", err);
        got = wr_client_recv(c, 10000, &r, err, sizeof err);
        cr_assert_eq(got, 1, "no reply to %s: %s", corr, got < 0 ? err : "timeout");
        cr_expect_str_eq(r.correlation_id ? r.correlation_id : "(none)", corr);
        cr_expect_eq(r.len, sizes[i], "%s: a reply of %zu octets", corr, r.len);
        cr_expect(r.len != sizes[i] || memcmp(r.body, body, r.len) == 0, "%s: body differs", corr);
        cr_expect_eq(r.persistent, persistent, "%s: persistence", corr);
        wr_client_reply_free(&r);
    }
    wr_client_close(c);
    free(body);
    cr_expect_eq(wr_test_log_count(&w, "disconnected"), 0, "the connection stayed up");
    cr_expect_eq(wr_test_log_count(&w, "failed"), 0, "nothing failed");
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}
