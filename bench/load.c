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
 * What is counted: replies that arrive in the measured period, from the
 * end of the warm-up to the end of sending (--duration) or to the last
 * reply (-n).  Every reply, counted or not, is checked; calls unanswered
 * when the -t deadline strikes are lost.
 */
#include "bench/load.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/rpc_client.h"
#include "common/exitcodes.h"

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
    wr_client *client;
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
    char *body; /* the request being written */
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
    int n = 0;

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
    if (wr_client_publish(c->client, "", l->queue, b, len, corr, l->persistent, c->err,
                          sizeof c->err) < 0)
        return -1;
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

static void show(struct conn *c, const char *what, const wr_client_reply *r)
{
    if (c->shown++ < SHOW_PROBLEMS)
        fprintf(stderr, "warren-bench: connection %d: %s (correlation_id %s): %.200s\n", c->index,
                what, r->correlation_id ? r->correlation_id : "none", r->body);
}

/*
 * Does reply R answer call SEQ correctly?  0 yes, 1 an error reply, 2 a
 * wrong one (another id, another value, not what the format replies).
 */
static int check_reply(const struct conn *c, long seq, int mix, const wr_client_reply *r)
{
    const struct wr_bench_load *l = c->l;
    const json_t *expect = mix ? l->mix.expect : l->main.expect;
    json_t *body, *result;
    int bad = 0;

    if (r->has_error_code || r->error_message != NULL)
        return 1; /* raw and amqpbus errors say so in headers */
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
static int take_reply(struct conn *c, const wr_client_reply *r, int64_t at)
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
        wr_client_reply reply;
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
        rc = wr_client_recv(c->client, (int)((wake - now + 999999) / 1000000), &reply, c->err,
                            sizeof c->err);
        if (rc < 0) {
            c->failed = WR_EXIT_UNAVAILABLE;
            return NULL;
        }
        if (rc == 0)
            continue;
        rc = take_reply(c, &reply, now_ns());
        wr_client_reply_free(&reply);
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
    if (wr_client_connect(&c->client, l->uri,
                          l->direct ? WR_CLIENT_DIRECT_REPLY_TO : WR_CLIENT_REPLY_QUEUE, c->err,
                          sizeof c->err) < 0) {
        fprintf(stderr, "warren-bench: connection %d: %s\n", c->index, c->err);
        return WR_EXIT_UNAVAILABLE;
    }
    /* A request no queue takes (server not started, queue misspelt)
     * comes back and fails the run at once, not after the timeout. */
    wr_client_set_mandatory(c->client, 1);
    if (l->format == WR_BENCH_RAW)
        wr_client_set_content_type(c->client, NULL);
    return 0;
}

static void conn_close(struct conn *c)
{
    wr_client_close(c->client);
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
