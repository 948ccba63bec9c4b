/*
 * One delivery's work, without any AMQP: decode the body, call the
 * handlers, build the reply body.  The worker's main thread prepares a job
 * (decoding is cheap and tells it which method is starting), the runner
 * thread runs it, and the main thread publishes what it produced.
 */
#ifndef WR_DISPATCH_H
#define WR_DISPATCH_H

#include <stddef.h>

#include "config/config.h"
#include "worker/jsonrpc.h"
#include "worker/plugin_loader.h"

typedef struct wr_job {
    /* Input, borrowed: the body stays valid until wr_dispatch_free. */
    const char *body;
    size_t len;
    const wr_route *route; /* borrowed: where the message came from, how it is read */
    const char *label;     /* for log lines: the route name */

    /* Filled by wr_dispatch_prepare. */
    wr_rpc_request req;
    int oversize; /* body longer than the limit; not decoded */
    long max_size;

    /* Filled by wr_dispatch_run. */
    char *reply; /* owned: JSON text to publish, NULL when nothing to send */
    size_t reply_len;
    char *reply_id;   /* owned: first call's id as text, for reply_prefix
                         routing keys; NULL when no call has an id */
    unsigned ncalls;  /* calls executed */
    unsigned nerrors; /* error responses produced (any code) */
} wr_job;

/* Decode BODY, which arrived on ROUTE (read as its format says), into JOB
 * (zeroing it first).  Bodies over MAX_SIZE bytes are not parsed at all.
 * ROUTE must outlive JOB. */
void wr_dispatch_prepare(wr_job *job, const wr_route *route, const char *body, size_t len,
                         long max_size);

/* Method of the first call, for status lines; borrowed; "-" when none. */
const char *wr_dispatch_method(const wr_job *job);

/* Run every call of JOB against PLUGINS and build the reply.  Logs one line
 * for a message that is malformed as a whole or has invalid entries. */
void wr_dispatch_run(wr_job *job, const wr_plugins *plugins);

/* Instead of running JOB (prepared), answer it with a -32603 error saying
 * WHY, when any of its calls expects an answer. */
void wr_dispatch_refuse(wr_job *job, const char *why);

void wr_dispatch_free(wr_job *job);

#endif
