/*
 * decode → call → encode, for one message.
 *
 * JSON-RPC rules applied here (the envelope module found the errors; this
 * decides what is sent):
 *  - a notification (no id) never gets a response, not even an error;
 *  - an entry that is not a valid request gets its error with id null (or
 *    its own id when it had a usable one);
 *  - a batch's responses go back as one array, in request order; a batch of
 *    notifications only gets no reply at all;
 *  - a body over max_message_size is not parsed and gets -32600.
 */
#include "worker/dispatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

void wr_dispatch_prepare(wr_job *job, const wr_route *route, const char *body, size_t len,
                         long max_size)
{
    memset(job, 0, sizeof *job);
    job->body = body;
    job->len = len;
    job->route = route;
    job->label = route->name;
    job->max_size = max_size;
    if ((long)len > max_size) {
        job->oversize = 1;
        return;
    }
    switch ((wr_format)route->format) {
    case WR_FORMAT_JSONRPC:
        wr_jsonrpc_decode(body, len, &job->req);
        break;
    }
}

const char *wr_dispatch_method(const wr_job *job)
{
    for (size_t i = 0; i < job->req.ncalls; i++)
        if (job->req.calls[i].method)
            return job->req.calls[i].method;
    return "-";
}

/* Run one valid call.  Returns a new response object. */
static json_t *call_one(const wr_job *job, const wr_plugins *plugins, const wr_rpc_call *c,
                        unsigned *nerrors)
{
    const wr_method_ref *m = wr_plugins_find(plugins, c->method);
    warren_error err = {0};
    json_t *result = NULL;

    if (!m) {
        (*nerrors)++;
        wr_warn("route %s: unknown method '%.100s'", job->label, c->method);
        return wr_jsonrpc_error(c->id, WARREN_ERR_METHOD_NOT_FOUND, "Method not found", NULL);
    }
    if (m->method->handler(&m->call, c->params, &result, &err) != 0) {
        json_decref(result);
        (*nerrors)++;
        if (err.code == 0)
            err.code = WARREN_ERR_INTERNAL;
        if (err.message[0] == '\0')
            snprintf(err.message, sizeof err.message, "%s failed", c->method);
        return wr_jsonrpc_error(c->id, err.code, err.message, err.data);
    }
    return wr_jsonrpc_result(c->id, result);
}

void wr_dispatch_run(wr_job *job, const wr_plugins *plugins)
{
    json_t *response = NULL;
    json_t *batch = NULL;
    unsigned invalid = 0;
    const char *first_problem = NULL;

    if (job->oversize) {
        response = wr_jsonrpc_error(NULL, WARREN_ERR_INVALID_REQUEST,
                                    "Invalid Request: message too large", NULL);
        job->nerrors++;
        wr_warn("route %s: rejected a %zu-byte message: over max_message_size (%ld)", job->label,
                job->len, job->max_size);
        goto encode;
    }
    if (job->req.error) {
        response = json_incref(job->req.error);
        job->nerrors++;
        wr_warn("route %s: bad request (%zu bytes): %s", job->label, job->len,
                json_string_value(json_object_get(json_object_get(response, "error"), "message")));
        goto encode;
    }
    if (job->req.batch)
        batch = json_array();
    for (size_t i = 0; i < job->req.ncalls; i++) {
        wr_rpc_call *c = &job->req.calls[i];
        json_t *r;

        if (c->error) {
            invalid++;
            if (!first_problem)
                first_problem = json_string_value(
                    json_object_get(json_object_get(c->error, "error"), "message"));
            /* A well-formed notification whose params are the wrong type is
             * still a notification: it gets no reply.  Other invalid
             * entries are answered (with id null) as the spec asks. */
            if (!c->id && json_integer_value(json_object_get(json_object_get(c->error, "error"),
                                                             "code")) == WARREN_ERR_INVALID_PARAMS)
                continue;
            r = json_incref(c->error);
            job->nerrors++;
        } else {
            job->ncalls++;
            r = call_one(job, plugins, c, &job->nerrors);
            if (!c->id) { /* notification: the result is never sent */
                json_decref(r);
                continue;
            }
        }
        if (!job->reply_id)
            job->reply_id = wr_jsonrpc_id_text(c->id);
        if (batch)
            json_array_append_new(batch, r);
        else
            response = r;
    }
    if (invalid)
        wr_warn("route %s: %u invalid request%s in a %zu-byte message: %s", job->label, invalid,
                invalid == 1 ? "" : "s", job->len, first_problem ? first_problem : "?");
    if (batch) {
        if (json_array_size(batch) > 0)
            response = batch;
        else
            json_decref(batch);
    }
encode:
    if (response) {
        job->reply = wr_jsonrpc_encode(response, &job->reply_len);
        json_decref(response);
    }
}

void wr_dispatch_refuse(wr_job *job, const char *why)
{
    json_t *id = NULL, *reply;

    job->nerrors = 1;
    for (size_t i = 0; i < job->req.ncalls; i++) {
        if (!job->req.calls[i].id)
            continue;
        /* A batch gets one error for the whole message: id null. */
        if (!job->req.batch)
            id = job->req.calls[i].id;
        reply = wr_jsonrpc_error(id, WARREN_ERR_INTERNAL, why, NULL);
        job->reply = wr_jsonrpc_encode(reply, &job->reply_len);
        json_decref(reply);
        job->reply_id = wr_jsonrpc_id_text(id);
        return;
    }
    /* Only notifications: nobody to tell. */
}

void wr_dispatch_free(wr_job *job)
{
    wr_jsonrpc_request_free(&job->req);
    free(job->reply);
    free(job->reply_id);
    job->reply = NULL;
    job->reply_id = NULL;
}
