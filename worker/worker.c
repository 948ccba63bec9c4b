/*
 * A worker: one AMQP connection, one channel, one consumer per route, one
 * request at a time.
 *
 * The per-message path reads top to bottom in serve():
 *   receive (amqp_consume_message) → start_job (decode, report "start",
 *   hand to the runner thread) → finish_job (publish reply, ack, report
 *   "done").
 *
 * Why a runner thread: rabbitmq-c sends heartbeats only from inside its
 * own calls, and a handler may run for minutes.  While the runner works,
 * this thread keeps polling the socket, so heartbeats flow and the broker
 * never sees a dead connection.  Deliveries that arrive meanwhile (with
 * prefetch > 1) wait in a small local queue; they are only ever run one at
 * a time.
 *
 * Broker loss: the job in hand is finished but its reply is dropped (the
 * delivery tag died with the channel; the broker redelivers the message),
 * then we reconnect with exponential backoff and jitter, re-declare the
 * topology, and carry on.  Nothing is acked that was not answered.
 */
#include "worker/worker.h"

#include <amqp.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common/amqp_conn.h"
#include "common/exitcodes.h"
#include "common/ipc.h"
#include "common/log.h"
#include "common/plugin_loader.h"
#include "worker/dispatch.h"
#include "worker/runner.h"

#define CHANNEL 1
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 10000

/* What ended a serve() round. */
enum { SERVE_STOP = 0, SERVE_RECONNECT = 1 };

/* A delivery waiting for the runner, in arrival order. */
typedef struct pending {
    amqp_envelope_t env;
    struct pending *next;
} pending;

typedef struct worker {
    int index;
    const wr_config *cfg;
    wr_plugins *plugins;
    wr_runner *runner;
    amqp_connection_state_t conn;
    char **consumer_tags; /* one per route, owned */

    pending *head, *tail; /* deliveries not yet started */

    /* The job in hand (busy) and the delivery it came from. */
    int busy;
    wr_job job;
    amqp_envelope_t env;
    const wr_route *route;

    unsigned long handled, failed;
    int ipc_ok;

    /* Commands from the supervisor on stdin (see common/ipc.h). */
    int commands_ok;
    char cmd_buf[4 * WR_IPC_LINE_MAX];
    size_t cmd_len;
    wr_ipc_msg *poison; /* messages to refuse, owned */
    size_t npoison;
    int poison_lost; /* one did not fit: stop, exit WR_EXIT_TEMPFAIL */
} worker;

/* Signal handling: the handler only sets a flag and writes a byte to a
 * self-pipe, which serve() polls beside the socket. */
static volatile sig_atomic_t stop_requested;
static int sigpipe_fds[2] = {-1, -1};

static void on_stop_signal(int sig)
{
    int saved = errno;
    char byte = (char)sig;
    stop_requested = 1;
    if (write(sigpipe_fds[1], &byte, 1) < 0) {
        /* the pipe is full: a wakeup is already pending */
    }
    errno = saved;
}

static int install_signals(void)
{
    struct sigaction sa;

    if (pipe2(sigpipe_fds, O_CLOEXEC | O_NONBLOCK) < 0)
        return -1;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    return 0;
}

static void report(worker *w, const wr_ipc_msg *m)
{
    /* A dead supervisor is noticed by poll() on the pipe; here a failed
     * write only stops further reports. */
    if (w->ipc_ok && wr_ipc_send(WR_IPC_FD, m) < 0)
        w->ipc_ok = 0;
}

static char *bytes_or_null(amqp_bytes_t b, int flag_set)
{
    return flag_set && b.len ? wr_amqp_strdup(b) : NULL;
}

/* Act on one command line from the supervisor. */
static void handle_command(worker *w, const char *line, int *synced)
{
    wr_ipc_msg m;

    if (wr_ipc_parse(line, &m) < 0) {
        wr_warn("unreadable command from the supervisor: %.80s", line);
        return;
    }
    if (m.type == WR_IPC_SYNC) {
        *synced = 1;
    } else if (m.type == WR_IPC_POISON) {
        wr_ipc_msg *grown = realloc(w->poison, (w->npoison + 1) * sizeof *grown);
        if (!grown) { /* not without the whole list: a fresh worker gets it */
            wr_error("out of memory for the poison list; stopping (exit %d)", WR_EXIT_TEMPFAIL);
            w->poison_lost = 1;
            stop_requested = 1;
            return;
        }
        w->poison = grown;
        w->poison[w->npoison++] = m;
    }
}

/*
 * Read what the supervisor has sent on stdin and act on every complete
 * line.  With WAIT_SYNC, block until a "sync" line (at startup: the
 * initial poison list must be known before the first delivery).  Returns
 * 0, or -1 when stdin is closed (the supervisor is gone).
 */
static int read_commands(worker *w, int wait_sync)
{
    int synced = 0;

    while (w->commands_ok) {
        char *nl, *start = w->cmd_buf;
        ssize_t n;

        if (w->cmd_len == sizeof w->cmd_buf) /* a line too long: drop it */
            w->cmd_len = 0;
        n = read(STDIN_FILENO, w->cmd_buf + w->cmd_len, sizeof w->cmd_buf - w->cmd_len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            if (!wait_sync || synced)
                return 0;
            struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
            poll(&p, 1, 1000);
            if (stop_requested)
                return 0;
            continue;
        }
        if (n <= 0) {
            w->commands_ok = 0;
            return -1;
        }
        w->cmd_len += (size_t)n;
        while ((nl = memchr(start, '\n', w->cmd_len - (size_t)(start - w->cmd_buf)))) {
            *nl = '\0';
            handle_command(w, start, &synced);
            start = nl + 1;
        }
        w->cmd_len -= (size_t)(start - w->cmd_buf);
        memmove(w->cmd_buf, start, w->cmd_len);
        if (wait_sync && synced)
            return 0;
    }
    return -1;
}

/* The poison entry for this delivery, or NULL. */
static const wr_ipc_msg *poisoned(const worker *w, const char *route, const char *msgid,
                                  const char *hash)
{
    for (size_t i = 0; i < w->npoison; i++) {
        const wr_ipc_msg *p = &w->poison[i];
        if (strcmp(p->hash, hash) == 0 && strcmp(p->msgid, msgid) == 0 &&
            strcmp(p->route, route) == 0)
            return p;
    }
    return NULL;
}

/* Declare each route's queue (durable) and bindings, set the prefetch and
 * start one consumer per route.  0, or -1 with the reason logged. */
static int setup_topology(worker *w)
{
    char err[512];
    const wr_config *cfg = w->cfg;

    amqp_basic_qos(w->conn, CHANNEL, 0, (uint16_t)cfg->prefetch, 0);
    if (wr_amqp_check(amqp_get_rpc_reply(w->conn), "basic.qos", err, sizeof err))
        goto fail;
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const wr_route *r = &cfg->routes[i];
        amqp_basic_consume_ok_t *ok;

        amqp_queue_declare(w->conn, CHANNEL, amqp_cstring_bytes(r->queue), 0, 1, 0, 0,
                           amqp_empty_table);
        if (wr_amqp_check(amqp_get_rpc_reply(w->conn), "queue.declare", err, sizeof err))
            goto fail_route;
        /* A reply exchange that does not exist would make the broker
         * close the channel at the first reply, after which the ack is
         * lost and the request comes back forever: check it now. */
        if (r->reply_exchange) {
            amqp_exchange_declare(w->conn, CHANNEL, amqp_cstring_bytes(r->reply_exchange),
                                  amqp_empty_bytes, 1 /* passive */, 0, 0, 0, amqp_empty_table);
            if (wr_amqp_check(amqp_get_rpc_reply(w->conn), "reply_exchange", err, sizeof err))
                goto fail_route;
        }
        for (size_t b = 0; b < r->nbindings; b++) {
            amqp_queue_bind(w->conn, CHANNEL, amqp_cstring_bytes(r->queue),
                            amqp_cstring_bytes(r->exchange), amqp_cstring_bytes(r->bindings[b]),
                            amqp_empty_table);
            if (wr_amqp_check(amqp_get_rpc_reply(w->conn), "queue.bind", err, sizeof err))
                goto fail_route;
        }
        ok = amqp_basic_consume(w->conn, CHANNEL, amqp_cstring_bytes(r->queue), amqp_empty_bytes, 0,
                                0 /* manual acks */, 0, amqp_empty_table);
        if (wr_amqp_check(amqp_get_rpc_reply(w->conn), "basic.consume", err, sizeof err))
            goto fail_route;
        free(w->consumer_tags[i]);
        w->consumer_tags[i] = wr_amqp_strdup(ok->consumer_tag);
        continue;
    fail_route:
        wr_error("route %s: queue %s: %s", r->name, r->queue, err);
        return -1;
    }
    return 0;
fail:
    wr_error("%s", err);
    return -1;
}

static const wr_route *route_of(const worker *w, amqp_bytes_t consumer_tag)
{
    for (size_t i = 0; i < w->cfg->nroutes; i++) {
        const char *t = w->consumer_tags[i];
        if (t && strlen(t) == consumer_tag.len &&
            memcmp(t, consumer_tag.bytes, consumer_tag.len) == 0)
            return &w->cfg->routes[i];
    }
    return NULL;
}

static int finish_job(worker *w, int reject);
static void drop_job(worker *w);

/*
 * The delivery is a known poison message: answer it with an error saying
 * why (when the caller expects an answer) and reject it without requeue,
 * so the broker dead-letters it (or drops it) instead of redelivering.
 */
static int refuse_job(worker *w, const wr_ipc_msg *p)
{
    json_t *id = NULL, *reply;
    int expects = 0;
    char msg[512];

    for (size_t i = 0; i < w->job.req.ncalls; i++)
        if (w->job.req.calls[i].id) {
            expects = 1;
            if (!w->job.req.batch)
                id = w->job.req.calls[i].id;
            break;
        }
    snprintf(msg, sizeof msg, "request refused: it killed %u worker%s (last one %s)", p->deaths,
             p->deaths == 1 ? "" : "s", p->why);
    wr_warn("route %s: refusing request %s (%s): it killed %u worker%s; rejecting it without "
            "requeue",
            w->route->name, p->msgid, wr_dispatch_method(&w->job), p->deaths,
            p->deaths == 1 ? "" : "s");
    if (expects) {
        reply = wr_jsonrpc_error(id, WARREN_ERR_INTERNAL, msg, NULL);
        w->job.reply = wr_jsonrpc_encode(reply, &w->job.reply_len);
        json_decref(reply);
        if (json_is_string(id))
            w->job.reply_id = strdup(json_string_value(id));
        else if (json_is_integer(id) &&
                 asprintf(&w->job.reply_id, "%" JSON_INTEGER_FORMAT, json_integer_value(id)) < 0)
            w->job.reply_id = NULL;
    }
    w->job.nerrors = 1;
    int rc = finish_job(w, 1);
    drop_job(w);
    return rc;
}

/*
 * Decode the next delivery, tell the supervisor, hand it to the runner (or
 * refuse it when it is a known poison message).  Returns 0, or -1 when the
 * connection failed while refusing.
 */
static int start_job(worker *w, amqp_envelope_t *env)
{
    wr_ipc_msg m = {.type = WR_IPC_START};
    amqp_basic_properties_t *p = &env->message.properties;
    const wr_ipc_msg *poison;

    w->env = *env;
    w->route = route_of(w, env->consumer_tag);
    if (!w->route) /* cannot happen: we only consume with our own tags */
        w->route = &w->cfg->routes[0];
    wr_dispatch_prepare(&w->job, env->message.body.bytes, env->message.body.len,
                        w->cfg->max_message_size, w->route->name);
    w->busy = 1;

    snprintf(m.route, sizeof m.route, "%s", w->route->name);
    snprintf(m.method, sizeof m.method, "%s", wr_dispatch_method(&w->job));
    if ((p->_flags & AMQP_BASIC_CORRELATION_ID_FLAG) && p->correlation_id.len)
        snprintf(m.msgid, sizeof m.msgid, "%.*s", (int)p->correlation_id.len,
                 (char *)p->correlation_id.bytes);
    else if ((p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG) && p->message_id.len)
        snprintf(m.msgid, sizeof m.msgid, "%.*s", (int)p->message_id.len,
                 (char *)p->message_id.bytes);
    else
        snprintf(m.msgid, sizeof m.msgid, "-");
    wr_ipc_body_hash(env->message.body.bytes, env->message.body.len, m.hash);

    /* Only a redelivery can be a message that killed a worker.  Commands
     * that arrived since the last poll are read first. */
    if (env->redelivered && w->commands_ok && read_commands(w, 0) < 0)
        stop_requested = 1;
    poison = env->redelivered ? poisoned(w, w->route->name, m.msgid, m.hash) : NULL;
    if (poison)
        return refuse_job(w, poison);
    report(w, &m);
    wr_runner_submit(w->runner, &w->job);
    return 0;
}

/*
 * Publish the finished job's reply where the request asked, then ack it
 * (or, with REJECT, reject it without requeue).  Returns 0, or -1 when the
 * connection failed (the message stays unacked and the broker will
 * redeliver it).
 */
static int finish_job(worker *w, int reject)
{
    amqp_basic_properties_t *req = &w->env.message.properties;
    amqp_basic_properties_t props;
    char *reply_to = bytes_or_null(req->reply_to, req->_flags & AMQP_BASIC_REPLY_TO_FLAG);
    char *key = NULL;
    const char *exchange = "";
    wr_ipc_msg m = {.type = WR_IPC_DONE};
    int rc = 0, st;

    if (w->job.reply) {
        if (reply_to) {
            key = reply_to;
            reply_to = NULL;
        } else if (w->route->reply_exchange && w->job.reply_id) {
            exchange = w->route->reply_exchange;
            if (asprintf(&key, "%s.%s", w->route->reply_prefix, w->job.reply_id) < 0)
                key = NULL;
        }
    }
    if (key) {
        memset(&props, 0, sizeof props);
        props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
        props.content_type = amqp_cstring_bytes("application/json");
        /* A reply is persistent when its request was. */
        props.delivery_mode =
            (req->_flags & AMQP_BASIC_DELIVERY_MODE_FLAG) && req->delivery_mode == 2 ? 2 : 1;
        if (req->_flags & AMQP_BASIC_CORRELATION_ID_FLAG) {
            props._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
            props.correlation_id = req->correlation_id;
        }
        st = amqp_basic_publish(w->conn, CHANNEL, amqp_cstring_bytes(exchange),
                                amqp_cstring_bytes(key), 0, 0, &props,
                                (amqp_bytes_t){.len = w->job.reply_len, .bytes = w->job.reply});
        if (st != AMQP_STATUS_OK) {
            wr_error("route %s: publishing a reply to %s failed: %s", w->route->name, key,
                     amqp_error_string2(st));
            rc = -1;
            goto out;
        }
    } else if (w->job.reply) {
        wr_warn("route %s: a request expects a reply but names no reply_to%s; reply dropped",
                w->route->name, w->route->reply_exchange ? " and no usable id" : "");
    }
    st = reject ? amqp_basic_reject(w->conn, CHANNEL, w->env.delivery_tag, 0)
                : amqp_basic_ack(w->conn, CHANNEL, w->env.delivery_tag, 0);
    if (st != AMQP_STATUS_OK) {
        wr_error("route %s: %s failed: %s", w->route->name, reject ? "reject" : "ack",
                 amqp_error_string2(st));
        rc = -1;
        goto out;
    }
    w->handled++;
    if (w->job.nerrors)
        w->failed++;
    m.handled = w->handled;
    m.failed = w->failed;
    report(w, &m);
out:
    if (rc < 0) /* unanswered or unacked: the broker redelivers it */
        report(w, &(wr_ipc_msg){.type = WR_IPC_DROP});
    free(key);
    free(reply_to);
    return rc;
}

/* Release the job in hand and its delivery. */
static void drop_job(worker *w)
{
    wr_dispatch_free(&w->job);
    amqp_destroy_envelope(&w->env);
    w->busy = 0;
}

static void drop_pending(worker *w)
{
    while (w->head) {
        pending *p = w->head;
        w->head = p->next;
        amqp_destroy_envelope(&p->env);
        free(p);
    }
    w->tail = NULL;
}

/* A frame that is not a delivery arrived (rabbitmq-c said
 * AMQP_STATUS_UNEXPECTED_STATE).  Read it.  Returns 0 to carry on, -1 when
 * the channel or connection is gone. */
static int handle_other_frame(worker *w)
{
    amqp_frame_t frame;
    struct timeval zero = {0, 0};
    int st = amqp_simple_wait_frame_noblock(w->conn, &frame, &zero);

    if (st == AMQP_STATUS_TIMEOUT)
        return 0;
    if (st != AMQP_STATUS_OK) {
        wr_error("connection lost: %s", amqp_error_string2(st));
        return -1;
    }
    if (frame.frame_type != AMQP_FRAME_METHOD)
        return 0;
    switch (frame.payload.method.id) {
    case AMQP_CHANNEL_CLOSE_METHOD: {
        amqp_channel_close_t *m = frame.payload.method.decoded;
        wr_error("broker closed the channel: %u %.*s", m->reply_code, (int)m->reply_text.len,
                 (char *)m->reply_text.bytes);
        return -1;
    }
    case AMQP_CONNECTION_CLOSE_METHOD: {
        amqp_connection_close_t *m = frame.payload.method.decoded;
        wr_error("broker closed the connection: %u %.*s", m->reply_code, (int)m->reply_text.len,
                 (char *)m->reply_text.bytes);
        return -1;
    }
    case AMQP_BASIC_CANCEL_METHOD: {
        const wr_route *r =
            route_of(w, ((amqp_basic_cancel_t *)frame.payload.method.decoded)->consumer_tag);
        wr_error("route %s: broker cancelled the consumer (queue %s deleted?); reconnecting to "
                 "declare it again",
                 r ? r->name : "?", r ? r->queue : "?");
        return -1;
    }
    default:
        return 0;
    }
}

/* Read whatever the socket has without blocking; queue deliveries.
 * Returns 0, or -1 when the connection is gone. */
static int receive(worker *w)
{
    struct timeval zero = {0, 0};
    amqp_envelope_t env;
    amqp_rpc_reply_t r;

    amqp_maybe_release_buffers(w->conn);
    r = amqp_consume_message(w->conn, &env, &zero, 0);
    if (r.reply_type == AMQP_RESPONSE_NORMAL) {
        pending *p = malloc(sizeof *p);
        if (!p) {
            /* Unacked; the broker redelivers it after we reconnect. */
            amqp_destroy_envelope(&env);
            wr_error("out of memory queueing a delivery");
            return -1;
        }
        p->env = env;
        p->next = NULL;
        if (w->tail)
            w->tail->next = p;
        else
            w->head = p;
        w->tail = p;
        return 0;
    }
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
        if (r.library_error == AMQP_STATUS_TIMEOUT)
            return 0;
        if (r.library_error == AMQP_STATUS_UNEXPECTED_STATE)
            return handle_other_frame(w);
        wr_error("connection lost: %s", amqp_error_string2(r.library_error));
        return -1;
    }
    wr_error("connection lost: unexpected reply from amqp_consume_message");
    return -1;
}

/*
 * The event loop of one connection.  Returns SERVE_STOP once a stop was
 * requested and the job in hand is answered, SERVE_RECONNECT when the
 * connection failed.
 */
static int serve(worker *w)
{
    int amqp_fd = amqp_get_sockfd(w->conn);
    int hb = w->cfg->heartbeat;
    /* Wake at least twice per heartbeat interval so rabbitmq-c can send
     * ours and notice missing ones; once a second without heartbeats so
     * stop requests and a dead supervisor are seen promptly anyway. */
    int tick_ms = hb > 0 ? (hb * 1000) / 2 : 1000;

    for (;;) {
        if (!w->busy) {
            if (stop_requested)
                return SERVE_STOP;
            if (w->head) {
                pending *p = w->head;
                w->head = p->next;
                if (!w->head)
                    w->tail = NULL;
                int rc = start_job(w, &p->env);
                free(p);
                if (rc < 0)
                    return SERVE_RECONNECT;
                continue;
            }
        }
        if (!amqp_data_in_buffer(w->conn) && !amqp_frames_enqueued(w->conn)) {
            struct pollfd fds[5] = {
                {.fd = amqp_fd, .events = POLLIN},
                {.fd = wr_runner_fd(w->runner), .events = POLLIN},
                {.fd = sigpipe_fds[0], .events = POLLIN},
                {.fd = w->commands_ok ? STDIN_FILENO : -1, .events = POLLIN},
                {.fd = w->ipc_ok ? WR_IPC_FD : -1, .events = 0}, /* POLLHUP: supervisor gone */
            };
            int n = poll(fds, 5, tick_ms);
            if (n < 0 && errno != EINTR) {
                wr_error("poll: %s", strerror(errno));
                return SERVE_RECONNECT;
            }
            if (n > 0 && (fds[2].revents & POLLIN)) {
                char buf[16];
                while (read(sigpipe_fds[0], buf, sizeof buf) > 0)
                    ;
            }
            if (n > 0 && (fds[3].revents & (POLLIN | POLLHUP)) && read_commands(w, 0) < 0) {
                wr_warn("supervisor is gone; stopping");
                stop_requested = 1;
            }
            if (n > 0 && w->ipc_ok && (fds[4].revents & (POLLHUP | POLLERR))) {
                wr_warn("supervisor is gone; stopping");
                w->ipc_ok = 0;
                stop_requested = 1;
            }
            if (n > 0 && (fds[1].revents & POLLIN) && w->busy && wr_runner_collect(w->runner, 0)) {
                int rc = finish_job(w, 0);
                drop_job(w);
                if (rc < 0)
                    return SERVE_RECONNECT;
                continue;
            }
            if (n > 0 && !(fds[0].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            /* Readable, or the tick expired: let rabbitmq-c read and send
             * a heartbeat if one is due. */
        }
        if (receive(w) < 0)
            return SERVE_RECONNECT;
    }
}

/* Sleep MS milliseconds unless a stop is requested or the supervisor
 * goes away.  Returns 1 when stopping. */
static int backoff_sleep(worker *w, int ms)
{
    struct pollfd p[2] = {{.fd = sigpipe_fds[0], .events = POLLIN}, {.fd = WR_IPC_FD, .events = 0}};
    if (stop_requested)
        return 1;
    if (poll(p, w->ipc_ok ? 2 : 1, ms) > 0 && w->ipc_ok && (p[1].revents & (POLLHUP | POLLERR))) {
        wr_warn("supervisor is gone; stopping");
        stop_requested = 1;
    }
    return stop_requested;
}

static int next_backoff(int ms)
{
    /* Exponential with full jitter in the upper half, so restarted
     * workers do not reconnect in lockstep. */
    int next = ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : ms * 2;
    return next / 2 + rand() % (next / 2 + 1);
}

int wr_worker_main(int index, const wr_config *cfg, const char *plugin_dir)
{
    worker w = {.index = index, .cfg = cfg, .ipc_ok = 1};
    wr_diag diag = {0};
    char name[64], err[512];
    int backoff = BACKOFF_MIN_MS, code = WR_EXIT_OK;
    wr_ipc_msg ready = {.type = WR_IPC_READY};

    srand((unsigned)getpid() ^ (unsigned)time(NULL));
    /* Probe fd 3 before install_signals() opens a pipe that would take it.
     * Without it we were started by hand: run without a supervisor (no
     * status lines, no commands on stdin), which is handy for debugging. */
    int supervised = fcntl(WR_IPC_FD, F_GETFD) >= 0;
    if (install_signals() < 0) {
        wr_error("cannot set up signals: %s", strerror(errno));
        return WR_EXIT_SOFTWARE;
    }
    if (!supervised) {
        w.ipc_ok = 0;
    } else {
        fcntl(WR_IPC_FD, F_SETFD, FD_CLOEXEC);
        /* Belt and braces with the pipe's POLLHUP: if the supervisor is
         * killed outright, stop gracefully instead of lingering, even
         * inside a blocking connect. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() == 1)
            stop_requested = 1;
        /* After the config, stdin carries commands; read them without
         * blocking from the serve loop. */
        w.commands_ok = 1;
        fcntl(STDIN_FILENO, F_SETFL, fcntl(STDIN_FILENO, F_GETFL) | O_NONBLOCK);
    }

    int loaded = wr_plugins_load(&w.plugins, plugin_dir, cfg->plugins, cfg->nplugins, cfg, &diag);
    if (loaded < 0) {
        for (size_t i = 0; i < diag.n; i++)
            wr_error("%s", diag.msgs[i]);
        wr_diag_free(&diag);
        /* Temporary: exit to be started again with backoff, not to stop. */
        return loaded == WR_PLUGINS_TEMPORARY ? WR_EXIT_TEMPFAIL : WR_EXIT_CONFIG;
    }
    if (wr_runner_start(&w.runner, w.plugins) < 0) {
        wr_error("cannot start the handler thread: %s", strerror(errno));
        wr_plugins_unload(w.plugins);
        return WR_EXIT_SOFTWARE;
    }
    w.consumer_tags = calloc(cfg->nroutes, sizeof *w.consumer_tags);
    if (!w.consumer_tags) {
        wr_error("out of memory");
        wr_runner_stop(w.runner);
        wr_plugins_unload(w.plugins);
        return WR_EXIT_SOFTWARE;
    }
    /* Know which messages to refuse before taking the first one. */
    if (w.commands_ok && read_commands(&w, 1) < 0 && !stop_requested) {
        wr_warn("supervisor is gone; stopping");
        stop_requested = 1;
    }
    snprintf(name, sizeof name, "warren worker %d (pid %d)", index, (int)getpid());

    while (!stop_requested) {
        w.conn = wr_amqp_connect(cfg->broker_uri, cfg->heartbeat, cfg->connect_timeout, name, err,
                                 sizeof err);
        if (!w.conn) {
            wr_warn("broker: %s; retrying in %d ms", err, backoff);
            if (backoff_sleep(&w, backoff))
                break;
            backoff = next_backoff(backoff);
            continue;
        }
        if (setup_topology(&w) < 0) {
            wr_amqp_close(w.conn);
            w.conn = NULL;
            if (backoff_sleep(&w, backoff))
                break;
            backoff = next_backoff(backoff);
            continue;
        }
        backoff = BACKOFF_MIN_MS;
        wr_info("consuming from %zu route%s, prefetch %d", cfg->nroutes,
                cfg->nroutes == 1 ? "" : "s", cfg->prefetch);
        report(&w, &ready);

        int why = serve(&w);
        if (w.busy) {
            /* The connection died under a running handler.  Let it finish
             * (a thread cannot be cancelled safely), drop its reply: the
             * broker redelivers the unacked message. */
            wr_runner_collect(w.runner, 1);
            wr_warn("route %s: connection lost while running %s; the broker will redeliver it",
                    w.route->name, wr_dispatch_method(&w.job));
            report(&w, &(wr_ipc_msg){.type = WR_IPC_DROP});
            drop_job(&w);
        }
        drop_pending(&w);
        if (why == SERVE_STOP) {
            wr_amqp_close(w.conn);
            w.conn = NULL;
            break;
        }
        /* The socket is dead or the channel closed: don't wait for a
         * polite close handshake. */
        amqp_destroy_connection(w.conn);
        w.conn = NULL;
        if (backoff_sleep(&w, backoff))
            break;
        backoff = next_backoff(backoff);
    }
    wr_info("stopping after %lu request%s", w.handled, w.handled == 1 ? "" : "s");
    for (size_t i = 0; i < cfg->nroutes; i++)
        free(w.consumer_tags[i]);
    free(w.consumer_tags);
    free(w.poison);
    wr_runner_stop(w.runner);
    wr_plugins_unload(w.plugins);
    close(sigpipe_fds[0]);
    close(sigpipe_fds[1]);
    return w.poison_lost ? WR_EXIT_TEMPFAIL : code;
}
