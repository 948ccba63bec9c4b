/*
 * TLS for common/amqp_conn.c: the amqps:// socket (rabbitmq-c's OpenSSL
 * socket, set up the way warren wants it) and the words for what went
 * wrong in a handshake.  Only wr_amqp_open() calls these.
 */
#ifndef WR_AMQP_TLS_H
#define WR_AMQP_TLS_H

#include <amqp.h>
#include <stddef.h>

#include "common/amqp_conn.h"

/* What certificate verification found, filled during the handshake. */
typedef struct wr_amqp_tls_verify {
    int error;         /* the first X509_V_ERR_* seen; 0: none */
    int depth;         /* where in the broker's chain (0: its own certificate) */
    char subject[256]; /* that certificate's subject */
} wr_amqp_tls_verify;

/*
 * Give CONN a TLS socket that trusts OPT->ca_file (else the system's CAs),
 * presents OPT->cert_file/key_file when set, and requires the broker's
 * certificate to verify and to be for HOST (a name or an IP address).  V
 * is filled during the handshake; call wr_amqp_tls_done() after it.
 * Returns the socket (owned by CONN), or NULL with the reason in ERR.
 */
amqp_socket_t *wr_amqp_tls_socket(amqp_connection_state_t conn, const char *host,
                                  const wr_amqp_options *opt, wr_amqp_tls_verify *v, char *err,
                                  size_t errlen);

/* The handshake is over: V is no longer written. */
void wr_amqp_tls_done(amqp_socket_t *sock);

/* amqp_socket_open_noblock() on a TLS socket failed with ST: say why in
 * ERR.  Returns the kind of failure (an enum wr_amqp_failure). */
int wr_amqp_tls_open_error(int st, const wr_amqp_tls_verify *v, const char *host, int port,
                           char *err, size_t errlen);

/* Library error ST during the AMQP handshake over TLS: when it is a TLS
 * error (the broker refused our certificate, or wants one), add what
 * OpenSSL knows and a hint to ERR and return WR_AMQP_FAIL_TLS; else
 * WR_AMQP_FAIL_OTHER. */
int wr_amqp_tls_login_error(int st, const wr_amqp_options *opt, char *err, size_t errlen);

#endif
