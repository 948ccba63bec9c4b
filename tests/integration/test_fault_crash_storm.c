/*
 * Fault: requests that crash their worker (test.crash: SIGSEGV) mixed into
 * normal traffic.  Each one kills a worker per delivery until it has killed
 * max_attempts (3) of them; then every worker refuses it (-32603 reply,
 * rejected without requeue).  Ten of them arrive 1.5 s apart; meanwhile
 * warren-bench --reliable keeps 32 echo calls in flight: every one of them
 * must be answered, correctly, and the throughput before and during the
 * storm is reported.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/integration/fault.h"

#define WORKERS 4
#define CRASHERS 10
#define MAX_ATTEMPTS 3
#define CRASH_EVERY_MS 1500

/*
 * The storm: a test.crash request every CRASH_EVERY_MS, CRASHERS of them,
 * among the load; each must come back refused (-32603, "request refused:
 * it killed N workers") within two minutes.
 */
static void storm(wr_client *c, wr_test_warren *w)
{
    const char *req = "{\"jsonrpc\":\"2.0\",\"method\":\"test.crash\",\"id\":\"crash\"}";
    long next_ms = wr_fault_now_ms(), deadline = next_ms + 120000;
    int sent = 0, refused = 0;
    char err[512];

    while (refused < CRASHERS) {
        wr_client_reply r;
        long now = wr_fault_now_ms();
        int got;

        cr_assert(now < deadline, "only %d of %d crashers refused within 120 s:\n%s", refused,
                  CRASHERS, wr_test_log_read(w));
        if (sent < CRASHERS && now >= next_ms) {
            char corr[32];

            snprintf(corr, sizeof corr, "crash-%d", sent++);
            cr_assert_eq(
                wr_client_publish(c, "", w->queue, req, strlen(req), corr, 1, err, sizeof err), 0,
                "publish: %s", err);
            next_ms += CRASH_EVERY_MS;
        }
        got = wr_client_recv(c, 100, &r, err, sizeof err);
        cr_assert_neq(got, -1, "recv: %s", err);
        if (got == 0)
            continue;
        cr_assert(strstr(r.body, "\"code\":-32603") && strstr(r.body, "request refused: it killed"),
                  "%s: not refused: %s", r.correlation_id, r.body);
        refused++;
        wr_client_reply_free(&r);
    }
}

Test(fault, crashing_requests_among_normal_traffic, .timeout = 600)
{
    wr_test_warren w = {0};
    wr_fault_bench b;
    wr_fault_result r;
    wr_client *c;
    long t0, a0, t1, a1, t2, a2;
    int deaths;
    double before_rate, storm_rate;
    char faults[512];

    wr_test_warren_start(&w, WORKERS, NULL, 1);
    wr_fault_bench_start(&b, &w, 32);
    cr_assert(wr_fault_bench_wait_answered(&b, 500, 60000), "the load did not start flowing");
    t0 = wr_fault_now_ms();
    a0 = wr_fault_bench_answered(&b);
    wr_fault_sleep_ms(5000);
    t1 = wr_fault_now_ms();
    a1 = wr_fault_bench_answered(&b);

    c = wr_test_client(WR_CLIENT_REPLY_QUEUE);
    storm(c, &w);
    t2 = wr_fault_now_ms();
    a2 = wr_fault_bench_answered(&b);
    wr_client_close(c);
    {
        long before = wr_fault_bench_answered(&b);
        cr_assert(wr_fault_bench_wait_answered(&b, before + 500, 60000),
                  "calls stopped flowing after the storm");
    }
    r = wr_fault_bench_finish(&b);

    /* "killed by signal 11", or under ASan "exited with code 1": count what
     * the death lines name as the request running. */
    deaths = wr_test_log_count(&w, " while running test.crash ");
    before_rate = (double)(a1 - a0) * 1000.0 / (double)(t1 - t0);
    storm_rate = (double)(a2 - a1) * 1000.0 / (double)(t2 - t1);
    snprintf(faults, sizeof faults,
             "%d workers, %d test.crash requests (max_attempts %d): %d worker deaths, each "
             "crasher refused with -32603; echo calls/s %.0f before the storm, %.0f during it "
             "(%.1f s)",
             WORKERS, CRASHERS, MAX_ATTEMPTS, deaths, before_rate, storm_rate,
             (double)(t2 - t1) / 1000.0);
    wr_fault_print("crash_storm", &r, faults);

    cr_expect_geq(deaths, CRASHERS * MAX_ATTEMPTS, "only %d deaths", deaths);
    cr_expect_eq(wr_test_log_count(&w, "workers will refuse it"), CRASHERS);
    /* Refused means gone: nothing is left in the queue to crash again. */
    cr_expect_eq(wr_test_queue_stat(w.queue, "messages"), 0, "messages left in %s", w.queue);
    cr_expect_gt(r.answered, 1000);
    cr_expect_eq(r.lost, 0, "%ld confirmed calls never answered", r.lost);
    cr_expect_eq(r.errors, 0, "%ld error replies among the normal calls", r.errors);
    cr_expect_eq(r.mismatches, 0);
    cr_expect_eq(r.exit_code, 0, "warren-bench exit %d", r.exit_code);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}
