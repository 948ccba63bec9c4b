/*
 * The worker → supervisor status pipe: the source of truth for what every
 * worker is doing.  One text line per event, space-separated tokens, so it
 * is easy to read in strace and to extend (new tokens go at the end; old
 * readers ignore them):
 *
 *   ready
 *   start ROUTE TAG METHOD MSGID     a request began (TAG: delivery tag,
 *                                    MSGID: correlation_id or message_id
 *                                    or "-")
 *   done HANDLED FAILED              it ended; running totals of messages
 *                                    handled and of error replies
 *
 * The worker's end is fd 3 (WR_IPC_FD), set up by the supervisor.
 */
#ifndef WR_IPC_H
#define WR_IPC_H

#include <stddef.h>

#define WR_IPC_FD 3
#define WR_IPC_TOKEN_MAX 128

typedef enum wr_ipc_type { WR_IPC_READY = 1, WR_IPC_START, WR_IPC_DONE } wr_ipc_type;

typedef struct wr_ipc_msg {
    wr_ipc_type type;
    char route[WR_IPC_TOKEN_MAX];
    unsigned long long tag;
    char method[WR_IPC_TOKEN_MAX];
    char msgid[WR_IPC_TOKEN_MAX];
    unsigned long handled;
    unsigned long failed;
} wr_ipc_msg;

/* Write MSG as one line to FD (blocking; retried on EINTR).  Tokens are
 * truncated and have spaces and control characters replaced, so a line is
 * always parseable.  0, or -1 with errno when the pipe is gone. */
int wr_ipc_send(int fd, const wr_ipc_msg *msg);

/* Parse one line (without its newline) into MSG.  0, or -1 when the line
 * is not a known message. */
int wr_ipc_parse(const char *line, wr_ipc_msg *msg);

#endif
