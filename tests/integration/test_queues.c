/*
 * Queues and dead letters against the real broker: the default quorum
 * queue makes [pool] max_attempts exact under load (x-delivery-count and
 * x-delivery-limit), a refused request lands in "<queue>.dead" with
 * headers saying why and everything it came with, dead_letter = no drops
 * it, and a queue that exists with other arguments stops warren with a
 * config error instead of a reconnect loop.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/amqp_conn.h"
#include "tests/integration/harness.h"

#define CH 1

/* The header KEY of T, or NULL. */
static const amqp_field_value_t *header(const amqp_table_t *t, const char *key)
{
    for (int i = 0; i < t->num_entries; i++)
        if (t->entries[i].key.len == strlen(key) &&
            !memcmp(t->entries[i].key.bytes, key, t->entries[i].key.len))
            return &t->entries[i].value;
    return NULL;
}

/* Header KEY of T as a malloc'd string (a string header), or NULL. */
static char *text_header(const amqp_table_t *t, const char *key)
{
    const amqp_field_value_t *v = header(t, key);

    if (!v || (v->kind != AMQP_FIELD_KIND_UTF8 && v->kind != AMQP_FIELD_KIND_BYTES))
        return NULL;
    return wr_amqp_strdup(v->value.bytes);
}

/* Publish a test.crash request with correlation id CORR, reply_to
 * REPLY_TO and a header x-trace = TRACE, persistent, on CONN. */
static void publish_crash(amqp_connection_state_t conn, const char *queue, const char *reply_to,
                          const char *corr, const char *trace)
{
    char body[128];
    amqp_table_entry_t h = {
        .key = amqp_cstring_bytes("x-trace"),
        .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes(trace)}};
    amqp_basic_properties_t p = {
        ._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                  AMQP_BASIC_REPLY_TO_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG |
                  AMQP_BASIC_HEADERS_FLAG,
        .content_type = amqp_cstring_bytes("application/json"),
        .delivery_mode = 2,
        .reply_to = amqp_cstring_bytes(reply_to),
        .correlation_id = amqp_cstring_bytes(corr),
        .headers = {.num_entries = 1, .entries = &h},
    };

    snprintf(body, sizeof body, "{\"jsonrpc\":\"2.0\",\"method\":\"test.crash\",\"id\":\"%s\"}",
             corr);
    cr_assert_eq(amqp_basic_publish(conn, CH, amqp_empty_bytes, amqp_cstring_bytes(queue), 0, 0, &p,
                                    amqp_cstring_bytes(body)),
                 AMQP_STATUS_OK);
}

/* Wait up to TIMEOUT_MS for QUEUE to hold N ready messages. */
static int wait_messages(const char *queue, int n, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 200) {
        if (wr_test_queue_stat(queue, "messages") == n)
            return 1;
        usleep(200000);
    }
    return wr_test_queue_stat(queue, "messages") == n;
}

/* basic.get one message from QUEUE (acked) into MSG; 1, or 0 if empty. */
static int get_one(amqp_connection_state_t conn, const char *queue, amqp_message_t *msg)
{
    amqp_rpc_reply_t r = amqp_basic_get(conn, CH, amqp_cstring_bytes(queue), 1);

    cr_assert_eq(r.reply_type, AMQP_RESPONSE_NORMAL, "basic.get on %s failed", queue);
    if (r.reply.id != AMQP_BASIC_GET_OK_METHOD)
        return 0;
    cr_assert_eq(amqp_read_message(conn, CH, msg, 0).reply_type, AMQP_RESPONSE_NORMAL);
    return 1;
}

/*
 * Three requests that crash their worker, mixed into 800 echo calls that
 * four workers race through, with max_attempts = 3: each crashing request
 * runs exactly 3 times (the supervisor's death lines say which request
 * each dead worker held), its caller gets a -32603 error saying why, and
 * it ends in <queue>.dead with the original body, properties and headers
 * and the x-warren-* headers; every echo call is answered.
 */
Test(queues, attempt_limit_is_exact_under_load_and_lands_in_dead, .timeout = 300)
{
    enum { NPOISON = 3, BATCH = 200, NECHO = (NPOISON + 1) * BATCH };
    wr_test_warren w = {0};
    wr_client *c;
    amqp_connection_state_t raw;
    char err[256], dead[200], corr[64], *log;
    int echoes = 0, refused[NPOISON] = {0}, n = 0;

    wr_test_warren_start(&w, 4, NULL, 1);
    snprintf(dead, sizeof dead, "%s.dead", w.queue);
    cr_assert_eq(wr_test_queue_stat(dead, "messages"), 0, "no %s declared", dead);
    c = wr_test_client(WR_CLIENT_REPLY_QUEUE);
    raw = wr_test_amqp_connect();

    for (int p = 0; p <= NPOISON; p++) {
        for (int i = 0; i < BATCH; i++, n++) {
            char body[96];

            snprintf(corr, sizeof corr, "echo-%d", n);
            snprintf(body, sizeof body,
                     "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[%d],"
                     "\"id\":%d}",
                     n, n);
            cr_assert_eq(
                wr_client_publish(c, "", w.queue, body, strlen(body), corr, 0, err, sizeof err), 0,
                "%s", err);
        }
        if (p < NPOISON) {
            char trace[32];

            snprintf(corr, sizeof corr, "boom-%d", p);
            snprintf(trace, sizeof trace, "trace-%d", p);
            publish_crash(raw, w.queue, wr_client_reply_queue(c), corr, trace);
        }
    }

    /* Every reply: NECHO results and NPOISON refusals. */
    while (echoes < NECHO || refused[0] + refused[1] + refused[2] < NPOISON) {
        wr_client_reply r;
        int got = wr_client_recv(c, 120000, &r, err, sizeof err);

        cr_assert_eq(got, 1, "replies stopped after %d echo calls and %d refusals (%s):\n%s",
                     echoes, refused[0] + refused[1] + refused[2], got < 0 ? err : "timeout",
                     wr_test_log_read(&w));
        cr_assert_not_null(r.correlation_id);
        if (!strncmp(r.correlation_id, "boom-", 5)) {
            int p = atoi(r.correlation_id + 5);

            cr_assert(strstr(r.body, "\"code\":-32603") && strstr(r.body, "request refused: it "),
                      "%s: %s", r.correlation_id, r.body);
            refused[p]++;
        } else {
            cr_assert(strstr(r.body, "\"result\":") != NULL, "%s: %s", r.correlation_id, r.body);
            echoes++;
        }
        wr_client_reply_free(&r);
    }

    /* Runs: one death line per run, each naming the request.  Once the
     * refusal is answered no delivery is left to run, so the count is
     * final once the supervisor has logged the last death. */
    for (int p = 0; p < NPOISON; p++) {
        char needle[128];
        int runs;

        snprintf(needle, sizeof needle, "while running test.crash (route rpc, id boom-%d)", p);
        wr_test_log_wait(&w, needle, 3, 10000);
        runs = wr_test_log_count(&w, needle);
        fprintf(stderr, "test_queues: boom-%d ran %d time%s (max_attempts 3), refused %d\n", p,
                runs, runs == 1 ? "" : "s", refused[p]);
        cr_expect_eq(runs, 3, "boom-%d ran %d times with max_attempts = 3", p, runs);
        cr_expect_eq(refused[p], 1, "boom-%d: %d refusals", p, refused[p]);
    }
    fprintf(stderr, "test_queues: %d of %d echo calls answered with 4 workers\n", echoes, NECHO);
    cr_expect_eq(echoes, NECHO);

    /* In <queue>.dead: each once, as it came, with the reasons. */
    cr_assert(wait_messages(dead, NPOISON, 20000), "%s holds %d messages, not %d", dead,
              wr_test_queue_stat(dead, "messages"), NPOISON);
    cr_expect_eq(wr_test_queue_stat(w.queue, "messages"), 0);
    for (int i = 0; i < NPOISON; i++) {
        amqp_message_t m;
        const amqp_table_t *h;
        char *s, *id, want[128];
        const amqp_field_value_t *v;

        cr_assert_eq(get_one(raw, dead, &m), 1);
        cr_assert(m.properties._flags & AMQP_BASIC_HEADERS_FLAG, "no headers");
        cr_assert(m.properties._flags & AMQP_BASIC_CORRELATION_ID_FLAG, "no correlation id");
        h = &m.properties.headers;
        id = wr_amqp_strdup(m.properties.correlation_id);
        cr_assert(!strncmp(id, "boom-", 5), "%s", id);
        snprintf(want, sizeof want, "{\"jsonrpc\":\"2.0\",\"method\":\"test.crash\",\"id\":\"%s\"}",
                 id);
        cr_expect_eq(m.body.len, strlen(want));
        cr_expect(m.body.len == strlen(want) && !memcmp(m.body.bytes, want, m.body.len),
                  "body %.*s", (int)m.body.len, (char *)m.body.bytes);
        cr_expect_eq(m.properties.delivery_mode, 2, "not persistent any more");
        cr_expect(m.properties._flags & AMQP_BASIC_REPLY_TO_FLAG, "reply_to lost");
        s = wr_amqp_strdup(m.properties.content_type);
        cr_expect_str_eq(s, "application/json");
        free(s);
        s = text_header(h, "x-trace");
        snprintf(want, sizeof want, "trace-%s", id + 5);
        cr_expect(s && !strcmp(s, want), "x-trace %s, want %s", s ? s : "(none)", want);
        free(s);
        s = text_header(h, "x-warren-reason");
        cr_expect(s && !strcmp(s, "killed 3 workers"), "x-warren-reason %s", s ? s : "(none)");
        free(s);
        v = header(h, "x-warren-attempts");
        cr_expect(v && v->kind == AMQP_FIELD_KIND_I32 && v->value.i32 == 3,
                  "x-warren-attempts missing or not 3");
        /* As the supervisor's death line put it ("killed by signal 11
         * (Segmentation fault)"; under ASan "exited with code 1"). */
        s = text_header(h, "x-warren-last-death");
        log = wr_test_log_read(&w);
        cr_expect(s && s[0] && strstr(log, s), "x-warren-last-death %s", s ? s : "(none)");
        free(log);
        free(s);
        s = text_header(h, "x-warren-route");
        cr_expect(s && !strcmp(s, "rpc"), "x-warren-route %s", s ? s : "(none)");
        free(s);
        s = text_header(h, "x-warren-queue");
        cr_expect(s && !strcmp(s, w.queue), "x-warren-queue %s", s ? s : "(none)");
        free(s);
        free(id);
        amqp_destroy_message(&m);
    }
    log = wr_test_log_read(&w);
    cr_expect(strstr(log, "moving it to the dead-letter queue") != NULL, "%s", log);
    free(log);
    wr_amqp_close(raw);
    wr_client_close(c);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}

/* dead_letter = no: a refused request is rejected without requeue, as
 * before; no dead-letter queue is declared.  A classic queue here, whose
 * limit is the supervisor's poison list alone. */
Test(queues, dead_letter_no_rejects_without_requeue, .timeout = 120)
{
    wr_test_warren w = {0};
    wr_client *c;
    amqp_connection_state_t raw;
    wr_client_reply r;
    char err[256], dead[200];
    char *argv[] = {"warren", "-c", w.conf, "-o", "pool.max_attempts=1", NULL};

    wr_test_warren_write_conf(&w, 1, "queue_type = classic\ndead_letter = no\n");
    wr_test_warren_spawn(&w, argv, NULL);
    cr_assert(wr_test_log_wait(&w, "ready: ", 1, 30000));
    c = wr_test_client(WR_CLIENT_REPLY_QUEUE);
    raw = wr_test_amqp_connect();
    publish_crash(raw, w.queue, wr_client_reply_queue(c), "boom", "t");
    cr_assert_eq(wr_client_recv(c, 60000, &r, err, sizeof err), 1, "no refusal:\n%s",
                 wr_test_log_read(&w));
    cr_expect(strstr(r.body, "killed 1 worker") != NULL, "%s", r.body);
    wr_client_reply_free(&r);
    cr_expect_eq(wr_test_log_count(&w, "rejecting it without requeue"), 1, "%s",
                 wr_test_log_read(&w));
    snprintf(dead, sizeof dead, "%s.dead", w.queue);
    cr_expect_eq(wr_test_queue_stat(dead, "messages"), -1, "%s was declared", dead);
    cr_expect(wait_messages(w.queue, 0, 10000), "the refused request is still queued");
    wr_amqp_close(raw);
    wr_client_close(c);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}

/*
 * The queue exists as classic; warren's default declares it quorum with a
 * dead-letter exchange.  warren exits 78 at once, its log quoting the
 * broker (which names the argument and both values) and saying what to
 * do; it never becomes ready.  With queue_type = classic and dead_letter
 * = no, as the message advises, the same queue is served.
 */
Test(queues, queue_with_other_arguments_stops_warren, .timeout = 120)
{
    wr_test_warren w = {0}, again = {0};
    amqp_connection_state_t raw = wr_test_amqp_connect();
    amqp_table_entry_t arg = {
        .key = amqp_cstring_bytes("x-queue-type"),
        .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes("classic")}};
    char *argv[] = {"warren", "-c", w.conf, NULL}, *log, *reply;
    wr_client *c;

    wr_test_queue_name(w.queue, sizeof w.queue, "conflict");
    amqp_queue_declare(raw, CH, amqp_cstring_bytes(w.queue), 0, 1, 0, 0,
                       (amqp_table_t){.num_entries = 1, .entries = &arg});
    cr_assert_eq(amqp_get_rpc_reply(raw).reply_type, AMQP_RESPONSE_NORMAL);
    wr_amqp_close(raw);

    wr_test_warren_write_conf(&w, 2, NULL);
    wr_test_warren_spawn(&w, argv, NULL);
    cr_assert(wr_test_warren_wait_exit(&w, 60000), "warren still runs:\n%s", wr_test_log_read(&w));
    log = wr_test_log_read(&w);
    cr_assert(WIFEXITED(w.status) && WEXITSTATUS(w.status) == 78, "exit status %d:\n%s", w.status,
              log);
    cr_expect(strstr(log, "already exists with other arguments") != NULL, "%s", log);
    cr_expect(strstr(log, "PRECONDITION_FAILED - inequivalent arg '") != NULL,
              "the broker's words are not quoted:\n%s", log);
    cr_expect(strstr(log, "but current is") != NULL, "%s", log);
    cr_expect(strstr(log, "rabbitmqctl delete_queue") != NULL, "%s", log);
    cr_expect(strstr(log, "cannot start with this configuration") != NULL, "%s", log);
    cr_expect_null(strstr(log, "ready: "), "%s", log);
    free(log);

    snprintf(again.queue, sizeof again.queue, "%s", w.queue);
    wr_test_warren_start(&again, 1, "queue_type = classic\ndead_letter = no\n", 1);
    c = wr_test_client(WR_CLIENT_REPLY_QUEUE);
    reply = wr_test_rpc(c, again.queue, "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":1}", "ok",
                        10000);
    cr_assert_not_null(reply, "%s", wr_test_log_read(&again));
    free(reply);
    wr_client_close(c);
    cr_assert_eq(wr_test_warren_stop(&again), 0);
}

/*
 * The race the broker's count closes: the supervisor learns of deaths too
 * late (here it is stopped, SIGSTOP, so it learns of none), and idle
 * workers take the crashing request one after another.  With 4 workers
 * and max_attempts = 3, the fourth delivery carries x-delivery-count 3:
 * that worker refuses it without running it (after waiting a moment for
 * the supervisor's account, which never comes), so it runs 3 times, not
 * 4, and lands in the dead-letter queue saying why.
 */
Test(queues, attempt_limit_holds_when_the_supervisor_lags, .timeout = 180)
{
    wr_test_warren w = {0};
    wr_client *c;
    wr_client_reply r;
    amqp_connection_state_t raw;
    amqp_message_t m;
    char err[256], dead[200], *s;
    const amqp_field_value_t *v;
    int runs;

    wr_test_warren_start(&w, 4, NULL, 1);
    snprintf(dead, sizeof dead, "%s.dead", w.queue);
    c = wr_test_client(WR_CLIENT_REPLY_QUEUE);
    raw = wr_test_amqp_connect();
    cr_assert_eq(kill(w.pid, SIGSTOP), 0);
    publish_crash(raw, w.queue, wr_client_reply_queue(c), "lag", "t-lag");
    runs = wr_client_recv(c, 60000, &r, err, sizeof err);
    kill(w.pid, SIGCONT);
    cr_assert_eq(runs, 1, "no refusal (%s):\n%s", runs < 0 ? err : "timeout", wr_test_log_read(&w));
    cr_expect(strstr(r.body, "request refused: it was delivered 3 times") != NULL, "%s", r.body);
    wr_client_reply_free(&r);

    /* The supervisor, running again, reaps the three dead workers. */
    wr_test_log_wait(&w, "while running test.crash (route rpc, id lag)", 4, 10000);
    runs = wr_test_log_count(&w, "while running test.crash (route rpc, id lag)");
    fprintf(stderr,
            "test_queues: with the supervisor stopped, the request ran %d times "
            "(max_attempts 3)\n",
            runs);
    cr_expect_eq(runs, 3, "ran %d times with max_attempts = 3:\n%s", runs, wr_test_log_read(&w));

    cr_assert(wait_messages(dead, 1, 20000), "%s holds %d messages", dead,
              wr_test_queue_stat(dead, "messages"));
    cr_assert_eq(get_one(raw, dead, &m), 1);
    s = text_header(&m.properties.headers, "x-warren-reason");
    cr_expect(s && strstr(s, "was delivered 3 times"), "x-warren-reason %s", s ? s : "(none)");
    free(s);
    v = header(&m.properties.headers, "x-warren-attempts");
    cr_expect(v && v->kind == AMQP_FIELD_KIND_I32 && v->value.i32 == 3, "x-warren-attempts");
    cr_expect_null(header(&m.properties.headers, "x-warren-last-death"),
                   "a last death nobody reported");
    amqp_destroy_message(&m);
    wr_amqp_close(raw);
    wr_client_close(c);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}
