/*
 * Refused requests: why a delivery is refused without being run, and the
 * copy of it that warren itself dead-letters.
 *
 * The broker dead-letters on its own what a reject or its delivery limit
 * drops, but a reject cannot add headers.  So on a route with dead_letter
 * = yes a worker that refuses a request publishes a copy to the
 * dead-letter exchange (worker/topology.h: WR_DEAD_LETTER_EXCHANGE, under
 * the route's queue name, so it lands in "<queue>.dead"), with the
 * original body, properties and headers and these headers added:
 *
 *   x-warren-reason      why, after "it": "killed 3 workers"
 *   x-warren-attempts    the deaths counted (or deliveries the broker counted)
 *   x-warren-last-death  the supervisor's words for the last worker's
 *                        death ("killed by signal 11 (Segmentation fault)");
 *                        absent when unknown
 *   x-warren-route       the route's name
 *   x-warren-queue       the queue it came from (where to requeue it)
 *
 * and then acks the original.  Left out of the copy: expiration (it would
 * expire in the dead-letter queue; kept as x-warren-expiration), user_id
 * (the broker refuses a publish whose user_id is not the connection's
 * user; kept as x-warren-user-id), and the source queue's counters
 * x-delivery-count and x-acquired-count.
 */
#ifndef WR_WORKER_DEADLETTER_H
#define WR_WORKER_DEADLETTER_H

#include <amqp.h>

#include "common/ipc.h"
#include "config/config.h"

typedef struct wr_refusal {
    unsigned attempts;                     /* x-warren-attempts */
    char reason[128];                      /* x-warren-reason */
    char last_death[2 * WR_IPC_TOKEN_MAX]; /* x-warren-last-death; "" unknown */
} wr_refusal;

/* OUT says why the supervisor's poison entry POISON is refused. */
void wr_refusal_from_poison(wr_refusal *out, const wr_ipc_msg *poison);

/*
 * Publish the copy of ENV's message described above on CHANNEL of CONN,
 * for ROUTE (which has dead_letter set), refused as WHY.  0 once it is
 * handed to the socket (the caller then acks the original), or -1 with
 * the reason logged (the connection failed or memory ran out: the caller
 * leaves the original unacked, and the broker redelivers it).
 */
int wr_deadletter_publish(amqp_connection_state_t conn, amqp_channel_t channel,
                          const wr_route *route, const amqp_envelope_t *env, const wr_refusal *why)
    __attribute__((warn_unused_result));

#endif
