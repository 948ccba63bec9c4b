/*
 * A worker: one AMQP connection, one channel, one consumer per route, one
 * request at a time.
 *
 * The per-message path reads top to bottom in serve():
 *   receive (worker/envelope.c) → start_job (decode, report "start",
 *   hand to the runner thread) → finish_job (publish the reply, report
 *   "done", hand the request to the outbox) → settle, when the broker's
 *   basic.ack for the reply arrives (ack the request).
 *
 * Publisher confirms: the channel is in confirm mode, and a request is
 * acked only once its reply is confirmed, so a reply the broker lost
 * (it died) leaves its request unacked and redelivered.  A reply it
 * refused (basic.nack) is kept and sent again with backoff, its request
 * held, for [pool] reply_retry seconds (resend_due).  Confirms arrive as
 * frames among the deliveries and are read as they come; the worker never
 * waits for one before taking the next request.  With [pool]
 * publisher_confirms = no the channel is not in confirm mode and a request
 * is acked once its reply is written, as a bare consumer loop does: one
 * round trip less per call, and a reply the broker loses is lost.
 *
 * Long handlers: rabbitmq-c sends heartbeats only from inside its own
 * calls, and a handler may run for minutes.  On plain TCP the handler
 * runs on this thread and the runner's keeper thread writes heartbeats
 * while it runs; on TLS the handler runs on the runner's thread while this
 * one keeps polling the socket (worker/runner.h).  Either way the broker
 * never sees a dead connection.  Deliveries that arrive before a job is
 * done (with prefetch > 1) wait in a small local queue; they are only ever
 * run one at a time.
 *
 * What the worker is doing (idle, or which request since when) and its
 * counters are in its scoreboard slot (common/scoreboard.h): stores into
 * shared memory, no system call per call.  The slot also keeps the
 * worker's latest ERROR log line (the supervisor's crash-storm exit
 * quotes it) and, while the supervisor asks, the backlog of its queues,
 * counted between calls (worker/backlog.h).  The status pipe carries
 * "ready", and "retire" once [pool] max_requests is reached
 * (worker/recycle.h).
 *
 * Broker loss: the job in hand is finished but its reply is dropped, and
 * answered requests not yet confirmed are forgotten (the delivery tags
 * died with the channel; the broker redelivers the messages),
 * then we reconnect with exponential backoff and jitter, re-declare the
 * topology, and carry on.  Nothing is acked that was not answered.
 *
 * A stop (SIGTERM: the supervisor retires us, or stops the pool) hands
 * nothing back: the consumers are cancelled first (between calls inline;
 * threaded, at once, while the handler runs on its thread), and every
 * delivery the broker sent before its cancel-ok is run, answered and
 * acked like any other before the connection closes.  A delivery handed
 * back unanswered would count as an attempt on a quorum queue
 * (x-delivery-count), and a message bounced between retiring workers
 * would be refused for nothing.  The supervisor's shutdown_timeout
 * (SIGKILL) bounds how long this takes.
 *
 * Beside this file: signals.c (stop flag and self-pipe), commands.c (the
 * supervisor's commands on stdin), topology.c (queues, bindings,
 * consumers), reply.c (where a reply goes), dispatch.c and runner.c (the
 * job and the thread that runs it).
 */
#include "worker/worker.h"

#include <amqp.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common/amqp_conn.h"
#include "common/exitcodes.h"
#include "common/ipc.h"
#include "common/log.h"
#include "common/nodes.h"
#include "common/scoreboard.h"
#include "worker/attempts.h"
#include "worker/backlog.h"
#include "worker/commands.h"
#include "worker/connect_options.h"
#include "worker/deadletter.h"
#include "worker/delivery.h"
#include "worker/dispatch.h"
#include "worker/envelope.h"
#include "worker/outbox.h"
#include "worker/plugin_loader.h"
#include "worker/publish.h"
#include "worker/recycle.h"
#include "worker/reply.h"
#include "worker/runner.h"
#include "worker/signals.h"
#include "worker/topology.h"

#define CHANNEL 1
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 10000
/* A reply the broker nacked is sent again after this, doubling up to the
 * most, for [pool] reply_retry seconds. */
#define RESEND_MIN_MS 100
#define RESEND_MAX_MS 5000

/* What ended a serve() round. */
enum { SERVE_STOP = 0, SERVE_RECONNECT = 1 };

/*
 * One request, from its delivery until the broker has its ack: waiting
 * for the runner (the pending list, in arrival order), in hand (the job),
 * answered and waiting for the broker to confirm what was published for
 * it (the outbox), or holding a reply the broker nacked until it is sent
 * again (the resend list).
 */
typedef struct request {
    wr_sent sent; /* first: the outbox's record of its publishes */
    amqp_envelope_t env;
    const wr_route *route;
    int reject;                    /* settle with a reject (no requeue), not an ack */
    const wr_refusal *dead_letter; /* refused: finish_job first copies it to the
                                      dead-letter queue (borrowed, only then) */
    struct request *next;          /* in the pending or the resend list */

    /* Its reply, kept until the broker confirms it, to send again after a
     * nack (body, id and error_message owned). */
    wr_reply reply;
    unsigned nacks;       /* how often the broker refused it */
    long long first_nack; /* wr_monotonic_ms() of the first refusal */
    long long resend_at;  /* in the resend list: when it goes again */
} request;

typedef struct worker {
    int index;
    const wr_config *cfg;
    wr_plugins *plugins;
    wr_runner *runner;
    amqp_connection_state_t conn;
    char **consumer_tags; /* one per route, owned */
    char **queues;        /* the queue each route consumes (a broadcast
                             route's is this instance's own), owned */
    wr_builtins builtins;
    wr_dispatcher dispatcher; /* what the runner calls methods with */

    request *head, *tail; /* deliveries not yet started */

    /* The job in hand (busy) and the request it came from. */
    int busy;
    wr_job job;
    request *cur;
    wr_delivery in; /* what JOB reads of CUR's envelope */
    const wr_route *route;

    wr_outbox outbox;    /* answered, awaiting the broker's confirms */
    request *resend;     /* nacked replies waiting to go again, soonest first */
    uint64_t ack_upto;   /* settled: one basic.ack (multiple) for every tag up to
                            this is due (flush_acks); 0: none */
    uint64_t acked_upto; /* every tag up to this is settled (flush_acks's last ack) */
    /* Settled while an older request still awaits its confirm (the broker
     * confirms replies to different queues out of order): their tags wait
     * for the multiple ack that follows once the older ones settle. */
    uint64_t *later;
    size_t nlater, later_cap;
    wr_slot *slot; /* what the supervisor knows of us */

    unsigned long handled, failed;
    unsigned long retire_after;     /* ask to be replaced when handled reaches it; 0: never */
    unsigned long returned, nacked; /* replies that reached no one */
    unsigned long resent;           /* nacked replies sent again */
    wr_expired_stats expired;       /* not run: their deadline had passed */
    int ipc_ok;

    /* The backlog count (worker/backlog.h), while the supervisor wants it. */
    int backlog_open;          /* WR_BACKLOG_CHANNEL is open on this connection */
    int backlog_failing;       /* the last count failed (logged once) */
    long long backlog_next_ms; /* no count before this (CLOCK_MONOTONIC) */
    long *queue_counts;        /* per route, the last count (for the metrics), owned */

    /* The metrics of the request in hand (common/scoreboard.h). */
    double job_t0;   /* wr_monotonic_seconds() when it was taken */
    int job_refused; /* refused as poison or spent: counted as a refusal */

    wr_commands commands; /* from the supervisor, on stdin */
    int exit_code;        /* nonzero: stop and exit with it (a queue that exists
                             with other arguments: WR_EXIT_CONFIG) */
    int cancelled;        /* stopping: our consumers are cancelled on this
                             connection (serve() drains what it holds) */
} worker;

static void report(worker *w, const wr_ipc_msg *m)
{
    /* A dead supervisor is noticed as a hangup on the pipe by serve()'s
     * wait; here a failed write only stops further reports. */
    if (w->ipc_ok && wr_ipc_send(WR_IPC_FD, m) < 0)
        w->ipc_ok = 0;
}

static int finish_job(worker *w, int reject);
static void drop_job(worker *w);

/* The answered count reached this worker's max_requests draw: ask the
 * supervisor for a replacement, once, and carry on serving until it
 * stops us. */
static void ask_to_retire(worker *w)
{
    wr_ipc_msg m = {.type = WR_IPC_RETIRE};

    snprintf(m.why, sizeof m.why, "max_requests %lu", w->retire_after);
    wr_log_fields(
        WR_LOG_INFO,
        WR_LOG_FIELDS(WR_LOG_STR("event", "worker_recycle"), WR_LOG_STR("reason", "max_requests"),
                      WR_LOG_INT("handled", (long long)w->handled),
                      WR_LOG_INT("max_requests", w->cfg->max_requests)),
        "answered %lu requests (max_requests %d, with jitter): %s", w->handled,
        w->cfg->max_requests,
        w->ipc_ok ? "asking the supervisor to replace me" : "no supervisor to replace me");
    report(w, &m);
}

/* Where ERROR log lines go besides stderr: the slot, for the supervisor
 * to quote after we die.  Only the main thread writes the slot (a seqlock
 * has one writer), so lines from the handler thread are left out. */
static wr_slot *error_slot;
static pthread_t error_thread;

static void keep_error(int level, const char *msg)
{
    if (level == WR_LOG_ERROR && error_slot && pthread_equal(pthread_self(), error_thread))
        wr_slot_set_error(error_slot, msg);
}

/* Copy LEN bytes of SRC into OUT (SIZE bytes), cut to fit, terminated:
 * on the per-call path, where snprintf costs more than the rest of it. */
static void copy_cut(char *out, size_t size, const char *src, size_t len)
{
    if (len > size - 1)
        len = size - 1;
    memcpy(out, src, len);
    out[len] = '\0';
}

/* What names a request in the scoreboard and logs: its correlation id,
 * or its message id, or "-". */
static void request_id(const amqp_basic_properties_t *p, char *out, size_t size)
{
    if ((p->_flags & AMQP_BASIC_CORRELATION_ID_FLAG) && p->correlation_id.len)
        copy_cut(out, size, p->correlation_id.bytes, p->correlation_id.len);
    else if ((p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG) && p->message_id.len)
        copy_cut(out, size, p->message_id.bytes, p->message_id.len);
    else
        copy_cut(out, size, "-", 1);
}

static void free_request(request *rq)
{
    free((char *)rq->reply.body);
    free((char *)rq->reply.id);
    free((char *)rq->reply.error_message);
    wr_envelope_free(&rq->env);
    free(rq);
}

/*
 * The delivery is a known poison message, or has used up its attempts:
 * answer it with an error saying why (when the caller expects an answer)
 * and take it off the queue without running it.  With dead_letter, a copy
 * with headers saying why goes to the route's dead-letter queue and the
 * original is acked; without, it is rejected without requeue (dropped, or
 * dead-lettered by a policy's dead-letter exchange).
 */
static int refuse_job(worker *w, const char *msgid, const wr_refusal *why)
{
    char msg[512];
    int dead = w->route->dead_letter, rc;

    if (why->last_death[0])
        snprintf(msg, sizeof msg, "request refused: it %s (last one %s)", why->reason,
                 why->last_death);
    else
        snprintf(msg, sizeof msg, "request refused: it %s", why->reason);
    wr_log_fields(
        WR_LOG_WARN,
        WR_LOG_FIELDS(WR_LOG_STR("event", "request_refused"), WR_LOG_STR("route", w->route->name),
                      WR_LOG_STR("method", wr_dispatch_method(&w->job)),
                      WR_LOG_STR("correlation_id", msgid), WR_LOG_STR("reason", why->reason),
                      WR_LOG_STR("last_death", why->last_death[0] ? why->last_death : NULL),
                      WR_LOG_STR("action", dead ? "dead_letter" : "reject")),
        "route %s: refusing request %s (%s): it %s; %s", w->route->name, msgid,
        wr_dispatch_method(&w->job), why->reason,
        dead ? "moving it to the dead-letter queue" : "rejecting it without requeue");
    wr_dispatch_refuse(&w->job, msg);
    w->cur->dead_letter = dead ? why : NULL;
    w->job_refused = 1;
    rc = finish_job(w, !dead);
    drop_job(w);
    return rc;
}

/*
 * Decode the next delivery, tell the supervisor, hand it to the runner (or
 * refuse it when it is a known poison message).  Returns 0, or -1 when the
 * connection failed while refusing.
 */
static int start_job(worker *w, request *rq)
{
    wr_ipc_msg m = {.type = WR_IPC_START};
    amqp_envelope_t *env = &rq->env;
    const wr_ipc_msg *poison;
    wr_refusal why;

    w->job_t0 = wr_monotonic_seconds();
    w->job_refused = 0;
    w->route = wr_topology_route_of(w->cfg, w->consumer_tags, env->consumer_tag);
    if (!w->route) /* cannot happen: we only consume with our own tags */
        w->route = &w->cfg->routes[0];
    rq->route = w->route;
    if (wr_delivery_from_envelope(&w->in, env) < 0) {
        /* Back to the queue, for this worker once memory returns or for
         * another one. */
        wr_error("route %s: out of memory reading a delivery; requeueing it", w->route->name);
        int st = wr_publish_reject(w->conn, CHANNEL, env->delivery_tag, 1);
        free_request(rq);
        return st == AMQP_STATUS_OK ? 0 : -1;
    }
    wr_dispatch_prepare_limited(&w->job, w->route, &w->in, w->cfg->max_message_size,
                                (size_t)w->cfg->max_batch);
    w->cur = rq;
    w->busy = 1;

    copy_cut(m.route, sizeof m.route, w->route->name, strlen(w->route->name));
    copy_cut(m.method, sizeof m.method, wr_dispatch_method(&w->job),
             strlen(wr_dispatch_method(&w->job)));
    request_id(&env->message.properties, m.msgid, sizeof m.msgid);
    wr_ipc_body_hash(env->message.body.bytes, env->message.body.len, m.hash);

    /* Only a redelivery can be a message that killed a worker.  Commands
     * that arrived since the last wait are read first. */
    if (env->redelivered && w->commands.open && wr_commands_read(&w->commands, 0) < 0)
        wr_signals_request_stop();
    poison = env->redelivered ? wr_commands_poisoned(&w->commands, w->route->name, m.msgid, m.hash)
                              : NULL;
    if (poison)
        wr_refusal_from_poison(&why, poison);
    if (poison || wr_attempts_spent(&w->commands, w->route, w->cfg->max_attempts, &m, env, &why))
        return refuse_job(w, m.msgid, &why);
    /* Its caller stopped listening: answer, ack, do not run it. */
    if (wr_dispatch_expired(&w->job, wr_delivery_now_ms(), &w->expired)) {
        int rc = finish_job(w, 0);
        drop_job(w);
        return rc;
    }
    wr_slot_begin(w->slot, &m);
    wr_runner_submit(w->runner, &w->job);
    return 0;
}

/* The lowest delivery tag still unsettled (answered and unconfirmed or
 * nacked, in hand, or waiting), or UINT64_MAX.  Deliveries are started in tag order,
 * so only the outbox can hold one lower than the job in hand. */
static uint64_t lowest_open_tag(const worker *w)
{
    uint64_t low = UINT64_MAX;

    for (const wr_sent *s = w->outbox.head; s; s = s->next)
        if (((const request *)s)->env.delivery_tag < low)
            low = ((const request *)s)->env.delivery_tag;
    for (const request *rq = w->resend; rq; rq = rq->next)
        if (rq->env.delivery_tag < low)
            low = rq->env.delivery_tag;
    if (w->cur && w->cur->env.delivery_tag < low)
        low = w->cur->env.delivery_tag;
    if (w->head && w->head->env.delivery_tag < low)
        low = w->head->env.delivery_tag;
    return low;
}

/* Send the replies written so far (worker/publish.h) and the due
 * ack, if any, in one send.  Called before the worker waits
 * (serve's wait) and before it starts a job, so neither waits behind a
 * handler.  0, or -1 when the connection failed. */
static int flush_acks(worker *w)
{
    int st;

    if (!w->ack_upto) {
        st = wr_publish_flush(w->conn);
        if (st != AMQP_STATUS_OK)
            wr_error("sending replies failed: %s", amqp_error_string2(st));
        return st == AMQP_STATUS_OK ? 0 : -1;
    }
    /* multiple only when it answers more than the one tag: at 1x1 the
     * broker spent about 6 us less of its CPU per call (BENCHMARKS.md,
     * "Profile"). */
    st = wr_publish_ack(w->conn, CHANNEL, w->ack_upto, w->ack_upto > w->acked_upto + 1);
    w->acked_upto = w->ack_upto;
    w->ack_upto = 0;
    if (st != AMQP_STATUS_OK) {
        wr_error("ack failed: %s", amqp_error_string2(st));
        return -1;
    }
    return 0;
}

/*
 * The broker nacked RQ's reply: put RQ in the resend list (held unacked)
 * unless [pool] reply_retry is spent or off, or the reply cannot be sent
 * alone again.  Returns 1 when held.
 */
static int hold_for_resend(worker *w, request *rq)
{
    long long now = wr_monotonic_ms(), delay, deadline;
    char id[WR_IPC_TOKEN_MAX];
    request **at;

    if (!rq->nacks++)
        rq->first_nack = now;
    deadline = rq->first_nack + (long long)w->cfg->reply_retry * 1000;
    /* Only a lone reply: a dead-letter copy is not kept. */
    if (!rq->reply.body || rq->reject || rq->sent.n != 1 || rq->sent.returned || now >= deadline)
        return 0;
    delay = RESEND_MIN_MS << (rq->nacks < 7 ? rq->nacks - 1 : 6); /* 0.1 s doubling */
    delay = delay > RESEND_MAX_MS ? RESEND_MAX_MS : delay;
    rq->resend_at = now + delay < deadline ? now + delay : deadline;
    if (rq->nacks == 1) {
        request_id(&rq->env.message.properties, id, sizeof id);
        wr_warn("route %s: the broker refused (nacked) the reply to request %s; holding the "
                "request and sending the reply again for up to %d s ([pool] reply_retry)",
                rq->route->name, id, w->cfg->reply_retry);
    }
    for (at = &w->resend; *at && (*at)->resend_at <= rq->resend_at; at = &(*at)->next)
        ;
    rq->next = *at;
    *at = rq;
    return 1;
}

/* A settled request's reply was nacked for good, or went through after
 * nacks: say so. */
static void report_nacks(worker *w, const request *rq)
{
    char id[WR_IPC_TOKEN_MAX];
    double took = (double)(wr_monotonic_ms() - rq->first_nack) / 1000.0;

    request_id(&rq->env.message.properties, id, sizeof id);
    if (rq->sent.nacked) {
        w->nacked++;
        if (rq->nacks > 1)
            wr_warn("route %s: the broker refused (nacked) the reply to request %s %u times in "
                    "%.1f s; acking the request, its reply is lost ([pool] reply_retry = %d)",
                    rq->route->name, id, rq->nacks, took, w->cfg->reply_retry);
        else
            wr_warn("route %s: the broker refused (nacked) the reply to request %s; acking the "
                    "request, its reply is lost (not sent again: %s)",
                    rq->route->name, id,
                    w->cfg->reply_retry ? "it was not a lone reply" : "[pool] reply_retry = 0");
    } else {
        wr_info("route %s: the reply to request %s was confirmed on try %u, %.1f s after the "
                "broker first refused it",
                rq->route->name, id, rq->nacks + 1, took);
    }
}

/* Keep TAG for a later multiple ack.  0, or -1 without memory (then it
 * is acked alone). */
static int ack_later(worker *w, uint64_t tag)
{
    if (w->nlater == w->later_cap) {
        size_t cap = w->later_cap ? w->later_cap * 2 : 16;
        uint64_t *more = realloc(w->later, cap * sizeof *more);

        if (!more)
            return -1;
        w->later = more;
        w->later_cap = cap;
    }
    w->later[w->nlater++] = tag;
    return 0;
}

/* The tags kept by ack_later now below LOW join the multiple ack (UPTO).
 * While a request is held for resend the others are acked one by one:
 * they would wait for it, filling the prefetch.  AMQP status. */
static int settle_later(worker *w, uint64_t low, uint64_t *upto)
{
    int st = AMQP_STATUS_OK;
    size_t keep = 0;

    for (size_t i = 0; i < w->nlater; i++) {
        uint64_t tag = w->later[i];

        if (tag < low)
            *upto = tag > *upto ? tag : *upto;
        else if (w->resend)
            st = st == AMQP_STATUS_OK ? wr_publish_ack(w->conn, CHANNEL, tag, 0) : st;
        else
            w->later[keep++] = tag;
    }
    w->nlater = keep;
    if (st != AMQP_STATUS_OK)
        wr_error("ack failed: %s", amqp_error_string2(st));
    return st;
}

/*
 * Ack (or reject) every request whose publishes the broker has confirmed.
 * Acks below every unsettled tag are gathered into one basic.ack with
 * multiple, sent by flush_acks (with prefetch > 1 confirms come in runs of
 * frames, and so one ack answers several); so are those above one, once
 * it settles (ack_later).  Returns 0, or -1 when the connection failed
 * (the broker redelivers what was not acked).
 */
static int settle(worker *w)
{
    wr_sent *settled = NULL, **end = &settled, *s;
    uint64_t low, upto = 0;
    int st = AMQP_STATUS_OK;

    /* Take them all first: what stays in the outbox, or is held to be
     * sent again, is what is open. */
    while ((s = wr_outbox_take_settled(&w->outbox))) {
        if (s->nacked && hold_for_resend(w, (request *)s))
            continue;
        *end = s;
        end = &s->next;
    }
    *end = NULL;
    low = lowest_open_tag(w);
    while ((s = settled)) {
        request *rq = (request *)s;
        uint64_t tag = rq->env.delivery_tag;

        settled = s->next;
        if (st != AMQP_STATUS_OK) { /* the connection failed: redelivered */
            free_request(rq);
            continue;
        }

        if (s->nacked || (rq->nacks && s->n))
            report_nacks(w, rq);
        if (!rq->reject && tag < low) {
            upto = tag > upto ? tag : upto; /* acked below, with the others */
        } else if (!rq->reject && ack_later(w, tag) == 0) {
            /* acked with the older ones, once they settle (settle_later) */
        } else {
            st = rq->reject ? wr_publish_reject(w->conn, CHANNEL, tag, 0)
                            : wr_publish_ack(w->conn, CHANNEL, tag, 0);
            if (st != AMQP_STATUS_OK)
                wr_error("route %s: %s failed: %s", rq->route->name, rq->reject ? "reject" : "ack",
                         amqp_error_string2(st));
        }
        free_request(rq);
    }
    if (st == AMQP_STATUS_OK && w->nlater)
        st = settle_later(w, low, &upto);
    if (upto > w->ack_upto)
        w->ack_upto = upto;
    return st == AMQP_STATUS_OK ? 0 : -1;
}

/* What the metrics count of the job in hand, answered now (REC filled,
 * returned).  A method that does not exist is counted as "(unknown)": the
 * caller's free text would fill the table. */
static const wr_call_record *call_record(const worker *w, const request *rq, wr_call_record *rec)
{
    int unknown = w->job.ncodes && w->job.codes[0] == WARREN_ERR_METHOD_NOT_FOUND;

    *rec = (wr_call_record){.route = rq->route->name,
                            .method = unknown ? "(unknown)" : wr_dispatch_method(&w->job),
                            .error = w->job.nerrors > 0,
                            .seconds = wr_monotonic_seconds() - w->job_t0,
                            .codes = w->job.codes,
                            .counts = w->job.code_counts,
                            .ncodes = w->job.ncodes,
                            .more_codes = w->job.more_codes,
                            .refused = w->job_refused};
    return rec;
}

/* The reply just published for RQ moves from the job to RQ, to be sent
 * again if the broker nacks it (with [pool] reply_retry). */
static void keep_reply(worker *w, request *rq)
{
    wr_job *job = &w->job;

    if (!w->cfg->reply_retry || !w->cfg->publisher_confirms)
        return;
    rq->reply = wr_reply_of(job);
    rq->reply.error_message = job->error_code ? strdup(job->error_message) : NULL;
    if (job->error_code && !rq->reply.error_message) { /* not kept, then */
        rq->reply = (wr_reply){0};
        return;
    }
    job->reply = NULL;
    job->reply_id = NULL;
}

/*
 * Send again the held replies whose time has come (hold_for_resend): each
 * goes back to the outbox.  Returns 0, or -1 when the connection failed
 * (the broker redelivers what was not acked).
 */
static int resend_due(worker *w)
{
    long long now = wr_monotonic_ms();
    int unsent = 0;

    while (w->resend && w->resend->resend_at <= now) {
        request *rq = w->resend;
        int st;

        w->resend = rq->next;
        wr_outbox_begin(&w->outbox, &rq->sent);
        st = wr_reply_send(w->conn, CHANNEL, &rq->env.message.properties, &rq->reply);
        if (st < 0) {
            free_request(rq);
            return -1;
        }
        if (st > 0) {
            wr_outbox_published(&w->outbox, &rq->sent);
            w->resent++;
        } else {
            unsent = 1; /* nothing to send after all: acked by settle */
        }
        wr_outbox_add(&w->outbox, &rq->sent);
    }
    /* What was sent is settled when its confirm arrives. */
    return unsent ? settle(w) : 0;
}

/*
 * Publish the finished job's reply where the request asked, then hand the
 * request to the outbox: it is acked (or, with REJECT, rejected without
 * requeue) once the broker confirms the reply.  Returns 0, or -1 when the
 * connection failed (the message stays unacked and the broker will
 * redeliver it).
 */
static int finish_job(worker *w, int reject)
{
    request *rq = w->cur;
    wr_call_record rec;

    rq->reject = reject;
    wr_outbox_begin(&w->outbox, &rq->sent);
    /* A refused request's copy (worker/deadletter.c), confirmed like a
     * reply before the request is acked. */
    if (rq->dead_letter) {
        if (wr_deadletter_publish(w->conn, CHANNEL, rq->route, &rq->env, rq->dead_letter) < 0) {
            wr_slot_end(w->slot, w->handled, w->failed);
            return -1;
        }
        rq->dead_letter = NULL;
        wr_outbox_published(&w->outbox, &rq->sent);
    }
    if (w->job.reply) {
        int st = wr_reply_publish(w->conn, CHANNEL, &rq->env.message.properties, &w->job);
        if (st < 0) {
            /* Unanswered: the broker redelivers it, and the supervisor
             * must not blame a later death on it. */
            wr_slot_end(w->slot, w->handled, w->failed);
            return -1;
        }
        if (st > 0) {
            wr_outbox_published(&w->outbox, &rq->sent);
            keep_reply(w, rq);
        }
    }
    wr_outbox_add(&w->outbox, &rq->sent);
    /* Without confirms, what is written counts as confirmed. */
    if (!w->cfg->publisher_confirms && rq->sent.n)
        wr_outbox_confirm(&w->outbox, rq->sent.first_seq + rq->sent.n - 1, 1, 0);
    w->cur = NULL;
    w->handled++;
    if (w->job.nerrors)
        w->failed++;
    wr_slot_end_call(w->slot, w->handled, w->failed, call_record(w, rq, &rec));
    if (w->handled == w->retire_after)
        ask_to_retire(w);
    return settle(w); /* nothing published: acked at once */
}

/* Release the job in hand and its delivery. */
static void drop_job(worker *w)
{
    wr_dispatch_free(&w->job);
    wr_delivery_free(&w->in);
    if (w->cur)
        free_request(w->cur);
    w->cur = NULL;
    w->busy = 0;
}

static void drop_pending(worker *w)
{
    while (w->head) {
        request *rq = w->head;
        w->head = rq->next;
        free_request(rq);
    }
    w->tail = NULL;
}

/*
 * A basic.return: a reply that no queue took (the caller's reply queue is
 * gone).  The broker confirms it next; the request is then acked, since
 * sending the reply again cannot help.  The return names no sequence
 * number, so it is matched to the oldest unsettled request with the same
 * correlation id (replies carry their request's).
 */
static void note_return(worker *w, const amqp_basic_properties_t *props, unsigned code,
                        const char *text, const char *key)
{
    request *match = NULL, *oldest = NULL;
    char id[WR_IPC_TOKEN_MAX];
    const char *route;

    for (wr_sent *s = w->outbox.head; s; s = s->next) {
        request *rq = (request *)s;
        const amqp_basic_properties_t *p = &rq->env.message.properties;

        if (s->returned)
            continue;
        if (!oldest)
            oldest = rq;
        if ((props->_flags & AMQP_BASIC_CORRELATION_ID_FLAG) &&
            (p->_flags & AMQP_BASIC_CORRELATION_ID_FLAG) &&
            p->correlation_id.len == props->correlation_id.len &&
            memcmp(p->correlation_id.bytes, props->correlation_id.bytes, p->correlation_id.len) ==
                0) {
            match = rq;
            break;
        }
    }
    if (!match)
        match = oldest;
    w->returned++;
    /* Without confirms the request is acked already, and unknown here;
     * the reply carries its id, and with one route, its route. */
    route = match ? match->route->name : w->cfg->nroutes == 1 ? w->cfg->routes[0].name : "?";
    request_id(match ? &match->env.message.properties : props, id, sizeof id);
    if (match)
        match->sent.returned = 1;
    wr_warn("route %s: the reply to request %s reached no queue (%u %s, routing key \"%s\": the "
            "caller's reply queue is gone?); the request is acked, a retry cannot help",
            route, id, code, text, key);
}

/* Read the content of a basic.return whose method frame M was just read. */
static int read_return(worker *w, amqp_channel_t channel, const amqp_basic_return_t *m)
{
    char text[256], key[256];
    unsigned code = m->reply_code;
    amqp_message_t msg;
    amqp_rpc_reply_t r;

    /* Copied first: reading the content may reuse the frame's memory. */
    snprintf(text, sizeof text, "%.*s", (int)m->reply_text.len, (char *)m->reply_text.bytes);
    snprintf(key, sizeof key, "%.*s", (int)m->routing_key.len, (char *)m->routing_key.bytes);
    r = amqp_read_message(w->conn, channel, &msg, 0);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        wr_error("connection lost reading a returned reply");
        return -1;
    }
    note_return(w, &msg.properties, code, text, key);
    amqp_destroy_message(&msg);
    return 0;
}

/* A frame that is not a delivery arrived: act on it.  Returns 0 to carry
 * on, -1 when the channel or connection is gone. */
static int handle_other_frame(worker *w, const amqp_frame_t *f)
{
    if (f->frame_type != AMQP_FRAME_METHOD)
        return 0;
    switch (f->payload.method.id) {
    case AMQP_CHANNEL_CLOSE_METHOD: {
        amqp_channel_close_t *m = f->payload.method.decoded;
        wr_error("broker closed the channel: %u %.*s", m->reply_code, (int)m->reply_text.len,
                 (char *)m->reply_text.bytes);
        return -1;
    }
    case AMQP_CONNECTION_CLOSE_METHOD: {
        amqp_connection_close_t *m = f->payload.method.decoded;
        wr_error("broker closed the connection: %u %.*s", m->reply_code, (int)m->reply_text.len,
                 (char *)m->reply_text.bytes);
        return -1;
    }
    case AMQP_BASIC_ACK_METHOD: {
        amqp_basic_ack_t *m = f->payload.method.decoded;
        wr_outbox_confirm(&w->outbox, m->delivery_tag, m->multiple, 0);
        return settle(w);
    }
    case AMQP_BASIC_NACK_METHOD: {
        amqp_basic_nack_t *m = f->payload.method.decoded;
        wr_outbox_confirm(&w->outbox, m->delivery_tag, m->multiple, 1);
        return settle(w);
    }
    case AMQP_BASIC_RETURN_METHOD:
        return read_return(w, f->channel, f->payload.method.decoded);
    case AMQP_BASIC_CANCEL_METHOD: {
        const wr_route *r =
            wr_topology_route_of(w->cfg, w->consumer_tags,
                                 ((amqp_basic_cancel_t *)f->payload.method.decoded)->consumer_tag);
        /* The broker's notice crossed our own basic.cancel (it came before
         * the cancel-ok and waited in the frame queue): the consumer is
         * gone either way, and we are stopping. */
        if (w->cancelled) {
            wr_info("route %s: broker cancelled the consumer (queue %s deleted?) as we stopped",
                    r ? r->name : "?", r ? r->queue : "?");
            return 0;
        }
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
    amqp_frame_t frame;
    request *rq;
    int st;

    amqp_maybe_release_buffers(w->conn);
    st = amqp_simple_wait_frame_noblock(w->conn, &frame, &zero);
    if (st == AMQP_STATUS_TIMEOUT)
        return 0;
    if (st != AMQP_STATUS_OK) {
        wr_error("connection lost: %s", amqp_error_string2(st));
        return -1;
    }
    if (frame.frame_type != AMQP_FRAME_METHOD ||
        frame.payload.method.id != AMQP_BASIC_DELIVER_METHOD)
        return handle_other_frame(w, &frame);
    /* Unacked when anything fails: the broker redelivers it after we
     * reconnect. */
    rq = calloc(1, sizeof *rq);
    if (!rq) {
        wr_error("out of memory queueing a delivery");
        return -1;
    }
    st = wr_envelope_read(w->conn, &frame, &rq->env);
    if (st != 0) {
        free(rq);
        if (st == AMQP_STATUS_NO_MEMORY)
            wr_error("out of memory reading a delivery");
        else if (st == AMQP_STATUS_UNEXPECTED_STATE)
            wr_error("connection lost: the broker sent something else than a delivery's content");
        else
            wr_error("connection lost reading a delivery: %s", amqp_error_string2(st));
        return -1;
    }
    if (w->tail)
        w->tail->next = rq;
    else
        w->head = rq;
    w->tail = rq;
    return 0;
}

/* Which of serve()'s wait slots is which. */
enum { P_AMQP, P_RUNNER, P_SIGNALS, P_COMMANDS, P_SUPERVISOR, P_COUNT };

/*
 * What serve() waits on: an epoll set, made once per connection, holding
 * the descriptors a poll() would be given.  A worker waits about once per
 * call, and poll() registers on and unregisters from every descriptor
 * each time (five of them, where a bare loop has one): about 3 % of a
 * worker's CPU per echo call at prefetch 1.  epoll_wait costs the same
 * whatever is in the set.
 */
typedef struct {
    int ep;
    int fd[P_COUNT]; /* what each slot holds now, or -1 */
} waitset;

static int waitset_open(waitset *s)
{
    for (int i = 0; i < P_COUNT; i++)
        s->fd[i] = -1;
    s->ep = epoll_create1(EPOLL_CLOEXEC);
    return s->ep < 0 ? -1 : 0;
}

/* Make SLOT hold FD (-1: nothing), waiting for EVENTS (hangups and errors
 * are always reported).  Called before each wait with what the slot
 * should hold now: the commands channel and the supervisor's pipe drop
 * out once closed, as a level-triggered set would report them forever. */
static int waitset_want(waitset *s, int slot, int fd, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.u32 = (uint32_t)slot};

    if (s->fd[slot] == fd)
        return 0;
    if (s->fd[slot] >= 0)
        epoll_ctl(s->ep, EPOLL_CTL_DEL, s->fd[slot], NULL);
    s->fd[slot] = -1;
    if (fd >= 0 && epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        return -1;
    s->fd[slot] = fd;
    return 0;
}

/* Wait up to MS for any slot; FDS[slot].revents says what happened (the
 * EPOLL and POLL event bits are the same).  poll()'s return value. */
static int waitset_wait(waitset *s, struct pollfd *fds, int ms)
{
    struct epoll_event ev[P_COUNT];
    int n = epoll_wait(s->ep, ev, P_COUNT, ms);

    for (int i = 0; i < P_COUNT; i++)
        fds[i] = (struct pollfd){.fd = s->fd[i]};
    for (int i = 0; i < n; i++)
        fds[ev[i].data.u32].revents = (short)ev[i].events;
    return n;
}

/* Act on what the wait saw on everything but the AMQP socket and the
 * runner: a stop signal, commands, the supervisor's end of the pipe. */
static void handle_side_channels(worker *w, const struct pollfd *fds)
{
    if (fds[P_SIGNALS].revents & POLLIN)
        wr_signals_drain();
    int gone = 0;

    if ((fds[P_COMMANDS].revents & (POLLIN | POLLHUP)) && wr_commands_read(&w->commands, 0) < 0)
        gone = 1;
    if (w->ipc_ok && (fds[P_SUPERVISOR].revents & (POLLHUP | POLLERR))) {
        w->ipc_ok = 0;
        gone = 1;
    }
    /* Both pipes hang up together: one line, once. */
    if (gone && !wr_signals_stopping())
        wr_warn("supervisor is gone; stopping");
    if (gone)
        wr_signals_request_stop();
}

/* Take the next pending delivery, if any and if idle.  1 when one was
 * started, 0 when none, -1 when the connection failed. */
static int start_next(worker *w)
{
    request *rq = w->head;

    if (w->busy || !rq)
        return 0;
    if (flush_acks(w) < 0)
        return -1;
    w->head = rq->next;
    if (!w->head)
        w->tail = NULL;
    rq->next = NULL;
    return start_job(w, rq) < 0 ? -1 : 1;
}

/* Whether a backlog count is due: asked for, and a second since the last. */
static int backlog_due(const worker *w)
{
    return wr_slot_backlog_wanted(w->slot) && wr_monotonic_ms() >= w->backlog_next_ms;
}

/*
 * Count the backlog into the slot (between calls: never while a handler
 * runs).  A failure the connection survives reports -1 and logs once, at
 * debug level, until a count succeeds again.  Returns 0, or -1 when the
 * connection failed.
 */
static int count_backlog(worker *w)
{
    char err[512] = "";
    long n;

    if (flush_acks(w) < 0) /* not behind the count's round trips */
        return -1;
    n = wr_backlog_count(w->conn, WR_BACKLOG_CHANNEL, &w->backlog_open, w->queues, w->cfg->nroutes,
                         w->queue_counts, err, sizeof err);
    long long now = wr_monotonic_ms();
    const char *names[WR_METRICS_ROUTES];
    size_t nnames = w->cfg->nroutes < WR_METRICS_ROUTES ? w->cfg->nroutes : WR_METRICS_ROUTES;

    w->backlog_next_ms = now + 1000;
    wr_slot_set_backlog(w->slot, n < 0 ? -1 : n, now);
    for (size_t i = 0; i < nnames; i++) {
        names[i] = w->cfg->routes[i].name;
        if (n < 0)
            w->queue_counts[i] = -1;
    }
    wr_slot_set_queues(w->slot, names, w->queue_counts, nnames, now);
    if (n == WR_BACKLOG_CONNECTION_LOST) {
        wr_error("connection lost counting the backlog: %s", err);
        return -1;
    }
    if (n < 0 && !w->backlog_failing)
        wr_debug("cannot count the backlog (%s); reporting it as unknown", err);
    w->backlog_failing = n < 0;
    return 0;
}

/* How long the wait may sleep: TICK_MS, but between calls at most a second
 * (the supervisor may set want_backlog while we wait: an idle worker
 * must see it, and then count about once a second), and no later than
 * the next backlog count is due. */
static int wait_ms(const worker *w, int tick_ms)
{
    long long left;

    if (w->resend) { /* the next held reply's time */
        left = w->resend->resend_at - wr_monotonic_ms();
        tick_ms = left <= 0 ? 0 : left < tick_ms ? (int)left : tick_ms;
    }
    if (w->busy)
        return tick_ms;
    if (tick_ms > 1000)
        tick_ms = 1000;
    if (!wr_slot_backlog_wanted(w->slot))
        return tick_ms;
    left = w->backlog_next_ms - wr_monotonic_ms();
    return left <= 0 ? 0 : left < tick_ms ? (int)left : tick_ms;
}

/*
 * The event loop of one connection.  Returns SERVE_STOP once a stop was
 * requested, the consumers are cancelled, every delivery received is
 * answered and every answered request is settled; SERVE_RECONNECT when
 * the connection failed.  It waits on WS (serve() below makes it).
 */
static int serve_on(worker *w, waitset *ws)
{
    int amqp_fd = amqp_get_sockfd(w->conn);
    int hb = w->cfg->heartbeat;
    /* Wake at least twice per heartbeat interval so rabbitmq-c can send
     * ours and notice missing ones; once a second without heartbeats so
     * stop requests and a dead supervisor are seen promptly anyway. */
    int tick_ms = hb > 0 ? (hb * 1000) / 2 : 1000;

    for (;;) {
        int started = 0, drain;

        /* Inline, a job is done when it was started; threaded, when the
         * runner's pipe said so. */
        if (w->busy && wr_runner_collect(w->runner, 0)) {
            int rc = finish_job(w, 0);
            drop_job(w);
            if (rc < 0)
                return SERVE_RECONNECT;
        }
        /* Between calls: the supervisor may want our queues' backlog. */
        if (!w->busy && !wr_signals_stopping() && backlog_due(w) && count_backlog(w) < 0)
            return SERVE_RECONNECT;
        /* A stop: no more deliveries, but none handed back either.
         * Inline, we only get here between calls; threaded, the handler
         * may be running on its thread, and this thread owns the
         * connection. */
        if (wr_signals_stopping() && !w->cancelled) {
            if (flush_acks(w) < 0 ||
                wr_topology_cancel(w->conn, CHANNEL, w->cfg, w->consumer_tags) < 0)
                return SERVE_RECONNECT;
            w->cancelled = 1;
            wr_info("stop requested: consumers cancelled; answering the deliveries already "
                    "received before closing");
        }
        /* Except without the whole poison list (a stop of its own): then
         * what was not started goes back to the queue with the channel. */
        drain = !(w->cancelled && w->commands.lost);
        if (drain && (started = start_next(w)) < 0)
            return SERVE_RECONNECT;
        if (started)
            continue;
        /* Cancelled, every delivery received (rabbitmq-c holds no more
         * frames) and run, every answered one confirmed: done. */
        if (w->cancelled && !w->busy && !w->outbox.len &&
            (!drain ||
             (!w->head && !amqp_data_in_buffer(w->conn) && !amqp_frames_enqueued(w->conn))))
            return flush_acks(w) < 0 ? SERVE_RECONNECT : SERVE_STOP;
        if (w->resend && resend_due(w) < 0)
            return SERVE_RECONNECT;
        if (!amqp_data_in_buffer(w->conn) && !amqp_frames_enqueued(w->conn)) {
            if (flush_acks(w) < 0)
                return SERVE_RECONNECT;
            struct pollfd fds[P_COUNT];
            int n;

            if (waitset_want(ws, P_AMQP, amqp_fd, EPOLLIN) < 0 ||
                waitset_want(ws, P_RUNNER, wr_runner_fd(w->runner), EPOLLIN) < 0 ||
                waitset_want(ws, P_SIGNALS, wr_signals_fd(), EPOLLIN) < 0 ||
                waitset_want(ws, P_COMMANDS, w->commands.open ? STDIN_FILENO : -1, EPOLLIN) < 0 ||
                /* a hangup only: the supervisor is gone */
                waitset_want(ws, P_SUPERVISOR, w->ipc_ok ? WR_IPC_FD : -1, 0) < 0) {
                wr_error("epoll_ctl: %s", strerror(errno));
                return SERVE_RECONNECT;
            }
            n = waitset_wait(ws, fds, wait_ms(w, tick_ms));
            if (n < 0 && errno != EINTR) {
                wr_error("epoll_wait: %s", strerror(errno));
                return SERVE_RECONNECT;
            }
            if (n > 0)
                handle_side_channels(w, fds);
            if (n > 0 && !(fds[P_AMQP].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            /* Readable, or the tick expired: let rabbitmq-c read and send
             * a heartbeat if one is due. */
        }
        if (receive(w) < 0)
            return SERVE_RECONNECT;
    }
}

/* serve_on() with a wait set of its own for this connection. */
static int serve(worker *w)
{
    waitset ws;
    int rc;

    if (waitset_open(&ws) < 0) {
        wr_error("epoll_create1: %s", strerror(errno));
        return SERVE_RECONNECT;
    }
    rc = serve_on(w, &ws);
    close(ws.ep);
    return rc;
}

/* Sleep MS milliseconds unless a stop is requested or the supervisor
 * goes away.  Returns 1 when stopping. */
static int backoff_sleep(worker *w, int ms)
{
    struct pollfd p[2] = {{.fd = wr_signals_fd(), .events = POLLIN},
                          {.fd = WR_IPC_FD, .events = 0}};

    if (wr_signals_stopping())
        return 1;
    if (poll(p, w->ipc_ok ? 2 : 1, ms) > 0 && w->ipc_ok && (p[1].revents & (POLLHUP | POLLERR))) {
        wr_warn("supervisor is gone; stopping");
        wr_signals_request_stop();
    }
    return wr_signals_stopping();
}

static int next_backoff(int ms)
{
    /* Exponential with full jitter in the upper half, so restarted
     * workers do not reconnect in lockstep. */
    int next = ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : ms * 2;
    return next / 2 + rand() % (next / 2 + 1);
}

/* Handlers run inline unless a broker is reached over TLS, where only
 * rabbitmq-c may write to the stream (worker/runner.h). */
static wr_runner_mode runner_mode(const wr_config *cfg)
{
    for (size_t i = 0; i < cfg->nbroker_uris; i++)
        if (strncmp(cfg->broker_uris[i], "amqps:", 6) == 0)
            return WR_RUNNER_THREADED;
    return WR_RUNNER_INLINE;
}

/*
 * Everything before the first connect: the supervisor's pipes, signals,
 * plugins, the runner thread, the initial poison list.  Returns
 * WR_EXIT_OK, or the exit code to leave with (the reason logged).
 */
static int worker_open(worker *w, const char *plugin_dir, long long started_ms)
{
    const wr_config *cfg = w->cfg;
    wr_diag diag = {0};
    int supervised, loaded;

    /* Probe fd 3 before anything opens a descriptor that could take its
     * number.  Without it we were started by hand: run without a
     * supervisor (no status lines, no commands on stdin), which is handy
     * for debugging. */
    supervised = fcntl(WR_IPC_FD, F_GETFD) >= 0;
    w->slot = wr_slot_attach(w->index); /* fd 4, probed as early */
    if (!w->slot) {
        wr_error("cannot map my scoreboard slot: %s", strerror(errno));
        return WR_EXIT_SOFTWARE;
    }
    wr_slot_set_backlog(w->slot, -1, 0); /* not counted yet */
    error_slot = w->slot;
    error_thread = pthread_self();
    wr_log_set_hook(keep_error);
    w->retire_after = wr_recycle_limit(cfg->max_requests, wr_recycle_seed());
    if (wr_signals_install() < 0) {
        wr_error("cannot set up signals: %s", strerror(errno));
        return WR_EXIT_SOFTWARE;
    }
    w->ipc_ok = supervised;
    if (supervised) {
        fcntl(WR_IPC_FD, F_SETFD, FD_CLOEXEC);
        /* Belt and braces with the pipe's POLLHUP: if the supervisor is
         * killed outright, stop gracefully instead of lingering, even
         * inside a blocking connect. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() == 1)
            wr_signals_request_stop();
    }
    /* After the config, stdin carries the supervisor's commands. */
    wr_commands_init(&w->commands, supervised);

    loaded = wr_plugins_load(&w->plugins, plugin_dir, cfg->plugins, cfg->nplugins, cfg, &diag);
    if (loaded < 0) {
        for (size_t i = 0; i < diag.n; i++)
            wr_error("%s", diag.msgs[i]);
        wr_diag_free(&diag);
        /* Temporary: exit to be started again with backoff, not to stop. */
        return loaded == WR_PLUGINS_TEMPORARY ? WR_EXIT_TEMPFAIL : WR_EXIT_CONFIG;
    }
    w->builtins = (wr_builtins){
        .index = w->index,
        .supervisor_pid = supervised ? (long)getppid() : (long)getpid(),
        .started_ms = started_ms,
        .handled = &w->handled,
        .failed = &w->failed,
        .returned = &w->returned,
        .nacked = &w->nacked,
        .resent = &w->resent,
        .expired = &w->expired.count,
        .plugins = w->plugins,
    };
    w->dispatcher = (wr_dispatcher){
        .plugins = w->plugins,
        .builtins = cfg->builtin_methods ? &w->builtins : NULL,
    };
    if (wr_runner_start(&w->runner, &w->dispatcher, runner_mode(cfg)) < 0) {
        wr_error("cannot start the handler thread: %s", strerror(errno));
        return WR_EXIT_SOFTWARE;
    }
    w->consumer_tags = calloc(cfg->nroutes, sizeof *w->consumer_tags);
    w->queues = wr_topology_queue_names(cfg, (long)w->builtins.supervisor_pid);
    w->queue_counts = calloc(cfg->nroutes, sizeof *w->queue_counts);
    if (!w->consumer_tags || !w->queues || !w->queue_counts) {
        wr_error("out of memory");
        return WR_EXIT_SOFTWARE;
    }
    /* Know which messages to refuse before taking the first one. */
    if (supervised && wr_commands_read(&w->commands, 1) < 0 && !wr_signals_stopping()) {
        wr_warn("supervisor is gone; stopping");
        wr_signals_request_stop();
    }
    return WR_EXIT_OK;
}

/* Release what worker_open() and the loop acquired, in reverse. */
static void worker_close(worker *w)
{
    if (w->consumer_tags)
        for (size_t i = 0; i < w->cfg->nroutes; i++)
            free(w->consumer_tags[i]);
    free(w->consumer_tags);
    wr_topology_free_queue_names(w->cfg, w->queues);
    free(w->queue_counts);
    free(w->later);
    wr_publish_free();
    wr_runner_stop(w->runner);
    wr_plugins_unload(w->plugins);
    wr_commands_free(&w->commands);
    wr_signals_close();
    wr_log_set_hook(NULL);
    error_slot = NULL;
    wr_slot_detach(w->slot);
}

/* The connection died under a running handler.  Let it finish (a thread
 * cannot be cancelled safely) and drop its reply: the broker redelivers
 * the unacked message.  Deliveries not yet started go too, and answered
 * requests whose replies were not confirmed: the broker redelivers them,
 * and their callers may get a reply twice. */
static void abandon_work(worker *w)
{
    size_t unconfirmed = w->outbox.len, held = 0;
    wr_sent *s;

    while ((s = wr_outbox_take_any(&w->outbox)))
        free_request((request *)s);
    for (request *rq; (rq = w->resend); held++) {
        w->resend = rq->next;
        free_request(rq);
    }
    if (held)
        wr_warn("%zu request%s whose repl%s the broker refused go%s back to the queue with the "
                "connection, to be run again",
                held, held == 1 ? "" : "s", held == 1 ? "y" : "ies", held == 1 ? "es" : "");
    if (unconfirmed)
        wr_warn("connection lost with %zu answered request%s not yet confirmed; the broker will "
                "redeliver %s (a caller may get its reply twice)",
                unconfirmed, unconfirmed == 1 ? "" : "s", unconfirmed == 1 ? "it" : "them");
    if (w->busy) {
        wr_runner_collect(w->runner, 1);
        wr_warn("route %s: connection lost while running %s; the broker will redeliver it",
                w->route->name, wr_dispatch_method(&w->job));
        wr_slot_end(w->slot, w->handled, w->failed);
        drop_job(w);
    }
    drop_pending(w);
}

/* Put the channel in confirm mode (unless [pool] publisher_confirms = no),
 * before anything is consumed or published on it. */
static int confirm_mode(worker *w)
{
    char err[512];

    if (w->cfg->publisher_confirms) {
        amqp_confirm_select(w->conn, CHANNEL);
        if (wr_amqp_check(amqp_get_rpc_reply(w->conn), "confirm.select", err, sizeof err)) {
            wr_error("broker: %s", err);
            return -1;
        }
    }
    wr_outbox_reset(&w->outbox);
    w->ack_upto = w->acked_upto = 0; /* tags die with their channel */
    w->nlater = 0;
    return 0;
}

/* Connect, declare, serve; again after each failure, with backoff, until
 * a stop is requested. */
static void run(worker *w)
{
    const wr_config *cfg = w->cfg;
    wr_ipc_msg ready = {.type = WR_IPC_READY};
    char name[64], err[512], node[256];
    int backoff = BACKOFF_MIN_MS, failure, rc = 0;
    wr_nodes nodes;
    wr_amqp_options opt;

    /* Worker N starts at node N mod count and moves to the next one after
     * every failed connect or lost connection (common/nodes.c). */
    wr_nodes_init(&nodes, cfg->broker_uris, cfg->nbroker_uris, w->index);
    snprintf(name, sizeof name, "warren worker %d (pid %d)", w->index, (int)getpid());
    opt = wr_worker_amqp_options(cfg, name);
    while (!wr_signals_stopping()) {
        wr_uri_node(wr_nodes_uri(&nodes), node, sizeof node);
        w->conn = wr_amqp_open(wr_nodes_uri(&nodes), &opt, &failure, err, sizeof err);
        if (!w->conn) {
            char why[sizeof node + sizeof err + 16]; /* cut to fit the slot */

            backoff = wr_worker_tls_backoff(failure, backoff);
            wr_warn("broker %s: %s; retrying in %d ms", node, err, backoff);
            /* A warning (we retry), but the error a pool that never
             * starts dies of: the supervisor quotes it. */
            snprintf(why, sizeof why, "broker %s: %s", node, err);
            wr_slot_set_error(w->slot, why);
        } else if (confirm_mode(w) < 0 || (rc = wr_topology_setup(w->conn, CHANNEL, cfg, w->queues,
                                                                  w->consumer_tags)) < 0) {
            /* The broker may have closed the connection (3.10 does, with
             * 541, when workers race to create a quorum queue): a polite
             * close would wait for an answer that never comes. */
            amqp_destroy_connection(w->conn);
            w->conn = NULL;
            if (rc == WR_TOPOLOGY_CONFLICT) { /* logged; a config error */
                w->exit_code = WR_EXIT_CONFIG;
                return;
            }
        } else {
            backoff = BACKOFF_MIN_MS;
            w->backlog_open = 0; /* a new connection */
            w->backlog_failing = 0;
            wr_info("consuming from %zu route%s, prefetch %d, on broker %s", cfg->nroutes,
                    cfg->nroutes == 1 ? "" : "s", cfg->prefetch, node);
            report(w, &ready);
            w->cancelled = 0;
            wr_slot_set_connected(w->slot, 1);
            wr_runner_attach(w->runner, amqp_get_sockfd(w->conn), amqp_get_heartbeat(w->conn));
            /* Replies go straight to the socket where the keeper's
             * heartbeats may too: not on TLS. */
            wr_publish_direct(runner_mode(cfg) == WR_RUNNER_INLINE ? w->conn : NULL);
            int why = serve(w);
            wr_publish_direct(NULL);
            wr_slot_set_connected(w->slot, 0);
            abandon_work(w);
            wr_runner_attach(w->runner, -1, 0);
            if (why == SERVE_STOP) {
                wr_topology_leave(w->conn, CHANNEL, cfg, w->queues, w->consumer_tags);
                wr_amqp_close(w->conn);
                w->conn = NULL;
                return;
            }
            /* The socket is dead or the channel closed: don't wait for a
             * polite close handshake. */
            amqp_destroy_connection(w->conn);
            w->conn = NULL;
            wr_warn("broker %s: disconnected; %s", node,
                    nodes.n > 1 ? "moving to the next node" : "reconnecting");
        }
        if (nodes.n > 1)
            wr_nodes_next(&nodes);
        if (backoff_sleep(w, backoff))
            return;
        backoff = next_backoff(backoff);
    }
}

int wr_worker_main(int index, const wr_config *cfg, const char *plugin_dir, long long started_ms)
{
    worker w = {.index = index, .cfg = cfg};
    int code;

    srand((unsigned)getpid() ^ (unsigned)time(NULL));
    /* A call's memory comes back to the heap at its end; glibc gave it
     * back to the kernel too (its trim and mmap thresholds, 128 KiB and up),
     * so the next 64 KiB call faulted the same pages in again: 10 minor
     * faults per call against the bare loop's 0.15 (BENCHMARKS.md,
     * "Profile").  Kept up to 8 MiB; a message over 4 MiB still gets its
     * own mapping. */
    mallopt(M_MMAP_THRESHOLD, 4 << 20);
    mallopt(M_TRIM_THRESHOLD, 8 << 20);
    code = worker_open(&w, plugin_dir, started_ms);
    if (code == WR_EXIT_OK) {
        run(&w);
        wr_info("stopping after %lu request%s", w.handled, w.handled == 1 ? "" : "s");
        /* Without its whole poison list a worker must not serve: a fresh
         * one gets the list again. */
        if (w.commands.lost)
            code = WR_EXIT_TEMPFAIL;
        if (w.exit_code)
            code = w.exit_code;
    }
    worker_close(&w);
    return code;
}
