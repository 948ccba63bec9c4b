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

/*
 * Publish JOB's reply on CHANNEL, for a request that came with
 * properties REQ, mandatory: a reply no queue takes comes back as a
 * basic.return (the worker logs and counts it).  A request that names no
 * reply address gets nothing, with one warning.  Returns 1 when a reply
 * was published, 0 when there was nothing to send, -1 when the connection
 * failed (logged).
 */
int wr_reply_publish(amqp_connection_state_t conn, int channel, const amqp_basic_properties_t *req,
                     const wr_job *job);

#endif
