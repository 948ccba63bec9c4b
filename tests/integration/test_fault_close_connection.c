/*
 * Fault: the broker closes every warren worker's connection
 * (`rabbitmqctl close_connection`), six times, under load from
 * warren-bench --reliable; in the third and sixth rounds the load
 * generator's own connection goes too.  Workers reconnect and resume
 * without restarting; the bench re-publishes what was not confirmed.
 * Every confirmed call must be answered.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/integration/fault.h"

#define WORKERS 3
#define ROUNDS 6

/* Close every connection whose client properties contain WHO; how many. */
static int close_connections(const char *who)
{
    char args[512], *out, *save = NULL, *pid;
    int n = 0;

    snprintf(args, sizeof args,
             "list_connections -q --no-table-headers pid client_properties "
             "| grep '%s' | awk '{print $1}'",
             who);
    out = wr_test_broker_ctl(args);
    for (pid = strtok_r(out, "\n", &save); pid; pid = strtok_r(NULL, "\n", &save)) {
        snprintf(args, sizeof args, "close_connection '%s' 'warren fault test'", pid);
        free(wr_test_broker_ctl(args));
        n++;
    }
    free(out);
    return n;
}

static void wait_consumers(wr_test_warren *w, int round)
{
    long deadline = wr_fault_now_ms() + 60000;
    int n;

    wr_fault_sleep_ms(1000); /* the broker needs a moment to drop the old consumers */
    while ((n = wr_test_queue_stat(w->queue, "consumers")) != WORKERS &&
           wr_fault_now_ms() < deadline)
        wr_fault_sleep_ms(500);
    cr_assert_eq(n, WORKERS, "round %d: %d consumers, expected %d:\n%s", round, n, WORKERS,
                 wr_test_log_read(w));
}

Test(fault, close_every_worker_connection_under_load, .timeout = 600)
{
    wr_test_warren w = {0};
    wr_fault_bench b;
    wr_fault_result r;
    int closed = 0, bench_closed = 0;
    char faults[256];

    wr_test_warren_start(&w, WORKERS, NULL, 1);
    wr_fault_bench_start(&b, &w, 32);
    cr_assert(wr_fault_bench_wait_answered(&b, 500, 60000), "the load did not start flowing");
    for (int round = 1; round <= ROUNDS; round++) {
        long before = wr_fault_bench_answered(&b);
        int n = close_connections("warren worker");

        cr_assert_eq(n, WORKERS, "round %d: %d worker connections, expected %d", round, n, WORKERS);
        closed += n;
        if (round % 3 == 0)
            bench_closed += close_connections("warren bench");
        /* Every worker consumes again (the broker's count: a worker may
         * still be in its reconnect backoff), and calls flow again. */
        wait_consumers(&w, round);
        cr_assert(wr_fault_bench_wait_answered(&b, before + 1000, 60000),
                  "round %d: calls stopped flowing", round);
    }
    r = wr_fault_bench_finish(&b);
    snprintf(faults, sizeof faults,
             "%d rounds: %d worker connections and %d load-generator connections closed", ROUNDS,
             closed, bench_closed);
    wr_fault_print("close_connection", &r, faults);
    cr_expect_eq(wr_test_log_count(&w, " exited "), 0, "reconnecting must not cost a process");
    cr_expect_gt(r.answered, 1000);
    cr_expect_eq(r.lost, 0, "%ld confirmed calls never answered", r.lost);
    cr_expect_eq(r.errors, 0, "%ld error replies", r.errors);
    cr_expect_eq(r.mismatches, 0);
    cr_expect_eq(r.exit_code, 0, "warren-bench exit %d", r.exit_code);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}
