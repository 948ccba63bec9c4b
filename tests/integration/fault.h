/*
 * What the fault tests share: warren-bench --reliable as the load (a child
 * process with its output in files), its progress while the test injects
 * faults, and its final count of sent / answered / lost / duplicated calls.
 */
#ifndef WR_TEST_FAULT_H
#define WR_TEST_FAULT_H

#include <sys/types.h>

#include "tests/integration/harness.h"

typedef struct wr_fault_bench {
    pid_t pid;
    char out[320]; /* its stdout: the result line */
    char err[320]; /* its stderr: progress, reconnections */
    long start_ms; /* when it was started (monotonic) */
} wr_fault_bench;

/* The final line of warren-bench --reliable, taken apart. */
typedef struct wr_fault_result {
    long sent, answered, lost, duplicated, caller_duplicated, reply_redelivered;
    long errors, mismatches, unsent, republished, reconnects;
    double wall_s, rate;
    int exit_code; /* warren-bench's exit status (128+N: killed by signal N) */
} wr_fault_result;

/* Start the load on W's queue: WINDOW calls in flight, echo, a progress
 * line every half second.  Fails the test if it does not start. */
void wr_fault_bench_start(wr_fault_bench *b, wr_test_warren *w, int window);

/* Calls answered so far, from its latest progress line (0 before the
 * first). */
long wr_fault_bench_answered(const wr_fault_bench *b);

/* Wait up to TIMEOUT_MS until at least N calls are answered: the load
 * flows.  1 if so, 0 if not. */
int wr_fault_bench_wait_answered(const wr_fault_bench *b, long n, int timeout_ms);

/*
 * Stop the load (SIGINT: no new calls, wait the grace period for the
 * rest), wait for warren-bench to exit (fails the test after 5 minutes),
 * and parse its result line (fails the test without one).
 */
wr_fault_result wr_fault_bench_finish(wr_fault_bench *b);

/* Print the figures of scenario NAME (FAULTS says what was done) on
 * stdout and append them to $WARREN_TEST_TMPDIR/fault-figures.txt, in the
 * form RELIABILITY.md quotes. */
void wr_fault_print(const char *name, const wr_fault_result *r, const char *faults);

/* Milliseconds on the monotonic clock. */
long wr_fault_now_ms(void);

/* Sleep MS milliseconds. */
void wr_fault_sleep_ms(long ms);

#endif
