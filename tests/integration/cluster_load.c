/* The cluster tests' load driver; see cluster_load.h. */
#include "tests/integration/cluster_load.h"

#include <amqp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/amqp_conn.h"
#include "common/nodes.h"

#define CHANNEL 1
#define MAX_REQUESTS 100000
#define WINDOW 500    /* published, not yet confirmed, at most */
#define PREFETCH 200  /* replies in flight to us */
#define HEARTBEAT_S 5 /* notice a dead node within about two of these */

enum state { ST_NONE = 0, ST_PENDING, ST_SENT, ST_NACKED, ST_UNCONFIRMED };

struct wr_load {
    char *const *uris;
    size_t nuris;
    char *queue, *reply_queue;
    int rate;

    pthread_t thread;
    atomic_int stop_sending;
    atomic_long deadline_ms; /* 0 until wr_load_finish */
    atomic_long answered, replies;

    /* The thread's own from here on. */
    amqp_connection_state_t conn;
    wr_nodes nodes;
    unsigned char state[MAX_REQUESTS];
    unsigned short answers[MAX_REQUESTS];
    long next_id;      /* requests published so far (ids 0..next_id-1) */
    long *tag_ids;     /* on this connection: delivery tag t published id tag_ids[t-1] */
    size_t ntags, low; /* tags 1..low are all resolved */
    long pending;      /* published on this connection, not yet resolved */
    wr_load_report r;
    char *log;
    size_t loglen;
    FILE *logf;
};

static long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void note(wr_load *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void note(wr_load *l, const char *fmt, ...)
{
    va_list ap;

    fprintf(l->logf, "[%ld] ", now_ms() / 1000 % 100000);
    va_start(ap, fmt);
    vfprintf(l->logf, fmt, ap);
    va_end(ap);
    fputc('\n', l->logf);
    fflush(l->logf);
}

/* Resolve the request published under delivery tag TAG. */
static void resolve(wr_load *l, uint64_t tag, int ack)
{
    long id;

    if (tag == 0 || tag > l->ntags)
        return;
    id = l->tag_ids[tag - 1];
    if (l->state[id] != ST_PENDING)
        return;
    l->state[id] = ack ? ST_SENT : ST_NACKED;
    l->pending--;
    if (ack && l->answers[id]) /* the reply overtook the confirm */
        atomic_fetch_add(&l->answered, 1);
    if (ack)
        l->r.sent++;
    else
        l->r.nacked++;
}

static void on_confirm(wr_load *l, uint64_t tag, int multiple, int ack)
{
    if (multiple)
        for (uint64_t t = l->low + 1; t <= tag && t <= l->ntags; t++)
            resolve(l, t, ack);
    else
        resolve(l, tag, ack);
    while (l->low < l->ntags && l->state[l->tag_ids[l->low]] != ST_PENDING)
        l->low++;
}

/* The connection is gone: what it did not confirm stays unknown. */
static void drop_connection(wr_load *l, const char *why)
{
    for (size_t t = l->low; t < l->ntags; t++) {
        long id = l->tag_ids[t];
        if (l->state[id] == ST_PENDING) {
            l->state[id] = ST_UNCONFIRMED;
            l->r.unconfirmed++;
        }
    }
    note(l, "connection lost (%s); %ld request(s) unconfirmed so far", why, l->r.unconfirmed);
    l->pending = 0;
    l->ntags = l->low = 0;
    if (l->conn)
        amqp_destroy_connection(l->conn);
    l->conn = NULL;
}

static int setup(wr_load *l, char *err, size_t errlen)
{
    amqp_table_entry_t qtype = {
        .key = amqp_cstring_bytes("x-queue-type"),
        .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes("quorum")}};
    amqp_table_t args = {.num_entries = 1, .entries = &qtype};
    amqp_bytes_t reply = amqp_cstring_bytes(l->reply_queue);

    amqp_confirm_select(l->conn, CHANNEL);
    if (wr_amqp_check(amqp_get_rpc_reply(l->conn), "confirm.select", err, errlen))
        return -1;
    amqp_queue_declare(l->conn, CHANNEL, reply, 0, 1, 0, 0, args);
    if (wr_amqp_check(amqp_get_rpc_reply(l->conn), "queue.declare", err, errlen))
        return -1;
    amqp_basic_qos(l->conn, CHANNEL, 0, PREFETCH, 0);
    if (wr_amqp_check(amqp_get_rpc_reply(l->conn), "basic.qos", err, errlen))
        return -1;
    amqp_basic_consume(l->conn, CHANNEL, reply, amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    return wr_amqp_check(amqp_get_rpc_reply(l->conn), "basic.consume", err, errlen);
}

/* Connect to the current node, else the next, ..., until one works or
 * the drain deadline passes.  0 when connected. */
static int connect_any(wr_load *l, int first)
{
    char err[512], node[256];

    for (;;) {
        long deadline = atomic_load(&l->deadline_ms);
        if (deadline && now_ms() > deadline)
            return -1;
        wr_uri_node(wr_nodes_uri(&l->nodes), node, sizeof node);
        l->conn = wr_amqp_connect(wr_nodes_uri(&l->nodes), HEARTBEAT_S, 5, "warren cluster load",
                                  err, sizeof err);
        if (l->conn && setup(l, err, sizeof err) == 0) {
            if (!first)
                l->r.reconnects++;
            note(l, "connected to %s", node);
            return 0;
        }
        note(l, "%s: %s", node, err);
        if (l->conn)
            amqp_destroy_connection(l->conn);
        l->conn = NULL;
        wr_nodes_next(&l->nodes);
        usleep(200 * 1000);
    }
}

static int publish_one(wr_load *l)
{
    char body[128], corr[32];
    long id = l->next_id;
    amqp_basic_properties_t p = {0};
    int st;

    snprintf(body, sizeof body,
             "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[%ld],\"id\":%ld}", id, id);
    snprintf(corr, sizeof corr, "%ld", id);
    p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
               AMQP_BASIC_REPLY_TO_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG;
    p.content_type = amqp_cstring_bytes("application/json");
    p.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    p.reply_to = amqp_cstring_bytes(l->reply_queue);
    p.correlation_id = amqp_cstring_bytes(corr);
    st = amqp_basic_publish(l->conn, CHANNEL, amqp_empty_bytes, amqp_cstring_bytes(l->queue), 0, 0,
                            &p, amqp_cstring_bytes(body));
    if (st != AMQP_STATUS_OK) {
        drop_connection(l, amqp_error_string2(st));
        return -1;
    }
    l->tag_ids = realloc(l->tag_ids, (l->ntags + 1) * sizeof *l->tag_ids);
    if (!l->tag_ids)
        abort();
    l->tag_ids[l->ntags++] = id;
    l->state[id] = ST_PENDING;
    l->pending++;
    l->next_id++;
    l->r.published++;
    return 0;
}

static void on_reply(wr_load *l, const amqp_envelope_t *env)
{
    const amqp_basic_properties_t *p = &env->message.properties;
    char corr[32] = "";
    long id;

    atomic_fetch_add(&l->replies, 1);
    if ((p->_flags & AMQP_BASIC_CORRELATION_ID_FLAG) && p->correlation_id.len < sizeof corr)
        memcpy(corr, p->correlation_id.bytes, p->correlation_id.len);
    id = strtol(corr, NULL, 10);
    if (!corr[0] || id < 0 || id >= l->next_id) {
        note(l, "a reply with an unknown correlation id \"%s\"", corr);
        return;
    }
    if (l->answers[id] && env->redelivered)
        return; /* our ack of the first copy was lost with a connection */
    if (l->answers[id] < 65535)
        l->answers[id]++;
    if (l->answers[id] > 1) {
        l->r.duplicated++;
        return;
    }
    if (l->state[id] == ST_SENT)
        atomic_fetch_add(&l->answered, 1);
}

/* Sent and not answered, or still waiting for a confirm. */
static long outstanding(wr_load *l)
{
    return l->r.sent - atomic_load(&l->answered) + l->pending;
}

/* Read one thing from the connection (up to 10 ms).  -1: connection lost. */
static int poll_once(wr_load *l)
{
    struct timeval tv = {.tv_sec = 0, .tv_usec = 10000};
    amqp_envelope_t env;
    amqp_frame_t f;
    amqp_rpc_reply_t r;

    amqp_maybe_release_buffers(l->conn);
    r = amqp_consume_message(l->conn, &env, &tv, 0);
    if (r.reply_type == AMQP_RESPONSE_NORMAL) {
        on_reply(l, &env);
        int st = amqp_basic_ack(l->conn, CHANNEL, env.delivery_tag, 0);
        amqp_destroy_envelope(&env);
        if (st != AMQP_STATUS_OK) {
            drop_connection(l, amqp_error_string2(st));
            return -1;
        }
        return 0;
    }
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT)
        return 0;
    if (r.reply_type != AMQP_RESPONSE_LIBRARY_EXCEPTION ||
        r.library_error != AMQP_STATUS_UNEXPECTED_STATE) {
        char err[512];
        wr_amqp_check(r, "consume", err, sizeof err);
        drop_connection(l, err);
        return -1;
    }
    if (amqp_simple_wait_frame(l->conn, &f) != AMQP_STATUS_OK) {
        drop_connection(l, "reading a frame");
        return -1;
    }
    if (f.frame_type != AMQP_FRAME_METHOD)
        return 0;
    switch (f.payload.method.id) {
    case AMQP_BASIC_ACK_METHOD: {
        amqp_basic_ack_t *a = f.payload.method.decoded;
        on_confirm(l, a->delivery_tag, a->multiple, 1);
        return 0;
    }
    case AMQP_BASIC_NACK_METHOD: {
        amqp_basic_nack_t *n = f.payload.method.decoded;
        on_confirm(l, n->delivery_tag, n->multiple, 0);
        return 0;
    }
    case AMQP_CHANNEL_CLOSE_METHOD: {
        amqp_channel_close_t *m = f.payload.method.decoded;
        char why[300];
        snprintf(why, sizeof why, "the broker closed the channel: %u %.*s", m->reply_code,
                 (int)m->reply_text.len, (char *)m->reply_text.bytes);
        drop_connection(l, why);
        return -1;
    }
    case AMQP_CONNECTION_CLOSE_METHOD: {
        amqp_connection_close_t *m = f.payload.method.decoded;
        char why[300];
        snprintf(why, sizeof why, "the broker closed the connection: %u %.*s", m->reply_code,
                 (int)m->reply_text.len, (char *)m->reply_text.bytes);
        drop_connection(l, why);
        return -1;
    }
    case AMQP_BASIC_CANCEL_METHOD:
        drop_connection(l, "the broker cancelled the reply consumer");
        return -1;
    default:
        return 0;
    }
}

static void *run(void *arg)
{
    wr_load *l = arg;
    long start = now_ms();

    if (connect_any(l, 1) < 0)
        return NULL;
    for (;;) {
        long deadline = atomic_load(&l->deadline_ms);
        if (deadline && (now_ms() > deadline || outstanding(l) == 0))
            break;
        if (!l->conn) {
            wr_nodes_next(&l->nodes);
            if (connect_any(l, 0) < 0)
                break;
        }
        if (!atomic_load(&l->stop_sending)) {
            long due = (now_ms() - start) * l->rate / 1000;
            while (l->conn && l->next_id < due && l->next_id < MAX_REQUESTS && l->pending < WINDOW)
                publish_one(l);
        }
        if (l->conn)
            poll_once(l);
    }
    if (l->conn) {
        amqp_queue_delete(l->conn, CHANNEL, amqp_cstring_bytes(l->reply_queue), 0, 0);
        wr_amqp_close(l->conn);
        l->conn = NULL;
    }
    return NULL;
}

wr_load *wr_load_start(char *const *uris, size_t nuris, const char *queue, const char *reply_queue,
                       int rate, char *err, size_t errlen)
{
    wr_load *l = calloc(1, sizeof *l);

    if (!l) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    l->uris = uris;
    l->nuris = nuris;
    l->queue = strdup(queue);
    l->reply_queue = strdup(reply_queue);
    l->rate = rate;
    l->logf = open_memstream(&l->log, &l->loglen);
    wr_nodes_init(&l->nodes, uris, nuris, 0);
    if (pthread_create(&l->thread, NULL, run, l)) {
        snprintf(err, errlen, "cannot start the load thread");
        fclose(l->logf);
        free(l->log);
        free(l->queue);
        free(l->reply_queue);
        free(l);
        return NULL;
    }
    return l;
}

long wr_load_answered(wr_load *l)
{
    return atomic_load(&l->answered);
}

long wr_load_replies(wr_load *l)
{
    return atomic_load(&l->replies);
}

void wr_load_finish(wr_load *l, int drain_ms, wr_load_report *report, char **log)
{
    atomic_store(&l->stop_sending, 1);
    atomic_store(&l->deadline_ms, now_ms() + drain_ms);
    pthread_join(l->thread, NULL);

    for (long id = 0; id < l->next_id; id++) {
        if (l->state[id] == ST_SENT && l->answers[id])
            l->r.answered++;
        else if (l->state[id] == ST_SENT)
            l->r.lost++;
        else if (l->state[id] != ST_SENT && l->answers[id])
            l->r.answered_unconfirmed++;
    }
    /* Still pending when we gave up: not confirmed either. */
    l->r.unconfirmed += l->pending;
    *report = l->r;
    fclose(l->logf);
    if (log)
        *log = l->log;
    else
        free(l->log);
    free(l->tag_ids);
    free(l->queue);
    free(l->reply_queue);
    free(l);
}
