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
    int index;
    wr_child_state state;
    int pid;
    uint64_t started_ms; /* uv_now() at spawn */

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

/* Spawn worker C->index.  0, or a negative libuv error (logged). */
int wr_children_spawn(wr_child *c);

/* Send one command line (see common/ipc.h) to the worker's stdin, if it
 * is still open.  LINE is copied.  When it cannot be sent, the failure is
 * logged and the worker is stopped gracefully (and replaced), so no
 * worker runs with an incomplete poison list. */
void wr_children_command(wr_child *c, const char *line, size_t len);

/* Send SIG to the worker if it is running. */
void wr_children_signal(wr_child *c, int sig);

/* Initialise the per-child timer (once, at supervisor start).  0, or a
 * negative libuv error (logged). */
int wr_children_init(wr_child *c, struct wr_supervisor *sup, int index);

/* Close the per-child timer (at supervisor exit). */
void wr_children_close(wr_child *c);

#endif
