/*
 * The supervisor: a libuv loop that keeps a pool of worker processes
 * alive.  It never talks to the broker and never loads a plugin.
 *
 * It owns its state: the config (with the file's path and the -o
 * overrides, to read it again), a table of worker slots that grows and
 * shrinks, the config generation each worker was started with.
 *
 * States:
 *   RUNNING    replace dead workers; recycle, time out, resize the pool.
 *   RELOADING  a new config is applied and workers of the older
 *              generation are being replaced one at a time, each new one
 *              consuming before an old one is told to leave; back to
 *              RUNNING when none is left.
 *   STOPPING   SIGTERM sent to all (each finishes its request in hand),
 *              SIGKILL to any still there after shutdown_timeout; exit
 *              once the last one is gone.
 */
#ifndef WR_SUPERVISOR_H
#define WR_SUPERVISOR_H

#include <uv.h>

#include "common/scoreboard.h"
#include "config/config.h"
#include "supervisor/children.h"
#include "supervisor/control.h"
#include "supervisor/metrics.h"
#include "supervisor/poison.h"

/* Slots in the scoreboard: the largest pool (1024) twice over, for a roll
 * that starts new workers before old ones leave.  Some 30 KiB each (the
 * metrics tables), but only the pages of slots in use are ever touched. */
#define WR_SUP_MAX_SLOTS 2048

typedef enum wr_sup_state { WR_SUP_RUNNING = 0, WR_SUP_RELOADING, WR_SUP_STOPPING } wr_sup_state;

/* What wr_supervisor_run needs besides the config. */
typedef struct wr_supervisor_args {
    const char *config_path;      /* to read again on reload */
    const char *const *overrides; /* -o S.K=V, applied again on reload */
    size_t noverrides;
    const char *worker_exe;         /* lib/warren/warren-worker */
    const char *self_exe;           /* bin/warren, run with --check on reload */
    const char *default_plugin_dir; /* when [plugins] dir is not set */
} wr_supervisor_args;

typedef struct wr_supervisor {
    uv_loop_t *loop;
    const wr_supervisor_args *args;
    wr_config *cfg;      /* the one in force; owned */
    unsigned generation; /* 1, then one more per reload that rolls the workers */
    const char *exe;     /* the worker program */
    char *plugin_dir;    /* resolved, passed to workers */
    char *config_text;   /* cfg as INI, written to each worker's stdin */
    size_t config_len;
    char *signature;    /* what a reload compares to decide on a roll */
    char *title_routes; /* "rpc,status": for worker process titles */
    char since[24];     /* when we started, unix ms: workers report it (--since) */
    uint64_t started_ms;

    wr_sup_state state;
    int exit_code;
    int ready_announced;
    int target; /* how many workers we want now */

    wr_child *slots[WR_SUP_MAX_SLOTS]; /* NULL: free */
    int nslots;                        /* highest slot in use + 1 */
    wr_scoreboard scoreboard;          /* slot i: what worker i is doing */

    wr_poison poison; /* deaths per message */

    /* Crash storm: since when no worker is consuming (0: one is), and
     * whether a worker died since. */
    uint64_t none_ready_since;
    int died_since_none_ready;
    char last_error[1024];
    unsigned long gone_handled, gone_failed; /* counted by workers now gone */

    /* Reload: the --check child, and a reload asked for while it runs. */
    uv_process_t check_proc;
    int checking;
    int64_t check_status; /* its exit status (-1: it could not be run) */
    int check_signal;
    int reload_again;
    uint64_t dynamic_change_ms; /* last time the dynamic pool grew or shrank */

    char **worker_env;     /* ours without systemd's NOTIFY_SOCKET and WATCHDOG_*: only the
                              supervisor talks to systemd */
    char last_status[160]; /* the last STATUS= sent to systemd */
    uint64_t watchdog_ms;  /* WatchdogSec in ms (0: none) */
    uint64_t last_watchdog;

    wr_control control;
    int control_on;

    wr_metrics_totals metrics;      /* restarts, poison, what gone workers counted */
    wr_metrics_server metrics_http; /* GET /metrics ([metrics] listen) */
    int metrics_on;                 /* it is listening */

    uv_signal_t sig_term, sig_int, sig_quit, sig_hup, sig_ttin, sig_ttou;
    uv_timer_t tick;
} wr_supervisor;

/* Run until stopped.  Takes CFG over (leaves it empty).  Returns the exit
 * code for the process. */
int wr_supervisor_run(wr_config *cfg, const wr_supervisor_args *args);

/* Called by children.c when a worker is gone (its handles closed). */
void wr_supervisor_child_gone(wr_supervisor *sup, wr_child *c);
/* Called by children.c on each status line (events: ready, retire). */
void wr_supervisor_child_status(wr_supervisor *sup, wr_child *c, const wr_ipc_msg *m);
/* Begin a graceful stop with the given exit code. */
void wr_supervisor_stop(wr_supervisor *sup, int exit_code);
/* Stopping, and nothing left to wait for (workers, the --check child):
 * close our handles so that the loop ends. */
void wr_supervisor_exit_if_done(wr_supervisor *sup);

/* supervisor/reload.c: read the config again (SIGHUP, `warren reload`):
 * validated in a --check child first, then applied. */
void wr_supervisor_reload(wr_supervisor *sup);
/* Make CFG (taken over) the config in force, for workers started from now
 * on; 1 if the workers must be rolled (anything but the pool's size
 * changed, or a plugin file), 0 if not, -1 out of memory (nothing
 * changed). */
int wr_supervisor_apply(wr_supervisor *sup, wr_config *cfg);

/* supervisor/status.c: the pool as `warren status --json` shows it
 * (malloc'd), and the one-line summary for systemd's STATUS=. */
char *wr_supervisor_status_json(wr_supervisor *sup);
void wr_supervisor_status_line(const wr_supervisor *sup, char *buf, size_t len);

/* supervisor/scrape.c: the body of GET /metrics (a wr_metrics_body_fn;
 * ARG is the supervisor). */
char *wr_supervisor_metrics(void *arg, int openmetrics, size_t *len);

/* Bring the pool to what is wanted: spawn, roll, retire.  Called after
 * every event that may change it. */
void wr_supervisor_converge(wr_supervisor *sup);

#endif
