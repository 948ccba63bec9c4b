/*
 * A reply_to read as an AMQP 1.0 address.  A 1.0 caller names where its
 * reply goes with an address, and the broker hands that string to a
 * 0-9-1 consumer as reply_to unchanged; this turns it into the exchange
 * and routing key a 0-9-1 publish needs.
 *
 *   RabbitMQ 4 (v2, each part percent-encoded):
 *     /queues/NAME            -> ("", NAME)
 *     /exchanges/NAME         -> (NAME, "")
 *     /exchanges/NAME/KEY     -> (NAME, KEY)
 *   RabbitMQ 3.x (v1, taken literally; refused by 4.3's defaults):
 *     /queue/NAME, /amq/queue/NAME -> ("", NAME)
 *     /exchange/NAME[/KEY]    -> (NAME, KEY or "")
 *     /topic/KEY              -> ("amq.topic", KEY)
 *   anything else (a plain queue name, amq.gen-..., direct reply-to
 *   amq.rabbitmq.reply-to...) -> ("", REPLY_TO): as a 0-9-1 caller means it.
 *
 * A string that starts like one of these forms but is not one (bad
 * percent-encoding, an empty queue or exchange name, a '/' unencoded in
 * a v2 part, an encoded NUL) is refused rather than guessed at: no queue
 * of that literal name would take the reply either, and a log line says
 * more than a reply that silently vanishes.
 */
#ifndef WR_WORKER_ADDRESS_H
#define WR_WORKER_ADDRESS_H

#include <stddef.h>

/* wr_address_resolve's results. */
#define WR_ADDRESS_OK 0
#define WR_ADDRESS_EINVAL (-1) /* a malformed address of a known form */
#define WR_ADDRESS_ENOMEM (-2)

/*
 * Resolve the LEN bytes at REPLY_TO (need not be NUL-terminated).  On
 * WR_ADDRESS_OK, *EXCHANGE ("" for the default exchange) and *KEY are
 * new NUL-terminated strings the caller frees; on an error both are NULL.
 */
__attribute__((warn_unused_result)) int wr_address_resolve(const char *reply_to, size_t len,
                                                           char **exchange, char **key);

/* What a wr_address_resolve result means (static text). */
const char *wr_address_strerror(int err);

#endif
