/*
 * The scoreboard: one slot of shared memory per worker, where the worker
 * keeps what it is doing (idle, or which request it runs since when) and
 * its counters.  The supervisor reads a slot when it needs to (a worker
 * died: which message did it hold?), so a call costs the worker a few
 * stores and no system call, and the supervisor nothing.  php-fpm keeps
 * its children's state the same way.  Events (ready, exit) still travel on
 * the status pipe (common/ipc.h).
 *
 * The supervisor creates the memory (a memfd, one page per slot) and
 * hands each worker its descriptor as fd WR_SCOREBOARD_FD; the worker maps
 * its own page and closes the descriptor.  A worker started by hand
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
 * pool.  wr_scoreboard_clear zeroes it with the rest: set it again after.
 */
#ifndef WR_SCOREBOARD_H
#define WR_SCOREBOARD_H

#include <stdatomic.h>

#include "common/ipc.h"

#define WR_SCOREBOARD_FD 4
#define WR_SLOT_ERROR_MAX 256 /* last_error, with its NUL */

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
    unsigned char *base; /* nslots pages */
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
