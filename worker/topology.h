/*
 * What a worker declares on every (re)connect: each route's durable queue
 * and bindings, a check that its reply exchange exists, the prefetch, and
 * one consumer per route.
 */
#ifndef WR_WORKER_TOPOLOGY_H
#define WR_WORKER_TOPOLOGY_H

#include <amqp.h>

#include "config/config.h"

/*
 * Set up CFG's routes on CHANNEL of CONN.  TAGS has one slot per route:
 * the consumer tag the broker gave each route's consumer (malloc'd; an
 * old tag in the slot is freed first).  0, or -1 with the reason logged
 * (naming the route and queue).
 */
int wr_topology_setup(amqp_connection_state_t conn, int channel, const wr_config *cfg, char **tags);

/* The route whose consumer has tag TAG, or NULL.  Borrowed. */
const wr_route *wr_topology_route_of(const wr_config *cfg, char *const *tags, amqp_bytes_t tag);

#endif
