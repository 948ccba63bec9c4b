/* Status lines between worker and supervisor; see ipc.h. */
#include "common/ipc.h"

#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The longest line of each kind, with its newline and NUL, fits a line
 * buffer: formatting a known message cannot fail. */
_Static_assert(sizeof "poison " + 3 * WR_IPC_TOKEN_MAX + 11 + 2 * WR_IPC_TOKEN_MAX + 1 <=
                   WR_IPC_LINE_MAX,
               "poison line");
_Static_assert(sizeof "retire " + 2 * WR_IPC_TOKEN_MAX + 1 <= WR_IPC_LINE_MAX, "retire line");

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

void wr_ipc_body_hash(const void *body, size_t len, char out[17])
{
    const unsigned char *p = body;
    uint64_t h = 0xcbf29ce484222325ULL;
    size_t i = 0;

    /* Each step (xor, then multiply by an odd number) is a bijection, so
     * bodies differing in one word always differ in their hash. */
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, sizeof w);
        h ^= le64toh(w);
        h *= 0x100000001b3ULL;
    }
    for (; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    for (int d = 15; d >= 0; d--, h >>= 4)
        out[d] = "0123456789abcdef"[h & 0xf];
    out[16] = '\0';
}

/* Free text for the end of a line: no newlines or control characters. */
static void text(char *dst, size_t size, const char *src)
{
    size_t i = 0;
    for (; src && src[i] && i < size - 1; i++)
        dst[i] = (unsigned char)src[i] < ' ' ? ' ' : src[i];
    dst[i] = '\0';
}

int wr_ipc_format(const wr_ipc_msg *msg, char *line, size_t size)
{
    char route[WR_IPC_TOKEN_MAX], msgid[WR_IPC_TOKEN_MAX];
    char hash[WR_IPC_TOKEN_MAX], why[sizeof msg->why];
    int n;

    switch (msg->type) {
    case WR_IPC_READY:
        n = snprintf(line, size, "ready\n");
        break;
    case WR_IPC_POISON:
        token(route, msg->route);
        token(msgid, msg->msgid);
        token(hash, msg->hash);
        text(why, sizeof why, msg->why);
        n = snprintf(line, size, "poison %s %s %s %u %s\n", route, msgid, hash, msg->deaths, why);
        break;
    case WR_IPC_SYNC:
        n = snprintf(line, size, "sync\n");
        break;
    case WR_IPC_RETIRE:
        text(why, sizeof why, msg->why);
        n = snprintf(line, size, "retire %s\n", why[0] ? why : "-");
        break;
    default:
        return -1;
    }
    return n < 0 || (size_t)n >= size ? -1 : n;
}

int wr_ipc_send(int fd, const wr_ipc_msg *msg)
{
    char line[WR_IPC_LINE_MAX];
    int n = wr_ipc_format(msg, line, sizeof line);
    size_t off = 0;

    if (n < 0) {
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
    if (strcmp(kind, "poison") == 0) {
        int off = 0;
        msg->type = WR_IPC_POISON;
        if (sscanf(line, "poison %127s %127s %127s %u %n", msg->route, msg->msgid, msg->hash,
                   &msg->deaths, &off) != 4 ||
            off == 0)
            return -1;
        text(msg->why, sizeof msg->why, line + off);
        return 0;
    }
    if (strcmp(kind, "sync") == 0) {
        msg->type = WR_IPC_SYNC;
        return 0;
    }
    if (strcmp(kind, "retire") == 0) {
        int off = 0;
        msg->type = WR_IPC_RETIRE;
        if (sscanf(line, "retire %n", &off) != 0 || off == 0 || !line[off])
            return -1;
        text(msg->why, sizeof msg->why, line + off);
        return 0;
    }
    return -1;
}

size_t wr_ipc_split_lines(char *buf, size_t len, size_t cap,
                          void (*fn)(const char *line, void *arg), void *arg, int *dropped)
{
    char *start = buf, *nl;

    *dropped = 0;
    while ((nl = memchr(start, '\n', len - (size_t)(start - buf)))) {
        *nl = '\0';
        fn(start, arg);
        start = nl + 1;
    }
    len -= (size_t)(start - buf);
    memmove(buf, start, len);
    if (len == cap) {
        *dropped = 1;
        return 0;
    }
    return len;
}
