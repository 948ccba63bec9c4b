/*
 * The load of warren-bench: CONNECTIONS threads, each with one client
 * connection (client/rpc_client.c, as a tutorial-style caller), its own
 * reply queue and its own window of WINDOW calls in flight.
 *
 * Why a slot per call in flight instead of an array per call: with
 * --duration the number of calls is not known beforehand, and a window
 * bounds what must be remembered.  A call's correlation_id is
 * "SEQ.SLOT": SEQ numbers the calls of the connection (and is the
 * JSON-RPC id, or the amqpbus qid), SLOT says where it waits.  So a reply
 * leads straight to its slot, and a reply whose slot holds another call
 * answers one already answered (duplicated) or none we sent (wrong).
 *
 * Each connection is a tutorial-style caller, written here on rabbitmq-c
 * rather than with client/rpc_client.c: the same properties on every
 * request (content type, delivery mode, correlation_id, reply_to, the
 * mandatory flag), an exclusive server-named reply queue or direct
 * reply-to consumed with no-ack.  Why not rpc_client: its waits are
 * rabbitmq-c's, which round the poll timeout down to whole milliseconds
 * and then spin on poll(0) through the rest of every timed wait, which
 * with --rate is most of a core taken from the server it measures; and it
 * copies every reply.  Here the thread sleeps in ppoll() on the socket
 * with a nanosecond timeout, and replies are read in place.
 *
 * What is counted: replies that arrive in the measured period, from the
 * end of the warm-up to the end of sending (--duration) or to the last
 * reply (-n).  Every reply, counted or not, is checked; calls unanswered
 * when the -t deadline strikes are lost.
 */
#include "bench/load.h"

#include <amqp.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/amqp_conn.h"
#include "common/exitcodes.h"
#include "common/secret.h"

#define CHANNEL 1
#define CONNECT_TIMEOUT_S 5
#define DIRECT_REPLY_TO "amq.rabbitmq.reply-to"

#define SHOW_PROBLEMS 5 /* bad replies shown on stderr, per connection */

struct slot {
    long seq; /* the call waiting here, -1: free */
    int64_t sent_ns;
    int mix;
};

/* A growing array of latencies. */
struct lats {
    int64_t *v;
    long n, cap;
};

/* One connection's share of the run; touched by its thread only. */
struct conn {
    struct wr_bench_load *l;
    int index;
    amqp_connection_state_t amqp;
    int fd;
    amqp_bytes_t reply_to; /* the reply queue's name (owned), or direct reply-to */
    struct slot *slots;
    long *free_slots, nfree;
    long quota; /* -n: calls this connection makes; 0: until t_stop */
    long sent, answered, in_flight;
    long wrong, duplicated, errors;
    struct lats main, mix;
    int64_t last_counted_ns;
    int timed_out, failed;
    int running; /* its thread was started */
    int shown;
    char *body;                    /* the request being written */
    amqp_basic_properties_t props; /* of every request; correlation_id set per call */
    char err[512];
};

/* Times shared by the threads, fixed before they start. */
static int64_t start_ns, t0_ns, t_stop_ns, deadline_ns, interval_ns;

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int lats_add(struct lats *a, int64_t v)
{
    if (a->n == a->cap) {
        long cap = a->cap ? a->cap * 2 : 4096;
        int64_t *p = realloc(a->v, (size_t)cap * sizeof *p);

        if (p == NULL)
            return -1;
        a->v = p;
        a->cap = cap;
    }
    a->v[a->n++] = v;
    return 0;
}

/* Is call SEQ of the connection a mixed one?  Exactly PERMILLE of every
 * 1000 calls, spread evenly. */
static int is_mix(const struct wr_bench_load *l, long seq)
{
    return l->mix_permille > 0 &&
           ((seq + 1) * l->mix_permille) / 1000 > (seq * l->mix_permille) / 1000;
}

/* Publish the connection's next call.  0, or -1 with C->err. */
static int publish_next(struct conn *c)
{
    const struct wr_bench_load *l = c->l;
    long seq = c->sent, s = c->free_slots[--c->nfree];
    int mix = is_mix(l, seq);
    const struct wr_bench_request *rq = mix ? &l->mix : &l->main;
    char corr[48], *b = c->body;
    size_t len;
    int n = 0, st;

    snprintf(corr, sizeof corr, "%ld.%ld", seq, s);
    memcpy(b, rq->pre, rq->pre_len);
    len = rq->pre_len;
    if (rq->with_id) {
        n = snprintf(b + len, 24, "%ld", seq);
        len += (size_t)n;
    }
    memcpy(b + len, rq->post, rq->post_len);
    len += rq->post_len;

    c->slots[s] = (struct slot){.seq = seq, .sent_ns = now_ns(), .mix = mix};
    c->props.correlation_id = amqp_cstring_bytes(corr);
    st = amqp_basic_publish(c->amqp, CHANNEL, amqp_empty_bytes, amqp_cstring_bytes(l->queue), 1, 0,
                            &c->props, (amqp_bytes_t){.len = len, .bytes = b});
    if (st != AMQP_STATUS_OK) {
        snprintf(c->err, sizeof c->err, "basic.publish: %s", amqp_error_string2(st));
        return -1;
    }
    c->sent++;
    c->in_flight++;
    return 0;
}

/* The header-free parse of a correlation id "SEQ.SLOT".  1, or 0 when
 * CORR is not of that form. */
static int parse_corr(const char *corr, long *seq, long *slot)
{
    char *end;

    if (corr == NULL || corr[0] < '0' || corr[0] > '9')
        return 0;
    errno = 0;
    *seq = strtol(corr, &end, 10);
    if (errno != 0 || *end != '.' || end[1] < '0' || end[1] > '9')
        return 0;
    *slot = strtol(end + 1, &end, 10);
    return errno == 0 && *end == '\0';
}

/* A reply as read, in place in rabbitmq-c's buffers. */
struct reply {
    const char *body;
    size_t len;
    const char *correlation_id; /* NULL when absent or unusable */
    int error_header;           /* x-error-code or x-error-message present */
};

static void show(struct conn *c, const char *what, const struct reply *r)
{
    if (c->shown++ < SHOW_PROBLEMS)
        fprintf(stderr, "warren-bench: connection %d: %s (correlation_id %s): %.*s\n", c->index,
                what, r->correlation_id ? r->correlation_id : "none",
                (int)(r->len < 200 ? r->len : 200), r->body);
}

/*
 * The fast check of a reply whose expected result is large (--payload
 * 65536): parsing 64 KiB of JSON costs jansson about a millisecond, which
 * on two shared cores would take more from the server than the reply
 * itself.  If the reply holds the expected result's text byte for byte
 * (as "result":TEXT in JSON-RPC, as the whole body otherwise), what is
 * left around it is parsed with TEXT replaced by 0 and checked as usual.
 * Returns 0 or 2 as check_reply does, or -1: no verdict (the text is not
 * there as such: maybe written another way), parse it whole.
 */
static int check_fast(const struct conn *c, long seq, const struct wr_bench_request *rq,
                      const struct reply *r)
{
    static const char key[] = "\"result\":";
    const size_t klen = sizeof key - 1, tlen = rq->expect_text_len;
    char rest[512];
    const char *p, *end = r->body + r->len;
    json_t *body, *result, *id;
    size_t before, after;
    int bad;

    if (c->l->format != WR_BENCH_JSONRPC)
        return r->len == tlen && memcmp(r->body, rq->expect_text, tlen) == 0 ? 0 : -1;
    for (p = r->body; (p = memmem(p, (size_t)(end - p), key, klen)) != NULL; p += klen)
        if ((size_t)(end - p) >= klen + tlen && memcmp(p + klen, rq->expect_text, tlen) == 0)
            break;
    if (p == NULL || (p > r->body && p[-1] == '\\'))
        return -1;
    before = (size_t)(p - r->body) + klen;
    after = r->len - before - tlen;
    if (before + 1 + after >= sizeof rest)
        return -1;
    memcpy(rest, r->body, before);
    rest[before] = '0';
    memcpy(rest + before + 1, p + klen + tlen, after);
    body = json_loadb(rest, before + 1 + after, 0, NULL);
    result = json_object_get(body, "result");
    id = json_object_get(body, "id");
    bad = json_is_integer(result) && json_integer_value(result) == 0 &&
                  json_object_get(body, "error") == NULL && json_is_integer(id) &&
                  json_integer_value(id) == seq
              ? 0
              : -1;
    json_decref(body);
    return bad;
}

/*
 * Does reply R answer call SEQ correctly?  0 yes, 1 an error reply, 2 a
 * wrong one (another id, another value, not what the format replies).
 */
static int check_reply(const struct conn *c, long seq, int mix, const struct reply *r)
{
    const struct wr_bench_load *l = c->l;
    const struct wr_bench_request *rq = mix ? &l->mix : &l->main;
    const json_t *expect = rq->expect;
    json_t *body, *result;
    int bad = 0;

    if (r->error_header)
        return 1; /* raw and amqpbus errors say so in headers */
    if (rq->expect_text != NULL && (bad = check_fast(c, seq, rq, r)) >= 0)
        return bad;
    bad = 0;
    body = json_loadb(r->body, r->len, JSON_DECODE_ANY, NULL);
    if (l->format == WR_BENCH_JSONRPC) {
        json_t *id = json_object_get(body, "id");

        result = json_object_get(body, "result");
        if (result == NULL || json_object_get(body, "error") != NULL)
            bad = 1;
        else if (!json_is_integer(id) || json_integer_value(id) != seq)
            bad = 2;
        else if (expect != NULL && !json_equal(result, (json_t *)expect))
            bad = 2;
    } else {
        /* The result is the whole body: JSON text, or a string result as
         * its bare text (raw). */
        if (body == NULL)
            body = json_stringn(r->body, r->len);
        if (json_is_object(body) && json_object_get(body, "error") != NULL &&
            (expect == NULL || !json_equal(body, (json_t *)expect)))
            bad = 1;
        else if (expect != NULL && !json_equal(body, (json_t *)expect))
            bad = 2;
    }
    json_decref(body);
    return bad;
}

/* Account for one reply, arrived AT. */
static int take_reply(struct conn *c, const struct reply *r, int64_t at)
{
    long seq, s;
    struct slot *slot;
    int bad;

    if (!parse_corr(r->correlation_id, &seq, &s)) {
        c->wrong++;
        show(c, "reply to no call of ours", r);
        return 0;
    }
    if (s < 0 || s >= c->l->window || c->slots[s].seq != seq) {
        if (seq >= 0 && seq < c->sent) {
            c->duplicated++;
            show(c, "second reply to a call", r);
        } else {
            c->wrong++;
            show(c, "reply to no call of ours", r);
        }
        return 0;
    }
    slot = &c->slots[s];
    bad = check_reply(c, seq, slot->mix, r);
    if (bad == 1) {
        c->errors++;
        show(c, "error reply", r);
    } else if (bad == 2) {
        c->wrong++;
        show(c, "wrong reply", r);
    }
    if (at >= t0_ns && at <= t_stop_ns) {
        if (lats_add(slot->mix ? &c->mix : &c->main, at - slot->sent_ns) < 0) {
            snprintf(c->err, sizeof c->err, "out of memory for latencies");
            return -1;
        }
        c->last_counted_ns = at;
    }
    slot->seq = -1;
    c->free_slots[c->nfree++] = s;
    c->in_flight--;
    c->answered++;
    return 0;
}

/* --- The connection ------------------------------------------------------ */

/* C->err from a failed rabbitmq-c reply R.  -1. */
static int fail_rpc(struct conn *c, amqp_rpc_reply_t r, const char *what)
{
    wr_amqp_check(r, what, c->err, sizeof c->err);
    return -1;
}

/*
 * The next frame is not a delivery (amqp_consume_message put it back):
 * read it.  0 when harmless, -1 with C->err when it ends the run (the
 * channel or connection closed, the reply consumer cancelled, a request
 * came back unroutable: no server consumes QUEUE).
 */
static int other_frame(struct conn *c)
{
    amqp_frame_t f;
    int st = amqp_simple_wait_frame(c->amqp, &f);

    if (st != AMQP_STATUS_OK) {
        snprintf(c->err, sizeof c->err, "reading from the broker: %s", amqp_error_string2(st));
        return -1;
    }
    if (f.frame_type != AMQP_FRAME_METHOD)
        return 0;
    switch (f.payload.method.id) {
    case AMQP_CHANNEL_CLOSE_METHOD: {
        const amqp_channel_close_t *m = f.payload.method.decoded;
        snprintf(c->err, sizeof c->err, "broker closed the channel: %u %.*s", m->reply_code,
                 (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        return -1;
    }
    case AMQP_CONNECTION_CLOSE_METHOD: {
        const amqp_connection_close_t *m = f.payload.method.decoded;
        snprintf(c->err, sizeof c->err, "broker closed the connection: %u %.*s", m->reply_code,
                 (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        return -1;
    }
    case AMQP_BASIC_CANCEL_METHOD:
        snprintf(c->err, sizeof c->err, "broker cancelled the reply consumer");
        return -1;
    case AMQP_BASIC_RETURN_METHOD: {
        const amqp_basic_return_t *m = f.payload.method.decoded;
        amqp_message_t msg;
        amqp_rpc_reply_t r;

        snprintf(c->err, sizeof c->err,
                 "broker returned the message: %u %.*s (exchange '', routing key '%.*s')",
                 m->reply_code, (int)m->reply_text.len, (const char *)m->reply_text.bytes,
                 (int)m->routing_key.len, (const char *)m->routing_key.bytes);
        r = amqp_read_message(c->amqp, f.channel, &msg, 0);
        if (r.reply_type == AMQP_RESPONSE_NORMAL)
            amqp_destroy_message(&msg);
        return -1;
    }
    default:
        return 0;
    }
}

/*
 * Wait until WAKE (CLOCK_MONOTONIC ns) for the next reply.  1 with *ENV
 * (the caller destroys it), 0 at WAKE, -1 with C->err.  Sleeps in ppoll
 * on the socket unless rabbitmq-c holds data already; over TLS, whose
 * buffered records the socket does not show, rabbitmq-c's own wait.
 */
static int next_reply(struct conn *c, int64_t wake, amqp_envelope_t *env)
{
    for (;;) {
        struct timeval tv = {0, 0};
        amqp_rpc_reply_t r;
        int64_t left = wake - now_ns();

        if (c->fd < 0) {
            left = left > 0 ? left : 0;
            tv.tv_sec = left / 1000000000;
            tv.tv_usec = (left % 1000000000) / 1000;
        } else if (!amqp_frames_enqueued(c->amqp) && !amqp_data_in_buffer(c->amqp)) {
            struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
            struct timespec ts;
            int n;

            if (left <= 0)
                return 0;
            ts.tv_sec = left / 1000000000;
            ts.tv_nsec = left % 1000000000;
            n = ppoll(&pfd, 1, &ts, NULL);
            if (n == 0)
                return 0;
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                snprintf(c->err, sizeof c->err, "ppoll: %s", strerror(errno));
                return -1;
            }
        }
        amqp_maybe_release_buffers(c->amqp);
        r = amqp_consume_message(c->amqp, env, &tv, 0);
        if (r.reply_type == AMQP_RESPONSE_NORMAL)
            return 1;
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_TIMEOUT) {
            if (c->fd < 0)
                return 0;
            continue; /* a partial frame: wait for the rest */
        }
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
            if (other_frame(c) < 0)
                return -1;
            continue;
        }
        return fail_rpc(c, r, "waiting for a reply");
    }
}

/* Does TABLE hold KEY? */
static int has_header(const amqp_table_t *t, const char *key)
{
    size_t n = strlen(key);

    for (int i = 0; i < t->num_entries; i++)
        if (t->entries[i].key.len == n && memcmp(t->entries[i].key.bytes, key, n) == 0)
            return 1;
    return 0;
}

/* The reply ENV holds, as take_reply reads it; CORR is its buffer for the
 * correlation id. */
static struct reply view(const amqp_envelope_t *env, char *corr, size_t corr_size)
{
    const amqp_basic_properties_t *p = &env->message.properties;
    struct reply r = {.body = env->message.body.bytes, .len = env->message.body.len};

    if (r.body == NULL)
        r.body = "";
    if ((p->_flags & AMQP_BASIC_CORRELATION_ID_FLAG) && p->correlation_id.len < corr_size) {
        memcpy(corr, p->correlation_id.bytes, p->correlation_id.len);
        corr[p->correlation_id.len] = '\0';
        r.correlation_id = corr;
    }
    if (p->_flags & AMQP_BASIC_HEADERS_FLAG)
        r.error_header =
            has_header(&p->headers, "x-error-code") || has_header(&p->headers, "x-error-message");
    return r;
}

/* Connect as a tutorial-style caller: a reply queue (or direct reply-to)
 * consumed with no-ack, the request properties fixed once.  0 or -1 with
 * C->err. */
static int caller_connect(struct conn *c)
{
    const struct wr_bench_load *l = c->l;
    const char *pw = getenv(WR_SECRET_PASSWORD_ENV);
    wr_amqp_options opt = {.connect_timeout = CONNECT_TIMEOUT_S,
                           .name = "warren-bench",
                           .password = pw && *pw ? pw : NULL,
                           .ca_file = getenv("WARREN_CACERT"),
                           .cert_file = getenv("WARREN_CERT"),
                           .key_file = getenv("WARREN_KEY")};

    c->amqp = wr_amqp_open(l->uri, &opt, NULL, c->err, sizeof c->err);
    if (c->amqp == NULL)
        return -1;
    c->fd = strncmp(l->uri, "amqps:", 6) == 0 ? -1 : amqp_get_sockfd(c->amqp);
    if (l->direct) {
        c->reply_to = amqp_bytes_malloc_dup(amqp_cstring_bytes(DIRECT_REPLY_TO));
    } else {
        amqp_queue_declare_ok_t *ok =
            amqp_queue_declare(c->amqp, CHANNEL, amqp_empty_bytes, 0, 0, 1, 1, amqp_empty_table);
        amqp_rpc_reply_t r = amqp_get_rpc_reply(c->amqp);

        if (r.reply_type != AMQP_RESPONSE_NORMAL)
            return fail_rpc(c, r, "queue.declare (reply queue)");
        c->reply_to = amqp_bytes_malloc_dup(ok->queue);
    }
    if (c->reply_to.bytes == NULL) {
        snprintf(c->err, sizeof c->err, "out of memory");
        return -1;
    }
    /* No-ack: a reply is worth nothing once this connection is gone, and
     * direct reply-to requires it. */
    amqp_basic_consume(c->amqp, CHANNEL, c->reply_to, amqp_empty_bytes, 0, 1, 0, amqp_empty_table);
    if (amqp_get_rpc_reply(c->amqp).reply_type != AMQP_RESPONSE_NORMAL)
        return fail_rpc(c, amqp_get_rpc_reply(c->amqp), "basic.consume (reply queue)");
    amqp_maybe_release_buffers(c->amqp);

    c->props._flags =
        AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG | AMQP_BASIC_REPLY_TO_FLAG;
    c->props.delivery_mode = l->persistent ? 2 : 1;
    c->props.reply_to = c->reply_to;
    if (l->format != WR_BENCH_RAW) {
        c->props._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
        c->props.content_type = amqp_cstring_bytes("application/json");
    }
    return 0;
}

static void caller_close(struct conn *c)
{
    if (c->amqp != NULL) {
        if (c->failed)
            amqp_destroy_connection(c->amqp); /* no polite close on a broken one */
        else
            wr_amqp_close(c->amqp);
    }
    amqp_bytes_free(c->reply_to);
}

/* --- The load ------------------------------------------------------------ */

static int still_sending(const struct conn *c, int64_t now)
{
    return c->quota > 0 ? c->sent < c->quota : now < t_stop_ns;
}

/*
 * One connection's loop: keep the window full (at the paced rate with
 * --rate) while sending, then wait for what is outstanding, until the
 * deadline.
 */
static void *conn_main(void *arg)
{
    struct conn *c = arg;
    const struct wr_bench_load *l = c->l;
    int64_t next_send = start_ns;

    for (;;) {
        int64_t now = now_ns(), wake;
        amqp_envelope_t env;
        struct reply reply;
        char corr[48];
        int sending = still_sending(c, now), rc;

        while (sending && c->in_flight < l->window && (interval_ns == 0 || now >= next_send)) {
            if (publish_next(c) < 0) {
                c->failed = WR_EXIT_UNAVAILABLE;
                return NULL;
            }
            next_send += interval_ns;
            now = now_ns();
            sending = still_sending(c, now);
        }
        if (!sending && c->in_flight == 0)
            break;
        if (now >= deadline_ns) {
            c->timed_out = 1;
            break;
        }
        wake = deadline_ns;
        if (sending && c->quota == 0 && t_stop_ns < wake)
            wake = t_stop_ns;
        if (sending && interval_ns > 0 && c->in_flight < l->window && next_send < wake)
            wake = next_send;
        rc = next_reply(c, wake, &env);
        if (rc < 0) {
            c->failed = WR_EXIT_UNAVAILABLE;
            return NULL;
        }
        if (rc == 0)
            continue;
        reply = view(&env, corr, sizeof corr);
        rc = take_reply(c, &reply, now_ns());
        amqp_destroy_envelope(&env);
        if (rc < 0) {
            c->failed = WR_EXIT_SOFTWARE;
            return NULL;
        }
    }
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/* Concatenate the connections' latencies of one kind, sorted. */
static int64_t *merge(struct conn *cs, long n, int mix, long *count)
{
    long total = 0, k = 0;
    int64_t *all;

    for (long i = 0; i < n; i++)
        total += mix ? cs[i].mix.n : cs[i].main.n;
    all = malloc((size_t)(total ? total : 1) * sizeof *all);
    if (all == NULL)
        return NULL;
    for (long i = 0; i < n; i++) {
        struct lats *a = mix ? &cs[i].mix : &cs[i].main;

        if (a->n)
            memcpy(all + k, a->v, (size_t)a->n * sizeof *all);
        k += a->n;
    }
    qsort(all, (size_t)total, sizeof *all, cmp_i64);
    *count = total;
    return all;
}

static size_t body_room(const struct wr_bench_request *r)
{
    return r->pre_len + 24 + r->post_len;
}

/* Set up connection C: its slots, its body buffer, its client. */
static int conn_open(struct conn *c)
{
    const struct wr_bench_load *l = c->l;
    size_t room = body_room(&l->main);

    if (l->mix_permille > 0 && body_room(&l->mix) > room)
        room = body_room(&l->mix);
    c->slots = malloc((size_t)l->window * sizeof *c->slots);
    c->free_slots = malloc((size_t)l->window * sizeof *c->free_slots);
    c->body = malloc(room);
    if (c->slots == NULL || c->free_slots == NULL || c->body == NULL) {
        fprintf(stderr, "warren-bench: out of memory\n");
        return WR_EXIT_SOFTWARE;
    }
    for (long s = 0; s < l->window; s++) {
        c->slots[s].seq = -1;
        c->free_slots[s] = l->window - 1 - s; /* slot 0 is used first */
    }
    c->nfree = l->window;
    if (caller_connect(c) < 0) {
        fprintf(stderr, "warren-bench: connection %d: %s\n", c->index, c->err);
        c->failed = WR_EXIT_UNAVAILABLE;
        return WR_EXIT_UNAVAILABLE;
    }
    return 0;
}

static void conn_close(struct conn *c)
{
    caller_close(c);
    free(c->slots);
    free(c->free_slots);
    free(c->body);
    free(c->main.v);
    free(c->mix.v);
}

int wr_bench_load_run(struct wr_bench_load *l)
{
    struct conn *cs = calloc((size_t)l->connections, sizeof *cs);
    pthread_t *tids = calloc((size_t)l->connections, sizeof *tids);
    int rc = 0;

    if (cs == NULL || tids == NULL) {
        free(cs);
        free(tids);
        fprintf(stderr, "warren-bench: out of memory\n");
        return WR_EXIT_SOFTWARE;
    }
    for (long i = 0; i < l->connections && rc == 0; i++) {
        cs[i].l = l;
        cs[i].index = (int)i;
        if (l->calls > 0)
            cs[i].quota = l->calls / l->connections + (i < l->calls % l->connections);
        rc = conn_open(&cs[i]);
    }
    if (rc != 0)
        goto out;

    /* The clock starts once every connection is up. */
    start_ns = now_ns();
    t0_ns = start_ns + (int64_t)(l->warmup_s * 1e9);
    t_stop_ns = l->calls > 0 ? INT64_MAX : start_ns + (int64_t)(l->duration_s * 1e9);
    deadline_ns = start_ns + (int64_t)(l->timeout_s * 1e9);
    interval_ns = l->rate > 0 ? (int64_t)(1e9 * (double)l->connections / l->rate) : 0;
    for (long i = 0; i < l->connections; i++) {
        if (cs[i].quota == 0 && l->calls > 0)
            continue; /* fewer calls than connections */
        if (pthread_create(&tids[i], NULL, conn_main, &cs[i]) != 0) {
            fprintf(stderr, "warren-bench: cannot start a thread\n");
            rc = WR_EXIT_SOFTWARE;
            break;
        }
        cs[i].running = 1;
    }
    for (long i = 0; i < l->connections; i++)
        if (cs[i].running)
            pthread_join(tids[i], NULL);

    {
        int64_t end = 0;

        for (long i = 0; i < l->connections; i++) {
            struct conn *c = &cs[i];

            if (c->failed && rc == 0) {
                fprintf(stderr, "warren-bench: connection %d: %s\n", c->index, c->err);
                rc = c->failed;
            }
            l->sent += c->sent;
            l->answered += c->answered;
            l->lost += c->in_flight;
            l->wrong += c->wrong;
            l->duplicated += c->duplicated;
            l->errors += c->errors;
            l->timed_out |= c->timed_out;
            if (c->last_counted_ns > end)
                end = c->last_counted_ns;
        }
        if (l->calls == 0)
            end = t_stop_ns;
        l->seconds = end > t0_ns ? (double)(end - t0_ns) / 1e9 : 0.0;
    }
    l->lat_ns = merge(cs, l->connections, 0, &l->counted);
    l->mix_lat_ns = merge(cs, l->connections, 1, &l->mix_counted);
    if (l->lat_ns == NULL || l->mix_lat_ns == NULL) {
        fprintf(stderr, "warren-bench: out of memory\n");
        rc = WR_EXIT_SOFTWARE;
    }
out:
    for (long i = 0; i < l->connections; i++)
        conn_close(&cs[i]);
    free(cs);
    free(tids);
    return rc;
}

void wr_bench_load_free(struct wr_bench_load *l)
{
    free(l->lat_ns);
    free(l->mix_lat_ns);
    l->lat_ns = l->mix_lat_ns = NULL;
}
