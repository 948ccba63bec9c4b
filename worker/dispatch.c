/*
 * decode → call → encode, for one message: what every format shares.
 * The format's own rules (what a body means, what a reply looks like) are
 * in worker/format_jsonrpc.c, format_raw.c and format_amqpbus.c.
 */
#include "worker/dispatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

static const wr_format_ops *ops_for(int format)
{
    switch ((wr_format)format) {
    case WR_FORMAT_RAW:
        return &wr_format_raw;
    case WR_FORMAT_AMQPBUS:
        return &wr_format_amqpbus;
    case WR_FORMAT_JSONRPC:
        break;
    }
    return &wr_format_jsonrpc;
}

void wr_dispatch_prepare(wr_job *job, const wr_route *route, const wr_delivery *in, long max_size)
{
    wr_dispatch_prepare_limited(job, route, in, max_size, WR_DEFAULT_MAX_BATCH);
}

void wr_dispatch_prepare_limited(wr_job *job, const wr_route *route, const wr_delivery *in,
                                 long max_size, size_t max_batch)
{
    memset(job, 0, sizeof *job);
    job->max_batch = max_batch;
    job->route = route;
    job->ops = ops_for(route->format);
    job->in = *in;
    job->label = route->name;
    job->max_size = max_size;
    job->message = (warren_message){
        .size = sizeof(warren_message),
        .body = in->body,
        .body_len = in->len,
        .content_type = in->content_type,
        .route = route->name,
        .exchange = in->exchange ? in->exchange : "",
        .routing_key = in->routing_key ? in->routing_key : "",
        .correlation_id = in->correlation_id,
        .reply_to = in->reply_to,
        .redelivered = in->redelivered,
        .headers = in->headers,
    };
    /* A body that did not unwrap is not the format's to read. */
    if (in->bad_code)
        return;
    if ((long)in->len > max_size) {
        job->oversize = 1;
        return;
    }
    job->ops->prepare(job);
}

const char *wr_dispatch_method(const wr_job *job)
{
    return job->oversize || job->in.bad_code ? "-" : job->ops->method(job);
}

void wr_dispatch_run(wr_job *job, const wr_dispatcher *d)
{
    if (job->oversize) {
        wr_dispatch_count_error(job, WARREN_ERR_INVALID_REQUEST);
        wr_warn("route %s: rejected a %zu-byte message: over max_message_size (%ld)", job->label,
                job->in.len, job->max_size);
        job->ops->fail(job, WARREN_ERR_INVALID_REQUEST, "Invalid Request: message too large", NULL);
        return;
    }
    if (job->in.bad_code) {
        wr_dispatch_count_error(job, job->in.bad_code);
        wr_log_fields(
            WR_LOG_WARN,
            WR_LOG_FIELDS(WR_LOG_STR("event", "bad_request"), WR_LOG_STR("route", job->label),
                          WR_LOG_STR("correlation_id", job->in.correlation_id),
                          WR_LOG_INT("bytes", (long long)job->in.len),
                          WR_LOG_INT("code", job->in.bad_code)),
            "route %s: bad request (%zu bytes): %s", job->label, job->in.len, job->in.bad_message);
        job->ops->fail(job, job->in.bad_code, job->in.bad_message, NULL);
        return;
    }
    /* Every instance would run it, for nobody. */
    if (job->route->broadcast && !job->in.reply_to && !job->qid) {
        job->nerrors++;
        wr_warn("route %s: a broadcast request without reply_to (%zu bytes); not run", job->label,
                job->in.len);
        return;
    }
    job->ops->run(job, d);
}

void wr_dispatch_count_error(wr_job *job, int code)
{
    job->nerrors++;
    for (size_t i = 0; i < job->ncodes; i++)
        if (job->codes[i] == code) {
            job->code_counts[i]++;
            return;
        }
    if (job->ncodes < WR_JOB_CODES) {
        job->codes[job->ncodes] = code;
        job->code_counts[job->ncodes++] = 1;
        return;
    }
    job->more_codes++;
}

void wr_dispatch_refuse(wr_job *job, const char *why)
{
    job->nerrors = 0;
    wr_dispatch_count_error(job, WARREN_ERR_INTERNAL);
    job->ops->fail(job, WARREN_ERR_INTERNAL, why, NULL);
}

int wr_dispatch_expired(wr_job *job, long long now_ms, wr_expired_stats *st)
{
    long long late = now_ms - job->in.deadline_ms;
    const char *from = job->in.deadline_from ? job->in.deadline_from : "deadline";
    const char *id = job->in.correlation_id ? job->in.correlation_id : "-";
    char msg[96];

    if (job->in.deadline_ms <= 0 || late <= 0)
        return 0;
    snprintf(msg, sizeof msg, "deadline passed %lld ms ago", late);
    job->nerrors = 0;
    wr_dispatch_count_error(job, WR_ERR_DEADLINE);
    job->ops->fail(job, WR_ERR_DEADLINE, msg,
                   json_pack("{s:I, s:I, s:s}", "deadline_ms", (json_int_t)job->in.deadline_ms,
                             "late_ms", (json_int_t)late, "from", from));
    st->count++;
    /* A backlog that outlived its callers can be thousands of requests:
     * one info line per interval says so, with how many came since the
     * last; each one gets a debug line. */
    if (st->last_info_ms && now_ms - st->last_info_ms < WR_EXPIRED_LOG_INTERVAL_MS) {
        st->unlogged++;
        wr_debug("route %s: request %.100s (%.100s) not run: its %s passed %lld ms ago", job->label,
                 id, wr_dispatch_method(job), from, late);
        return 1;
    }
    if (st->unlogged)
        wr_info("route %s: request %.100s (%.100s) not run: its %s passed %lld ms ago; answered "
                "with error %d (%lu in all, %lu since the last such line)",
                job->label, id, wr_dispatch_method(job), from, late, WR_ERR_DEADLINE, st->count,
                st->unlogged + 1);
    else
        wr_info("route %s: request %.100s (%.100s) not run: its %s passed %lld ms ago; answered "
                "with error %d (%lu in all)",
                job->label, id, wr_dispatch_method(job), from, late, WR_ERR_DEADLINE, st->count);
    st->unlogged = 0;
    st->last_info_ms = now_ms;
    return 1;
}

int wr_dispatch_call(wr_job *job, const wr_dispatcher *d, const char *method, json_t *params,
                     json_t **result, warren_error *err)
{
    const wr_method_ref *m;
    warren_call call;

    memset(err, 0, sizeof *err);
    *result = NULL;
    job->ncalls++;
    if (d->builtins && wr_builtin_has(method)) {
        *result = wr_builtin_call(d->builtins, method);
        return 0;
    }
    m = wr_plugins_find(d->plugins, method);
    if (!m) {
        wr_log_fields(WR_LOG_WARN,
                      WR_LOG_FIELDS(WR_LOG_STR("event", "unknown_method"),
                                    WR_LOG_STR("route", job->label),
                                    WR_LOG_STR("correlation_id", job->in.correlation_id),
                                    WR_LOG_STR("method", method),
                                    WR_LOG_INT("code", WARREN_ERR_METHOD_NOT_FOUND)),
                      "route %s: unknown method '%.100s'", job->label, method);
        err->code = WARREN_ERR_METHOD_NOT_FOUND;
        snprintf(err->message, sizeof err->message, "Method not found");
        return -1;
    }
    /* The prepared call, plus this message (ABI 1.1). */
    call = m->call;
    call.message = &job->message;
    if (m->method->handler(&call, params, result, err) != 0) {
        json_decref(*result);
        *result = NULL;
        if (err->code == 0)
            err->code = WARREN_ERR_INTERNAL;
        err->message[sizeof err->message - 1] = '\0';
        if (err->message[0] == '\0')
            snprintf(err->message, sizeof err->message, "%s failed", method);
        return -1;
    }
    if (!*result)
        *result = json_null();
    return 0;
}

void wr_dispatch_error_reply(wr_job *job, int code, const char *message, json_t *data)
{
    json_t *body = json_pack("{s:{s:i, s:s}}", "error", "code", code, "message", message);
    char *text;

    if (body && data)
        json_object_set(json_object_get(body, "error"), "data", data);
    json_decref(data);
    text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text)
        wr_dispatch_set_reply(job, text, strlen(text), "application/json");
    free(text);
}

json_t *wr_dispatch_run_method(wr_job *job, const wr_dispatcher *d)
{
    warren_error err;
    json_t *result;

    if (job->bad_code) {
        wr_dispatch_count_error(job, job->bad_code);
        wr_log_fields(
            WR_LOG_WARN,
            WR_LOG_FIELDS(WR_LOG_STR("event", "bad_request"), WR_LOG_STR("route", job->label),
                          WR_LOG_STR("correlation_id", job->in.correlation_id),
                          WR_LOG_INT("bytes", (long long)job->in.len),
                          WR_LOG_INT("code", job->bad_code)),
            "route %s: bad request (%zu bytes): %s", job->label, job->in.len, job->bad_message);
        job->ops->fail(job, job->bad_code, job->bad_message, NULL);
        return NULL;
    }
    if (wr_dispatch_call(job, d, job->route->method, job->params, &result, &err) < 0) {
        wr_dispatch_count_error(job, err.code);
        job->ops->fail(job, err.code, err.message, err.data);
        return NULL;
    }
    return result;
}

void wr_dispatch_json_reply(wr_job *job, json_t *result)
{
    char *text = json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY);

    if (text)
        wr_dispatch_set_reply(job, text, strlen(text), "application/json");
    free(text);
    json_decref(result);
}

void wr_dispatch_set_reply(wr_job *job, const char *text, size_t len, const char *type)
{
    free(job->reply);
    job->reply = malloc(len + 1);
    job->reply_len = job->reply ? len : 0;
    if (job->reply) {
        memcpy(job->reply, text, len);
        job->reply[len] = '\0';
    }
    job->reply_type = type;
}

void wr_dispatch_free(wr_job *job)
{
    wr_jsonrpc_request_free(&job->req);
    json_decref(job->params);
    free(job->qid);
    free(job->reply);
    free(job->reply_id);
    job->params = NULL;
    job->qid = NULL;
    job->reply = NULL;
    job->reply_id = NULL;
}
