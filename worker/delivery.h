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

/* The AMQP table T as a JSON object (a new reference; NULL out of memory):
 * strings and byte arrays as strings (invalid UTF-8 as null), numbers,
 * booleans, timestamps as integers, nested tables and arrays. */
json_t *wr_amqp_table_to_json(const amqp_table_t *t);

#endif
