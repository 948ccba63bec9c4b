/*
 * Supervision under load: warren-bench --reliable keeps calls in flight
 * (confirmed, counted sent / answered / lost) while the pool is resized
 * by SIGHUP and SIGTTIN/SIGTTOU, rolled onto a plugin replaced on disk,
 * handed a bad config, made to kill a hung handler, recycled, or left to
 * crash until it gives up.  Every scenario must lose nothing.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/integration/fault.h"

/* Write W's config (WORKERS, EXTRA sections) and start warren with the
 * overrides OV (NULL-terminated "-o" values); wait for ready unless
 * WAIT is 0. */
static void start_with(wr_test_warren *w, int workers, const char *extra, const char *const *ov,
                       int wait)
{
    char *argv[32] = {"warren", "-c", w->conf};
    int n = 3;

    wr_test_warren_write_conf(w, workers, extra);
    for (; ov && *ov && n < 30; ov++) {
        argv[n++] = "-o";
        argv[n++] = (char *)*ov;
    }
    argv[n] = NULL;
    wr_test_warren_spawn(w, argv, NULL);
    if (wait && !wr_test_log_wait(w, "ready: ", 1, 30000))
        cr_assert_fail("warren did not become ready in 30 s; log:\n%s", wr_test_log_read(w));
}

/* Wait up to TIMEOUT_MS until the broker lists N consumers on W's queue. */
static int wait_consumers(wr_test_warren *w, int n, int timeout_ms)
{
    long end = wr_fault_now_ms() + timeout_ms;

    do {
        if (wr_test_queue_stat(w->queue, "consumers") == n)
            return 1;
        wr_fault_sleep_ms(300);
    } while (wr_fault_now_ms() < end);
    return 0;
}

static void expect_nothing_lost(const char *name, const wr_fault_result *r, const char *what)
{
    wr_fault_print(name, r, what);
    cr_expect_gt(r->answered, 100, "only %ld calls answered", r->answered);
    cr_expect_eq(r->lost, 0, "%ld confirmed calls never answered", r->lost);
    cr_expect_eq(r->errors, 0, "%ld error replies", r->errors);
    cr_expect_eq(r->mismatches, 0, "%ld wrong replies", r->mismatches);
    cr_expect_eq(r->exit_code, 0, "warren-bench exit %d", r->exit_code);
}

static void signal_warren(wr_test_warren *w, int sig)
{
    cr_assert_eq(kill(w->pid, sig), 0, "kill: %s", strerror(errno));
}

Test(supervision, sighup_rescales_2_6_1_under_load, .timeout = 300)
{
    wr_test_warren w = {0};
    wr_fault_bench b;
    wr_fault_result r;

    start_with(&w, 2, NULL, NULL, 1);
    cr_assert(wait_consumers(&w, 2, 20000));
    wr_fault_bench_start(&b, &w, 16);
    cr_assert(wr_fault_bench_wait_answered(&b, 200, 60000), "the load did not start flowing");

    wr_test_warren_write_conf(&w, 6, NULL);
    signal_warren(&w, SIGHUP);
    cr_assert(wait_consumers(&w, 6, 30000), "not 6 consumers after the reload:\n%s",
              wr_test_log_read(&w));
    cr_expect(wr_test_log_wait(&w, "reload: 2 → 6 workers", 1, 1000));
    cr_expect(wr_test_log_count(&w, "generation 1 stays") == 1, "a resize must not roll");
    {
        long before = wr_fault_bench_answered(&b);
        cr_assert(wr_fault_bench_wait_answered(&b, before + 200, 30000));
    }

    wr_test_warren_write_conf(&w, 1, NULL);
    signal_warren(&w, SIGHUP);
    cr_assert(wait_consumers(&w, 1, 30000), "not 1 consumer after the reload:\n%s",
              wr_test_log_read(&w));
    cr_expect(wr_test_log_wait(&w, "(the pool is smaller now)", 5, 10000));
    {
        long before = wr_fault_bench_answered(&b);
        cr_assert(wr_fault_bench_wait_answered(&b, before + 200, 30000));
    }
    r = wr_fault_bench_finish(&b);
    expect_nothing_lost("sighup_rescale", &r, "SIGHUP: 2 → 6 → 1 workers");
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}

Test(supervision, sigttin_sigttou_add_and_remove_one, .timeout = 120)
{
    wr_test_warren w = {0};

    start_with(&w, 2, NULL, NULL, 1);
    signal_warren(&w, SIGTTIN);
    wr_fault_sleep_ms(200);
    signal_warren(&w, SIGTTIN);
    cr_assert(wait_consumers(&w, 4, 20000), "not 4 consumers:\n%s", wr_test_log_read(&w));
    signal_warren(&w, SIGTTOU);
    cr_assert(wait_consumers(&w, 3, 20000), "not 3 consumers:\n%s", wr_test_log_read(&w));
    cr_expect_eq(wr_test_log_count(&w, "SIGTTIN: "), 2);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}

/* Copy FROM to TO the way a package manager replaces a file: a new inode,
 * renamed over the old one (running workers keep the old mapping). */
static void replace_file(const char *from, const char *to)
{
    char cmd[2048];

    snprintf(cmd, sizeof cmd, "cp '%s' '%s.new' && mv -f '%s.new' '%s'", from, to, to, to);
    cr_assert_eq(wr_test_sh(cmd, NULL, NULL), 0, "%s", cmd);
}

static long version_call(wr_client *c, wr_test_warren *w, int i)
{
    char corr[32], *reply, *p;
    long v;

    snprintf(corr, sizeof corr, "v-%d", i);
    reply = wr_test_rpc(c, w->queue, "{\"jsonrpc\":\"2.0\",\"method\":\"version.get\",\"id\":1}",
                        corr, 10000);
    cr_assert_not_null(reply, "version.get %d: no reply", i);
    p = strstr(reply, "\"result\":");
    cr_assert_not_null(p, "version.get: %s", reply);
    v = strtol(p + 9, NULL, 10);
    free(reply);
    return v;
}

Test(supervision, plugin_replaced_on_disk_is_rolled_in_by_sighup, .timeout = 300)
{
    wr_test_warren w = {0};
    const char *built = getenv("WARREN_PLUGIN_DIR"),
               *versions = getenv("WARREN_TEST_VERSION_PLUGINS");
    char dir[512], from[1024], to[1024], dir_ov[600];
    const char *ov[] = {dir_ov, "plugins.load=echo time test version", NULL};
    wr_fault_bench b;
    wr_fault_result r;
    wr_client *c;

    cr_assert(built && versions);
    snprintf(dir, sizeof dir, "%s/plugins", wr_test_warren_dir(&w));
    cr_assert(mkdir(dir, 0755) == 0 || errno == EEXIST);
    for (int i = 0; i < 3; i++) {
        static const char *const names[] = {"echo", "time", "test"};
        snprintf(from, sizeof from, "%s/%s.so", built, names[i]);
        snprintf(to, sizeof to, "%s/%s.so", dir, names[i]);
        replace_file(from, to);
    }
    snprintf(from, sizeof from, "%s/v1/version.so", versions);
    snprintf(to, sizeof to, "%s/version.so", dir);
    replace_file(from, to);
    snprintf(dir_ov, sizeof dir_ov, "plugins.dir=%s", dir);

    start_with(&w, 3, NULL, ov, 1);
    c = wr_test_client(WR_CLIENT_REPLY_QUEUE);
    cr_expect_eq(version_call(c, &w, 0), 1);
    wr_fault_bench_start(&b, &w, 16);
    cr_assert(wr_fault_bench_wait_answered(&b, 200, 60000), "the load did not start flowing");

    snprintf(from, sizeof from, "%s/v2/version.so", versions);
    replace_file(from, to);
    signal_warren(&w, SIGHUP);
    cr_assert(wr_test_log_wait(&w, "reload complete", 1, 60000), "the roll did not finish:\n%s",
              wr_test_log_read(&w));
    cr_expect(wr_test_log_count(&w, "generation 2: rolling") == 1);
    cr_expect_eq(wr_test_log_count(&w, "(replaced by a worker of the new configuration)"), 3, "%s",
                 wr_test_log_read(&w));
    for (int i = 1; i <= 30; i++)
        cr_expect_eq(version_call(c, &w, i), 2, "call %d after the roll answered by the old build",
                     i);
    wr_client_close(c);
    r = wr_fault_bench_finish(&b);
    expect_nothing_lost("plugin_roll", &r, "version.so replaced on disk, SIGHUP: 3 workers rolled");
    cr_assert(wait_consumers(&w, 3, 10000));
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}

Test(supervision, bad_config_on_sighup_keeps_the_running_one, .timeout = 180)
{
    wr_test_warren w = {0};
    pid_t before[8], after[8];
    int nb, na;
    wr_fault_bench b;
    wr_fault_result r;
    FILE *f;
    char *log;

    start_with(&w, 2, NULL, NULL, 1);
    wr_fault_bench_start(&b, &w, 16);
    cr_assert(wr_fault_bench_wait_answered(&b, 200, 60000), "the load did not start flowing");
    nb = wr_test_worker_pids(&w, before, 8);

    f = fopen(w.conf, "a");
    cr_assert_not_null(f);
    fputs("[route broken]\nqueue = broken\nformat = yaml\n", f);
    fclose(f);
    signal_warren(&w, SIGHUP);
    cr_assert(wr_test_log_wait(&w, "reload refused", 1, 30000), "no refusal:\n%s",
              wr_test_log_read(&w));
    log = wr_test_log_read(&w);
    cr_expect(strstr(log, "format: expected one of jsonrpc, raw, amqpbus, got \"yaml\""),
              "the FILE:LINE message is missing:\n%s", log);
    cr_expect(strstr(log, "keeping generation 1"));
    free(log);
    {
        long n = wr_fault_bench_answered(&b);
        cr_assert(wr_fault_bench_wait_answered(&b, n + 200, 30000), "calls stopped");
    }
    na = wr_test_worker_pids(&w, after, 8);
    cr_expect_eq(na, nb);
    for (int i = 0; i < na && i < nb; i++)
        cr_expect_eq(after[i], before[i], "worker %d was restarted", i);
    r = wr_fault_bench_finish(&b);
    expect_nothing_lost("bad_config_reload", &r, "a bad config on SIGHUP");
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}

Test(supervision, request_timeout_kills_the_worker_and_ends_the_message, .timeout = 300)
{
    wr_test_warren w = {0};
    const char *ov[] = {"pool.request_timeout=2", NULL};
    const char *req = "{\"jsonrpc\":\"2.0\",\"method\":\"test.sleep\",\"params\":[60],\"id\":7}";
    wr_fault_bench b;
    wr_fault_result r;
    wr_client *c;
    char *reply;
    long t0, took;

    start_with(&w, 2, NULL, ov, 1);
    wr_fault_bench_start(&b, &w, 8);
    cr_assert(wr_fault_bench_wait_answered(&b, 200, 60000), "the load did not start flowing");
    c = wr_test_client(WR_CLIENT_REPLY_QUEUE);
    t0 = wr_fault_now_ms();
    reply = wr_test_rpc(c, w.queue, req, "sleeper", 60000);
    took = wr_fault_now_ms() - t0;
    cr_assert_not_null(reply, "no reply to the hung call:\n%s", wr_test_log_read(&w));
    cr_expect(strstr(reply, "\"code\":-32603") && strstr(reply, "timed out after 2s"),
              "not a timeout error: %s", reply);
    free(reply);
    wr_client_close(c);
    /* Three attempts of 2 s each: the limit is max_attempts, as for a crash. */
    cr_expect_geq(took, 6000, "answered after %ld ms", took);
    cr_expect_eq(wr_test_log_count(&w, "(request_timeout) and was killed"), 3);
    {
        long n = wr_fault_bench_answered(&b);
        cr_assert(wr_fault_bench_wait_answered(&b, n + 200, 30000), "calls stopped");
    }
    r = wr_fault_bench_finish(&b);
    expect_nothing_lost("request_timeout", &r, "test.sleep 60 s under request_timeout = 2");
    cr_expect_eq(wr_test_queue_stat(w.queue, "messages"), 0);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}

Test(supervision, max_rss_recycles_workers_under_load, .timeout = 300)
{
    wr_test_warren w = {0};
    const char *ov[] = {"pool.max_rss=1K", NULL};
    wr_fault_bench b;
    wr_fault_result r;
    int recycled;

    start_with(&w, 2, NULL, ov, 1);
    wr_fault_bench_start(&b, &w, 16);
    cr_assert(wr_fault_bench_wait_answered(&b, 200, 60000), "the load did not start flowing");
    cr_assert(wr_test_log_wait(&w, "is over max_rss", 6, 30000), "too few recycled:\n%s",
              wr_test_log_read(&w));
    r = wr_fault_bench_finish(&b);
    recycled = wr_test_log_count(&w, "is over max_rss");
    {
        char what[128];
        snprintf(what, sizeof what, "max_rss = 1K: %d workers recycled", recycled);
        expect_nothing_lost("max_rss_recycling", &r, what);
    }
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}

Test(supervision, crash_storm_gives_up_after_startup_timeout, .timeout = 120)
{
    wr_test_warren w = {0};
    char counter[600];
    const char *ov[] = {"pool.startup_timeout=3", "plugin.test.temporary_init_failures=1000000",
                        counter, NULL};
    char *log;

    snprintf(counter, sizeof counter, "plugin.test.counter_file=%s/count", wr_test_warren_dir(&w));
    start_with(&w, 2, NULL, ov, 0);
    cr_assert(wr_test_warren_wait_exit(&w, 30000), "warren still running:\n%s",
              wr_test_log_read(&w));
    cr_expect(WIFEXITED(w.status) && WEXITSTATUS(w.status) == 69, "status %d", w.status);
    log = wr_test_log_read(&w);
    cr_expect(
        strstr(log, "no worker managed to start consuming for 3s (startup_timeout); giving up"),
        "%s", log);
    cr_expect(strstr(log, "Last worker error: worker"), "%s", log);
    free(log);
}

/* `warren status --json` read while one worker runs test.sleep; then
 * `warren reload` and `warren stop` through the same socket. */
Test(supervision, status_reload_stop_through_the_control_socket, .timeout = 120)
{
    wr_test_warren w = {0};
    char sock_ov[600], cmd[2048], *out = NULL, *err = NULL;
    const char *ov[] = {sock_ov, NULL};
    const char *bin = getenv("WARREN_BIN");
    const char *req = "{\"jsonrpc\":\"2.0\",\"method\":\"test.sleep\",\"params\":[3],\"id\":1}";
    json_t *doc, *workers, *busy = NULL;
    json_error_t jerr;
    wr_client *c;
    size_t i;
    char e[256];

    snprintf(sock_ov, sizeof sock_ov, "pool.control_socket=%s/warren.sock", wr_test_warren_dir(&w));
    start_with(&w, 2, NULL, ov, 1);
    c = wr_test_client(WR_CLIENT_REPLY_QUEUE);
    for (int k = 0; k < 5; k++) { /* some calls served */
        char corr[16], *r;
        snprintf(corr, sizeof corr, "e%d", k);
        r = wr_test_rpc(c, w.queue,
                        "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[1],\"id\":1}", corr,
                        10000);
        cr_assert_not_null(r);
        free(r);
    }
    cr_assert_eq(wr_client_publish(c, "", w.queue, req, strlen(req), "sleeper", 1, e, sizeof e), 0,
                 "%s", e);
    wr_fault_sleep_ms(1000);

    snprintf(cmd, sizeof cmd, "'%s' status --json -c '%s' -o '%s'", bin, w.conf, sock_ov);
    cr_assert_eq(wr_test_sh(cmd, &out, &err), 0, "%s: %s", cmd, err ? err : "");
    doc = json_loads(out, 0, &jerr);
    cr_assert_not_null(doc, "not JSON (%s): %s", jerr.text, out);
    cr_expect_str_eq(json_string_value(json_object_get(doc, "state")), "running");
    cr_expect_eq(json_integer_value(json_object_get(doc, "generation")), 1);
    cr_expect_eq(json_integer_value(json_object_get(doc, "pid")), w.pid);
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(doc, "totals"), "workers")), 2);
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(doc, "totals"), "busy")), 1);
    cr_expect_geq(json_integer_value(json_object_get(json_object_get(doc, "totals"), "handled")),
                  5);
    workers = json_object_get(doc, "workers");
    cr_assert_eq(json_array_size(workers), 2, "%s", out);
    for (i = 0; i < json_array_size(workers); i++) {
        json_t *wk = json_array_get(workers, i);
        cr_expect_gt(json_integer_value(json_object_get(wk, "pid")), 0);
        cr_expect_gt(json_integer_value(json_object_get(wk, "rss_bytes")), 0);
        if (!strcmp(json_string_value(json_object_get(wk, "state")), "busy"))
            busy = wk;
    }
    cr_assert_not_null(busy, "no busy worker: %s", out);
    cr_expect_str_eq(json_string_value(json_object_get(busy, "method")), "test.sleep");
    cr_expect_str_eq(json_string_value(json_object_get(busy, "route")), "rpc");
    cr_expect_geq(json_real_value(json_object_get(busy, "busy_s")), 0.5);
    json_decref(doc);
    free(out);
    free(err);

    /* The same for a person. */
    snprintf(cmd, sizeof cmd, "'%s' status -c '%s' -o '%s'", bin, w.conf, sock_ov);
    cr_assert_eq(wr_test_sh(cmd, &out, &err), 0, "%s: %s", cmd, err ? err : "");
    cr_expect(strstr(out, "test.sleep (route rpc)"), "%s", out);
    free(out);
    free(err);

    wr_test_warren_write_conf(&w, 3, NULL);
    snprintf(cmd, sizeof cmd, "'%s' reload -c '%s' -o '%s'", bin, w.conf, sock_ov);
    cr_assert_eq(wr_test_sh(cmd, &out, &err), 0, "%s: %s", cmd, err ? err : "");
    free(out);
    free(err);
    cr_assert(wait_consumers(&w, 3, 20000), "not 3 consumers after `warren reload`:\n%s",
              wr_test_log_read(&w));

    snprintf(cmd, sizeof cmd, "'%s' stop -c '%s' -o '%s'", bin, w.conf, sock_ov);
    cr_assert_eq(wr_test_sh(cmd, &out, &err), 0, "%s: %s", cmd, err ? err : "");
    free(out);
    free(err);
    cr_assert(wr_test_warren_wait_exit(&w, 30000), "warren did not stop");
    cr_expect(WIFEXITED(w.status) && WEXITSTATUS(w.status) == 0, "status %d", w.status);
    {
        char path[600];
        snprintf(path, sizeof path, "%s/warren.sock", wr_test_warren_dir(&w));
        cr_expect_neq(access(path, F_OK), 0, "the socket was left behind");
    }
    wr_client_close(c);
}

/* min 1, max 4: a backlog of slow calls grows the pool to 4; idle, it
 * shrinks back to 1. */
Test(supervision, dynamic_pool_grows_under_a_backlog_and_shrinks_when_idle, .timeout = 180)
{
    wr_test_warren w = {0};
    const char *ov[] = {"pool.min_workers=1", "pool.max_workers=4", "pool.idle_timeout=2", NULL};
    const char *req = "{\"jsonrpc\":\"2.0\",\"method\":\"test.sleep\",\"params\":[0.5],\"id\":1}";
    wr_client *c;
    int answered = 0;
    char e[256];

    start_with(&w, 1, NULL, ov, 1);
    cr_assert(wait_consumers(&w, 1, 20000));
    c = wr_test_client(WR_CLIENT_REPLY_QUEUE);
    for (int i = 0; i < 40; i++) {
        char corr[16];
        snprintf(corr, sizeof corr, "s%d", i);
        cr_assert_eq(wr_client_publish(c, "", w.queue, req, strlen(req), corr, 1, e, sizeof e), 0,
                     "%s", e);
    }
    cr_assert(wr_test_log_wait(&w, "dynamic pool: all 3 workers busy", 1, 30000),
              "the pool did not grow to 4:\n%s", wr_test_log_read(&w));
    while (answered < 40) {
        wr_client_reply r;
        int got = wr_client_recv(c, 30000, &r, e, sizeof e);

        cr_assert_eq(got, 1, "only %d of 40 slow calls answered: %s", answered, e);
        cr_expect(strstr(r.body, "\"result\""), "%s", r.body);
        wr_client_reply_free(&r);
        answered++;
    }
    cr_expect_eq(wr_test_log_count(&w, "dynamic pool: all 4 workers busy"), 0, "grew past max");
    cr_assert(wr_test_log_wait(&w, "dynamic pool: worker", 3, 30000),
              "the pool did not shrink:\n%s", wr_test_log_read(&w));
    cr_assert(wait_consumers(&w, 1, 20000), "not back to 1 consumer:\n%s", wr_test_log_read(&w));
    wr_client_close(c);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}

Test(supervision, max_requests_recycles_workers_under_load, .timeout = 300)
{
    wr_test_warren w = {0};
    const char *ov[] = {"pool.max_requests=300", NULL};
    wr_fault_bench b;
    wr_fault_result r;
    int recycled;
    char what[128];

    start_with(&w, 2, NULL, ov, 1);
    wr_fault_bench_start(&b, &w, 16);
    cr_assert(wr_fault_bench_wait_answered(&b, 200, 60000), "the load did not start flowing");
    cr_assert(wr_test_log_wait(&w, "retiring it (max_requests ", 4, 60000), "too few recycled:\n%s",
              wr_test_log_read(&w));
    r = wr_fault_bench_finish(&b);
    recycled = wr_test_log_count(&w, "asks to be replaced (max_requests ");
    snprintf(what, sizeof what, "max_requests = 300: %d workers recycled", recycled);
    expect_nothing_lost("max_requests_recycling", &r, what);
    /* Each retired between calls, after its replacement consumed. */
    cr_expect_geq(wr_test_log_count(&w, "retiring it (max_requests "), 4);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}

/* The sd_notify datagrams, read from a NOTIFY_SOCKET the test binds. */
static int notify_open(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    cr_assert_geq(fd, 0);
    cr_assert_lt(strlen(path), sizeof a.sun_path);
    strcpy(a.sun_path, path);
    unlink(path);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0, "bind %s: %s", path,
                 strerror(errno));
    return fd;
}

/* Wait up to TIMEOUT_MS for a datagram holding NEEDLE; the datagram in
 * BUF.  1 if one came. */
static int notify_wait(int fd, const char *needle, char *buf, size_t len, int timeout_ms)
{
    long end = wr_fault_now_ms() + timeout_ms;

    for (;;) {
        long left = end - wr_fault_now_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t n;

        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return 0;
        n = recv(fd, buf, len - 1, 0);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        if (strstr(buf, needle))
            return 1;
    }
}

Test(supervision, systemd_notify_ready_reloading_watchdog_stopping, .timeout = 120)
{
    wr_test_warren w = {0};
    char path[600], buf[1024];
    int fd, consumers;

    snprintf(path, sizeof path, "%s/notify.sock", wr_test_warren_dir(&w));
    fd = notify_open(path);
    setenv("NOTIFY_SOCKET", path, 1);
    setenv("WATCHDOG_USEC", "1000000", 1);
    start_with(&w, 3, NULL, NULL, 0);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");

    cr_assert(notify_wait(fd, "READY=1", buf, sizeof buf, 30000), "no READY=1:\n%s",
              wr_test_log_read(&w));
    /* Ready means every worker consumes: the broker says so already. */
    consumers = wr_test_queue_stat(w.queue, "consumers");
    cr_expect_eq(consumers, 3, "READY=1 with %d consumers", consumers);
    cr_expect(strstr(buf, "STATUS=3 workers"), "%s", buf);
    cr_assert(notify_wait(fd, "WATCHDOG=1", buf, sizeof buf, 3000), "no WATCHDOG=1");

    wr_test_warren_write_conf(&w, 2, NULL);
    signal_warren(&w, SIGHUP);
    cr_assert(notify_wait(fd, "RELOADING=1", buf, sizeof buf, 10000), "no RELOADING=1");
    cr_expect(strstr(buf, "MONOTONIC_USEC="), "%s", buf);
    cr_assert(notify_wait(fd, "READY=1", buf, sizeof buf, 30000), "no READY=1 after the reload");
    cr_assert(notify_wait(fd, "STATUS=2 workers", buf, sizeof buf, 10000), "no STATUS for 2");

    signal_warren(&w, SIGTERM);
    cr_assert(notify_wait(fd, "STOPPING=1", buf, sizeof buf, 10000), "no STOPPING=1");
    cr_assert(wr_test_warren_wait_exit(&w, 30000));
    close(fd);
    unlink(path);
}

/* SIGHUP twice in a row (the second while the first is checked or rolls),
 * then SIGTERM at once: two generations at most, a clean exit. */
Test(supervision, reload_during_a_reload_then_stop, .timeout = 120)
{
    wr_test_warren w = {0};
    char extra[64];

    start_with(&w, 2, NULL, NULL, 1);
    snprintf(extra, sizeof extra, "[plugin echo]\nk = 1\n");
    wr_test_warren_write_conf(&w, 2, extra);
    signal_warren(&w, SIGHUP);
    wr_fault_sleep_ms(20);
    snprintf(extra, sizeof extra, "[plugin echo]\nk = 2\n");
    wr_test_warren_write_conf(&w, 3, extra);
    signal_warren(&w, SIGHUP);
    cr_assert(wr_test_log_wait(&w, "reload complete", 1, 30000), "no roll:\n%s",
              wr_test_log_read(&w));
    cr_assert(wait_consumers(&w, 3, 20000), "not 3 consumers:\n%s", wr_test_log_read(&w));
    cr_expect_leq(wr_test_log_count(&w, ": rolling the workers"), 2);
    /* A stop while a check runs: the check child is not waited for forever. */
    signal_warren(&w, SIGHUP);
    signal_warren(&w, SIGTERM);
    cr_assert(wr_test_warren_wait_exit(&w, 30000), "warren did not stop:\n%s",
              wr_test_log_read(&w));
    cr_expect(WIFEXITED(w.status) && WEXITSTATUS(w.status) == 0, "status %d:\n%s", w.status,
              wr_test_log_read(&w));
}
