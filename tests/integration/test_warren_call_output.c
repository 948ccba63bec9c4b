/*
 * warren-call for humans and for debugging: --pretty indents the JSON it
 * prints (results, an error's data, a raw route's JSON reply); --raw
 * prints the reply body exactly as the broker delivered it, errors
 * included, and still exits as the reply says.  Against a real warren on
 * the test broker.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/integration/harness.h"

static wr_test_warren w;
static char raw_q[128];

/* One warren for the file: its JSON-RPC route rpc and a raw route on
 * RAW_Q calling test.first (which answers with the body). */
static void start(void)
{
    char extra[256];

    wr_test_queue_name(raw_q, sizeof raw_q, "call-output-raw");
    snprintf(extra, sizeof extra,
             "[route rawecho]\nqueue = %s\nformat = raw\nmethod = test.first\n", raw_q);
    wr_test_warren_start(&w, 1, extra, 1);
}

static void stop(void)
{
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}

/* warren-call -u BROKER ARGS; exit status, stdout and stderr (malloc'd). */
static int call(const char *args, char **out, char **err)
{
    char cmd[2048];

    snprintf(cmd, sizeof cmd, "\"$WARREN_CALL_BIN\" -u '%s' %s", wr_test_broker_uri(), args);
    return wr_test_sh(cmd, out, err);
}

Test(warren_call_output, pretty_indents_the_result, .init = start, .fini = stop, .timeout = 120)
{
    char args[512], *out, *err;

    snprintf(args, sizeof args, "-q %s --pretty echo '{\"a\":[1,2],\"b\":\"x\"}'", w.queue);
    cr_assert_eq(call(args, &out, &err), 0, "stderr: %s", err);
    cr_assert_str_eq(out, "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": \"x\"\n}\n");
    free(out);
    free(err);

    /* Without it, one compact line as before. */
    snprintf(args, sizeof args, "-q %s echo '{\"a\":[1,2],\"b\":\"x\"}'", w.queue);
    cr_assert_eq(call(args, &out, &err), 0, "stderr: %s", err);
    cr_assert_str_eq(out, "{\"a\":[1,2],\"b\":\"x\"}\n");
    free(out);
    free(err);

    /* An error's data, on stderr. */
    snprintf(args, sizeof args, "-q %s --pretty test.fail '{\"why\":\"testing\"}'", w.queue);
    cr_assert_eq(call(args, &out, &err), 1);
    cr_assert_str_eq(out, "");
    cr_assert(strstr(err, "error 1001: ") && strstr(err, "data: {\n  \"why\": \"testing\"\n}\n"),
              "stderr: %s", err);
    free(out);
    free(err);

    /* A raw route's reply that is JSON. */
    snprintf(args, sizeof args, "-q %s --format raw --pretty '{\"n\":3}'", raw_q);
    cr_assert_eq(call(args, &out, &err), 0, "stderr: %s", err);
    cr_assert_str_eq(out, "{\n  \"n\": 3\n}\n");
    free(out);
    free(err);
}

Test(warren_call_output, raw_prints_the_body_as_received, .init = start, .fini = stop,
     .timeout = 120)
{
    char args[512], *out, *err;
    json_t *body, *want;
    json_error_t jerr;

    /* The whole JSON-RPC response, envelope and all, with no newline
     * added: what the worker published. */
    snprintf(args, sizeof args, "-q %s --raw echo '[1,\"two\"]'", w.queue);
    cr_assert_eq(call(args, &out, &err), 0, "stderr: %s", err);
    cr_assert(out[0] == '{' && out[strlen(out) - 1] == '}', "stdout: [%s]", out);
    body = json_loads(out, 0, &jerr);
    cr_assert_not_null(body, "%s: %s", out, jerr.text);
    cr_assert_str_eq(json_string_value(json_object_get(body, "jsonrpc")), "2.0");
    cr_assert_str_eq(json_string_value(json_object_get(body, "id")) ? "id" : "", "id");
    want = json_pack("[is]", 1, "two");
    cr_assert(json_equal(json_object_get(body, "result"), want), "%s", out);
    json_decref(want);
    json_decref(body);
    free(out);
    free(err);

    /* An error reply: the body on stdout, nothing on stderr, exit 1. */
    snprintf(args, sizeof args, "-q %s --raw test.fail '[]'", w.queue);
    cr_assert_eq(call(args, &out, &err), 1, "stderr: %s", err);
    cr_assert_str_eq(err, "");
    body = json_loads(out, 0, &jerr);
    cr_assert_not_null(body, "%s: %s", out, jerr.text);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(body, "error"), "code")), 1001,
                 "%s", out);
    json_decref(body);
    free(out);
    free(err);

    /* A raw route: its reply body, byte for byte (the worker's compact
     * JSON of the result). */
    snprintf(args, sizeof args, "-q %s --format raw --raw '[1, 2]'", raw_q);
    cr_assert_eq(call(args, &out, &err), 0, "stderr: %s", err);
    cr_assert_str_eq(out, "[1,2]");
    free(out);
    free(err);
}

Test(warren_call_output, pretty_and_raw_usage_errors)
{
    static const struct {
        const char *args, *needle;
    } cases[] = {
        {"--pretty --raw echo", "--pretty and --raw exclude each other"},
        {"--raw --notify echo", "--raw prints a reply: --notify waits for none"},
        {"--pretty --notify echo", "--pretty prints a reply"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char cmd[512], *out, *err;
        int rc;

        snprintf(cmd, sizeof cmd, "\"$WARREN_CALL_BIN\" %s", cases[i].args);
        rc = wr_test_sh(cmd, &out, &err);
        cr_assert_eq(rc, 64, "%s: exit %d (stderr: %s)", cases[i].args, rc, err);
        cr_assert(strstr(err, cases[i].needle) != NULL, "%s: stderr: %s", cases[i].args, err);
        free(out);
        free(err);
    }
}
