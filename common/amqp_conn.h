/*
 * AMQP helpers shared by the worker: opening a connection the way warren
 * always wants it (timeout, TCP_NODELAY, heartbeats, a connection name the
 * broker shows, consumer_cancel_notify so a deleted queue is noticed; TLS
 * for amqps://, with the password possibly from elsewhere), and turning rabbitmq-c's
 * three error shapes into one line of text.
 */
#ifndef WR_AMQP_CONN_H
#define WR_AMQP_CONN_H

#include <amqp.h>
#include <stddef.h>

/* How to connect, beyond what the URI says.  Everything is borrowed. */
typedef struct wr_amqp_options {
    int heartbeat;         /* seconds, 0: off */
    int connect_timeout;   /* seconds: bounds the TCP connect, TLS and AMQP handshakes */
    const char *name;      /* the connection name the broker shows */
    const char *password;  /* NULL: the URI's own */
    const char *ca_file;   /* amqps: the CAs to trust (PEM); NULL: the system's */
    const char *cert_file; /* amqps: client certificate (PEM chain); NULL: none */
    const char *key_file;  /* amqps: its private key (PEM), needed with cert_file */
} wr_amqp_options;

/* What kind of failure wr_amqp_open() reports in *FAILURE. */
enum wr_amqp_failure {
    WR_AMQP_FAIL_NONE = 0,
    WR_AMQP_FAIL_OTHER, /* refused, unreachable, login, out of memory, ...: retry soon */
    WR_AMQP_FAIL_TLS    /* the TLS handshake failed: a certificate that does not
                           verify (ours or the broker's), no TLS listener, ... --
                           retrying soon cannot help (common/amqp_tls.c) */
};

/*
 * Connect to URI (amqp:// or amqps://), log in, open channel 1, as OPT
 * says.  Returns the new connection (the caller destroys it with
 * wr_amqp_close), or NULL with a one-line reason in ERR (never the
 * password) and the kind of failure in *FAILURE (FAILURE may be NULL).
 */
amqp_connection_state_t wr_amqp_open(const char *uri, const wr_amqp_options *opt, int *failure,
                                     char *err, size_t errlen);

/* wr_amqp_open() with only these options (the password is the URI's; an
 * amqps:// URI trusts the system's CAs). */
amqp_connection_state_t wr_amqp_connect(const char *uri, int heartbeat, int connect_timeout,
                                        const char *name, char *err, size_t errlen);

/* Close channel 1 and the connection politely, then free it.  NULL ok. */
void wr_amqp_close(amqp_connection_state_t conn);

/*
 * Describe R in ERR ("server closed the channel: 404 NOT_FOUND - no queue
 * 'x'", "socket error: connection refused", ...).  Returns 0 when R is a
 * normal reply, -1 otherwise.  WHAT prefixes the message ("queue.declare").
 */
int wr_amqp_check(amqp_rpc_reply_t r, const char *what, char *err, size_t errlen);

/* Copy an amqp_bytes_t into a NUL-terminated malloc'd string (caller
 * frees); NULL on allocation failure. */
char *wr_amqp_strdup(amqp_bytes_t b);

#endif
