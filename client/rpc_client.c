/*
 * The blocking AMQP RPC client behind warren-call and the integration
 * tests, on rabbitmq-c 0.11.
 *
 * One connection, channel 1, and (unless NO_REPLY) one no-ack consumer on
 * the reply queue.  Publishing is a plain basic.publish with no round trip
 * (no confirms), so a caller can fire a thousand requests and then collect
 * the replies; the broker pushes them to us as they come and rabbitmq-c
 * buffers what we have not read yet.
 *
 * Errors: every amqp_rpc_reply_t is checked and turned into one line
 * ("queue.declare: broker closed the channel: NOT_FOUND - ...").  When the
 * broker closes the channel or the connection we answer with close-ok,
 * remember the reason, and from then on every call fails with it.
 */
#include "client/rpc_client.h"

#include <amqp.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/amqp_conn.h"
#include "common/secret.h"

#define CHANNEL 1
#define CONNECT_TIMEOUT_S 5 /* TCP connect, then the AMQP handshake */
#define RPC_TIMEOUT_S 30    /* any synchronous method (declare, consume...) */
#define DIRECT_REPLY_TO "amq.rabbitmq.reply-to"

struct wr_client {
    amqp_connection_state_t conn;
    int mode;
    int mandatory;
    const char *content_type; /* borrowed; NULL: none */
    const char *type;         /* borrowed; NULL: none */
    long long ttl_ms;         /* >0: publishes carry expiration + x-deadline */
    char *reply_queue;        /* owned; NULL in NO_REPLY mode */
    /* Set once the channel or connection is gone: the reason, which every
     * later call reports.  BROKEN means the socket is unusable (no
     * connection.close on the way out). */
    char dead[320];
    int broken;
};

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* The connection or channel is gone: remember why (first reason wins). */
static void mark_dead(wr_client *c, int broken, const char *why)
{
    if (c->dead[0] == '\0')
        snprintf(c->dead, sizeof c->dead, "%s", why);
    if (broken)
        c->broken = 1;
}

static int check_alive(const wr_client *c, char *err, size_t errlen)
{
    if (c->dead[0] == '\0')
        return 0;
    seterr(err, errlen, "%s", c->dead);
    return -1;
}

/*
 * The broker closed the channel or the connection (method M, decoded D):
 * acknowledge it as the protocol wants, mark the client dead and describe
 * it in WHY ("broker closed the channel: NOT_FOUND - no queue 'x'").
 */
static void handle_close(wr_client *c, amqp_method_number_t m, void *d, char *why, size_t whylen)
{
    if (m == AMQP_CONNECTION_CLOSE_METHOD) {
        const amqp_connection_close_t *cc = d;
        amqp_connection_close_ok_t ok = {0};

        snprintf(why, whylen, "broker closed the connection: %.*s", (int)cc->reply_text.len,
                 (const char *)cc->reply_text.bytes);
        amqp_send_method(c->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
        mark_dead(c, 1, why);
    } else {
        const amqp_channel_close_t *cc = d;
        amqp_channel_close_ok_t ok = {0};

        snprintf(why, whylen, "broker closed the channel: %.*s", (int)cc->reply_text.len,
                 (const char *)cc->reply_text.bytes);
        amqp_send_method(c->conn, CHANNEL, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
        mark_dead(c, 0, why);
    }
}

/*
 * Turn a failed amqp_rpc_reply_t into one line "WHAT: reason" in ERR, and
 * update the client's state to match.  Returns -1 (so callers can
 * `return rpc_fail(...)`); 0 if R is in fact a normal reply.
 */
static int rpc_fail(wr_client *c, amqp_rpc_reply_t r, const char *what, char *err, size_t errlen)
{
    char why[200];

    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        return 0;
    case AMQP_RESPONSE_NONE:
        snprintf(why, sizeof why, "no reply from the broker");
        mark_dead(c, 1, why);
        break;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        snprintf(why, sizeof why, "%s", amqp_error_string2(r.library_error));
        mark_dead(c, 1, why);
        break;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD || r.reply.id == AMQP_CHANNEL_CLOSE_METHOD)
            handle_close(c, r.reply.id, r.reply.decoded, why, sizeof why);
        else
            snprintf(why, sizeof why, "unexpected method 0x%08x from the broker",
                     (unsigned)r.reply.id);
        break;
    default:
        snprintf(why, sizeof why, "unknown reply type %d", (int)r.reply_type);
        break;
    }
    seterr(err, errlen, "%s: %s", what, why);
    return -1;
}

/* An environment variable's value, or NULL when unset or empty. */
static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* Open the connection (common/amqp_conn.c: the same as a worker's, without
 * heartbeats: a short-lived client blocks in our own calls) and bound every
 * synchronous method.  The password and, for amqps://, the TLS files may
 * come from the environment (see rpc_client.h).  0 or -1 + ERR. */
static int open_connection(wr_client *c, const char *uri, char *err, size_t errlen)
{
    struct timeval rpc_tv = {.tv_sec = RPC_TIMEOUT_S};
    wr_amqp_options opt = {.connect_timeout = CONNECT_TIMEOUT_S,
                           .name = "warren rpc client",
                           .password = env(WR_SECRET_PASSWORD_ENV),
                           .ca_file = env("WARREN_CACERT"),
                           .cert_file = env("WARREN_CERT"),
                           .key_file = env("WARREN_KEY")};

    c->conn = wr_amqp_open(uri, &opt, NULL, err, errlen);
    if (c->conn == NULL) {
        c->broken = 1;
        return -1;
    }
    amqp_set_rpc_timeout(c->conn, &rpc_tv);
    return 0;
}

/* Set up the reply queue and its consumer as C->mode says. */
static int setup_reply_queue(wr_client *c, char *err, size_t errlen)
{
    amqp_rpc_reply_t r;

    if (c->mode == WR_CLIENT_NO_REPLY)
        return 0;
    if (c->mode == WR_CLIENT_REPLY_QUEUE) {
        /* Server-named, exclusive, auto-delete: private to this
         * connection and gone with it. */
        amqp_queue_declare_ok_t *ok =
            amqp_queue_declare(c->conn, CHANNEL, amqp_empty_bytes, 0, 0, 1, 1, amqp_empty_table);
        r = amqp_get_rpc_reply(c->conn);
        if (rpc_fail(c, r, "queue.declare (reply queue)", err, errlen) < 0)
            return -1;
        c->reply_queue = wr_amqp_strdup(ok->queue);
    } else {
        c->reply_queue = strdup(DIRECT_REPLY_TO);
    }
    if (c->reply_queue == NULL) {
        seterr(err, errlen, "out of memory");
        return -1;
    }
    /*
     * no_ack = 1, unlike warren's workers: replies are worth nothing once
     * this connection is gone, and direct reply-to requires it.  For direct
     * reply-to, this consume must precede any publish that names
     * amq.rabbitmq.reply-to, on this same channel.
     */
    amqp_basic_consume(c->conn, CHANNEL, amqp_cstring_bytes(c->reply_queue), amqp_empty_bytes, 0, 1,
                       0, amqp_empty_table);
    r = amqp_get_rpc_reply(c->conn);
    if (rpc_fail(c, r, "basic.consume (reply queue)", err, errlen) < 0)
        return -1;
    amqp_maybe_release_buffers(c->conn);
    return 0;
}

int wr_client_connect(wr_client **out, const char *uri, int mode, char *err, size_t errlen)
{
    wr_client *c;

    *out = NULL;
    if (mode != WR_CLIENT_REPLY_QUEUE && mode != WR_CLIENT_DIRECT_REPLY_TO &&
        mode != WR_CLIENT_NO_REPLY) {
        seterr(err, errlen, "invalid reply mode %d", mode);
        return -1;
    }
    c = calloc(1, sizeof *c);
    if (c == NULL) {
        seterr(err, errlen, "out of memory");
        return -1;
    }
    c->mode = mode;
    c->content_type = "application/json";
    if (open_connection(c, uri, err, errlen) < 0 || setup_reply_queue(c, err, errlen) < 0) {
        wr_client_close(c);
        return -1;
    }
    *out = c;
    return 0;
}

const char *wr_client_reply_queue(const wr_client *c)
{
    return c->reply_queue;
}

int wr_client_bind_reply(wr_client *c, const char *exchange, const char *key, char *err,
                         size_t errlen)
{
    amqp_rpc_reply_t r;

    if (check_alive(c, err, errlen) < 0)
        return -1;
    if (c->mode != WR_CLIENT_REPLY_QUEUE) {
        seterr(err, errlen,
               "queue.bind: only a reply queue of its own can be bound "
               "(not direct reply-to, not in no-reply mode)");
        return -1;
    }
    amqp_queue_bind(c->conn, CHANNEL, amqp_cstring_bytes(c->reply_queue),
                    amqp_cstring_bytes(exchange), amqp_cstring_bytes(key), amqp_empty_table);
    r = amqp_get_rpc_reply(c->conn);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        char what[300];

        snprintf(what, sizeof what, "queue.bind to exchange '%.100s' key '%.100s'", exchange, key);
        return rpc_fail(c, r, what, err, errlen);
    }
    amqp_maybe_release_buffers(c->conn);
    return 0;
}

void wr_client_set_mandatory(wr_client *c, int on)
{
    c->mandatory = on != 0;
}

void wr_client_set_content_type(wr_client *c, const char *type)
{
    c->content_type = type;
}

void wr_client_set_type(wr_client *c, const char *type)
{
    c->type = type;
}

void wr_client_set_deadline(wr_client *c, long long ttl_ms)
{
    c->ttl_ms = ttl_ms > 0 ? ttl_ms : 0;
}

int wr_client_publish(wr_client *c, const char *exchange, const char *routing_key, const char *body,
                      size_t len, const char *correlation_id, int persistent, char *err,
                      size_t errlen)
{
    amqp_basic_properties_t props;
    amqp_table_entry_t deadline;
    char expiration[24];
    amqp_bytes_t b;
    int st;

    if (check_alive(c, err, errlen) < 0)
        return -1;
    memset(&props, 0, sizeof props);
    props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
    if (c->content_type != NULL) {
        props._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
        props.content_type = amqp_cstring_bytes(c->content_type);
    }
    if (c->type != NULL) {
        props._flags |= AMQP_BASIC_TYPE_FLAG;
        props.type = amqp_cstring_bytes(c->type);
    }
    props.delivery_mode = persistent ? 2 : 1;
    if (c->ttl_ms > 0) {
        struct timespec now;

        clock_gettime(CLOCK_REALTIME, &now);
        snprintf(expiration, sizeof expiration, "%lld", c->ttl_ms);
        props._flags |= AMQP_BASIC_EXPIRATION_FLAG | AMQP_BASIC_HEADERS_FLAG;
        props.expiration = amqp_cstring_bytes(expiration);
        deadline.key = amqp_cstring_bytes("x-deadline");
        deadline.value.kind = AMQP_FIELD_KIND_I64;
        deadline.value.value.i64 =
            (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 + (int64_t)c->ttl_ms;
        props.headers = (amqp_table_t){.num_entries = 1, .entries = &deadline};
    }
    if (correlation_id != NULL) {
        props._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
        props.correlation_id = amqp_cstring_bytes(correlation_id);
        if (c->reply_queue != NULL) {
            props._flags |= AMQP_BASIC_REPLY_TO_FLAG;
            props.reply_to = amqp_cstring_bytes(c->reply_queue);
        }
    }
    b.bytes = (void *)body;
    b.len = len;
    /* No round trip: a failure the broker sees (unknown exchange) comes
     * back later as a channel.close, reported by recv or flush. */
    st = amqp_basic_publish(c->conn, CHANNEL, amqp_cstring_bytes(exchange),
                            amqp_cstring_bytes(routing_key), c->mandatory, 0, &props, b);
    if (st != AMQP_STATUS_OK) {
        char why[200];

        snprintf(why, sizeof why, "basic.publish: %s", amqp_error_string2(st));
        mark_dead(c, 1, why);
        seterr(err, errlen, "%s", why);
        return -1;
    }
    return 0;
}

/*
 * The next frame is not a delivery (amqp_consume_message said
 * AMQP_STATUS_UNEXPECTED_STATE and put it back): read it and deal with it.
 * Returns 0 when it was harmless and the caller should go on waiting, -1
 * with ERR when it ends the wait (close, consumer cancelled, returned
 * message).
 */
static int handle_other_frame(wr_client *c, char *err, size_t errlen)
{
    amqp_frame_t frame;
    char why[300];
    int st;

    st = amqp_simple_wait_frame(c->conn, &frame);
    if (st != AMQP_STATUS_OK) {
        snprintf(why, sizeof why, "reading from the broker: %s", amqp_error_string2(st));
        mark_dead(c, 1, why);
        seterr(err, errlen, "%s", why);
        return -1;
    }
    if (frame.frame_type != AMQP_FRAME_METHOD)
        return 0; /* stray content of something we do not wait for */

    switch (frame.payload.method.id) {
    case AMQP_CHANNEL_CLOSE_METHOD:
    case AMQP_CONNECTION_CLOSE_METHOD:
        handle_close(c, frame.payload.method.id, frame.payload.method.decoded, why, sizeof why);
        seterr(err, errlen, "%s", why);
        return -1;
    case AMQP_BASIC_CANCEL_METHOD:
        /* The broker cancels our consumer when the reply queue goes away. */
        mark_dead(c, 0, "broker cancelled the reply consumer (reply queue deleted?)");
        seterr(err, errlen, "%s", c->dead);
        return -1;
    case AMQP_BASIC_RETURN_METHOD: {
        /* A mandatory publish nobody took.  Its content follows; read it
         * to keep the stream in step.  The client stays usable. */
        const amqp_basic_return_t *ret = frame.payload.method.decoded;
        amqp_message_t msg;
        amqp_rpc_reply_t r;

        snprintf(why, sizeof why,
                 "broker returned the message: %u %.*s (exchange '%.*s', routing key '%.*s')",
                 (unsigned)ret->reply_code, (int)ret->reply_text.len,
                 (const char *)ret->reply_text.bytes, (int)ret->exchange.len,
                 (const char *)ret->exchange.bytes, (int)ret->routing_key.len,
                 (const char *)ret->routing_key.bytes);
        r = amqp_read_message(c->conn, frame.channel, &msg, 0);
        if (r.reply_type != AMQP_RESPONSE_NORMAL)
            return rpc_fail(c, r, "reading a returned message", err, errlen);
        amqp_destroy_message(&msg);
        seterr(err, errlen, "%s", why);
        return -1;
    }
    default:
        return 0; /* e.g. basic.ack: nothing we asked for */
    }
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The header KEY in TABLE, or NULL.  Borrowed from TABLE. */
static const amqp_field_value_t *header(const amqp_table_t *table, const char *key)
{
    size_t n = strlen(key);

    for (int i = 0; i < table->num_entries; i++) {
        const amqp_table_entry_t *e = &table->entries[i];

        if (e->key.len == n && memcmp(e->key.bytes, key, n) == 0)
            return &e->value;
    }
    return NULL;
}

/* V as a signed integer, whatever width the sender chose.  1 and *OUT, or
 * 0 when V is no integer (or an unsigned 64-bit one too big for us). */
static int header_integer(const amqp_field_value_t *v, long long *out)
{
    switch (v->kind) {
    case AMQP_FIELD_KIND_I8:
        *out = v->value.i8;
        return 1;
    case AMQP_FIELD_KIND_U8:
        *out = v->value.u8;
        return 1;
    case AMQP_FIELD_KIND_I16:
        *out = v->value.i16;
        return 1;
    case AMQP_FIELD_KIND_U16:
        *out = v->value.u16;
        return 1;
    case AMQP_FIELD_KIND_I32:
        *out = v->value.i32;
        return 1;
    case AMQP_FIELD_KIND_U32:
        *out = v->value.u32;
        return 1;
    case AMQP_FIELD_KIND_I64:
        *out = v->value.i64;
        return 1;
    case AMQP_FIELD_KIND_U64:
        if (v->value.u64 > (uint64_t)INT64_MAX)
            return 0;
        *out = (long long)v->value.u64;
        return 1;
    default:
        return 0;
    }
}

/* Copy what a caller keeps out of ENV into *REPLY.  0, or -1 (no memory). */
static int copy_reply(const amqp_envelope_t *env, wr_client_reply *reply)
{
    const amqp_basic_properties_t *p = &env->message.properties;
    int failed = 0;

    reply->body = wr_amqp_strdup(env->message.body);
    reply->len = env->message.body.len;
    reply->routing_key = wr_amqp_strdup(env->routing_key);
    failed |= reply->body == NULL || reply->routing_key == NULL;
    if (p->_flags & AMQP_BASIC_CORRELATION_ID_FLAG) {
        reply->correlation_id = wr_amqp_strdup(p->correlation_id);
        failed |= reply->correlation_id == NULL;
    }
    if (p->_flags & AMQP_BASIC_CONTENT_TYPE_FLAG) {
        reply->content_type = wr_amqp_strdup(p->content_type);
        failed |= reply->content_type == NULL;
    }
    reply->persistent = (p->_flags & AMQP_BASIC_DELIVERY_MODE_FLAG) && p->delivery_mode == 2;
    if (p->_flags & AMQP_BASIC_HEADERS_FLAG) {
        const amqp_field_value_t *code = header(&p->headers, "x-error-code");
        const amqp_field_value_t *msg = header(&p->headers, "x-error-message");

        if (code != NULL)
            reply->has_error_code = header_integer(code, &reply->error_code);
        if (msg != NULL &&
            (msg->kind == AMQP_FIELD_KIND_UTF8 || msg->kind == AMQP_FIELD_KIND_BYTES)) {
            reply->error_message = wr_amqp_strdup(msg->value.bytes);
            failed |= reply->error_message == NULL;
        }
    }
    if (failed) {
        wr_client_reply_free(reply);
        return -1;
    }
    return 0;
}

int wr_client_recv(wr_client *c, int timeout_ms, wr_client_reply *reply, char *err, size_t errlen)
{
    int64_t deadline = timeout_ms < 0 ? 0 : now_ms() + timeout_ms;

    memset(reply, 0, sizeof *reply);
    if (check_alive(c, err, errlen) < 0)
        return -1;
    if (c->mode == WR_CLIENT_NO_REPLY) {
        seterr(err, errlen, "no reply queue (client opened in no-reply mode)");
        return -1;
    }
    for (;;) {
        amqp_envelope_t env;
        amqp_rpc_reply_t r;
        struct timeval tv, *tvp = NULL;

        /* Frees the previous message's memory once nothing is queued. */
        amqp_maybe_release_buffers(c->conn);
        if (timeout_ms >= 0) {
            int64_t left = deadline - now_ms();

            if (left < 0)
                left = 0;
            tv.tv_sec = left / 1000;
            tv.tv_usec = (left % 1000) * 1000;
            tvp = &tv;
        }
        r = amqp_consume_message(c->conn, &env, tvp, 0);
        if (r.reply_type == AMQP_RESPONSE_NORMAL) {
            int rc = copy_reply(&env, reply);

            amqp_destroy_envelope(&env);
            if (rc < 0) {
                seterr(err, errlen, "out of memory copying a reply");
                return -1;
            }
            return 1;
        }
        /* On failure amqp_consume_message has freed the envelope itself. */
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_TIMEOUT)
            return 0;
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
            if (handle_other_frame(c, err, errlen) < 0)
                return -1;
            continue;
        }
        return rpc_fail(c, r, "waiting for a reply", err, errlen);
    }
}

int wr_client_flush(wr_client *c, char *err, size_t errlen)
{
    amqp_rpc_reply_t r;

    if (check_alive(c, err, errlen) < 0)
        return -1;
    /*
     * Any synchronous method will do: the broker answers it only after it
     * has handled what came before on the channel, or closes the channel
     * if one of those failed.  basic.qos with no limits changes nothing
     * (our only consumer is no-ack).
     */
    amqp_basic_qos(c->conn, CHANNEL, 0, 0, 0);
    r = amqp_get_rpc_reply(c->conn);
    if (rpc_fail(c, r, "publish", err, errlen) < 0)
        return -1;
    /*
     * Without a consumer, whatever the round trip queued up can only be
     * returned messages (or their content): drain and report them.  With a
     * consumer, replies may be queued too; wr_client_recv reports returns
     * in order among them.
     */
    if (c->mode == WR_CLIENT_NO_REPLY) {
        while (amqp_frames_enqueued(c->conn)) {
            if (handle_other_frame(c, err, errlen) < 0)
                return -1;
        }
    }
    amqp_maybe_release_buffers(c->conn);
    return 0;
}

void wr_client_reply_free(wr_client_reply *reply)
{
    if (reply == NULL)
        return;
    free(reply->body);
    free(reply->correlation_id);
    free(reply->routing_key);
    free(reply->content_type);
    free(reply->error_message);
    memset(reply, 0, sizeof *reply);
}

void wr_client_close(wr_client *c)
{
    if (c == NULL)
        return;
    if (c->conn != NULL) {
        /* connection.close closes the channel too: one round trip, bounded
         * by the RPC timeout.  Its outcome changes nothing for us. */
        if (!c->broken)
            amqp_connection_close(c->conn, AMQP_REPLY_SUCCESS);
        amqp_destroy_connection(c->conn);
    }
    free(c->reply_queue);
    free(c);
}
