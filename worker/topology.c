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

/* Whether R is the broker refusing a declare because what exists differs
 * (406 PRECONDITION_FAILED): another try cannot help. */
static int precondition_failed(amqp_rpc_reply_t r)
{
    return r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
           r.reply.id == AMQP_CHANNEL_CLOSE_METHOD &&
           ((amqp_channel_close_t *)r.reply.decoded)->reply_code == AMQP_PRECONDITION_FAILED;
}

/* What the operator can change to match the existing queue or exchange,
 * judged by the argument the broker's reply names. */
static const char *conflict_hint(const char *broker_says)
{
    if (strstr(broker_says, "'x-queue-type'"))
        return "set queue_type in the route to the existing queue's type";
    if (strstr(broker_says, "'x-dead-letter-"))
        return "set dead_letter in the route to match (no: the existing queue has no dead-letter "
               "exchange)";
    if (strstr(broker_says, "'x-delivery-limit'"))
        return "set [pool] max_attempts to the existing queue's x-delivery-limit";
    if (strstr(broker_says, "'type'"))
        return "declare the exchange with the type it has";
    return "declare it as it exists";
}

/* Log the conflict R names for OBJECT ("queue warren.rpc") of ROUTE, with
 * what warren declared and what to do. */
static void log_conflict(const wr_route *route, const char *object, const char *declared,
                         const char *err, const char *delete_cmd)
{
    wr_error("route %s: %s already exists with other arguments; the broker says: %s.  warren "
             "declares it %s.  To fix: %s, or delete it (%s) so that warren declares it anew.  "
             "Stopping: retrying cannot help",
             route->name, object, err, declared, conflict_hint(err), delete_cmd);
}

/* Declare queue NAME of ROUTE, durable, with ARGS.  0, -1 (ERR filled) or
 * WR_TOPOLOGY_CONFLICT (logged). */
static int declare_queue(amqp_connection_state_t conn, int channel, const wr_route *route,
                         const char *name, amqp_table_t args, const char *declared, char *err,
                         size_t errlen)
{
    amqp_rpc_reply_t r;

    /* Durable and never transient: RabbitMQ 4.3 refuses a non-durable,
     * non-exclusive queue. */
    amqp_queue_declare(conn, (amqp_channel_t)channel, amqp_cstring_bytes(name), 0, 1 /* durable */,
                       0, 0, args);
    r = amqp_get_rpc_reply(conn);
    if (!wr_amqp_check(r, "queue.declare", err, errlen))
        return 0;
    if (precondition_failed(r)) {
        char object[300], says[512], cmd[400];
        amqp_channel_close_t *m = r.reply.decoded;

        snprintf(object, sizeof object, "queue %s", name);
        snprintf(says, sizeof says, "%.*s", (int)m->reply_text.len, (char *)m->reply_text.bytes);
        snprintf(cmd, sizeof cmd, "rabbitmqctl delete_queue '%s'; its messages go with it", name);
        log_conflict(route, object, declared, says, cmd);
        return WR_TOPOLOGY_CONFLICT;
    }
    return -1;
}

/* Declare EXCHANGE durable of TYPE.  0, -1 (ERR filled) or
 * WR_TOPOLOGY_CONFLICT (logged). */
static int declare_exchange(amqp_connection_state_t conn, int channel, const wr_route *route,
                            const char *exchange, const char *type, char *err, size_t errlen)
{
    amqp_rpc_reply_t r;

    amqp_exchange_declare(conn, (amqp_channel_t)channel, amqp_cstring_bytes(exchange),
                          amqp_cstring_bytes(type), 0, 1 /* durable */, 0, 0, amqp_empty_table);
    r = amqp_get_rpc_reply(conn);
    if (!wr_amqp_check(r, "exchange.declare", err, errlen))
        return 0;
    if (precondition_failed(r)) {
        char object[300], declared[64], says[512], cmd[400];
        amqp_channel_close_t *m = r.reply.decoded;

        snprintf(object, sizeof object, "exchange %s", exchange);
        snprintf(declared, sizeof declared, "durable, of type %s", type);
        snprintf(says, sizeof says, "%.*s", (int)m->reply_text.len, (char *)m->reply_text.bytes);
        snprintf(cmd, sizeof cmd, "rabbitmqadmin delete exchange name='%s'", exchange);
        log_conflict(route, object, declared, says, cmd);
        return WR_TOPOLOGY_CONFLICT;
    }
    return -1;
}

/*
 * The route's dead-letter side: the shared exchange WR_DEAD_LETTER_EXCHANGE
 * and "<queue>.dead" bound to it under the route's queue name, of the
 * route's queue type (a quorum route's dead letters deserve the same
 * replication).  0, -1 (ERR filled) or WR_TOPOLOGY_CONFLICT.
 */
static int declare_dead_letter(amqp_connection_state_t conn, int channel, const wr_route *r,
                               const char *queue, char *err, size_t errlen)
{
    const char *type = r->queue_type == WR_QUEUE_QUORUM ? "quorum" : "classic";
    amqp_table_entry_t arg = {
        .key = amqp_cstring_bytes("x-queue-type"),
        .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes(type)}};
    char dead[300], declared[128];
    int rc;

    rc = declare_exchange(conn, channel, r, WR_DEAD_LETTER_EXCHANGE, "direct", err, errlen);
    if (rc)
        return rc;
    snprintf(dead, sizeof dead, "%s%s", queue, WR_DEAD_LETTER_SUFFIX);
    snprintf(declared, sizeof declared, "durable with x-queue-type %s (queue_type)", type);
    rc = declare_queue(conn, channel, r, dead, (amqp_table_t){.num_entries = 1, .entries = &arg},
                       declared, err, errlen);
    if (rc)
        return rc;
    amqp_queue_bind(conn, (amqp_channel_t)channel, amqp_cstring_bytes(dead),
                    amqp_cstring_bytes(WR_DEAD_LETTER_EXCHANGE), amqp_cstring_bytes(queue),
                    amqp_empty_table);
    return wr_amqp_check(amqp_get_rpc_reply(conn), "queue.bind (dead letters)", err, errlen);
}

int wr_topology_setup(amqp_connection_state_t conn, int channel, const wr_config *cfg,
                      char *const *queues, char **tags)
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
        /* x-queue-type always: RabbitMQ 4 gives a declare without one
         * the vhost's default type (maybe quorum), and that queue would
         * then not match a later classic declare.  With it the declare
         * means the same on every broker and vhost; and a queue an older
         * warren declared without it is classic, which the broker (3.10
         * and 4.x) finds equivalent. */
        amqp_table_entry_t args[5];
        int nargs = 0, rc;
        char declared[300], limit[64] = "";

        if (r->exchange_declare) {
            rc = declare_exchange(conn, channel, r, r->exchange,
                                  exchange_type_names[r->exchange_declare], err, sizeof err);
            if (rc == WR_TOPOLOGY_CONFLICT)
                return rc;
            if (rc)
                goto fail;
        }
        args[nargs++] = (amqp_table_entry_t){
            .key = amqp_cstring_bytes("x-queue-type"),
            .value = {.kind = AMQP_FIELD_KIND_UTF8,
                      .value.bytes = amqp_cstring_bytes(
                          r->queue_type == WR_QUEUE_QUORUM ? "quorum" : "classic")}};
        /* A broadcast queue is the instance's own: no replication needed
         * (config.c keeps it classic), and x-expires removes it when the
         * instance dies without stopping. */
        if (r->broadcast)
            args[nargs++] = (amqp_table_entry_t){
                .key = amqp_cstring_bytes("x-expires"),
                .value = {.kind = AMQP_FIELD_KIND_I32, .value.i32 = WR_BROADCAST_EXPIRES_MS}};
        /* The broker's own attempt count, the backstop that makes
         * max_attempts exact: with limit N it delivers a message N + 1
         * times at most (x-delivery-count 0..N, checked on 3.10).  Runs 1..N
         * are the attempts; a worker refuses delivery N + 1 without running
         * it (worker/attempts.c), and should that refusal be lost too, the
         * broker dead-letters the message itself. */
        if (r->queue_type == WR_QUEUE_QUORUM)
            args[nargs++] = (amqp_table_entry_t){
                .key = amqp_cstring_bytes("x-delivery-limit"),
                .value = {.kind = AMQP_FIELD_KIND_I32, .value.i32 = cfg->max_attempts}};
        if (r->dead_letter) {
            args[nargs++] = (amqp_table_entry_t){
                .key = amqp_cstring_bytes("x-dead-letter-exchange"),
                .value = {.kind = AMQP_FIELD_KIND_UTF8,
                          .value.bytes = amqp_cstring_bytes(WR_DEAD_LETTER_EXCHANGE)}};
            args[nargs++] =
                (amqp_table_entry_t){.key = amqp_cstring_bytes("x-dead-letter-routing-key"),
                                     .value = {.kind = AMQP_FIELD_KIND_UTF8,
                                               .value.bytes = amqp_cstring_bytes(queues[i])}};
        }
        if (r->queue_type == WR_QUEUE_QUORUM)
            snprintf(limit, sizeof limit, ", x-delivery-limit %d ([pool] max_attempts)",
                     cfg->max_attempts);
        snprintf(declared, sizeof declared, "durable with x-queue-type %s (queue_type)%s%s%s",
                 r->queue_type == WR_QUEUE_QUORUM ? "quorum" : "classic", limit,
                 r->dead_letter ? ", x-dead-letter-exchange " WR_DEAD_LETTER_EXCHANGE
                                  " (dead_letter = yes)"
                                : ", no dead-letter exchange (dead_letter = no)",
                 r->broadcast ? ", x-expires (broadcast)" : "");
        rc = declare_queue(conn, channel, r, queues[i],
                           (amqp_table_t){.num_entries = nargs, .entries = args}, declared, err,
                           sizeof err);
        if (rc == WR_TOPOLOGY_CONFLICT)
            return rc;
        if (rc)
            goto fail;
        /* After the queue, so that a queue that conflicts leaves
         * nothing new behind.  Nothing is consumed before these exist. */
        if (r->dead_letter) {
            rc = declare_dead_letter(conn, channel, r, queues[i], err, sizeof err);
            if (rc == WR_TOPOLOGY_CONFLICT)
                return rc;
            if (rc)
                goto fail;
        }
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

int wr_topology_cancel(amqp_connection_state_t conn, int channel, const wr_config *cfg,
                       char *const *tags)
{
    char err[512];

    for (size_t i = 0; i < cfg->nroutes; i++) {
        if (!tags[i])
            continue;
        amqp_basic_cancel(conn, (amqp_channel_t)channel, amqp_cstring_bytes(tags[i]));
        if (wr_amqp_check(amqp_get_rpc_reply(conn), "basic.cancel", err, sizeof err)) {
            wr_error("route %s: cannot cancel its consumer to stop: %s", cfg->routes[i].name, err);
            return -1;
        }
    }
    return 0;
}

void wr_topology_leave(amqp_connection_state_t conn, int channel, const wr_config *cfg,
                       char *const *queues, char *const *tags)
{
    for (size_t i = 0; i < cfg->nroutes; i++) {
        if (!cfg->routes[i].broadcast || !tags[i])
            continue;
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
