/*
 * format = amqpbus: the 2011 "amqpbus" recipe.  A request is
 * {"q": <payload>, "qid": "<id>"}, published to a topic exchange under
 * example.request.<id>; the handler gets params = [<payload>]; the reply,
 * the handler's result as JSON, goes to the route's reply exchange (its
 * exchange unless reply_exchange says otherwise) under
 * "<reply_prefix>.<qid>", or to reply_to when the request names one.  A
 * request without qid and without reply_to runs and gets no reply.  An
 * error is {"error": {"code": N, "message": "..."}} sent the same way.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "worker/dispatch.h"

#define QID_MAX 200 /* bytes; a routing key holds 255 with the prefix */

/* May ID be part of a routing key as a single word?  Letters, digits and
 * "_-:" only: a "." would add words, "*" and "#" are wildcards. */
static int good_qid(const char *id)
{
    size_t n = strlen(id);

    if (n == 0 || n > QID_MAX)
        return 0;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("_-:", *p)))
            return 0;
    return 1;
}

static void bad(wr_job *job, int code, const char *message)
{
    job->bad_code = code;
    snprintf(job->bad_message, sizeof job->bad_message, "%s", message);
}

static void prepare(wr_job *job)
{
    json_error_t e;
    json_t *body = json_loadb(job->in.body, job->in.len, JSON_ALLOW_NUL, &e), *q, *qid;

    if (!body) {
        bad(job, WARREN_ERR_PARSE, "Parse error: the body is not a JSON object");
        return;
    }
    qid = json_object_get(body, "qid");
    if (qid && !json_is_null(qid)) {
        char *text = json_is_string(qid) || json_is_integer(qid) ? wr_jsonrpc_id_text(qid) : NULL;
        if (!text || !good_qid(text)) {
            free(text);
            bad(job, WARREN_ERR_INVALID_REQUEST,
                "Invalid Request: qid must be 1 to 200 letters, digits, '_', '-' or ':'");
            json_decref(body);
            return;
        }
        job->qid = text;
        job->reply_id = strdup(text);
    }
    q = json_object_get(body, "q");
    if (!q)
        bad(job, WARREN_ERR_INVALID_REQUEST,
            "Invalid Request: expected {\"q\": ..., \"qid\": ...}");
    else
        job->params = json_pack("[O]", q);
    json_decref(body);
}

static const char *method(const wr_job *job)
{
    return job->route->method;
}

static int has_address(const wr_job *job)
{
    return job->in.reply_to || job->qid;
}

static void fail(wr_job *job, int code, const char *message, json_t *data)
{
    if (has_address(job))
        wr_dispatch_error_reply(job, code, message, data);
    else
        json_decref(data);
}

static void run(wr_job *job, const wr_dispatcher *d)
{
    json_t *result = wr_dispatch_run_method(job, d);

    if (!result)
        return;
    if (has_address(job))
        wr_dispatch_json_reply(job, result);
    else
        json_decref(result);
}

const wr_format_ops wr_format_amqpbus = {
    .name = "amqpbus",
    .prepare = prepare,
    .method = method,
    .run = run,
    .fail = fail,
};
