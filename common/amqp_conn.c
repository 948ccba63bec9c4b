/*
 * Connection setup and error text for rabbitmq-c 0.11.
 *
 * rabbitmq-c reports failure three ways: a negative status code, an
 * amqp_rpc_reply_t carrying a library error, or one carrying a server
 * method (channel.close / connection.close with a reply text).  Everything
 * here folds them into a single line so callers log one thing.  TLS
 * (amqps://) is set up and explained in common/amqp_tls.c.
 */
#include "common/amqp_conn.h"

#include "common/amqp_tls.h"
#include "common/uri.h"

#include <amqp_tcp_socket.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#define WR_FRAME_MAX 131072

char *wr_amqp_strdup(amqp_bytes_t b)
{
    char *s = malloc(b.len + 1);
    if (!s)
        return NULL;
    if (b.len)
        memcpy(s, b.bytes, b.len);
    s[b.len] = '\0';
    return s;
}

int wr_amqp_check(amqp_rpc_reply_t r, const char *what, char *err, size_t errlen)
{
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        return 0;
    case AMQP_RESPONSE_NONE:
        snprintf(err, errlen, "%s: missing RPC reply", what);
        return -1;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        snprintf(err, errlen, "%s: %s", what, amqp_error_string2(r.library_error));
        return -1;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            amqp_connection_close_t *m = r.reply.decoded;
            snprintf(err, errlen, "%s: server closed the connection: %u %.*s", what, m->reply_code,
                     (int)m->reply_text.len, (char *)m->reply_text.bytes);
        } else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_t *m = r.reply.decoded;
            snprintf(err, errlen, "%s: server closed the channel: %u %.*s", what, m->reply_code,
                     (int)m->reply_text.len, (char *)m->reply_text.bytes);
        } else {
            snprintf(err, errlen, "%s: unexpected server method 0x%08X", what, r.reply.id);
        }
        return -1;
    }
    snprintf(err, errlen, "%s: unknown reply type", what);
    return -1;
}

/* Why amqp_socket_open_noblock failed with ST, as a line for ERR. */
static void connect_error(int st, const char *host, int port, char *err, size_t errlen)
{
    /*
     * rabbitmq-c says only "a socket error occurred".  errno names the
     * cause when connect() failed at once; when it failed later (the usual
     * refused connection) rabbitmq-c drops SO_ERROR and errno is left at
     * EINPROGRESS, which would mislead.
     */
    if (st == AMQP_STATUS_SOCKET_ERROR && errno != 0 && errno != EINPROGRESS)
        snprintf(err, errlen, "cannot connect to %s:%d: %s", host, port, strerror(errno));
    else if (st == AMQP_STATUS_SOCKET_ERROR)
        snprintf(err, errlen, "cannot connect to %s:%d: connection refused or host unreachable",
                 host, port);
    else
        snprintf(err, errlen, "cannot connect to %s:%d: %s", host, port, amqp_error_string2(st));
}

/*
 * Log in with our client properties.  connection_name: for the operator
 * reading `rabbitmqctl list_connections`.  consumer_cancel_notify: without
 * it the broker drops a consumer silently when its queue is deleted (a
 * worker would sit idle reporting ready, a client would wait for its
 * timeout); with it, a basic.cancel arrives.
 */
static amqp_rpc_reply_t login(amqp_connection_state_t conn, const struct amqp_connection_info *ci,
                              int heartbeat, const char *name)
{
    amqp_table_entry_t caps[1], props[2];
    amqp_table_t table = {.num_entries = 2, .entries = props};

    props[0].key = amqp_cstring_bytes("connection_name");
    props[0].value.kind = AMQP_FIELD_KIND_UTF8;
    props[0].value.value.bytes = amqp_cstring_bytes(name);
    caps[0].key = amqp_cstring_bytes("consumer_cancel_notify");
    caps[0].value.kind = AMQP_FIELD_KIND_BOOLEAN;
    caps[0].value.value.boolean = 1;
    props[1].key = amqp_cstring_bytes("capabilities");
    props[1].value.kind = AMQP_FIELD_KIND_TABLE;
    props[1].value.value.table = (amqp_table_t){.num_entries = 1, .entries = caps};
    /* "amqp://host:port/" parses as vhost "" (the AMQP URI spec's reading)
     * and RabbitMQ has no vhost "": everyone who writes that URI means the
     * default "/", while "amqp://host/%2f" still spells it out. */
    return amqp_login_with_properties(conn, ci->vhost && *ci->vhost ? ci->vhost : "/", 0,
                                      WR_FRAME_MAX, heartbeat, &table, AMQP_SASL_METHOD_PLAIN,
                                      ci->user, ci->password);
}

amqp_connection_state_t wr_amqp_open(const char *uri, const wr_amqp_options *opt, int *failure,
                                     char *err, size_t errlen)
{
    struct amqp_connection_info info;
    amqp_connection_state_t conn = NULL;
    amqp_socket_t *sock;
    wr_amqp_tls_verify verify;
    amqp_rpc_reply_t r;
    struct timeval tv = {.tv_sec = opt->connect_timeout, .tv_usec = 0};
    char *copy = strdup(uri); /* wr_uri_parse writes into it, INFO points into it */
    char what[300];
    int one = 1, st, fail = WR_AMQP_FAIL_OTHER;

    if (!copy) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (wr_uri_parse(copy, &info) < 0) {
        /* Not echoed: it may hold a password. */
        snprintf(err, errlen,
                 "invalid AMQP URI (expected amqp[s]://USER:PASSWORD@HOST:PORT/VHOST)");
        goto fail;
    }
    if (opt->password)
        info.password = (char *)opt->password;
    conn = amqp_new_connection();
    if (!conn) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (info.ssl)
        sock = wr_amqp_tls_socket(conn, info.host, opt, &verify, err, errlen);
    else if (!(sock = amqp_tcp_socket_new(conn)))
        snprintf(err, errlen, "out of memory");
    if (!sock)
        goto fail;
    errno = 0;
    st = amqp_socket_open_noblock(sock, info.host, info.port, &tv);
    if (info.ssl)
        wr_amqp_tls_done(sock);
    if (st != AMQP_STATUS_OK) {
        if (!info.ssl || (fail = wr_amqp_tls_open_error(st, &verify, info.host, info.port, err,
                                                        errlen)) == WR_AMQP_FAIL_OTHER)
            connect_error(st, info.host, info.port, err, errlen);
        goto fail;
    }
    /* Replies are small and latency-bound: never wait for Nagle. */
    setsockopt(amqp_get_sockfd(conn), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* Bound the handshake too: a half-dead broker must not hang us. */
    amqp_set_handshake_timeout(conn, &tv);

    snprintf(what, sizeof what, "login to %s:%d", info.host, info.port);
    r = login(conn, &info, opt->heartbeat, opt->name);
    if (wr_amqp_check(r, what, err, errlen)) {
        if (info.ssl && r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
            fail = wr_amqp_tls_login_error(r.library_error, opt, err, errlen);
        goto fail;
    }
    amqp_channel_open(conn, 1);
    if (wr_amqp_check(amqp_get_rpc_reply(conn), "channel.open", err, errlen))
        goto fail;
    free(copy);
    if (failure)
        *failure = WR_AMQP_FAIL_NONE;
    return conn;
fail:
    if (conn)
        amqp_destroy_connection(conn);
    free(copy);
    if (failure)
        *failure = fail;
    return NULL;
}

amqp_connection_state_t wr_amqp_connect(const char *uri, int heartbeat, int connect_timeout,
                                        const char *name, char *err, size_t errlen)
{
    wr_amqp_options opt = {
        .heartbeat = heartbeat, .connect_timeout = connect_timeout, .name = name};

    return wr_amqp_open(uri, &opt, NULL, err, errlen);
}

void wr_amqp_close(amqp_connection_state_t conn)
{
    if (!conn)
        return;
    amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
}
