/*
 * The supervisor's promises: a killed worker is replaced and the pool
 * answers again; SIGTERM lets the request in hand finish, then everything
 * exits 0; a handler that outlives the heartbeat interval does not cost
 * the connection; plugin and config problems stop warren with exit 78.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/integration/harness.h"

TestSuite(lifecycle, .timeout = 120);

static int pid_in(pid_t p, const pid_t *set, int n)
{
    for (int i = 0; i < n; i++)
        if (set[i] == p)
            return 1;
    return 0;
}

/* Wait up to 4 s until the broker counts one unacked delivery on QUEUE:
 * a worker is inside the handler. */
static int wait_busy(const char *queue)
{
    for (int i = 0; i < 200; i++) {
        if (wr_test_queue_stat(queue, "messages_unacknowledged") == 1)
            return 1;
        usleep(20000);
    }
    return 0;
}

Test(lifecycle, kill9_worker_is_replaced)
{
    wr_test_warren w = {0};
    pid_t before[8], after[8];
    int n, m = 0;
    wr_client *c;
    char *reply;

    wr_test_warren_start(&w, 2, NULL, 1);
    n = wr_test_worker_pids(&w, before, 8);
    cr_assert_eq(n, 2);
    cr_assert_eq(kill(before[0], SIGKILL), 0);
    cr_assert(wr_test_log_wait(&w, "killed by signal 9", 1, 10000), "no log line for the death");
    /* A new worker takes the dead one's place and becomes ready. */
    cr_assert(wr_test_log_wait(&w, "consuming from", 3, 20000), "no replacement worker");
    for (int tries = 0; tries < 100; tries++) {
        m = wr_test_worker_pids(&w, after, 8);
        if (m == 2 && !pid_in(before[0], after, m))
            break;
        usleep(50000);
    }
    cr_assert_eq(m, 2);
    cr_assert(!pid_in(before[0], after, m), "the killed pid is still listed");
    cr_assert(pid_in(before[1], after, m), "the other worker was disturbed");

    c = wr_test_client(WR_CLIENT_REPLY_QUEUE);
    for (int i = 0; i < 10; i++) {
        char corr[16];
        snprintf(corr, sizeof corr, "k%d", i);
        reply = wr_test_rpc(c, w.queue,
                            "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[1],\"id\":1}",
                            corr, 10000);
        cr_assert_not_null(reply, "the pool did not answer after the kill");
        free(reply);
    }
    wr_client_close(c);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}

Test(lifecycle, sigterm_finishes_request_in_hand)
{
    wr_test_warren w = {0};
    wr_client *c;
    char err[256];
    wr_client_reply r;
    pid_t pids[8];
    /* Long enough to outlast slow rabbitmqctl calls in wait_busy() (a
     * quorum queue's counts also trail by a tick). */
    const char *body = "{\"jsonrpc\":\"2.0\",\"method\":\"test.sleep\",\"params\":[6],\"id\":1}";

    wr_test_warren_start(&w, 1, NULL, 1);
    cr_assert_eq(wr_test_worker_pids(&w, pids, 8), 1);
    c = wr_test_client(WR_CLIENT_REPLY_QUEUE);
    cr_assert_eq(wr_client_publish(c, "", w.queue, body, strlen(body), "s1", 0, err, sizeof err),
                 0);
    /* Wait until the worker is inside the handler, then stop warren. */
    cr_assert(wait_busy(w.queue), "the worker never took the request");
    kill(w.pid, SIGTERM);
    cr_assert_eq(wr_client_recv(c, 20000, &r, err, sizeof err), 1,
                 "the request in hand was not answered");
    cr_assert(strstr(r.body, "\"result\":6") != NULL, "%.*s", (int)r.len, r.body);
    wr_client_reply_free(&r);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
    cr_assert_eq(kill(pids[0], 0), -1, "the worker outlived the supervisor");
    /* It was stopped busy, and finished: one request handled, then exit 0. */
    cr_assert_eq(wr_test_log_count(&w, "exited with code 0 after"), 1, "%s", wr_test_log_read(&w));
    cr_assert_eq(wr_test_log_count(&w, "handled 1 request (0 failed)"), 1, "%s",
                 wr_test_log_read(&w));
    wr_client_close(c);
}

/* A worker killed in the middle of a request: the death line names what
 * it was running, and the broker redelivers the request to the
 * replacement, which answers it. */
Test(lifecycle, kill9_busy_worker_names_its_request_which_is_answered_again)
{
    wr_test_warren w = {0};
    /* Long enough to outlast a slow rabbitmqctl in wait_busy(). */
    const char *body = "{\"jsonrpc\":\"2.0\",\"method\":\"test.sleep\",\"params\":[8],\"id\":1}";
    pid_t pids[8];
    wr_client *c;
    wr_client_reply r;
    char err[256];

    wr_test_warren_start(&w, 1, NULL, 1);
    cr_assert_eq(wr_test_worker_pids(&w, pids, 8), 1);
    c = wr_test_client(WR_CLIENT_REPLY_QUEUE);
    cr_assert_eq(wr_client_publish(c, "", w.queue, body, strlen(body), "k9", 0, err, sizeof err),
                 0);
    cr_assert(wait_busy(w.queue), "the worker never took the request");
    cr_assert_eq(kill(pids[0], SIGKILL), 0);
    cr_assert(wr_test_log_wait(&w, "killed by signal 9", 1, 10000), "no log line for the death");
    cr_assert_eq(wr_test_log_count(&w, "killed by signal 9 (Killed) while running test.sleep "
                                       "(route rpc, id k9)"),
                 1, "the death line does not name the request:\n%s", wr_test_log_read(&w));
    cr_assert_eq(wr_client_recv(c, 25000, &r, err, sizeof err), 1, "the request was not answered");
    cr_assert_str_eq(r.correlation_id, "k9");
    cr_assert(strstr(r.body, "\"result\":8") != NULL, "%.*s", (int)r.len, r.body);
    wr_client_reply_free(&r);
    wr_client_close(c);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}

/* heartbeat = 1 s: the broker drops a connection after ~2 s of silence, so
 * a 4 s handler only survives if the worker keeps the socket serviced. */
Test(lifecycle, long_handler_outlives_heartbeat)
{
    wr_test_warren w = {0};
    wr_client *c;
    char *reply;
    char *argv[] = {"warren", "-c", w.conf, "-o", "broker.heartbeat=1", NULL};

    wr_test_warren_write_conf(&w, 1, NULL);
    wr_test_warren_spawn(&w, argv, NULL);
    cr_assert(wr_test_log_wait(&w, "ready: ", 1, 30000));
    c = wr_test_client(WR_CLIENT_REPLY_QUEUE);
    reply = wr_test_rpc(c, w.queue,
                        "{\"jsonrpc\":\"2.0\",\"method\":\"test.sleep\",\"params\":[4],\"id\":1}",
                        "hb", 15000);
    cr_assert_not_null(reply, "no reply to a handler longer than the heartbeat");
    cr_assert(strstr(reply, "\"result\":4") != NULL, "%s", reply);
    free(reply);
    cr_assert_eq(wr_test_log_count(&w, "connection lost"), 0, "the connection dropped");
    cr_assert_eq(wr_test_log_count(&w, "consuming from"), 1, "the worker reconnected");
    wr_client_close(c);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}

Test(lifecycle, missing_plugin_stops_warren_with_78)
{
    wr_test_warren w = {0};
    char *argv[] = {"warren", "-c", w.conf, "-o", "plugins.load=echo nosuchplugin", NULL};
    char *log;

    wr_test_warren_write_conf(&w, 2, NULL);
    wr_test_warren_spawn(&w, argv, NULL);
    cr_assert(wr_test_warren_wait_exit(&w, 30000), "warren kept running without its plugin");
    cr_assert(WIFEXITED(w.status));
    cr_assert_eq(WEXITSTATUS(w.status), 78);
    log = wr_test_log_read(&w);
    cr_assert(strstr(log, "nosuchplugin") != NULL, "the log does not name the plugin:\n%s", log);
    free(log);
}

/* A plugin whose init fails temporarily (a service not up yet) costs
 * restarts with backoff, not the pool: here it fails twice, then the
 * worker starts and answers. */
Test(lifecycle, temporary_init_failure_is_retried)
{
    wr_test_warren w = {0};
    char extra[1024], *reply;
    wr_client *c;

    snprintf(extra, sizeof extra,
             "[plugin test]\ntemporary_init_failures = 2\ncounter_file = %s/counter\n",
             wr_test_warren_dir(&w));
    wr_test_warren_start(&w, 1, extra, 0);
    cr_assert(wr_test_log_wait(&w, "ready: ", 1, 30000), "the pool did not come up:\n%s",
              wr_test_log_read(&w));
    cr_assert_eq(wr_test_log_count(&w, "init failed temporarily: temporary failure"), 2, "%s",
                 wr_test_log_read(&w));
    cr_assert_eq(wr_test_log_count(&w, "exited with code 75"), 2, "%s", wr_test_log_read(&w));
    c = wr_test_client(WR_CLIENT_REPLY_QUEUE);
    reply =
        wr_test_rpc(c, w.queue, "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":1}", "t1", 10000);
    cr_assert_not_null(reply, "no reply after the retries:\n%s", wr_test_log_read(&w));
    free(reply);
    wr_client_close(c);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}

Test(lifecycle, check_validates_config_and_plugins)
{
    wr_test_warren w = {0};
    char out_path[512], *log;
    char *ok_argv[] = {"warren", "-c", w.conf, "--check", NULL};
    char *bad_argv[] = {"warren", "-c", w.conf, "--check", "-o", "pool.workers=many", NULL};
    char *plug_argv[] = {"warren", "-c", w.conf, "--check", "-o", "plugins.load=echo nosuch", NULL};

    wr_test_warren_write_conf(&w, 2, NULL);
    snprintf(out_path, sizeof out_path, "%s/check.out", w.dir);
    wr_test_warren_spawn(&w, ok_argv, out_path);
    cr_assert(wr_test_warren_wait_exit(&w, 20000));
    cr_assert_eq(WEXITSTATUS(w.status), 0);
    {
        FILE *f = fopen(out_path, "r");
        char line[1024] = "";
        cr_assert_not_null(f);
        cr_assert_not_null(fgets(line, sizeof line, f));
        fclose(f);
        cr_assert(strstr(line, "OK") && strstr(line, " echo") && strstr(line, " test.sleep"), "%s",
                  line);
    }

    wr_test_warren_spawn(&w, bad_argv, NULL);
    cr_assert(wr_test_warren_wait_exit(&w, 20000));
    cr_assert_eq(WEXITSTATUS(w.status), 78);
    log = wr_test_log_read(&w);
    cr_assert(strstr(log, "-o pool.workers=many: workers: expected a number from 1 to 1024") !=
                  NULL,
              "%s", log);
    free(log);

    wr_test_warren_spawn(&w, plug_argv, NULL);
    cr_assert(wr_test_warren_wait_exit(&w, 20000));
    cr_assert_eq(WEXITSTATUS(w.status), 78);
    log = wr_test_log_read(&w);
    cr_assert(strstr(log, "plugin nosuch") != NULL, "%s", log);
    free(log);
}

/* --check knows what a running pool would find out: a route whose method
 * no plugin has (78, FILE:LINE), a plugin whose init fails only for now
 * (75, so the unit's ExecStartPre does not keep warren down). */
Test(lifecycle, check_finds_a_missing_route_method_and_a_temporary_failure)
{
    wr_test_warren w = {0};
    char counter[600], *log;
    char *argv[] = {"warren", "-c", w.conf, "--check", NULL};
    char *temp_argv[] = {"warren",  "-c",    w.conf,
                         "--check", "-o",    "plugin.test.temporary_init_failures=1",
                         "-o",      counter, NULL};

    wr_test_warren_write_conf(&w, 1,
                              "[route tutorial]\nqueue = rpc_queue\nformat = raw\nmethod = fib\n");
    wr_test_warren_spawn(&w, argv, NULL);
    cr_assert(wr_test_warren_wait_exit(&w, 20000));
    cr_expect_eq(WEXITSTATUS(w.status), 78);
    log = wr_test_log_read(&w);
    cr_expect(strstr(log, "warren.conf:19: method: no loaded plugin has method \"fib\" (route "
                          "tutorial)") != NULL,
              "%s", log);
    free(log);

    wr_test_warren_write_conf(&w, 1, NULL);
    snprintf(counter, sizeof counter, "plugin.test.counter_file=%s/counter", w.dir);
    wr_test_warren_spawn(&w, temp_argv, NULL);
    cr_assert(wr_test_warren_wait_exit(&w, 20000));
    cr_expect_eq(WEXITSTATUS(w.status), 75);
    log = wr_test_log_read(&w);
    cr_expect(strstr(log, "init failed temporarily") != NULL, "%s", log);
    free(log);
}

/* Exited but not yet reaped (by whatever adopted it). */
static int is_zombie(pid_t pid)
{
    char path[64], buf[256];
    FILE *f;
    int z = 0;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return 1;
    if (fgets(buf, sizeof buf, f)) {
        char *p = strrchr(buf, ')');
        z = p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
    }
    fclose(f);
    return z;
}

/* A supervisor killed outright must not leave workers behind, even ones
 * stuck reconnecting to a broker that is not there. */
Test(lifecycle, workers_follow_a_killed_supervisor)
{
    wr_test_warren w = {0};
    pid_t pids[8];
    char *argv[] = {"warren", "-c", w.conf, "-o", "broker.uri=amqp://guest:guest@127.0.0.1:1/",
                    NULL};
    int n;

    wr_test_warren_write_conf(&w, 2, NULL);
    wr_test_warren_spawn(&w, argv, NULL);
    cr_assert(wr_test_log_wait(&w, "retrying in", 2, 20000), "workers never tried the broker");
    n = wr_test_worker_pids(&w, pids, 8);
    cr_assert_eq(n, 2);
    kill(w.pid, SIGKILL);
    cr_assert(wr_test_warren_wait_exit(&w, 10000));
    for (int i = 0; i < n; i++) {
        int gone = 0;
        for (int t = 0; t < 250 && !gone; t++) {
            gone = kill(pids[i], 0) < 0 || is_zombie(pids[i]);
            if (!gone)
                usleep(20000);
        }
        cr_assert(gone, "worker %d outlived its supervisor", (int)pids[i]);
    }
}

/* A handler that crashes costs its worker, which is replaced; the death is
 * one log line naming what it was running.  After max_attempts deaths the
 * message is refused: the caller gets an error saying why, the message
 * leaves the queue, and the pool goes on serving. */
Test(lifecycle, poison_message_is_refused_after_max_attempts)
{
    wr_test_warren w = {0};
    wr_client *c;
    char *reply, args[512], *out;
    const char *body = "{\"jsonrpc\":\"2.0\",\"method\":\"test.crash\",\"id\":1}";
    char *argv[] = {"warren", "-c", w.conf, "-o", "pool.max_attempts=2", NULL};

    wr_test_warren_write_conf(&w, 1, NULL);
    wr_test_warren_spawn(&w, argv, NULL);
    cr_assert(wr_test_log_wait(&w, "ready: ", 1, 30000));
    c = wr_test_client(WR_CLIENT_REPLY_QUEUE);
    reply = wr_test_rpc(c, w.queue, body, "boom", 20000);
    cr_assert_not_null(reply, "no error reply for the poison message:\n%s", wr_test_log_read(&w));
    cr_assert(strstr(reply, "\"code\":-32603") && strstr(reply, "killed 2 workers"), "%s", reply);
    free(reply);
    cr_assert_eq(wr_test_log_count(&w, "while running test.crash (route rpc, id boom)"), 2, "%s",
                 wr_test_log_read(&w));
    cr_assert_eq(wr_test_log_count(&w, "refusing request boom"), 1);

    /* Gone from the queue, and the pool answers the next call. */
    snprintf(args, sizeof args,
             "list_queues -q --no-table-headers name messages | awk '$1==\"%s\"{print $2}'",
             w.queue);
    out = wr_test_broker_ctl(args);
    cr_assert_eq(atoi(out), 0, "the poison message is still queued");
    free(out);
    reply = wr_test_rpc(c, w.queue, "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":2}", "after",
                        10000);
    cr_assert_not_null(reply);
    free(reply);
    wr_client_close(c);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}
