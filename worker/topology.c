/* Queues, bindings and consumers, declared on every connect; see topology.h. */
#include "worker/topology.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/amqp_conn.h"
#include "common/log.h"

static const char *const exchange_type_names[] = {
    [WR_EXCHANGE_DIRECT] = "direct",
    [WR_EXCHANGE_TOPIC] = "topic",
    [WR_EXCHANGE_FANOUT] = "fanout",
};

char **wr_topology_queue_names(const wr_config *cfg, long supervisor_pid)
{
    char **q = calloc(cfg->nroutes ? cfg->nroutes : 1, sizeof *q);
    char host[256] = "";

    if (!q)
        return NULL;
    if (gethostname(host, sizeof host - 1) < 0 || !host[0])
        snprintf(host, sizeof host, "localhost");
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const wr_route *r = &cfg->routes[i];
        int n;

        if (!r->broadcast)
            n = (q[i] = strdup(r->queue)) ? 0 : -1;
        else if (r->queue)
            n = asprintf(&q[i], "%s.%s.%ld", r->queue, host, supervisor_pid);
        else
            n = asprintf(&q[i], "warren.%s.%s.%ld", r->name, host, supervisor_pid);
        if (n < 0) {
            q[i] = NULL;
            wr_topology_free_queue_names(cfg, q);
            return NULL;
        }
    }
    return q;
}

void wr_topology_free_queue_names(const wr_config *cfg, char **queues)
{
    if (!queues)
        return;
    for (size_t i = 0; i < cfg->nroutes; i++)
        free(queues[i]);
    free(queues);
}

int wr_topology_setup(amqp_connection_state_t conn, int channel, const wr_config *cfg,
                      char *const *queues, char **tags)
{
    char err[512];
    /* x-queue-type always: RabbitMQ 4 gives a declare without one the
     * vhost's default type (maybe quorum), and that queue would then not
     * match a later classic declare.  With it the declare means the same on
     * every broker and vhost; and a queue an older warren declared without
     * it is classic, which the broker (3.10 and 4.x) finds equivalent. */
    amqp_table_entry_t args[2] = {
        {.key = amqp_cstring_bytes("x-queue-type"), .value = {.kind = AMQP_FIELD_KIND_UTF8}},
        {.key = amqp_cstring_bytes("x-expires"),
         .value = {.kind = AMQP_FIELD_KIND_I32, .value.i32 = WR_BROADCAST_EXPIRES_MS}},
    };

    /* Per consumer (global = 0): RabbitMQ 4 refuses a global basic.qos. */
    amqp_basic_qos(conn, (amqp_channel_t)channel, 0, (uint16_t)cfg->prefetch, 0);
    if (wr_amqp_check(amqp_get_rpc_reply(conn), "basic.qos", err, sizeof err)) {
        wr_error("%s", err);
        return -1;
    }
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const wr_route *r = &cfg->routes[i];
        amqp_basic_consume_ok_t *ok;

        if (r->exchange_declare) {
            amqp_exchange_declare(conn, (amqp_channel_t)channel, amqp_cstring_bytes(r->exchange),
                                  amqp_cstring_bytes(exchange_type_names[r->exchange_declare]), 0,
                                  1 /* durable */, 0, 0, amqp_empty_table);
            if (wr_amqp_check(amqp_get_rpc_reply(conn), "exchange.declare", err, sizeof err))
                goto fail;
        }
        /* Durable and never transient: RabbitMQ 4.3 refuses a
         * non-durable, non-exclusive queue.  A broadcast queue is the
         * instance's own, always classic, removed by x-expires. */
        args[0].value.value.bytes =
            amqp_cstring_bytes(r->queue_type == WR_QUEUE_QUORUM ? "quorum" : "classic");
        amqp_queue_declare(conn, (amqp_channel_t)channel, amqp_cstring_bytes(queues[i]), 0,
                           1 /* durable */, 0, 0,
                           (amqp_table_t){.num_entries = r->broadcast ? 2 : 1, .entries = args});
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
            amqp_queue_bind(conn, (amqp_channel_t)channel, amqp_cstring_bytes(queues[i]),
                            amqp_cstring_bytes(r->exchange), amqp_cstring_bytes(r->bindings[b]),
                            amqp_empty_table);
            if (wr_amqp_check(amqp_get_rpc_reply(conn), "queue.bind", err, sizeof err))
                goto fail;
        }
        ok = amqp_basic_consume(conn, (amqp_channel_t)channel, amqp_cstring_bytes(queues[i]),
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
        wr_error("route %s: queue %s: %s", r->name, queues[i], err);
        return -1;
    }
    return 0;
}

void wr_topology_leave(amqp_connection_state_t conn, int channel, const wr_config *cfg,
                       char *const *queues, char *const *tags)
{
    for (size_t i = 0; i < cfg->nroutes; i++) {
        if (!cfg->routes[i].broadcast || !tags[i])
            continue;
        amqp_basic_cancel(conn, (amqp_channel_t)channel, amqp_cstring_bytes(tags[i]));
        if (amqp_get_rpc_reply(conn).reply_type != AMQP_RESPONSE_NORMAL)
            return;
        /* if-unused: another worker of this instance still consumes it
         * (the broker then closes the channel, which ends our part). */
        amqp_queue_delete(conn, (amqp_channel_t)channel, amqp_cstring_bytes(queues[i]), 1, 0);
        if (amqp_get_rpc_reply(conn).reply_type != AMQP_RESPONSE_NORMAL)
            return;
        wr_info("route %s: deleted this instance's broadcast queue %s", cfg->routes[i].name,
                queues[i]);
    }
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
