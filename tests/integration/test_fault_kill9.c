/*
 * Fault: a random worker is killed with SIGKILL every 0.5 s for about 25 s
 * while warren-bench --reliable keeps 32 persistent, confirmed calls in
 * flight.  Every confirmed call must be answered: a killed worker's request
 * is unacked, so the broker redelivers it to another worker.  A worker
 * killed after publishing its reply but before acking gives the caller a
 * second reply (at-least-once): counted, allowed.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "tests/integration/fault.h"

#define WORKERS 4
#define LOAD_MS 25000
#define KILL_EVERY_MS 500

Test(fault, kill9_random_worker_every_half_second, .timeout = 600)
{
    wr_test_warren w = {0};
    wr_fault_bench b;
    wr_fault_result r;
    long end;
    int kills = 0;
    char faults[256];

    wr_test_warren_start(&w, WORKERS, NULL, 1);
    wr_fault_bench_start(&b, &w, 32);
    cr_assert(wr_fault_bench_wait_answered(&b, 500, 60000), "the load did not start flowing");
    srand((unsigned)getpid());
    end = wr_fault_now_ms() + LOAD_MS;
    while (wr_fault_now_ms() < end) {
        pid_t pids[WORKERS * 2];
        int n = wr_test_worker_pids(&w, pids, WORKERS * 2);

        if (n > 0 && kill(pids[rand() % n], SIGKILL) == 0)
            kills++;
        wr_fault_sleep_ms(KILL_EVERY_MS);
    }
    /* The pool comes back (replacements back off while they die young),
     * and answers again before the load stops. */
    cr_assert(wr_test_log_wait(&w, "killed by signal 9", kills, 20000),
              "%d kills but fewer death lines", kills);
    {
        long now = wr_fault_bench_answered(&b);
        cr_assert(wr_fault_bench_wait_answered(&b, now + 500, 60000),
                  "no calls answered after the kills:\n%s", wr_test_log_read(&w));
    }
    r = wr_fault_bench_finish(&b);
    snprintf(faults, sizeof faults, "%d workers, %d SIGKILLs (one every %.1f s)", WORKERS, kills,
             KILL_EVERY_MS / 1000.0);
    wr_fault_print("kill9", &r, faults);
    cr_expect_gt(kills, LOAD_MS / KILL_EVERY_MS / 2, "only %d kills", kills);
    cr_expect_gt(r.answered, 1000, "too little load to prove anything: %ld calls", r.answered);
    cr_expect_eq(r.lost, 0, "%ld confirmed calls never answered", r.lost);
    cr_expect_eq(r.errors, 0, "%ld error replies", r.errors);
    cr_expect_eq(r.mismatches, 0);
    cr_expect_eq(r.exit_code, 0, "warren-bench exit %d", r.exit_code);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}
