/*
 * A worker's broker connection options, and its answer to TLS failures.
 *
 * A certificate that does not verify is not a configuration error that
 * stops the pool (exit 78), but a long wait: the usual cause is on the
 * broker's side (its certificate expired or was replaced, one node of a
 * cluster has the wrong one), is fixed there without touching warren,
 * and warren should then come back by itself; stopping would need a
 * human to restart it, and under systemd RestartPreventExitStatus=78
 * keeps it down.  But retrying every few seconds cannot help either and
 * fills the log, so the wait is a minute: one clear line per worker per
 * minute.  What warren can check itself (the files exist and are
 * readable) is a configuration error at load, for --check to see.
 */
#include "worker/connect_options.h"

wr_amqp_options wr_worker_amqp_options(const wr_config *cfg, const char *name)
{
    wr_amqp_options o = {
        .heartbeat = cfg->heartbeat,
        .connect_timeout = cfg->connect_timeout,
        .name = name,
        .password = cfg->broker_password,
        .ca_file = cfg->ca_file,
        .cert_file = cfg->cert_file,
        .key_file = cfg->key_file,
    };
    return o;
}

int wr_worker_tls_backoff(int failure, int backoff)
{
    if (failure == WR_AMQP_FAIL_TLS && backoff < WR_WORKER_TLS_BACKOFF_MS)
        return WR_WORKER_TLS_BACKOFF_MS;
    return backoff;
}
