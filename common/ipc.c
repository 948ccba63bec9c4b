/* Status lines between worker and supervisor; see ipc.h. */
#include "common/ipc.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Copy SRC into DST as one token: no spaces or control characters, never
 * empty. */
static void token(char *dst, const char *src)
{
    size_t i = 0;
    for (; src && src[i] && i < WR_IPC_TOKEN_MAX - 1; i++) {
        unsigned char ch = (unsigned char)src[i];
        dst[i] = (ch <= ' ' || ch == 0x7f) ? '_' : (char)ch;
    }
    if (i == 0)
        dst[i++] = '-';
    dst[i] = '\0';
}

int wr_ipc_send(int fd, const wr_ipc_msg *msg)
{
    char line[4 * WR_IPC_TOKEN_MAX + 64];
    char route[WR_IPC_TOKEN_MAX], method[WR_IPC_TOKEN_MAX], msgid[WR_IPC_TOKEN_MAX];
    int n;
    size_t off = 0;

    switch (msg->type) {
    case WR_IPC_READY:
        n = snprintf(line, sizeof line, "ready\n");
        break;
    case WR_IPC_START:
        token(route, msg->route);
        token(method, msg->method);
        token(msgid, msg->msgid);
        n = snprintf(line, sizeof line, "start %s %llu %s %s\n", route, msg->tag, method, msgid);
        break;
    case WR_IPC_DONE:
        n = snprintf(line, sizeof line, "done %lu %lu\n", msg->handled, msg->failed);
        break;
    default:
        errno = EINVAL;
        return -1;
    }
    while (off < (size_t)n) {
        ssize_t w = write(fd, line + off, (size_t)n - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        off += (size_t)w;
    }
    return 0;
}

int wr_ipc_parse(const char *line, wr_ipc_msg *msg)
{
    char kind[16];

    memset(msg, 0, sizeof *msg);
    if (sscanf(line, "%15s", kind) != 1)
        return -1;
    if (strcmp(kind, "ready") == 0) {
        msg->type = WR_IPC_READY;
        return 0;
    }
    if (strcmp(kind, "start") == 0) {
        msg->type = WR_IPC_START;
        return sscanf(line, "start %127s %llu %127s %127s", msg->route, &msg->tag, msg->method,
                      msg->msgid) == 4
                   ? 0
                   : -1;
    }
    if (strcmp(kind, "done") == 0) {
        msg->type = WR_IPC_DONE;
        return sscanf(line, "done %lu %lu", &msg->handled, &msg->failed) == 2 ? 0 : -1;
    }
    return -1;
}
