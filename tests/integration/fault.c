/* The fault tests' load and figures; see fault.h. */
#include "tests/integration/fault.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FINISH_TIMEOUT_MS 300000 /* grace (90 s) plus a broker still coming back */

long wr_fault_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

void wr_fault_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

void wr_fault_bench_start(wr_fault_bench *b, wr_test_warren *w, int window)
{
    const char *bin = getenv("WARREN_BENCH_BIN");
    const char *dir = wr_test_warren_dir(w);
    char win[16];
    pid_t pid;

    cr_assert(bin && *bin, "WARREN_BENCH_BIN is not set: run the fault tests through ctest");
    memset(b, 0, sizeof *b);
    snprintf(b->out, sizeof b->out, "%s/bench.out", dir);
    snprintf(b->err, sizeof b->err, "%s/bench.err", dir);
    snprintf(win, sizeof win, "%d", window);
    pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int ofd = open(b->out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int efd = open(b->err, O_WRONLY | O_CREAT | O_TRUNC, 0644);

        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failed assertion takes it down */
        dup2(ofd, 1);
        dup2(efd, 2);
        /* -n only bounds the run: the test ends it with SIGINT. */
        execl(bin, bin, "--reliable", "-u", wr_test_broker_uri(), "-q", w->queue, "-n", "2000000",
              "-c", win, "--grace", "90", "-t", "900", "--progress", "0.5", "--label", w->queue,
              (char *)NULL);
        _exit(127);
    }
    b->pid = pid;
    b->start_ms = wr_fault_now_ms();
}

long wr_fault_bench_answered(const wr_fault_bench *b)
{
    char *text = wr_test_read_file(b->err), *p, *last = NULL;
    long n = 0;

    if (!text)
        return 0;
    for (p = text; (p = strstr(p, " answered=")); p++)
        last = p;
    if (last)
        n = strtol(last + strlen(" answered="), NULL, 10);
    free(text);
    return n;
}

int wr_fault_bench_wait_answered(const wr_fault_bench *b, long n, int timeout_ms)
{
    long deadline = wr_fault_now_ms() + timeout_ms;

    do {
        if (wr_fault_bench_answered(b) >= n)
            return 1;
        wr_fault_sleep_ms(100);
    } while (wr_fault_now_ms() < deadline);
    return 0;
}

/* The number after WORD (" sent ", ...) in LINE, or -1. */
static double field(const char *line, const char *word)
{
    const char *p = strstr(line, word);

    return p ? strtod(p + strlen(word), NULL) : -1;
}

wr_fault_result wr_fault_bench_finish(wr_fault_bench *b)
{
    wr_fault_result r;
    long deadline = wr_fault_now_ms() + FINISH_TIMEOUT_MS;
    int status = 0;
    char *out, *line;

    memset(&r, 0, sizeof r);
    kill(b->pid, SIGINT);
    for (;;) {
        pid_t got = waitpid(b->pid, &status, WNOHANG);

        if (got == b->pid)
            break;
        if (wr_fault_now_ms() > deadline) {
            kill(b->pid, SIGKILL);
            waitpid(b->pid, &status, 0);
            cr_assert_fail("warren-bench did not finish within %d s of SIGINT",
                           FINISH_TIMEOUT_MS / 1000);
        }
        wr_fault_sleep_ms(100);
    }
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    out = wr_test_read_file(b->out);
    line = out ? strstr(out, "sent ") : NULL;
    if (!line) {
        char *err = wr_test_read_file(b->err);

        cr_assert_fail("warren-bench (exit %d) printed no result; stderr:\n%s", r.exit_code,
                       err ? err : "(none)");
    }
    r.sent = (long)field(line, "sent ");
    r.answered = (long)field(line, " answered ");
    r.lost = (long)field(line, " lost ");
    r.duplicated = (long)field(line, " duplicated ");
    r.caller_duplicated = (long)field(line, " caller-duplicated ");
    r.reply_redelivered = (long)field(line, " reply-redelivered ");
    r.errors = (long)field(line, " errors ");
    r.mismatches = (long)field(line, " mismatches ");
    r.unsent = (long)field(line, " unsent ");
    r.republished = (long)field(line, " republished ");
    r.reconnects = (long)field(line, " reconnects ");
    r.wall_s = field(line, " wall ");
    r.rate = field(line, " rate ");
    cr_assert(r.sent >= 0 && r.lost >= 0 && r.rate >= 0, "cannot read the result line: %s", line);
    free(out);
    return r;
}

void wr_fault_print(const char *name, const wr_fault_result *r, const char *faults)
{
    const char *base = getenv("WARREN_TEST_TMPDIR");
    char line[1024], path[512];
    FILE *f;

    snprintf(line, sizeof line,
             "FAULT %s: sent %ld answered %ld lost %ld duplicated %ld (caller-duplicated %ld, "
             "reply-redelivered %ld) errors %ld; %.0f calls/s over %.1f s; bench reconnects %ld; "
             "%s\n",
             name, r->sent, r->answered, r->lost, r->duplicated, r->caller_duplicated,
             r->reply_redelivered, r->errors, r->rate, r->wall_s, r->reconnects, faults);
    fputs(line, stdout);
    fflush(stdout);
    snprintf(path, sizeof path, "%s/fault-figures.txt", base && *base ? base : "/tmp");
    f = fopen(path, "a");
    if (f) {
        fputs(line, f);
        fclose(f);
    }
}
