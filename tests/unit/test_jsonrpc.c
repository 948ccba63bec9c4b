/*
 * Unit tests for worker/jsonrpc.c: every error code the decoder can give,
 * the shapes of single, batch and notification calls, and the response
 * builders with their compact encoding.  Bodies are plain strings, as they
 * arrive from the broker.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "worker/jsonrpc.h"

static void decode(wr_rpc_request *req, const char *body)
{
    wr_jsonrpc_decode(body, strlen(body), req);
}

/* Compact encoding of V, compared as a string: the exact bytes matter to
 * clients that log or diff replies. */
static void assert_encodes_to(const json_t *v, const char *expected)
{
    size_t len = 0;
    char *s = wr_jsonrpc_encode(v, &len);

    cr_assert_not_null(s);
    cr_assert_str_eq(s, expected);
    cr_assert_eq(len, strlen(expected));
    free(s);
}

/* RESP is an error response with CODE, a message starting with PREFIX,
 * and an id that encodes as ID (e.g. "null", "7", "\"a\""). */
static void assert_error(const json_t *resp, int code, const char *prefix, const char *id)
{
    json_t *err, *msg;
    char *id_text;

    cr_assert_not_null(resp);
    cr_assert_str_eq(json_string_value(json_object_get(resp, "jsonrpc")), "2.0");
    cr_assert_null(json_object_get(resp, "result"));
    err = json_object_get(resp, "error");
    cr_assert(json_is_object(err));
    cr_assert_eq(json_integer_value(json_object_get(err, "code")), code);
    msg = json_object_get(err, "message");
    cr_assert(json_is_string(msg));
    cr_assert(strncmp(json_string_value(msg), prefix, strlen(prefix)) == 0,
              "message \"%s\" does not start with \"%s\"", json_string_value(msg), prefix);
    cr_assert_not_null(json_object_get(resp, "id"), "an error response always has an id");
    id_text = json_dumps(json_object_get(resp, "id"), JSON_ENCODE_ANY);
    cr_assert_str_eq(id_text, id);
    free(id_text);
}

/* A body that cannot be read as calls at all. */
static void assert_whole_body_error(const char *body, size_t len, int code, const char *prefix)
{
    wr_rpc_request req;

    wr_jsonrpc_decode(body, len, &req);
    cr_assert_eq(req.ncalls, 0);
    cr_assert_null(req.calls);
    assert_error(req.error, code, prefix, "null");
    wr_jsonrpc_request_free(&req);
}

/* ---- happy paths ---------------------------------------------------- */

Test(jsonrpc, single_call_with_array_params)
{
    wr_rpc_request req;

    decode(&req, "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[1,\"two\"],\"id\":7}");
    cr_assert_null(req.error);
    cr_assert_not_null(req.root);
    cr_assert_eq(req.batch, 0);
    cr_assert_eq(req.ncalls, 1);
    cr_assert_null(req.calls[0].error);
    cr_assert_str_eq(req.calls[0].method, "echo");
    cr_assert(json_is_array(req.calls[0].params));
    cr_assert_eq(json_array_size(req.calls[0].params), 2);
    cr_assert_eq(json_integer_value(req.calls[0].id), 7);
    wr_jsonrpc_request_free(&req);
}

Test(jsonrpc, single_call_with_object_params)
{
    wr_rpc_request req;

    decode(&req, "{\"jsonrpc\":\"2.0\",\"method\":\"test.sleep\",\"params\":{\"seconds\":1},"
                 "\"id\":\"a\"}");
    cr_assert_eq(req.ncalls, 1);
    cr_assert_null(req.calls[0].error);
    cr_assert(json_is_object(req.calls[0].params));
    cr_assert_str_eq(json_string_value(req.calls[0].id), "a");
    wr_jsonrpc_request_free(&req);
}

Test(jsonrpc, params_may_be_absent)
{
    wr_rpc_request req;

    decode(&req, "{\"jsonrpc\":\"2.0\",\"method\":\"time\",\"id\":1}");
    cr_assert_null(req.calls[0].error);
    cr_assert_str_eq(req.calls[0].method, "time");
    cr_assert_null(req.calls[0].params);
    wr_jsonrpc_request_free(&req);
}

Test(jsonrpc, notification_has_no_id)
{
    wr_rpc_request req;

    decode(&req, "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[]}");
    cr_assert_eq(req.ncalls, 1);
    cr_assert_null(req.calls[0].error);
    cr_assert_null(req.calls[0].id, "no id member: a notification");
    cr_assert_str_eq(req.calls[0].method, "echo");
    wr_jsonrpc_request_free(&req);
}

Test(jsonrpc, id_types_string_number_null)
{
    static const char *const bodies[] = {
        "{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"id\":\"q538\"}",
        "{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"id\":-12}",
        "{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"id\":1.5}",
        "{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"id\":null}",
    };
    static const char *const ids[] = {"\"q538\"", "-12", "1.5", "null"};

    for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
        wr_rpc_request req;
        char *id;

        decode(&req, bodies[i]);
        cr_assert_null(req.calls[0].error, "%s", bodies[i]);
        /* "id": null is a call that wants a reply, not a notification. */
        cr_assert_not_null(req.calls[0].id, "%s", bodies[i]);
        id = json_dumps(req.calls[0].id, JSON_ENCODE_ANY);
        cr_assert_str_eq(id, ids[i]);
        free(id);
        wr_jsonrpc_request_free(&req);
    }
}

Test(jsonrpc, duplicate_keys_last_one_wins)
{
    wr_rpc_request req;

    decode(&req, "{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"method\":\"b\",\"id\":1}");
    cr_assert_null(req.calls[0].error);
    cr_assert_str_eq(req.calls[0].method, "b");
    wr_jsonrpc_request_free(&req);
}

Test(jsonrpc, unicode_method_and_unknown_members_are_fine)
{
    wr_rpc_request req;

    decode(&req, "{\"jsonrpc\":\"2.0\",\"method\":\"caf\xc3\xa9\",\"extra\":true,\"id\":1}");
    cr_assert_null(req.calls[0].error);
    cr_assert_str_eq(req.calls[0].method, "caf\xc3\xa9");
    wr_jsonrpc_request_free(&req);
}

Test(jsonrpc, batch_of_valid_calls)
{
    wr_rpc_request req;

    decode(&req, " [ {\"jsonrpc\":\"2.0\",\"method\":\"a\",\"id\":1},\n"
                 "   {\"jsonrpc\":\"2.0\",\"method\":\"b\",\"params\":{},\"id\":2} ] ");
    cr_assert_null(req.error);
    cr_assert_eq(req.batch, 1);
    cr_assert_eq(req.ncalls, 2);
    cr_assert_str_eq(req.calls[0].method, "a");
    cr_assert_str_eq(req.calls[1].method, "b");
    cr_assert_eq(json_integer_value(req.calls[1].id), 2);
    wr_jsonrpc_request_free(&req);
}

Test(jsonrpc, batch_of_one_is_still_a_batch)
{
    wr_rpc_request req;

    decode(&req, "[{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"id\":1}]");
    cr_assert_eq(req.batch, 1, "the reply must be an array too");
    cr_assert_eq(req.ncalls, 1);
    wr_jsonrpc_request_free(&req);
}

/* The JSON-RPC 2.0 spec's own mixed example, plus the cases it leaves to
 * us: an invalid entry with a readable id, and bad params in a call and in
 * a notification. */
Test(jsonrpc, mixed_batch)
{
    wr_rpc_request req;

    decode(&req, "["
                 "{\"jsonrpc\":\"2.0\",\"method\":\"sum\",\"params\":[1,2,4],\"id\":\"1\"},"
                 "{\"jsonrpc\":\"2.0\",\"method\":\"notify_hello\",\"params\":[7]},"
                 "{\"foo\":\"boo\"},"
                 "1,"
                 "{\"jsonrpc\":\"2.0\",\"method\":1,\"id\":\"x\"},"
                 "{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":\"p\",\"id\":4},"
                 "{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":5}"
                 "]");
    cr_assert_null(req.error);
    cr_assert_eq(req.batch, 1);
    cr_assert_eq(req.ncalls, 7);

    cr_assert_null(req.calls[0].error);
    cr_assert_str_eq(req.calls[0].method, "sum");
    cr_assert_str_eq(json_string_value(req.calls[0].id), "1");

    cr_assert_null(req.calls[1].error);
    cr_assert_null(req.calls[1].id);
    cr_assert_str_eq(req.calls[1].method, "notify_hello");

    /* Invalid entries are answered even without an id: id is null. */
    cr_assert(json_is_null(req.calls[2].id));
    cr_assert_null(req.calls[2].method);
    assert_error(req.calls[2].error, -32600, "Invalid Request: jsonrpc", "null");

    cr_assert(json_is_null(req.calls[3].id));
    assert_error(req.calls[3].error, -32600, "Invalid Request: batch entry must be an object",
                 "null");

    /* Readable id: echoed, so the caller can tell which entry was bad. */
    cr_assert_str_eq(json_string_value(req.calls[4].id), "x");
    assert_error(req.calls[4].error, -32600, "Invalid Request: method must be a string", "\"x\"");

    cr_assert_eq(json_integer_value(req.calls[5].id), 4);
    cr_assert_null(req.calls[5].method);
    assert_error(req.calls[5].error, -32602, "Invalid params", "4");

    /* A notification with bad params carries the error, but no id: the
     * dispatcher sends nothing for it. */
    cr_assert_null(req.calls[6].id);
    assert_error(req.calls[6].error, -32602, "Invalid params", "null");
    wr_jsonrpc_request_free(&req);
}

/* ---- -32700 parse error --------------------------------------------- */

Test(jsonrpc, empty_body_is_a_parse_error)
{
    assert_whole_body_error("", 0, -32700, "Parse error: empty body");
}

Test(jsonrpc, whitespace_body_is_a_parse_error)
{
    assert_whole_body_error(" \n\t", 3, -32700, "Parse error:");
}

Test(jsonrpc, truncated_json_says_where)
{
    wr_rpc_request req;
    const char *msg;

    decode(&req, "{\"jsonrpc\":");
    cr_assert_null(req.root);
    assert_error(req.error, -32700, "Parse error:", "null");
    msg = json_string_value(json_object_get(json_object_get(req.error, "error"), "message"));
    cr_assert(strstr(msg, "line 1 column") != NULL, "no position in \"%s\"", msg);
    wr_jsonrpc_request_free(&req);
}

Test(jsonrpc, invalid_utf8_is_a_parse_error)
{
    const char body[] = "{\"jsonrpc\":\"2.0\",\"method\":\"\xff\xfe\",\"id\":1}";
    assert_whole_body_error(body, sizeof body - 1, -32700, "Parse error:");
}

Test(jsonrpc, overlong_utf8_is_a_parse_error)
{
    /* "/" encoded in two bytes: a classic way to smuggle characters. */
    const char body[] = "{\"jsonrpc\":\"2.0\",\"method\":\"\xc0\xaf\",\"id\":1}";
    assert_whole_body_error(body, sizeof body - 1, -32700, "Parse error:");
}

Test(jsonrpc, nul_in_a_string_is_accepted_whole)
{
    /* Valid JSON: the string reaches the handler whole, length 3. */
    const char body[] = "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[\"a\\u0000b\"],"
                        "\"id\":1}";
    wr_rpc_request req;
    json_t *s;

    wr_jsonrpc_decode(body, sizeof body - 1, &req);
    cr_assert_null(req.error);
    cr_assert_null(req.calls[0].error);
    s = json_array_get(req.calls[0].params, 0);
    cr_assert_eq(json_string_length(s), 3);
    cr_assert(memcmp(json_string_value(s), "a\0b", 3) == 0);
    wr_jsonrpc_request_free(&req);
}

Test(jsonrpc, nul_in_a_method_name_is_an_invalid_request)
{
    /* Read as a C string, "echo\u0000x" would call echo. */
    const char body[] = "{\"jsonrpc\":\"2.0\",\"method\":\"echo\\u0000x\",\"id\":1}";
    wr_rpc_request req;

    wr_jsonrpc_decode(body, sizeof body - 1, &req);
    cr_assert_null(req.error);
    cr_assert_eq(req.ncalls, 1);
    cr_assert_null(req.calls[0].method);
    assert_error(req.calls[0].error, -32600, "Invalid Request: method must not contain", "1");
    wr_jsonrpc_request_free(&req);
}

Test(jsonrpc, nul_in_a_key_is_a_parse_error)
{
    const char body[] = "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"a\\u0000b\":1,\"id\":1}";
    assert_whole_body_error(body, sizeof body - 1, -32700,
                            "Parse error: \\u0000 is not allowed in object keys at line 1");
}

Test(jsonrpc, id_with_nul_makes_no_routing_key)
{
    json_t *id = json_stringn("a\0b", 3);

    cr_assert_null(wr_jsonrpc_id_text(id));
    json_decref(id);
}

Test(jsonrpc, raw_nul_byte_is_a_parse_error)
{
    const char body[] = "{\"jsonrpc\":\"2.0\"}\0{}";
    assert_whole_body_error(body, sizeof body - 1, -32700, "Parse error:");
}

Test(jsonrpc, trailing_garbage_is_a_parse_error)
{
    const char body[] = "{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"id\":1} x";
    assert_whole_body_error(body, sizeof body - 1, -32700, "Parse error:");
}

Test(jsonrpc, body_is_read_by_length_not_nul)
{
    /* Only the first LEN bytes count; the rest of the buffer is not ours. */
    const char buf[] = "{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"id\":1}GARBAGE";
    wr_rpc_request req;

    wr_jsonrpc_decode(buf, sizeof buf - 1 - strlen("GARBAGE"), &req);
    cr_assert_null(req.error);
    cr_assert_str_eq(req.calls[0].method, "m");
    wr_jsonrpc_request_free(&req);
}

/* ---- -32600 invalid request ----------------------------------------- */

Test(jsonrpc, scalar_bodies_are_invalid_requests)
{
    static const char *const bodies[] = {"42", "\"echo\"", "null", "true", "1.5"};

    for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++)
        assert_whole_body_error(bodies[i], strlen(bodies[i]), -32600,
                                "Invalid Request: expected an object or an array");
}

/* A batch of N echo calls, as JSON text (malloc'd). */
static char *batch_of(size_t n)
{
    static const char call[] = "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":1}";
    char *body = malloc(n * sizeof call + 3), *p = body;

    cr_assert_not_null(body);
    *p++ = '[';
    for (size_t i = 0; i < n; i++) {
        if (i)
            *p++ = ',';
        memcpy(p, call, sizeof call - 1);
        p += sizeof call - 1;
    }
    *p++ = ']';
    *p = '\0';
    return body;
}

Test(jsonrpc, batch_over_max_batch_is_one_invalid_request)
{
    wr_rpc_request req;
    char *body = batch_of(1001);

    wr_jsonrpc_decode_max(body, strlen(body), 1000, &req);
    cr_assert_eq(req.ncalls, 0, "none of its calls is decoded");
    cr_assert_null(req.calls);
    assert_error(req.error, -32600, "Invalid Request: a batch of 1001 calls, over max_batch (1000)",
                 "null");
    wr_jsonrpc_request_free(&req);
    free(body);

    /* At the limit, and without one. */
    body = batch_of(1000);
    wr_jsonrpc_decode_max(body, strlen(body), 1000, &req);
    cr_assert_null(req.error);
    cr_assert_eq(req.ncalls, 1000);
    wr_jsonrpc_request_free(&req);
    free(body);
    body = batch_of(3);
    wr_jsonrpc_decode_max(body, strlen(body), 2, &req);
    cr_assert_not_null(req.error);
    wr_jsonrpc_request_free(&req);
    wr_jsonrpc_decode_max(body, strlen(body), 0, &req);
    cr_assert_eq(req.ncalls, 3);
    wr_jsonrpc_request_free(&req);
    free(body);
}

Test(jsonrpc, empty_batch_is_an_invalid_request)
{
    wr_rpc_request req;

    decode(&req, "[]");
    cr_assert_eq(req.ncalls, 0);
    assert_error(req.error, -32600, "Invalid Request: empty batch", "null");
    wr_jsonrpc_request_free(&req);
}

Test(jsonrpc, jsonrpc_member_must_be_exactly_2_0)
{
    static const char *const bodies[] = {
        "{\"method\":\"m\",\"id\":1}",
        "{\"jsonrpc\":\"1.0\",\"method\":\"m\",\"id\":1}",
        "{\"jsonrpc\":\"2.0 \",\"method\":\"m\",\"id\":1}",
        "{\"jsonrpc\":2.0,\"method\":\"m\",\"id\":1}",
        "{\"jsonrpc\":null,\"method\":\"m\",\"id\":1}",
    };

    for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
        wr_rpc_request req;

        decode(&req, bodies[i]);
        cr_assert_null(req.error);
        cr_assert_eq(req.ncalls, 1);
        cr_assert_null(req.calls[0].method);
        assert_error(req.calls[0].error, -32600, "Invalid Request: jsonrpc must be \"2.0\"", "1");
        wr_jsonrpc_request_free(&req);
    }
}

Test(jsonrpc, method_missing)
{
    wr_rpc_request req;

    decode(&req, "{\"jsonrpc\":\"2.0\",\"id\":\"a\"}");
    assert_error(req.calls[0].error, -32600, "Invalid Request: method is missing", "\"a\"");
    wr_jsonrpc_request_free(&req);
}

Test(jsonrpc, method_not_a_string)
{
    static const char *const bodies[] = {
        "{\"jsonrpc\":\"2.0\",\"method\":1,\"id\":1}",
        "{\"jsonrpc\":\"2.0\",\"method\":null,\"id\":1}",
        "{\"jsonrpc\":\"2.0\",\"method\":[\"echo\"],\"id\":1}",
    };

    for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
        wr_rpc_request req;

        decode(&req, bodies[i]);
        cr_assert_null(req.calls[0].method);
        assert_error(req.calls[0].error, -32600, "Invalid Request: method must be a string", "1");
        wr_jsonrpc_request_free(&req);
    }
}

Test(jsonrpc, invalid_request_without_id_is_still_answered)
{
    wr_rpc_request req;

    decode(&req, "{\"jsonrpc\":\"2.0\",\"method\":1,\"params\":\"bar\"}");
    cr_assert_not_null(req.calls[0].id, "a reply is owed");
    cr_assert(json_is_null(req.calls[0].id));
    assert_error(req.calls[0].error, -32600, "Invalid Request: method must be a string", "null");
    wr_jsonrpc_request_free(&req);
}

Test(jsonrpc, id_of_wrong_type_is_an_invalid_request_with_null_id)
{
    static const char *const bodies[] = {
        "{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"id\":{\"a\":1}}",
        "{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"id\":[1]}",
        "{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"id\":true}",
    };

    for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
        wr_rpc_request req;

        decode(&req, bodies[i]);
        cr_assert(json_is_null(req.calls[0].id));
        cr_assert_null(req.calls[0].method);
        assert_error(req.calls[0].error, -32600, "Invalid Request: id must be", "null");
        wr_jsonrpc_request_free(&req);
    }
}

/* ---- -32602 invalid params ------------------------------------------ */

Test(jsonrpc, params_neither_array_nor_object)
{
    static const char *const bodies[] = {
        "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":\"x\",\"id\":9}",
        "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":3,\"id\":9}",
        "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":null,\"id\":9}",
        "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":false,\"id\":9}",
    };

    for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
        wr_rpc_request req;

        decode(&req, bodies[i]);
        cr_assert_eq(json_integer_value(req.calls[0].id), 9);
        cr_assert_null(req.calls[0].method);
        cr_assert_null(req.calls[0].params);
        assert_error(req.calls[0].error, -32602,
                     "Invalid params: params must be an array or an object", "9");
        wr_jsonrpc_request_free(&req);
    }
}

Test(jsonrpc, notification_with_bad_params_keeps_no_id)
{
    wr_rpc_request req;

    decode(&req, "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":1}");
    cr_assert_null(req.calls[0].id, "still a notification: nothing is sent");
    assert_error(req.calls[0].error, -32602, "Invalid params", "null");
    wr_jsonrpc_request_free(&req);
}

/* ---- builders and encoding ------------------------------------------ */

Test(jsonrpc, result_builder)
{
    json_t *id = json_integer(7);
    json_t *resp = wr_jsonrpc_result(id, json_pack("[i,s]", 1, "two"));

    assert_encodes_to(resp, "{\"jsonrpc\":\"2.0\",\"result\":[1,\"two\"],\"id\":7}");
    /* ID is borrowed: the response holds its own reference. */
    cr_assert_eq(id->refcount, 2);
    json_decref(resp);
    cr_assert_eq(id->refcount, 1);
    json_decref(id);
}

Test(jsonrpc, result_builder_nulls)
{
    json_t *resp = wr_jsonrpc_result(NULL, NULL);

    assert_encodes_to(resp, "{\"jsonrpc\":\"2.0\",\"result\":null,\"id\":null}");
    json_decref(resp);
}

Test(jsonrpc, result_builder_steals_result)
{
    json_t *result = json_string("kept alive by the response only");
    json_t *resp;

    json_incref(result); /* so the test can watch the count */
    resp = wr_jsonrpc_result(NULL, result);
    cr_assert_eq(result->refcount, 2);
    json_decref(resp);
    cr_assert_eq(result->refcount, 1);
    json_decref(result);
}

Test(jsonrpc, error_builder_with_data)
{
    json_t *id = json_string("q538");
    json_t *resp = wr_jsonrpc_error(id, 1001, "test.fail: failure requested", json_pack("[i]", 1));

    assert_encodes_to(resp, "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":1001,\"message\":"
                            "\"test.fail: failure requested\",\"data\":[1]},\"id\":\"q538\"}");
    json_decref(resp);
    cr_assert_eq(id->refcount, 1);
    json_decref(id);
}

Test(jsonrpc, error_builder_without_data_or_message)
{
    json_t *resp = wr_jsonrpc_error(NULL, WARREN_ERR_METHOD_NOT_FOUND, NULL, NULL);

    assert_encodes_to(resp, "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32601,\"message\":"
                            "\"Method not found\"},\"id\":null}");
    json_decref(resp);
}

Test(jsonrpc, error_builder_survives_invalid_utf8_message)
{
    /* e.g. a handler message cut in the middle of a multibyte character */
    json_t *resp = wr_jsonrpc_error(NULL, 1, "bad caf\xc3", NULL);

    assert_encodes_to(resp, "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":1,\"message\":"
                            "\"bad caf?\"},\"id\":null}");
    json_decref(resp);
}

Test(jsonrpc, encode_batch_response_and_unicode)
{
    json_t *batch = json_array();
    json_t *id = json_integer(1);

    json_array_append_new(batch, wr_jsonrpc_result(id, json_string("caf\xc3\xa9")));
    json_array_append_new(batch, wr_jsonrpc_error(NULL, WARREN_ERR_INVALID_REQUEST, NULL, NULL));
    assert_encodes_to(batch, "[{\"jsonrpc\":\"2.0\",\"result\":\"caf\xc3\xa9\",\"id\":1},"
                             "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32600,\"message\":"
                             "\"Invalid Request\"},\"id\":null}]");
    json_decref(batch);
    json_decref(id);
}

Test(jsonrpc, encode_without_len)
{
    json_t *resp = wr_jsonrpc_result(NULL, json_true());
    char *s = wr_jsonrpc_encode(resp, NULL);

    cr_assert_str_eq(s, "{\"jsonrpc\":\"2.0\",\"result\":true,\"id\":null}");
    free(s);
    json_decref(resp);
}

/* The call path's writer gives what the builder and the encoder give,
 * byte for byte, for every kind of result and id, a result larger than
 * its stack buffer included; it borrows both. */
Test(jsonrpc, encode_result_matches_the_built_response)
{
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    json_t *results[] = {NULL,
                         json_null(),
                         json_true(),
                         json_integer(-42),
                         json_real(0.1),
                         json_string("caf\xc3\xa9 \"quoted\" \\ \n"),
                         json_pack("[i,s,{s:[]}]", 1, "two", "three"),
                         json_pack("{s:i,s:{s:n}}", "b", 2, "a", "c"),
                         json_string(big),
                         json_pack("[s,s]", big, big)};
    json_t *ids[] = {NULL, json_integer(7), json_string("q-\xc3\xa9\"1"), json_null()};

    for (size_t i = 0; i < sizeof results / sizeof results[0]; i++) {
        for (size_t j = 0; j < sizeof ids / sizeof ids[0]; j++) {
            json_t *resp = wr_jsonrpc_result(ids[j], json_incref(results[i]));
            size_t want_len, got_len;
            char *want = wr_jsonrpc_encode(resp, &want_len);
            char *got = wr_jsonrpc_encode_result(ids[j], results[i], &got_len);

            cr_assert_str_eq(got, want, "result %zu, id %zu", i, j);
            cr_assert_eq(got_len, want_len);
            cr_assert_eq(strlen(got), got_len);
            free(want);
            free(got);
            json_decref(resp);
        }
    }
    for (size_t i = 0; i < sizeof results / sizeof results[0]; i++) {
        /* borrowed: back to the test's own reference (singletons aside) */
        if (results[i] && results[i]->refcount != (size_t)-1)
            cr_assert_eq(results[i]->refcount, 1, "result %zu", i);
        json_decref(results[i]);
    }
    for (size_t j = 0; j < sizeof ids / sizeof ids[0]; j++)
        json_decref(ids[j]);
}

/* The encoder grows its buffer while jansson writes: every length around
 * the doublings, up to a 64 KiB reply, comes out as jansson's own
 * json_dumps writes it. */
Test(jsonrpc, encode_matches_jansson_at_every_size)
{
    static char text[65537];
    size_t sizes[] = {0, 1, 200, 226, 227, 228, 229, 230, 255, 256, 511, 512, 1000, 4093, 65536};

    json_t *id = json_integer(1);

    memset(text, 'y', sizeof text - 1);
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        json_t *result = json_stringn(text, sizes[k]);
        json_t *resp = wr_jsonrpc_result(id, json_incref(result));
        char *want = json_dumps(resp, JSON_COMPACT);
        size_t len = 0;
        char *got = wr_jsonrpc_encode(resp, &len);

        cr_assert_not_null(got, "size %zu", sizes[k]);
        cr_assert_str_eq(got, want, "size %zu", sizes[k]);
        cr_assert_eq(len, strlen(want), "size %zu", sizes[k]);
        free(got);
        got = wr_jsonrpc_encode_result(id, result, &len);
        cr_assert_str_eq(got, want, "size %zu", sizes[k]);
        cr_assert_eq(len, strlen(want), "size %zu", sizes[k]);
        free(got);
        free(want);
        json_decref(resp);
        json_decref(result);
    }
    json_decref(id);
}

Test(jsonrpc, decoded_error_responses_encode)
{
    wr_rpc_request req;

    decode(&req, "[1]");
    assert_encodes_to(req.calls[0].error,
                      "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32600,\"message\":"
                      "\"Invalid Request: batch entry must be an object\"},\"id\":null}");
    wr_jsonrpc_request_free(&req);
}

Test(jsonrpc, request_free_is_idempotent)
{
    wr_rpc_request req;

    decode(&req, "[{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"id\":1}, 2]");
    wr_jsonrpc_request_free(&req);
    wr_jsonrpc_request_free(&req); /* zeroed by the first call */
    wr_jsonrpc_request_free(NULL);
    cr_assert_null(req.root);
    cr_assert_eq(req.ncalls, 0);
}

Test(jsonrpc, id_text_for_routing_keys)
{
    json_t *ids[] = {json_string("q538"), json_integer(42), json_real(1.5), json_real(-0.25),
                     json_null(),         json_true(),      json_array()};
    const char *want[] = {"q538", "42", "1.5", "-0.25", NULL, NULL, NULL};

    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        char *got = wr_jsonrpc_id_text(ids[i]);
        if (want[i])
            cr_expect_str_eq(got, want[i], "id %zu", i);
        else
            cr_expect_null(got, "id %zu", i);
        free(got);
        json_decref(ids[i]);
    }
    cr_expect_null(wr_jsonrpc_id_text(NULL));
}
