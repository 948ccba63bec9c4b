/*
 * GET /metrics: Prometheus and OpenMetrics text from the supervisor.
 *
 * Three parts, each usable alone (the unit tests use the first two):
 *   the renderer  a snapshot of the pool's numbers → the text of either
 *                 format (wr_metrics_render);
 *   the parser    the bytes of an HTTP/1.1 request → method, path, and
 *                 whether OpenMetrics was asked for (wr_metrics_parse);
 *   the server    a TCP listener on the supervisor's libuv loop, bound to
 *                 exactly the configured address, that answers each
 *                 request and closes (wr_metrics_start).
 * The numbers are read from the workers' scoreboard slots when a scrape
 * comes (supervisor/scrape.c): no message, no work per call.
 */
#ifndef WR_METRICS_H
#define WR_METRICS_H

#include <stddef.h>
#include <uv.h>

#include "common/scoreboard.h"

/* Why a worker was replaced, for warren_worker_restarts_total{reason}. */
enum {
    WR_RESTART_EXIT = 0, /* exited (not asked to) */
    WR_RESTART_SIGNAL,   /* killed by a signal we did not send to retire it */
    WR_RESTART_TIMEOUT,  /* killed for request_timeout */
    WR_RESTART_RECYCLE,  /* replaced on purpose: max_requests, max_rss, a reload's roll */
    WR_RESTART_NREASONS
};
extern const char *const wr_metrics_restart_names[WR_RESTART_NREASONS];

/* What the supervisor counts itself (in wr_supervisor). */
typedef struct wr_metrics_totals {
    unsigned long restarts[WR_RESTART_NREASONS];
    unsigned long poison_declared; /* messages that reached max_attempts deaths */
    wr_slot_metrics gone;          /* what workers now gone counted (wr_metrics_fold) */
} wr_metrics_totals;

/* Workers by state, for warren_workers{state}. */
enum { WR_WSTATE_STARTING = 0, WR_WSTATE_IDLE, WR_WSTATE_BUSY, WR_WSTATE_STOPPING, WR_WSTATE_N };

/* One scrape's numbers, all borrowed. */
typedef struct wr_metrics_snapshot {
    const char *version;
    const wr_slot_metrics *calls; /* calls, codes, poison refusals: gone and live folded */
    int in_flight;
    int workers[WR_WSTATE_N];
    const unsigned long *restarts; /* WR_RESTART_NREASONS */
    unsigned long poison_declared;
    const int *worker_index; /* live workers: index and broker connection (0/1) */
    const int *worker_connected;
    size_t nworkers;
    const wr_metrics_queue *queues; /* one per route (messages -1: unknown, skipped) */
    size_t nqueues;
} wr_metrics_snapshot;

/* Add FROM's calls, codes and poison refusals into INTO (entries matched
 * by route and method, or code; what does not fit goes to the "other"
 * entries). */
void wr_metrics_fold(wr_slot_metrics *into, const wr_slot_metrics *from);

/* The text of S in the OpenMetrics 1.0.0 format (OPENMETRICS nonzero) or
 * the Prometheus text format 0.0.4.  Malloc'd, the caller frees it; *LEN
 * its length.  NULL out of memory. */
char *wr_metrics_render(const wr_metrics_snapshot *s, int openmetrics, size_t *len);

/* The Content-Type of each format. */
#define WR_METRICS_TYPE_OPENMETRICS "application/openmetrics-text; version=1.0.0; charset=utf-8"
#define WR_METRICS_TYPE_PROMETHEUS "text/plain; version=0.0.4; charset=utf-8"

/* ---- HTTP ---- */

#define WR_METRICS_REQUEST_MAX 8192 /* a request's head, bytes; larger: 400 */

typedef struct wr_http_request {
    char method[16];
    char path[256];
    int openmetrics; /* Accept names application/openmetrics-text */
} wr_http_request;

/* Parse the request head in BUF (LEN bytes, what has arrived so far).
 * 1: complete (OUT filled); 0: incomplete, read more; -1: malformed
 * (answer 400).  A body is not read (GET has none). */
int wr_metrics_parse(const char *buf, size_t len, wr_http_request *out);

/* The status for R: 200 (GET or HEAD /metrics), 404 (another path),
 * 405 (another method). */
int wr_metrics_status(const wr_http_request *r);

/* ---- the server ---- */

#define WR_METRICS_MAX_CLIENTS 16
#define WR_METRICS_TIMEOUT_MS 5000 /* a client has this long to send its request */

/* Build the body for a scrape (malloc'd, *LEN set; NULL: out of memory). */
typedef char *(*wr_metrics_body_fn)(void *arg, int openmetrics, size_t *len);

typedef struct wr_metrics_server {
    uv_tcp_t listener;
    uv_loop_t *loop;
    wr_metrics_body_fn body;
    void *arg;
    int nclients;
    int open; /* the listener is initialised (to be closed) */
} wr_metrics_server;

/* Listen on LISTEN ([metrics] listen, already validated) on LOOP.  0, or
 * a negative libuv error, logged (nothing left open then). */
int wr_metrics_start(wr_metrics_server *m, uv_loop_t *loop, const char *listen,
                     wr_metrics_body_fn body, void *arg);

/* Close the listener and every client connection (their memory goes in
 * their close callbacks). */
void wr_metrics_stop(wr_metrics_server *m);

#endif
