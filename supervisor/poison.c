/* Death counts per message; see poison.h. */
#include "supervisor/poison.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int same(const wr_poison_entry *e, const wr_ipc_msg *m)
{
    return strcmp(e->route, m->route) == 0 && strcmp(e->msgid, m->msgid) == 0 &&
           strcmp(e->hash, m->hash) == 0;
}

const wr_poison_entry *wr_poison_record(wr_poison *p, const wr_ipc_msg *start, const char *why)
{
    wr_poison_entry *e = NULL;

    for (size_t i = 0; i < p->n && !e; i++)
        if (same(&p->slots[i], start))
            e = &p->slots[i];
    if (!e) {
        if (p->n < WR_POISON_SLOTS) {
            e = &p->slots[p->n++];
        } else {
            e = &p->slots[p->next];
            p->next = (p->next + 1) % WR_POISON_SLOTS;
        }
        memset(e, 0, sizeof *e);
        snprintf(e->route, sizeof e->route, "%s", start->route);
        snprintf(e->msgid, sizeof e->msgid, "%s", start->msgid);
        snprintf(e->hash, sizeof e->hash, "%s", start->hash);
    }
    e->deaths++;
    snprintf(e->why, sizeof e->why, "%s", why);
    return e;
}

int wr_poison_line(const wr_poison_entry *e, char *line, size_t size)
{
    wr_ipc_msg m = {.type = WR_IPC_POISON, .deaths = e->deaths};
    snprintf(m.route, sizeof m.route, "%s", e->route);
    snprintf(m.msgid, sizeof m.msgid, "%s", e->msgid);
    snprintf(m.hash, sizeof m.hash, "%s", e->hash);
    snprintf(m.why, sizeof m.why, "%s", e->why);
    return wr_ipc_format(&m, line, size);
}

int wr_poison_lines(const wr_poison *p, unsigned limit, char **buf, size_t *len)
{
    char line[WR_IPC_LINE_MAX];

    for (size_t i = 0; i < p->n; i++) {
        int n;
        char *grown;
        if (p->slots[i].deaths < limit)
            continue;
        n = wr_poison_line(&p->slots[i], line, sizeof line);
        if (n < 0)
            continue;
        grown = realloc(*buf, *len + (size_t)n + 1);
        if (!grown)
            return -1;
        *buf = grown;
        memcpy(*buf + *len, line, (size_t)n + 1);
        *len += (size_t)n;
    }
    return 0;
}
