/* Sending a reply where its request asked; see reply.h. */
#include "worker/reply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

int wr_reply_publish(amqp_connection_state_t conn, int channel, const wr_route *route,
                     const amqp_basic_properties_t *req, const char *body, size_t len,
                     const char *id)
{
    amqp_basic_properties_t props;
    amqp_bytes_t exchange = amqp_empty_bytes, key;
    char *built = NULL;
    int st;

    if ((req->_flags & AMQP_BASIC_REPLY_TO_FLAG) && req->reply_to.len) {
        key = req->reply_to;
    } else if (route->reply_exchange && id) {
        if (asprintf(&built, "%s.%s", route->reply_prefix, id) < 0) {
            /* Unacked, the request comes back once memory does. */
            wr_error("route %s: out of memory building a reply key", route->name);
            return -1;
        }
        exchange = amqp_cstring_bytes(route->reply_exchange);
        key = amqp_cstring_bytes(built);
    } else {
        wr_warn("route %s: a request expects a reply but names no reply_to%s; reply dropped",
                route->name, route->reply_exchange ? " and no usable id" : "");
        return 0;
    }

    memset(&props, 0, sizeof props);
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
    props.content_type = amqp_cstring_bytes("application/json");
    props.delivery_mode =
        (req->_flags & AMQP_BASIC_DELIVERY_MODE_FLAG) && req->delivery_mode == 2 ? 2 : 1;
    if (req->_flags & AMQP_BASIC_CORRELATION_ID_FLAG) {
        props._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
        props.correlation_id = req->correlation_id;
    }
    st = amqp_basic_publish(conn, (amqp_channel_t)channel, exchange, key, 0, 0, &props,
                            (amqp_bytes_t){.len = len, .bytes = (void *)body});
    if (st != AMQP_STATUS_OK)
        wr_error("route %s: publishing a reply to %.*s failed: %s", route->name, (int)key.len,
                 (char *)key.bytes, amqp_error_string2(st));
    free(built);
    return st == AMQP_STATUS_OK ? 0 : -1;
}
