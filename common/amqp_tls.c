/*
 * amqps:// with rabbitmq-c 0.11's OpenSSL socket.
 *
 * What rabbitmq-c leaves to us, and why each piece is here:
 *   - It loads no CAs unless told: without ca_file we load the system's
 *     (SSL_CTX_set_default_verify_paths), else every broker would fail.
 *   - Its host name check reads only DNS names, so a certificate for
 *     127.0.0.1 (an IP address SAN) never matches.  We turn it off and let
 *     OpenSSL check the name or the address instead, as part of chain
 *     verification (X509_VERIFY_PARAM_set1_host / _set1_ip_asc).
 *   - It says only "SSL peer verification failed".  A verify callback
 *     keeps the first X509 error (unknown CA, expired, wrong host, ...)
 *     and the certificate it was about, so the log names the cause.
 *   - SSL_VERIFY_PEER makes the handshake itself fail on a bad
 *     certificate, so nothing (not even our client certificate's use)
 *     goes on with a broker we could not verify.
 */
#include "common/amqp_tls.h"

#include <amqp_ssl_socket.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

/* The reason of OpenSSL's oldest queued error ("wrong version number"),
 * or NULL; the queue is emptied either way. */
static const char *openssl_reason(void)
{
    unsigned long e = ERR_peek_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;

    ERR_clear_error();
    return r;
}

/* Keep the first failure (OpenSSL goes on calling us for the chain). */
static int on_verify(int ok, X509_STORE_CTX *x)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
    wr_amqp_tls_verify *v = ssl ? SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)) : NULL;
    X509 *cert;

    if (ok || !v || v->error)
        return ok;
    v->error = X509_STORE_CTX_get_error(x);
    v->depth = X509_STORE_CTX_get_error_depth(x);
    cert = X509_STORE_CTX_get_current_cert(x);
    if (cert)
        X509_NAME_oneline(X509_get_subject_name(cert), v->subject, sizeof v->subject);
    return ok;
}

amqp_socket_t *wr_amqp_tls_socket(amqp_connection_state_t conn, const char *host,
                                  const wr_amqp_options *opt, wr_amqp_tls_verify *v, char *err,
                                  size_t errlen)
{
    amqp_socket_t *sock = amqp_ssl_socket_new(conn);
    unsigned char addr[16];
    X509_VERIFY_PARAM *param;
    SSL_CTX *ctx;
    const char *why;
    int ok;

    memset(v, 0, sizeof *v);
    if (!sock) {
        snprintf(err, errlen, "cannot set up TLS: %s",
                 (why = openssl_reason()) ? why : "out of memory");
        return NULL;
    }
    ctx = amqp_ssl_socket_get_context(sock);
    ERR_clear_error();
    if (opt->ca_file) {
        if (amqp_ssl_socket_set_cacert(sock, opt->ca_file) != AMQP_STATUS_OK) {
            why = openssl_reason();
            snprintf(err, errlen, "ca_file %s: cannot load the CA certificates: %s", opt->ca_file,
                     why ? why : "no certificate in it");
            return NULL;
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        why = openssl_reason();
        snprintf(err, errlen, "cannot load the system's CA certificates: %s (set ca_file)",
                 why ? why : "unknown error");
        return NULL;
    }
    if (opt->cert_file &&
        amqp_ssl_socket_set_key(sock, opt->cert_file, opt->key_file) != AMQP_STATUS_OK) {
        why = openssl_reason();
        snprintf(err, errlen, "cert_file %s / key_file %s: cannot load: %s", opt->cert_file,
                 opt->key_file ? opt->key_file : "(none)", why ? why : "unknown error");
        return NULL;
    }
    param = SSL_CTX_get0_param(ctx);
    if (inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1)
        ok = X509_VERIFY_PARAM_set1_ip_asc(param, host);
    else
        ok = X509_VERIFY_PARAM_set1_host(param, host, 0);
    if (ok != 1) {
        snprintf(err, errlen, "cannot set up TLS for host %s", host);
        return NULL;
    }
    amqp_ssl_socket_set_verify_peer(sock, 1);
    amqp_ssl_socket_set_verify_hostname(sock, 0); /* OpenSSL checks it, see above */
    SSL_CTX_set_app_data(ctx, v);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, on_verify);
    return sock;
}

void wr_amqp_tls_done(amqp_socket_t *sock)
{
    SSL_CTX_set_app_data((SSL_CTX *)amqp_ssl_socket_get_context(sock), NULL);
}

/* What to do about a verification error, for the common ones. */
static const char *verify_hint(int e)
{
    switch (e) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        return "; ca_file must hold the CA that signed the broker's certificate";
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        return "; the URI's host must be one the certificate names";
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return "; the broker's certificate needs renewing (or this clock is wrong)";
    default:
        return "";
    }
}

int wr_amqp_tls_open_error(int st, const wr_amqp_tls_verify *v, const char *host, int port,
                           char *err, size_t errlen)
{
    const char *why;

    if (v->error) {
        ERR_clear_error();
        snprintf(err, errlen,
                 "TLS: the broker's certificate at %s:%d does not verify: %s (%s %s)%s", host, port,
                 X509_verify_cert_error_string(v->error),
                 v->depth ? "in its chain, CA certificate" : "certificate",
                 v->subject[0] ? v->subject : "without subject", verify_hint(v->error));
        return WR_AMQP_FAIL_TLS;
    }
    switch (st) {
    case AMQP_STATUS_SSL_CONNECTION_FAILED:
    case AMQP_STATUS_SSL_ERROR:
    case AMQP_STATUS_SSL_PEER_VERIFY_FAILED:
    case AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED:
        why = openssl_reason();
        snprintf(err, errlen, "TLS handshake with %s:%d failed: %s%s", host, port,
                 why ? why : amqp_error_string2(st),
                 why && strstr(why, "wrong version number")
                     ? " (is that port a TLS listener? amqps:// wants the broker's TLS port)"
                     : "");
        return WR_AMQP_FAIL_TLS;
    default:
        return WR_AMQP_FAIL_OTHER; /* a socket error: the caller's words */
    }
}

int wr_amqp_tls_login_error(int st, const wr_amqp_options *opt, char *err, size_t errlen)
{
    const char *why = openssl_reason();
    size_t n = strlen(err);

    /*
     * TLS 1.3: the broker judges our certificate after our side of the
     * handshake is done, so its refusal arrives as an alert on the first
     * read, in the middle of the AMQP login -- or, when the connection
     * reset overtakes the alert, as a bare SSL error.  Either way a TLS
     * error this early is the broker refusing us, not a network blip.
     */
    if (st != AMQP_STATUS_SSL_ERROR && !(why && strstr(why, "alert")))
        return WR_AMQP_FAIL_OTHER;
    if (why)
        n += (size_t)snprintf(err + n, errlen - n, ": %s", why);
    if (n >= errlen)
        return WR_AMQP_FAIL_TLS;
    if (!opt->cert_file)
        snprintf(err + n, errlen - n,
                 " (the broker ended the TLS session: it may want a client certificate: set "
                 "cert_file and key_file)");
    else
        snprintf(err + n, errlen - n,
                 " (the broker ended the TLS session: it may not accept cert_file: is it signed "
                 "by a CA the broker trusts?)");
    return WR_AMQP_FAIL_TLS;
}
