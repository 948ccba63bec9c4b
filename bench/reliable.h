/*
 * warren-bench --reliable: the load for fault tests.
 *
 * Calls a caller can count on: persistent requests published with
 * publisher confirms (a call is "sent" once the broker confirmed it),
 * replies on a named durable reply queue that outlives a lost connection,
 * and reconnection after broker loss or a closed connection, re-publishing
 * only the calls never confirmed.  At the end it says what became of every
 * sent call: `sent N answered N lost N duplicated N`.
 */
#ifndef WR_BENCH_RELIABLE_H
#define WR_BENCH_RELIABLE_H

#include <jansson.h>
#include <stddef.h>

/* Exit status when a confirmed call was never answered. */
#define WR_BENCH_EXIT_LOST 3

struct wr_bench_reliable_opts {
    const char *uri;
    const char *queue;       /* request queue, on the default exchange */
    const char *method;      /* for the echo check */
    const char *label;       /* shown in the output */
    const char *reply_queue; /* NULL: warren-bench.reply.HOST.PID */
    const char *prefix;      /* the request text up to the id (borrowed) */
    size_t prefix_len;
    json_t *params;    /* borrowed: what echo must give back */
    long calls;        /* at most this many calls */
    long window;       /* calls in flight at once */
    double timeout_s;  /* the whole run, grace included */
    double grace_s;    /* after the last send, how long to wait for replies */
    double progress_s; /* 0: no progress lines; else one on stderr per period */
};

/*
 * Run the load until every call is answered, or until SIGINT/SIGTERM
 * (stop sending, wait up to the grace period for what is outstanding; a
 * second signal ends it at once), or the global timeout.  Prints the result
 * line on stdout.  Returns the exit status: 0 all answered correctly,
 * WR_BENCH_EXIT_LOST some sent call never answered, 1 error replies or
 * mismatches, 2 the global timeout struck, 69 the broker was unreachable
 * at the start.
 */
int wr_bench_reliable_run(const struct wr_bench_reliable_opts *o);

#endif
