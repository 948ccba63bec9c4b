/*
 * The supervisor's loop and state machine.
 *
 * Signals arrive as libuv callbacks (uv_signal_t does the async-safe part),
 * so everything here is ordinary code:
 *   SIGTERM, SIGINT, SIGQUIT  → STOPPING (see supervisor.h).
 *   SIGHUP                    → reload (supervisor/reload.c).
 *   SIGTTIN, SIGTTOU          → one worker more, one fewer.
 *
 * What the pool should look like is decided in one place,
 * wr_supervisor_converge(), called after every event: a worker ready or
 * gone, a reload applied, a tick of the timer.  The tick (twice a second)
 * also reads every worker's scoreboard slot: a request past its
 * request_timeout gets its worker killed; a worker past max_rss is
 * recycled; a dynamic pool grows while all are busy with a backlog and
 * shrinks when one idles; a retiring worker still there after
 * shutdown_timeout gets SIGKILL; systemd hears STATUS= and WATCHDOG=1.
 *
 * A worker that dies while RUNNING is replaced in its slot, after a delay
 * that doubles while workers keep dying young, so a broken environment
 * cannot make us spin; and if for startup_timeout no worker consumes while
 * they keep dying, warren gives up with the last worker error.  A worker
 * that exits with WR_EXIT_CONFIG (bad plugin) stops the pool, unless it
 * ran a config that a reload has just brought in: then it is retried like
 * any crash, and the workers of the previous config go on serving.
 */
#include "supervisor/supervisor.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/exitcodes.h"
#include "common/log.h"
#include "common/notify.h"

#define RESTART_MIN_MS 100
#define RESTART_MAX_MS 10000
#define YOUNG_DEATH_MS 2000 /* a worker dying younger than this backs off */
#define TICK_MS 500
#define TIMEOUT_GRACE_MS 1000 /* between SIGTERM and SIGKILL for a call past request_timeout */
#define BACKLOG_FRESH_MS 3000 /* a backlog report older than this is not trusted */
#define DYNAMIC_STEP_MS 1000  /* a dynamic pool changes by one at most this often */

static void on_restart_timer(uv_timer_t *t)
{
    wr_child *c = t->data;
    if (c->sup->state != WR_SUP_STOPPING)
        wr_children_spawn(c);
}

static int live_children(const wr_supervisor *sup)
{
    int n = 0;
    for (int i = 0; i < sup->nslots; i++)
        if (sup->slots[i] && sup->slots[i]->handles_open > 0)
            n++;
    return n;
}

static void close_handle(uv_handle_t *h)
{
    if (h->loop && !uv_is_closing(h))
        uv_close(h, NULL);
}

/* Close every handle we own so uv_run() returns. */
static void shut_loop(wr_supervisor *sup)
{
    close_handle((uv_handle_t *)&sup->sig_term);
    close_handle((uv_handle_t *)&sup->sig_int);
    close_handle((uv_handle_t *)&sup->sig_quit);
    close_handle((uv_handle_t *)&sup->sig_hup);
    close_handle((uv_handle_t *)&sup->sig_ttin);
    close_handle((uv_handle_t *)&sup->sig_ttou);
    close_handle((uv_handle_t *)&sup->tick);
    if (sup->control_on) {
        wr_control_stop(&sup->control);
        sup->control_on = 0;
    }
    if (sup->metrics_on) {
        wr_metrics_stop(&sup->metrics_http);
        sup->metrics_on = 0;
    }
    for (int i = 0; i < sup->nslots; i++)
        if (sup->slots[i]) {
            wr_children_free(sup->slots[i]);
            sup->slots[i] = NULL;
        }
    sup->nslots = 0;
}

static void describe_exit(const wr_child *c, char *buf, size_t len)
{
    if (c->timed_out && c->term_signal == SIGKILL)
        snprintf(buf, len, "timed out after %ds (request_timeout) and was killed", c->timed_out);
    else if (c->term_signal)
        snprintf(buf, len, "killed by signal %d (%s)", c->term_signal, strsignal(c->term_signal));
    else if (c->exit_status < 0)
        snprintf(buf, len, "could not be started");
    else
        snprintf(buf, len, "exited with code %lld", (long long)c->exit_status);
}

/* "SIGSEGV" for 11, for the JSON log; "11" for a signal without a name. */
static void signal_name(int sig, char *buf, size_t len)
{
    const char *abbrev = sig > 0 ? sigabbrev_np(sig) : NULL;

    if (abbrev)
        snprintf(buf, len, "SIG%s", abbrev);
    else
        snprintf(buf, len, "%d", sig);
}

/* A worker died holding the request HELD.  Count it against that message; at the limit,
 * tell every worker to refuse the message from now on. */
static void count_death(wr_supervisor *sup, const wr_ipc_msg *held, const char *how)
{
    const wr_poison_entry *e = wr_poison_record(&sup->poison, held, how);
    char line[WR_IPC_LINE_MAX];
    int n;

    if (e->deaths != (unsigned)sup->cfg->max_attempts)
        return;
    sup->metrics.poison_declared++;
    wr_log_fields(WR_LOG_WARN,
                  WR_LOG_FIELDS(WR_LOG_STR("event", "poison"), WR_LOG_STR("route", e->route),
                                WR_LOG_STR("correlation_id", e->msgid),
                                WR_LOG_STR("body_hash", e->hash), WR_LOG_INT("deaths", e->deaths)),
                  "route %s: request %s (body %s) has killed %u worker%s; workers will refuse it "
                  "(error reply, rejected without requeue)",
                  e->route, e->msgid, e->hash, e->deaths, e->deaths == 1 ? "" : "s");
    n = wr_poison_line(e, line, sizeof line);
    if (n < 0) { /* cannot happen: ipc.c checks that every line fits */
        wr_error("route %s: cannot format the poison command for request %s; workers will keep "
                 "trying it",
                 e->route, e->msgid);
        return;
    }
    for (int i = 0; i < sup->nslots; i++)
        if (sup->slots[i])
            wr_children_command(sup->slots[i], line, (size_t)n);
}

/* Give slot C back: its worker is gone and not to be replaced there. */
static void free_slot(wr_supervisor *sup, wr_child *c)
{
    for (int i = 0; i < sup->nslots; i++)
        if (sup->slots[i] && sup->slots[i]->replacing == c)
            sup->slots[i]->replacing = NULL;
    sup->slots[c->index] = NULL;
    while (sup->nslots > 0 && !sup->slots[sup->nslots - 1])
        sup->nslots--;
    uv_timer_stop(&c->restart_timer);
    wr_children_free(c);
}

/* Whether C is to be replaced by a worker of the current config. */
static int outdated(const wr_supervisor *sup, const wr_child *c)
{
    return c->generation != sup->generation || c->recycle[0];
}

static int ready_count(const wr_supervisor *sup)
{
    int n = 0;
    for (int i = 0; i < sup->nslots; i++)
        if (sup->slots[i] && sup->slots[i]->state == WR_CHILD_READY && !sup->slots[i]->retiring)
            n++;
    return n;
}

/* Count C's end in warren_worker_restarts_total, unless it was asked to
 * leave for good (the pool shrank) or warren is stopping. */
static void count_restart(wr_supervisor *sup, const wr_child *c)
{
    int reason;

    if (sup->state == WR_SUP_STOPPING)
        return;
    if (c->timed_out)
        reason = WR_RESTART_TIMEOUT;
    else if (c->recycle[0] || (c->retiring && outdated(sup, c)))
        reason = WR_RESTART_RECYCLE;
    else if (c->retiring)
        return;
    else if (c->term_signal)
        reason = WR_RESTART_SIGNAL;
    else
        reason = WR_RESTART_EXIT;
    sup->metrics.restarts[reason]++;
}

void wr_supervisor_child_gone(wr_supervisor *sup, wr_child *c)
{
    uint64_t now = uv_now(sup->loop);
    uint64_t lived = now - c->started_ms;
    char how[192], doing[512] = "", signame[32];
    int tempfail, failed;
    wr_slot_view slot;

    /* What it held, from its slot: it can no longer write there. */
    wr_slot_read(wr_scoreboard_slot(&sup->scoreboard, c->index), &slot);
    if (sup->metrics_on) { /* its counts outlive it */
        wr_slot_metrics gone;

        wr_slot_read_metrics(wr_scoreboard_slot(&sup->scoreboard, c->index), &gone);
        wr_metrics_fold(&sup->metrics.gone, &gone);
    }
    wr_scoreboard_clear(&sup->scoreboard, c->index);
    sup->gone_handled += slot.handled;
    sup->gone_failed += slot.failed;
    describe_exit(c, how, sizeof how);
    signal_name(c->term_signal, signame, sizeof signame);
    /* One past request_timeout that still finished its call in the grace
     * period answered it: no death. */
    failed = c->term_signal || c->exit_status != 0;
    if (slot.busy)
        snprintf(doing, sizeof doing, " while running %s (route %s, id %s) for %.1fs",
                 slot.current.method, slot.current.route, slot.current.msgid,
                 (double)(wr_monotonic_ms() - slot.busy_since_ms) / 1000.0);
    wr_log_fields(
        failed && !(c->retiring && c->term_signal == SIGTERM) ? WR_LOG_WARN : WR_LOG_INFO,
        WR_LOG_FIELDS(WR_LOG_STR("event", "worker_exit"), WR_LOG_INT("worker", c->index),
                      WR_LOG_INT("pid", c->pid),
                      WR_LOG_STR("signal", c->term_signal ? signame : NULL),
                      WR_LOG_INT(c->term_signal || c->exit_status < 0 ? NULL : "exit_code",
                                 (long long)c->exit_status),
                      WR_LOG_INT(c->timed_out ? "request_timeout" : NULL, c->timed_out),
                      WR_LOG_STR("route", slot.busy ? slot.current.route : NULL),
                      WR_LOG_STR("method", slot.busy ? slot.current.method : NULL),
                      WR_LOG_STR("correlation_id", slot.busy ? slot.current.msgid : NULL),
                      WR_LOG_DOUBLE("lived_seconds", (double)lived / 1000.0),
                      WR_LOG_INT("handled", (long long)slot.handled),
                      WR_LOG_INT("failed", (long long)slot.failed)),
        "worker %d (pid %d) %s%s after %.1fs; handled %lu request%s (%lu failed)", c->index, c->pid,
        how, doing, (double)lived / 1000.0, slot.handled, slot.handled == 1 ? "" : "s",
        slot.failed);
    if (failed) {
        snprintf(c->last_death, sizeof c->last_death, "%s%s", how, doing);
        if (slot.last_error[0])
            snprintf(sup->last_error, sizeof sup->last_error, "worker %d %s: %s", c->index, how,
                     slot.last_error);
        else
            snprintf(sup->last_error, sizeof sup->last_error, "worker %d %s%s", c->index, how,
                     doing);
        sup->died_since_none_ready = 1;
    }
    if (slot.busy && sup->state != WR_SUP_STOPPING && failed)
        count_death(sup, &slot.current, how);
    count_restart(sup, c);

    if (sup->state == WR_SUP_STOPPING) {
        wr_supervisor_exit_if_done(sup);
        return;
    }
    if (ready_count(sup) == 0 && !sup->none_ready_since) {
        sup->none_ready_since = now;
        sup->died_since_none_ready = failed;
    }
    /* Told to leave, or of a config no longer in force: not restarted
     * here; converge() starts what the pool lacks. */
    if (c->retiring || outdated(sup, c)) {
        free_slot(sup, c);
        wr_supervisor_converge(sup);
        return;
    }
    if (!c->term_signal && c->exit_status == WR_EXIT_CONFIG) {
        if (sup->state != WR_SUP_RELOADING) {
            wr_error("worker %d cannot start with this configuration (see above); stopping warren",
                     c->index);
            wr_supervisor_stop(sup, WR_EXIT_CONFIG);
            return;
        }
        wr_error("worker %d cannot start with the reloaded configuration (see above); the workers "
                 "of the previous one keep serving; fix it and reload again",
                 c->index);
    }
    /* A temporary failure (a plugin's init said so) backs off however
     * long the worker took to find out. */
    tempfail = !c->term_signal && c->exit_status == WR_EXIT_TEMPFAIL;
    if (lived < YOUNG_DEATH_MS || tempfail || c->exit_status == WR_EXIT_CONFIG) {
        c->restart_delay_ms = c->restart_delay_ms ? c->restart_delay_ms * 2 : RESTART_MIN_MS;
        if (c->restart_delay_ms > RESTART_MAX_MS)
            c->restart_delay_ms = RESTART_MAX_MS;
    } else {
        c->restart_delay_ms = 0;
    }
    c->restarts++;
    if (tempfail)
        wr_warn("worker %d failed temporarily (see above); restarting it in %.1fs", c->index,
                c->restart_delay_ms / 1000.0);
    else if (c->restart_delay_ms)
        wr_info("restarting worker %d in %.1fs", c->index, c->restart_delay_ms / 1000.0);
    uv_timer_start(&c->restart_timer, on_restart_timer, (uint64_t)c->restart_delay_ms, 0);
}

/* Tell C to finish its request in hand and leave, for REASON. */
static void retire(wr_supervisor *sup, wr_child *c, const char *reason)
{
    if (c->retiring)
        return;
    c->retiring = 1;
    c->term_ms = uv_now(sup->loop);
    wr_log_fields(WR_LOG_INFO,
                  WR_LOG_FIELDS(WR_LOG_STR("event", "worker_retire"),
                                WR_LOG_INT("worker", c->index), WR_LOG_INT("pid", c->pid),
                                WR_LOG_STR("reason", reason)),
                  "worker %d (pid %d): retiring it (%s)", c->index, c->pid, reason);
    if (c->state == WR_CHILD_EMPTY) { /* waiting to restart: nothing to stop */
        free_slot(sup, c);
        return;
    }
    wr_children_signal(c, SIGTERM);
}

static void announce_ready(wr_supervisor *sup)
{
    char status[160];

    wr_supervisor_status_line(sup, status, sizeof status);
    wr_notify_fmt("READY=1\nSTATUS=%s", status);
    snprintf(sup->last_status, sizeof sup->last_status, "%s", status);
}

void wr_supervisor_child_status(wr_supervisor *sup, wr_child *c, const wr_ipc_msg *m)
{
    switch (m->type) {
    case WR_IPC_READY:
        /* Also after each reconnect.  Busy or idle: see its slot. */
        c->state = WR_CHILD_READY;
        if (!c->ready_ms) {
            c->ready_ms = uv_now(sup->loop);
            c->idle_since_ms = c->ready_ms;
        }
        sup->none_ready_since = 0;
        sup->died_since_none_ready = 0;
        c->restart_delay_ms = 0;
        /* A replacement consuming: the one it replaces may go. */
        if (c->replacing) {
            wr_child *old = c->replacing;
            c->replacing = NULL;
            retire(sup, old,
                   old->recycle[0] ? old->recycle
                                   : "replaced by a worker of the new "
                                     "configuration");
        }
        if (!sup->ready_announced && sup->state == WR_SUP_RUNNING) {
            int ready = ready_count(sup);
            if (ready >= sup->target) {
                sup->ready_announced = 1;
                wr_info("ready: %d worker%s consuming%s", ready, ready == 1 ? "" : "s",
                        sup->cfg->publisher_confirms
                            ? ""
                            : "; publisher confirms off: a request is acked once its reply is "
                              "written, not confirmed");
                announce_ready(sup);
            }
        }
        wr_supervisor_converge(sup);
        break;
    case WR_IPC_RETIRE:
        /* max_requests: it goes on serving until its replacement
         * consumes, then it is told to leave. */
        if (!c->recycle[0] && !c->retiring) {
            snprintf(c->recycle, sizeof c->recycle, "%s", m->why);
            wr_info("worker %d (pid %d) asks to be replaced (%s); starting its replacement",
                    c->index, c->pid, c->recycle);
            wr_supervisor_converge(sup);
        }
        break;
    default: /* commands go the other way */
        wr_warn("worker %d: unexpected status line type %d", c->index, (int)m->type);
        break;
    }
}

/* A free slot, set up: the lowest index, so numbers stay small. */
static wr_child *new_slot(wr_supervisor *sup)
{
    for (int i = 0; i < WR_SUP_MAX_SLOTS; i++) {
        if (sup->slots[i])
            continue;
        sup->slots[i] = wr_children_new(sup, i);
        if (!sup->slots[i])
            return NULL;
        if (i >= sup->nslots)
            sup->nslots = i + 1;
        return sup->slots[i];
    }
    wr_error("no free worker slot (%d in use)", WR_SUP_MAX_SLOTS);
    return NULL;
}

static wr_child *spawn_new(wr_supervisor *sup)
{
    wr_child *c = new_slot(sup);
    if (c)
        wr_children_spawn(c);
    return c;
}

/* The worker to let go first when the pool shrinks: an idle one before a
 * busy one, a starting one before either, the highest slot. */
static wr_child *pick_to_retire(wr_supervisor *sup, int want_outdated)
{
    wr_child *best = NULL;
    int best_rank = -1;

    for (int i = sup->nslots - 1; i >= 0; i--) {
        wr_child *c = sup->slots[i];
        wr_slot_view v;
        int rank;

        if (!c || c->retiring || outdated(sup, c) != want_outdated || c->replacing)
            continue;
        wr_slot_read(wr_scoreboard_slot(&sup->scoreboard, i), &v);
        rank = c->state != WR_CHILD_READY ? 3 : !v.busy ? 2 : 1;
        if (rank > best_rank) {
            best = c;
            best_rank = rank;
        }
    }
    return best;
}

static void finish_reload(wr_supervisor *sup)
{
    char status[160];

    sup->state = WR_SUP_RUNNING;
    wr_info("reload complete: %d worker%s of generation %u", sup->target,
            sup->target == 1 ? "" : "s", sup->generation);
    wr_supervisor_status_line(sup, status, sizeof status);
    wr_notify_fmt("READY=1\nSTATUS=%s", status);
}

void wr_supervisor_converge(wr_supervisor *sup)
{
    int current = 0, current_ready = 0, old = 0, pending = 0;
    wr_child *c;

    if (sup->state == WR_SUP_STOPPING)
        return;
    for (int i = 0; i < sup->nslots; i++) {
        c = sup->slots[i];
        if (!c || c->retiring)
            continue;
        if (outdated(sup, c)) {
            old++;
        } else {
            current++;
            current_ready += c->state == WR_CHILD_READY;
        }
        if (c->replacing)
            pending++;
    }
    /* Too few altogether: start the missing ones now. */
    while (current + old < sup->target && spawn_new(sup))
        current++;
    if (old > 0) {
        if (current_ready >= sup->target) {
            /* Enough of the new config consuming: the rest of the old
             * ones go. */
            while ((c = pick_to_retire(sup, 1)))
                retire(sup, c,
                       c->recycle[0] ? c->recycle
                                     : "the pool has enough workers of the new "
                                       "configuration");
        } else if (!pending && current < sup->target) {
            /* One at a time: a new worker, which replaces an old one once
             * it consumes (see child_status). */
            wr_child *victim = pick_to_retire(sup, 1);
            if (victim && (c = new_slot(sup))) {
                c->replacing = victim;
                wr_children_spawn(c);
            }
        }
        return;
    }
    while (current > sup->target && (c = pick_to_retire(sup, 0))) {
        retire(sup, c, "the pool is smaller now");
        current--;
    }
    if (sup->state == WR_SUP_RELOADING && ready_count(sup) >= sup->target)
        finish_reload(sup);
}

/* Set the pool's size to N (bounded), saying WHY. */
static void resize(wr_supervisor *sup, int n, const char *why)
{
    int lo = sup->cfg->min_workers ? sup->cfg->min_workers : 1;
    int hi = sup->cfg->max_workers ? sup->cfg->max_workers : 1024;

    if (n < lo || n > hi) {
        wr_warn("%s: the pool stays at %d worker%s (bounds %d..%d)", why, sup->target,
                sup->target == 1 ? "" : "s", lo, hi);
        return;
    }
    wr_info("%s: %d → %d worker%s", why, sup->target, n, n == 1 ? "" : "s");
    sup->target = n;
    wr_supervisor_converge(sup);
}

/* ---- the tick ------------------------------------------------------- */

/* Resident bytes of PID, from /proc (0 when it cannot be read). */
static long rss_of(int pid)
{
    char path[64];
    long pages = 0, resident = 0;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%d/statm", pid);
    f = fopen(path, "re");
    if (!f)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = 0;
    fclose(f);
    return resident * sysconf(_SC_PAGESIZE);
}

static int route_timeout(const wr_supervisor *sup, const char *route)
{
    for (size_t i = 0; i < sup->cfg->nroutes; i++)
        if (!strcmp(sup->cfg->routes[i].name, route))
            return sup->cfg->routes[i].request_timeout;
    return sup->cfg->request_timeout;
}

/* One worker's slot, read: timeouts, recycling, idleness. */
static void watch_child(wr_supervisor *sup, wr_child *c, uint64_t now, long long mono)
{
    wr_slot_view v;
    int limit;

    if (c->state == WR_CHILD_EMPTY)
        return;
    if (c->retiring && now - c->term_ms > (uint64_t)sup->cfg->shutdown_timeout * 1000) {
        wr_warn("worker %d (pid %d) still running %ds after SIGTERM; sending SIGKILL", c->index,
                c->pid, sup->cfg->shutdown_timeout);
        wr_children_signal(c, SIGKILL);
        c->term_ms = now; /* once per shutdown_timeout */
        return;
    }
    if (c->timed_out && c->timeout_at && now - c->timeout_at >= TIMEOUT_GRACE_MS) {
        wr_children_signal(c, SIGKILL);
        c->timeout_at = 0; /* once */
        return;
    }
    if (c->state != WR_CHILD_READY)
        return;
    wr_slot_read(wr_scoreboard_slot(&sup->scoreboard, c->index), &v);
    c->rss = rss_of(c->pid);
    if (v.busy || v.handled != c->last_handled)
        c->idle_since_ms = now;
    c->last_handled = v.handled;

    limit = v.busy ? route_timeout(sup, v.current.route) : 0;
    if (limit > 0 && !c->timed_out && mono - v.busy_since_ms > (long long)limit * 1000) {
        wr_log_fields(WR_LOG_WARN,
                      WR_LOG_FIELDS(WR_LOG_STR("event", "request_timeout"),
                                    WR_LOG_INT("worker", c->index), WR_LOG_INT("pid", c->pid),
                                    WR_LOG_STR("route", v.current.route),
                                    WR_LOG_STR("method", v.current.method),
                                    WR_LOG_STR("correlation_id", v.current.msgid),
                                    WR_LOG_INT("request_timeout", limit)),
                      "worker %d (pid %d) has run %s (route %s, id %s) for over %ds "
                      "(request_timeout); stopping it (SIGTERM, then SIGKILL after %.1fs)",
                      c->index, c->pid, v.current.method, v.current.route, v.current.msgid, limit,
                      TIMEOUT_GRACE_MS / 1000.0);
        c->timed_out = limit;
        c->timeout_at = now ? now : 1;
        wr_children_signal(c, SIGTERM);
        return;
    }
    if (sup->cfg->max_rss > 0 && c->rss > sup->cfg->max_rss && !c->recycle[0] && !c->retiring) {
        snprintf(c->recycle, sizeof c->recycle, "resident memory %.1f MiB is over max_rss %.1f MiB",
                 (double)c->rss / 1048576.0, (double)sup->cfg->max_rss / 1048576.0);
        wr_log_fields(WR_LOG_INFO,
                      WR_LOG_FIELDS(WR_LOG_STR("event", "worker_recycle"),
                                    WR_LOG_INT("worker", c->index), WR_LOG_INT("pid", c->pid),
                                    WR_LOG_STR("reason", "max_rss"), WR_LOG_INT("rss", c->rss),
                                    WR_LOG_INT("max_rss", sup->cfg->max_rss)),
                      "worker %d (pid %d): %s; replacing it", c->index, c->pid, c->recycle);
        wr_supervisor_converge(sup);
    }
}

/* A dynamic pool: one more while every worker is busy and requests wait;
 * one fewer when one has idled for idle_timeout. */
static void dynamic_pool(wr_supervisor *sup, uint64_t now, long long mono)
{
    const wr_config *cfg = sup->cfg;
    int ready = 0, busy = 0;
    long backlog = -1;
    wr_child *idlest = NULL;

    if (!cfg->min_workers || sup->state != WR_SUP_RUNNING ||
        now - sup->dynamic_change_ms < DYNAMIC_STEP_MS)
        return;
    for (int i = 0; i < sup->nslots; i++) {
        wr_child *c = sup->slots[i];
        wr_slot_view v;

        if (!c || c->retiring || c->state != WR_CHILD_READY)
            continue;
        wr_slot_read(wr_scoreboard_slot(&sup->scoreboard, i), &v);
        ready++;
        busy += v.busy;
        if (v.backlog >= 0 && mono - v.backlog_ms < BACKLOG_FRESH_MS && v.backlog > backlog)
            backlog = v.backlog;
        if (!v.busy && (!idlest || c->idle_since_ms < idlest->idle_since_ms))
            idlest = c;
    }
    if (ready == sup->target && busy == ready && backlog > 0 && sup->target < cfg->max_workers) {
        char why[160];

        snprintf(why, sizeof why, "dynamic pool: all %d workers busy, %ld request%s waiting", busy,
                 backlog, backlog == 1 ? "" : "s");
        sup->dynamic_change_ms = now;
        resize(sup, sup->target + 1, why);
    } else if (idlest && sup->target > cfg->min_workers &&
               now - idlest->idle_since_ms >= (uint64_t)cfg->idle_timeout * 1000) {
        char why[160];

        snprintf(why, sizeof why, "dynamic pool: worker %d idle for %ds (idle_timeout)",
                 idlest->index, cfg->idle_timeout);
        sup->dynamic_change_ms = now;
        wr_info("%s: %d → %d workers", why, sup->target, sup->target - 1);
        sup->target--;
        retire(sup, idlest, "idle");
        wr_supervisor_converge(sup);
    }
}

static void crash_storm(wr_supervisor *sup, uint64_t now)
{
    int limit = sup->cfg->startup_timeout;

    if (!limit || !sup->none_ready_since || now - sup->none_ready_since < (uint64_t)limit * 1000)
        return;
    if (!sup->died_since_none_ready) {
        wr_warn("no worker has been consuming for %ds; they are still trying (see above)", limit);
        sup->none_ready_since = now;
        return;
    }
    wr_error("no worker managed to start consuming for %ds (startup_timeout); giving up. Last "
             "worker error: %s",
             limit, sup->last_error[0] ? sup->last_error : "none reported");
    wr_supervisor_stop(sup, WR_EXIT_UNAVAILABLE);
}

static void on_tick(uv_timer_t *t)
{
    wr_supervisor *sup = t->data;
    uint64_t now = uv_now(sup->loop);
    long long mono = wr_monotonic_ms();
    char status[160];

    for (int i = 0; i < sup->nslots; i++)
        if (sup->slots[i])
            watch_child(sup, sup->slots[i], now, mono);
    if (sup->state == WR_SUP_STOPPING)
        return;
    for (int i = 0; i < sup->nslots; i++)
        if (sup->slots[i])
            wr_slot_want_backlog(wr_scoreboard_slot(&sup->scoreboard, i),
                                 sup->cfg->min_workers > 0 || sup->metrics_on);
    dynamic_pool(sup, now, mono);
    crash_storm(sup, now);
    if (sup->state == WR_SUP_STOPPING)
        return;
    wr_supervisor_status_line(sup, status, sizeof status);
    if (strcmp(status, sup->last_status)) {
        snprintf(sup->last_status, sizeof sup->last_status, "%s", status);
        wr_notify_fmt("STATUS=%s", status);
    }
    if (sup->watchdog_ms && now - sup->last_watchdog >= sup->watchdog_ms / 2) {
        sup->last_watchdog = now;
        wr_notify("WATCHDOG=1");
    }
}

void wr_supervisor_exit_if_done(wr_supervisor *sup)
{
    if (sup->state != WR_SUP_STOPPING || sup->checking || live_children(sup) > 0)
        return;
    if (sup->nslots)
        wr_info("all workers stopped; exiting");
    shut_loop(sup);
}

void wr_supervisor_stop(wr_supervisor *sup, int exit_code)
{
    uint64_t now = uv_now(sup->loop);

    if (sup->state == WR_SUP_STOPPING)
        return;
    sup->state = WR_SUP_STOPPING;
    sup->exit_code = exit_code;
    wr_notify("STOPPING=1");
    if (sup->checking)
        uv_process_kill(&sup->check_proc, SIGKILL);
    for (int i = 0; i < sup->nslots; i++) {
        wr_child *c = sup->slots[i];
        if (!c)
            continue;
        uv_timer_stop(&c->restart_timer);
        if (!c->retiring) {
            c->retiring = 1;
            c->term_ms = now;
        }
        wr_children_signal(c, SIGTERM);
    }
    wr_supervisor_exit_if_done(sup);
}

static void on_signal(uv_signal_t *s, int signum)
{
    wr_supervisor *sup = s->data;

    if (sup->state == WR_SUP_STOPPING) {
        wr_info("%s: already stopping", strsignal(signum));
        return;
    }
    switch (signum) {
    case SIGHUP:
        wr_info("SIGHUP: reloading %s", sup->args->config_path);
        wr_supervisor_reload(sup);
        return;
    case SIGTTIN:
        resize(sup, sup->target + 1, "SIGTTIN");
        return;
    case SIGTTOU:
        resize(sup, sup->target - 1, "SIGTTOU");
        return;
    default:
        wr_info("%s: stopping %d worker%s (each finishes its request in hand)", strsignal(signum),
                live_children(sup), live_children(sup) == 1 ? "" : "s");
        wr_supervisor_stop(sup, WR_EXIT_OK);
    }
}

static int watch_signal(wr_supervisor *sup, uv_signal_t *s, int signum)
{
    int r = uv_signal_init(sup->loop, s);

    if (r == 0) {
        s->data = sup;
        r = uv_signal_start(s, on_signal, signum);
    }
    if (r < 0)
        wr_error("cannot watch %s: %s", strsignal(signum), uv_strerror(r));
    return r;
}

/* A command from the control socket (supervisor/control.h). */
static char *on_control(void *arg, const char *command)
{
    wr_supervisor *sup = arg;

    if (!strcmp(command, "status"))
        return wr_supervisor_status_json(sup);
    if (sup->state == WR_SUP_STOPPING)
        return wr_control_reply_error("warren is stopping");
    if (!strcmp(command, "reload")) {
        wr_info("control socket: reloading %s", sup->args->config_path);
        wr_supervisor_reload(sup);
        return wr_control_reply_ok("reloading %s: it is checked first; the log says how it went",
                                   sup->args->config_path);
    }
    if (!strcmp(command, "stop")) {
        wr_info("control socket: stopping %d worker%s (each finishes its request in hand)",
                live_children(sup), live_children(sup) == 1 ? "" : "s");
        wr_supervisor_stop(sup, WR_EXIT_OK);
        return wr_control_reply_ok("stopping: each worker finishes its request in hand");
    }
    if (!strcmp(command, "ttin") || !strcmp(command, "ttou")) {
        int before = sup->target;

        resize(sup, sup->target + (command[2] == 'i' ? 1 : -1), "control socket");
        return wr_control_reply_ok("workers: %d → %d", before, sup->target);
    }
    return wr_control_reply_error("unknown command \"%.64s\" (status, reload, stop, ttin, ttou)",
                                  command);
}

static void start_control(wr_supervisor *sup)
{
    const char *path = sup->cfg->control_socket;

    if (!path || !strcmp(path, "none"))
        return;
    if (wr_control_start(&sup->control, sup->loop, path, on_control, sup) == 0)
        sup->control_on = 1;
    else
        wr_warn("running without a control socket: `warren status` will not reach this warren");
}

/* Our signal watchers and the tick.  0, or -1 with the failure logged;
 * shut_loop() closes whatever was initialised. */
static int init_handles(wr_supervisor *sup)
{
    int r;

    if (watch_signal(sup, &sup->sig_term, SIGTERM) < 0 ||
        watch_signal(sup, &sup->sig_int, SIGINT) < 0 ||
        watch_signal(sup, &sup->sig_quit, SIGQUIT) < 0 ||
        watch_signal(sup, &sup->sig_hup, SIGHUP) < 0 ||
        watch_signal(sup, &sup->sig_ttin, SIGTTIN) < 0 ||
        watch_signal(sup, &sup->sig_ttou, SIGTTOU) < 0)
        return -1;
    r = uv_timer_init(sup->loop, &sup->tick);
    if (r == 0) {
        sup->tick.data = sup;
        r = uv_timer_start(&sup->tick, on_tick, TICK_MS, TICK_MS);
    }
    if (r < 0) {
        wr_error("cannot start the supervisor's timer: %s", uv_strerror(r));
        return -1;
    }
    return 0;
}

extern char **environ;

/* Our environment without what systemd meant for the main process alone
 * (the strings are environ's).  NULL out of memory. */
static char **worker_environment(void)
{
    static const char *const ours[] = {"NOTIFY_SOCKET=", "WATCHDOG_USEC=", "WATCHDOG_PID=", NULL};
    size_t n = 0, k = 0;
    char **env;

    while (environ[n])
        n++;
    env = calloc(n + 1, sizeof *env);
    if (!env)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int skip = 0;
        for (const char *const *o = ours; *o; o++)
            skip |= !strncmp(environ[i], *o, strlen(*o));
        if (!skip)
            env[k++] = environ[i];
    }
    return env;
}

int wr_supervisor_run(wr_config *cfg, const wr_supervisor_args *args)
{
    struct timeval now;
    wr_supervisor sup;
    wr_config *mine;
    int rc;

    memset(&sup, 0, sizeof sup);
    gettimeofday(&now, NULL);
    snprintf(sup.since, sizeof sup.since, "%lld",
             (long long)now.tv_sec * 1000 + now.tv_usec / 1000);
    sup.loop = uv_default_loop();
    mine = malloc(sizeof *mine);
    sup.worker_env = worker_environment();
    if (!sup.loop || !mine || !sup.worker_env) {
        wr_error(!sup.loop ? "cannot create the event loop" : "out of memory");
        free(mine);
        free(sup.worker_env);
        return WR_EXIT_SOFTWARE;
    }
    *mine = *cfg;
    memset(cfg, 0, sizeof *cfg);
    sup.args = args;
    sup.exe = args->worker_exe;
    sup.scoreboard.fd = -1;
    if (wr_supervisor_apply(&sup, mine) < 0) {
        wr_error("out of memory");
        wr_config_free(mine);
        free(mine);
        free(sup.worker_env);
        return WR_EXIT_SOFTWARE;
    }
    sup.generation = 1;
    sup.target = sup.cfg->workers;
    sup.started_ms = uv_now(sup.loop);
    sup.none_ready_since = sup.started_ms;
    sup.watchdog_ms = (uint64_t)wr_notify_watchdog_ms();
    if (wr_scoreboard_create(&sup.scoreboard, WR_SUP_MAX_SLOTS) < 0) {
        wr_error("cannot create the workers' scoreboard (shared memory): %s", strerror(errno));
        rc = WR_EXIT_SOFTWARE;
        goto out;
    }

    /* A worker that dies before reading its config must not kill us. */
    signal(SIGPIPE, SIG_IGN);
    if (init_handles(&sup) < 0) {
        sup.exit_code = WR_EXIT_SOFTWARE;
        shut_loop(&sup); /* uv_run() below runs the close callbacks */
    } else {
        start_control(&sup);
        if (sup.cfg->metrics_listen &&
            wr_metrics_start(&sup.metrics_http, sup.loop, sup.cfg->metrics_listen,
                             wr_supervisor_metrics, &sup) == 0)
            sup.metrics_on = 1;
        wr_info("warren %s starting %d worker%s for %zu route%s (%s); plugins from %s",
                WARREN_VERSION, sup.target, sup.target == 1 ? "" : "s", sup.cfg->nroutes,
                sup.cfg->nroutes == 1 ? "" : "s", sup.title_routes, sup.plugin_dir);
        wr_supervisor_converge(&sup);
    }

    uv_run(sup.loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(sup.loop);
    if (rc != 0)
        wr_warn("event loop closed with handles open: %s", uv_strerror(rc));
    rc = sup.exit_code;
out:
    wr_scoreboard_destroy(&sup.scoreboard);
    wr_config_free(sup.cfg);
    free(sup.cfg);
    free(sup.plugin_dir);
    free(sup.signature);
    free(sup.title_routes);
    free(sup.config_text);
    free(sup.worker_env);
    return rc;
}
