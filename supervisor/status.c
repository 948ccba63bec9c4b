/*
 * The pool as `warren status` shows it (the control socket's "status"),
 * and as systemd's STATUS= line sums it up.  Everything comes from the
 * supervisor's own table and the workers' scoreboard slots: asking costs
 * the workers nothing.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "supervisor/supervisor.h"

static const char *const state_names[] = {"running", "reloading", "stopping"};

/* Totals over the live workers. */
struct totals {
    int workers, busy, idle, starting, stopping;
    unsigned long handled, failed;
    unsigned restarts;
};

static const char *child_state(const wr_child *c, const wr_slot_view *v)
{
    if (c->retiring)
        return "stopping";
    if (c->state != WR_CHILD_READY)
        return "starting";
    return v->busy ? "busy" : "idle";
}

static void add_totals(struct totals *t, const wr_child *c, const wr_slot_view *v)
{
    const char *st = child_state(c, v);

    if (c->state == WR_CHILD_EMPTY && !c->retiring)
        st = "starting"; /* waiting to be restarted */
    t->workers++;
    t->busy += !strcmp(st, "busy");
    t->idle += !strcmp(st, "idle");
    t->starting += !strcmp(st, "starting");
    t->stopping += !strcmp(st, "stopping");
    t->handled += v->handled;
    t->failed += v->failed;
    t->restarts += c->restarts;
}

static struct totals totals_of(const wr_supervisor *sup)
{
    struct totals t = {0};

    t.handled = sup->gone_handled;
    t.failed = sup->gone_failed;
    for (int i = 0; i < sup->nslots; i++) {
        wr_slot_view v;

        if (!sup->slots[i])
            continue;
        wr_slot_read(wr_scoreboard_slot(&sup->scoreboard, i), &v);
        add_totals(&t, sup->slots[i], &v);
    }
    return t;
}

void wr_supervisor_status_line(const wr_supervisor *sup, char *buf, size_t len)
{
    struct totals t = totals_of(sup);

    snprintf(buf, len, "%d worker%s, %d busy, %lu served%s", t.workers, t.workers == 1 ? "" : "s",
             t.busy, t.handled,
             sup->state == WR_SUP_RELOADING  ? ", reloading"
             : sup->state == WR_SUP_STOPPING ? ", stopping"
                                             : "");
}

static json_t *worker_json(const wr_supervisor *sup, const wr_child *c, uint64_t now,
                           long long mono)
{
    wr_slot_view v;
    json_t *w;

    wr_slot_read(wr_scoreboard_slot(&sup->scoreboard, c->index), &v);
    w = json_pack("{s:i, s:i, s:i, s:s, s:I, s:I, s:i, s:I, s:f}", "index", c->index, "pid",
                  c->state == WR_CHILD_EMPTY ? 0 : c->pid, "generation", (int)c->generation,
                  "state",
                  c->state == WR_CHILD_EMPTY && !c->retiring ? "starting" : child_state(c, &v),
                  "handled", (json_int_t)v.handled, "failed", (json_int_t)v.failed, "restarts",
                  (int)c->restarts, "rss_bytes", (json_int_t)c->rss, "uptime_s",
                  c->state == WR_CHILD_EMPTY ? 0.0 : (double)(now - c->started_ms) / 1000.0);
    if (!w)
        return NULL;
    if (v.busy && c->state == WR_CHILD_READY) {
        json_object_set_new(w, "method", json_string(v.current.method));
        json_object_set_new(w, "route", json_string(v.current.route));
        json_object_set_new(w, "busy_s", json_real((double)(mono - v.busy_since_ms) / 1000.0));
    }
    if (c->last_death[0])
        json_object_set_new(w, "last_death", json_string(c->last_death));
    return w;
}

char *wr_supervisor_status_json(wr_supervisor *sup)
{
    uint64_t now = uv_now(sup->loop);
    long long mono = wr_monotonic_ms();
    struct totals t = totals_of(sup);
    json_t *doc, *workers = json_array();
    char *text;

    for (int i = 0; workers && i < sup->nslots; i++)
        if (sup->slots[i])
            json_array_append_new(workers, worker_json(sup, sup->slots[i], now, mono));
    doc = json_pack(
        "{s:s, s:i, s:s, s:i, s:s, s:f, s:s, s:i, s:i, s:i, s:{s:i, s:i, s:i, s:i, s:i, s:I, s:I, "
        "s:i}, s:o}",
        "warren", WARREN_VERSION, "pid", (int)getpid(), "state", state_names[sup->state],
        "generation", (int)sup->generation, "config", sup->args->config_path, "uptime_s",
        (double)(now - sup->started_ms) / 1000.0, "mode",
        sup->cfg->min_workers ? "dynamic" : "fixed", "workers_target", sup->target, "min_workers",
        sup->cfg->min_workers, "max_workers", sup->cfg->max_workers, "totals", "workers", t.workers,
        "busy", t.busy, "idle", t.idle, "starting", t.starting, "stopping", t.stopping, "handled",
        (json_int_t)t.handled, "failed", (json_int_t)t.failed, "restarts", (int)t.restarts,
        "workers", workers ? workers : json_array());
    if (!doc)
        return NULL;
    text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return text;
}
