/*
 * Broker connection loss costs nothing: the broker closes the workers'
 * connections (as on a node restart or a `rabbitmqctl close_connection`)
 * while one of them is inside a 6 s handler (rabbitmqctl itself takes
 * about half a second per call, so a shorter one could finish first); the workers reconnect with
 * backoff, the interrupted request is redelivered and answered exactly
 * once, and requests sent meanwhile are answered too.  A worker killed
 * after such a reconnect is not blamed for the request it dropped.
 */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/integration/harness.h"

/* Close every connection the broker knows as a warren worker's; the test's
 * own client connection stays. */
static int close_worker_connections(void)
{
    char *out = wr_test_broker_ctl("list_connections -q --no-table-headers pid client_properties "
                                   "| grep 'warren worker' | awk '{print $1}'");
    char *save = NULL, *pid;
    int n = 0;
    for (pid = strtok_r(out, "\n", &save); pid; pid = strtok_r(NULL, "\n", &save)) {
        char args[256];
        snprintf(args, sizeof args, "close_connection '%s' 'warren reconnect test'", pid);
        free(wr_test_broker_ctl(args));
        n++;
    }
    free(out);
    return n;
}

Test(reconnect, connection_loss_mid_request_loses_nothing, .timeout = 120)
{
    wr_test_warren w = {0};
    wr_client *c;
    char err[256];
    const char *slow = "{\"jsonrpc\":\"2.0\",\"method\":\"test.sleep\",\"params\":[12],\"id\":1}";
    int answered_slow = 0, answered_echo = 0, tries, unacked = -1;

    wr_test_warren_start(&w, 1, NULL, 1);
    c = wr_test_client(WR_CLIENT_REPLY_QUEUE);
    cr_assert_eq(wr_client_publish(c, "", w.queue, slow, strlen(slow), "slow", 1, err, sizeof err),
                 0);
    /* The last reading decides: rabbitmqctl may fail now and then on a
     * loaded machine. */
    for (tries = 0;
         tries < 250 && (unacked = wr_test_queue_stat(w.queue, "messages_unacknowledged")) != 1;
         tries++)
        usleep(20000);
    cr_assert_eq(unacked, 1, "the worker never took the request");

    cr_assert_eq(close_worker_connections(), 1);
    /* Sent while the worker is disconnected: must wait in the queue. */
    for (int i = 0; i < 5; i++) {
        char body[128], corr[16];
        snprintf(body, sizeof body,
                 "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[%d],\"id\":%d}", i, i + 10);
        snprintf(corr, sizeof corr, "e%d", i);
        cr_assert_eq(
            wr_client_publish(c, "", w.queue, body, strlen(body), corr, 1, err, sizeof err), 0);
    }
    while (answered_slow + answered_echo < 6) {
        wr_client_reply r;
        int got = wr_client_recv(c, 40000, &r, err, sizeof err);
        cr_assert_eq(got, 1, "only %d of 6 replies after the connection loss (%s):\n%s",
                     answered_slow + answered_echo, got < 0 ? err : "timeout",
                     wr_test_log_read(&w));
        if (strcmp(r.correlation_id, "slow") == 0) {
            answered_slow++;
            cr_assert(strstr(r.body, "\"result\":12") != NULL, "%s", r.body);
        } else {
            answered_echo++;
        }
        wr_client_reply_free(&r);
    }
    cr_assert_eq(answered_slow, 1);
    cr_assert_eq(answered_echo, 5);
    {
        wr_client_reply r;
        cr_assert_eq(wr_client_recv(c, 1500, &r, err, sizeof err), 0, "a duplicate reply");
    }
    cr_assert_eq(wr_test_log_count(&w, "broker closed the connection"), 1);
    cr_assert_eq(wr_test_log_count(&w, "the broker will redeliver it"), 1, "%s",
                 wr_test_log_read(&w));
    cr_assert_eq(wr_test_log_count(&w, "consuming from"), 2, "the worker did not reconnect once");
    cr_assert_eq(wr_test_log_count(&w, " exited "), 0, "reconnecting must not cost the process");
    wr_client_close(c);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}

/*
 * Take the next message of QUEUE on a connection of our own and hold it
 * unacked (waits up to 10 s for one).  Closing the connection
 * (amqp_destroy_connection) puts the message back, marked redelivered.
 */
static amqp_connection_state_t hold_one(const char *queue)
{
    amqp_connection_state_t conn = wr_test_amqp_connect();
    for (int tries = 0; tries < 500; tries++) {
        amqp_rpc_reply_t r = amqp_basic_get(conn, 1, amqp_cstring_bytes(queue), 0);
        amqp_message_t msg;
        cr_assert_eq(r.reply_type, AMQP_RESPONSE_NORMAL, "basic.get failed");
        if (r.reply.id == AMQP_BASIC_GET_OK_METHOD) {
            cr_assert_eq(amqp_read_message(conn, 1, &msg, 0).reply_type, AMQP_RESPONSE_NORMAL);
            amqp_destroy_message(&msg);
            return conn;
        }
        usleep(20000);
    }
    cr_assert_fail("no message to take from %s", queue);
    return NULL;
}

/* The log line of the (first) death by SIGNAL_TEXT, malloc'd. */
static char *death_line(wr_test_warren *w, const char *signal_text)
{
    char *log = wr_test_log_read(w), *p, *end, *line;
    cr_assert_not_null(log);
    p = strstr(log, signal_text);
    cr_assert_not_null(p, "no death line:\n%s", log);
    while (p > log && p[-1] != '\n')
        p--;
    end = strchr(p, '\n');
    line = strndup(p, end ? (size_t)(end - p) : strlen(p));
    free(log);
    return line;
}

/*
 * The worker's connection drops under a running request: the worker drops
 * that job (the broker redelivers it, here to the test, which holds it),
 * reconnects, and is killed while idle.  Its death must not be blamed on
 * the dropped request: no "while running" in the death line, no death
 * counted, so even with max_attempts = 1 the request, once back in the
 * queue, is answered normally instead of refused as poison.  (A classic
 * queue: this is the supervisor's count.  A quorum queue counts every
 * delivery that ended without an ack, the lost connection and the test's
 * hold included, and would rightly refuse the request's second run.)
 */
Test(reconnect, kill_after_reconnect_blames_no_old_request, .timeout = 120)
{
    wr_test_warren w = {0};
    char *argv[] = {"warren", "-c", w.conf, "-o", "pool.max_attempts=1", NULL};
    const char *slow = "{\"jsonrpc\":\"2.0\",\"method\":\"test.sleep\",\"params\":[12],\"id\":1}";
    amqp_connection_state_t held;
    wr_client *c;
    wr_client_reply r;
    char err[256], *line;
    pid_t pids[4];
    int unacked = -1;

    wr_test_warren_write_conf(&w, 1, "queue_type = classic\n");
    wr_test_warren_spawn(&w, argv, NULL);
    cr_assert(wr_test_log_wait(&w, "ready: ", 1, 30000));
    c = wr_test_client(WR_CLIENT_REPLY_QUEUE);
    cr_assert_eq(wr_client_publish(c, "", w.queue, slow, strlen(slow), "slow", 1, err, sizeof err),
                 0);
    for (int tries = 0;
         tries < 250 && (unacked = wr_test_queue_stat(w.queue, "messages_unacknowledged")) != 1;
         tries++)
        usleep(20000);
    cr_assert_eq(unacked, 1, "the worker never took the request");

    cr_assert_eq(close_worker_connections(), 1);
    held = hold_one(w.queue);
    cr_assert(wr_test_log_wait(&w, "consuming from", 2, 60000), "the worker did not reconnect:\n%s",
              wr_test_log_read(&w));
    cr_assert_eq(wr_test_log_count(&w, "the broker will redeliver it"), 1, "%s",
                 wr_test_log_read(&w));

    cr_assert_eq(wr_test_worker_pids(&w, pids, 4), 1);
    cr_assert_eq(kill(pids[0], SIGKILL), 0);
    cr_assert(wr_test_log_wait(&w, "killed by signal 9", 1, 10000), "no log line for the death");
    line = death_line(&w, "killed by signal 9");
    cr_assert_null(strstr(line, "while running"), "an idle worker's death names a request: %s",
                   line);
    free(line);
    cr_assert(wr_test_log_wait(&w, "consuming from", 3, 20000), "no replacement worker");
    cr_assert_eq(wr_test_log_count(&w, "workers will refuse it"), 0, "%s", wr_test_log_read(&w));

    /* Back in the queue (redelivered): answered, not refused. */
    amqp_destroy_connection(held);
    cr_assert_eq(wr_client_recv(c, 40000, &r, err, sizeof err), 1, "no reply:\n%s",
                 wr_test_log_read(&w));
    cr_assert_str_eq(r.correlation_id, "slow");
    cr_assert(strstr(r.body, "\"result\":12") != NULL, "%.*s", (int)r.len, r.body);
    wr_client_reply_free(&r);
    wr_client_close(c);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}

/*
 * Someone deletes the route's queue under a running pool (an operator, a
 * policy).  The broker cancels the consumers (basic.cancel: the workers
 * announce consumer_cancel_notify); each worker notices, reconnects,
 * declares the queue again and consumes, and calls are answered again.
 */
Test(reconnect, deleted_queue_is_declared_again, .timeout = 120)
{
    wr_test_warren w = {0};
    wr_client *c;
    char args[256], *reply;
    int n = 0;

    wr_test_warren_start(&w, 2, NULL, 1);
    /* A quorum queue's count trails by a tick (tests/broker.sh). */
    for (int tries = 0; tries < 250 && (n = wr_test_queue_stat(w.queue, "consumers")) != 2; tries++)
        usleep(20000);
    cr_assert_eq(n, 2, "the broker lists %d consumers", n);
    snprintf(args, sizeof args, "delete_queue '%s'", w.queue);
    free(wr_test_broker_ctl(args));
    cr_assert(wr_test_log_wait(&w, "broker cancelled the consumer", 2, 15000),
              "the workers did not notice the queue is gone:\n%s", wr_test_log_read(&w));
    cr_assert(wr_test_log_wait(&w, "consuming from", 4, 30000),
              "the workers did not consume again:\n%s", wr_test_log_read(&w));
    for (int tries = 0; tries < 250 && (n = wr_test_queue_stat(w.queue, "consumers")) != 2; tries++)
        usleep(20000);
    cr_assert_eq(n, 2, "the broker lists %d consumers on the new queue", n);
    c = wr_test_client(WR_CLIENT_REPLY_QUEUE);
    reply =
        wr_test_rpc(c, w.queue, "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[1],\"id\":1}",
                    "after-delete", 10000);
    cr_assert_not_null(reply, "no reply after the queue was declared again:\n%s",
                       wr_test_log_read(&w));
    free(reply);
    wr_client_close(c);
    cr_assert_eq(wr_test_log_count(&w, " exited "), 0, "noticing must not cost the process");
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}
