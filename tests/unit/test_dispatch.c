/*
 * worker/dispatch.c: what is sent back for a body, with the shipped echo
 * and test plugins loaded.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>
#include <unistd.h>

#include "worker/delivery.h"
#include "worker/dispatch.h"
#include "worker/plugin_loader.h"

static wr_plugins *plugins;
/* With reply_prefix: replies may be routed by the request id, so its text
 * is kept (job.reply_id); without, it is never made (see below). */
static const wr_route route = {
    .name = "test", .queue = "q", .format = WR_FORMAT_JSONRPC, .reply_prefix = "rpc.response"};

static void load(void)
{
    char *names[] = {"echo", "test"};
    wr_diag d = {0};
    cr_assert_eq(wr_plugins_load(&plugins, WARREN_PLUGIN_DIR, names, 2, NULL, &d), 0, "%s",
                 d.n ? d.msgs[0] : "");
}

static void unload(void)
{
    wr_plugins_unload(plugins);
}

TestSuite(dispatch, .init = load, .fini = unload);

/* Run BODY with a 1 KiB limit; return the reply parsed (new reference), or
 * NULL when nothing is to be sent.  *id_text gets the routing id. */
static json_t *run(const char *body, char **id_text)
{
    wr_job job;
    json_t *reply = NULL;
    wr_delivery in = {.body = body, .len = strlen(body), .reply_to = "r"};
    wr_dispatcher d = {.plugins = plugins};

    wr_dispatch_prepare(&job, &route, &in, 1024);
    wr_dispatch_run(&job, &d);
    if (job.reply) {
        reply = json_loadb(job.reply, job.reply_len, 0, NULL);
        cr_assert_not_null(reply, "reply is not JSON: %s", job.reply);
    }
    if (id_text)
        *id_text = job.reply_id ? strdup(job.reply_id) : NULL;
    wr_dispatch_free(&job);
    return reply;
}

static int code_of(json_t *reply)
{
    return (int)json_integer_value(json_object_get(json_object_get(reply, "error"), "code"));
}

Test(dispatch, single_call_result_and_id)
{
    char *id;
    json_t *r =
        run("{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[1,\"a\"],\"id\":\"q538\"}", &id);
    json_t *want =
        json_pack("{s:s, s:[i,s], s:s}", "jsonrpc", "2.0", "result", 1, "a", "id", "q538");
    cr_assert(json_equal(r, want));
    cr_assert_str_eq(id, "q538");
    free(id);
    json_decref(want);
    json_decref(r);

    r = run("{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":42}", &id);
    cr_assert(json_is_null(json_object_get(r, "result")));
    cr_assert_str_eq(id, "42");
    free(id);
    json_decref(r);
}

Test(dispatch, notification_gets_nothing)
{
    cr_assert_null(run("{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[1]}", NULL));
    /* Not even when it fails. */
    cr_assert_null(run("{\"jsonrpc\":\"2.0\",\"method\":\"nope\"}", NULL));
    cr_assert_null(run("{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":3}", NULL));
    cr_assert_null(run("[{\"jsonrpc\":\"2.0\",\"method\":\"echo\"},"
                       "{\"jsonrpc\":\"2.0\",\"method\":\"test.fail\"}]",
                       NULL));
}

Test(dispatch, batch_keeps_order_and_skips_notifications)
{
    char *id;
    json_t *r = run("[{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[1],\"id\":1},"
                    "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[2]},"
                    "{\"jsonrpc\":\"2.0\",\"method\":\"nope\",\"id\":3},"
                    "7,"
                    "{\"jsonrpc\":\"2.0\",\"method\":\"test.fail\",\"id\":5}]",
                    &id);
    cr_assert(json_is_array(r));
    cr_assert_eq(json_array_size(r), 4);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(r, 0), "id")), 1);
    cr_assert_eq(code_of(json_array_get(r, 1)), -32601);
    cr_assert_eq(code_of(json_array_get(r, 2)), -32600);
    cr_assert(json_is_null(json_object_get(json_array_get(r, 2), "id")));
    cr_assert_eq(code_of(json_array_get(r, 3)), 1001);
    cr_assert_str_eq(id, "1");
    free(id);
    json_decref(r);
}

Test(dispatch, envelope_errors)
{
    json_t *r;
    r = run("nope", NULL);
    cr_assert_eq(code_of(r), -32700);
    json_decref(r);
    r = run("", NULL);
    cr_assert_eq(code_of(r), -32700);
    json_decref(r);
    r = run("[]", NULL);
    cr_assert_eq(code_of(r), -32600);
    json_decref(r);
    r = run("\"str\"", NULL);
    cr_assert_eq(code_of(r), -32600);
    json_decref(r);
    r = run("{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":3,\"id\":1}", NULL);
    cr_assert_eq(code_of(r), -32602);
    cr_assert_eq(json_integer_value(json_object_get(r, "id")), 1);
    json_decref(r);
}

Test(dispatch, oversize_is_not_parsed)
{
    char body[2048];
    json_t *r;
    memset(body, ' ', sizeof body - 1);
    body[sizeof body - 1] = '\0';
    memcpy(body, "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":1}", 40);
    r = run(body, NULL);
    cr_assert_eq(code_of(r), -32600);
    cr_assert(json_is_null(json_object_get(r, "id")));
    json_decref(r);
}

Test(dispatch, handler_error_is_structured)
{
    json_t *r =
        run("{\"jsonrpc\":\"2.0\",\"method\":\"test.fail\",\"params\":{\"x\":1},\"id\":9}", NULL);
    json_t *e = json_object_get(r, "error");
    cr_assert_eq(json_integer_value(json_object_get(e, "code")), 1001);
    cr_assert_str_eq(json_string_value(json_object_get(e, "message")),
                     "test.fail: failure requested");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(e, "data"), "x")), 1);
    json_decref(r);
}

/* Refuse BODY (a poison message); return the reply parsed (new reference)
 * or NULL, and the routing id in *id_text. */
static json_t *refuse(const char *body, char **id_text)
{
    wr_job job;
    json_t *reply = NULL;

    wr_delivery in = {.body = body, .len = strlen(body), .reply_to = "r"};

    wr_dispatch_prepare(&job, &route, &in, 1024);
    wr_dispatch_refuse(&job, "request refused: it killed 3 workers");
    cr_expect_eq(job.nerrors, 1);
    if (job.reply)
        reply = json_loadb(job.reply, job.reply_len, 0, NULL);
    *id_text = job.reply_id ? strdup(job.reply_id) : NULL;
    wr_dispatch_free(&job);
    return reply;
}

Test(dispatch, refusal_answers_with_internal_error_and_the_request_id)
{
    char *id;
    json_t *r = refuse("{\"jsonrpc\":\"2.0\",\"method\":\"test.crash\",\"id\":7}", &id);

    cr_assert_not_null(r);
    cr_expect_eq(code_of(r), WARREN_ERR_INTERNAL);
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(r, "error"), "message")),
                     "request refused: it killed 3 workers");
    cr_expect_eq(json_integer_value(json_object_get(r, "id")), 7);
    cr_expect_str_eq(id, "7");
    json_decref(r);
    free(id);
}

Test(dispatch, refusal_of_a_batch_is_one_error_with_id_null)
{
    char *id;
    json_t *r = refuse("[{\"jsonrpc\":\"2.0\",\"method\":\"test.crash\"},"
                       "{\"jsonrpc\":\"2.0\",\"method\":\"test.crash\",\"id\":\"b\"}]",
                       &id);

    cr_assert_not_null(r);
    cr_expect(json_is_null(json_object_get(r, "id")));
    cr_expect_null(id);
    json_decref(r);
}

Test(dispatch, refusal_of_a_notification_sends_nothing)
{
    char *id;

    cr_expect_null(refuse("{\"jsonrpc\":\"2.0\",\"method\":\"test.crash\"}", &id));
    cr_expect_null(id);
}

/* ---- format = raw and amqpbus --------------------------------------- */

static const wr_route raw_echo = {
    .name = "raw", .queue = "q", .format = WR_FORMAT_RAW, .method = "echo"};
static const wr_route raw_fail = {
    .name = "raw", .queue = "q", .format = WR_FORMAT_RAW, .method = "test.fail"};
static const wr_route raw_status = {
    .name = "raw", .queue = "q", .format = WR_FORMAT_RAW, .method = "warren.status"};
static const wr_route bus = {.name = "bus",
                             .queue = "q",
                             .format = WR_FORMAT_AMQPBUS,
                             .method = "echo",
                             .exchange = "TestExchange",
                             .reply_prefix = "example.response"};

/* Run BODY (LEN bytes) on ROUTE with REPLY_TO (may be NULL) into *JOB,
 * which the caller frees. */
static void run_on(wr_job *job, const wr_route *r, const char *body, size_t len,
                   const char *reply_to)
{
    static const unsigned long handled = 41, failed = 2;
    static wr_builtins b = {.index = 3,
                            .supervisor_pid = 1234,
                            .started_ms = 1,
                            .handled = &handled,
                            .failed = &failed};
    wr_delivery in = {.body = body, .len = len, .reply_to = reply_to};
    wr_dispatcher d = {.plugins = plugins, .builtins = &b};

    b.plugins = plugins;
    wr_dispatch_prepare(job, r, &in, 1024);
    wr_dispatch_run(job, &d);
}

static void expect_reply(const wr_job *job, const char *text, const char *type)
{
    cr_assert_not_null(job->reply);
    cr_expect_eq(job->reply_len, strlen(text));
    cr_expect_str_eq(job->reply, text);
    cr_expect_str_eq(job->reply_type, type);
}

Test(dispatch, raw_body_that_is_json_arrives_parsed)
{
    wr_job job;

    run_on(&job, &raw_echo, "30", 2, "r");
    expect_reply(&job, "[30]", "application/json");
    cr_expect_eq(job.error_code, 0);
    wr_dispatch_free(&job);
    run_on(&job, &raw_echo, "{\"a\": [1, 2]}", 13, "r");
    expect_reply(&job, "[{\"a\":[1,2]}]", "application/json");
    wr_dispatch_free(&job);
}

Test(dispatch, raw_text_body_arrives_as_a_string)
{
    wr_job job;

    run_on(&job, &raw_echo, "hello world", 11, "r");
    expect_reply(&job, "[\"hello world\"]", "application/json");
    wr_dispatch_free(&job);
    run_on(&job, &raw_echo, NULL, 0, "r"); /* rabbitmq-c's empty body */
    expect_reply(&job, "[\"\"]", "application/json");
    wr_dispatch_free(&job);
}

Test(dispatch, raw_string_result_goes_back_as_bare_text)
{
    wr_job job;
    /* test.fail's opposite: the time plugin is not loaded here, so use a
     * handler whose result is a string: warren.status is an object, echo an
     * array; test.echo_string returns its first param. */
    run_on(
        &job,
        &(wr_route){.name = "raw", .queue = "q", .format = WR_FORMAT_RAW, .method = "test.first"},
        "plain text", 10, "r");
    expect_reply(&job, "plain text", "text/plain");
    wr_dispatch_free(&job);
}

Test(dispatch, raw_invalid_utf8_is_a_parse_error_with_headers)
{
    wr_job job;
    json_t *r;

    run_on(&job, &raw_echo, "\xff\xfe", 2, "r");
    cr_assert_not_null(job.reply);
    r = json_loadb(job.reply, job.reply_len, 0, NULL);
    cr_expect_eq(code_of(r), WARREN_ERR_PARSE);
    cr_expect_eq(job.error_code, WARREN_ERR_PARSE);
    cr_expect(strstr(job.error_message, "Parse error") != NULL, "%s", job.error_message);
    cr_expect_eq(job.nerrors, 1);
    json_decref(r);
    wr_dispatch_free(&job);
}

Test(dispatch, raw_handler_error_carries_code_message_and_data)
{
    wr_job job;
    json_t *r;

    run_on(&job, &raw_fail, "{\"why\":\"x\"}", 11, "r");
    r = json_loadb(job.reply, job.reply_len, 0, NULL);
    cr_assert_not_null(r);
    cr_expect_eq(code_of(r), 1001);
    cr_expect_eq(job.error_code, 1001);
    cr_expect_not_null(json_object_get(json_object_get(r, "error"), "data"));
    json_decref(r);
    wr_dispatch_free(&job);
}

Test(dispatch, raw_without_reply_to_runs_and_sends_nothing)
{
    wr_job job;

    run_on(&job, &raw_echo, "30", 2, NULL);
    cr_expect_null(job.reply);
    cr_expect_eq(job.ncalls, 1);
    wr_dispatch_free(&job);
}

Test(dispatch, builtin_status_reports_the_instance_and_worker)
{
    wr_job job;
    json_t *r;

    run_on(&job, &raw_status, "", 0, "r");
    r = json_loadb(job.reply, job.reply_len, 0, NULL);
    cr_assert(json_is_object(r), "%s", job.reply);
    cr_expect_eq(json_integer_value(json_object_get(r, "supervisor_pid")), 1234);
    cr_expect_eq(json_integer_value(json_object_get(r, "worker_pid")), getpid());
    cr_expect_eq(json_integer_value(json_object_get(r, "worker_index")), 3);
    cr_expect_eq(json_integer_value(json_object_get(r, "requests")), 41);
    cr_expect_eq(json_integer_value(json_object_get(r, "failed")), 2);
    cr_expect_str_eq(json_string_value(json_object_get(r, "version")), WARREN_VERSION);
    cr_expect(json_string_length(json_object_get(r, "hostname")) > 0);
    cr_expect_eq(json_array_size(json_object_get(r, "plugins")), 2);
    json_decref(r);
    wr_dispatch_free(&job);
}

Test(dispatch, builtins_off_means_method_not_found)
{
    wr_job job;
    wr_delivery in = {.body = "", .len = 0, .reply_to = "r"};
    wr_dispatcher d = {.plugins = plugins, .builtins = NULL};

    wr_dispatch_prepare(&job, &raw_status, &in, 1024);
    wr_dispatch_run(&job, &d);
    cr_expect_eq(job.error_code, WARREN_ERR_METHOD_NOT_FOUND);
    wr_dispatch_free(&job);
}

Test(dispatch, amqpbus_result_goes_to_the_qid)
{
    wr_job job;
    const char *body = "{\"q\": {\"msg\": \"hi\"}, \"qid\": \"q538\"}";

    run_on(&job, &bus, body, strlen(body), NULL);
    expect_reply(&job, "[{\"msg\":\"hi\"}]", "application/json");
    cr_expect_str_eq(job.reply_id, "q538");
    wr_dispatch_free(&job);
}

Test(dispatch, amqpbus_without_qid_or_reply_to_runs_silently)
{
    wr_job job;
    const char *body = "{\"q\": 1}";

    run_on(&job, &bus, body, strlen(body), NULL);
    cr_expect_null(job.reply);
    cr_expect_eq(job.ncalls, 1);
    wr_dispatch_free(&job);
}

Test(dispatch, amqpbus_bad_input_gets_the_dialects_error)
{
    static const struct {
        const char *body;
        int code;
        const char *reply_to;
    } cases[] = {
        {"[1,2]", WARREN_ERR_INVALID_REQUEST, "r"}, /* not an object */
        {"not json", WARREN_ERR_PARSE, "r"},
        {"{\"qid\": \"q1\"}", WARREN_ERR_INVALID_REQUEST, NULL}, /* no q: to the qid */
        {"{\"q\": 1, \"qid\": \"a.b\"}", WARREN_ERR_INVALID_REQUEST, "r"},
        {"{\"q\": 1, \"qid\": \"a*\"}", WARREN_ERR_INVALID_REQUEST, "r"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        wr_job job;
        json_t *r;

        run_on(&job, &bus, cases[i].body, strlen(cases[i].body), cases[i].reply_to);
        cr_assert_not_null(job.reply, "case %zu", i);
        r = json_loadb(job.reply, job.reply_len, 0, NULL);
        cr_expect_eq(code_of(r), cases[i].code, "case %zu: %s", i, job.reply);
        cr_expect_eq(job.nerrors, 1);
        json_decref(r);
        wr_dispatch_free(&job);
    }
}

Test(dispatch, amqpbus_qid_too_long_is_refused)
{
    char body[400], qid[202];
    wr_job job;

    memset(qid, 'a', 201);
    qid[201] = '\0';
    snprintf(body, sizeof body, "{\"q\": 1, \"qid\": \"%s\"}", qid);
    run_on(&job, &bus, body, strlen(body), "r");
    cr_expect(job.reply && strstr(job.reply, "qid must be"), "%s", job.reply);
    cr_expect_null(job.reply_id);
    wr_dispatch_free(&job);
}

Test(dispatch, broadcast_without_reply_to_is_not_run)
{
    wr_job job;
    wr_route r = raw_echo;

    r.broadcast = 1;
    run_on(&job, &r, "30", 2, NULL);
    cr_expect_null(job.reply);
    cr_expect_eq(job.ncalls, 0);
    cr_expect_eq(job.nerrors, 1);
    wr_dispatch_free(&job);
}

Test(dispatch, handlers_see_the_message_abi_1_1)
{
    wr_job job;
    json_t *r;

    run_on(
        &job,
        &(wr_route){.name = "raw", .queue = "q", .format = WR_FORMAT_RAW, .method = "test.message"},
        "xyz", 3, "reply-here");
    r = json_loadb(job.reply, job.reply_len, 0, NULL);
    cr_assert(json_is_object(r), "%s", job.reply);
    cr_expect_str_eq(json_string_value(json_object_get(r, "route")), "raw");
    cr_expect_str_eq(json_string_value(json_object_get(r, "body")), "xyz");
    cr_expect_str_eq(json_string_value(json_object_get(r, "reply_to")), "reply-here");
    json_decref(r);
    wr_dispatch_free(&job);
}

/* ---- AMQP 1.0 bodies (type = amqp-1.0), from the envelope on -------- */

/* What wr_delivery_from_envelope makes of a delivery of BODY (LEN bytes)
 * with type TYPE (NULL: none), reply_to "r" and HEADERS (may be NULL), run
 * on ROUTE with a MAX-byte limit into *JOB; *IN is freed by the caller. */
static void deliver(wr_job *job, wr_delivery *in, const wr_route *r, const char *type,
                    const void *body, size_t len, const amqp_table_t *headers, long max)
{
    amqp_envelope_t env;
    wr_dispatcher d = {.plugins = plugins};

    memset(&env, 0, sizeof env);
    env.message.body = (amqp_bytes_t){.len = len, .bytes = (void *)body};
    env.message.properties._flags = AMQP_BASIC_REPLY_TO_FLAG;
    env.message.properties.reply_to = amqp_cstring_bytes("r");
    if (type) {
        env.message.properties._flags |= AMQP_BASIC_TYPE_FLAG;
        env.message.properties.type = amqp_cstring_bytes(type);
    }
    if (headers) {
        env.message.properties._flags |= AMQP_BASIC_HEADERS_FLAG;
        env.message.properties.headers = *headers;
    }
    env.exchange = amqp_cstring_bytes("");
    env.routing_key = amqp_cstring_bytes("q");
    cr_assert_eq(wr_delivery_from_envelope(in, &env), 0);
    wr_dispatch_prepare(job, r, in, max);
    wr_dispatch_run(job, &d);
}

#define AMQP_INT_30 "\x00\x53\x77\x71\x00\x00\x00\x1e" /* amqp-value: int 30 */
#define AMQP_STR_HI "\x00\x53\x77\xa1\x02hi"           /* amqp-value: str8 "hi" */

Test(dispatch, amqp10_int_reaches_a_raw_route_as_the_integer)
{
    wr_job job;
    wr_delivery in;

    deliver(&job, &in, &raw_echo, "amqp-1.0", AMQP_INT_30, 8, NULL, 1024);
    expect_reply(&job, "[30]", "application/json");
    cr_expect_eq(job.nerrors, 0);
    wr_dispatch_free(&job);
    wr_delivery_free(&in);
    /* The same as the text 30 from a 0-9-1 client. */
    deliver(&job, &in, &raw_echo, NULL, "30", 2, NULL, 1024);
    expect_reply(&job, "[30]", "application/json");
    wr_dispatch_free(&job);
    wr_delivery_free(&in);
}

Test(dispatch, amqp10_string_reaches_a_raw_route_as_its_text)
{
    wr_job job;
    wr_delivery in;

    deliver(&job, &in, &raw_echo, "amqp-1.0", AMQP_STR_HI, 7, NULL, 1024);
    expect_reply(&job, "[\"hi\"]", "application/json");
    wr_dispatch_free(&job);
    wr_delivery_free(&in);
}

Test(dispatch, a_0_9_1_body_is_left_alone)
{
    wr_job job;
    wr_delivery in;

    /* Encoded bytes without the type: just bytes (not UTF-8 here). */
    deliver(&job, &in, &raw_echo, "binary", AMQP_STR_HI, 7, NULL, 1024);
    cr_expect_null(in.body_buf);
    cr_expect_eq(in.len, 7);
    cr_expect_eq(job.error_code, WARREN_ERR_PARSE); /* raw: not UTF-8 */
    wr_dispatch_free(&job);
    wr_delivery_free(&in);
}

Test(dispatch, amqp10_bad_body_gets_the_routes_parse_error)
{
    wr_job job;
    wr_delivery in;
    json_t *r;

    /* An unknown descriptor, on raw: the error body and headers. */
    deliver(&job, &in, &raw_echo, "amqp-1.0", "\x00\x53\x99\x45", 4, NULL, 1024);
    cr_expect_str_eq(wr_dispatch_method(&job), "-");
    cr_assert_not_null(job.reply);
    r = json_loadb(job.reply, job.reply_len, 0, NULL);
    cr_expect_eq(code_of(r), WARREN_ERR_PARSE);
    cr_expect_eq(job.error_code, WARREN_ERR_PARSE);
    cr_expect(strstr(job.error_message, "unknown section descriptor 0x99") != NULL, "%s",
              job.error_message);
    cr_expect_eq(job.nerrors, 1);
    cr_expect_eq(job.ncalls, 0);
    json_decref(r);
    wr_dispatch_free(&job);
    wr_delivery_free(&in);

    /* Truncated, on jsonrpc: the JSON-RPC parse error, id null. */
    deliver(&job, &in, &route, "amqp-1.0", "\x00\x53\x77\xa1\x3f{", 6, NULL, 1024);
    cr_assert_not_null(job.reply);
    r = json_loadb(job.reply, job.reply_len, 0, NULL);
    cr_expect_eq(code_of(r), WARREN_ERR_PARSE);
    cr_expect(json_is_null(json_object_get(r, "id")));
    cr_expect_eq(job.nerrors, 1);
    json_decref(r);
    wr_dispatch_free(&job);
    wr_delivery_free(&in);
}

Test(dispatch, amqp10_jsonrpc_request_in_an_amqp_value)
{
    static const char req[] = "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[7],\"id\":1}";
    char body[5 + sizeof req - 1];
    wr_job job;
    wr_delivery in;

    memcpy(body, "\x00\x53\x77\xa1", 4);
    body[4] = (char)(sizeof req - 1);
    memcpy(body + 5, req, sizeof req - 1);
    deliver(&job, &in, &route, "amqp-1.0", body, sizeof body, NULL, 1024);
    expect_reply(&job, "{\"jsonrpc\":\"2.0\",\"result\":[7],\"id\":1}", "application/json");
    wr_dispatch_free(&job);
    wr_delivery_free(&in);
}

/* A data section of N bytes of 'x', encoded (binary32); the caller frees. */
static char *data_section(size_t n, size_t *len)
{
    char *b = malloc(n + 8);

    memcpy(b, "\x00\x53\x75\xb0", 4);
    for (int k = 0; k < 4; k++)
        b[4 + k] = (char)(n >> (24 - 8 * k));
    memset(b + 8, 'x', n);
    *len = n + 8;
    return b;
}

Test(dispatch, amqp10_2mb_data_section_meets_the_size_limit_unwrapped)
{
    size_t len;
    char *b = data_section(2u << 20, &len);
    wr_job job;
    wr_delivery in;
    json_t *r;

    deliver(&job, &in, &raw_echo, "amqp-1.0", b, len, NULL, 1 << 20);
    cr_expect(job.oversize);
    cr_expect_eq(in.len, 2u << 20);
    r = json_loadb(job.reply, job.reply_len, 0, NULL);
    cr_expect_eq(code_of(r), WARREN_ERR_INVALID_REQUEST);
    json_decref(r);
    wr_dispatch_free(&job);
    wr_delivery_free(&in);

    /* A limit that allows it: it runs. */
    deliver(&job, &in, &raw_echo, "amqp-1.0", b, len, NULL, 4 << 20);
    cr_expect_not(job.oversize);
    cr_assert_not_null(job.reply);
    cr_expect_eq(job.reply_len, (2u << 20) + 4); /* ["xxx...x"] */
    wr_dispatch_free(&job);
    wr_delivery_free(&in);
    free(b);

    /* Unwrapped, just under a limit the encoded body is over: it runs. */
    b = data_section(1000, &len);
    deliver(&job, &in, &raw_echo, "amqp-1.0", b, len, NULL, 1000);
    cr_expect_not(job.oversize);
    cr_expect_eq(job.nerrors, 0);
    wr_dispatch_free(&job);
    wr_delivery_free(&in);
    free(b);
}

Test(dispatch, amqp10_legacy_headers_reach_the_handler_decoded)
{
    /* RabbitMQ 3.x: application-properties {"myprop": "v"}, encoded. */
    static const char app[] = "\x00\x53\x74\xc1\x0c\x02\xa1\x06myprop\xa1\x01v";
    amqp_table_entry_t e[] = {
        {.key = amqp_cstring_bytes("x-amqp-1.0-app-properties"),
         .value = {.kind = AMQP_FIELD_KIND_BYTES,
                   .value.bytes = {.len = sizeof app - 1, .bytes = (void *)app}}},
        {.key = amqp_cstring_bytes("plain"),
         .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes("kept")}},
    };
    amqp_table_t t = {.num_entries = 2, .entries = e};
    wr_route msg = {.name = "raw", .queue = "q", .format = WR_FORMAT_RAW, .method = "test.message"};
    wr_job job;
    wr_delivery in;
    json_t *r, *h;

    deliver(&job, &in, &msg, "amqp-1.0", AMQP_STR_HI, 7, &t, 1024);
    r = json_loadb(job.reply, job.reply_len, 0, NULL);
    cr_assert(json_is_object(r), "%s", job.reply);
    cr_expect_str_eq(json_string_value(json_object_get(r, "body")), "hi");
    h = json_object_get(r, "headers");
    cr_expect_str_eq(json_string_value(json_object_get(
                         json_object_get(h, "x-amqp-1.0-app-properties"), "myprop")),
                     "v");
    cr_expect_str_eq(json_string_value(json_object_get(h, "plain")), "kept");
    json_decref(r);
    wr_dispatch_free(&job);
    wr_delivery_free(&in);
}

/* ---- \u0000 inside strings -------------------------------------------- */

Test(dispatch, nul_in_strings_on_every_format)
{
    wr_job job;
    json_t *r;

    /* jsonrpc: echo returns it whole. */
    run_on(&job, &route,
           "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[\"a\\u0000b\"],\"id\":1}", 62,
           "r");
    r = json_loadb(job.reply, job.reply_len, JSON_ALLOW_NUL, NULL);
    cr_expect_eq(json_string_length(json_array_get(json_object_get(r, "result"), 0)), 3, "%s",
                 job.reply);
    json_decref(r);
    wr_dispatch_free(&job);

    /* raw: the JSON string is the argument; test.first's string result
     * goes back as its bare text, NUL included. */
    run_on(
        &job,
        &(wr_route){.name = "raw", .queue = "q", .format = WR_FORMAT_RAW, .method = "test.first"},
        "\"a\\u0000b\"", 10, "r");
    cr_assert_eq(job.reply_len, 3);
    cr_expect(memcmp(job.reply, "a\0b", 3) == 0);
    cr_expect_str_eq(job.reply_type, "text/plain");
    wr_dispatch_free(&job);

    /* amqpbus: in the payload it is fine, in the qid (a routing key word)
     * it is refused. */
    run_on(&job, &bus, "{\"q\":\"a\\u0000b\",\"qid\":\"q1\"}", 27, NULL);
    r = json_loadb(job.reply, job.reply_len, JSON_ALLOW_NUL, NULL);
    cr_expect_eq(json_string_length(json_array_get(r, 0)), 3, "%s", job.reply);
    json_decref(r);
    wr_dispatch_free(&job);
    run_on(&job, &bus, "{\"q\":1,\"qid\":\"q\\u0000x\"}", 24, "r");
    r = json_loadb(job.reply, job.reply_len, 0, NULL);
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(r, "error"), "code")), -32600,
                 "%s", job.reply);
    json_decref(r);
    wr_dispatch_free(&job);
}

/* The id's text is only for a reply_prefix route: without one, a call
 * does not pay for it. */
Test(dispatch, no_reply_prefix_no_id_text)
{
    wr_route plain = route;
    wr_job job;
    const char *body = "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[1],\"id\":9}";
    wr_delivery in = {.body = body, .len = strlen(body), .reply_to = "r"};
    wr_dispatcher d = {.plugins = plugins};

    plain.reply_prefix = NULL;
    wr_dispatch_prepare(&job, &plain, &in, 1024);
    wr_dispatch_run(&job, &d);
    cr_assert_not_null(job.reply);
    cr_assert_null(job.reply_id);
    wr_dispatch_free(&job);
}

/* The metrics count every error response by code (wr_job's codes). */
Test(dispatch, error_codes_are_counted_for_the_metrics)
{
    const char *body = "[{\"jsonrpc\":\"2.0\",\"method\":\"test.fail\",\"id\":1},"
                       "{\"jsonrpc\":\"2.0\",\"method\":\"nope\",\"id\":2},"
                       "{\"jsonrpc\":\"2.0\",\"method\":\"test.fail\",\"id\":3},"
                       "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[1],\"id\":4}]";
    wr_delivery in = {.body = body, .len = strlen(body), .reply_to = "r"};
    wr_dispatcher d = {.plugins = plugins};
    wr_job job;

    wr_dispatch_prepare(&job, &route, &in, 1024);
    wr_dispatch_run(&job, &d);
    cr_expect_eq(job.nerrors, 3);
    cr_assert_eq(job.ncodes, 2);
    cr_expect_eq(job.codes[0], 1001);
    cr_expect_eq(job.code_counts[0], 2);
    cr_expect_eq(job.codes[1], WARREN_ERR_METHOD_NOT_FOUND);
    cr_expect_eq(job.code_counts[1], 1);
    cr_expect_eq(job.more_codes, 0);
    wr_dispatch_free(&job);

    wr_dispatch_prepare(&job, &route, &(wr_delivery){.body = "{", .len = 1, .reply_to = "r"}, 1024);
    wr_dispatch_run(&job, &d);
    cr_assert_eq(job.ncodes, 1);
    cr_expect_eq(job.codes[0], WARREN_ERR_PARSE);
    wr_dispatch_free(&job);
}
