/*
 * Replies, and the acks that follow them, in as few send()s as can be.
 * rabbitmq-c's amqp_basic_publish sends the method, the content header
 * and the body frame in a syscall each (two with MSG_MORE), and
 * amqp_basic_ack one more: at prefetch 1 with four workers the three
 * publish sends were about a tenth of a worker's CPU per echo call.
 * wr_publish encodes the same frames with rabbitmq-c's own encoders
 * (amqp_encode_method, amqp_encode_properties) into a buffer, which goes
 * to the socket in one send with the next ack or flush: on a plain TCP
 * connection (a TLS one must go through OpenSSL) and for a body that
 * fits one frame.  Anything else goes through amqp_basic_publish, with
 * the same result on the wire.
 *
 * rabbitmq-c queues nothing to send (every one of its sends completes
 * before it returns), so writing beside it cannot cut into one of its
 * frames.  It only does not see these bytes: it may send a heartbeat
 * that was not needed, which the broker ignores.
 */
#ifndef WR_WORKER_PUBLISH_H
#define WR_WORKER_PUBLISH_H

#include <amqp.h>
#include <stdint.h>

/* CONN, a plain TCP connection, may be written to directly; NULL (or any
 * other connection): none may.  The worker says so after every connect;
 * what was queued for the previous connection is dropped. */
void wr_publish_direct(amqp_connection_state_t conn);

/*
 * amqp_basic_publish(CONN, CHANNEL, EXCHANGE, KEY, MANDATORY, 0, PROPS,
 * BODY).  When CONN may be written to directly, the frames are only
 * queued here: they go with the next wr_publish_ack or wr_publish_flush,
 * in one send (a reply and the ack it allows leave together).  The worker
 * flushes before it waits, before it runs a handler and before a round
 * trip to the broker, so a reply never waits behind anything.  Every
 * other send goes through here too, after what is queued: the broker
 * numbers publishes for its confirms in the order they arrive, and an
 * ack must never overtake the reply of its request.  An amqp_status_enum:
 * AMQP_STATUS_OK, or why it failed.
 */
int wr_publish(amqp_connection_state_t conn, amqp_channel_t channel, amqp_bytes_t exchange,
               amqp_bytes_t routing_key, int mandatory, const amqp_basic_properties_t *props,
               amqp_bytes_t body);

/* Send what is queued.  AMQP status. */
int wr_publish_flush(amqp_connection_state_t conn);

/* basic.ack of TAG (MULTIPLE: and of every one below), after and with
 * what is queued.  AMQP status. */
int wr_publish_ack(amqp_connection_state_t conn, amqp_channel_t channel, uint64_t tag,
                   int multiple);

/* basic.reject of TAG, after what is queued.  AMQP status. */
int wr_publish_reject(amqp_connection_state_t conn, amqp_channel_t channel, uint64_t tag,
                      int requeue);

/* The buffer wr_publish keeps between calls goes. */
void wr_publish_free(void);

#endif
