/*
 * A small blocking AMQP RPC client: one connection, one channel, one reply
 * queue.  warren-call is built on it, and so are the integration tests, so
 * both speak to warren exactly as a tutorial-style client does: publish a
 * request with reply_to + correlation_id, read replies from the reply
 * queue.
 */
#ifndef WR_RPC_CLIENT_H
#define WR_RPC_CLIENT_H

#include <stddef.h>

typedef struct wr_client wr_client; /* opaque */

enum wr_client_reply_mode {
    WR_CLIENT_REPLY_QUEUE = 0, /* an exclusive, server-named queue */
    WR_CLIENT_DIRECT_REPLY_TO, /* amq.rabbitmq.reply-to */
    WR_CLIENT_NO_REPLY         /* no reply queue at all (notifications) */
};

/*
 * Connect to URI (amqp://user:pass@host:port/vhost, or amqps://), open a
 * channel and set up the reply queue as MODE says.  From the environment:
 * $WARREN_BROKER_PASSWORD, when set, is the password; for amqps://,
 * $WARREN_CACERT names the CA file to trust (default: the system's CAs),
 * $WARREN_CERT and $WARREN_KEY a client certificate and its key.  Returns 0 and *out (free with
 * wr_client_close), or -1 with a one-line reason in ERR.
 */
int wr_client_connect(wr_client **out, const char *uri, int mode, char *err, size_t errlen);

/* The reply queue's name (for reply_to), or NULL in NO_REPLY mode.
 * Borrowed. */
const char *wr_client_reply_queue(const wr_client *c);

/* Also bind the reply queue to EXCHANGE under KEY (for routes that reply
 * to an exchange with a routing-key prefix).  0 or -1 with ERR. */
int wr_client_bind_reply(wr_client *c, const char *exchange, const char *key, char *err,
                         size_t errlen);

/*
 * Publish with the mandatory flag from now on (ON != 0) or not (the
 * default).  A mandatory message that no queue takes comes back from the
 * broker; wr_client_recv (or wr_client_flush) then fails with
 * "broker returned the message: 312 NO_ROUTE ...", instead of the caller
 * waiting in vain for a reply.  (Addition to the original interface.)
 */
void wr_client_set_mandatory(wr_client *c, int on);

/*
 * The content type later publishes carry: TYPE (borrowed: it must outlive
 * C, a string literal is the usual case), or none at all when NULL.  The
 * default is "application/json".  (For warren-call's raw format, which
 * sends bodies that need not be JSON.)
 */
void wr_client_set_content_type(wr_client *c, const char *type);

/*
 * The `type` property later publishes carry: TYPE (borrowed, as for the
 * content type), or none when NULL (the default).  `amqp-1.0` marks a body
 * of AMQP 1.0 encoded sections, as RabbitMQ marks what AMQP 1.0 clients
 * send.  (Addition to the original interface, for the tests.)
 */
void wr_client_set_type(wr_client *c, const char *type);

/*
 * Give later publishes a deadline TTL_MS milliseconds after each is sent
 * (0, the default: none): the `expiration` property (so the broker drops
 * the request if it is still queued then) and an `x-deadline` header
 * (unix ms, a signed 64-bit integer; so a warren worker that gets it later
 * from its prefetch window answers with a timeout error instead of
 * running it).  For a caller that stops waiting after TTL_MS.  (Addition
 * to the original interface.)
 */
void wr_client_set_deadline(wr_client *c, long long ttl_ms);

/*
 * Publish BODY to EXCHANGE ("" = default) with ROUTING_KEY.  When
 * CORRELATION_ID is non-NULL it is set, and reply_to is set to the reply
 * queue (unless the mode is NO_REPLY).  PERSISTENT sets delivery_mode 2.
 * Content type as wr_client_set_content_type says (application/json by
 * default).  0 or -1 with ERR.
 */
int wr_client_publish(wr_client *c, const char *exchange, const char *routing_key, const char *body,
                      size_t len, const char *correlation_id, int persistent, char *err,
                      size_t errlen);

/*
 * One round trip to the broker: returns once it has processed everything
 * published before on this channel.  Reports -1 with ERR when an earlier
 * publish failed there (unknown exchange: the broker closes the channel)
 * and, in NO_REPLY mode, when a mandatory publish came back unroutable.
 * Publishing is asynchronous in AMQP; a fire-and-forget sender calls this
 * once, after its last publish, to know the messages were accepted.
 * 0 or -1 with ERR.  (Addition to the original interface.)
 */
int wr_client_flush(wr_client *c, char *err, size_t errlen);

/* One received reply.  Everything owned by the struct; free with
 * wr_client_reply_free.  BODY is also NUL-terminated (not counted in
 * LEN), for the convenience of callers that print or parse it.
 * The error fields are the headers warren's raw and amqpbus formats put on
 * an error reply (x-error-code, a signed integer, and x-error-message);
 * a JSON-RPC reply carries its error in the body instead. */
typedef struct wr_client_reply {
    char *body;
    size_t len;
    char *correlation_id; /* NULL when absent */
    char *routing_key;
    int persistent;       /* delivery_mode was 2 */
    char *content_type;   /* NULL when absent */
    int has_error_code;   /* an integer x-error-code header was present... */
    long long error_code; /* ...with this value */
    char *error_message;  /* the x-error-message header (a string), or NULL */
} wr_client_reply;

/*
 * Wait up to TIMEOUT_MS (< 0: without limit) for the next reply.  Returns
 * 1 with *reply filled, 0 on timeout, -1 on error with ERR: a mandatory
 * message came back (the client stays usable), or the broker closed the
 * channel or connection, cancelled the reply consumer, or the connection
 * broke (then the client is only good for wr_client_close).
 */
int wr_client_recv(wr_client *c, int timeout_ms, wr_client_reply *reply, char *err, size_t errlen);
/* Frees what *REPLY holds (not REPLY itself); safe on a zeroed struct. */
void wr_client_reply_free(wr_client_reply *reply);

/* Closes the connection (the broker then drops the reply queue) and frees
 * C.  NULL is fine. */
void wr_client_close(wr_client *c);

#endif
