/*
 * warren's configuration: parsed once from an INI file (inih), validated
 * whole, then handed around read-only.
 *
 * Sections and keys (config/warren.conf documents each one):
 *   [broker]  uri, heartbeat, connect_timeout, ca_file, cert_file, key_file,
 *             password_file
 *   [pool]    workers, prefetch, max_message_size, shutdown_timeout,
 *             max_attempts, max_batch, request_timeout, reply_retry,
 *             publisher_confirms, max_requests, max_rss, min_workers,
 *             max_workers, idle_timeout, startup_timeout, control_socket
 *   [plugins] dir, load
 *   [log]     level
 *   [metrics] listen
 *   [route NAME]  queue, format, method, broadcast, queue_type, dead_letter,
 *                 exchange, exchange_declare, bindings, reply_exchange,
 *                 reply_prefix, request_timeout   (one or more routes)
 *   [plugin NAME] any keys; passed to plugin NAME's init()
 */
#ifndef WR_CONFIG_H
#define WR_CONFIG_H

#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>

#include "common/diag.h"

/* How a route reads its bodies (worker/format_*.c). */
typedef enum wr_format {
    WR_FORMAT_JSONRPC = 0, /* JSON-RPC 2.0 objects and batches */
    WR_FORMAT_RAW,         /* the whole body is the one argument of the route's method */
    WR_FORMAT_AMQPBUS      /* {"q": payload, "qid": id}, replies to <reply_prefix>.<qid> */
} wr_format;

/* exchange_declare: which exchange type warren declares (0: none). */
typedef enum wr_exchange_type {
    WR_EXCHANGE_NONE = 0,
    WR_EXCHANGE_DIRECT,
    WR_EXCHANGE_TOPIC,
    WR_EXCHANGE_FANOUT
} wr_exchange_type;

/* queue_type: the x-queue-type warren declares a route's queue with. */
typedef enum wr_queue_type { WR_QUEUE_CLASSIC = 0, WR_QUEUE_QUORUM } wr_queue_type;

typedef struct wr_route {
    char *name;           /* from "[route NAME]" */
    int line;             /* line of the section header, for messages */
    char *queue;          /* durable queue, declared by warren; required */
    int format;           /* a wr_format */
    char *method;         /* raw and amqpbus: the method every message calls */
    int method_line;      /* where method was given (0: an override), for --check */
    int broadcast;        /* one queue per warren instance: every instance answers */
    int queue_type;       /* a wr_queue_type, declared explicitly (x-queue-type);
                             default quorum, always classic on a broadcast route */
    int dead_letter;      /* declare <queue>.dead and dead-letter into it; default
                             yes, always no on a broadcast route */
    char *exchange;       /* NULL: no binding */
    int exchange_declare; /* a wr_exchange_type: declare EXCHANGE durable */
    char **bindings;      /* binding keys, owned; nbindings may be 0 */
    size_t nbindings;
    char *reply_exchange; /* NULL: replies only to reply_to (or, with
                             reply_prefix alone, to EXCHANGE) */
    char *reply_prefix;   /* routing key prefix for replies without reply_to */
    int request_timeout;  /* seconds; default [pool] request_timeout; 0: no limit */
} wr_route;

typedef struct wr_kv {
    char *key;
    char *value;
    int line;
} wr_kv;

typedef struct wr_plugin_section {
    char *name; /* from "[plugin NAME]" */
    int line;
    wr_kv *items;
    size_t nitems;
} wr_plugin_section;

typedef struct wr_config {
    char *path; /* file name as given, used in messages */

    char **broker_uris;  /* [broker] uri, one or more nodes, owned; default
                            amqp://guest:guest@127.0.0.1:5672/ */
    size_t nbroker_uris; /* at least 1 */
    char *broker_uri;    /* broker_uris[0] (borrowed), for code that needs one */
    int heartbeat;       /* seconds, 0 disables; default 30 */
    int connect_timeout; /* seconds; default 10 */
    char *ca_file;       /* amqps: CAs to trust (NULL: the system's) */
    char *cert_file;     /* amqps: client certificate, with key_file (NULL: none) */
    char *key_file;
    char *password_file; /* as written (may start with ${CREDENTIALS_DIRECTORY}) */

    /* Not keys: where the broker password came from, found at load. */
    char *broker_password;       /* from password_file or the environment (NULL: the URI's,
                                    if any); wiped by wr_config_free */
    const char *password_source; /* "password_file", "$WARREN_BROKER_PASSWORD", "uri" or NULL */
    int uri_password_line;       /* the file's line whose uri holds a password; 0: none */

    int workers;            /* 1..1024; default 4 */
    int prefetch;           /* 1..65535; default 1 */
    long max_message_size;  /* bytes; default 1 MiB */
    int shutdown_timeout;   /* seconds before SIGKILL on stop; default 30 */
    int max_attempts;       /* deaths one message may cause; default 3 */
    int builtin_methods;    /* answer warren.status on every route; default yes */
    int max_batch;          /* calls in one JSON-RPC batch, 1..1000000; default 1000 */
    int request_timeout;    /* seconds a call may run before its worker is killed; 0: no
                               limit; default 30 (a route may set its own) */
    int reply_retry;        /* seconds a reply the broker nacks is sent again before
                               its request is acked anyway; 0: never; default 30 */
    int publisher_confirms; /* a request is acked once the broker confirmed its reply
                               (yes, the default), or once the reply is written (no) */
    int max_requests;       /* a worker retires after about this many (±10%); 0: never */
    long max_rss;           /* bytes; a worker above it retires between calls; 0: no limit */
    int min_workers;        /* a dynamic pool: both set (0: a fixed pool of `workers`) */
    int max_workers;
    int idle_timeout;     /* dynamic pool: seconds an extra worker may idle; default 10 */
    int startup_timeout;  /* seconds without any worker consuming before warren gives up;
                             0: never; default 60 */
    char *control_socket; /* unix socket for `warren status`; default
                             /run/warren/NAME.sock for NAME.conf; "none": no socket */

    char *plugin_dir; /* default: the installed plugin dir */
    char **plugins;   /* names from [plugins] load, owned */
    size_t nplugins;
    int plugins_line; /* line of the `load` key (0: not in the file), so
                         plugin errors can point at it */

    wr_route *routes; /* at least one */
    size_t nroutes;

    int log_level; /* WR_LOG_ERROR..WR_LOG_DEBUG (common/log.h); default info */

    /* WR_LOG_TEXT or WR_LOG_JSON (common/log.h); default text */
    int log_format;
    char *metrics_listen; /* [metrics] listen: HOST:PORT of GET /metrics; NULL: off */

    wr_plugin_section *plugin_sections;
    size_t nplugin_sections;
} wr_config;

/*
 * Parse and validate PATH, then apply OVERRIDES ("section.key=value"; for
 * "[route rpc]" the section is written "route.rpc") as if they came last in
 * the file.  On success return 0 and fill *cfg (free it with
 * wr_config_free).  On failure return -1, add one "FILE:LINE: what is
 * wrong" message per problem to DIAG, and leave *cfg freed.
 */
int wr_config_load(wr_config *cfg, const char *path, const char *const *overrides,
                   size_t noverrides, wr_diag *diag) __attribute__((warn_unused_result));

/* The same, from a string in memory; NAME stands in for the file name. */
int wr_config_load_string(wr_config *cfg, const char *name, const char *text,
                          const char *const *overrides, size_t noverrides, wr_diag *diag)
    __attribute__((warn_unused_result));

/* Write CFG as an INI file that wr_config_load_string() reads back into an
 * equal config.  The supervisor hands its validated config to each worker
 * this way, so a worker never re-reads a file that may have changed. */
int wr_config_write(const wr_config *cfg, FILE *out);

/* The [plugin NAME] section, or NULL.  Borrowed. */
const wr_plugin_section *wr_config_plugin_section(const wr_config *cfg, const char *name);

void wr_config_free(wr_config *cfg);

/* Parse TEXT as [metrics] listen takes it: IPV4:PORT, [IPV6]:PORT or
 * localhost:PORT (127.0.0.1), port 1..65535, no name resolution.  0 with
 * OUT filled, or -1 with ERR saying what is wrong. */
int wr_config_listen_addr(const char *text, struct sockaddr_storage *out, char *err, size_t errlen);

#endif
