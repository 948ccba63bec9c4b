/*
 * warren-bench --reliable: a caller that loses nothing itself, so that
 * whatever goes missing was lost by the server or the broker.
 *
 * Why each piece:
 *   - Requests are persistent and published with publisher confirms: a
 *     call is "sent" only once the broker confirmed it (for a durable
 *     queue: written to disk), so "sent but never answered" means the
 *     system under test dropped it.  rabbitmq-c 0.11 has no confirm wait,
 *     so basic.ack / basic.nack arrive as frames among the replies and are
 *     read as such (amqp_consume_message says UNEXPECTED_STATE, the frame
 *     is then read with amqp_simple_wait_frame).
 *   - Replies come to a named durable queue (x-queue-type classic,
 *     x-expires so that it goes away a while after we do), consumed with
 *     manual acks: a reply that arrives while we are disconnected waits
 *     there, and one we had not acked yet comes back.
 *   - After a lost connection (broker restart, close_connection, missed
 *     heartbeats) we reconnect with backoff and re-publish only the calls
 *     whose confirm never came.  Such a call may then be in the queue
 *     twice: its second reply is the caller's duplicate, counted apart
 *     from the server's.
 *
 * Correlation ids are TOKEN.N (TOKEN unique to the run), the JSON-RPC id is
 * N: a reply leads straight to its call, and a stray reply from another run
 * on a reused reply queue is recognised as such.
 *
 * Counting, per call: answered (first reply), duplicated (a later reply
 * the server sent again), caller-duplicated (a later reply to a call we
 * published twice), reply-redelivered (a reply we had taken but not acked
 * when the connection went, delivered again: our own doing).  lost =
 * confirmed calls unanswered at the end.
 */
#include "bench/reliable.h"

#include <amqp.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "common/amqp_conn.h"
#include "common/exitcodes.h"

#define CHANNEL 1
#define HEARTBEAT_S 10
#define CONNECT_TIMEOUT_S 5
#define RPC_TIMEOUT_S 30
#define REPLY_EXPIRES_MS 300000 /* the reply queue's x-expires: 5 minutes unused */
#define TICK_MS 100             /* longest wait before looking at signals and clocks */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000

/* Per-call flags. */
#define C_STARTED 0x01     /* published at least once: holds a window slot until answered */
#define C_CONFIRMED 0x02   /* the broker confirmed it (or it was answered first) */
#define C_ANSWERED 0x04    /* its first reply came */
#define C_REPUBLISHED 0x08 /* published again after its confirm was lost */
#define C_PENDING 0x10     /* on the retry list */
#define C_RETURNED 0x20    /* came back unroutable; the ack that follows confirms nothing */

struct rel {
    const struct wr_bench_reliable_opts *o;
    amqp_connection_state_t conn; /* NULL while disconnected */
    char reply_queue[256];
    char token[40]; /* correlation id prefix of this run */
    size_t token_len;
    unsigned char *flags; /* C_* per call */
    int64_t *first_ns;    /* first publish of each call */
    int64_t *lat_ns;      /* latency of each answered call, in answer order */
    long next;            /* calls 0..next-1 have been started */
    long *retry;          /* calls to publish again; at most WINDOW */
    long nretry;
    /* Delivery tags of the current channel: the call of tag T is
     * tags[T - tag_base], -1 once settled (acked or nacked).  Tags below
     * tag_low are all settled. */
    long *tags;
    size_t ntags, captags;
    uint64_t tag_base, tag_low;
    long sent, answered, in_flight;
    long dup, caller_dup, reply_redelivered, errors, mismatches, strays;
    long nacked, returned, republished, reconnects;
    int64_t start_ns, end_ns;
};

static volatile sig_atomic_t stop_requests;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requests++;
}

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

    nanosleep(&ts, NULL); /* a signal cuts it short: fine */
}

/* Queue call ID for publishing again (once: a pending call is not added
 * twice). */
static void push_retry(struct rel *r, long id)
{
    if (r->flags[id] & (C_PENDING | C_ANSWERED))
        return;
    r->flags[id] |= C_PENDING;
    r->retry[r->nretry++] = id;
}

static void confirm(struct rel *r, long id)
{
    if (r->flags[id] & C_CONFIRMED)
        return;
    r->flags[id] |= C_CONFIRMED;
    r->sent++;
}

/* Remember that delivery tag (tag_base + ntags) is call ID.  0 or -1. */
static int tag_push(struct rel *r, long id)
{
    /* Drop the settled head once it is most of the array. */
    size_t done = (size_t)(r->tag_low - r->tag_base);

    if (done > 4096 && done * 2 > r->ntags) {
        memmove(r->tags, r->tags + done, (r->ntags - done) * sizeof *r->tags);
        r->ntags -= done;
        r->tag_base = r->tag_low;
    }
    if (r->ntags == r->captags) {
        size_t cap = r->captags ? r->captags * 2 : 1024;
        long *t = realloc(r->tags, cap * sizeof *t);

        if (t == NULL)
            return -1;
        r->tags = t;
        r->captags = cap;
    }
    r->tags[r->ntags++] = id;
    return 0;
}

/*
 * basic.ack (OK) or basic.nack for TAG, MULTIPLE meaning "and every tag
 * before it".  An acked call is sent; a nacked one (or one the broker
 * returned as unroutable, then acked) is published again.
 */
static void settle(struct rel *r, uint64_t tag, int multiple, int ok)
{
    uint64_t t = multiple ? r->tag_low : tag;

    for (; t <= tag && t >= r->tag_base && t - r->tag_base < r->ntags; t++) {
        long *slot = &r->tags[t - r->tag_base], id = *slot;

        if (id < 0)
            continue;
        *slot = -1;
        if (ok && !(r->flags[id] & C_RETURNED)) {
            confirm(r, id);
        } else {
            r->flags[id] &= (unsigned char)~C_RETURNED;
            if (!ok)
                r->nacked++;
            push_retry(r, id);
        }
    }
    while (r->tag_low - r->tag_base < r->ntags && r->tags[r->tag_low - r->tag_base] < 0)
        r->tag_low++;
}

/* The call a correlation id names, or -1 if none of this run's. */
static long call_of(const struct rel *r, amqp_bytes_t corr)
{
    const char *p = corr.bytes;
    long id = 0;
    size_t i;

    if (corr.len <= r->token_len + 1 || memcmp(p, r->token, r->token_len) != 0 ||
        p[r->token_len] != '.')
        return -1;
    for (i = r->token_len + 1; i < corr.len; i++) {
        if (p[i] < '0' || p[i] > '9' || id > 100000000L)
            return -1;
        id = id * 10 + (p[i] - '0');
    }
    return id < r->next ? id : -1;
}

/* Is BODY a JSON-RPC result for call ID (and for echo, the params back)?
 * 0 yes, 1 an error reply or not JSON-RPC, 2 a wrong id or value. */
static int check_body(const struct rel *r, long id, amqp_bytes_t body)
{
    static int shown;
    json_t *resp = json_loadb(body.bytes, body.len, 0, NULL);
    json_t *result = json_object_get(resp, "result"), *rid = json_object_get(resp, "id");
    int bad = 0;

    if (result == NULL || json_object_get(resp, "error") != NULL)
        bad = 1;
    else if (!json_is_integer(rid) || json_integer_value(rid) != id)
        bad = 2;
    else if (strcmp(r->o->method, "echo") == 0 && !json_equal(result, r->o->params))
        bad = 2;
    json_decref(resp);
    if (bad && shown++ < 5)
        fprintf(stderr, "warren-bench: call %ld: %s: %.*s\n", id,
                bad == 1 ? "not a result" : "wrong id or value",
                (int)(body.len > 200 ? 200 : body.len), (const char *)body.bytes);
    return bad;
}

/* Account for one reply, then ack it.  0, or -1 with ERR (connection). */
static int take_reply(struct rel *r, const amqp_envelope_t *env, char *err, size_t errlen)
{
    const amqp_basic_properties_t *p = &env->message.properties;
    long id = (p->_flags & AMQP_BASIC_CORRELATION_ID_FLAG) ? call_of(r, p->correlation_id) : -1;
    int st;

    if (id < 0) {
        r->strays++;
    } else if (r->flags[id] & C_ANSWERED) {
        if (env->redelivered)
            r->reply_redelivered++;
        else if (r->flags[id] & C_REPUBLISHED)
            r->caller_dup++;
        else
            r->dup++;
    } else {
        r->flags[id] |= C_ANSWERED;
        r->answered++;
        r->in_flight--;
        r->end_ns = now_ns();
        r->lat_ns[r->answered - 1] = r->end_ns - r->first_ns[id];
        confirm(r, id); /* it reached the queue, whatever became of its confirm */
        switch (check_body(r, id, env->message.body)) {
        case 1:
            r->errors++;
            break;
        case 2:
            r->mismatches++;
            break;
        }
    }
    st = amqp_basic_ack(r->conn, CHANNEL, env->delivery_tag, 0);
    if (st != AMQP_STATUS_OK) {
        snprintf(err, errlen, "basic.ack of a reply: %s", amqp_error_string2(st));
        return -1;
    }
    return 0;
}

/*
 * The next frame is no delivery: read it.  1 when it was taken care of,
 * -1 with ERR when the connection (or our channel) is gone.
 */
static int other_frame(struct rel *r, char *err, size_t errlen)
{
    amqp_frame_t f;
    int st = amqp_simple_wait_frame(r->conn, &f);

    if (st != AMQP_STATUS_OK) {
        snprintf(err, errlen, "reading from the broker: %s", amqp_error_string2(st));
        return -1;
    }
    if (f.frame_type != AMQP_FRAME_METHOD)
        return 1;
    switch (f.payload.method.id) {
    case AMQP_BASIC_ACK_METHOD: {
        const amqp_basic_ack_t *a = f.payload.method.decoded;

        settle(r, a->delivery_tag, a->multiple, 1);
        return 1;
    }
    case AMQP_BASIC_NACK_METHOD: {
        const amqp_basic_nack_t *n = f.payload.method.decoded;

        settle(r, n->delivery_tag, n->multiple, 0);
        return 1;
    }
    case AMQP_BASIC_RETURN_METHOD: {
        /* No queue took it (the request queue is missing).  Its ack
         * follows; it is then published again. */
        amqp_message_t msg;
        amqp_rpc_reply_t rr = amqp_read_message(r->conn, f.channel, &msg, 0);
        long id;

        if (wr_amqp_check(rr, "reading a returned request", err, errlen) < 0)
            return -1;
        id = (msg.properties._flags & AMQP_BASIC_CORRELATION_ID_FLAG)
                 ? call_of(r, msg.properties.correlation_id)
                 : -1;
        if (id >= 0)
            r->flags[id] |= C_RETURNED;
        if (r->returned++ == 0)
            fprintf(stderr,
                    "warren-bench: the broker returned a request: no queue '%s' takes it; "
                    "retrying\n",
                    r->o->queue);
        amqp_destroy_message(&msg);
        return 1;
    }
    case AMQP_CONNECTION_CLOSE_METHOD: {
        const amqp_connection_close_t *c = f.payload.method.decoded;
        amqp_connection_close_ok_t ok = {0};

        snprintf(err, errlen, "broker closed the connection: %.*s", (int)c->reply_text.len,
                 (const char *)c->reply_text.bytes);
        amqp_send_method(r->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
        return -1;
    }
    case AMQP_CHANNEL_CLOSE_METHOD: {
        const amqp_channel_close_t *c = f.payload.method.decoded;

        snprintf(err, errlen, "broker closed the channel: %.*s", (int)c->reply_text.len,
                 (const char *)c->reply_text.bytes);
        return -1;
    }
    case AMQP_BASIC_CANCEL_METHOD:
        snprintf(err, errlen, "broker cancelled the reply consumer (reply queue deleted?)");
        return -1;
    default:
        return 1; /* connection.blocked and the like */
    }
}

/* Wait up to TIMEOUT_MS for one frame and handle it.  1 something came,
 * 0 nothing did, -1 with ERR the connection is gone. */
static int read_one(struct rel *r, int timeout_ms, char *err, size_t errlen)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    amqp_envelope_t env;
    amqp_rpc_reply_t res;
    int rc;

    amqp_maybe_release_buffers(r->conn);
    res = amqp_consume_message(r->conn, &env, &tv, 0);
    if (res.reply_type == AMQP_RESPONSE_NORMAL) {
        rc = take_reply(r, &env, err, errlen);
        amqp_destroy_envelope(&env);
        return rc < 0 ? -1 : 1;
    }
    if (res.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
        res.library_error == AMQP_STATUS_TIMEOUT)
        return 0;
    if (res.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
        res.library_error == AMQP_STATUS_UNEXPECTED_STATE)
        return other_frame(r, err, errlen);
    wr_amqp_check(res, "waiting for replies", err, errlen);
    return -1;
}

/* Publish call ID (again, or for the first time).  0, or -1 with ERR. */
static int publish(struct rel *r, long id, char *err, size_t errlen)
{
    const struct wr_bench_reliable_opts *o = r->o;
    char corr[64], num[24], *body;
    amqp_basic_properties_t props;
    amqp_bytes_t b;
    size_t n;
    int st;

    snprintf(num, sizeof num, "%ld", id);
    snprintf(corr, sizeof corr, "%s.%s", r->token, num);
    n = o->prefix_len + strlen(num) + 1;
    body = malloc(n + 1);
    if (body == NULL || tag_push(r, id) < 0) {
        free(body);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(body, o->prefix, o->prefix_len);
    snprintf(body + o->prefix_len, n + 1 - o->prefix_len, "%s}", num);
    memset(&props, 0, sizeof props);
    props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG |
                   AMQP_BASIC_CORRELATION_ID_FLAG | AMQP_BASIC_REPLY_TO_FLAG;
    props.delivery_mode = 2;
    props.content_type = amqp_cstring_bytes("application/json");
    props.correlation_id = amqp_cstring_bytes(corr);
    props.reply_to = amqp_cstring_bytes(r->reply_queue);
    b.bytes = body;
    b.len = n;
    if (!(r->flags[id] & C_STARTED)) {
        r->flags[id] |= C_STARTED;
        r->first_ns[id] = now_ns();
        r->in_flight++;
    }
    st = amqp_basic_publish(r->conn, CHANNEL, amqp_cstring_bytes(""), amqp_cstring_bytes(o->queue),
                            1, 0, &props, b);
    free(body);
    if (st != AMQP_STATUS_OK) {
        snprintf(err, errlen, "basic.publish: %s", amqp_error_string2(st));
        return -1;
    }
    return 0;
}

/*
 * Connect, select confirms, declare the reply queue and consume it.
 * 0, or -1 with ERR (nothing left open).
 */
static int connect_broker(struct rel *r, char *err, size_t errlen)
{
    struct timeval rpc_tv = {.tv_sec = RPC_TIMEOUT_S};
    amqp_table_entry_t args[2];
    amqp_table_t table = {.num_entries = 2, .entries = args};
    long prefetch = r->o->window * 2 > 65535 ? 65535 : r->o->window * 2;
    amqp_connection_state_t conn;

    conn = wr_amqp_connect(r->o->uri, HEARTBEAT_S, CONNECT_TIMEOUT_S, "warren bench", err, errlen);
    if (conn == NULL)
        return -1;
    amqp_set_rpc_timeout(conn, &rpc_tv);
    amqp_confirm_select(conn, CHANNEL);
    if (wr_amqp_check(amqp_get_rpc_reply(conn), "confirm.select", err, errlen) < 0)
        goto fail;
    args[0].key = amqp_cstring_bytes("x-expires");
    args[0].value.kind = AMQP_FIELD_KIND_I32;
    args[0].value.value.i32 = REPLY_EXPIRES_MS;
    args[1].key = amqp_cstring_bytes("x-queue-type");
    args[1].value.kind = AMQP_FIELD_KIND_UTF8;
    args[1].value.value.bytes = amqp_cstring_bytes("classic");
    /* durable, not exclusive, not auto-delete: it outlives a connection. */
    amqp_queue_declare(conn, CHANNEL, amqp_cstring_bytes(r->reply_queue), 0, 1, 0, 0, table);
    if (wr_amqp_check(amqp_get_rpc_reply(conn), "queue.declare (reply queue)", err, errlen) < 0)
        goto fail;
    /* Per consumer (global = 0): RabbitMQ 4 refuses a global qos. */
    amqp_basic_qos(conn, CHANNEL, 0, (uint16_t)prefetch, 0);
    if (wr_amqp_check(amqp_get_rpc_reply(conn), "basic.qos", err, errlen) < 0)
        goto fail;
    amqp_basic_consume(conn, CHANNEL, amqp_cstring_bytes(r->reply_queue), amqp_empty_bytes, 0, 0, 0,
                       amqp_empty_table);
    if (wr_amqp_check(amqp_get_rpc_reply(conn), "basic.consume (reply queue)", err, errlen) < 0)
        goto fail;
    r->conn = conn;
    r->ntags = 0;
    r->tag_base = r->tag_low = 1; /* a channel's first confirm tag is 1 */
    return 0;
fail:
    amqp_destroy_connection(conn);
    return -1;
}

/* The connection is gone (WHY): every call whose confirm had not come yet
 * is published again on the next one. */
static void connection_lost(struct rel *r, const char *why)
{
    long before = r->nretry;

    for (size_t i = (size_t)(r->tag_low - r->tag_base); i < r->ntags; i++) {
        long id = r->tags[i];

        if (id >= 0 && !(r->flags[id] & (C_CONFIRMED | C_ANSWERED)))
            push_retry(r, id);
    }
    fprintf(stderr, "warren-bench: connection lost: %s; %ld unconfirmed calls to send again\n", why,
            r->nretry - before);
    amqp_destroy_connection(r->conn);
    r->conn = NULL;
    r->ntags = 0;
}

/* Publish what is due: calls to send again, then new calls while the
 * window has room and we are not stopping.  0, or -1 with ERR. */
static int publish_due(struct rel *r, int stopping, char *err, size_t errlen)
{
    while (r->nretry > 0) {
        long id = r->retry[r->nretry - 1];

        if (!(r->flags[id] & (C_ANSWERED | C_CONFIRMED))) {
            if (publish(r, id, err, errlen) < 0)
                return -1;
            r->flags[id] |= C_REPUBLISHED;
            r->republished++;
        }
        r->flags[id] &= (unsigned char)~C_PENDING;
        r->nretry--;
    }
    while (!stopping && r->next < r->o->calls && r->in_flight < r->o->window) {
        if (publish(r, r->next++, err, errlen) < 0)
            return -1;
    }
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/* Nearest-rank percentile P of the N sorted latencies, in ms. */
static double pct_ms(const int64_t *sorted, long n, int p)
{
    long k = ((long)p * n + 99) / 100 - 1;

    if (n == 0)
        return 0.0;
    if (k < 0)
        k = 0;
    if (k >= n)
        k = n - 1;
    return (double)sorted[k] / 1e6;
}

/* The result line, and the exit status that goes with it. */
static int report(struct rel *r, int timed_out)
{
    long lost = 0, unsent = 0;
    double wall, rate;

    for (long i = 0; i < r->next; i++) {
        if ((r->flags[i] & C_CONFIRMED) && !(r->flags[i] & C_ANSWERED))
            lost++;
        else if (!(r->flags[i] & C_CONFIRMED))
            unsent++;
    }
    if (r->end_ns <= r->start_ns)
        r->end_ns = now_ns();
    wall = (double)(r->end_ns - r->start_ns) / 1e9;
    rate = wall > 0 ? (double)r->answered / wall : 0.0;
    qsort(r->lat_ns, (size_t)r->answered, sizeof *r->lat_ns, cmp_i64);
    printf("sent %ld answered %ld lost %ld duplicated %ld caller-duplicated %ld "
           "reply-redelivered %ld errors %ld mismatches %ld strays %ld unsent %ld returned %ld "
           "nacked %ld republished %ld reconnects %ld wall %.1fs rate %.1f/s p50 %.2fms "
           "p99 %.2fms max %.2fms label %s%s\n",
           r->sent, r->answered, lost, r->dup, r->caller_dup, r->reply_redelivered, r->errors,
           r->mismatches, r->strays, unsent, r->returned, r->nacked, r->republished, r->reconnects,
           wall, rate, pct_ms(r->lat_ns, r->answered, 50), pct_ms(r->lat_ns, r->answered, 99),
           pct_ms(r->lat_ns, r->answered, 100), r->o->label, timed_out ? " TIMED-OUT" : "");
    fflush(stdout);
    if (lost > 0)
        return WR_BENCH_EXIT_LOST;
    if (timed_out)
        return 2;
    if (r->errors > 0 || r->mismatches > 0)
        return 1;
    return 0;
}

static void progress(struct rel *r, int64_t now, int64_t *last_ns, long *last_answered)
{
    double dt = (double)(now - *last_ns) / 1e9;

    fprintf(stderr,
            "warren-bench: progress t=%.1fs sent=%ld answered=%ld in_flight=%ld rate=%.0f/s "
            "reconnects=%ld%s\n",
            (double)(now - r->start_ns) / 1e9, r->sent, r->answered, r->in_flight,
            dt > 0 ? (double)(r->answered - *last_answered) / dt : 0.0, r->reconnects,
            r->conn ? "" : " (disconnected)");
    *last_ns = now;
    *last_answered = r->answered;
}

/* The loop: publish, read, reconnect, until done.  Returns 1 if the global
 * timeout ended it, else 0. */
static int drive(struct rel *r)
{
    const struct wr_bench_reliable_opts *o = r->o;
    int64_t deadline = r->start_ns + (int64_t)(o->timeout_s * 1e9), grace_end = 0;
    int64_t next_attempt = 0, last_progress = r->start_ns, lost_at = 0;
    long backoff = BACKOFF_MIN_MS, last_answered = 0;
    char err[512];

    for (;;) {
        int64_t now = now_ns();
        int stopping = stop_requests > 0;

        if (r->answered == r->next && (r->next == o->calls || stopping))
            return 0; /* everything started is answered */
        if (stop_requests > 1)
            return 0;
        if ((stopping || r->next == o->calls) && grace_end == 0)
            grace_end = now + (int64_t)(o->grace_s * 1e9);
        if (grace_end != 0 && now >= grace_end)
            return 0;
        if (now >= deadline)
            return 1;
        if (o->progress_s > 0 && now - last_progress >= (int64_t)(o->progress_s * 1e9))
            progress(r, now, &last_progress, &last_answered);

        if (r->conn == NULL) {
            if (now < next_attempt) {
                nap_ms(TICK_MS < (next_attempt - now) / 1000000
                           ? TICK_MS
                           : (next_attempt - now) / 1000000 + 1);
                continue;
            }
            if (connect_broker(r, err, sizeof err) < 0) {
                next_attempt = now_ns() + (int64_t)backoff * 1000000;
                backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
                continue;
            }
            r->reconnects++;
            fprintf(stderr, "warren-bench: reconnected after %.1fs; sending %ld calls again\n",
                    (double)(now_ns() - lost_at) / 1e9, r->nretry);
            backoff = BACKOFF_MIN_MS;
        }
        if (publish_due(r, stopping, err, sizeof err) < 0 ||
            read_one(r, TICK_MS, err, sizeof err) < 0) {
            connection_lost(r, err);
            lost_at = now_ns();
            next_attempt = lost_at + BACKOFF_MIN_MS * 1000000;
            continue;
        }
    }
}

int wr_bench_reliable_run(const struct wr_bench_reliable_opts *o)
{
    struct rel r;
    struct sigaction sa;
    char err[512], host[64] = "host";
    int timed_out, rc;

    memset(&r, 0, sizeof r);
    r.o = o;
    gethostname(host, sizeof host - 1);
    if (o->reply_queue != NULL)
        snprintf(r.reply_queue, sizeof r.reply_queue, "%s", o->reply_queue);
    else
        snprintf(r.reply_queue, sizeof r.reply_queue, "warren-bench.reply.%s.%d", host,
                 (int)getpid());
    snprintf(r.token, sizeof r.token, "%x%llx", (unsigned)getpid(), (unsigned long long)time(NULL));
    r.token_len = strlen(r.token);
    r.flags = calloc((size_t)o->calls, sizeof *r.flags);
    r.first_ns = calloc((size_t)o->calls, sizeof *r.first_ns);
    r.lat_ns = calloc((size_t)o->calls, sizeof *r.lat_ns);
    r.retry = calloc((size_t)o->window, sizeof *r.retry);
    if (r.flags == NULL || r.first_ns == NULL || r.lat_ns == NULL || r.retry == NULL) {
        fprintf(stderr, "warren-bench: out of memory for %ld calls\n", o->calls);
        return WR_EXIT_SOFTWARE;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal; /* no SA_RESTART: a wait ends at once */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    if (connect_broker(&r, err, sizeof err) < 0) {
        fprintf(stderr, "warren-bench: %s\n", err);
        return WR_EXIT_UNAVAILABLE;
    }
    r.start_ns = now_ns();
    timed_out = drive(&r);
    rc = report(&r, timed_out);
    if (r.conn != NULL) {
        /* Nothing outstanding: the reply queue has served.  Otherwise it
         * stays for inspection, and x-expires removes it later. */
        if (r.answered == r.next) {
            amqp_queue_delete(r.conn, CHANNEL, amqp_cstring_bytes(r.reply_queue), 0, 0);
            amqp_get_rpc_reply(r.conn);
        }
        wr_amqp_close(r.conn);
    }
    free(r.flags);
    free(r.first_ns);
    free(r.lat_ns);
    free(r.retry);
    free(r.tags);
    return rc;
}
