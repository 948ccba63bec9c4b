/*
 * The exact attempt limit on quorum queues.
 *
 * The supervisor's poison list (supervisor/poison.c) learns of a death
 * only after it happened, so a worker may take the message's next
 * delivery before the "poison" command reaches it, and run it once more
 * than [pool] max_attempts.  A quorum queue counts for itself: every
 * delivery carries the number of earlier ones that ended without an ack
 * (x-delivery-count; RabbitMQ 4.3 also x-acquired-count), whether the
 * worker died or its connection was lost.  A delivery that has had
 * max_attempts of them is refused here without being run, so no message
 * runs more than max_attempts times however workers race; the queue's
 * x-delivery-limit (worker/topology.c) is the broker's backstop should
 * that refusal be lost too.
 */
#ifndef WR_WORKER_ATTEMPTS_H
#define WR_WORKER_ATTEMPTS_H

#include <amqp.h>

#include "common/ipc.h"
#include "config/config.h"
#include "worker/commands.h"
#include "worker/deadletter.h"

/* How long a worker waits for the supervisor's account of the deaths
 * (for the refusal's headers) once the broker's count says "refuse". */
#define WR_ATTEMPTS_WAIT_MS 1000

/* The earlier deliveries the broker counted for P's message: the larger
 * of x-delivery-count and x-acquired-count, 0 when neither is there. */
long wr_attempts_prior(const amqp_basic_properties_t *p);

/*
 * Whether ENV, delivered on ROUTE, has used up MAX_ATTEMPTS (only quorum
 * queues count).  If so, fill OUT: from the supervisor's poison entry for
 * START (route, msgid, hash) when it arrives within WR_ATTEMPTS_WAIT_MS,
 * else from the broker's count.  1 refuse, 0 run it.
 */
int wr_attempts_spent(wr_commands *c, const wr_route *route, int max_attempts,
                      const wr_ipc_msg *start, const amqp_envelope_t *env, wr_refusal *out);

#endif
