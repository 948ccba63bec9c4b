/* Queues, bindings and consumers, declared on every connect; see topology.h. */
#include "worker/topology.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/amqp_conn.h"
#include "common/log.h"

int wr_topology_setup(amqp_connection_state_t conn, int channel, const wr_config *cfg, char **tags)
{
    char err[512];

    /* Per consumer (global = 0): RabbitMQ 4 refuses a global basic.qos. */
    amqp_basic_qos(conn, (amqp_channel_t)channel, 0, (uint16_t)cfg->prefetch, 0);
    if (wr_amqp_check(amqp_get_rpc_reply(conn), "basic.qos", err, sizeof err)) {
        wr_error("%s", err);
        return -1;
    }
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const wr_route *r = &cfg->routes[i];
        amqp_basic_consume_ok_t *ok;

        amqp_queue_declare(conn, (amqp_channel_t)channel, amqp_cstring_bytes(r->queue), 0, 1, 0, 0,
                           amqp_empty_table);
        if (wr_amqp_check(amqp_get_rpc_reply(conn), "queue.declare", err, sizeof err))
            goto fail;
        /* A reply exchange that does not exist would make the broker
         * close the channel at the first reply, after which the ack is
         * lost and the request comes back forever: check it now. */
        if (r->reply_exchange) {
            amqp_exchange_declare(conn, (amqp_channel_t)channel,
                                  amqp_cstring_bytes(r->reply_exchange), amqp_empty_bytes,
                                  1 /* passive */, 0, 0, 0, amqp_empty_table);
            if (wr_amqp_check(amqp_get_rpc_reply(conn), "reply_exchange", err, sizeof err))
                goto fail;
        }
        for (size_t b = 0; b < r->nbindings; b++) {
            amqp_queue_bind(conn, (amqp_channel_t)channel, amqp_cstring_bytes(r->queue),
                            amqp_cstring_bytes(r->exchange), amqp_cstring_bytes(r->bindings[b]),
                            amqp_empty_table);
            if (wr_amqp_check(amqp_get_rpc_reply(conn), "queue.bind", err, sizeof err))
                goto fail;
        }
        ok = amqp_basic_consume(conn, (amqp_channel_t)channel, amqp_cstring_bytes(r->queue),
                                amqp_empty_bytes, 0, 0 /* manual acks */, 0, amqp_empty_table);
        if (wr_amqp_check(amqp_get_rpc_reply(conn), "basic.consume", err, sizeof err))
            goto fail;
        free(tags[i]);
        tags[i] = wr_amqp_strdup(ok->consumer_tag);
        if (!tags[i]) {
            snprintf(err, sizeof err, "out of memory");
            goto fail;
        }
        continue;
    fail:
        wr_error("route %s: queue %s: %s", r->name, r->queue, err);
        return -1;
    }
    return 0;
}

const wr_route *wr_topology_route_of(const wr_config *cfg, char *const *tags, amqp_bytes_t tag)
{
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const char *t = tags[i];
        if (t && strlen(t) == tag.len && memcmp(t, tag.bytes, tag.len) == 0)
            return &cfg->routes[i];
    }
    return NULL;
}
