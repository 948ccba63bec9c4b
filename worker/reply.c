/* Sending a reply where its request asked; see reply.h. */
#include "worker/reply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "worker/address.h"
#include "worker/amqp10.h"
#include "worker/publish.h"

/* A channel of its own for checking that a reply_to's exchange exists
 * (the worker consumes on channel 1). */
#define CHECK_CHANNEL 2

/*
 * Whether exchange NAME exists: 1 yes, 0 no (logged), -1 the connection
 * failed.  Publishing to a missing exchange makes the broker close the
 * channel, which would lose the request's ack and bring it back forever;
 * a passive declare fails the same way, so it runs on a channel opened
 * for it (three round trips, paid only by replies to an exchange address).
 * Frames for the consumer's channel that arrive meanwhile are queued by
 * rabbitmq-c and read by the worker's loop afterwards.
 */
static int exchange_exists(amqp_connection_state_t conn, const wr_route *route, const char *name)
{
    amqp_rpc_reply_t r;

    amqp_channel_open(conn, CHECK_CHANNEL);
    if (amqp_get_rpc_reply(conn).reply_type != AMQP_RESPONSE_NORMAL)
        return -1;
    amqp_exchange_declare(conn, CHECK_CHANNEL, amqp_cstring_bytes(name), amqp_empty_bytes,
                          1 /* passive */, 0, 0, 0, amqp_empty_table);
    r = amqp_get_rpc_reply(conn);
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        amqp_channel_close_t *m = r.reply.decoded;
        amqp_channel_close_ok_t ok = {0};

        wr_warn("route %s: reply_to names exchange %s: %u %.*s; reply dropped", route->name, name,
                m->reply_code, (int)m->reply_text.len, (char *)m->reply_text.bytes);
        return amqp_send_method(conn, CHECK_CHANNEL, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok) ==
                       AMQP_STATUS_OK
                   ? 0
                   : -1;
    }
    if (r.reply_type != AMQP_RESPONSE_NORMAL)
        return -1;
    return amqp_channel_close(conn, CHECK_CHANNEL, AMQP_REPLY_SUCCESS).reply_type ==
                   AMQP_RESPONSE_NORMAL
               ? 1
               : -1;
}

/* The request's header NAME, or NULL. */
static const amqp_table_entry_t *header(const amqp_basic_properties_t *req, const char *name)
{
    size_t len = strlen(name);

    if (!(req->_flags & AMQP_BASIC_HEADERS_FLAG))
        return NULL;
    for (int i = 0; i < req->headers.num_entries; i++) {
        const amqp_table_entry_t *e = &req->headers.entries[i];
        if (e->key.len == len && memcmp(e->key.bytes, name, len) == 0)
            return e;
    }
    return NULL;
}

/*
 * For a request from an AMQP 1.0 caller through RabbitMQ 3.x: the
 * x-amqp-1.0-properties header of the reply (malloc'd into *OUT), which
 * that broker uses as the delivered message's properties, carrying the
 * caller's correlation id in its own type (the correlation_id property,
 * a string, would turn a uuid into 16 bytes of text).  0 when there is
 * none to make, -1 out of memory.
 */
static int amqp10_properties(const amqp_basic_properties_t *req, const char *content_type,
                             char **out, size_t *len)
{
    const amqp_table_entry_t *e = header(req, "x-amqp-1.0-properties");
    int rc;

    *out = NULL;
    if (!e || (e->value.kind != AMQP_FIELD_KIND_UTF8 && e->value.kind != AMQP_FIELD_KIND_BYTES))
        return 0;
    rc = wr_amqp10_reply_properties(e->value.value.bytes.bytes, e->value.value.bytes.len,
                                    content_type, out, len);
    return rc == WR_AMQP10_ENOMEM ? -1 : 0;
}

/* The request's x-correlation-id header, or NULL.  RabbitMQ 3.x puts
 * there an AMQP 1.0 correlation id that the correlation_id property (a
 * string) cannot hold: a ulong, a binary, a uuid. */
static const amqp_table_entry_t *correlation_header(const amqp_basic_properties_t *req)
{
    static const char name[] = "x-correlation-id";

    if (!(req->_flags & AMQP_BASIC_HEADERS_FLAG))
        return NULL;
    for (int i = 0; i < req->headers.num_entries; i++) {
        const amqp_table_entry_t *e = &req->headers.entries[i];
        if (e->key.len == sizeof name - 1 && memcmp(e->key.bytes, name, sizeof name - 1) == 0)
            return e;
    }
    return NULL;
}

wr_reply wr_reply_of(const wr_job *job)
{
    return (wr_reply){.route = job->route,
                      .body = job->reply,
                      .len = job->reply_len,
                      .type = job->reply_type,
                      .id = job->reply_id,
                      .error_code = job->error_code,
                      .error_message = job->error_message};
}

int wr_reply_publish(amqp_connection_state_t conn, int channel, const amqp_basic_properties_t *req,
                     const wr_job *job)
{
    wr_reply r = wr_reply_of(job);

    return wr_reply_send(conn, channel, req, &r);
}

int wr_reply_send(amqp_connection_state_t conn, int channel, const amqp_basic_properties_t *req,
                  const wr_reply *r)
{
    const wr_route *route = r->route;
    const char *reply_exchange = route->reply_exchange ? route->reply_exchange : route->exchange;
    const amqp_table_entry_t *corr;
    amqp_basic_properties_t props;
    amqp_table_entry_t headers[4];
    char *props10 = NULL;
    size_t props10_len = 0;
    int nheaders = 0, st, ret = 0;
    char *exchange = NULL, *key = NULL;

    if ((req->_flags & AMQP_BASIC_REPLY_TO_FLAG) && req->reply_to.len) {
        /* A 0-9-1 queue name, or an AMQP 1.0 address (see address.h). */
        st = wr_address_resolve(req->reply_to.bytes, req->reply_to.len, &exchange, &key);
        if (st == WR_ADDRESS_EINVAL) {
            wr_warn("route %s: reply_to \"%.*s\": %s; reply dropped", route->name,
                    (int)req->reply_to.len, (char *)req->reply_to.bytes, wr_address_strerror(st));
            return 0;
        }
        if (st != WR_ADDRESS_OK) {
            /* Unacked, the request comes back once memory does. */
            wr_error("route %s: reply_to: %s", route->name, wr_address_strerror(st));
            return -1;
        }
        /* A round trip: what is written goes first (worker/publish.h). */
        if (exchange[0] && wr_publish_flush(conn) != AMQP_STATUS_OK) {
            wr_error("route %s: sending replies failed: the connection is gone", route->name);
            ret = -1;
            goto out;
        }
        if (exchange[0] && (ret = exchange_exists(conn, route, exchange)) <= 0) {
            if (ret < 0)
                wr_error("route %s: checking reply exchange %s failed: the connection is gone",
                         route->name, exchange);
            ret = ret < 0 ? -1 : 0;
            goto out;
        }
        ret = 0;
    } else if (route->reply_prefix && reply_exchange && r->id) {
        if (asprintf(&key, "%s.%s", route->reply_prefix, r->id) < 0)
            key = NULL;
        if (!key || !(exchange = strdup(reply_exchange))) {
            wr_error("route %s: out of memory building a reply key", route->name);
            ret = -1;
            goto out;
        }
    } else {
        wr_warn("route %s: a request expects a reply but names no reply_to%s; reply dropped",
                route->name, route->reply_prefix ? " and no usable id" : "");
        return 0;
    }

    memset(&props, 0, sizeof props);
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
    props.content_type = amqp_cstring_bytes(r->type ? r->type : "application/json");
    props.delivery_mode =
        (req->_flags & AMQP_BASIC_DELIVERY_MODE_FLAG) && req->delivery_mode == 2 ? 2 : 1;
    if (req->_flags & AMQP_BASIC_CORRELATION_ID_FLAG) {
        props._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
        props.correlation_id = req->correlation_id;
    }
    /* The caller's own form of its correlation id comes back: the header
     * with its field kind unchanged (borrowed from the request). */
    if ((corr = correlation_header(req)))
        headers[nheaders++] = *corr;
    if (amqp10_properties(req, r->type ? r->type : "application/json", &props10, &props10_len) <
        0) {
        wr_error("route %s: out of memory building a reply", route->name);
        ret = -1;
        goto out;
    }
    if (props10) {
        headers[nheaders].key = amqp_cstring_bytes("x-amqp-1.0-properties");
        headers[nheaders].value.kind = AMQP_FIELD_KIND_UTF8;
        headers[nheaders++].value.value.bytes =
            (amqp_bytes_t){.len = props10_len, .bytes = props10};
    }
    if (r->error_code) { /* raw routes: the error beside the body */
        headers[nheaders].key = amqp_cstring_bytes("x-error-code");
        headers[nheaders].value.kind = AMQP_FIELD_KIND_I32;
        headers[nheaders++].value.value.i32 = r->error_code;
        headers[nheaders].key = amqp_cstring_bytes("x-error-message");
        headers[nheaders].value.kind = AMQP_FIELD_KIND_UTF8;
        headers[nheaders++].value.value.bytes = amqp_cstring_bytes(r->error_message);
    }
    if (nheaders) {
        props._flags |= AMQP_BASIC_HEADERS_FLAG;
        props.headers = (amqp_table_t){.num_entries = nheaders, .entries = headers};
    }
    st = wr_publish(conn, (amqp_channel_t)channel, amqp_cstring_bytes(exchange),
                    amqp_cstring_bytes(key), 1 /* mandatory */, &props,
                    (amqp_bytes_t){.len = r->len, .bytes = (void *)r->body});
    if (st != AMQP_STATUS_OK) {
        wr_error("route %s: publishing a reply to %s%s%s failed: %s", route->name, exchange,
                 exchange[0] ? "/" : "", key, amqp_error_string2(st));
        ret = -1;
    } else {
        ret = 1;
    }
out:
    free(props10);
    free(key);
    free(exchange);
    return ret;
}
