/* Sending a reply where its request asked; see reply.h. */
#include "worker/reply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

int wr_reply_publish(amqp_connection_state_t conn, int channel, const amqp_basic_properties_t *req,
                     const wr_job *job)
{
    const wr_route *route = job->route;
    const char *reply_exchange = route->reply_exchange ? route->reply_exchange : route->exchange;
    amqp_basic_properties_t props;
    amqp_bytes_t exchange = amqp_empty_bytes, key;
    amqp_table_entry_t headers[2];
    char *built = NULL;
    int st;

    if ((req->_flags & AMQP_BASIC_REPLY_TO_FLAG) && req->reply_to.len) {
        key = req->reply_to;
    } else if (route->reply_prefix && reply_exchange && job->reply_id) {
        if (asprintf(&built, "%s.%s", route->reply_prefix, job->reply_id) < 0) {
            /* Unacked, the request comes back once memory does. */
            wr_error("route %s: out of memory building a reply key", route->name);
            return -1;
        }
        exchange = amqp_cstring_bytes(reply_exchange);
        key = amqp_cstring_bytes(built);
    } else {
        wr_warn("route %s: a request expects a reply but names no reply_to%s; reply dropped",
                route->name, route->reply_prefix ? " and no usable id" : "");
        return 0;
    }

    memset(&props, 0, sizeof props);
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
    props.content_type = amqp_cstring_bytes(job->reply_type ? job->reply_type : "application/json");
    props.delivery_mode =
        (req->_flags & AMQP_BASIC_DELIVERY_MODE_FLAG) && req->delivery_mode == 2 ? 2 : 1;
    if (req->_flags & AMQP_BASIC_CORRELATION_ID_FLAG) {
        props._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
        props.correlation_id = req->correlation_id;
    }
    if (job->error_code) { /* raw routes: the error beside the body */
        headers[0].key = amqp_cstring_bytes("x-error-code");
        headers[0].value.kind = AMQP_FIELD_KIND_I32;
        headers[0].value.value.i32 = job->error_code;
        headers[1].key = amqp_cstring_bytes("x-error-message");
        headers[1].value.kind = AMQP_FIELD_KIND_UTF8;
        headers[1].value.value.bytes = amqp_cstring_bytes(job->error_message);
        props._flags |= AMQP_BASIC_HEADERS_FLAG;
        props.headers = (amqp_table_t){.num_entries = 2, .entries = headers};
    }
    st = amqp_basic_publish(conn, (amqp_channel_t)channel, exchange, key, 0, 0, &props,
                            (amqp_bytes_t){.len = job->reply_len, .bytes = job->reply});
    if (st != AMQP_STATUS_OK)
        wr_error("route %s: publishing a reply to %.*s failed: %s", route->name, (int)key.len,
                 (char *)key.bytes, amqp_error_string2(st));
    free(built);
    return st == AMQP_STATUS_OK ? 0 : -1;
}
