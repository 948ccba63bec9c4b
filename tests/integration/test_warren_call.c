/*
 * warren-call's contract: result on stdout and exit 0; a JSON-RPC error on
 * stderr and exit 1; no reply in time, exit 2; no broker, exit 69.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/integration/harness.h"

static wr_test_warren w;

static int call(const char *args, char **out, char **err)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' -u '%s' %s", getenv("WARREN_CALL_BIN"), wr_test_broker_uri(),
             args);
    return wr_test_sh(cmd, out, err);
}

Test(warren_call, exit_codes, .timeout = 120)
{
    char args[512], *out = NULL, *err = NULL;

    wr_test_warren_start(&w, 2, NULL, 1);

    snprintf(args, sizeof args, "-q %s echo '[\"hi\",2]'", w.queue);
    cr_assert_eq(call(args, &out, &err), 0, "stderr: %s", err);
    cr_assert_str_eq(out, "[\"hi\",2]\n");
    free(out);
    free(err);

    snprintf(args, sizeof args, "-q %s --direct time", w.queue);
    cr_assert_eq(call(args, &out, &err), 0, "stderr: %s", err);
    cr_assert(strstr(out, "\"unix_ms\"") != NULL, "%s", out);
    free(out);
    free(err);

    snprintf(args, sizeof args, "-q %s test.fail '{\"why\":\"testing\"}'", w.queue);
    cr_assert_eq(call(args, &out, &err), 1);
    cr_assert(strstr(err, "1001") && strstr(err, "failure requested"), "stderr: %s", err);
    cr_assert_str_eq(out, "");
    free(out);
    free(err);

    snprintf(args, sizeof args, "-q %s nosuch.method", w.queue);
    cr_assert_eq(call(args, &out, &err), 1);
    cr_assert(strstr(err, "-32601") != NULL, "stderr: %s", err);
    free(out);
    free(err);

    /* The call outlives the timeout: no reply in time. */
    snprintf(args, sizeof args, "-q %s -t 0.5 test.sleep '[3]'", w.queue);
    cr_assert_eq(call(args, &out, &err), 2, "stderr: %s", err);
    free(out);
    free(err);

    snprintf(args, sizeof args, "-q %s --notify echo '[1]'", w.queue);
    cr_assert_eq(call(args, &out, &err), 0, "stderr: %s", err);
    free(out);
    free(err);

    cr_assert_eq(wr_test_warren_stop(&w), 0);

    /* Nothing listens on port 1. */
    cr_assert_eq(wr_test_sh("\"$WARREN_CALL_BIN\" -u amqp://guest:guest@127.0.0.1:1/ echo '[1]'",
                            &out, &err),
                 69, "stderr: %s", err);
    cr_assert_neq(strlen(err), 0);
    free(out);
    free(err);
}

/* The broker's count of MESSAGES or MESSAGES_UNACKNOWLEDGED on QUEUE. */
static int queue_count(const char *queue, const char *what)
{
    char args[512], *out;
    int n;
    snprintf(args, sizeof args,
             "list_queues -q --no-table-headers name %s | awk '$1==\"%s\"{print $2}'", what, queue);
    out = wr_test_broker_ctl(args);
    n = atoi(out);
    free(out);
    return n;
}

/* --notify is not only accepted by the broker: the handler runs.  The
 * worker is seen holding the notification while test.sleep runs, the
 * queue then empties, and the worker counts one request handled without
 * error (and, a notification, sends no reply). */
Test(warren_call, notify_runs_the_handler, .timeout = 120)
{
    wr_test_warren nw = {0};
    char args[512], *out = NULL, *err = NULL;
    int busy = 0, left = -1;

    wr_test_warren_start(&nw, 1, NULL, 1);
    /* Long enough to outlast a slow rabbitmqctl (and a quorum queue's tick). */
    snprintf(args, sizeof args, "-q %s --notify test.sleep '[5]'", nw.queue);
    cr_assert_eq(call(args, &out, &err), 0, "stderr: %s", err);
    cr_assert_str_eq(out, "", "a notification prints nothing");
    free(out);
    free(err);
    for (int tries = 0; tries < 100 && !busy; tries++) {
        busy = queue_count(nw.queue, "messages_unacknowledged") == 1;
        if (!busy)
            usleep(20000);
    }
    cr_assert(busy, "the worker never took the notification:\n%s", wr_test_log_read(&nw));
    for (int tries = 0; tries < 250 && (left = queue_count(nw.queue, "messages")) != 0; tries++)
        usleep(20000);
    cr_assert_eq(left, 0, "the notification was not acked");
    cr_assert_eq(wr_test_warren_stop(&nw), 0);
    cr_assert_eq(wr_test_log_count(&nw, "handled 1 request (0 failed)"), 1, "%s",
                 wr_test_log_read(&nw));
    cr_assert_eq(wr_test_log_count(&nw, "reply dropped"), 0, "%s", wr_test_log_read(&nw));
}
