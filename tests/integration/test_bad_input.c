/*
 * Bad input never costs a worker: every malformed request gets its
 * JSON-RPC error reply, is acked (the queue drains), is logged once, and
 * the same worker processes serve the next call.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/integration/harness.h"

static wr_test_warren w;
static wr_client *client;

/* Send BODY; return the error code of the reply (0 when it is a result,
 * -1 when there was no reply within the timeout). */
static int error_code_of_len(const char *body, size_t len, const char *corr, json_t **reply_out)
{
    char err[512];
    wr_client_reply r;
    int code = -1;

    cr_assert_eq(wr_client_publish(client, "", w.queue, body, len, corr, 0, err, sizeof err), 0,
                 "%s", err);
    for (;;) {
        int got = wr_client_recv(client, 10000, &r, err, sizeof err);
        cr_assert_neq(got, -1, "%s", err);
        if (got == 0)
            return -1;
        if (r.correlation_id && strcmp(r.correlation_id, corr) == 0)
            break;
        wr_client_reply_free(&r);
    }
    json_t *reply = json_loadb(r.body, r.len, 0, NULL);
    cr_assert_not_null(reply, "reply is not JSON: %.*s", (int)r.len, r.body);
    json_t *e = json_object_get(reply, "error");
    code = e ? (int)json_integer_value(json_object_get(e, "code")) : 0;
    if (reply_out)
        *reply_out = reply;
    else
        json_decref(reply);
    wr_client_reply_free(&r);
    return code;
}

static int error_code_of(const char *body, const char *corr, json_t **reply_out)
{
    return error_code_of_len(body, strlen(body), corr, reply_out);
}

TestSuite(bad_input, .timeout = 120);

Test(bad_input, each_gets_its_error_and_no_worker_dies)
{
    char big[8192];
    json_t *reply = NULL, *expected;
    pid_t pids_before[8], pids_after[8];
    int n, npids_before;
    /* A 4 KiB limit, from a command-line override, keeps the oversize
     * case small. */
    char *argv[] = {"warren", "-c", w.conf, "-o", "pool.max_message_size=4096", NULL};

    wr_test_warren_write_conf(&w, 2, NULL);
    wr_test_warren_spawn(&w, argv, NULL);
    cr_assert(wr_test_log_wait(&w, "ready: ", 1, 30000), "not ready");
    npids_before = wr_test_worker_pids(&w, pids_before, 8);
    cr_assert_eq(npids_before, 2);
    client = wr_test_client(WR_CLIENT_REPLY_QUEUE);

    cr_assert_eq(error_code_of("this is not json", "b1", NULL), -32700);
    cr_assert_eq(error_code_of("{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[\"\xff\xfe\"],"
                               "\"id\":1}",
                               "b2", NULL),
                 -32700, "invalid UTF-8");
    cr_assert_eq(error_code_of("", "b3", NULL), -32700, "empty body");
    cr_assert_eq(error_code_of("42", "b4", NULL), -32600, "not an object or array");
    cr_assert_eq(error_code_of("[]", "b5", NULL), -32600, "empty batch");
    cr_assert_eq(error_code_of("{\"jsonrpc\":\"2.0\",\"id\":6}", "b6", NULL), -32600,
                 "missing method");
    cr_assert_eq(error_code_of("{\"jsonrpc\":\"2.0\",\"method\":7,\"id\":7}", "b7", NULL), -32600,
                 "non-string method");
    cr_assert_eq(error_code_of("{\"jsonrpc\":\"2.0\",\"method\":\"nope\",\"id\":8}", "b8", NULL),
                 -32601, "unknown method");
    cr_assert_eq(error_code_of("{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":5,\"id\":9}",
                               "b9", NULL),
                 -32602, "params neither array nor object");
    cr_assert_eq(error_code_of(
                     "{\"jsonrpc\":\"2.0\",\"method\":\"test.sleep\",\"params\":[\"x\"],\"id\":10}",
                     "b10", NULL),
                 -32602, "handler refuses a wrong parameter type");

    /* Over max_message_size (4 KiB here). */
    memset(big, ' ', sizeof big);
    memcpy(big, "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":11}", 40);
    cr_assert_eq(error_code_of_len(big, sizeof big, "b11", NULL), -32600, "oversize");

    /* A handler's structured error reaches the caller intact. */
    cr_assert_eq(error_code_of("{\"jsonrpc\":\"2.0\",\"method\":\"test.fail\",\"params\":[1],"
                               "\"id\":12}",
                               "b12", &reply),
                 1001);
    expected = json_pack("[i]", 1);
    cr_assert(json_equal(json_object_get(json_object_get(reply, "error"), "data"), expected),
              "test.fail returns its params as error data");
    json_decref(expected);
    json_decref(reply);

    /* Notifications get no reply: the only reply here is the call's. */
    cr_assert_eq(wr_client_publish(client, "", w.queue,
                                   "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[1]}",
                                   46 /* strlen */, "n1", 0, (char[8]){0}, 8),
                 0);
    cr_assert_eq(error_code_of("{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[2],\"id\":13}",
                               "b13", &reply),
                 0);
    cr_assert_eq(json_integer_value(json_array_get(json_object_get(reply, "result"), 0)), 2);
    json_decref(reply);
    {
        wr_client_reply r;
        char err[256];
        cr_assert_eq(wr_client_recv(client, 1000, &r, err, sizeof err), 0,
                     "a notification was answered");
    }

    /* Same workers, no restart, every message acked, each bad one logged. */
    n = wr_test_worker_pids(&w, pids_after, 8);
    cr_assert_eq(n, npids_before);
    for (int i = 0; i < n; i++)
        cr_assert_eq(pids_after[i], pids_before[i], "a worker was replaced");
    cr_assert_eq(wr_test_log_count(&w, " exited "), 0, "a worker exited");
    cr_assert_eq(wr_test_log_count(&w, "bad request"), 5, "one log line per unreadable body");
    cr_assert_eq(wr_test_log_count(&w, "invalid request"), 3, "one per invalid request");
    cr_assert_eq(wr_test_log_count(&w, "unknown method"), 1);
    cr_assert_eq(wr_test_log_count(&w, "over max_message_size"), 1);
    {
        /* Everything was acked: the queue is empty, nothing unacked. */
        char args[512], *out;
        snprintf(args, sizeof args,
                 "list_queues -q --no-table-headers name messages_ready "
                 "messages_unacknowledged | grep '^%s\\s'",
                 w.queue);
        out = wr_test_broker_ctl(args);
        cr_assert(strstr(out, "\t0\t0") != NULL, "queue not drained: %s", out);
        free(out);
    }
    wr_client_close(client);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}
