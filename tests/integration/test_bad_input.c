/*
 * Bad input never costs a worker: every malformed request gets its
 * JSON-RPC error reply, is acked (the queue drains), is logged once, and
 * the same worker processes serve the next call.  Also: "\u0000" inside
 * strings comes back whole, a batch over max_batch is one -32600, a reply
 * to a queue that does not exist is lost without harm, and headers of
 * every AMQP field type reach the handler as JSON.
 */
#include <amqp.h>
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/amqp_conn.h"
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

/* ---- a bare connection, for what the RPC client cannot send ------------ */

#define CH 1

static amqp_connection_state_t conn;
static char replies[256]; /* exclusive, server-named */

static void open_conn(void)
{
    amqp_queue_declare_ok_t *ok;

    conn = wr_test_amqp_connect();
    ok = amqp_queue_declare(conn, CH, amqp_empty_bytes, 0, 0, 1 /* exclusive */, 1,
                            amqp_empty_table);
    cr_assert_eq(amqp_get_rpc_reply(conn).reply_type, AMQP_RESPONSE_NORMAL, "reply queue");
    snprintf(replies, sizeof replies, "%.*s", (int)ok->queue.len, (char *)ok->queue.bytes);
}

/* Publish BODY to QUEUE with correlation id CORR, reply_to REPLY_TO (our
 * queue when NULL) and HEADERS (may be NULL). */
static void publish_raw(const char *queue, const char *body, size_t len, const char *corr,
                        const char *reply_to, const amqp_table_t *headers)
{
    amqp_basic_properties_t p = {0};

    p._flags = AMQP_BASIC_CORRELATION_ID_FLAG | AMQP_BASIC_REPLY_TO_FLAG;
    p.correlation_id = amqp_cstring_bytes(corr);
    p.reply_to = amqp_cstring_bytes(reply_to ? reply_to : replies);
    if (headers) {
        p._flags |= AMQP_BASIC_HEADERS_FLAG;
        p.headers = *headers;
    }
    cr_assert_eq(amqp_basic_publish(conn, CH, amqp_empty_bytes, amqp_cstring_bytes(queue), 0, 0, &p,
                                    (amqp_bytes_t){.len = len, .bytes = (void *)body}),
                 AMQP_STATUS_OK);
}

/* The next reply on our queue, which must answer CORR, parsed (\u0000
 * allowed). */
static json_t *next_reply_json(const char *corr)
{
    for (int waited = 0; waited <= 30000; waited += 20) {
        amqp_rpc_reply_t r = amqp_basic_get(conn, CH, amqp_cstring_bytes(replies), 1);
        amqp_message_t msg;
        json_t *j;

        if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
            r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_t *m = r.reply.decoded;
            cr_assert_fail("the broker closed our channel: %.*s", (int)m->reply_text.len,
                           (char *)m->reply_text.bytes);
        }
        if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
            r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            amqp_connection_close_t *m = r.reply.decoded;
            cr_assert_fail("the broker closed our connection: %.*s", (int)m->reply_text.len,
                           (char *)m->reply_text.bytes);
        }
        cr_assert_eq(r.reply_type, AMQP_RESPONSE_NORMAL, "basic.get failed: %s",
                     r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION
                         ? amqp_error_string2(r.library_error)
                         : "?");
        if (r.reply.id != AMQP_BASIC_GET_OK_METHOD) {
            usleep(20000);
            continue;
        }
        cr_assert_eq(amqp_read_message(conn, CH, &msg, 0).reply_type, AMQP_RESPONSE_NORMAL);
        cr_assert(msg.properties.correlation_id.len == strlen(corr) &&
                      memcmp(msg.properties.correlation_id.bytes, corr, strlen(corr)) == 0,
                  "expected the reply to %s: %.*s", corr, (int)msg.body.len,
                  (char *)msg.body.bytes);
        j = json_loadb(msg.body.bytes, msg.body.len, JSON_ALLOW_NUL, NULL);
        cr_assert_not_null(j, "not JSON: %.*s", (int)msg.body.len, (char *)msg.body.bytes);
        amqp_destroy_message(&msg);
        return j;
    }
    cr_assert_fail("no reply to %s", corr);
    return NULL;
}

/* Same workers as PIDS (N of them), none exited, QUEUE drained. */
static void expect_pool_intact(const pid_t *pids, int n, const char *queue)
{
    pid_t now[8];

    cr_expect_eq(wr_test_worker_pids(&w, now, 8), n);
    for (int i = 0; i < n; i++)
        cr_expect_eq(now[i], pids[i], "a worker was replaced");
    cr_expect_eq(wr_test_log_count(&w, " exited "), 0, "a worker exited");
    cr_expect_eq(wr_test_queue_stat(queue, "messages"), 0, "not everything was acked");
}

Test(bad_input, nul_in_a_string_comes_back_whole)
{
    static const char echo[] =
        "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[\"a\\u0000b\"],"
        "\"id\":1}";
    static const char nul_method[] = "{\"jsonrpc\":\"2.0\",\"method\":\"echo\\u0000x\",\"id\":2}";
    char raw_cfg[256], raw_queue[160];
    pid_t pids[8];
    int n;
    json_t *r, *s;

    wr_test_queue_name(w.queue, sizeof w.queue, "nul");
    snprintf(raw_queue, sizeof raw_queue, "%s.raw", w.queue);
    snprintf(raw_cfg, sizeof raw_cfg, "[route raw]\nqueue = %s\nformat = raw\nmethod = echo\n",
             raw_queue);
    wr_test_warren_start(&w, 1, raw_cfg, 1);
    n = wr_test_worker_pids(&w, pids, 8);
    open_conn();

    publish_raw(w.queue, echo, sizeof echo - 1, "nul", NULL, NULL);
    r = next_reply_json("nul");
    s = json_array_get(json_object_get(r, "result"), 0);
    cr_expect(json_is_string(s), "result: not [string]");
    cr_expect_eq(json_string_length(s), 3, "\"a\\u0000b\" came back cut");
    cr_expect(json_string_length(s) == 3 && memcmp(json_string_value(s), "a\0b", 3) == 0);
    json_decref(r);

    /* Read as a C string the method would be "echo": refused instead. */
    publish_raw(w.queue, nul_method, sizeof nul_method - 1, "nul-method", NULL, NULL);
    r = next_reply_json("nul-method");
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(r, "error"), "code")), -32600);
    json_decref(r);

    /* raw: the JSON string "a\u0000b" is the argument; echo's [string]
     * result goes back as JSON (it is an array). */
    publish_raw(raw_queue, "\"a\\u0000b\"", 10, "nul-raw", NULL, NULL);
    r = next_reply_json("nul-raw");
    s = json_array_get(r, 0);
    cr_expect_eq(json_string_length(s), 3, "raw: \"a\\u0000b\" came back cut");
    json_decref(r);

    expect_pool_intact(pids, n, w.queue);
    wr_amqp_close(conn);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}

/* A JSON-RPC batch of N calls of BODY_OF_ONE, joined (malloc'd). */
static char *batch(const char *one, int n)
{
    size_t len = strlen(one);
    char *b = malloc((len + 1) * (size_t)n + 3), *p = b;

    cr_assert_not_null(b);
    *p++ = '[';
    for (int i = 0; i < n; i++) {
        if (i)
            *p++ = ',';
        memcpy(p, one, len);
        p += len;
    }
    *p++ = ']';
    *p = '\0';
    return b;
}

Test(bad_input, batch_over_max_batch_is_one_invalid_request)
{
    char marker[400], one[600], *body;
    pid_t pids[8];
    int n;
    json_t *r, *e;

    wr_test_warren_start(&w, 1, NULL, 1); /* the default max_batch: 1000 */
    n = wr_test_worker_pids(&w, pids, 8);
    snprintf(marker, sizeof marker, "%s/ran", wr_test_warren_dir(&w));
    open_conn();

    /* 1001 calls: one error, id null, none of them run. */
    snprintf(one, sizeof one,
             "{\"jsonrpc\":\"2.0\",\"method\":\"test.touch\",\"params\":[\"%s\"],\"id\":1}",
             marker);
    body = batch(one, 1001);
    publish_raw(w.queue, body, strlen(body), "over", NULL, NULL);
    free(body);
    r = next_reply_json("over");
    cr_assert(json_is_object(r), "one error object, not an array of responses");
    e = json_object_get(r, "error");
    cr_expect_eq(json_integer_value(json_object_get(e, "code")), -32600);
    cr_expect_str_eq(json_string_value(json_object_get(e, "message")),
                     "Invalid Request: a batch of 1001 calls, over max_batch (1000)");
    cr_expect(json_is_null(json_object_get(r, "id")));
    json_decref(r);
    cr_expect_neq(access(marker, F_OK), 0, "a call of the refused batch ran");

    /* 1000 calls: all answered. */
    body = batch("{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[7],\"id\":1}", 1000);
    publish_raw(w.queue, body, strlen(body), "at", NULL, NULL);
    free(body);
    r = next_reply_json("at");
    cr_expect(json_is_array(r));
    cr_expect_eq(json_array_size(r), 1000);
    json_decref(r);

    cr_expect_eq(wr_test_log_count(&w, "over max_batch"), 1, "one log line");
    expect_pool_intact(pids, n, w.queue);
    wr_amqp_close(conn);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}

Test(bad_input, reply_to_a_missing_queue_costs_nothing)
{
    /* Default exchange to a queue nobody declared, and the same as an AMQP
     * 1.0 address. */
    static const char *const nowhere[] = {"warren-test-no-such-queue", "/queues/no-such-queue"};
    static const char call[] = "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[1],\"id\":1}";
    static const char slow[] =
        "{\"jsonrpc\":\"2.0\",\"method\":\"test.sleep\",\"params\":[1],\"id\":1}";
    amqp_connection_state_t gone;
    pid_t pids[8];
    int n;
    json_t *r;

    wr_test_warren_start(&w, 1, NULL, 1);
    n = wr_test_worker_pids(&w, pids, 8);
    open_conn();

    for (size_t i = 0; i < sizeof nowhere / sizeof *nowhere; i++) {
        char corr[16];

        snprintf(corr, sizeof corr, "lost%zu", i);
        publish_raw(w.queue, call, sizeof call - 1, corr, nowhere[i], NULL);
        /* The worker goes on answering others. */
        publish_raw(w.queue, call, sizeof call - 1, "after", NULL, NULL);
        r = next_reply_json("after");
        cr_expect_eq(json_integer_value(json_array_get(json_object_get(r, "result"), 0)), 1,
                     "after a reply to %s", nowhere[i]);
        json_decref(r);
    }

    /* A direct reply-to caller that hung up before its (1 s) reply. */
    gone = wr_test_amqp_connect();
    amqp_basic_consume(gone, CH, amqp_cstring_bytes("amq.rabbitmq.reply-to"), amqp_empty_bytes, 0,
                       1, 0, amqp_empty_table);
    cr_assert_eq(amqp_get_rpc_reply(gone).reply_type, AMQP_RESPONSE_NORMAL);
    {
        amqp_basic_properties_t p = {0};

        p._flags = AMQP_BASIC_CORRELATION_ID_FLAG | AMQP_BASIC_REPLY_TO_FLAG;
        p.correlation_id = amqp_cstring_bytes("gone");
        p.reply_to = amqp_cstring_bytes("amq.rabbitmq.reply-to");
        cr_assert_eq(amqp_basic_publish(gone, CH, amqp_empty_bytes, amqp_cstring_bytes(w.queue), 0,
                                        0, &p, amqp_cstring_bytes(slow)),
                     AMQP_STATUS_OK);
    }
    wr_amqp_close(gone);
    publish_raw(w.queue, call, sizeof call - 1, "after-gone", NULL, NULL);
    r = next_reply_json("after-gone");
    cr_expect_eq(json_integer_value(json_array_get(json_object_get(r, "result"), 0)), 1);
    json_decref(r);

    cr_expect_eq(wr_test_log_count(&w, "connection lost"), 0, "the worker lost its connection");
    cr_expect_eq(wr_test_log_count(&w, "broker closed"), 0, "the broker closed the channel");
    expect_pool_intact(pids, n, w.queue);
    wr_amqp_close(conn);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}

/* Header helpers: entry I of E is KEY of KIND. */
static amqp_field_value_t *hdr(amqp_table_entry_t *e, int *i, const char *key, uint8_t kind)
{
    e[*i].key = amqp_cstring_bytes(key);
    e[*i].value.kind = kind;
    return &e[(*i)++].value;
}

Test(bad_input, headers_of_every_field_type_reach_the_handler)
{
    enum { DEEP = 1000 };
    static amqp_table_entry_t e[40], inner[2], innermost[1];
    static amqp_field_value_t list[3], sublist[1], deep[DEEP];
    static char long_string[60000];
    static const char body[] = "{\"jsonrpc\":\"2.0\",\"method\":\"test.message\",\"id\":1}";
    amqp_table_t t;
    pid_t pids[8];
    int n, k = 0;
    json_t *r, *h, *want;
    char *text;

    /* Classic: a quorum queue re-encodes headers (a u64 arrives as an
     * i64), and this test is about what warren makes of each kind. */
    wr_test_warren_start(&w, 1, "queue_type = classic\n", 1);
    n = wr_test_worker_pids(&w, pids, 8);
    open_conn();

    hdr(e, &k, "bool", AMQP_FIELD_KIND_BOOLEAN)->value.boolean = 1;
    hdr(e, &k, "i8", AMQP_FIELD_KIND_I8)->value.i8 = -8;
    hdr(e, &k, "u8", AMQP_FIELD_KIND_U8)->value.u8 = 200;
    hdr(e, &k, "i16", AMQP_FIELD_KIND_I16)->value.i16 = -300;
    hdr(e, &k, "u16", AMQP_FIELD_KIND_U16)->value.u16 = 60000;
    hdr(e, &k, "i32", AMQP_FIELD_KIND_I32)->value.i32 = -70000;
    hdr(e, &k, "u32", AMQP_FIELD_KIND_U32)->value.u32 = 4000000000U;
    hdr(e, &k, "i64", AMQP_FIELD_KIND_I64)->value.i64 = -5000000000000LL;
    hdr(e, &k, "u64", AMQP_FIELD_KIND_U64)->value.u64 = UINT64_MAX;
    hdr(e, &k, "float", AMQP_FIELD_KIND_F32)->value.f32 = 1.5f;
    hdr(e, &k, "double", AMQP_FIELD_KIND_F64)->value.f64 = 2.25;
    /* (A NaN double would never get here: RabbitMQ closes the connection
     * of a publisher that sends one.  test_deadline covers it.) */
    hdr(e, &k, "decimal", AMQP_FIELD_KIND_DECIMAL)->value.decimal =
        (amqp_decimal_t){.decimals = 2, .value = 12345};
    hdr(e, &k, "short", AMQP_FIELD_KIND_UTF8)->value.bytes = amqp_cstring_bytes("hi");
    memset(long_string, 'x', sizeof long_string);
    hdr(e, &k, "long", AMQP_FIELD_KIND_UTF8)->value.bytes =
        (amqp_bytes_t){.len = sizeof long_string, .bytes = long_string};
    hdr(e, &k, "empty", AMQP_FIELD_KIND_UTF8)->value.bytes = amqp_empty_bytes;
    hdr(e, &k, "not-utf8", AMQP_FIELD_KIND_UTF8)->value.bytes =
        (amqp_bytes_t){.len = 2, .bytes = "\xff\xfe"};
    hdr(e, &k, "bytes", AMQP_FIELD_KIND_BYTES)->value.bytes = amqp_cstring_bytes("raw");
    hdr(e, &k, "binary", AMQP_FIELD_KIND_BYTES)->value.bytes =
        (amqp_bytes_t){.len = 3, .bytes = "\x00\x80\xff"};
    hdr(e, &k, "timestamp", AMQP_FIELD_KIND_TIMESTAMP)->value.u64 = 1733100000;
    hdr(e, &k, "void", AMQP_FIELD_KIND_VOID);
    /* [1, "two", [true]] */
    list[0] = (amqp_field_value_t){.kind = AMQP_FIELD_KIND_I32, .value.i32 = 1};
    list[1] = (amqp_field_value_t){.kind = AMQP_FIELD_KIND_UTF8,
                                   .value.bytes = amqp_cstring_bytes("two")};
    sublist[0] = (amqp_field_value_t){.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = 1};
    list[2] = (amqp_field_value_t){.kind = AMQP_FIELD_KIND_ARRAY,
                                   .value.array = {.num_entries = 1, .entries = sublist}};
    hdr(e, &k, "array", AMQP_FIELD_KIND_ARRAY)->value.array =
        (amqp_array_t){.num_entries = 3, .entries = list};
    hdr(e, &k, "empty-array", AMQP_FIELD_KIND_ARRAY)->value.array =
        (amqp_array_t){.num_entries = 0, .entries = NULL};
    /* {"a": {"b": 1}, "c": "d"} */
    innermost[0] = (amqp_table_entry_t){.key = amqp_cstring_bytes("b"),
                                        .value = {.kind = AMQP_FIELD_KIND_U8, .value.u8 = 1}};
    inner[0] =
        (amqp_table_entry_t){.key = amqp_cstring_bytes("a"),
                             .value = {.kind = AMQP_FIELD_KIND_TABLE,
                                       .value.table = {.num_entries = 1, .entries = innermost}}};
    inner[1] = (amqp_table_entry_t){
        .key = amqp_cstring_bytes("c"),
        .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes("d")}};
    hdr(e, &k, "table", AMQP_FIELD_KIND_TABLE)->value.table =
        (amqp_table_t){.num_entries = 2, .entries = inner};
    /* Arrays in arrays, DEEP levels: cut off at 64. */
    for (int i = 0; i < DEEP; i++) {
        deep[i].kind = AMQP_FIELD_KIND_ARRAY;
        deep[i].value.array = (amqp_array_t){.num_entries = i + 1 < DEEP ? 1 : 0,
                                             .entries = i + 1 < DEEP ? &deep[i + 1] : NULL};
    }
    *hdr(e, &k, "deep", AMQP_FIELD_KIND_ARRAY) = deep[0];
    t = (amqp_table_t){.num_entries = k, .entries = e};

    publish_raw(w.queue, body, sizeof body - 1, "headers", NULL, &t);
    r = next_reply_json("headers");
    h = json_object_get(json_object_get(r, "result"), "headers");
    cr_assert(json_is_object(h), "no headers in the reply");
    {
        json_t *d = json_object_get(h, "deep");
        int depth = 0;

        for (; json_is_array(d); d = json_array_get(d, 0))
            depth++;
        cr_expect_eq(depth, 64, "nested arrays cut at 64");
        cr_expect(json_is_null(d));
        cr_expect_eq(json_string_length(json_object_get(h, "long")), sizeof long_string);
        json_object_del(h, "deep");
        json_object_del(h, "long");
    }
    want = json_loads("{\"bool\": true, \"i8\": -8, \"u8\": 200, \"i16\": -300, \"u16\": 60000,"
                      " \"i32\": -70000, \"u32\": 4000000000, \"i64\": -5000000000000,"
                      " \"u64\": \"18446744073709551615\", \"float\": 1.5, \"double\": 2.25,"
                      " \"decimal\": \"123.45\", \"short\": \"hi\", \"empty\": \"\","
                      " \"not-utf8\": null, \"bytes\": \"raw\", \"binary\": null,"
                      " \"timestamp\": 1733100000, \"void\": null, \"array\": [1, \"two\", [true]],"
                      " \"empty-array\": [], \"table\": {\"a\": {\"b\": 1}, \"c\": \"d\"}}",
                      0, NULL);
    cr_assert_not_null(want);
    text = json_dumps(h, JSON_COMPACT | JSON_SORT_KEYS);
    cr_expect(json_equal(h, want), "headers as the handler saw them: %s", text);
    free(text);
    json_decref(want);
    json_decref(r);

    /* And the worker goes on. */
    publish_raw(w.queue, "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[2],\"id\":2}", 53,
                "next", NULL, NULL);
    r = next_reply_json("next");
    cr_expect_eq(json_integer_value(json_array_get(json_object_get(r, "result"), 0)), 2);
    json_decref(r);
    expect_pool_intact(pids, n, w.queue);
    wr_amqp_close(conn);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}
