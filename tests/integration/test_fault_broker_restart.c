/*
 * Fault: the broker goes away under load and comes back, as an operator
 * restarts it: `rabbitmqctl stop_app` / `start_app` (3 s apart, the
 * issue's report), and a whole node restart (tests/broker.sh restart: the
 * node stops and starts again on the same ports with its state).  The
 * load, warren-bench --reliable, sends persistent requests with confirms
 * to the durable request queue and takes replies from a durable reply
 * queue; it reconnects and resumes, and so do the workers.
 *
 * Every confirmed call must be answered.  A reply published without
 * publisher confirms can be dropped by a broker that is shutting down
 * while the request's ack still goes through: that is a lost call, and
 * this test fails on it.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "tests/integration/fault.h"

#define WORKERS 3
#define WINDOW 64

/* Wait up to 90 s until every worker consumes from W's queue again (the
 * broker's count: a worker may still be in its reconnect backoff) and 1000
 * more calls are answered.  Fails the test otherwise. */
static void wait_recovered(wr_test_warren *w, wr_fault_bench *b, const char *when)
{
    long before = wr_fault_bench_answered(b), deadline = wr_fault_now_ms() + 90000;
    int n;

    while ((n = wr_test_queue_stat(w->queue, "consumers")) != WORKERS &&
           wr_fault_now_ms() < deadline)
        wr_fault_sleep_ms(500);
    cr_assert_eq(n, WORKERS, "%s: %d consumers on %s, expected %d:\n%s", when, n, w->queue, WORKERS,
                 wr_test_log_read(w));
    cr_assert(wr_fault_bench_wait_answered(b, before + 1000, 90000),
              "%s: calls are not flowing:\n%s", when, wr_test_log_read(w));
}

/* Make the broker go away and come back with RESTART, NROUNDS times, each
 * time once the pool and the load have recovered from the last. */
static void rounds(wr_test_warren *w, wr_fault_bench *b, int nrounds, void (*restart)(void))
{
    for (int round = 1; round <= nrounds; round++) {
        char when[32];

        snprintf(when, sizeof when, "before round %d", round);
        wait_recovered(w, b, when);
        restart();
    }
    wait_recovered(w, b, "after the last round");
}

static void stop_app_start_app(void)
{
    free(wr_test_broker_ctl("stop_app"));
    wr_fault_sleep_ms(3000);
    free(wr_test_broker_ctl("start_app"));
}

static void node_restart(void)
{
    char cmd[1024], *out = NULL, *err = NULL;
    int rc;

    snprintf(cmd, sizeof cmd, "'%s/tests/broker.sh' restart '%s'", getenv("WARREN_SOURCE_DIR"),
             getenv("WARREN_TEST_BROKER_DIR"));
    rc = wr_test_sh(cmd, &out, &err);
    cr_assert_eq(rc, 0, "%s failed: %s%s", cmd, out ? out : "", err ? err : "");
    free(out);
    free(err);
}

static void run(const char *name, int nrounds, void (*restart)(void), const char *what)
{
    wr_test_warren w = {0};
    wr_fault_bench b;
    wr_fault_result r;
    char faults[256];

    wr_test_warren_start(&w, WORKERS, NULL, 1);
    wr_fault_bench_start(&b, &w, WINDOW);
    rounds(&w, &b, nrounds, restart);
    r = wr_fault_bench_finish(&b);
    snprintf(faults, sizeof faults, "%d workers, %d rounds of %s", WORKERS, nrounds, what);
    wr_fault_print(name, &r, faults);
    cr_expect_geq(r.reconnects, nrounds, "the load generator reconnected %ld times", r.reconnects);
    cr_expect_eq(r.lost, 0, "%ld confirmed calls were never answered (acked, reply gone)", r.lost);
    cr_expect_eq(r.errors, 0, "%ld error replies", r.errors);
    cr_expect_eq(r.mismatches, 0);
    cr_expect_eq(r.exit_code, 0, "warren-bench exit %d", r.exit_code);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}

Test(fault, stop_app_start_app_under_load, .timeout = 900)
{
    run("broker_stop_app", 4, stop_app_start_app, "rabbitmqctl stop_app, 3 s, start_app");
}

Test(fault, node_restart_under_load, .timeout = 900)
{
    run("broker_restart", 3, node_restart, "node stop and start (tests/broker.sh restart)");
}
