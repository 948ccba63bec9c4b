/*
 * Where a reply goes and how it is sent.  To the request's reply_to on
 * the default exchange, with its correlation_id (direct reply-to
 * included); else, on a route with reply_prefix, to its reply_exchange
 * (or its exchange) under "<reply_prefix>.<id>"; else nowhere.  A reply
 * is persistent when its request was.
 */
#ifndef WR_WORKER_REPLY_H
#define WR_WORKER_REPLY_H

#include <amqp.h>
#include <stddef.h>

#include "worker/dispatch.h"

/*
 * Publish JOB's reply on CHANNEL, for a request that came with
 * properties REQ.  A request that names no reply address gets nothing,
 * with one warning.  Returns 0 (sent, or nothing to send), or -1 when the
 * connection failed (logged).
 */
int wr_reply_publish(amqp_connection_state_t conn, int channel, const amqp_basic_properties_t *req,
                     const wr_job *job);

#endif
