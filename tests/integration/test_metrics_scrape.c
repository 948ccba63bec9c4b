/*
 * GET /metrics against a running warren: the counters match the calls
 * made, the histogram counts every one, a dead worker's counts stay, bad
 * requests get 400/404/405, and a scrape taken under load passes
 * `promtool check metrics`.  Scraped with a raw socket, as Prometheus
 * would.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/integration/fault.h"

/* A loopback port nobody listens on now. */
static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    cr_assert_geq(fd, 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0, "bind: %s", strerror(errno));
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* Send REQUEST (LEN bytes) to 127.0.0.1:PORT and read the whole response
 * (malloc'd). */
static char *exchange(int port, const char *request, size_t len)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ssize_t r;

    cr_assert_not_null(buf);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0, "connect to the metrics port: %s",
                 strerror(errno));
    cr_assert_eq(write(fd, request, len), (ssize_t)len);
    while ((r = read(fd, buf + n, cap - n)) > 0) {
        n += (size_t)r;
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            cr_assert_not_null(buf);
        }
    }
    close(fd);
    buf[n] = '\0';
    return buf;
}

static char *exchange_text(int port, const char *request)
{
    return exchange(port, request, strlen(request));
}

/* A connection to 127.0.0.1:PORT that sends nothing yet. */
static int idle_connection(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0, "connect: %s", strerror(errno));
    return fd;
}

static char *scrape(int port, int openmetrics)
{
    const char *req = openmetrics ? "GET /metrics HTTP/1.1\r\nHost: t\r\nAccept: "
                                    "application/openmetrics-text;version=1.0.0,text/"
                                    "plain;version=0.0.4;q=0.5\r\n\r\n"
                                  : "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n";
    return exchange(port, req, strlen(req));
}

/* The value of the sample whose line starts with NAME_AND_LABELS and a
 * space, or -1. */
static double sample(const char *text, const char *name_and_labels)
{
    size_t n = strlen(name_and_labels);

    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, name_and_labels, n) && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return -1;
}

/* The sum of every sample of FAMILY_SUFFIXED (e.g. a histogram's _count). */
static double sum_of(const char *text, const char *name)
{
    size_t n = strlen(name);
    double sum = 0;

    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, name, n) && (p[n] == '{' || p[n] == ' '))
            sum += strtod(strchr(p + n, ' ') + 1, NULL);
    return sum;
}

#define ECHO_OK "warren_calls_total{route=\"rpc\",method=\"echo\",outcome=\"ok\"}"
#define FAIL_ERR "warren_calls_total{route=\"rpc\",method=\"test.fail\",outcome=\"error\"}"

/* Scrape until SAMPLE reaches WANT (a worker writes its slot just after
 * publishing the reply) or 5 s pass; the last scrape (malloc'd). */
static char *scrape_until(int port, const char *name, double want)
{
    long end = wr_fault_now_ms() + 5000;
    char *t;

    for (;;) {
        t = scrape(port, 0);
        if (sample(t, name) >= want || wr_fault_now_ms() > end)
            return t;
        free(t);
        wr_fault_sleep_ms(100);
    }
}

static void start(wr_test_warren *w, int port)
{
    char extra[128];

    snprintf(extra, sizeof extra, "[metrics]\nlisten = 127.0.0.1:%d\n", port);
    wr_test_warren_start(w, 2, extra, 1);
}

Test(metrics, counters_match_the_calls_made, .timeout = 120)
{
    enum { N = 25, M = 7 };
    wr_test_warren w = {0};
    int port = free_port();
    wr_client *c;
    char *t, corr[32];

    start(&w, port);
    c = wr_test_client(WR_CLIENT_REPLY_QUEUE);
    for (int i = 0; i < N + M; i++) {
        char *reply;

        snprintf(corr, sizeof corr, "m%d", i);
        reply =
            wr_test_rpc(c, w.queue,
                        i < N ? "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[1],\"id\":1}"
                              : "{\"jsonrpc\":\"2.0\",\"method\":\"test.fail\",\"id\":1}",
                        corr, 10000);
        cr_assert_not_null(reply, "no reply to call %d", i);
        free(reply);
    }
    wr_client_close(c);

    t = scrape_until(port, FAIL_ERR, M);
    cr_assert(!strncmp(t, "HTTP/1.1 200 OK\r\n", 17), "%s", t);
    cr_expect_not_null(strstr(t, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    cr_expect_eq(sample(t, ECHO_OK), N, "%s", t);
    cr_expect_eq(sample(t, "warren_calls_total{route=\"rpc\",method=\"echo\",outcome=\"error\"}"),
                 0);
    cr_expect_eq(sample(t, FAIL_ERR), M, "%s", t);
    cr_expect_eq(sample(t, "warren_call_errors_total{code=\"1001\"}"), M, "%s", t);
    cr_expect_eq(sum_of(t, "warren_call_duration_seconds_count"), N + M, "%s", t);
    cr_expect_eq(sample(t, "warren_workers{state=\"idle\"}") +
                     sample(t, "warren_workers{state=\"busy\"}"),
                 2);
    cr_expect_eq(sample(t, "warren_broker_connected{worker=\"0\"}"), 1);
    cr_expect_eq(sample(t, "warren_broker_connected{worker=\"1\"}"), 1);
    cr_expect_eq(sample(t, "warren_build_info{version=\"" WARREN_VERSION "\"}"), 1);
    free(t);

    t = scrape(port, 1);
    cr_expect_not_null(
        strstr(t, "Content-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\n"));
    cr_expect_not_null(strstr(t, "\n# TYPE warren_calls counter\n"));
    cr_expect_eq(sample(t, ECHO_OK), N);
    cr_expect(strlen(t) > 6 && !strcmp(t + strlen(t) - 6, "# EOF\n"), "no # EOF at the end");
    free(t);

    /* A worker killed: its counts stay, and its restart is counted. */
    {
        pid_t pids[4];

        cr_assert_eq(wr_test_worker_pids(&w, pids, 4), 2);
        cr_assert_eq(kill(pids[0], SIGKILL), 0);
        cr_assert(wr_test_log_wait(&w, "killed by signal 9", 1, 10000));
        t = scrape_until(port, "warren_worker_restarts_total{reason=\"signal\"}", 1);
        cr_expect_eq(sample(t, "warren_worker_restarts_total{reason=\"signal\"}"), 1, "%s", t);
        cr_expect_eq(sample(t, ECHO_OK), N, "a dead worker's counts went: %s", t);
        cr_expect_eq(sample(t, FAIL_ERR), M);
        cr_expect_eq(sum_of(t, "warren_call_duration_seconds_count"), N + M);
        free(t);
    }
    cr_expect_eq(wr_test_warren_stop(&w), 0);
}

Test(metrics, bad_requests_get_4xx_and_the_server_lives, .timeout = 120)
{
    static const char oversized_head[] = "GET /metrics HTTP/1.1\r\nX-Long: ";
    wr_test_warren w = {0};
    int port = free_port();
    size_t big = 8192; /* all read by the server: no reset from unread bytes */
    char *t, *req = malloc(big);

    start(&w, port);
    t = exchange_text(port, "GET / HTTP/1.1\r\n\r\n");
    cr_expect(!strncmp(t, "HTTP/1.1 404 ", 13), "%s", t);
    free(t);
    t = exchange_text(port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    cr_expect(!strncmp(t, "HTTP/1.1 405 ", 13), "%s", t);
    cr_expect_not_null(strstr(t, "Allow: GET, HEAD\r\n"));
    free(t);
    t = exchange_text(port, "\x01\x02garbage\r\n\r\n");
    cr_expect(!strncmp(t, "HTTP/1.1 400 ", 13), "%s", t);
    free(t);
    cr_assert_not_null(req);
    memcpy(req, oversized_head, sizeof oversized_head - 1);
    memset(req + sizeof oversized_head - 1, 'a', big - (sizeof oversized_head - 1));
    t = exchange(port, req, big);
    cr_expect(!strncmp(t, "HTTP/1.1 400 ", 13), "an oversized head: %.40s", t);
    free(t);
    free(req);
    t = scrape(port, 0);
    cr_expect(!strncmp(t, "HTTP/1.1 200 ", 13), "still serving: %.40s", t);
    free(t);
    cr_expect_eq(wr_test_warren_stop(&w), 0);
}

Test(metrics, a_scrape_under_load_passes_promtool, .timeout = 300)
{
    wr_test_warren w = {0};
    int port = free_port();
    wr_fault_bench b;
    wr_fault_result r;
    char path[400], cmd[600], *t, *body, *out = NULL, *err = NULL;
    FILE *f;
    int rc;

    start(&w, port);
    wr_fault_bench_start(&b, &w, 16);
    cr_assert(wr_fault_bench_wait_answered(&b, 500, 60000), "the load does not flow");
    t = scrape(port, 0);
    body = strstr(t, "\r\n\r\n");
    cr_assert_not_null(body, "%s", t);
    cr_expect_gt(sample(body, ECHO_OK), 0);
    snprintf(path, sizeof path, "%s/scrape.txt", wr_test_warren_dir(&w));
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(body + 4, f);
    fclose(f);
    r = wr_fault_bench_finish(&b);
    cr_expect_eq(r.lost, 0);
    if (wr_test_sh("command -v promtool", NULL, NULL) != 0) {
        cr_log_warn("promtool not found (Debian package prometheus): the scrape in %s is not "
                    "checked",
                    path);
    } else {
        snprintf(cmd, sizeof cmd, "promtool check metrics < '%s'", path);
        rc = wr_test_sh(cmd, &out, &err);
        cr_expect_eq(rc, 0, "promtool check metrics: %s%s", out ? out : "", err ? err : "");
        free(out);
        free(err);
    }
    free(t);
    /* Every call the bench got an answer to is counted (the window may
     * hold a few more answered but not yet read). */
    t = scrape_until(port, ECHO_OK, (double)r.answered);
    cr_expect_geq(sample(t, ECHO_OK), (double)r.answered, "%s", t);
    free(t);
    cr_expect_eq(wr_test_warren_stop(&w), 0);
}

/* A poison message: two deaths by signal, declared poison once, refused
 * once (answered with -32603), and the pool counts on. */
Test(metrics, a_poison_message_is_counted, .timeout = 120)
{
    wr_test_warren w = {0};
    int port = free_port();
    char listen[64], *t, *reply;
    char *argv[] = {"warren", "-c", w.conf, "-o", "pool.max_attempts=2", "-o", listen, NULL};
    wr_client *c;

    snprintf(listen, sizeof listen, "metrics.listen=127.0.0.1:%d", port);
    wr_test_warren_write_conf(&w, 1, NULL);
    wr_test_warren_spawn(&w, argv, NULL);
    cr_assert(wr_test_log_wait(&w, "ready: ", 1, 30000));
    c = wr_test_client(WR_CLIENT_REPLY_QUEUE);
    reply = wr_test_rpc(c, w.queue, "{\"jsonrpc\":\"2.0\",\"method\":\"test.crash\",\"id\":1}",
                        "boom", 20000);
    cr_assert_not_null(reply, "no error reply for the poison message:\n%s", wr_test_log_read(&w));
    free(reply);
    wr_client_close(c);
    t = scrape_until(port, "warren_poison_refusals_total", 1);
    cr_expect_eq(sample(t, "warren_poison_refusals_total"), 1, "%s", t);
    cr_expect_eq(sample(t, "warren_poison_messages_total"), 1, "%s", t);
    /* SIGSEGV, or exit 1 under AddressSanitizer, which catches it. */
    cr_expect_eq(sample(t, "warren_worker_restarts_total{reason=\"signal\"}") +
                     sample(t, "warren_worker_restarts_total{reason=\"exit\"}"),
                 2, "%s", t);
    cr_expect_eq(sample(t, "warren_call_errors_total{code=\"-32603\"}"), 1, "%s", t);
    cr_expect_eq(
        sample(t, "warren_calls_total{route=\"rpc\",method=\"test.crash\",outcome=\"error\"}"), 1,
        "%s", t);
    free(t);
    cr_expect_eq(wr_test_warren_stop(&w), 0);
}

/* At most 16 connections: the 17th is closed unanswered; an idle one gets
 * 408 after 5 s; and then scrapes work again. */
Test(metrics, idle_clients_are_limited_and_timed_out, .timeout = 120)
{
    wr_test_warren w = {0};
    int port = free_port(), fds[17];
    char buf[256], *t;
    long t0, took;
    ssize_t n;

    start(&w, port);
    for (int i = 0; i < 17; i++)
        fds[i] = idle_connection(port);
    n = read(fds[16], buf, sizeof buf);
    cr_expect_leq(n, 0, "the 17th connection was answered: %.*s", (int)(n > 0 ? n : 0), buf);
    t0 = wr_fault_now_ms();
    n = read(fds[0], buf, sizeof buf - 1);
    took = wr_fault_now_ms() - t0;
    cr_assert_gt(n, 0);
    buf[n] = '\0';
    cr_expect(!strncmp(buf, "HTTP/1.1 408 ", 13), "%s", buf);
    cr_expect(took > 3000 && took < 8000, "408 after %ld ms", took);
    for (int i = 0; i < 17; i++)
        close(fds[i]);
    /* Until the server has seen them close, a new one may still be over
     * the limit. */
    for (int tries = 0;; tries++) {
        t = scrape(port, 0);
        if (!strncmp(t, "HTTP/1.1 200 ", 13) || tries == 20)
            break;
        free(t);
        wr_fault_sleep_ms(100);
    }
    cr_expect(!strncmp(t, "HTTP/1.1 200 ", 13), "%.40s", t);
    free(t);
    cr_expect_eq(wr_test_warren_stop(&w), 0);
}
