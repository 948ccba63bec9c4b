/*
 * The control socket server (see control.h).
 *
 * Each connection is a small state machine: READING (until a "\n", EOF,
 * an over-long line or the idle timer), then WRITING its one reply, then
 * closed.  A connection owns two handles, its pipe and its timer, and is
 * freed only when both close callbacks have run, so wr_control_stop() can
 * close everything at any moment and uv_loop_close() then finds nothing
 * open.  The timer guards the write too: a client that never reads its
 * reply cannot hold a connection slot for ever.
 */
#include "supervisor/control.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"

enum conn_state { READING, WRITING, CLOSING };

struct wr_control_conn {
    uv_pipe_t pipe;
    uv_timer_t timer;
    uv_write_t write;
    wr_control *c; /* NULL once wr_control_stop() let go of it */
    wr_control_conn *prev, *next;
    enum conn_state state;
    int serving;                        /* counted in c->nconns (not a refused extra) */
    int open;                           /* handles whose close callback has not run yet */
    char *reply;                        /* owned; NULL: the static out-of-memory reply */
    size_t len;                         /* bytes in line */
    char line[WR_CONTROL_LINE_MAX + 2]; /* the line, its "\n", a NUL */
};

/* What goes out when even the error reply cannot be allocated. */
static const char oom_reply[] = "{\"error\":\"out of memory in the supervisor\"}";

static char *reply_v(int ok, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static char *reply_v(int ok, const char *fmt, va_list ap)
{
    char *text = NULL, *out = NULL;
    json_t *obj;

    if (vasprintf(&text, fmt, ap) < 0)
        return NULL;
    obj =
        ok ? json_pack("{s:b, s:s}", "ok", 1, "message", text) : json_pack("{s:s}", "error", text);
    if (obj)
        out = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    free(text);
    return out;
}

char *wr_control_reply_ok(const char *fmt, ...)
{
    va_list ap;
    char *out;

    va_start(ap, fmt);
    out = reply_v(1, fmt, ap);
    va_end(ap);
    return out;
}

char *wr_control_reply_error(const char *fmt, ...)
{
    va_list ap;
    char *out;

    va_start(ap, fmt);
    out = reply_v(0, fmt, ap);
    va_end(ap);
    return out;
}

/* Take CONN out of its server's list (it keeps running on its own until
 * its handles close). */
static void detach(wr_control_conn *conn)
{
    wr_control *c = conn->c;

    if (!c)
        return;
    if (conn->prev)
        conn->prev->next = conn->next;
    else
        c->conns = conn->next;
    if (conn->next)
        conn->next->prev = conn->prev;
    if (conn->serving)
        c->nconns--;
    conn->c = NULL;
    conn->prev = conn->next = NULL;
}

static void on_conn_closed(uv_handle_t *h)
{
    wr_control_conn *conn = h->data;

    if (--conn->open > 0)
        return;
    free(conn->reply);
    free(conn);
}

/* Close CONN's handles; it frees itself once both have closed.  A write
 * in flight is cancelled (its callback sees UV_ECANCELED first). */
static void close_conn(wr_control_conn *conn)
{
    if (conn->state == CLOSING)
        return;
    conn->state = CLOSING;
    detach(conn);
    uv_close((uv_handle_t *)&conn->pipe, on_conn_closed);
    uv_close((uv_handle_t *)&conn->timer, on_conn_closed);
}

static void on_written(uv_write_t *req, int status)
{
    wr_control_conn *conn = req->data;

    if (status == UV_ECANCELED || conn->state == CLOSING)
        return;
    if (status < 0)
        wr_debug("control socket: a client did not take its reply: %s", uv_strerror(status));
    close_conn(conn);
}

static void on_idle(uv_timer_t *t);

/* Send REPLY (owned; NULL: out of memory) and a "\n", then close. */
static void send_reply(wr_control_conn *conn, char *reply)
{
    uv_buf_t bufs[2];
    int rc;

    conn->reply = reply;
    bufs[0] = reply ? uv_buf_init(reply, (unsigned)strlen(reply))
                    : uv_buf_init((char *)oom_reply, sizeof oom_reply - 1);
    bufs[1] = uv_buf_init("\n", 1);
    conn->state = WRITING;
    rc = uv_timer_start(&conn->timer, on_idle, conn->c ? conn->c->idle_ms : WR_CONTROL_IDLE_MS, 0);
    if (rc == 0)
        rc = uv_write(&conn->write, (uv_stream_t *)&conn->pipe, bufs, 2, on_written);
    if (rc < 0) {
        wr_warn("control socket: cannot answer a client: %s", uv_strerror(rc));
        close_conn(conn);
    }
}

/* The client sent nothing (or did not read its reply) in time. */
static void on_idle(uv_timer_t *t)
{
    wr_control_conn *conn = t->data;
    unsigned ms = conn->c ? conn->c->idle_ms : WR_CONTROL_IDLE_MS;

    if (conn->state != READING) {
        wr_debug("control socket: a client did not read its reply within %u ms; dropped", ms);
        close_conn(conn);
        return;
    }
    uv_read_stop((uv_stream_t *)&conn->pipe);
    wr_debug("control socket: a client sent no command within %u ms; dropped", ms);
    send_reply(conn, wr_control_reply_error("no command within %u ms", ms));
}

/* A whole line (NUL-terminated in conn->line, LEN bytes): ask the
 * supervisor, send its answer. */
static void handle_line(wr_control_conn *conn, size_t len)
{
    wr_control *c = conn->c;
    char *reply;

    uv_read_stop((uv_stream_t *)&conn->pipe);
    if (len > 0 && conn->line[len - 1] == '\r')
        conn->line[--len] = '\0';
    if (len == 0) {
        send_reply(conn, wr_control_reply_error("empty command"));
        return;
    }
    if (strlen(conn->line) != len) {
        send_reply(conn, wr_control_reply_error("a command is one line of text (got a NUL byte)"));
        return;
    }
    if (!c) {
        close_conn(conn);
        return;
    }
    wr_debug("control socket: command \"%s\"", conn->line);
    reply = c->fn(c->arg, conn->line);
    /* The callback may have stopped the server, and us with it. */
    if (conn->state == CLOSING) {
        free(reply);
        return;
    }
    send_reply(conn, reply ? reply : wr_control_reply_error("out of memory in the supervisor"));
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    wr_control_conn *conn = h->data;

    (void)suggested;
    /* Room up to one byte past the longest line with its "\n", and the
     * NUL: a fuller buffer without a newline is a line too long. */
    *buf = uv_buf_init(conn->line + conn->len, (unsigned)(sizeof conn->line - 1 - conn->len));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    wr_control_conn *conn = s->data;
    char *nl;

    (void)buf;
    if (conn->state != READING || nread == 0)
        return;
    if (nread < 0) {
        /* A client that half-closes after its command, without "\n". */
        if (nread == UV_EOF && conn->len > 0) {
            conn->line[conn->len] = '\0';
            handle_line(conn, conn->len);
            return;
        }
        if (nread != UV_EOF)
            wr_debug("control socket: reading a command: %s", uv_strerror((int)nread));
        close_conn(conn);
        return;
    }
    conn->len += (size_t)nread;
    conn->line[conn->len] = '\0';
    nl = memchr(conn->line, '\n', conn->len);
    if (nl) {
        *nl = '\0';
        handle_line(conn, (size_t)(nl - conn->line));
    } else if (conn->len > WR_CONTROL_LINE_MAX) {
        uv_read_stop(s);
        wr_warn("control socket: a client sent a command line longer than %d bytes; refused",
                WR_CONTROL_LINE_MAX);
        send_reply(
            conn, wr_control_reply_error("command line longer than %d bytes", WR_CONTROL_LINE_MAX));
    }
}

/* Without a handle to accept into, libuv would stop watching the
 * listener for good; say so and close it rather than hang silently. */
static void give_up_listening(wr_control *c, const char *why)
{
    wr_error("control socket %s: %s; closing it (warren status will not answer until a "
             "restart)",
             c->path, why);
    if (c->listening) {
        uv_close((uv_handle_t *)&c->listener, NULL);
        c->listening = 0;
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    wr_control *c = server->data;
    wr_control_conn *conn;
    int rc;

    if (status < 0) {
        wr_warn("control socket %s: cannot take a connection: %s", c->path, uv_strerror(status));
        return;
    }
    conn = calloc(1, sizeof *conn);
    if (!conn) {
        give_up_listening(c, "out of memory for a connection");
        return;
    }
    rc = uv_pipe_init(c->loop, &conn->pipe, 0);
    if (rc < 0) {
        free(conn);
        give_up_listening(c, uv_strerror(rc));
        return;
    }
    rc = uv_timer_init(c->loop, &conn->timer);
    if (rc < 0) {
        /* The pipe is a live handle already: close it, then free. */
        conn->pipe.data = conn;
        conn->open = 1;
        conn->state = CLOSING;
        uv_close((uv_handle_t *)&conn->pipe, on_conn_closed);
        give_up_listening(c, uv_strerror(rc));
        return;
    }
    conn->pipe.data = conn->timer.data = conn->write.data = conn;
    conn->open = 2;
    conn->state = READING;
    conn->c = c;
    conn->next = c->conns;
    if (c->conns)
        c->conns->prev = conn;
    c->conns = conn;

    rc = uv_accept(server, (uv_stream_t *)&conn->pipe);
    if (rc < 0) {
        wr_warn("control socket %s: cannot accept a connection: %s", c->path, uv_strerror(rc));
        close_conn(conn);
        return;
    }
    if (c->nconns >= WR_CONTROL_MAX_CONNS) {
        wr_warn("control socket %s: %d connections open already; one more refused", c->path,
                c->nconns);
        send_reply(conn, wr_control_reply_error("too many control connections (%d open); try "
                                                "again",
                                                c->nconns));
        return;
    }
    conn->serving = 1;
    c->nconns++;
    rc = uv_timer_start(&conn->timer, on_idle, c->idle_ms, 0);
    if (rc == 0)
        rc = uv_read_start((uv_stream_t *)&conn->pipe, on_alloc, on_read);
    if (rc < 0) {
        wr_warn("control socket %s: cannot read from a client: %s", c->path, uv_strerror(rc));
        close_conn(conn);
    }
}

/* Before binding PATH: 0 when it is free (absent, or a stale socket now
 * removed), -1 (logged) when it is in use or not ours to replace.  A
 * socket file outlives a warren killed by SIGKILL; what tells a stale one
 * from a live one is whether anything accepts on it.  The probe does not
 * block: a live server with a full backlog answers EAGAIN. */
static int claim_path(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct stat st;
    int fd, rc, err;

    if (lstat(path, &st) < 0) {
        if (errno == ENOENT)
            return 0;
        wr_error("cannot use %s as the control socket: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISSOCK(st.st_mode)) {
        wr_error("cannot use %s as the control socket: it exists and is not a socket (remove it, "
                 "or set [pool] control_socket to another path)",
                 path);
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        wr_error("cannot probe the control socket %s: socket: %s", path, strerror(errno));
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    err = errno;
    close(fd);
    if (rc == 0 || err == EAGAIN || err == EINPROGRESS) {
        wr_error("another warren is running on %s (it accepts connections); stop it, or give "
                 "this one another [pool] control_socket",
                 path);
        return -1;
    }
    if (err != ECONNREFUSED) {
        wr_error("cannot tell whether a warren is running on %s: connect: %s", path, strerror(err));
        return -1;
    }
    if (unlink(path) < 0 && errno != ENOENT) {
        wr_error("cannot remove the stale control socket %s: %s", path, strerror(errno));
        return -1;
    }
    wr_info("control socket %s: replaced a stale socket file (left by a warren that died)", path);
    return 0;
}

int wr_control_start(wr_control *c, uv_loop_t *loop, const char *path, wr_control_fn fn, void *arg)
{
    struct sockaddr_un sa;
    int rc;

    memset(c, 0, sizeof *c);
    c->loop = loop;
    c->fn = fn;
    c->arg = arg;
    c->idle_ms = WR_CONTROL_IDLE_MS;
    if (strlen(path) >= sizeof sa.sun_path) {
        wr_error("control socket %s: the path is longer than %zu bytes, the limit of a unix "
                 "socket (set a shorter [pool] control_socket)",
                 path, sizeof sa.sun_path - 1);
        return -1;
    }
    if (claim_path(path) < 0)
        return -1;
    rc = uv_pipe_init(loop, &c->listener, 0);
    if (rc < 0) {
        wr_error("control socket %s: %s", path, uv_strerror(rc));
        return -1;
    }
    c->listener.data = c;
    c->listening = 1;
    rc = uv_pipe_bind(&c->listener, path);
    if (rc < 0) {
        /* libuv reports a missing directory as EACCES: look. */
        char dir[sizeof sa.sun_path];
        const char *slash = strrchr(path, '/');
        struct stat st;

        snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
        if (!*dir)
            snprintf(dir, sizeof dir, "/");
        if (rc == UV_EACCES && stat(dir, &st) < 0)
            rc = UV_ENOENT;
        wr_error("cannot create the control socket %s: %s%s", path, uv_strerror(rc),
                 rc == UV_ENOENT ? " (its directory is missing: systemd's RuntimeDirectory= "
                                   "makes /run/warren; elsewhere set [pool] control_socket)"
                                 : "");
        wr_control_stop(c);
        return -1;
    }
    c->path = strdup(path);
    if (!c->path) {
        wr_error("control socket %s: out of memory", path);
        unlink(path);
        wr_control_stop(c);
        return -1;
    }
    /* Before listen(): until then nobody can connect, whatever the umask
     * gave the file. */
    if (chmod(path, WR_CONTROL_SOCKET_MODE) < 0) {
        wr_error("control socket %s: cannot set its mode to %o: %s", path, WR_CONTROL_SOCKET_MODE,
                 strerror(errno));
        wr_control_stop(c);
        return -1;
    }
    rc = uv_listen((uv_stream_t *)&c->listener, 64, on_connection);
    if (rc < 0) {
        wr_error("control socket %s: cannot listen: %s", path, uv_strerror(rc));
        wr_control_stop(c);
        return -1;
    }
    wr_debug("control socket %s: listening", path);
    return 0;
}

void wr_control_set_idle_timeout(wr_control *c, unsigned ms)
{
    c->idle_ms = ms;
}

void wr_control_stop(wr_control *c)
{
    if (c->listening) {
        uv_close((uv_handle_t *)&c->listener, NULL);
        c->listening = 0;
    }
    while (c->conns)
        close_conn(c->conns); /* detaches it from the list */
    if (c->path) {
        if (unlink(c->path) < 0 && errno != ENOENT)
            wr_warn("cannot remove the control socket %s: %s", c->path, strerror(errno));
        free(c->path);
        c->path = NULL;
    }
}
