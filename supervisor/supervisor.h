/*
 * The supervisor: a libuv loop that keeps `workers` worker processes
 * alive.  It never talks to the broker and never loads a plugin.
 *
 * States: RUNNING (replace dead workers) → STOPPING (SIGTERM sent to all,
 * SIGKILL after shutdown_timeout) → exit once the last worker is gone.
 */
#ifndef WR_SUPERVISOR_H
#define WR_SUPERVISOR_H

#include <uv.h>

#include "common/scoreboard.h"
#include "config/config.h"
#include "supervisor/children.h"
#include "supervisor/poison.h"

typedef enum wr_sup_state { WR_SUP_RUNNING = 0, WR_SUP_STOPPING } wr_sup_state;

typedef struct wr_supervisor {
    uv_loop_t *loop;
    const wr_config *cfg;
    const char *exe;        /* the worker program (lib/warren/warren-worker) */
    const char *plugin_dir; /* resolved, passed to workers */
    char *config_text;      /* cfg as INI, written to each worker's stdin */
    size_t config_len;
    char *title_routes; /* "rpc,status": for worker process titles */
    char since[24];     /* when we started, unix ms: workers report it (--since) */

    wr_sup_state state;
    int exit_code;
    int ready_announced;

    wr_child *children;
    int nchildren;
    wr_scoreboard scoreboard; /* slot i: what worker i is doing */

    wr_poison poison; /* deaths per message */

    uv_signal_t sig_term, sig_int, sig_quit, sig_hup;
    uv_timer_t kill_timer;
} wr_supervisor;

/* Run until stopped.  Returns the exit code for the process. */
int wr_supervisor_run(const wr_config *cfg, const char *exe, const char *plugin_dir);

/* Called by children.c when a worker is gone (its handles closed). */
void wr_supervisor_child_gone(wr_supervisor *sup, wr_child *c);
/* Called by children.c on each status line (events: ready). */
void wr_supervisor_child_status(wr_supervisor *sup, wr_child *c, const wr_ipc_msg *m);
/* Begin a graceful stop with the given exit code. */
void wr_supervisor_stop(wr_supervisor *sup, int exit_code);

#endif
