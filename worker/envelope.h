/*
 * A delivery read off the connection by the worker itself, in place of
 * rabbitmq-c's amqp_consume_message().
 *
 * Why: rabbitmq-c 0.11 gives every message a fresh 4 KiB pool for its
 * properties (a calloc that clears 4 KiB) and four more allocations for
 * the body and the three names of the basic.deliver.  For a 16-byte echo
 * call that was 12 % of a worker's instructions (callgrind; BENCHMARKS.md,
 * "Profile").  Here everything the envelope points at goes into one
 * allocation sized to fit: the consumer tag, exchange and routing key,
 * the properties' strings, and the body.  Only a headers table, when the
 * message has one, is cloned into the message's pool (rabbitmq-c's own
 * amqp_table_clone); the pool stays empty otherwise.
 *
 * The result is an ordinary amqp_envelope_t that the rest of the worker
 * reads as before; it must be released with wr_envelope_free(), never
 * with amqp_destroy_envelope() (its pointers are not separate blocks).
 */
#ifndef WR_WORKER_ENVELOPE_H
#define WR_WORKER_ENVELOPE_H

#include <amqp.h>
#include <stdint.h>

/*
 * Lay out ENV for the delivery D whose content header carries PROPS and
 * announces BODY_SIZE bytes: copies D's names and PROPS (strings and
 * headers) into storage ENV owns, and leaves env->message.body pointing
 * at BODY_SIZE uninitialised bytes for the caller to fill.  Neither D nor
 * PROPS is referenced afterwards (they may live in rabbitmq-c's frame
 * pool, recycled by the next amqp_maybe_release_buffers()).
 * Returns 0, AMQP_STATUS_NO_MEMORY (ENV is then empty and needs no free),
 * or AMQP_STATUS_BAD_AMQP_DATA when BODY_SIZE cannot be held.
 */
int wr_envelope_build(amqp_envelope_t *env, amqp_channel_t channel, const amqp_basic_deliver_t *d,
                      const amqp_basic_properties_t *props, uint64_t body_size);

/*
 * DELIVER is a basic.deliver method frame just read from CONN: read the
 * content header and body frames that follow it (blocking, as they are
 * already on their way: the broker sends a message's frames together)
 * and build ENV from them.  Returns 0, or a negative AMQP_STATUS_* (the
 * connection failed, or sent something else than the message's content:
 * AMQP_STATUS_UNEXPECTED_STATE); ENV is then empty.
 */
int wr_envelope_read(amqp_connection_state_t conn, const amqp_frame_t *deliver,
                     amqp_envelope_t *env);

/* Release what wr_envelope_build() or _read() put in ENV; ENV is left
 * empty.  An empty (zeroed) ENV is fine. */
void wr_envelope_free(amqp_envelope_t *env);

#endif
