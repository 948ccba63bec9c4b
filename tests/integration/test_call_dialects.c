/*
 * warren-call speaks every route style warren serves, against real pools:
 * --format raw (the body is the argument, errors in x-error-code
 * headers), --format amqpbus ({"q","qid"}, the reply through an exchange
 * under <reply-prefix>.<qid>, or to reply_to), --broadcast (one line per
 * instance of a broadcast route), and the pkgstatus plugin on a jsonrpc
 * route.  Usage errors (exit 64) first: they need no broker.
 */
#include <amqp.h>
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/amqp_conn.h"
#include "tests/integration/harness.h"

/* Run warren-call against the test broker with ARGS (shell words). */
static int call(const char *args, char **out, char **err)
{
    char cmd[2048];

    snprintf(cmd, sizeof cmd, "'%s' -u '%s' %s", getenv("WARREN_CALL_BIN"), wr_test_broker_uri(),
             args);
    return wr_test_sh(cmd, out, err);
}

/* warren-call ARGS must exit with RC, print exactly OUT (NULL: anything)
 * and have ERR_NEEDLE in its stderr (NULL: anything). */
static void expect_call(const char *args, int rc, const char *out, const char *err_needle)
{
    char *o = NULL, *e = NULL;
    int got = call(args, &o, &e);

    cr_assert_eq(got, rc, "warren-call %s: exit %d, expected %d; stdout: %s; stderr: %s", args, got,
                 rc, o, e);
    if (out != NULL)
        cr_assert_str_eq(o, out, "warren-call %s: stderr: %s", args, e);
    if (err_needle != NULL)
        cr_assert(strstr(e, err_needle) != NULL, "warren-call %s: stderr lacks \"%s\": %s", args,
                  err_needle, e);
    free(o);
    free(e);
}

/* Start W with the plugins the tests here call (pkgstatus too) and EXTRA
 * config; wait until it is ready. */
static void start(wr_test_warren *w, int workers, const char *extra)
{
    char *argv[] = {"warren", "-c", w->conf, "-o", "plugins.load=echo time test pkgstatus", NULL};

    wr_test_warren_write_conf(w, workers, extra);
    wr_test_warren_spawn(w, argv, NULL);
    /* Up to 30 s, but a warren that refuses its config is done at once. */
    for (int waited = 0; !wr_test_log_wait(w, "ready: ", 1, 100); waited += 100) {
        if (wr_test_warren_wait_exit(w, 0) || waited >= 30000) {
            char *log = wr_test_log_read(w);

            cr_log_error("warren's log:\n%s", log ? log : "(none)");
            free(log);
            cr_assert_fail("warren %s", w->exited ? "exited instead of becoming ready"
                                                  : "did not become ready in 30 s");
        }
    }
}

/* ---- usage ---------------------------------------------------------- */

Test(call_dialects, usage_errors_say_what_is_wrong)
{
    static const struct {
        const char *args, *needle;
    } cases[] = {
        {"--format xml echo", "--format: expected jsonrpc, raw or amqpbus"},
        {"--format raw", "missing BODY"},
        {"--format raw echo 30", "no METHOD (the route names the method)"},
        {"--format amqpbus echo '[1]'", "no METHOD (the route names the method)"},
        {"--format amqpbus echo", "PAYLOAD_JSON is not valid JSON"},
        {"--broadcast --notify echo", "cannot be combined with --notify"},
        {"--reply-prefix x echo", "--reply-prefix is for --format amqpbus"},
        {"--qid q1 echo", "--qid is for --format amqpbus"},
        {"--format amqpbus --reply-prefix p '1'", "--reply-prefix needs -x EXCHANGE"},
        {"--format amqpbus -x e -k k --reply-prefix p --direct '1'", "--direct cannot"},
        {"--format amqpbus --reply-exchange e '1'", "--reply-exchange needs --reply-prefix"},
        {"--format amqpbus --notify --qid q1 '1'", "--notify sends no qid"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char cmd[512], *out = NULL, *err = NULL;
        int rc;

        /* No -u: a usage error is found before any connection. */
        snprintf(cmd, sizeof cmd, "\"$WARREN_CALL_BIN\" %s", cases[i].args);
        rc = wr_test_sh(cmd, &out, &err);
        cr_assert_eq(rc, 64, "%s: exit %d (stderr: %s)", cases[i].args, rc, err);
        cr_assert(strstr(err, cases[i].needle) != NULL, "%s: stderr lacks \"%s\": %s",
                  cases[i].args, cases[i].needle, err);
        cr_assert_str_eq(out, "");
        free(out);
        free(err);
    }
}

/* ---- raw ------------------------------------------------------------ */

Test(call_dialects, raw_body_in_result_out, .timeout = 120)
{
    wr_test_warren w = {0};
    char echo_q[128], fail_q[128], extra[512], args[512];

    wr_test_queue_name(echo_q, sizeof echo_q, "raw-echo");
    wr_test_queue_name(fail_q, sizeof fail_q, "raw-fail");
    snprintf(extra, sizeof extra,
             "[route rawecho]\nqueue = %s\nformat = raw\nmethod = echo\n\n"
             "[route rawfail]\nqueue = %s\nformat = raw\nmethod = test.fail\n",
             echo_q, fail_q);
    start(&w, 1, extra);

    /* The body 30 is the one argument: echo gets [30] and returns it. */
    snprintf(args, sizeof args, "--format raw -q %s 30", echo_q);
    expect_call(args, 0, "[30]\n", NULL);
    /* Not JSON: the argument is the body as a string. */
    snprintf(args, sizeof args, "--format raw -q %s 'hello there'", echo_q);
    expect_call(args, 0, "[\"hello there\"]\n", NULL);
    snprintf(args, sizeof args, "--format raw --direct -q %s '{\"n\":1}'", echo_q);
    expect_call(args, 0, "[{\"n\":1}]\n", NULL);

    /* An error reply: x-error-code header, the code and message on
     * stderr, nothing on stdout, exit 1. */
    snprintf(args, sizeof args, "--format raw -q %s '{\"why\":\"testing\"}'", fail_q);
    expect_call(args, 1, "", "error 1001: test.fail: failure requested");
    expect_call(args, 1, "", "data: [{\"why\":\"testing\"}]");

    /* Fire and forget, and a queue nobody has. */
    snprintf(args, sizeof args, "--format raw --notify -q %s 1", echo_q);
    expect_call(args, 0, "", NULL);
    expect_call("--format raw -q no.such.queue.here 1", 69, "", "NO_ROUTE");

    cr_assert_eq(wr_test_warren_stop(&w), 0);
}

/* What rpc_client hands its callers of a raw reply: the content type, and
 * the error headers. */
Test(call_dialects, raw_replies_carry_content_type_and_error_headers, .timeout = 120)
{
    wr_test_warren w = {0};
    char echo_q[128], fail_q[128], extra[512], err[512];
    wr_client *c;
    wr_client_reply r;

    wr_test_queue_name(echo_q, sizeof echo_q, "raw-echo");
    wr_test_queue_name(fail_q, sizeof fail_q, "raw-fail");
    snprintf(extra, sizeof extra,
             "[route rawecho]\nqueue = %s\nformat = raw\nmethod = echo\n\n"
             "[route rawfail]\nqueue = %s\nformat = raw\nmethod = test.fail\n",
             echo_q, fail_q);
    start(&w, 1, extra);
    c = wr_test_client(WR_CLIENT_REPLY_QUEUE);
    wr_client_set_content_type(c, NULL); /* as a bare tutorial client sends */

    cr_assert_eq(wr_client_publish(c, "", echo_q, "30", 2, "c1", 0, err, sizeof err), 0, "%s", err);
    cr_assert_eq(wr_client_recv(c, 10000, &r, err, sizeof err), 1, "no reply: %s", err);
    cr_assert_str_eq(r.correlation_id, "c1");
    cr_assert_str_eq(r.body, "[30]");
    cr_assert_str_eq(r.content_type, "application/json");
    cr_assert_not(r.has_error_code);
    cr_assert_null(r.error_message);
    wr_client_reply_free(&r);

    cr_assert_eq(wr_client_publish(c, "", fail_q, "30", 2, "c2", 0, err, sizeof err), 0, "%s", err);
    cr_assert_eq(wr_client_recv(c, 10000, &r, err, sizeof err), 1, "no reply: %s", err);
    cr_assert_str_eq(r.correlation_id, "c2");
    cr_assert(r.has_error_code);
    cr_assert_eq(r.error_code, 1001);
    cr_assert_str_eq(r.error_message, "test.fail: failure requested");
    cr_assert_str_eq(r.content_type, "application/json");
    cr_assert(strstr(r.body, "\"error\"") && strstr(r.body, "1001"), "%s", r.body);
    wr_client_reply_free(&r);

    wr_client_close(c);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}

/* ---- amqpbus -------------------------------------------------------- */

/* Declare (DECLARE) or delete a topic exchange NAME on the test broker,
 * as the recipe's deployment would have. */
static void topic_exchange(const char *name, int declare)
{
    char err[512];
    amqp_connection_state_t conn =
        wr_amqp_connect(wr_test_broker_uri(), 0, 10, "warren test", err, sizeof err);

    cr_assert_not_null(conn, "%s", err);
    if (declare)
        amqp_exchange_declare(conn, 1, amqp_cstring_bytes(name), amqp_cstring_bytes("topic"), 0, 0,
                              0, 0, amqp_empty_table);
    else
        amqp_exchange_delete(conn, 1, amqp_cstring_bytes(name), 0);
    cr_assert_eq(wr_amqp_check(amqp_get_rpc_reply(conn), "exchange", err, sizeof err), 0, "%s",
                 err);
    wr_amqp_close(conn);
}

Test(call_dialects, amqpbus_payload_in_result_out, .timeout = 120)
{
    wr_test_warren w = {0};
    char ex[128], bus_q[128], fail_q[128], extra[2048], args[768];

    wr_test_queue_name(ex, sizeof ex, "TestExchange");
    wr_test_queue_name(bus_q, sizeof bus_q, "ExampleBroker_req");
    wr_test_queue_name(fail_q, sizeof fail_q, "ExampleBroker_fail");
    topic_exchange(ex, 1);
    snprintf(extra, sizeof extra,
             "[route bus]\nqueue = %s\nformat = amqpbus\nmethod = echo\nexchange = %s\n"
             "bindings = example.request.*\nreply_exchange = %s\nreply_prefix = example.response\n"
             "\n"
             "[route busfail]\nqueue = %s\nformat = amqpbus\nmethod = test.fail\nexchange = %s\n"
             "bindings = failing.request.*\nreply_exchange = %s\nreply_prefix = failing.response\n",
             bus_q, ex, ex, fail_q, ex, ex);
    start(&w, 2, extra);

    /* The recipe's own client: qid q538, the reply through the exchange
     * under example.response.q538.  echo gets ["payload"]. */
    snprintf(args, sizeof args,
             "--format amqpbus -x %s -k example.request.q538 --reply-prefix example.response "
             "--qid q538 '\"payload\"'",
             ex);
    expect_call(args, 0, "[\"payload\"]\n", NULL);
    /* A generated qid does as well. */
    snprintf(args, sizeof args,
             "--format amqpbus -x %s -k example.request.x --reply-prefix example.response "
             "'{\"a\":[1,2]}'",
             ex);
    expect_call(args, 0, "[{\"a\":[1,2]}]\n", NULL);
    /* With reply_to (no --reply-prefix) the reply comes there instead. */
    snprintf(args, sizeof args, "--format amqpbus -x %s -k example.request.y 7", ex);
    expect_call(args, 0, "[7]\n", NULL);
    /* Straight to the queue, default payload null. */
    snprintf(args, sizeof args, "--format amqpbus -q %s", bus_q);
    expect_call(args, 0, "[null]\n", NULL);

    /* An {"error": ...} reply: exit 1, the code on stderr. */
    snprintf(args, sizeof args,
             "--format amqpbus -x %s -k failing.request.q1 --reply-prefix failing.response '1'",
             ex);
    expect_call(args, 1, "", "error 1001: test.fail: failure requested");

    /* No qid: fire and forget. */
    snprintf(args, sizeof args, "--format amqpbus --notify -x %s -k example.request.z 1", ex);
    expect_call(args, 0, "", NULL);
    /* A key nothing is bound to. */
    snprintf(args, sizeof args,
             "--format amqpbus -x %s -k nobody.listens --reply-prefix example.response 1", ex);
    expect_call(args, 69, "", "NO_ROUTE");

    cr_assert_eq(wr_test_warren_stop(&w), 0);
    topic_exchange(ex, 0);
}

/* ---- broadcast ------------------------------------------------------ */

static long long elapsed_ms(const struct timespec *since)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - since->tv_sec) * 1000LL + (now.tv_nsec - since->tv_nsec) / 1000000;
}

Test(call_dialects, broadcast_every_instance_answers_once, .timeout = 180)
{
    static const char extra[] = "[route status]\nbroadcast = yes\nexchange = amq.topic\n"
                                "bindings = SERVER_STATUS\n";
    wr_test_warren w1 = {0}, w2 = {0};
    char *out = NULL, *err = NULL, *line, *save = NULL;
    int lines = 0, seen1 = 0, seen2 = 0, rc;
    json_int_t pid;
    struct timespec t0;

    start(&w1, 2, extra);
    start(&w2, 2, extra);

    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = call("--broadcast -x amq.topic -k SERVER_STATUS warren.status", &out, &err);
    cr_assert_eq(rc, 0, "stderr: %s", err);
    /* The whole default window of 2 s is waited for, and no more. */
    cr_assert_geq(elapsed_ms(&t0), 2000);
    cr_assert_lt(elapsed_ms(&t0), 8000);
    for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_t *v = json_loads(line, JSON_DECODE_ANY, NULL);

        cr_assert_not_null(v, "not one JSON value per line: %s", out);
        cr_assert_null(json_object_get(v, "error"), "%s", line);
        pid = json_integer_value(json_object_get(v, "supervisor_pid"));
        seen1 += pid == w1.pid;
        seen2 += pid == w2.pid;
        json_decref(v);
        lines++;
    }
    cr_assert_eq(lines, 2, "one reply per instance, got: %s", out);
    cr_assert(seen1 == 1 && seen2 == 1, "each supervisor_pid once (%d, %d): %s", seen1, seen2, out);
    free(out);
    free(err);

    /* An error is one line too, {"error": {...}}, and still an answer. */
    rc = call("--broadcast -t 1 -x amq.topic -k SERVER_STATUS test.fail", &out, &err);
    cr_assert_eq(rc, 0, "stderr: %s", err);
    lines = 0;
    for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cr_assert(strncmp(line, "{\"error\":{\"code\":1001,", 22) == 0, "%s", line);
        lines++;
    }
    cr_assert_eq(lines, 2, "%s", out);
    free(out);
    free(err);

    /* A broadcast nobody listens to fails at once; one nobody answers in
     * time gets 2. */
    expect_call("--broadcast -x amq.topic -k NOBODY.LISTENS warren.status", 69, "", "NO_ROUTE");
    expect_call("--broadcast -t 0.5 -x amq.topic -k SERVER_STATUS test.sleep '[3]'", 2, "",
                "no reply within 0.5 s");

    cr_assert_eq(wr_test_warren_stop(&w1), 0);
    cr_assert_eq(wr_test_warren_stop(&w2), 0);
}

/* On an ordinary queue route --broadcast is the one reply, printed as it
 * comes, after the whole window. */
Test(call_dialects, broadcast_on_a_queue_route, .timeout = 120)
{
    wr_test_warren w = {0};
    char args[512];

    start(&w, 2, NULL);
    snprintf(args, sizeof args, "--broadcast -t 0.5 -q %s echo '[1,\"a\"]'", w.queue);
    expect_call(args, 0, "[1,\"a\"]\n", NULL);
    snprintf(args, sizeof args, "--broadcast -t 0.5 -q %s nosuch.method", w.queue);
    expect_call(args, 0, NULL, NULL);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}

/* ---- pkgstatus ------------------------------------------------------ */

Test(call_dialects, pkgstatus_through_a_jsonrpc_route, .timeout = 120)
{
    wr_test_warren w = {0};
    char args[512], *out = NULL, *err = NULL;
    pid_t workers[4];
    json_t *v;
    json_int_t pid;
    int n, rc, is_worker = 0;

    start(&w, 2, "[plugin pkgstatus]\nmax_packages = 3\n");
    n = wr_test_worker_pids(&w, workers, 4);
    cr_assert_eq(n, 2);

    snprintf(args, sizeof args, "-q %s pkgstatus", w.queue);
    rc = call(args, &out, &err);
    cr_assert_eq(rc, 0, "stderr: %s", err);
    v = json_loads(out, 0, NULL);
    cr_assert_not_null(v, "%s", out);
    pid = json_integer_value(json_object_get(v, "pid"));
    for (int i = 0; i < n; i++)
        is_worker |= workers[i] == pid;
    cr_assert(is_worker, "pid %" JSON_INTEGER_FORMAT " is not one of the workers", pid);
    cr_assert_eq(json_array_size(json_object_get(v, "packages")), 3, "%s", out);
    cr_assert(json_is_true(json_object_get(v, "truncated")), "%s", out);
    cr_assert_gt(json_integer_value(json_object_get(v, "count")), 3, "%s", out);
    json_decref(v);
    free(out);
    free(err);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}
