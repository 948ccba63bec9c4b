/*
 * From a rabbitmq-c envelope to the AMQP-free wr_delivery the formats and
 * plugins read: NUL-terminated copies of the properties they may want, and
 * the headers table as a JSON object (built only when the message has
 * headers).
 */
#ifndef WR_WORKER_DELIVERY_H
#define WR_WORKER_DELIVERY_H

#include <amqp.h>

#include "worker/dispatch.h"

/* OUT describes ENV (which must outlive it: the body is borrowed).  The
 * copies are OUT's own: release them with wr_delivery_free.  0, or -1 out
 * of memory (OUT is then empty). */
int wr_delivery_from_envelope(wr_delivery *out, const amqp_envelope_t *env);

void wr_delivery_free(wr_delivery *d);

/*
 * When the caller of the request with properties P stops listening, in
 * unix ms, or 0 when P does not say.  The earlier of:
 *  - the x-deadline header: unix ms as an integer of any width, a float or
 *    a numeric string (an AMQP timestamp field: unix seconds);
 *  - the expiration property (ms, the broker's per-message TTL) counted
 *    from when the request was sent: the x-sent-at header, else the
 *    timestamp_in_ms header (unix ms, what RabbitMQ's message_timestamp
 *    plugin adds), else the timestamp property (unix seconds, taken as the
 *    end of that second so a request is never judged late early).  An
 *    expiration without any of them, or of 0 (the broker's "only if it
 *    can be delivered at once"), sets no deadline.
 * Values that are not positive numbers are ignored.  *FROM (when FROM is
 * not NULL) gets "x-deadline" or "expiration" (static), NULL with 0.
 */
long long wr_delivery_deadline_ms(const amqp_basic_properties_t *p, const char **from);

/* The wall clock, unix ms: what deadlines are compared with. */
long long wr_delivery_now_ms(void);

/* The AMQP table T as a JSON object (a new reference; NULL out of memory):
 * strings and byte arrays as strings (invalid UTF-8 as null), integers of
 * every width (a u64 above 2^63-1 as a string of its digits), floats (NaN
 * and infinities as null), decimals as strings of their exact value
 * ("123.45"), booleans, timestamps as integers (seconds), void as null,
 * nested tables and arrays (those nested over 64 deep as null). */
json_t *wr_amqp_table_to_json(const amqp_table_t *t);

#endif
