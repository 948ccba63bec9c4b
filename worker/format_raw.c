/*
 * format = raw: what the RabbitMQ tutorial's RPC clients send.  The whole
 * body is the one argument of the route's method: params = [<body>], the
 * body parsed as JSON when it is valid JSON (so `30` arrives as the
 * integer 30), else taken as a JSON string.  The reply is the result as
 * JSON text, except that a string result goes back as its bare text (text
 * in, text out).  Replies go only to reply_to; a message without one runs
 * and gets no reply.
 *
 * Errors have no envelope to live in, so every one (bad input, a handler
 * error, a refused poison message) is written the same way: the body
 * {"error": {"code": N, "message": "..."}} (application/json) and the
 * AMQP headers x-error-code (the code) and x-error-message, so that a
 * client can tell an error from a result without parsing the body.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "worker/dispatch.h"

static void prepare(wr_job *job)
{
    json_t *v = NULL;

    /* An empty body (rabbitmq-c hands it over as NULL) is the empty
     * string: what the status demo's clients send. */
    if (job->in.len == 0)
        v = json_string("");
    else if (!(v = json_loadb(job->in.body, job->in.len, JSON_DECODE_ANY, NULL)))
        v = json_stringn(job->in.body, job->in.len);
    if (!v) {
        job->bad_code = WARREN_ERR_PARSE;
        snprintf(job->bad_message, sizeof job->bad_message,
                 "Parse error: the body is neither JSON nor UTF-8 text");
        return;
    }
    job->params = json_pack("[o]", v);
}

static const char *method(const wr_job *job)
{
    return job->route->method;
}

static void fail_with(wr_job *job, int code, const char *message, json_t *data)
{
    json_t *body;
    char *text;

    if (!job->in.reply_to) {
        json_decref(data);
        return;
    }
    body = json_pack("{s:{s:i, s:s}}", "error", "code", code, "message", message);
    if (data)
        json_object_set_new(json_object_get(body, "error"), "data", data);
    text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text)
        return;
    wr_dispatch_set_reply(job, text, strlen(text), "application/json");
    free(text);
    job->error_code = code;
    snprintf(job->error_message, sizeof job->error_message, "%s", message);
}

static void fail(wr_job *job, int code, const char *message)
{
    fail_with(job, code, message, NULL);
}

static void run(wr_job *job, const wr_dispatcher *d)
{
    warren_error err;
    json_t *result;
    char *text;

    if (job->bad_code) {
        job->nerrors++;
        wr_warn("route %s: bad request (%zu bytes): %s", job->label, job->in.len, job->bad_message);
        fail(job, job->bad_code, job->bad_message);
        return;
    }
    if (wr_dispatch_call(job, d, job->route->method, job->params, &result, &err) < 0) {
        job->nerrors++;
        fail_with(job, err.code, err.message, err.data);
        return;
    }
    if (!job->in.reply_to) {
        json_decref(result);
        return;
    }
    if (json_is_string(result)) {
        wr_dispatch_set_reply(job, json_string_value(result), json_string_length(result),
                              "text/plain");
    } else if ((text = json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY))) {
        wr_dispatch_set_reply(job, text, strlen(text), "application/json");
        free(text);
    }
    json_decref(result);
}

const wr_format_ops wr_format_raw = {
    .name = "raw",
    .prepare = prepare,
    .method = method,
    .run = run,
    .fail = fail,
};
