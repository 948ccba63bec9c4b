/*
 * The supervisor's loop and state machine.
 *
 * Signals arrive as libuv callbacks (uv_signal_t does the async-safe part),
 * so everything here is ordinary code:
 *   SIGTERM, SIGINT, SIGQUIT  → STOPPING: SIGTERM to every worker (each
 *                               finishes the request in hand), SIGKILL to
 *                               what is left after shutdown_timeout, exit
 *                               once the last one is gone.
 *   SIGHUP                    → logged; reload comes with a later release.
 * A worker that dies while RUNNING is replaced, after a delay that doubles
 * while workers keep dying young, so a broken environment cannot make us
 * spin.  A worker that exits with WR_EXIT_CONFIG (bad plugin) is not
 * replaced: the pool stops and warren exits with that code.  One that
 * exits with WR_EXIT_TEMPFAIL (a plugin's init failed temporarily) is
 * replaced, always after a backoff delay.
 */
#include "supervisor/supervisor.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "common/exitcodes.h"
#include "common/log.h"

#define RESTART_MIN_MS 100
#define RESTART_MAX_MS 10000
#define YOUNG_DEATH_MS 2000 /* a worker dying younger than this backs off */

static void on_restart_timer(uv_timer_t *t)
{
    wr_child *c = t->data;
    if (c->sup->state == WR_SUP_RUNNING)
        wr_children_spawn(c);
}

static int live_children(const wr_supervisor *sup)
{
    int n = 0;
    for (int i = 0; i < sup->nchildren; i++)
        if (sup->children[i].handles_open > 0)
            n++;
    return n;
}

/* Close H unless it was never initialised (our handles start zeroed, and
 * only a successful uv_*_init sets h->loop) or is closing already. */
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
    close_handle((uv_handle_t *)&sup->kill_timer);
    for (int i = 0; i < sup->nchildren; i++)
        wr_children_close(&sup->children[i]);
}

static void describe_exit(const wr_child *c, char *buf, size_t len)
{
    if (c->term_signal)
        snprintf(buf, len, "killed by signal %d (%s)", c->term_signal, strsignal(c->term_signal));
    else if (c->exit_status < 0)
        snprintf(buf, len, "could not be started");
    else
        snprintf(buf, len, "exited with code %lld", (long long)c->exit_status);
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
    wr_warn("route %s: request %s (body %s) has killed %u worker%s; workers will refuse it "
            "(error reply, rejected without requeue)",
            e->route, e->msgid, e->hash, e->deaths, e->deaths == 1 ? "" : "s");
    n = wr_poison_line(e, line, sizeof line);
    if (n < 0) { /* cannot happen: ipc.c checks that every line fits */
        wr_error("route %s: cannot format the poison command for request %s; workers will keep "
                 "trying it",
                 e->route, e->msgid);
        return;
    }
    for (int i = 0; i < sup->nchildren; i++)
        wr_children_command(&sup->children[i], line, (size_t)n);
}

void wr_supervisor_child_gone(wr_supervisor *sup, wr_child *c)
{
    uint64_t now = uv_now(sup->loop);
    uint64_t lived = now - c->started_ms;
    char how[128], doing[512] = "";
    int tempfail;
    wr_slot_view slot;

    /* What it held, from its slot: it can no longer write there. */
    wr_slot_read(wr_scoreboard_slot(&sup->scoreboard, c->index), &slot);
    wr_scoreboard_clear(&sup->scoreboard, c->index);
    describe_exit(c, how, sizeof how);
    if (slot.busy)
        snprintf(doing, sizeof doing, " while running %s (route %s, id %s) for %.1fs",
                 slot.current.method, slot.current.route, slot.current.msgid,
                 (double)(wr_monotonic_ms() - slot.busy_since_ms) / 1000.0);
    wr_log(c->term_signal || c->exit_status != 0 ? WR_LOG_WARN : WR_LOG_INFO,
           "worker %d (pid %d) %s%s after %.1fs; handled %lu request%s (%lu failed)", c->index,
           c->pid, how, doing, (double)lived / 1000.0, slot.handled, slot.handled == 1 ? "" : "s",
           slot.failed);
    if (slot.busy && sup->state == WR_SUP_RUNNING && (c->term_signal || c->exit_status != 0))
        count_death(sup, &slot.current, how);

    if (sup->state == WR_SUP_STOPPING) {
        if (live_children(sup) == 0) {
            wr_info("all workers stopped; exiting");
            shut_loop(sup);
        }
        return;
    }
    if (!c->term_signal && c->exit_status == WR_EXIT_CONFIG) {
        wr_error("worker %d cannot start with this configuration (see above); stopping warren",
                 c->index);
        wr_supervisor_stop(sup, WR_EXIT_CONFIG);
        return;
    }
    /* A temporary failure (a plugin's init said so) backs off however
     * long the worker took to find out. */
    tempfail = !c->term_signal && c->exit_status == WR_EXIT_TEMPFAIL;
    if (lived < YOUNG_DEATH_MS || tempfail) {
        c->restart_delay_ms = c->restart_delay_ms ? c->restart_delay_ms * 2 : RESTART_MIN_MS;
        if (c->restart_delay_ms > RESTART_MAX_MS)
            c->restart_delay_ms = RESTART_MAX_MS;
    } else {
        c->restart_delay_ms = 0;
    }
    if (tempfail)
        wr_warn("worker %d failed temporarily (see above); restarting it in %.1fs", c->index,
                c->restart_delay_ms / 1000.0);
    else if (c->restart_delay_ms)
        wr_info("restarting worker %d in %.1fs", c->index, c->restart_delay_ms / 1000.0);
    uv_timer_start(&c->restart_timer, on_restart_timer, (uint64_t)c->restart_delay_ms, 0);
}

void wr_supervisor_child_status(wr_supervisor *sup, wr_child *c, const wr_ipc_msg *m)
{
    switch (m->type) {
    case WR_IPC_READY:
        /* Also after each reconnect.  Busy or idle: see its slot. */
        c->state = WR_CHILD_READY;
        if (!sup->ready_announced) {
            int ready = 0;
            for (int i = 0; i < sup->nchildren; i++)
                if (sup->children[i].state == WR_CHILD_READY)
                    ready++;
            if (ready == sup->nchildren) {
                sup->ready_announced = 1;
                wr_info("ready: %d worker%s consuming", ready, ready == 1 ? "" : "s");
            }
        }
        break;
    default: /* commands go the other way */
        wr_warn("worker %d: unexpected status line type %d", c->index, (int)m->type);
        break;
    }
}

static void on_kill_timer(uv_timer_t *t)
{
    wr_supervisor *sup = t->data;
    for (int i = 0; i < sup->nchildren; i++) {
        wr_child *c = &sup->children[i];
        if (c->handles_open > 0 && c->state != WR_CHILD_EMPTY) {
            wr_warn("worker %d (pid %d) still running %ds after SIGTERM; sending SIGKILL", c->index,
                    c->pid, sup->cfg->shutdown_timeout);
            wr_children_signal(c, SIGKILL);
        }
    }
}

void wr_supervisor_stop(wr_supervisor *sup, int exit_code)
{
    if (sup->state == WR_SUP_STOPPING)
        return;
    sup->state = WR_SUP_STOPPING;
    sup->exit_code = exit_code;
    for (int i = 0; i < sup->nchildren; i++) {
        uv_timer_stop(&sup->children[i].restart_timer);
        wr_children_signal(&sup->children[i], SIGTERM);
    }
    if (live_children(sup) == 0) {
        shut_loop(sup);
        return;
    }
    uv_timer_start(&sup->kill_timer, on_kill_timer, (uint64_t)sup->cfg->shutdown_timeout * 1000, 0);
}

static void on_signal(uv_signal_t *s, int signum)
{
    wr_supervisor *sup = s->data;
    if (signum == SIGHUP) {
        wr_warn("SIGHUP: reloading is not supported yet; keeping the running configuration");
        return;
    }
    if (sup->state == WR_SUP_STOPPING) {
        wr_info("%s: already stopping", strsignal(signum));
        return;
    }
    wr_info("%s: stopping %d worker%s (each finishes its request in hand)", strsignal(signum),
            sup->nchildren, sup->nchildren == 1 ? "" : "s");
    wr_supervisor_stop(sup, WR_EXIT_OK);
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

/* Our signal watchers and timers, and each child's.  0, or -1 with the
 * failure logged; shut_loop() closes whatever was initialised. */
static int init_handles(wr_supervisor *sup)
{
    int r;

    if (watch_signal(sup, &sup->sig_term, SIGTERM) < 0 ||
        watch_signal(sup, &sup->sig_int, SIGINT) < 0 ||
        watch_signal(sup, &sup->sig_quit, SIGQUIT) < 0 ||
        watch_signal(sup, &sup->sig_hup, SIGHUP) < 0)
        return -1;
    r = uv_timer_init(sup->loop, &sup->kill_timer);
    if (r < 0) {
        wr_error("cannot create the shutdown timer: %s", uv_strerror(r));
        return -1;
    }
    sup->kill_timer.data = sup;
    for (int i = 0; i < sup->nchildren; i++)
        if (wr_children_init(&sup->children[i], sup, i) < 0)
            return -1;
    return 0;
}

/* "rpc,status": the route names, for process titles. */
static char *route_list(const wr_config *cfg)
{
    size_t len = 1;
    char *s;
    for (size_t i = 0; i < cfg->nroutes; i++)
        len += strlen(cfg->routes[i].name) + 1;
    s = calloc(1, len);
    if (!s)
        return NULL;
    for (size_t i = 0; i < cfg->nroutes; i++) {
        if (i)
            strcat(s, ",");
        strcat(s, cfg->routes[i].name);
    }
    return s;
}

int wr_supervisor_run(const wr_config *cfg, const char *exe, const char *plugin_dir)
{
    struct timeval now;
    wr_supervisor sup;
    FILE *mem;
    int rc;

    memset(&sup, 0, sizeof sup);
    gettimeofday(&now, NULL);
    snprintf(sup.since, sizeof sup.since, "%lld",
             (long long)now.tv_sec * 1000 + now.tv_usec / 1000);
    sup.loop = uv_default_loop();
    if (!sup.loop) {
        wr_error("cannot create the event loop");
        return WR_EXIT_SOFTWARE;
    }
    sup.cfg = cfg;
    sup.exe = exe;
    sup.plugin_dir = plugin_dir;
    sup.nchildren = cfg->workers;

    mem = open_memstream(&sup.config_text, &sup.config_len);
    if (!mem || wr_config_write(cfg, mem) < 0 || fclose(mem) != 0) {
        wr_error("cannot serialize the configuration for the workers");
        return WR_EXIT_SOFTWARE;
    }
    sup.title_routes = route_list(cfg);
    sup.children = calloc((size_t)sup.nchildren, sizeof *sup.children);
    sup.scoreboard.fd = -1;
    if (!sup.title_routes || !sup.children ||
        wr_scoreboard_create(&sup.scoreboard, sup.nchildren) < 0) {
        if (!sup.title_routes || !sup.children)
            wr_error("out of memory");
        else
            wr_error("cannot create the workers' scoreboard (shared memory): %s", strerror(errno));
        free(sup.config_text);
        free(sup.title_routes);
        free(sup.children);
        return WR_EXIT_SOFTWARE;
    }

    /* A worker that dies before reading its config must not kill us. */
    signal(SIGPIPE, SIG_IGN);
    if (init_handles(&sup) < 0) {
        sup.exit_code = WR_EXIT_SOFTWARE;
        shut_loop(&sup); /* uv_run() below runs the close callbacks */
    } else {
        wr_info("warren %s starting %d worker%s for %zu route%s (%s); plugins from %s",
                WARREN_VERSION, sup.nchildren, sup.nchildren == 1 ? "" : "s", cfg->nroutes,
                cfg->nroutes == 1 ? "" : "s", sup.title_routes, plugin_dir);
        for (int i = 0; i < sup.nchildren && sup.state == WR_SUP_RUNNING; i++)
            wr_children_spawn(&sup.children[i]);
    }

    uv_run(sup.loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(sup.loop);
    if (rc != 0)
        wr_warn("event loop closed with handles open: %s", uv_strerror(rc));
    wr_scoreboard_destroy(&sup.scoreboard);
    free(sup.children);
    free(sup.title_routes);
    free(sup.config_text);
    return sup.exit_code;
}
