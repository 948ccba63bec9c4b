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
 *
 * Queue types and dead letters ([route] queue_type, dead_letter; README
 * "Queues and dead letters"): a shared queue is quorum by default, with
 * x-delivery-limit = [pool] max_attempts; with dead_letter (the default)
 * it dead-letters to the direct exchange WR_DEAD_LETTER_EXCHANGE under its
 * own name, where "<queue>.dead" (durable, the same type) collects what
 * the broker or warren (worker/deadletter.c) refuses.  A declare the
 * broker refuses because the queue or exchange exists with other
 * arguments (406 PRECONDITION_FAILED) is a configuration error: logged
 * with the broker's words and what to change, and the worker stops
 * instead of reconnecting forever.
 */
#ifndef WR_WORKER_TOPOLOGY_H
#define WR_WORKER_TOPOLOGY_H

#include <amqp.h>

#include "config/config.h"

#define WR_BROADCAST_EXPIRES_MS 60000
#define WR_DEAD_LETTER_EXCHANGE "warren.dead"
#define WR_DEAD_LETTER_SUFFIX ".dead"
/* wr_topology_setup: what exists differs from what we declare. */
#define WR_TOPOLOGY_CONFLICT (-2)

/* The queue each of CFG's routes consumes, for the instance whose
 * supervisor is SUPERVISOR_PID: a malloc'd array of malloc'd names (free
 * with wr_topology_free_queue_names), or NULL out of memory. */
char **wr_topology_queue_names(const wr_config *cfg, long supervisor_pid);
void wr_topology_free_queue_names(const wr_config *cfg, char **queues);

/*
 * Set up CFG's routes, consuming QUEUES, on CHANNEL of CONN.  TAGS has one
 * slot per route: the consumer tag the broker gave each route's consumer
 * (malloc'd; an old tag in the slot is freed first).  0, or -1 with the
 * reason logged (naming the route and queue), or WR_TOPOLOGY_CONFLICT when
 * a queue or exchange exists with other arguments (logged: the broker's
 * reply and what to change), which no retry can fix.
 */
int wr_topology_setup(amqp_connection_state_t conn, int channel, const wr_config *cfg,
                      char *const *queues, char **tags);

/*
 * The first step of a clean stop: cancel every route's consumer, so that
 * the broker sends no more deliveries and the worker can answer those it
 * already holds instead of handing them back unanswered (which, on a
 * quorum queue, would count as a delivery attempt).  Each basic.cancel
 * waits for its cancel-ok; rabbitmq-c (0.11, simple_rpc) keeps the frames
 * that arrive before it -- deliveries, confirms -- in its frame queue
 * (amqp_frames_enqueued), where amqp_consume_message reads them next, so
 * once this returns every delivery the worker will get is in rabbitmq-c's
 * hands.  TAGS are left as they are (the deliveries still to run name
 * them).  0, or -1 with the reason logged when the connection or channel
 * failed.
 */
int wr_topology_cancel(amqp_connection_state_t conn, int channel, const wr_config *cfg,
                       char *const *tags);

/* At the end of a clean stop, after wr_topology_cancel and once every
 * request is settled: delete the broadcast routes' queues if no other
 * worker of this instance still consumes them.  Best effort: failures are
 * expected (another worker still consumes). */
void wr_topology_leave(amqp_connection_state_t conn, int channel, const wr_config *cfg,
                       char *const *queues, char *const *tags);

/* The route whose consumer has tag TAG, or NULL.  Borrowed. */
const wr_route *wr_topology_route_of(const wr_config *cfg, char *const *tags, amqp_bytes_t tag);

#endif
