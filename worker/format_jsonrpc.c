/*
 * format = jsonrpc: JSON-RPC 2.0 objects and batches.
 *
 * The envelope module (jsonrpc.c) found the errors; this decides what is
 * sent:
 *  - a notification (no id) never gets a response, not even an error;
 *  - an entry that is not a valid request gets its error with id null (or
 *    its own id when it had a usable one);
 *  - a batch's responses go back as one array, in request order; a batch of
 *    notifications only gets no reply at all;
 *  - an error for the whole message (too large, refused) carries the
 *    request's id when it has exactly one call with an id, else id null.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "worker/dispatch.h"

#define JSON_TYPE "application/json"

static void prepare(wr_job *job)
{
    wr_jsonrpc_decode_max(job->in.body, job->in.len, job->max_batch, &job->req);
}

static const char *method(const wr_job *job)
{
    for (size_t i = 0; i < job->req.ncalls; i++)
        if (job->req.calls[i].method)
            return job->req.calls[i].method;
    return "-";
}

/* The reply key's ID, from the first call answered, on routes whose
 * replies go to PREFIX.ID. */
static void set_reply_id(wr_job *job, json_t *id)
{
    if (!job->reply_id && job->route->reply_prefix)
        job->reply_id = wr_jsonrpc_id_text(id);
}

static void set_response(wr_job *job, json_t *response)
{
    job->reply = wr_jsonrpc_encode(response, &job->reply_len);
    job->reply_type = JSON_TYPE;
    json_decref(response);
}

/* Run one valid call.  Returns 0 with *OUT its result, or -1 with *OUT
 * an error response (new references; NULL: out of memory, or null). */
static int call_one(wr_job *job, const wr_dispatcher *d, const wr_rpc_call *c, json_t **out)
{
    warren_error err;

    if (wr_dispatch_call(job, d, c->method, c->params, out, &err) < 0) {
        wr_dispatch_count_error(job, err.code);
        *out = wr_jsonrpc_error(c->id, err.code, err.message, err.data);
        return -1;
    }
    return 0;
}

static const char *error_text(json_t *response)
{
    return json_string_value(json_object_get(json_object_get(response, "error"), "message"));
}

/* The code of an error response. */
static int error_code(json_t *response)
{
    return (int)json_integer_value(json_object_get(json_object_get(response, "error"), "code"));
}

static void run(wr_job *job, const wr_dispatcher *d)
{
    json_t *response = NULL, *batch = NULL;
    unsigned invalid = 0;
    const char *first_problem = NULL;

    if (job->req.error) {
        wr_dispatch_count_error(job, error_code(job->req.error));
        wr_warn("route %s: bad request (%zu bytes): %s", job->label, job->in.len,
                error_text(job->req.error));
        set_response(job, json_incref(job->req.error));
        return;
    }
    if (job->req.batch)
        batch = json_array();
    for (size_t i = 0; i < job->req.ncalls; i++) {
        wr_rpc_call *c = &job->req.calls[i];
        json_t *r;

        if (c->error) {
            invalid++;
            if (!first_problem)
                first_problem = error_text(c->error);
            /* A well-formed notification whose params are the wrong type is
             * still a notification: it gets no reply.  Other invalid
             * entries are answered (with id null) as the spec asks. */
            if (!c->id && json_integer_value(json_object_get(json_object_get(c->error, "error"),
                                                             "code")) == WARREN_ERR_INVALID_PARAMS)
                continue;
            r = json_incref(c->error);
            wr_dispatch_count_error(job, error_code(c->error));
        } else {
            int ok = call_one(job, d, c, &r) == 0;
            if (!c->id) { /* notification: the result is never sent */
                json_decref(r);
                continue;
            }
            if (ok && !batch) { /* the common case: no response object */
                set_reply_id(job, c->id);
                job->reply = wr_jsonrpc_encode_result(c->id, r, &job->reply_len);
                job->reply_type = JSON_TYPE;
                json_decref(r);
                continue;
            }
            if (ok)
                r = wr_jsonrpc_result(c->id, r);
        }
        set_reply_id(job, c->id);
        if (batch)
            json_array_append_new(batch, r);
        else
            response = r;
    }
    if (invalid)
        wr_warn("route %s: %u invalid request%s in a %zu-byte message: %s", job->label, invalid,
                invalid == 1 ? "" : "s", job->in.len, first_problem ? first_problem : "?");
    if (batch) {
        if (json_array_size(batch) > 0)
            response = batch;
        else
            json_decref(batch);
    }
    if (response)
        set_response(job, response);
}

static void fail(wr_job *job, int code, const char *message, json_t *data)
{
    json_t *id = NULL;

    /* A body that was never decoded has no id to answer: id null. */
    if (!job->oversize && !job->in.bad_code) {
        size_t i;
        for (i = 0; i < job->req.ncalls && !job->req.calls[i].id; i++)
            ;
        if (i == job->req.ncalls && !job->req.error) {
            json_decref(data);
            return; /* only notifications: nobody to tell */
        }
        /* A batch gets one error for the whole message: id null. */
        if (i < job->req.ncalls && !job->req.batch)
            id = job->req.calls[i].id;
    }
    if (job->route->reply_prefix)
        job->reply_id = wr_jsonrpc_id_text(id);
    set_response(job, wr_jsonrpc_error(id, code, message, data));
}

const wr_format_ops wr_format_jsonrpc = {
    .name = "jsonrpc",
    .prepare = prepare,
    .method = method,
    .run = run,
    .fail = fail,
};
