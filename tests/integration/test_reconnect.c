/*
 * Broker connection loss costs nothing: the broker closes the workers'
 * connections (as on a node restart or a `rabbitmqctl close_connection`)
 * while one of them is inside a 6 s handler (rabbitmqctl itself takes
 * about half a second per call, so a shorter one could finish first); the workers reconnect with
 * backoff, the interrupted request is redelivered and answered exactly
 * once, and requests sent meanwhile are answered too.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/integration/harness.h"

static int unacked(const char *queue)
{
    char args[512], *out;
    int n;
    snprintf(args, sizeof args,
             "list_queues -q --no-table-headers name messages_unacknowledged "
             "| awk '$1==\"%s\"{print $2}'",
             queue);
    out = wr_test_broker_ctl(args);
    n = atoi(out);
    free(out);
    return n;
}

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
    const char *slow = "{\"jsonrpc\":\"2.0\",\"method\":\"test.sleep\",\"params\":[6],\"id\":1}";
    int answered_slow = 0, answered_echo = 0, tries;

    wr_test_warren_start(&w, 1, NULL, 1);
    c = wr_test_client(WR_CLIENT_REPLY_QUEUE);
    cr_assert_eq(wr_client_publish(c, "", w.queue, slow, strlen(slow), "slow", 1, err, sizeof err),
                 0);
    for (tries = 0; tries < 250 && unacked(w.queue) != 1; tries++)
        usleep(20000);
    cr_assert_eq(unacked(w.queue), 1, "the worker never took the request");

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
        int got = wr_client_recv(c, 20000, &r, err, sizeof err);
        cr_assert_eq(got, 1, "only %d of 6 replies after the connection loss (%s):\n%s",
                     answered_slow + answered_echo, got < 0 ? err : "timeout",
                     wr_test_log_read(&w));
        if (strcmp(r.correlation_id, "slow") == 0) {
            answered_slow++;
            cr_assert(strstr(r.body, "\"result\":6") != NULL, "%s", r.body);
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
