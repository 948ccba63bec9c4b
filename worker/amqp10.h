/*
 * AMQP 1.0 encoded bodies and headers, as RabbitMQ hands them to a 0-9-1
 * consumer: a message an AMQP 1.0 client sent whose body is not one plain
 * data section arrives with `type = amqp-1.0` and its body sections,
 * encoded, as the body; RabbitMQ 3.x also passes the message's
 * properties, application properties, message annotations and footer as
 * encoded sections in the headers x-amqp-1.0-properties,
 * x-amqp-1.0-app-properties, x-amqp-1.0-message-annotations and
 * x-amqp-1.0-footer.  Decoding is Qpid Proton's (pn_data_t); this module
 * bounds what it is given and maps the values to text and JSON.
 *
 * The JSON mapping (body amqp-value and sequence, and the headers):
 *   null, boolean                       → null, true/false
 *   byte..long, ubyte..ulong            → integer; a ulong above 2^63-1
 *                                         → a string of its digits
 *   float, double                       → real (NaN, ±inf → null)
 *   char                                → a one-character string
 *   string, symbol                      → string (must be UTF-8)
 *   binary                              → string when UTF-8, else its
 *                                         base64 (RFC 4648, padded)
 *   timestamp                           → integer, ms since the epoch
 *   uuid                                → "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
 *                                         (lowercase, no urn: prefix)
 *   list, array                         → array
 *   map                                 → object; a key that is not a
 *                                         string or symbol is keyed by its
 *                                         JSON text (1 → "1"); the last of
 *                                         duplicate keys wins
 *   decimal32/64/128, a described value → refused (bad input)
 */
#ifndef WR_WORKER_AMQP10_H
#define WR_WORKER_AMQP10_H

#include <jansson.h>
#include <stddef.h>

/* Deeper nesting is refused before Proton sees it (its 0.37 decoder
 * recurses once per level). */
#define WR_AMQP10_MAX_DEPTH 64

#define WR_AMQP10_EBAD (-1)   /* the input is not what it should be */
#define WR_AMQP10_ENOMEM (-2) /* out of memory */

/*
 * The body a route's format reads, from BODY (LEN bytes: encoded
 * sections).  data sections give their bytes, concatenated; an amqp-value
 * holding a string or binary gives its bytes, any other amqp-value its
 * JSON text (mapping above); amqp-sequence sections give one JSON array of
 * all their items.  Header, annotation, property and footer sections are
 * skipped; no body section at all gives an empty body.
 *
 * 0 with *OUT (malloc'd, NUL-terminated, the caller frees it) and
 * *OUTLEN; or WR_AMQP10_EBAD / _ENOMEM with ERR (ERRLEN bytes) saying
 * what is wrong and *OUT NULL.  Work and memory are linear in LEN.
 */
int wr_amqp10_unwrap(const void *body, size_t len, char **out, size_t *outlen, char *err,
                     size_t errlen) __attribute__((warn_unused_result));

/*
 * One encoded section BUF (LEN bytes, nothing after it) as JSON, for the
 * x-amqp-1.0-* headers: a map section (application properties, message
 * or delivery annotations, footer) as an object, a properties section as
 * an object keyed by the field names (message-id, user-id, to, subject,
 * reply-to, correlation-id, content-type, content-encoding,
 * absolute-expiry-time, creation-time, group-id, group-sequence,
 * reply-to-group-id; absent fields left out), any other section as its
 * value's JSON.  0 with *OUT (a new reference), or WR_AMQP10_EBAD /
 * _ENOMEM with ERR.
 */
int wr_amqp10_section_to_json(const void *buf, size_t len, json_t **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * The AMQP 1.0 properties section of a reply to a request whose
 * properties section is REQ (REQ_LEN bytes: what RabbitMQ 3.x passes in
 * the x-amqp-1.0-properties header): the request's correlation-id, in its
 * own type (a uuid stays a uuid, a ulong a ulong), and CONTENT_TYPE.
 * RabbitMQ 3.x uses such a header, when a 0-9-1 message carries it, as
 * the properties of the AMQP 1.0 message it delivers, so the caller gets
 * its correlation id back as it sent it.  0 with *OUT (malloc'd, *OUTLEN
 * bytes; the caller frees it); WR_AMQP10_EBAD when REQ is not a properties
 * section or has no correlation-id; WR_AMQP10_ENOMEM.
 */
int wr_amqp10_reply_properties(const void *req, size_t req_len, const char *content_type,
                               char **out, size_t *outlen) __attribute__((warn_unused_result));

#endif
