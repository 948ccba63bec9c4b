/*
 * The backlog for the dynamic pool ([pool] min_workers / max_workers):
 * how many messages wait, ready, in a worker's route queues.  Counted
 * with a passive queue.declare per queue (its declare-ok carries the
 * queue's ready-message count), not the management plugin, on a channel
 * of its own so that a failure (a queue deleted under us: 404 closes the
 * channel) never closes the consuming channel.  Frames for the consuming
 * channel that arrive during the round trips are queued by rabbitmq-c and
 * read by the worker's loop afterwards.
 *
 * The worker counts only while its supervisor asks (want_backlog in the
 * scoreboard slot), between calls, at most once a second
 * (worker/worker.c), and writes the sum into its slot.
 */
#ifndef WR_WORKER_BACKLOG_H
#define WR_WORKER_BACKLOG_H

#include <amqp.h>
#include <stddef.h>

/* The worker's channel for counting (1 consumes, 2 checks exchanges). */
#define WR_BACKLOG_CHANNEL 3
/* wr_backlog_count: the connection itself failed. */
#define WR_BACKLOG_CONNECTION_LOST (-2)

/*
 * The sum of the ready messages in the N queues QUEUES, counted on
 * CHANNEL of CONN, opened first unless *OPEN (then set; cleared again when
 * the broker closes the channel).  Returns the sum; -1 (ERR filled) when
 * the broker refused a declare or the channel (the connection is fine);
 * WR_BACKLOG_CONNECTION_LOST (ERR filled) when the connection failed.
 * EACH (N longs, or NULL) gets each queue's count; on failure, those
 * counted before it.
 */
long wr_backlog_count(amqp_connection_state_t conn, int channel, int *open, char *const *queues,
                      size_t n, long *each, char *err, size_t errlen);

#endif
