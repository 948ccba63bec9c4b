/*
 * Where a reply goes and how it is sent.  To the request's reply_to on
 * the default exchange, with its correlation_id (direct reply-to
 * included); else, on a route with reply_exchange and reply_prefix, to
 * that exchange under "<reply_prefix>.<id>"; else nowhere.  A reply is
 * persistent when its request was.
 */
#ifndef WR_WORKER_REPLY_H
#define WR_WORKER_REPLY_H

#include <amqp.h>
#include <stddef.h>

#include "config/config.h"

/*
 * Publish BODY (LEN bytes of JSON) on CHANNEL as the reply to a request
 * that came with properties REQ on ROUTE; ID is the request id as text
 * (NULL: none).  A request that names no reply address gets nothing, with
 * one warning.  Returns 0 (sent, or nothing to send), or -1 when the
 * connection failed (logged).
 */
int wr_reply_publish(amqp_connection_state_t conn, int channel, const wr_route *route,
                     const amqp_basic_properties_t *req, const char *body, size_t len,
                     const char *id);

#endif
