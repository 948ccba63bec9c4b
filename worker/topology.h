/*
 * What a worker declares on every (re)connect: the exchanges warren is
 * asked to declare, each route's queue and bindings, a check that its
 * reply exchange exists, the prefetch, and one consumer per route.
 *
 * A shared route's queue is durable and shared by every worker of every
 * instance.  A broadcast route's queue belongs to one instance: named
 * "<queue or warren.ROUTE>.<host>.<supervisor pid>", shared by that
 * instance's workers only, durable with x-expires (WR_BROADCAST_EXPIRES_MS:
 * RabbitMQ 4 refuses transient shared queues), and deleted by the last of
 * the instance's workers to stop; x-expires removes it when the instance
 * dies without stopping.
 */
#ifndef WR_WORKER_TOPOLOGY_H
#define WR_WORKER_TOPOLOGY_H

#include <amqp.h>

#include "config/config.h"

#define WR_BROADCAST_EXPIRES_MS 60000

/* The queue each of CFG's routes consumes, for the instance whose
 * supervisor is SUPERVISOR_PID: a malloc'd array of malloc'd names (free
 * with wr_topology_free_queue_names), or NULL out of memory. */
char **wr_topology_queue_names(const wr_config *cfg, long supervisor_pid);
void wr_topology_free_queue_names(const wr_config *cfg, char **queues);

/*
 * Set up CFG's routes, consuming QUEUES, on CHANNEL of CONN.  TAGS has one
 * slot per route: the consumer tag the broker gave each route's consumer
 * (malloc'd; an old tag in the slot is freed first).  0, or -1 with the
 * reason logged (naming the route and queue).
 */
int wr_topology_setup(amqp_connection_state_t conn, int channel, const wr_config *cfg,
                      char *const *queues, char **tags);

/* On a clean stop: cancel the broadcast routes' consumers and delete
 * their queues if no other worker of this instance still consumes them.
 * Best effort: failures are expected (another worker still consumes). */
void wr_topology_leave(amqp_connection_state_t conn, int channel, const wr_config *cfg,
                       char *const *queues, char *const *tags);

/* The route whose consumer has tag TAG, or NULL.  Borrowed. */
const wr_route *wr_topology_route_of(const wr_config *cfg, char *const *tags, amqp_bytes_t tag);

#endif
