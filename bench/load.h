/*
 * warren-bench's load (everything but --reliable and --wait-consumers):
 * CONNECTIONS client connections, one thread each, each with its own reply
 * queue and its own window of calls in flight, every reply checked against
 * its request.  bench/warren-bench.c builds the requests and reports.
 */
#ifndef WR_BENCH_LOAD_H
#define WR_BENCH_LOAD_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* How the body of a call is written: PRE, then (when WITH_ID) the call's
 * number, then POST. */
struct wr_bench_request {
    const char *pre;
    size_t pre_len;
    const char *post;
    size_t post_len;
    int with_id;
    /* What a correct reply's result equals (borrowed); NULL: any result. */
    const json_t *expect;
    /* EXPECT as compact JSON text (borrowed), or NULL: for a large EXPECT,
     * a reply that carries exactly this text is checked without parsing
     * it whole (see bench/load.c). */
    const char *expect_text;
    size_t expect_text_len;
};

enum wr_bench_format { WR_BENCH_JSONRPC = 0, WR_BENCH_RAW, WR_BENCH_AMQPBUS };

struct wr_bench_load {
    /* Set by the caller; all borrowed. */
    const char *uri;
    const char *queue;
    int direct;     /* direct reply-to instead of a reply queue */
    int persistent; /* delivery_mode 2 */
    int format;     /* enum wr_bench_format: how replies are read */
    long connections;
    long window;       /* per connection */
    long calls;        /* in all; 0: run for DURATION_S instead */
    double duration_s; /* with calls == 0 */
    double warmup_s;   /* replies before this are not counted */
    double rate;       /* calls/s over all connections; 0: closed loop */
    double timeout_s;  /* the whole run */
    long mix_permille; /* that share of calls is MIX, the rest MAIN */
    struct wr_bench_request main, mix;

    /* Results, filled by wr_bench_load_run. */
    long sent, answered; /* all calls, counted or not */
    long counted;        /* main calls answered in the measured period */
    long mix_counted;    /* mix calls answered in it */
    int64_t *lat_ns;     /* latencies of the counted main calls, sorted */
    int64_t *mix_lat_ns; /* ... of the counted mix calls, sorted */
    double seconds;      /* length of the measured period */
    long wrong, duplicated, lost, errors;
    int timed_out;
};

/*
 * Connect, run the load, disconnect.  Returns 0 when it ran to its end
 * (the counts say how well), 69 when a connection failed (the reason is
 * on stderr), 70 out of memory.  Free the results with
 * wr_bench_load_free.
 */
int wr_bench_load_run(struct wr_bench_load *l);
void wr_bench_load_free(struct wr_bench_load *l);

/*
 * --wait-consumers: poll a passive queue.declare of QUEUE every 5 ms until
 * it has at least N consumers, then print how long that took (since
 * START_NS on CLOCK_MONOTONIC, and, when SINCE_NS >= 0, since that
 * CLOCK_REALTIME instant).  0 done, 2 timeout, 69 broker unreachable.
 */
int wr_bench_wait_consumers(const char *uri, const char *queue, long n, double timeout_s,
                            int64_t start_ns, int64_t since_ns, int json);

/*
 * --delete-queues: queue.delete each of the N NAMES (one that is gone
 * already counts as deleted).  0 done, 69 broker unreachable or a delete
 * refused.
 */
int wr_bench_delete_queues(const char *uri, const char *const *names, int n);

#endif
