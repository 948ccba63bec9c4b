/* The supervisor → worker command channel; see commands.h. */
#include "worker/commands.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "worker/signals.h"

struct line_ctx {
    wr_commands *c;
    int synced;
};

/* Act on one command line. */
static void handle_command(const char *line, void *arg)
{
    struct line_ctx *ctx = arg;
    wr_commands *c = ctx->c;
    wr_ipc_msg m;

    if (wr_ipc_parse(line, &m) < 0) {
        wr_warn("unreadable command from the supervisor: %.80s", line);
        return;
    }
    if (m.type == WR_IPC_SYNC) {
        ctx->synced = 1;
    } else if (m.type == WR_IPC_POISON) {
        wr_ipc_msg *grown = realloc(c->poison, (c->npoison + 1) * sizeof *grown);
        if (!grown) { /* not without the whole list: a fresh worker gets it */
            wr_error("out of memory for the poison list (message %s of route %s); stopping",
                     m.msgid, m.route);
            c->lost = 1;
            wr_signals_request_stop();
            return;
        }
        c->poison = grown;
        c->poison[c->npoison++] = m;
    }
}

void wr_commands_init(wr_commands *c, int open)
{
    memset(c, 0, sizeof *c);
    c->open = open;
    if (open)
        fcntl(STDIN_FILENO, F_SETFL, fcntl(STDIN_FILENO, F_GETFL) | O_NONBLOCK);
}

int wr_commands_read(wr_commands *c, int wait_sync)
{
    struct line_ctx ctx = {.c = c};

    while (c->open) {
        int dropped;
        ssize_t n = read(STDIN_FILENO, c->buf + c->len, sizeof c->buf - c->len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            if (!wait_sync || ctx.synced)
                return 0;
            struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
            poll(&p, 1, 1000);
            if (wr_signals_stopping())
                return 0;
            continue;
        }
        if (n <= 0) {
            c->open = 0;
            return -1;
        }
        c->len = wr_ipc_split_lines(c->buf, c->len + (size_t)n, sizeof c->buf, handle_command, &ctx,
                                    &dropped);
        if (dropped)
            wr_warn("a command from the supervisor was too long; dropped");
        if (wait_sync && ctx.synced)
            return 0;
    }
    return -1;
}

const wr_ipc_msg *wr_commands_poisoned(const wr_commands *c, const char *route, const char *msgid,
                                       const char *hash)
{
    for (size_t i = 0; i < c->npoison; i++) {
        const wr_ipc_msg *p = &c->poison[i];
        if (strcmp(p->hash, hash) == 0 && strcmp(p->msgid, msgid) == 0 &&
            strcmp(p->route, route) == 0)
            return p;
    }
    return NULL;
}

void wr_commands_free(wr_commands *c)
{
    free(c->poison);
    c->poison = NULL;
    c->npoison = 0;
}
