/* supervisor/metrics.c: the renderer, the request parser, folding, and
 * the slot's per-call accounting (common/scoreboard.c) they read. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "common/scoreboard.h"
#include "supervisor/metrics.h"

/* Slots of a scoreboard of this process (the test is both sides). */
static wr_slot *private_slot(void)
{
    static wr_scoreboard sb = {.fd = -1};
    static int next;

    if (!sb.base)
        cr_assert_eq(wr_scoreboard_create(&sb, 8), 0);
    cr_assert_lt(next, 8);
    wr_scoreboard_clear(&sb, next);
    return wr_scoreboard_slot(&sb, next++);
}

static void call(wr_slot *s, const char *route, const char *method, int error, double seconds,
                 int code)
{
    unsigned one = 1;
    wr_call_record r = {.route = route,
                        .method = method,
                        .error = error,
                        .seconds = seconds,
                        .codes = &code,
                        .counts = &one,
                        .ncodes = code ? 1 : 0};
    wr_slot_end_call(s, 0, 0, &r);
}

static char *render(const wr_slot_metrics *m, int om)
{
    static const unsigned long restarts[WR_RESTART_NREASONS] = {1, 2, 3, 4};
    static const int index[] = {0, 3}, connected[] = {1, 0};
    wr_metrics_queue q[2] = {{"rpc", 7}, {"unknown", -1}};
    wr_metrics_snapshot s = {.version = "1.2.3",
                             .calls = m,
                             .in_flight = 1,
                             .workers = {0, 1, 1, 0},
                             .restarts = restarts,
                             .poison_declared = 5,
                             .worker_index = index,
                             .worker_connected = connected,
                             .nworkers = 2,
                             .queues = q,
                             .nqueues = 2};
    size_t len = 0;
    char *text = wr_metrics_render(&s, om, &len);

    cr_assert_not_null(text);
    cr_assert_eq(strlen(text), len);
    return text;
}

static void expect_line(const char *text, const char *line)
{
    char *want = NULL;

    cr_assert_neq(asprintf(&want, "\n%s\n", line), -1);
    cr_expect_not_null(strstr(text, want), "no line \"%s\" in:\n%s", line, text);
    free(want);
}

Test(metrics, a_call_lands_in_its_bucket_and_outcome)
{
    wr_slot *s = private_slot();
    wr_slot_metrics m;

    call(s, "rpc", "echo", 0, 0.0004, 0);   /* ≤ .001 */
    call(s, "rpc", "echo", 0, 0.003, 0);    /* ≤ .005 */
    call(s, "rpc", "echo", 1, 100.0, 1001); /* +Inf */
    call(s, "rpc", "test.fail", 1, 0.02, 1001);
    wr_slot_read_metrics(s, &m);
    cr_assert_str_eq(m.calls[0].route, "rpc");
    cr_assert_str_eq(m.calls[0].method, "echo");
    cr_expect_eq(m.calls[0].ok, 2);
    cr_expect_eq(m.calls[0].error, 1);
    cr_expect_eq(m.calls[0].buckets[0], 1);
    cr_expect_eq(m.calls[0].buckets[2], 1);
    cr_expect_eq(m.calls[0].buckets[WR_METRICS_BUCKETS - 1], 1);
    cr_assert_str_eq(m.calls[1].method, "test.fail");
    cr_expect_eq(m.codes[0].code, 1001);
    cr_expect_eq(m.codes[0].count, 2);
}

Test(metrics, entries_past_the_table_go_to_other)
{
    wr_slot *s = private_slot();
    wr_slot_metrics m;
    char method[32];

    for (int i = 0; i < WR_METRICS_CALLS + 10; i++) {
        snprintf(method, sizeof method, "m%d", i);
        call(s, "rpc", method, 1, 0.01, -40000 - i);
    }
    wr_slot_read_metrics(s, &m);
    cr_expect_str_eq(m.calls[WR_METRICS_CALLS - 1].method, "other");
    cr_expect_eq(m.calls[WR_METRICS_CALLS - 1].error, 11);
    cr_expect_eq(m.other_codes, WR_METRICS_CALLS + 10 - WR_METRICS_CODES);
}

Test(metrics, fold_adds_by_route_method_and_code)
{
    wr_slot *a = private_slot(), *b = private_slot();
    wr_slot_metrics ma, mb, sum = {0};

    call(a, "rpc", "echo", 0, 0.001, 0);
    call(b, "rpc", "test.fail", 1, 0.001, 1001);
    call(b, "rpc", "echo", 0, 0.001, 0);
    wr_slot_read_metrics(a, &ma);
    wr_slot_read_metrics(b, &mb);
    wr_metrics_fold(&sum, &ma);
    wr_metrics_fold(&sum, &mb);
    wr_metrics_fold(&sum, &mb);
    cr_expect_str_eq(sum.calls[0].method, "echo");
    cr_expect_eq(sum.calls[0].ok, 3);
    cr_expect_str_eq(sum.calls[1].method, "test.fail");
    cr_expect_eq(sum.calls[1].error, 2);
    cr_expect_eq(sum.codes[0].count, 2);
}

Test(metrics, prometheus_text_names_counters_with_total)
{
    wr_slot *s = private_slot();
    wr_slot_metrics m;
    char *t;

    call(s, "rpc", "echo", 0, 0.002, 0);
    call(s, "rpc", "echo", 1, 0.002, -32601);
    wr_slot_read_metrics(s, &m);
    t = render(&m, 0);
    expect_line(t, "# TYPE warren_calls_total counter");
    expect_line(t, "warren_calls_total{route=\"rpc\",method=\"echo\",outcome=\"ok\"} 1");
    expect_line(t, "warren_calls_total{route=\"rpc\",method=\"echo\",outcome=\"error\"} 1");
    expect_line(t, "warren_call_errors_total{code=\"-32601\"} 1");
    expect_line(t, "# TYPE warren_call_duration_seconds histogram");
    expect_line(
        t, "warren_call_duration_seconds_bucket{route=\"rpc\",method=\"echo\",le=\"0.001\"} 0");
    expect_line(
        t, "warren_call_duration_seconds_bucket{route=\"rpc\",method=\"echo\",le=\"0.0025\"} 2");
    expect_line(t,
                "warren_call_duration_seconds_bucket{route=\"rpc\",method=\"echo\",le=\"1.0\"} 2");
    expect_line(t,
                "warren_call_duration_seconds_bucket{route=\"rpc\",method=\"echo\",le=\"+Inf\"} 2");
    expect_line(t, "warren_call_duration_seconds_count{route=\"rpc\",method=\"echo\"} 2");
    expect_line(t, "warren_calls_in_flight 1");
    expect_line(t, "warren_workers{state=\"busy\"} 1");
    expect_line(t, "warren_worker_restarts_total{reason=\"timeout\"} 3");
    expect_line(t, "warren_poison_messages_total 5");
    expect_line(t, "warren_broker_connected{worker=\"3\"} 0");
    expect_line(t, "warren_queue_messages{route=\"rpc\"} 7");
    cr_expect_null(strstr(t, "unknown"), "a queue never counted is not shown");
    expect_line(t, "# TYPE warren_build_info gauge");
    expect_line(t, "warren_build_info{version=\"1.2.3\"} 1");
    cr_expect_null(strstr(t, "# EOF"));
    free(t);
}

Test(metrics, openmetrics_types_the_family_and_ends_with_eof)
{
    wr_slot *s = private_slot();
    wr_slot_metrics m;
    char *t;
    size_t len;

    call(s, "rpc", "echo", 0, 0.002, 0);
    wr_slot_read_metrics(s, &m);
    t = render(&m, 1);
    len = strlen(t);
    expect_line(t, "# TYPE warren_calls counter");
    expect_line(t, "warren_calls_total{route=\"rpc\",method=\"echo\",outcome=\"ok\"} 1");
    expect_line(t, "# UNIT warren_call_duration_seconds seconds");
    expect_line(t, "# TYPE warren_build info");
    cr_expect_null(strstr(t, "# TYPE warren_calls_total"));
    cr_assert_geq(len, 6);
    cr_expect_str_eq(t + len - 6, "# EOF\n");
    free(t);
}

Test(metrics, label_values_are_escaped)
{
    wr_slot_metrics m = {0};
    char *t;

    snprintf(m.calls[0].route, sizeof m.calls[0].route, "a\"b");
    snprintf(m.calls[0].method, sizeof m.calls[0].method, "c\\d\ne");
    m.calls[0].ok = 1;
    t = render(&m, 0);
    expect_line(t, "warren_calls_total{route=\"a\\\"b\",method=\"c\\\\d\\ne\",outcome=\"ok\"} 1");
    free(t);
}

static int parse(const char *text, wr_http_request *r)
{
    return wr_metrics_parse(text, strlen(text), r);
}

Test(metrics, a_get_of_metrics_is_200)
{
    wr_http_request r;

    cr_assert_eq(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &r), 1);
    cr_expect_str_eq(r.method, "GET");
    cr_expect_str_eq(r.path, "/metrics");
    cr_expect_eq(r.openmetrics, 0);
    cr_expect_eq(wr_metrics_status(&r), 200);
    cr_assert_eq(parse("HEAD /metrics?x=1 HTTP/1.0\r\n\r\n", &r), 1);
    cr_expect_eq(wr_metrics_status(&r), 200);
}

Test(metrics, accept_chooses_openmetrics_as_prometheus_asks)
{
    wr_http_request r;

    cr_assert_eq(parse("GET /metrics HTTP/1.1\r\nACCEPT: application/openmetrics-text;"
                       "version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n\r\n",
                       &r),
                 1);
    cr_expect_eq(r.openmetrics, 1);
    cr_assert_eq(parse("GET /metrics HTTP/1.1\r\nAccept: text/plain\r\n\r\n", &r), 1);
    cr_expect_eq(r.openmetrics, 0);
}

Test(metrics, other_paths_are_404_other_methods_405)
{
    wr_http_request r;

    cr_assert_eq(parse("GET / HTTP/1.1\r\n\r\n", &r), 1);
    cr_expect_eq(wr_metrics_status(&r), 404);
    cr_assert_eq(parse("GET /metricsx HTTP/1.1\r\n\r\n", &r), 1);
    cr_expect_eq(wr_metrics_status(&r), 404);
    cr_assert_eq(parse("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &r), 1);
    cr_expect_eq(wr_metrics_status(&r), 405);
}

Test(metrics, an_incomplete_head_asks_for_more)
{
    wr_http_request r;

    cr_expect_eq(parse("", &r), 0);
    cr_expect_eq(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n", &r), 0);
}

Test(metrics, malformed_requests_are_400)
{
    static const char *const bad[] = {
        "get /metrics HTTP/1.1\r\n\r\n",
        "GET metrics HTTP/1.1\r\n\r\n",
        "GET /metrics\r\n\r\n",
        "GET /metrics HTTP/2.0\r\n\r\n",
        "GET  /metrics HTTP/1.1\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nBad Name: x\r\n\r\n",
        "\r\n\r\n",
    };
    wr_http_request r;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(parse(bad[i], &r), -1, "accepted: %s", bad[i]);
}

Test(metrics, an_oversized_head_is_400)
{
    size_t n = WR_METRICS_REQUEST_MAX;
    char *big = malloc(n);
    wr_http_request r;

    cr_assert_not_null(big);
    memcpy(big, "GET /metrics HTTP/1.1\r\nX: ", 26);
    memset(big + 26, 'a', n - 26);
    cr_expect_eq(wr_metrics_parse(big, n, &r), -1);
    cr_expect_eq(wr_metrics_parse(big, n - 1, &r), 0);
    free(big);
}
