/*
 * Spawning and burying workers.
 *
 * A worker is our own binary re-executed as `warren --worker N` (never a
 * bare fork() under a live libuv loop).  Its stdin carries the validated
 * config as INI text, so the worker runs exactly what the supervisor
 * checked even if the file changed since, then the commands that follow
 * (the poison list); fd 3 carries its status lines back (see
 * common/ipc.h).
 *
 * A worker is only "gone" once its process has exited *and* its status
 * pipe has reached EOF: the last lines it wrote (its final counters) are
 * read before its exit is reported.
 */
#include "supervisor/children.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "supervisor/supervisor.h"

static void on_handle_closed(uv_handle_t *h)
{
    wr_child *c = h->data;
    if (--c->handles_open == 0) {
        c->state = WR_CHILD_EMPTY;
        wr_supervisor_child_gone(c->sup, c);
    }
}

static void close_once(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, on_handle_closed);
}

static void on_process_exit(uv_process_t *proc, int64_t exit_status, int term_signal)
{
    wr_child *c = proc->data;
    c->exit_status = exit_status;
    c->term_signal = term_signal;
    close_once((uv_handle_t *)proc);
    /* stdin carries commands for the worker's whole life: close it now. */
    close_once((uv_handle_t *)&c->input);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    wr_child *c = h->data;
    (void)suggested;
    buf->base = c->line + c->line_len;
    buf->len = sizeof c->line - c->line_len;
}

static void on_status_line(const char *line, void *arg)
{
    wr_child *c = arg;
    wr_ipc_msg m;

    if (wr_ipc_parse(line, &m) == 0)
        wr_supervisor_child_status(c->sup, c, &m);
    else
        wr_warn("worker %d: unreadable status line: %.80s", c->index, line);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    wr_child *c = s->data;
    int dropped;
    (void)buf;

    if (n < 0) {
        if (n != UV_EOF)
            wr_warn("worker %d: status pipe: %s", c->index, uv_strerror((int)n));
        close_once((uv_handle_t *)s);
        return;
    }
    c->line_len = wr_ipc_split_lines(c->line, c->line_len + (size_t)n, sizeof c->line,
                                     on_status_line, c, &dropped);
    if (dropped)
        wr_warn("worker %d: status line too long; dropped", c->index);
}

static void on_input_written(uv_write_t *req, int status)
{
    wr_child *c = req->data;
    free(c->input_buf);
    c->input_buf = NULL;
    if (status < 0) {
        if (status != UV_EPIPE && status != UV_ECANCELED)
            wr_warn("worker %d: writing its config: %s", c->index, uv_strerror(status));
        close_once((uv_handle_t *)&c->input);
    }
}

/* A command write in flight: the request and its bytes, freed together. */
typedef struct command_write {
    uv_write_t req;
    char data[];
} command_write;

/*
 * A worker that misses a command (a poison line) would go on running that
 * message.  Stop it gracefully instead: its replacement is sent the whole
 * poison list with its config.
 */
static void command_lost(wr_child *c, const char *why)
{
    wr_error("worker %d: cannot send it a command: %s; restarting it so that it gets the whole "
             "poison list",
             c->index, why);
    wr_children_signal(c, SIGTERM);
}

static void on_command_written(uv_write_t *req, int status)
{
    command_write *w = (command_write *)req;
    wr_child *c = req->handle->data;
    /* EPIPE, ECANCELED: the worker is gone or going; nothing to fix. */
    if (status < 0 && status != UV_EPIPE && status != UV_ECANCELED)
        command_lost(c, uv_strerror(status));
    free(w);
}

void wr_children_command(wr_child *c, const char *line, size_t len)
{
    command_write *w;
    uv_buf_t b;
    int r;

    if (c->state == WR_CHILD_EMPTY || uv_is_closing((uv_handle_t *)&c->input))
        return;
    w = malloc(sizeof *w + len);
    if (!w) {
        command_lost(c, "out of memory");
        return;
    }
    memcpy(w->data, line, len);
    b = uv_buf_init(w->data, (unsigned)len);
    r = uv_write(&w->req, (uv_stream_t *)&c->input, &b, 1, on_command_written);
    if (r < 0) {
        free(w);
        if (r != UV_EPIPE)
            command_lost(c, uv_strerror(r));
    }
}

/* The worker's first input: config, end marker, current poison list,
 * sync.  malloc'd into *OUT. */
static int first_input(const wr_supervisor *sup, char **out, size_t *len)
{
    static const char end[] = "\n" WR_IPC_END_CONFIG "\n";
    char *buf = malloc(sup->config_len + sizeof end);

    if (!buf)
        return -1;
    memcpy(buf, sup->config_text, sup->config_len);
    memcpy(buf + sup->config_len, end, sizeof end);
    *len = sup->config_len + sizeof end - 1;
    if (wr_poison_lines(&sup->poison, (unsigned)sup->cfg->max_attempts, &buf, len) < 0) {
        free(buf);
        return -1;
    }
    {
        char *grown = realloc(buf, *len + 6);
        if (!grown) {
            free(buf);
            return -1;
        }
        buf = grown;
        memcpy(buf + *len, "sync\n", 6);
        *len += 5;
    }
    *out = buf;
    return 0;
}

int wr_children_spawn(wr_child *c)
{
    wr_supervisor *sup = c->sup;
    char title[256], idx[16];
    char *args[] = {title,     "--worker", idx, "--plugin-dir", (char *)sup->plugin_dir,
                    "--since", sup->since, NULL};
    uv_stdio_container_t stdio[5];
    uv_process_options_t opt;
    uv_buf_t b;
    size_t len;
    int r;

    snprintf(title, sizeof title, "warren: worker %d (%s)", c->index, sup->title_routes);
    c->generation = sup->generation;
    c->ready_ms = 0;
    c->timed_out = 0;
    c->timeout_at = 0;
    c->retiring = 0;
    c->recycle[0] = '\0';
    c->rss = 0;
    c->last_handled = 0;
    snprintf(idx, sizeof idx, "%d", c->index);
    c->proc.data = c->input.data = c->ipc.data = c->input_req.data = c;
    c->line_len = 0;
    c->pid = 0;
    wr_scoreboard_clear(&sup->scoreboard, c->index);
    c->started_ms = uv_now(sup->loop); /* also paces retries of a failed spawn */
    c->handles_open = 0;
    r = uv_pipe_init(sup->loop, &c->input, 0);
    if (r == 0) {
        c->handles_open++;
        r = uv_pipe_init(sup->loop, &c->ipc, 0);
    }
    if (r < 0) {
        /* As for a failed spawn: "could not be started", retried later. */
        wr_error("worker %d: cannot create its pipes: %s", c->index, uv_strerror(r));
        c->exit_status = -1;
        c->term_signal = 0;
        if (c->handles_open) { /* its close reports the child gone */
            close_once((uv_handle_t *)&c->input);
        } else {
            c->state = WR_CHILD_EMPTY;
            wr_supervisor_child_gone(sup, c);
        }
        return r;
    }
    c->handles_open = 3;

    memset(stdio, 0, sizeof stdio);
    stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
    stdio[0].data.stream = (uv_stream_t *)&c->input;
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = 1;
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = 2;
    stdio[3].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[3].data.stream = (uv_stream_t *)&c->ipc;
    stdio[4].flags = UV_INHERIT_FD; /* its scoreboard slot is in there */
    stdio[4].data.fd = sup->scoreboard.fd;

    memset(&opt, 0, sizeof opt);
    opt.file = sup->exe;
    opt.args = args;
    opt.exit_cb = on_process_exit;
    opt.env = sup->worker_env;
    opt.stdio_count = 5;
    opt.stdio = stdio;

    r = uv_spawn(sup->loop, &c->proc, &opt);
    if (r < 0) {
        wr_error("worker %d: cannot start %s: %s", c->index, sup->exe, uv_strerror(r));
        /* All three handles were initialised: close them; the last close
         * reports the child gone, which schedules a retry. */
        c->exit_status = -1;
        c->term_signal = 0;
        close_once((uv_handle_t *)&c->proc);
        close_once((uv_handle_t *)&c->input);
        close_once((uv_handle_t *)&c->ipc);
        return r;
    }
    c->pid = c->proc.pid;
    c->state = WR_CHILD_STARTING;
    r = uv_read_start((uv_stream_t *)&c->ipc, on_alloc, on_read);
    if (r < 0) {
        /* Blind to what it does, we could neither bury it properly nor
         * count its deaths: stop it; it is replaced. */
        wr_error("worker %d: cannot read its status pipe: %s; stopping it", c->index,
                 uv_strerror(r));
        close_once((uv_handle_t *)&c->ipc);
        wr_children_signal(c, SIGTERM);
    }
    if (first_input(sup, &c->input_buf, &len) < 0) {
        wr_error("worker %d: out of memory preparing its config", c->index);
        close_once((uv_handle_t *)&c->input);
        return 0;
    }
    b = uv_buf_init(c->input_buf, (unsigned)len);
    r = uv_write(&c->input_req, (uv_stream_t *)&c->input, &b, 1, on_input_written);
    if (r < 0) {
        wr_error("worker %d: cannot send its config: %s", c->index, uv_strerror(r));
        free(c->input_buf);
        c->input_buf = NULL;
        close_once((uv_handle_t *)&c->input);
    }
    return 0;
}

void wr_children_signal(wr_child *c, int sig)
{
    if (c->state != WR_CHILD_EMPTY && !uv_is_closing((uv_handle_t *)&c->proc))
        uv_process_kill(&c->proc, sig);
}

wr_child *wr_children_new(wr_supervisor *sup, int index)
{
    wr_child *c = calloc(1, sizeof *c);
    int r;

    if (!c) {
        wr_error("worker %d: out of memory", index);
        return NULL;
    }
    c->sup = sup;
    c->index = index;
    r = uv_timer_init(sup->loop, &c->restart_timer);
    if (r < 0) {
        wr_error("worker %d: cannot create its restart timer: %s", index, uv_strerror(r));
        free(c);
        return NULL;
    }
    c->restart_timer.data = c;
    return c;
}

static void on_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

void wr_children_free(wr_child *c)
{
    uv_close((uv_handle_t *)&c->restart_timer, on_timer_closed);
}
