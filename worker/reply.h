/*
 * Where a reply goes and how it is sent.  To the request's reply_to:
 * a queue name on the default exchange (direct reply-to included), or
 * what an AMQP 1.0 address there names (worker/address.h: /queues/NAME,
 * /exchanges/NAME/KEY and the 3.x forms; an exchange that does not exist
 * or a malformed address drops the reply with a warning); else, on a
 * route with reply_prefix, to its reply_exchange (or its exchange) under
 * "<reply_prefix>.<id>"; else nowhere.  The reply carries the request's
 * correlation_id and its x-correlation-id header (the kind unchanged:
 * where RabbitMQ 3.x puts a 1.0 caller's ulong, binary or uuid id), so
 * the caller gets back its own form.  A reply is persistent when its
 * request was, and mandatory.
 */
#ifndef WR_WORKER_REPLY_H
#define WR_WORKER_REPLY_H

#include <amqp.h>
#include <stddef.h>

#include "worker/dispatch.h"

/* A reply to send: what a job built (wr_reply_of), or what the worker
 * kept of it to send again after a basic.nack. */
typedef struct wr_reply {
    const wr_route *route;
    const char *body; /* NULL: nothing to send */
    size_t len;
    const char *type;          /* content type; NULL: application/json */
    const char *id;            /* the request id, for reply_prefix keys; NULL: none */
    int error_code;            /* raw routes: the error beside the body (0: none) */
    const char *error_message; /* with it */
} wr_reply;

/* JOB's reply, borrowing JOB's memory. */
wr_reply wr_reply_of(const wr_job *job);

/*
 * Publish reply R on CHANNEL, for a request that came with properties
 * REQ, mandatory: a reply no queue takes comes back as a basic.return
 * (the worker logs and counts it).  A request that names no reply
 * address gets nothing, with one warning.  Returns 1 when a reply was
 * published, 0 when there was nothing to send, -1 when the connection
 * failed (logged).
 */
int wr_reply_send(amqp_connection_state_t conn, int channel, const amqp_basic_properties_t *req,
                  const wr_reply *r);

/* wr_reply_send(..., JOB's reply). */
int wr_reply_publish(amqp_connection_state_t conn, int channel, const amqp_basic_properties_t *req,
                     const wr_job *job);

#endif
