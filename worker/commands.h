/*
 * The supervisor → worker command channel: the worker's stdin, after the
 * config (see common/ipc.h).  Today it carries the poison list, the
 * messages every worker must refuse, and the "sync" that ends the first
 * batch.
 */
#ifndef WR_WORKER_COMMANDS_H
#define WR_WORKER_COMMANDS_H

#include <stddef.h>

#include "common/ipc.h"

typedef struct wr_commands {
    int open; /* stdin still delivers; 0 once it reached EOF (or was never ours) */
    char buf[4 * WR_IPC_LINE_MAX];
    size_t len;
    wr_ipc_msg *poison; /* messages to refuse, owned */
    size_t npoison;
    int lost; /* a poison entry did not fit in memory: the worker must stop */
} wr_commands;

/* Start reading commands from stdin (made non-blocking) when OPEN, else
 * act as a channel that never says anything (a worker run by hand). */
void wr_commands_init(wr_commands *c, int open);

/*
 * Read what the supervisor has sent and act on every complete line.
 * With WAIT_SYNC, block until a "sync" line (at startup: the initial
 * poison list must be known before the first delivery) or a stop
 * request.  Returns 0, or -1 when stdin is closed (the supervisor is
 * gone) or the channel was never open.
 */
int wr_commands_read(wr_commands *c, int wait_sync);

/* The poison entry for this delivery, or NULL.  Borrowed. */
const wr_ipc_msg *wr_commands_poisoned(const wr_commands *c, const char *route, const char *msgid,
                                       const char *hash);

void wr_commands_free(wr_commands *c);

#endif
