/*
 * A worker started by hand (`warren --worker N`, config on stdin, no
 * status pipe on fd 3) runs on its own: it connects, consumes and answers,
 * and stops on SIGTERM.  It must not mistake some other descriptor for the
 * supervisor's pipe and wait forever for commands that never come.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/ipc.h"
#include "tests/integration/harness.h"

/* Start `warren --worker 0` with fd 3 closed and W's config, then the
 * end-of-config line, on its stdin.  Returns the write end of its stdin,
 * left open as a terminal or a pipeline would leave it. */
static int start_worker_by_hand(wr_test_warren *w)
{
    int in[2];
    FILE *f;
    char buf[4096];
    size_t n;
    pid_t pid;

    cr_assert_eq(pipe(in), 0);
    pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int logfd = open(w->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(in[0], 0);
        dup2(logfd, 2);
        close_range(3, ~0U, 0);
        execl(getenv("WARREN_BIN"), "warren", "--worker", "0", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    w->pid = pid;
    w->exited = 0;
    f = fopen(w->conf, "r");
    cr_assert_not_null(f);
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        cr_assert_eq(write(in[1], buf, n), (ssize_t)n);
    fclose(f);
    cr_assert_eq(write(in[1], WR_IPC_END_CONFIG "\n", sizeof WR_IPC_END_CONFIG),
                 (ssize_t)sizeof WR_IPC_END_CONFIG);
    return in[1];
}

Test(worker_without_supervisor, runs_answers_and_stops, .timeout = 60)
{
    wr_test_warren w = {0};
    wr_client *c;
    char *reply;
    int in;

    wr_test_warren_write_conf(&w, 1, NULL);
    in = start_worker_by_hand(&w);
    cr_assert(wr_test_log_wait(&w, "consuming from", 1, 15000),
              "the worker did not start consuming within 15 s:\n%s", wr_test_log_read(&w));
    c = wr_test_client(WR_CLIENT_REPLY_QUEUE);
    reply =
        wr_test_rpc(c, w.queue, "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[7],\"id\":1}",
                    "hand", 10000);
    cr_assert_not_null(reply, "no reply:\n%s", wr_test_log_read(&w));
    cr_assert(strstr(reply, "\"result\":[7]") != NULL, "%s", reply);
    free(reply);
    wr_client_close(c);
    cr_assert_eq(wr_test_warren_stop(&w), 0, "%s", wr_test_log_read(&w));
    close(in);
}
