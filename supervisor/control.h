/*
 * The control socket: a unix stream socket on which `warren status`,
 * `warren reload` and `warren stop` (src/control_cli.c) talk to the
 * supervisor.  One command line per connection, one reply, then the
 * server closes:
 *
 *   client: "status\n"          server: "{...one JSON object...}\n", close
 *
 * This module only moves lines; the supervisor's callback decides what a
 * command does and writes the reply.  Everything runs in the supervisor's
 * libuv loop and never blocks it.  The process must ignore SIGPIPE (the
 * supervisor does): a client that hangs up before its reply would kill
 * it otherwise.
 */
#ifndef WR_CONTROL_H
#define WR_CONTROL_H

#include <uv.h>

#define WR_CONTROL_LINE_MAX 256     /* bytes in a command line, without its "\n" */
#define WR_CONTROL_MAX_CONNS 16     /* open connections at once; more are refused */
#define WR_CONTROL_IDLE_MS 5000     /* a client silent this long is dropped */
#define WR_CONTROL_SOCKET_MODE 0660 /* owner and group may connect */

/*
 * A command line from a client ("status", "reload", "stop", "ttin",
 * "ttou"; no newline; never empty, never longer than WR_CONTROL_LINE_MAX;
 * unknown words are the callback's to refuse) → the reply to send: a
 * malloc'd string, normally one JSON object, which the server then owns
 * and frees.  The server appends "\n", sends it and closes the
 * connection.  NULL means out of memory: the server sends an error.
 * Called in the loop's thread.  It may call wr_control_stop(), but the
 * reply is then dropped with the connection: to answer "stop", stop the
 * control socket later (once the pool is down).
 */
typedef char *(*wr_control_fn)(void *arg, const char *command);

typedef struct wr_control_conn wr_control_conn;

/* Embeddable in the supervisor's struct.  Zero it before first use
 * (wr_control_stop() on a zeroed struct does nothing).  It must stay in
 * place until the loop has run the close callbacks that wr_control_stop()
 * starts (uv_run after the stop): the listener lives inside it. */
typedef struct wr_control {
    uv_loop_t *loop;
    uv_pipe_t listener;
    int listening; /* listener initialised and not yet closed */
    char *path;    /* owned; set while PATH is ours to unlink */
    wr_control_fn fn;
    void *arg;
    unsigned idle_ms;       /* WR_CONTROL_IDLE_MS unless set for a test */
    wr_control_conn *conns; /* open connections, a doubly linked list */
    int nconns;
} wr_control;

/*
 * Listen on PATH (mode 0660).  A stale socket file left by a dead warren
 * (nothing accepts on it) is replaced; a live one is an error ("another
 * warren is running on PATH"), and so is a PATH that is not a socket.
 * FN(ARG, command) answers each command.  Returns 0, or -1 with the
 * reason logged (and C left stopped; wr_control_stop() is still safe).
 * Not on a C that is started: stop it first.
 */
int wr_control_start(wr_control *c, uv_loop_t *loop, const char *path, wr_control_fn fn, void *arg)
    __attribute__((warn_unused_result));

/* Close the listener and every open connection (their replies in flight
 * are dropped) and unlink PATH.  Safe if never started, and twice. */
void wr_control_stop(wr_control *c);

/* For tests: drop silent clients after MS milliseconds instead of
 * WR_CONTROL_IDLE_MS.  Applies to connections accepted afterwards. */
void wr_control_set_idle_timeout(wr_control *c, unsigned ms);

/* Replies for the callback to return: {"ok":true,"message":MESSAGE} and
 * {"error":MESSAGE}, printf-style, JSON-escaped.  malloc'd, or NULL out
 * of memory. */
char *wr_control_reply_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *wr_control_reply_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
