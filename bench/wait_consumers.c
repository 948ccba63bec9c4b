/*
 * warren-bench --wait-consumers N -q QUEUE: how long a server takes from
 * its start to N consumers on QUEUE.  The benchmark script takes the
 * CLOCK_REALTIME nanoseconds just before it starts warren, passes them as
 * --since-ns, and reads "warren started -> every worker consuming" from
 * the line this prints.
 *
 * Why a passive queue.declare every 5 ms: it is the one cheap AMQP call
 * that reports a queue's consumer count (the management API is not always
 * there).  The queue may not exist yet: the broker then closes the channel
 * with 404, which we acknowledge before opening the channel again.
 *
 * warren-bench --delete-queues Q...: the benchmark script's cleanup after
 * each run, over AMQP: `rabbitmqctl delete_queue` starts an Erlang VM each
 * time (0.7 s, most of a core, between runs of 2 s).
 */
#include <amqp.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/load.h"
#include "common/amqp_conn.h"
#include "common/exitcodes.h"
#include "common/secret.h"

#define CHANNEL 1
#define POLL_NS 5000000 /* 5 ms */
#define CONNECT_TIMEOUT_S 5
#define EXIT_TIMED_OUT 2

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The consumer count of QUEUE, or -1 when there is no such queue (the
 * channel is reopened then), or -2 with ERR when the connection failed. */
static long consumers(amqp_connection_state_t conn, const char *queue, char *err, size_t errlen)
{
    amqp_queue_declare_ok_t *ok;
    amqp_rpc_reply_t r;

    ok = amqp_queue_declare(conn, CHANNEL, amqp_cstring_bytes(queue), 1, 0, 0, 0, amqp_empty_table);
    r = amqp_get_rpc_reply(conn);
    amqp_maybe_release_buffers(conn);
    if (r.reply_type == AMQP_RESPONSE_NORMAL && ok != NULL)
        return (long)ok->consumer_count;
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD &&
        ((amqp_channel_close_t *)r.reply.decoded)->reply_code == AMQP_NOT_FOUND) {
        amqp_channel_close_ok_t close_ok = {0};

        if (amqp_send_method(conn, CHANNEL, AMQP_CHANNEL_CLOSE_OK_METHOD, &close_ok) < 0) {
            snprintf(err, errlen, "channel.close-ok: connection lost");
            return -2;
        }
        amqp_channel_open(conn, CHANNEL);
        if (wr_amqp_check(amqp_get_rpc_reply(conn), "channel.open", err, errlen) < 0)
            return -2;
        return -1;
    }
    wr_amqp_check(r, "queue.declare (passive)", err, errlen);
    return -2;
}

/* Options for the connections of both modes. */
static wr_amqp_options admin_options(const char *name)
{
    const char *pw = getenv(WR_SECRET_PASSWORD_ENV);

    return (wr_amqp_options){.connect_timeout = CONNECT_TIMEOUT_S,
                             .name = name,
                             .password = pw && *pw ? pw : NULL,
                             .ca_file = getenv("WARREN_CACERT"),
                             .cert_file = getenv("WARREN_CERT"),
                             .key_file = getenv("WARREN_KEY")};
}

int wr_bench_delete_queues(const char *uri, const char *const *names, int n)
{
    wr_amqp_options opt = admin_options("warren-bench --delete-queues");
    amqp_connection_state_t conn;
    char err[512];

    conn = wr_amqp_open(uri, &opt, NULL, err, sizeof err);
    if (conn == NULL) {
        fprintf(stderr, "warren-bench: %s\n", err);
        return WR_EXIT_UNAVAILABLE;
    }
    for (int i = 0; i < n; i++) {
        /* Unused or not, empty or not: the run is over. */
        amqp_queue_delete(conn, CHANNEL, amqp_cstring_bytes(names[i]), 0, 0);
        if (wr_amqp_check(amqp_get_rpc_reply(conn), "queue.delete", err, sizeof err) < 0) {
            fprintf(stderr, "warren-bench: %s: %s\n", names[i], err);
            amqp_destroy_connection(conn);
            return WR_EXIT_UNAVAILABLE;
        }
        amqp_maybe_release_buffers(conn);
    }
    wr_amqp_close(conn);
    return WR_EXIT_OK;
}

int wr_bench_wait_consumers(const char *uri, const char *queue, long n, double timeout_s,
                            int64_t start_ns, int64_t since_ns, int json)
{
    wr_amqp_options opt = admin_options("warren-bench --wait-consumers");
    int64_t deadline = start_ns + (int64_t)(timeout_s * 1e9);
    amqp_connection_state_t conn;
    char err[512];
    long seen = -1;

    conn = wr_amqp_open(uri, &opt, NULL, err, sizeof err);
    if (conn == NULL) {
        fprintf(stderr, "warren-bench: %s\n", err);
        return WR_EXIT_UNAVAILABLE;
    }
    for (;;) {
        struct timespec pause = {.tv_sec = 0, .tv_nsec = POLL_NS};

        seen = consumers(conn, queue, err, sizeof err);
        if (seen == -2) {
            fprintf(stderr, "warren-bench: %s\n", err);
            amqp_destroy_connection(conn);
            return WR_EXIT_UNAVAILABLE;
        }
        if (seen >= n)
            break;
        if (clock_ns(CLOCK_MONOTONIC) >= deadline) {
            fprintf(stderr, "warren-bench: %s: %s after %g s (waiting for %ld)\n", queue,
                    seen < 0 ? "no such queue" : "too few consumers", timeout_s, n);
            if (seen >= 0)
                fprintf(stderr, "warren-bench: %s: %ld consumer(s)\n", queue, seen);
            wr_amqp_close(conn);
            return EXIT_TIMED_OUT;
        }
        nanosleep(&pause, NULL);
    }
    {
        double ms = (double)(clock_ns(CLOCK_MONOTONIC) - start_ns) / 1e6;
        double since_ms = since_ns >= 0 ? (double)(clock_ns(CLOCK_REALTIME) - since_ns) / 1e6 : -1;

        if (json) {
            json_t *j = json_pack("{s:s, s:I, s:f}", "queue", queue, "consumers", (json_int_t)seen,
                                  "elapsed_ms", ms);
            char *text;

            if (j != NULL && since_ns >= 0)
                json_object_set_new(j, "since_ms", json_real(since_ms));
            text = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
            printf("%s\n", text ? text : "{}");
            free(text);
            json_decref(j);
        } else {
            printf("%s consumers=%ld elapsed_ms=%.3f", queue, seen, ms);
            if (since_ns >= 0)
                printf(" since_ms=%.3f", since_ms);
            printf("\n");
        }
    }
    wr_amqp_close(conn);
    return WR_EXIT_OK;
}
