/*
 * What GET /metrics shows (supervisor/metrics.h renders it): gathered when
 * a scrape comes from the supervisor's own table, its counters, and the
 * workers' scoreboard slots, so a scrape costs the workers nothing.  The
 * counts of workers now gone were folded into sup->metrics.gone when
 * they died (wr_supervisor_child_gone), so counters never go back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor/supervisor.h"

/* The freshest known count of ROUTE's queue among M's workers (N
 * slots), or -1. */
static long queue_messages(const wr_slot_metrics *m, size_t n, const char *route)
{
    long best = -1;
    long long best_ms = 0;

    for (size_t i = 0; i < n; i++)
        for (int q = 0; q < WR_METRICS_ROUTES && m[i].queues[q].route[0]; q++)
            if (!strcmp(m[i].queues[q].route, route) && m[i].queues[q].messages >= 0 &&
                m[i].queues_ms > best_ms) {
                best = m[i].queues[q].messages;
                best_ms = m[i].queues_ms;
            }
    return best;
}

char *wr_supervisor_metrics(void *arg, int openmetrics, size_t *len)
{
    wr_supervisor *sup = arg;
    wr_metrics_snapshot s = {.version = WARREN_VERSION};
    size_t nlive = 0, nroutes = sup->cfg->nroutes;
    wr_slot_metrics *live = calloc((size_t)sup->nslots + 1, sizeof *live);
    wr_slot_metrics *sum = malloc(sizeof *sum);
    int *index = calloc((size_t)sup->nslots + 1, sizeof *index);
    int *connected = calloc((size_t)sup->nslots + 1, sizeof *connected);
    wr_metrics_queue *queues = calloc(nroutes, sizeof *queues);
    char *text = NULL;

    if (!live || !sum || !index || !connected || !queues)
        goto out;
    *sum = sup->metrics.gone;
    for (int i = 0; i < sup->nslots; i++) {
        wr_child *c = sup->slots[i];
        const wr_slot *slot = wr_scoreboard_slot(&sup->scoreboard, i);
        wr_slot_view v;

        if (!c)
            continue;
        wr_slot_read(slot, &v);
        wr_slot_read_metrics(slot, &live[nlive]);
        wr_metrics_fold(sum, &live[nlive]);
        if (c->retiring)
            s.workers[WR_WSTATE_STOPPING]++;
        else if (c->state != WR_CHILD_READY)
            s.workers[WR_WSTATE_STARTING]++;
        else
            s.workers[v.busy ? WR_WSTATE_BUSY : WR_WSTATE_IDLE]++;
        s.in_flight += v.busy;
        if (c->state != WR_CHILD_EMPTY) {
            index[s.nworkers] = i;
            connected[s.nworkers++] = live[nlive].connected;
        }
        nlive++;
    }
    for (size_t r = 0; r < nroutes; r++) {
        snprintf(queues[r].route, sizeof queues[r].route, "%s", sup->cfg->routes[r].name);
        queues[r].messages = queue_messages(live, nlive, sup->cfg->routes[r].name);
    }
    s.calls = sum;
    s.restarts = sup->metrics.restarts;
    s.poison_declared = sup->metrics.poison_declared;
    s.worker_index = index;
    s.worker_connected = connected;
    s.queues = queues;
    s.nqueues = nroutes;
    text = wr_metrics_render(&s, openmetrics, len);
out:
    free(queues);
    free(connected);
    free(index);
    free(sum);
    free(live);
    return text;
}
