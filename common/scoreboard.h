/*
 * The scoreboard: one slot of shared memory per worker, where the worker
 * keeps what it is doing (idle, or which request it runs since when) and
 * its counters.  The supervisor reads a slot when it needs to (a worker
 * died: which message did it hold?), so a call costs the worker a few
 * stores and no system call, and the supervisor nothing.  php-fpm keeps
 * its children's state the same way.  Events (ready, exit) still travel on
 * the status pipe (common/ipc.h).
 *
 * The supervisor creates the memory (a memfd, whole pages per slot) and
 * hands each worker its descriptor as fd WR_SCOREBOARD_FD; the worker maps
 * its own pages and closes the descriptor.  A worker started by hand
 * (no fd 4) writes to a private slot nobody reads.
 *
 * Consistency: a sequence counter, odd while the worker writes (a
 * seqlock).  A reader retries while it is odd or changed under it; a
 * slot whose worker died mid-write (odd for good) reads as idle, since
 * the worker was in warren's code then, not in a handler.
 *
 * One field goes the other way: want_backlog, set by the supervisor
 * (wr_slot_want_backlog) and only read by the worker, is a plain atomic
 * outside the seqlock.  While it is set the worker counts, between calls
 * and at most once a second, the messages ready in its routes' queues
 * (worker/backlog.c) and writes the sum into backlog, for the dynamic
 * pool, and per route into metrics.queues, for GET /metrics.
 * wr_scoreboard_clear zeroes it with the rest: set it again after.
 */
#ifndef WR_SCOREBOARD_H
#define WR_SCOREBOARD_H

#include <stdatomic.h>

#include "common/ipc.h"

#define WR_SCOREBOARD_FD 4
#define WR_SLOT_ERROR_MAX 256 /* last_error, with its NUL */

/*
 * The worker's metrics (supervisor/metrics.h renders them), kept in its
 * slot under the seqlock: per (route, method) the requests answered by
 * outcome with a histogram of their durations, the JSON-RPC error codes
 * of the error responses, poison refusals, the broker connection, and the
 * messages ready per route queue (counted with the backlog).  Fixed-size
 * tables whose last entry takes whatever does not fit ("other"), so that
 * counting a call is a few stores: no allocation, no system call.
 */
#define WR_METRICS_CALLS 64   /* (route, method) entries; the last is "other" */
#define WR_METRICS_CODES 16   /* error codes; the last is "other" */
#define WR_METRICS_BUCKETS 16 /* wr_metrics_bounds, then +Inf */
#define WR_METRICS_ROUTES 32  /* routes whose queue depth is reported */

/* The histogram's upper bounds, seconds (the last bucket, +Inf, has none). */
extern const double wr_metrics_bounds[WR_METRICS_BUCKETS - 1];

typedef struct wr_metrics_call {
    char route[WR_IPC_TOKEN_MAX]; /* "" : entry unused */
    char method[WR_IPC_TOKEN_MAX];
    unsigned long ok, error;
    unsigned long buckets[WR_METRICS_BUCKETS]; /* not cumulative: each its own range */
    double sum;                                /* seconds */
} wr_metrics_call;

typedef struct wr_metrics_code {
    int code; /* 0: entry unused (never a JSON-RPC error code) */
    unsigned long count;
} wr_metrics_code;

typedef struct wr_metrics_queue {
    char route[WR_IPC_TOKEN_MAX]; /* "" : unused */
    long messages;                /* -1: not counted (yet, or the count failed) */
} wr_metrics_queue;

typedef struct wr_slot_metrics {
    wr_metrics_call calls[WR_METRICS_CALLS];
    wr_metrics_code codes[WR_METRICS_CODES];
    unsigned long other_codes; /* error codes the table had no room for */
    unsigned long poison_refusals;
    int connected; /* to a broker: 1, else 0 */
    wr_metrics_queue queues[WR_METRICS_ROUTES];
    long long queues_ms; /* CLOCK_MONOTONIC ms of the last count; 0: never */
} wr_slot_metrics;

/* One answered request, as wr_slot_end_call counts it. */
typedef struct wr_call_record {
    const char *route, *method;
    int error;              /* answered with an error (any) */
    double seconds;         /* from its delivery to its reply */
    const int *codes;       /* the error codes of its error responses */
    const unsigned *counts; /* how many responses had each */
    size_t ncodes;
    unsigned long more_codes; /* error responses beyond those (no room) */
    int refused;              /* a poison refusal */
} wr_call_record;

typedef struct wr_slot {
    atomic_uint seq;
    int busy;                /* a request in hand: the fields below name it */
    long long busy_since_ms; /* CLOCK_MONOTONIC, milliseconds */
    unsigned long handled;   /* requests answered */
    unsigned long failed;    /* of which with an error reply */
    char route[WR_IPC_TOKEN_MAX];
    char method[WR_IPC_TOKEN_MAX];
    char msgid[WR_IPC_TOKEN_MAX];
    char hash[17];
    int private_copy;     /* the worker's own memory (no fd 4): wr_slot_detach frees it */
    long backlog;         /* messages ready in my routes' queues, summed; -1: unknown */
    long long backlog_ms; /* CLOCK_MONOTONIC ms when it was counted; 0: never */
    char last_error[WR_SLOT_ERROR_MAX]; /* my latest ERROR log line's text, or "" */
    atomic_int want_backlog;            /* the supervisor's: count the backlog (not under seq) */
    wr_slot_metrics metrics;            /* under seq, like the rest */
} wr_slot;

/* What a reader gets: a consistent copy. */
typedef struct wr_slot_view {
    int busy;
    long long busy_since_ms;
    unsigned long handled, failed;
    wr_ipc_msg current;   /* type WR_IPC_START with route, method, msgid and
                             hash while busy; all zero when idle */
    long backlog;         /* -1: unknown (see wr_slot) */
    long long backlog_ms; /* 0: never counted */
    char last_error[WR_SLOT_ERROR_MAX];
} wr_slot_view;

/* ---- the supervisor's side ---- */

typedef struct wr_scoreboard {
    int fd;
    int nslots;
    unsigned char *base; /* nslots slots of whole pages */
} wr_scoreboard;

/* Create a scoreboard of NSLOTS zeroed slots.  0, or -1 with errno. */
int wr_scoreboard_create(wr_scoreboard *sb, int nslots);
void wr_scoreboard_destroy(wr_scoreboard *sb);

/* Slot I (0 <= I < nslots). */
wr_slot *wr_scoreboard_slot(const wr_scoreboard *sb, int i);

/* Zero slot I, before its worker is (re)started. */
void wr_scoreboard_clear(const wr_scoreboard *sb, int i);

/* A consistent copy of S. */
void wr_slot_read(const wr_slot *s, wr_slot_view *out);

/* A consistent copy of S's metrics. */
void wr_slot_read_metrics(const wr_slot *s, wr_slot_metrics *out);

/* Ask S's worker to count its backlog (ON nonzero) or to stop counting.
 * A plain atomic store: the worker sees it on its next turn. */
void wr_slot_want_backlog(wr_slot *s, int on);

/* Now, CLOCK_MONOTONIC, in milliseconds (the slots' clock). */
long long wr_monotonic_ms(void);

/* ---- the worker's side ---- */

/* Map slot INDEX from fd WR_SCOREBOARD_FD when the supervisor gave one
 * (and close the fd), else a private slot.  NULL, with errno, only when
 * memory cannot be had. */
wr_slot *wr_slot_attach(int index);

/* Give back what wr_slot_attach took (NULL ok). */
void wr_slot_detach(wr_slot *s);

/* A request began: M names it (route, method, msgid, hash). */
void wr_slot_begin(wr_slot *s, const wr_ipc_msg *m);

/* The request in hand ended: answered (the counters are the new totals)
 * or dropped unanswered (the connection failed; the counters unchanged). */
void wr_slot_end(wr_slot *s, unsigned long handled, unsigned long failed);

/* The request in hand was answered (as wr_slot_end) and is counted in
 * the metrics as REC says.  Stores only. */
void wr_slot_end_call(wr_slot *s, unsigned long handled, unsigned long failed,
                      const wr_call_record *rec);

/* Connected to a broker (1) or not (0). */
void wr_slot_set_connected(wr_slot *s, int connected);

/* The messages ready per route queue: ROUTES[i] has MESSAGES[i] (-1:
 * unknown), N routes (those past WR_METRICS_ROUTES are not kept). */
void wr_slot_set_queues(wr_slot *s, const char *const *routes, const long *messages, size_t n,
                        long long at_ms);

/* Now, CLOCK_MONOTONIC, in seconds with nanoseconds (vDSO: no system
 * call on Linux). */
double wr_monotonic_seconds(void);

/* Whether the supervisor wants the backlog counted (wr_slot_want_backlog). */
int wr_slot_backlog_wanted(const wr_slot *s);

/* The backlog was counted at AT_MS (CLOCK_MONOTONIC): BACKLOG messages
 * ready, or -1 when the count failed. */
void wr_slot_set_backlog(wr_slot *s, long backlog, long long at_ms);

/* The worker's latest error: MSG, cut to WR_SLOT_ERROR_MAX - 1 bytes.
 * Only the thread that writes the other fields may call it (a seqlock has
 * one writer). */
void wr_slot_set_error(wr_slot *s, const char *msg);

#endif
