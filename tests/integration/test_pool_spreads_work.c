/*
 * The pool as a whole: every worker consumes, the broker spreads calls over
 * all of them, many concurrent calls are all answered correctly, replies go
 * where requests ask (reply_to, direct reply-to, reply exchange + prefix),
 * and SIGTERM stops everything cleanly.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/integration/harness.h"

#define NCALLS 1000

Test(pool, four_workers_share_1000_concurrent_calls, .timeout = 180)
{
    wr_test_warren w = {0};
    wr_client *c;
    char err[512], body[256], corr[64];
    static unsigned char answered[NCALLS];
    int got = 0;

    wr_test_warren_start(&w, 4, NULL, 1);
    /* A quorum queue's count trails by a tick (tests/broker.sh). */
    for (int tries = 0; tries < 250 && wr_test_queue_stat(w.queue, "consumers") != 4; tries++)
        usleep(20000);
    cr_assert_eq(wr_test_queue_stat(w.queue, "consumers"), 4,
                 "the broker should list 4 consumers on %s", w.queue);
    {
        /* ps shows each worker by index and route. */
        pid_t pids[8];
        int seen = 0;
        cr_assert_eq(wr_test_worker_pids(&w, pids, 8), 4);
        for (int i = 0; i < 4; i++) {
            char path[64], title[256] = "";
            FILE *f;
            snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pids[i]);
            f = fopen(path, "r");
            cr_assert_not_null(f);
            cr_assert_gt(fread(title, 1, sizeof title - 1, f), 0);
            fclose(f);
            for (int k = 0; k < 4; k++) {
                char want[64];
                snprintf(want, sizeof want, "warren: worker %d (rpc)", k);
                if (strcmp(title, want) == 0)
                    seen |= 1 << k;
            }
        }
        cr_assert_eq(seen, 0xf, "process titles are not warren: worker 0..3 (rpc)");
    }

    /* 1,000 calls in flight at once: publish all, then collect. */
    c = wr_test_client(WR_CLIENT_REPLY_QUEUE);
    for (int i = 0; i < NCALLS; i++) {
        int n = snprintf(body, sizeof body,
                         "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[%d,\"x%d\"],"
                         "\"id\":%d}",
                         i, i, i);
        snprintf(corr, sizeof corr, "c%d", i);
        cr_assert_eq(wr_client_publish(c, "", w.queue, body, (size_t)n, corr, 0, err, sizeof err),
                     0, "%s", err);
    }
    while (got < NCALLS) {
        wr_client_reply r;
        json_t *reply, *result;
        int id;
        int rc = wr_client_recv(c, 60000, &r, err, sizeof err);
        cr_assert_eq(rc, 1, "only %d of %d replies arrived (%s)", got, NCALLS,
                     rc < 0 ? err : "timeout");
        reply = json_loadb(r.body, r.len, 0, NULL);
        cr_assert_not_null(reply, "reply is not JSON: %.*s", (int)r.len, r.body);
        id = (int)json_integer_value(json_object_get(reply, "id"));
        result = json_object_get(reply, "result");
        cr_assert(id >= 0 && id < NCALLS && !answered[id], "unexpected or duplicate id %d", id);
        snprintf(corr, sizeof corr, "c%d", id);
        cr_assert_str_eq(r.correlation_id, corr);
        cr_assert_eq(json_integer_value(json_array_get(result, 0)), id);
        snprintf(body, sizeof body, "x%d", id);
        cr_assert_str_eq(json_string_value(json_array_get(result, 1)), body);
        answered[id] = 1;
        got++;
        json_decref(reply);
        wr_client_reply_free(&r);
    }
    wr_client_close(c);

    /* Stop: exit 0, every worker gone, each one took a share. */
    cr_assert_eq(wr_test_warren_stop(&w), 0);
    cr_assert_eq(wr_test_worker_pids(&w, (pid_t[8]){0}, 8), 0);
    {
        char *log = wr_test_log_read(&w), *p = log;
        unsigned long total = 0;
        int workers_seen = 0;
        while ((p = strstr(p, ") exited with code 0 after "))) {
            char *h = strstr(p, "; handled ");
            unsigned long n = 0;
            cr_assert_not_null(h);
            cr_assert_eq(sscanf(h, "; handled %lu", &n), 1);
            cr_assert_gt(n, 0, "a worker handled no request:\n%s", log);
            total += n;
            workers_seen++;
            p = h;
        }
        cr_assert_eq(workers_seen, 4, "expected 4 clean worker exits:\n%s", log);
        cr_assert_eq(total, NCALLS);
        free(log);
    }
}

Test(pool, batch_and_direct_reply_to, .timeout = 60)
{
    wr_test_warren w = {0};
    wr_client *c;
    char *reply;
    json_t *j;

    wr_test_warren_start(&w, 2, NULL, 1);
    c = wr_test_client(WR_CLIENT_DIRECT_REPLY_TO);
    reply = wr_test_rpc(c, w.queue,
                        "[{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":{\"a\":1},\"id\":1},"
                        "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[\"n\"]},"
                        "{\"jsonrpc\":\"2.0\",\"method\":\"time\",\"id\":\"t\"}]",
                        "batch-1", 10000);
    cr_assert_not_null(reply, "no reply through amq.rabbitmq.reply-to");
    j = json_loads(reply, 0, NULL);
    cr_assert(json_is_array(j), "%s", reply);
    /* The notification in the middle gets no response. */
    cr_assert_eq(json_array_size(j), 2, "%s", reply);
    cr_assert_eq(
        json_integer_value(json_object_get(json_object_get(json_array_get(j, 0), "result"), "a")),
        1);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(j, 1), "id")), "t");
    cr_assert(json_is_object(json_object_get(json_array_get(j, 1), "result")), "%s", reply);
    json_decref(j);
    free(reply);
    wr_client_close(c);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}

/* The old recipe's style: request to a topic exchange under
 * example.request.<id>, reply to the same exchange under
 * example.response.<id>, no reply_to at all. */
Test(pool, reply_exchange_and_prefix, .timeout = 60)
{
    wr_test_warren w = {0};
    wr_client *c;
    char err[512], key[128], extra[512];
    const char *body = "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[\"hi\"],"
                       "\"id\":\"q538\"}";
    wr_client_reply r;

    snprintf(extra, sizeof extra,
             "[route topic]\nqueue = %s.req\nexchange = amq.topic\n"
             "bindings = example.request.*\nreply_exchange = amq.topic\n"
             "reply_prefix = example.response\n",
             "recipe");
    wr_test_warren_start(&w, 1, extra, 1);
    c = wr_test_client(WR_CLIENT_REPLY_QUEUE);
    cr_assert_eq(wr_client_bind_reply(c, "amq.topic", "example.response.q538", err, sizeof err), 0,
                 "%s", err);
    /* NO_REPLY-style publish: no correlation id, hence no reply_to. */
    snprintf(key, sizeof key, "example.request.q538");
    cr_assert_eq(
        wr_client_publish(c, "amq.topic", key, body, strlen(body), NULL, 1, err, sizeof err), 0,
        "%s", err);
    cr_assert_eq(wr_client_recv(c, 10000, &r, err, sizeof err), 1, "no reply on the prefix key");
    cr_assert_str_eq(r.routing_key, "example.response.q538");
    cr_assert(r.persistent, "a persistent request gets a persistent reply");
    cr_assert(strstr(r.body, "\"result\":[\"hi\"]") != NULL, "%.*s", (int)r.len, r.body);
    wr_client_reply_free(&r);
    wr_client_close(c);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}

#define NPREFETCHED 200

/*
 * prefetch 8, one worker: while a slow call runs, the worker holds 7 more
 * deliveries in its local queue (the broker counts 8 unacked), and then
 * runs them one by one.  Every call is answered exactly once, in bounded
 * time.
 */
Test(pool, prefetch_8_queues_locally_and_answers_each_call_once, .timeout = 120)
{
    wr_test_warren w = {0};
    char *argv[] = {"warren", "-c", w.conf, "-o", "pool.prefetch=8", NULL};
    const char *slow = "{\"jsonrpc\":\"2.0\",\"method\":\"test.sleep\",\"params\":[3],\"id\":-1}";
    static unsigned char answered[NPREFETCHED];
    char err[512], body[256], corr[64];
    int got = 0, slow_answered = 0, held = 0;
    wr_client *c;

    wr_test_warren_write_conf(&w, 1, NULL);
    wr_test_warren_spawn(&w, argv, NULL);
    cr_assert(wr_test_log_wait(&w, "ready: ", 1, 30000));
    cr_assert_eq(wr_test_log_count(&w, "prefetch 8"), 1);
    c = wr_test_client(WR_CLIENT_REPLY_QUEUE);
    cr_assert_eq(wr_client_publish(c, "", w.queue, slow, strlen(slow), "slow", 0, err, sizeof err),
                 0, "%s", err);
    for (int i = 0; i < NPREFETCHED; i++) {
        int n =
            snprintf(body, sizeof body,
                     "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[%d],\"id\":%d}", i, i);
        snprintf(corr, sizeof corr, "p%d", i);
        cr_assert_eq(wr_client_publish(c, "", w.queue, body, (size_t)n, corr, 0, err, sizeof err),
                     0, "%s", err);
    }
    /* The slow call runs for 3 s; meanwhile the broker has handed over
     * all the prefetch allows. */
    for (int tries = 0;
         tries < 100 && (held = wr_test_queue_stat(w.queue, "messages_unacknowledged")) != 8;
         tries++)
        usleep(20000);
    cr_assert_eq(held, 8, "the worker holds %d deliveries, not 8", held);

    while (got + slow_answered < NPREFETCHED + 1) {
        wr_client_reply r;
        json_t *reply;
        int id, rc = wr_client_recv(c, 30000, &r, err, sizeof err);
        cr_assert_eq(rc, 1, "only %d of %d replies arrived (%s)", got + slow_answered,
                     NPREFETCHED + 1, rc < 0 ? err : "timeout");
        reply = json_loadb(r.body, r.len, 0, NULL);
        cr_assert_not_null(reply, "reply is not JSON: %.*s", (int)r.len, r.body);
        id = (int)json_integer_value(json_object_get(reply, "id"));
        if (id == -1) {
            cr_assert_str_eq(r.correlation_id, "slow");
            cr_assert_eq(slow_answered++, 0, "the slow call was answered twice");
        } else {
            cr_assert(id >= 0 && id < NPREFETCHED && !answered[id], "unexpected or duplicate id %d",
                      id);
            snprintf(corr, sizeof corr, "p%d", id);
            cr_assert_str_eq(r.correlation_id, corr);
            cr_assert_eq(json_integer_value(json_array_get(json_object_get(reply, "result"), 0)),
                         id);
            answered[id] = 1;
            got++;
        }
        json_decref(reply);
        wr_client_reply_free(&r);
    }
    {
        wr_client_reply r;
        cr_assert_eq(wr_client_recv(c, 1000, &r, err, sizeof err), 0, "a duplicate reply");
    }
    wr_client_close(c);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
    cr_assert_eq(wr_test_log_count(&w, "handled 201 requests (0 failed)"), 1, "%s",
                 wr_test_log_read(&w));
}
