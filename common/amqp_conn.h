/*
 * AMQP helpers shared by the worker: opening a connection the way warren
 * always wants it (timeout, TCP_NODELAY, heartbeats, a connection name the
 * broker shows, consumer_cancel_notify so a deleted queue is noticed), and turning rabbitmq-c's
 * three error shapes into one line of text.
 */
#ifndef WR_AMQP_CONN_H
#define WR_AMQP_CONN_H

#include <amqp.h>
#include <stddef.h>

/*
 * Connect to URI, log in, open channel 1.  HEARTBEAT in seconds (0: off),
 * CONNECT_TIMEOUT in seconds bounds the TCP connect and the AMQP handshake.
 * NAME is shown by the broker as the connection name.  Returns the new
 * connection (the caller destroys it with wr_amqp_close), or NULL with a
 * one-line reason in ERR.
 */
amqp_connection_state_t wr_amqp_connect(const char *uri, int heartbeat, int connect_timeout,
                                        const char *name, char *err, size_t errlen);

/* Close channel 1 and the connection politely, then free it.  NULL ok. */
void wr_amqp_close(amqp_connection_state_t conn);

/*
 * Describe R in ERR ("server closed the channel: 404 NOT_FOUND - no queue
 * 'x'", "socket error: connection refused", ...).  Returns 0 when R is a
 * normal reply, -1 otherwise.  WHAT prefixes the message ("queue.declare").
 */
int wr_amqp_check(amqp_rpc_reply_t r, const char *what, char *err, size_t errlen);

/* Copy an amqp_bytes_t into a NUL-terminated malloc'd string (caller
 * frees); NULL on allocation failure. */
char *wr_amqp_strdup(amqp_bytes_t b);

#endif
