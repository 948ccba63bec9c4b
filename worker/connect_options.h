/*
 * How a worker connects to the broker: the wr_amqp_options its config
 * makes (TLS files, the password from password_file or the environment),
 * and how long it waits after a TLS failure.
 */
#ifndef WR_CONNECT_OPTIONS_H
#define WR_CONNECT_OPTIONS_H

#include "common/amqp_conn.h"
#include "config/config.h"

/* A TLS failure (a certificate that does not verify, ours refused, no TLS
 * listener) waits this long before the next try; see the .c file. */
#define WR_WORKER_TLS_BACKOFF_MS 60000

/* The options for CFG's broker; NAME is the connection name.  Everything
 * in it is borrowed from CFG and NAME. */
wr_amqp_options wr_worker_amqp_options(const wr_config *cfg, const char *name);

/* The delay before the next connect after a failure of kind FAILURE (an
 * enum wr_amqp_failure), BACKOFF being the usual one. */
int wr_worker_tls_backoff(int failure, int backoff);

#endif
