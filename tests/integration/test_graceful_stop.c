/*
 * A worker told to stop hands back nothing it holds: the deliveries in its
 * prefetch window are run and answered by it, not returned to the queue
 * (where a quorum queue would count each return as an attempt, and a
 * message bounced between retiring workers would be refused for nothing).
 *
 * Each request is a batch: test.sleep keeps the worker busy, test.message
 * reports whether the broker redelivered the request.  A request handed
 * back by the stopped worker would come back to another worker with
 * redelivered set.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/integration/harness.h"

TestSuite(graceful_stop, .timeout = 120);

#define CALLS 20
#define PREFETCH 4

/* Wait up to 10 s until the broker counts N unacked deliveries on QUEUE. */
static int wait_unacked(const char *queue, int n)
{
    for (int i = 0; i < 100; i++) {
        if (wr_test_queue_stat(queue, "messages_unacknowledged") >= n)
            return 1;
        usleep(100000);
    }
    return 0;
}

/* The number N in the log line "warren[PID] ...stopping after N request",
 * or -1 when there is none. */
static long stopped_after(wr_test_warren *w, pid_t pid)
{
    char *log = wr_test_log_read(w), tag[32], *p;
    long n = -1;

    cr_assert_not_null(log);
    snprintf(tag, sizeof tag, "warren[%d] ", (int)pid);
    for (p = strstr(log, tag); p; p = strstr(p + 1, tag)) {
        char *eol = strchr(p, '\n'), *s = strstr(p, "stopping after ");

        if (s && (!eol || s < eol)) {
            n = strtol(s + strlen("stopping after "), NULL, 10);
            break;
        }
    }
    free(log);
    return n;
}

/* Check one reply: a batch of two results, no error, and the request was
 * not a redelivery.  Returns 1 when it was one. */
static int check_reply(const wr_client_reply *r)
{
    json_error_t jerr;
    json_t *batch = json_loadb(r->body, r->len, 0, &jerr), *item;
    int redelivered = 0;
    size_t i;

    cr_assert_not_null(batch, "reply %s is not JSON: %s", r->correlation_id, r->body);
    cr_assert(json_is_array(batch) && json_array_size(batch) == 2,
              "reply %s is not a batch of two: %s", r->correlation_id, r->body);
    json_array_foreach(batch, i, item)
    {
        json_t *res = json_object_get(item, "result");

        cr_assert_null(json_object_get(item, "error"), "reply %s has an error: %s",
                       r->correlation_id, r->body);
        cr_assert_not_null(res, "reply %s: a call without a result: %s", r->correlation_id,
                           r->body);
        if (json_is_object(res) && json_is_true(json_object_get(res, "redelivered")))
            redelivered = 1;
    }
    json_decref(batch);
    return redelivered;
}

Test(graceful_stop, sigterm_answers_the_prefetch_window)
{
    wr_test_warren w = {0};
    char *argv[] = {"warren", "-c", w.conf, "-o", "pool.prefetch=4", NULL};
    const char *body = "[{\"jsonrpc\":\"2.0\",\"method\":\"test.sleep\",\"params\":[0.5],\"id\":1},"
                       "{\"jsonrpc\":\"2.0\",\"method\":\"test.message\",\"id\":2}]";
    char err[512], seen[CALLS] = {0};
    int answered = 0, redelivered = 0;
    pid_t pids[8];
    wr_client *c;
    long held;

    wr_test_warren_write_conf(&w, 2, NULL);
    wr_test_warren_spawn(&w, argv, NULL);
    cr_assert(wr_test_log_wait(&w, "ready: ", 1, 30000), "not ready:\n%s", wr_test_log_read(&w));
    cr_assert_eq(wr_test_worker_pids(&w, pids, 8), 2);

    c = wr_test_client(WR_CLIENT_REPLY_QUEUE);
    for (int i = 0; i < CALLS; i++) {
        char corr[16];

        snprintf(corr, sizeof corr, "g%d", i);
        cr_assert_eq(
            wr_client_publish(c, "", w.queue, body, strlen(body), corr, 0, err, sizeof err), 0,
            "%s", err);
    }
    cr_assert_eq(wr_client_flush(c, err, sizeof err), 0, "%s", err);

    /* Both workers hold a full window (one call in hand, three waiting):
     * the queue has more than enough to keep them full for seconds. */
    cr_assert(wait_unacked(w.queue, 2 * PREFETCH), "the workers did not fill their windows");
    cr_assert_eq(kill(pids[0], SIGTERM), 0);

    while (answered < CALLS) {
        wr_client_reply r = {0};
        int got = wr_client_recv(c, 30000, &r, err, sizeof err);
        int k;

        cr_assert_eq(got, 1, "only %d of %d answered (%s); log:\n%s", answered, CALLS,
                     got < 0 ? err : "timeout", wr_test_log_read(&w));
        cr_assert(r.correlation_id && r.correlation_id[0] == 'g', "a stray reply");
        k = atoi(r.correlation_id + 1);
        cr_assert(k >= 0 && k < CALLS && !seen[k], "reply %s twice or unknown", r.correlation_id);
        seen[k] = 1;
        redelivered += check_reply(&r);
        answered++;
        wr_client_reply_free(&r);
    }
    cr_expect_eq(redelivered, 0, "%d request(s) came back from the stopped worker; log:\n%s",
                 redelivered, wr_test_log_read(&w));

    /* The stopped worker answered the whole window it held at SIGTERM. */
    cr_assert(wr_test_log_wait(&w, "stopping after ", 1, 10000), "the worker did not stop");
    held = stopped_after(&w, pids[0]);
    cr_expect_geq(held, PREFETCH, "the stopped worker answered %ld requests, not its window of %d",
                  held, PREFETCH);
    cr_expect(wr_test_log_wait(&w, "consuming from", 3, 20000), "no replacement worker");
    cr_expect_eq(wr_test_log_count(&w, "request refused"), 0);

    wr_client_close(c);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}
