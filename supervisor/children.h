/*
 * The worker processes: spawn (re-exec of our own binary in worker mode
 * with uv_spawn), read their status pipes, bury them with one log line,
 * and replace them.
 */
#ifndef WR_CHILDREN_H
#define WR_CHILDREN_H

#include <stdint.h>
#include <uv.h>

#include "common/ipc.h"

struct wr_supervisor;

typedef enum wr_child_state {
    WR_CHILD_EMPTY = 0, /* no process (not started, or waiting to restart) */
    WR_CHILD_STARTING,  /* spawned, not ready yet */
    WR_CHILD_READY      /* consuming; idle or busy: see its scoreboard slot */
} wr_child_state;

typedef struct wr_child {
    struct wr_supervisor *sup;
    int index; /* its slot: in the supervisor's table and the scoreboard */
    wr_child_state state;
    int pid;
    uint64_t started_ms; /* uv_now() at spawn */
    uint64_t ready_ms;   /* uv_now() when it first said ready (0: not yet) */
    unsigned generation; /* of the config it was started with */

    /* Its way out.  RETIRING: told to finish its request in hand and exit
     * (SIGTERM at term_ms; SIGKILL after shutdown_timeout); it is not
     * replaced in its slot.  RECYCLE: to be retired once a replacement
     * (REPLACEMENT) is consuming: max_requests, max_rss. */
    int retiring;
    uint64_t term_ms;
    char recycle[WR_IPC_LINE_MAX]; /* why, or "" */
    struct wr_child *replacing;    /* a starting worker: the one it is to replace */
    int timed_out;                 /* the request_timeout (seconds) its call ran past, or 0 */
    uint64_t timeout_at;           /* uv_now() when it was told (SIGTERM); SIGKILL after a grace */

    /* What `warren status` shows. */
    unsigned restarts;
    char last_death[1024];
    long rss;                   /* bytes, as of the last tick */
    unsigned long last_handled; /* the slot's count as of the last tick */
    uint64_t idle_since_ms;     /* uv_now() of its last sign of work */

    uv_process_t proc;
    uv_pipe_t ipc;   /* worker's fd 3: status lines (events) */
    uv_pipe_t input; /* worker's stdin: config, then commands */
    uv_write_t input_req;
    char *input_buf;            /* what input_req writes; freed when written */
    int handles_open;           /* proc, ipc, input: closed ones still pending */
    char line[WR_IPC_LINE_MAX]; /* partial status line */
    size_t line_len;

    /* How it ended, kept until its status pipe is drained. */
    int64_t exit_status;
    int term_signal;

    /* Restart pacing. */
    uv_timer_t restart_timer;
    int restart_delay_ms;
} wr_child;

/* Spawn worker C->index (generation: the supervisor's now).  0, or a
 * negative libuv error (logged). */
int wr_children_spawn(wr_child *c);

/* Send one command line (see common/ipc.h) to the worker's stdin, if it
 * is still open.  LINE is copied.  When it cannot be sent, the failure is
 * logged and the worker is stopped gracefully (and replaced), so no
 * worker runs with an incomplete poison list. */
void wr_children_command(wr_child *c, const char *line, size_t len);

/* Send SIG to the worker if it is running. */
void wr_children_signal(wr_child *c, int sig);

/* A new slot INDEX: malloc'd, its timer initialised.  NULL (logged) on
 * failure. */
wr_child *wr_children_new(struct wr_supervisor *sup, int index);

/* Close the slot's timer and free it once closed.  The process must be
 * gone (state EMPTY, handles closed). */
void wr_children_free(wr_child *c);

#endif
