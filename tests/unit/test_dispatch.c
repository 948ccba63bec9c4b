/*
 * worker/dispatch.c: what is sent back for a body, with the shipped echo
 * and test plugins loaded.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "worker/dispatch.h"
#include "worker/plugin_loader.h"

static wr_plugins *plugins;
static const wr_route route = {.name = "test", .queue = "q", .format = WR_FORMAT_JSONRPC};

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

    wr_dispatch_prepare(&job, &route, body, strlen(body), 1024);
    wr_dispatch_run(&job, plugins);
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

    wr_dispatch_prepare(&job, &route, body, strlen(body), 1024);
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
