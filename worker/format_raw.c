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
    else if (!(v = json_loadb(job->in.body, job->in.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL)))
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

static void fail(wr_job *job, int code, const char *message, json_t *data)
{
    if (!job->in.reply_to) {
        json_decref(data);
        return;
    }
    wr_dispatch_error_reply(job, code, message, data);
    job->error_code = code;
    snprintf(job->error_message, sizeof job->error_message, "%s", message);
}

static void run(wr_job *job, const wr_dispatcher *d)
{
    json_t *result = wr_dispatch_run_method(job, d);

    if (!result)
        return;
    if (!job->in.reply_to) {
        json_decref(result);
        return;
    }
    if (json_is_string(result)) {
        wr_dispatch_set_reply(job, json_string_value(result), json_string_length(result),
                              "text/plain");
        json_decref(result);
    } else {
        wr_dispatch_json_reply(job, result);
    }
}

const wr_format_ops wr_format_raw = {
    .name = "raw",
    .prepare = prepare,
    .method = method,
    .run = run,
    .fail = fail,
};
