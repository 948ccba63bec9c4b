/*
 * The worker → supervisor status pipe carries events, one text line each,
 * space-separated tokens, so it is easy to read in strace and to extend
 * (new tokens go at the end; old readers ignore them):
 *
 *   ready                            consuming (again, after a reconnect)
 *   retire WHY...                    time to replace me, for reason WHY
 *                                    (free text, rest of line; today
 *                                    "max_requests L": I answered my L
 *                                    requests).  Sent once; the worker
 *                                    keeps serving until it is told to
 *                                    stop (SIGTERM)
 *
 * What a worker is doing call by call (which request: route, method,
 * MSGID = correlation_id or message_id or "-", HASH of the body, see
 * wr_ipc_body_hash; its counters) is not sent: it sits in the worker's
 * scoreboard slot (common/scoreboard.h), read by the supervisor when it
 * needs it, so a call costs no system call here.
 *
 * The worker's end is fd 3 (WR_IPC_FD), set up by the supervisor.
 *
 * The other way, supervisor → worker, goes over the worker's stdin: first
 * the validated config as INI text, ended by the line WR_IPC_END_CONFIG;
 * then command lines, the first batch ended by "sync" (the worker reads up
 * to it before it connects, so it never consumes without them):
 *
 *   poison ROUTE MSGID HASH DEATHS WHY...   stop trying this message: it
 *                                    killed DEATHS workers, the last by WHY
 *   sync
 */
#ifndef WR_IPC_H
#define WR_IPC_H

#include <stddef.h>

#define WR_IPC_FD 3
#define WR_IPC_TOKEN_MAX 128
/* The longest line either way, newline included: every buffer that
 * formats or collects one is this size (ipc.c checks that each known
 * message fits). */
#define WR_IPC_LINE_MAX (8 * WR_IPC_TOKEN_MAX)
#define WR_IPC_END_CONFIG "#@warren:end-of-config"

typedef enum wr_ipc_type {
    WR_IPC_READY = 1,
    WR_IPC_START,  /* not a line: a request's identity (route, method,
                      msgid, hash), as the scoreboard and the poison list
                      keep it */
    WR_IPC_POISON, /* supervisor → worker */
    WR_IPC_SYNC,   /* supervisor → worker */
    WR_IPC_RETIRE  /* worker → supervisor: replace me; why says why */
} wr_ipc_type;

typedef struct wr_ipc_msg {
    wr_ipc_type type;
    char route[WR_IPC_TOKEN_MAX];
    char method[WR_IPC_TOKEN_MAX];
    char msgid[WR_IPC_TOKEN_MAX];
    char hash[WR_IPC_TOKEN_MAX];
    unsigned deaths;                /* poison */
    char why[2 * WR_IPC_TOKEN_MAX]; /* poison, retire: free text, rest of line */
} wr_ipc_msg;

/* The identity of a message body for poison tracking: 64-bit FNV-1a, over
 * 8-byte words (little-endian) and then the last bytes one by one, so a
 * 64 KiB body costs about 18 µs, not 150; as 16
 * hex digits in OUT (17 bytes).  With the route and the correlation id it
 * tells one request from another even when clients send no ids at all. */
void wr_ipc_body_hash(const void *body, size_t len, char out[17]);

/* Format MSG as one line (with its newline) into BUF.  Returns its length,
 * or -1 for an unknown type.  Tokens are sanitized as for wr_ipc_send. */
int wr_ipc_format(const wr_ipc_msg *msg, char *buf, size_t size);

/* Write MSG as one line to FD (blocking; retried on EINTR).  Tokens are
 * truncated and have spaces and control characters replaced, so a line is
 * always parseable.  0, or -1 with errno when the pipe is gone. */
int wr_ipc_send(int fd, const wr_ipc_msg *msg);

/*
 * Lines arrive in arbitrary chunks.  Given BUF holding LEN bytes (room
 * for CAP), call FN(LINE, ARG) for each complete line, NUL-terminated
 * without its newline, then move the incomplete rest to the front and
 * return its length.  A full buffer without a newline holds a line too
 * long for any message: it is dropped (returns 0) and *DROPPED is set.
 */
size_t wr_ipc_split_lines(char *buf, size_t len, size_t cap,
                          void (*fn)(const char *line, void *arg), void *arg, int *dropped);

/* Parse one line (without its newline) into MSG.  0, or -1 when the line
 * is not a known message. */
int wr_ipc_parse(const char *line, wr_ipc_msg *msg);

#endif
