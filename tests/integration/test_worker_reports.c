/*
 * What a worker reports for supervision (issue 9), checked on a worker
 * run by hand the way the supervisor runs it: config and "sync" on its
 * stdin, its status pipe on fd 3, a scoreboard the test creates on fd 4.
 *   - with [pool] max_requests it asks once to be retired, after its
 *     jittered count of answered calls, and goes on answering;
 *   - while want_backlog is set in its slot it counts the messages ready
 *     in its queue, between calls and about once a second even when
 *     idle;
 *   - when it cannot reach the broker, the reason is in last_error.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/amqp_conn.h"
#include "common/ipc.h"
#include "common/scoreboard.h"
#include "tests/integration/harness.h"

/* A worker started by the test as the supervisor starts one. */
typedef struct hand_worker {
    int in;            /* its stdin: commands after the config */
    int status;        /* the read end of its fd 3 */
    char lines[16384]; /* what came on the status pipe */
    size_t len;
} hand_worker;

static long long now_ms(void)
{
    return wr_monotonic_ms();
}

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* W's config with the broker at URI and POOL added to [pool]. */
static void write_conf(wr_test_warren *w, const char *uri, const char *pool)
{
    FILE *f;

    wr_test_warren_write_conf(w, 1, NULL); /* the directory and a queue name */
    f = fopen(w->conf, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "[broker]\nuri = %s\n\n[pool]\nworkers = 1\nshutdown_timeout = 20\n%s\n\n"
            "[plugins]\ndir = %s\nload = echo time test\n\n[route rpc]\nqueue = %s\n",
            uri, pool, getenv("WARREN_PLUGIN_DIR"), w->queue);
    fclose(f);
}

/* Descriptor FD moved out of the way of 0..4 (for the child's dup2s). */
static int high(int fd)
{
    return fd < 0 ? -1 : fcntl(fd, F_DUPFD, 10);
}

/* Start `warren --worker 0` on W's config, with its status pipe on fd 3
 * and, when SB is not NULL, SB's memory on fd 4. */
static void start_worker(wr_test_warren *w, const wr_scoreboard *sb, hand_worker *h)
{
    int in[2], st[2];
    char buf[4096];
    size_t n;
    FILE *f;
    pid_t pid;

    memset(h, 0, sizeof *h);
    cr_assert_eq(pipe(in), 0);
    cr_assert_eq(pipe(st), 0);
    pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int logfd = high(open(w->log, O_WRONLY | O_CREAT | O_APPEND, 0644));
        int cmd = high(in[0]), pipe3 = high(st[1]), board = sb ? high(sb->fd) : -1;

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (logfd < 0 || cmd < 0 || pipe3 < 0 || (sb && board < 0))
            _exit(126);
        dup2(cmd, 0);
        dup2(logfd, 2);
        dup2(pipe3, 3);
        if (board >= 0)
            dup2(board, WR_SCOREBOARD_FD);
        close_range(board >= 0 ? 5 : 4, ~0U, 0);
        execl(getenv("WARREN_BIN"), "warren", "--worker", "0", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(st[1]);
    w->pid = pid;
    w->exited = 0;
    h->in = in[1];
    h->status = st[0];
    cr_assert_eq(fcntl(h->status, F_SETFL, O_NONBLOCK), 0);
    f = fopen(w->conf, "r");
    cr_assert_not_null(f);
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        cr_assert_eq(write(h->in, buf, n), (ssize_t)n);
    fclose(f);
    snprintf(buf, sizeof buf, "%s\nsync\n", WR_IPC_END_CONFIG);
    cr_assert_eq(write(h->in, buf, strlen(buf)), (ssize_t)strlen(buf));
}

/* Collect what the status pipe has, waiting up to TIMEOUT_MS for more. */
static void read_status(hand_worker *h, int timeout_ms)
{
    struct pollfd p = {.fd = h->status, .events = POLLIN};

    if (poll(&p, 1, timeout_ms) <= 0)
        return;
    for (;;) {
        ssize_t n = read(h->status, h->lines + h->len, sizeof h->lines - 1 - h->len);
        if (n <= 0)
            break;
        h->len += (size_t)n;
    }
    h->lines[h->len] = '\0';
}

/* How many status lines start with PREFIX. */
static int count_lines(const hand_worker *h, const char *prefix)
{
    int count = 0;

    for (const char *p = h->lines; *p;) {
        const char *nl = strchr(p, '\n');
        if (strncmp(p, prefix, strlen(prefix)) == 0)
            count++;
        if (!nl)
            break;
        p = nl + 1;
    }
    return count;
}

static void stop_worker(wr_test_warren *w, hand_worker *h)
{
    cr_assert_eq(wr_test_warren_stop(w), 0, "%s", wr_test_log_read(w));
    close(h->in);
    close(h->status);
}

static void wait_consuming(wr_test_warren *w)
{
    cr_assert(wr_test_log_wait(w, "consuming from", 1, 15000),
              "the worker did not start consuming within 15 s:\n%s", wr_test_log_read(w));
}

static int echo(wr_client *c, const char *queue, int i)
{
    char body[128], corr[32];
    char *reply;
    int ok;

    snprintf(body, sizeof body,
             "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[%d],\"id\":%d}", i, i);
    snprintf(corr, sizeof corr, "call-%d", i);
    reply = wr_test_rpc(c, queue, body, corr, 10000);
    ok = reply && strstr(reply, "\"result\":[") != NULL;
    free(reply);
    return ok;
}

Test(worker_reports, max_requests_asks_once_to_retire_and_serves_on, .timeout = 120)
{
    wr_test_warren w = {0};
    hand_worker h;
    wr_client *c;
    int seen_after = 0;
    unsigned long limit = 0;
    const char *line;

    write_conf(&w, wr_test_broker_uri(), "max_requests = 20");
    start_worker(&w, NULL, &h);
    wait_consuming(&w);
    read_status(&h, 2000);
    cr_assert_eq(count_lines(&h, "ready"), 1, "status lines: %s", h.lines);
    c = wr_test_client(WR_CLIENT_REPLY_QUEUE);
    for (int i = 1; i <= 30; i++) {
        cr_assert(echo(c, w.queue, i), "call %d unanswered:\n%s", i, wr_test_log_read(&w));
        read_status(&h, 50);
        if (!seen_after && count_lines(&h, "retire ") > 0)
            seen_after = i;
    }
    read_status(&h, 1000);
    cr_assert_eq(count_lines(&h, "retire "), 1, "status lines: %s", h.lines);
    line = strstr(h.lines, "retire ");
    cr_assert_eq(sscanf(line, "retire max_requests %lu", &limit), 1, "%s", line);
    cr_assert(limit >= 18 && limit <= 22, "limit %lu is not within 20 ± 10%%", limit);
    /* Sent right after the Lth reply, which may reach us a little first. */
    cr_assert(seen_after >= (int)limit && seen_after <= (int)limit + 1,
              "retire seen after call %d, limit %lu", seen_after, limit);
    cr_assert(wr_test_log_count(&w, "asking the supervisor to replace me") == 1, "%s",
              wr_test_log_read(&w));
    wr_client_close(c);
    stop_worker(&w, &h);
}

/* Wait up to TIMEOUT_MS for slot S to hold a backlog count made after
 * AFTER_MS that satisfies WANT (0: == 0, 1: > 0).  Returns the count, or
 * -2 on timeout. */
static long wait_backlog(const wr_slot *s, long long after_ms, int want, int timeout_ms,
                         long long *at_ms)
{
    long long deadline = now_ms() + timeout_ms;
    wr_slot_view v;

    do {
        wr_slot_read(s, &v);
        if (v.backlog_ms > after_ms && (want ? v.backlog > 0 : v.backlog == 0)) {
            *at_ms = v.backlog_ms;
            return v.backlog;
        }
        nap_ms(20);
    } while (now_ms() < deadline);
    return -2;
}

Test(worker_reports, backlog_is_counted_while_the_supervisor_asks, .timeout = 120)
{
    wr_test_warren w = {0};
    wr_scoreboard sb;
    wr_slot_view v;
    hand_worker h;
    wr_client *c;
    wr_slot *s;
    char err[512];
    long long at = 0, start;
    long n;
    int ticks = 0;

    cr_assert_eq(wr_scoreboard_create(&sb, 1), 0, "%s", strerror(errno));
    s = wr_scoreboard_slot(&sb, 0);
    write_conf(&w, wr_test_broker_uri(), "");
    start_worker(&w, &sb, &h);
    wait_consuming(&w);

    /* Not asked: not counted. */
    wr_slot_read(s, &v);
    cr_assert_eq(v.backlog, -1);
    cr_assert_eq(v.backlog_ms, 0);

    /* Asked, idle: an empty queue, counted about once a second however
     * long the worker waits for a delivery. */
    wr_slot_want_backlog(s, 1);
    start = now_ms();
    n = wait_backlog(s, 0, 0, 3000, &at);
    cr_assert_eq(n, 0, "no count of an idle worker's backlog within 3 s:\n%s",
                 wr_test_log_read(&w));
    for (long long last = at; ticks < 3 && now_ms() < start + 6000;) {
        wr_slot_read(s, &v);
        if (v.backlog_ms > last) {
            ticks++;
            last = v.backlog_ms;
        }
        nap_ms(20);
    }
    cr_assert_eq(ticks, 3, "an idle worker counted %d times in 6 s", ticks);

    /* A backlog behind a busy worker: one slow call, then 50 short ones
     * (notifications: no replies to collect). */
    c = wr_test_client(WR_CLIENT_NO_REPLY);
    const char *slow = "{\"jsonrpc\":\"2.0\",\"method\":\"test.sleep\",\"params\":[1.5]}";
    const char *quick = "{\"jsonrpc\":\"2.0\",\"method\":\"test.sleep\",\"params\":[0.05]}";
    cr_assert_eq(wr_client_publish(c, "", w.queue, slow, strlen(slow), NULL, 0, err, sizeof err), 0,
                 "%s", err);
    for (int i = 0; i < 50; i++)
        cr_assert_eq(
            wr_client_publish(c, "", w.queue, quick, strlen(quick), NULL, 0, err, sizeof err), 0,
            "%s", err);
    cr_assert_eq(wr_client_flush(c, err, sizeof err), 0, "%s", err);
    start = now_ms();
    n = wait_backlog(s, start, 1, 5000, &at);
    cr_assert_gt(n, 0, "no backlog seen within 5 s:\n%s", wr_test_log_read(&w));
    cr_assert_leq(n, 50);
    /* Drained: 50 × 0.05 s, counted again as 0. */
    n = wait_backlog(s, at, 0, 15000, &at);
    cr_assert_eq(n, 0, "the backlog was not reported drained within 15 s:\n%s",
                 wr_test_log_read(&w));
    cr_assert_eq(wr_test_queue_stat(w.queue, "messages_ready"), 0);

    /* Not asked any more: no more counts. */
    wr_slot_want_backlog(s, 0);
    nap_ms(1100); /* a count already under way may still land */
    wr_slot_read(s, &v);
    at = v.backlog_ms;
    nap_ms(2000);
    wr_slot_read(s, &v);
    cr_assert_eq(v.backlog_ms, at, "still counting after want_backlog was cleared");

    /* Without max_requests, 51 calls and no request to retire. */
    read_status(&h, 0);
    cr_assert_eq(count_lines(&h, "retire"), 0, "status lines: %s", h.lines);

    wr_client_close(c);
    stop_worker(&w, &h);
    wr_slot_read(s, &v);
    cr_assert_str_eq(v.last_error, "", "a clean run leaves no error: %s", v.last_error);
    wr_scoreboard_destroy(&sb);
}

/* A loopback port nothing listens on (bound, then closed). */
static int dead_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    cr_assert_geq(fd, 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

Test(worker_reports, an_unreachable_broker_is_the_last_error, .timeout = 60)
{
    wr_test_warren w = {0};
    wr_scoreboard sb;
    wr_slot_view v;
    hand_worker h;
    char uri[128], port[16];
    long long deadline;

    cr_assert_eq(wr_scoreboard_create(&sb, 1), 0, "%s", strerror(errno));
    snprintf(port, sizeof port, "%d", dead_port());
    snprintf(uri, sizeof uri, "amqp://guest:guest@127.0.0.1:%s/", port);
    write_conf(&w, uri, "");
    start_worker(&w, &sb, &h);
    deadline = now_ms() + 10000;
    do {
        wr_slot_read(wr_scoreboard_slot(&sb, 0), &v);
        if (v.last_error[0])
            break;
        nap_ms(20);
    } while (now_ms() < deadline);
    cr_assert(v.last_error[0], "no last_error within 10 s:\n%s", wr_test_log_read(&w));
    cr_assert(strstr(v.last_error, port) != NULL, "last_error does not name the broker: %s",
              v.last_error);
    cr_assert(strstr(v.last_error, "refused") != NULL, "last_error: %s", v.last_error);
    cr_assert(strstr(v.last_error, "WARN") == NULL && strstr(v.last_error, "warren[") == NULL,
              "the message text alone, not the log prefix: %s", v.last_error);
    cr_assert_eq(wr_test_log_count(&w, "consuming from"), 0);
    stop_worker(&w, &h);
    wr_scoreboard_destroy(&sb);
}

/* An ERROR log line lands in last_error: a route whose queue exists with
 * other arguments is a configuration error the worker stops on. */
Test(worker_reports, an_error_line_is_the_last_error, .timeout = 60)
{
    wr_test_warren w = {0};
    wr_scoreboard sb;
    wr_slot_view v;
    hand_worker h;
    amqp_connection_state_t conn;
    char uri[512];

    cr_assert_eq(wr_scoreboard_create(&sb, 1), 0, "%s", strerror(errno));
    wr_test_queue_name(w.queue, sizeof w.queue, "conflict");
    /* A classic queue where warren declares a quorum one. */
    conn = wr_test_amqp_connect();
    amqp_queue_declare(conn, 1, amqp_cstring_bytes(w.queue), 0, 1, 0, 0, amqp_empty_table);
    cr_assert_eq(amqp_get_rpc_reply(conn).reply_type, AMQP_RESPONSE_NORMAL);
    snprintf(uri, sizeof uri, "%s", wr_test_broker_uri());
    write_conf(&w, uri, "");
    start_worker(&w, &sb, &h);
    cr_assert(wr_test_warren_wait_exit(&w, 15000), "the worker did not stop:\n%s",
              wr_test_log_read(&w));
    wr_slot_read(wr_scoreboard_slot(&sb, 0), &v);
    cr_assert(strstr(v.last_error, "already exists with other arguments") != NULL,
              "last_error: \"%s\"\nlog:\n%s", v.last_error, wr_test_log_read(&w));
    cr_assert(strstr(v.last_error, w.queue) != NULL, "%s", v.last_error);
    amqp_queue_delete(conn, 1, amqp_cstring_bytes(w.queue), 0, 0);
    amqp_get_rpc_reply(conn);
    wr_amqp_close(conn);
    close(h.in);
    close(h.status);
    wr_scoreboard_destroy(&sb);
}
