/* GET /metrics: the renderer, the request parser, the server; see metrics.h. */
#include "supervisor/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "config/config.h"

const char *const wr_metrics_restart_names[WR_RESTART_NREASONS] = {"exit", "signal", "timeout",
                                                                   "recycle"};
static const char *const state_names[WR_WSTATE_N] = {"starting", "idle", "busy", "stopping"};

/* ---- folding ---- */

static int same_call(const wr_metrics_call *a, const wr_metrics_call *b)
{
    return !strcmp(a->route, b->route) && !strcmp(a->method, b->method);
}

static void add_call(wr_metrics_call *into, const wr_metrics_call *from)
{
    into->ok += from->ok;
    into->error += from->error;
    for (int b = 0; b < WR_METRICS_BUCKETS; b++)
        into->buckets[b] += from->buckets[b];
    into->sum += from->sum;
}

void wr_metrics_fold(wr_slot_metrics *into, const wr_slot_metrics *from)
{
    for (int i = 0; i < WR_METRICS_CALLS && from->calls[i].route[0]; i++) {
        const wr_metrics_call *c = &from->calls[i];
        wr_metrics_call *to = NULL;

        for (int j = 0; j < WR_METRICS_CALLS - 1 && !to; j++) {
            if (!into->calls[j].route[0]) {
                memcpy(into->calls[j].route, c->route, sizeof c->route);
                memcpy(into->calls[j].method, c->method, sizeof c->method);
                to = &into->calls[j];
            } else if (same_call(&into->calls[j], c)) {
                to = &into->calls[j];
            }
        }
        if (!to) {
            to = &into->calls[WR_METRICS_CALLS - 1];
            snprintf(to->route, sizeof to->route, "other");
            snprintf(to->method, sizeof to->method, "other");
        }
        add_call(to, c);
    }
    for (int i = 0; i < WR_METRICS_CODES && from->codes[i].code; i++) {
        int done = 0;

        for (int j = 0; j < WR_METRICS_CODES && !done; j++) {
            if (!into->codes[j].code)
                into->codes[j].code = from->codes[i].code;
            if (into->codes[j].code == from->codes[i].code) {
                into->codes[j].count += from->codes[i].count;
                done = 1;
            }
        }
        if (!done)
            into->other_codes += from->codes[i].count;
    }
    into->other_codes += from->other_codes;
    into->poison_refusals += from->poison_refusals;
}

/* ---- the renderer ---- */

/* A label value, escaped as both formats ask: \\, \" and \n. */
static void put_value(FILE *f, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\')
            fputs("\\\\", f);
        else if (*v == '"')
            fputs("\\\"", f);
        else if (*v == '\n')
            fputs("\\n", f);
        else
            fputc(*v, f);
    }
}

/* A family's HELP and TYPE.  NAME is the family's: a counter's samples
 * add _total, which the 0.0.4 format also puts in the TYPE line's name. */
static void family(FILE *f, int om, const char *name, const char *type, const char *help)
{
    const char *suffix = !om && !strcmp(type, "counter") ? "_total" : "";

    if (!om && !strcmp(type, "info")) {
        fprintf(f, "# HELP %s_info %s\n# TYPE %s_info gauge\n", name, help, name);
        return;
    }
    fprintf(f, "# HELP %s%s %s\n# TYPE %s%s %s\n", name, suffix, help, name, suffix, type);
    if (om && !strcmp(type, "histogram") && strstr(name, "_seconds"))
        fprintf(f, "# UNIT %s seconds\n", name);
}

/* A bucket bound as a float with a point (1.0, not 1): what both parsers
 * read and what OpenMetrics' examples write. */
static void put_bound(FILE *f, double v)
{
    char text[32];

    snprintf(text, sizeof text, "%g", v);
    fputs(text, f);
    if (!strpbrk(text, ".e"))
        fputs(".0", f);
}

static void render_calls(FILE *f, int om, const wr_slot_metrics *m)
{
    family(f, om, "warren_calls", "counter",
           "Requests answered, by route, method (the first call's) and outcome.");
    for (int i = 0; i < WR_METRICS_CALLS && m->calls[i].route[0]; i++) {
        const wr_metrics_call *c = &m->calls[i];

        for (int e = 0; e < 2; e++) {
            fputs("warren_calls_total{route=\"", f);
            put_value(f, c->route);
            fputs("\",method=\"", f);
            put_value(f, c->method);
            fprintf(f, "\",outcome=\"%s\"} %lu\n", e ? "error" : "ok", e ? c->error : c->ok);
        }
    }
    family(f, om, "warren_call_errors", "counter", "Error responses, by JSON-RPC error code.");
    for (int i = 0; i < WR_METRICS_CODES && m->codes[i].code; i++)
        fprintf(f, "warren_call_errors_total{code=\"%d\"} %lu\n", m->codes[i].code,
                m->codes[i].count);
    if (m->other_codes)
        fprintf(f, "warren_call_errors_total{code=\"other\"} %lu\n", m->other_codes);

    family(f, om, "warren_call_duration_seconds", "histogram",
           "Time from taking a request to answering it, by route and method.");
    for (int i = 0; i < WR_METRICS_CALLS && m->calls[i].route[0]; i++) {
        const wr_metrics_call *c = &m->calls[i];
        unsigned long sum = 0;

        for (int b = 0; b < WR_METRICS_BUCKETS; b++) {
            sum += c->buckets[b];
            fputs("warren_call_duration_seconds_bucket{route=\"", f);
            put_value(f, c->route);
            fputs("\",method=\"", f);
            put_value(f, c->method);
            fputs("\",le=\"", f);
            if (b < WR_METRICS_BUCKETS - 1)
                put_bound(f, wr_metrics_bounds[b]);
            else
                fputs("+Inf", f);
            fprintf(f, "\"} %lu\n", sum);
        }
        fputs("warren_call_duration_seconds_count{route=\"", f);
        put_value(f, c->route);
        fputs("\",method=\"", f);
        put_value(f, c->method);
        fprintf(f, "\"} %lu\n", sum);
        fputs("warren_call_duration_seconds_sum{route=\"", f);
        put_value(f, c->route);
        fputs("\",method=\"", f);
        put_value(f, c->method);
        fprintf(f, "\"} %.9g\n", c->sum);
    }
}

char *wr_metrics_render(const wr_metrics_snapshot *s, int om, size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, len);

    if (!f)
        return NULL;
    render_calls(f, om, s->calls);

    family(f, om, "warren_calls_in_flight", "gauge", "Requests being run now.");
    fprintf(f, "warren_calls_in_flight %d\n", s->in_flight);
    family(f, om, "warren_workers", "gauge", "Worker processes, by state.");
    for (int i = 0; i < WR_WSTATE_N; i++)
        fprintf(f, "warren_workers{state=\"%s\"} %d\n", state_names[i], s->workers[i]);
    family(f, om, "warren_worker_restarts", "counter",
           "Workers replaced, by reason: exit, signal, timeout (request_timeout), recycle "
           "(max_requests, max_rss, a reload).");
    for (int i = 0; i < WR_RESTART_NREASONS; i++)
        fprintf(f, "warren_worker_restarts_total{reason=\"%s\"} %lu\n", wr_metrics_restart_names[i],
                s->restarts[i]);
    family(f, om, "warren_poison_refusals", "counter",
           "Requests refused unrun: known poison, or out of attempts.");
    fprintf(f, "warren_poison_refusals_total %lu\n", s->calls->poison_refusals);
    family(f, om, "warren_poison_messages", "counter",
           "Messages declared poison: they killed max_attempts workers.");
    fprintf(f, "warren_poison_messages_total %lu\n", s->poison_declared);
    family(f, om, "warren_broker_connected", "gauge",
           "Whether each worker is connected to a broker (1) or not (0).");
    for (size_t i = 0; i < s->nworkers; i++)
        fprintf(f, "warren_broker_connected{worker=\"%d\"} %d\n", s->worker_index[i],
                s->worker_connected[i]);
    family(f, om, "warren_queue_messages", "gauge",
           "Messages ready in each route's queue, from the workers' passive declares.");
    for (size_t i = 0; i < s->nqueues; i++) {
        if (s->queues[i].messages < 0)
            continue;
        fputs("warren_queue_messages{route=\"", f);
        put_value(f, s->queues[i].route);
        fprintf(f, "\"} %ld\n", s->queues[i].messages);
    }
    family(f, om, "warren_build", "info", "The warren version serving.");
    fputs("warren_build_info{version=\"", f);
    put_value(f, s->version);
    fputs("\"} 1\n", f);
    if (om)
        fputs("# EOF\n", f);
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

/* ---- HTTP ---- */

/* The end of the head (after its blank line) in BUF, or NULL. */
static const char *head_end(const char *buf, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (buf[i] == '\n' && buf[i + 1] == '\n')
            return buf + i + 2;
        if (i + 3 < len && !memcmp(buf + i, "\r\n\r\n", 4))
            return buf + i + 4;
    }
    return NULL;
}

/* Whether [S, S+N) holds NEEDLE, ignoring case. */
static int has_word(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle);

    for (size_t i = 0; i + k <= n; i++)
        if (!strncasecmp(s + i, needle, k))
            return 1;
    return 0;
}

int wr_metrics_parse(const char *buf, size_t len, wr_http_request *out)
{
    const char *end = head_end(buf, len), *p = buf, *sp, *eol;
    size_t n;

    memset(out, 0, sizeof *out);
    if (memchr(buf, '\0', len))
        return -1;
    if (!end)
        return len >= WR_METRICS_REQUEST_MAX ? -1 : 0;
    if (end - buf > WR_METRICS_REQUEST_MAX)
        return -1;
    /* METHOD SP TARGET SP HTTP/1.x */
    eol = memchr(p, '\n', (size_t)(end - p));
    sp = memchr(p, ' ', (size_t)(eol - p));
    n = sp ? (size_t)(sp - p) : 0;
    if (!n || n >= sizeof out->method)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (p[i] < 'A' || p[i] > 'Z')
            return -1;
    memcpy(out->method, p, n);
    p = sp + 1;
    sp = memchr(p, ' ', (size_t)(eol - p));
    n = sp ? (size_t)(sp - p) : 0;
    if (!n || n >= sizeof out->path || p[0] != '/')
        return -1;
    memcpy(out->path, p, n);
    p = sp + 1;
    n = (size_t)(eol - p);
    if (n && p[n - 1] == '\r')
        n--;
    if (n != 8 || (memcmp(p, "HTTP/1.1", 8) && memcmp(p, "HTTP/1.0", 8)))
        return -1;
    /* Header lines, NAME: VALUE, until the blank line. */
    for (p = eol + 1; p < end; p = eol + 1) {
        const char *colon;

        eol = memchr(p, '\n', (size_t)(end - p));
        n = (size_t)(eol - p);
        if (n && p[n - 1] == '\r')
            n--;
        if (!n)
            break;
        colon = memchr(p, ':', n);
        if (!colon || colon == p || memchr(p, ' ', (size_t)(colon - p)))
            return -1;
        if (colon - p == 6 && !strncasecmp(p, "accept", 6) &&
            has_word(colon + 1, n - (size_t)(colon + 1 - p), "application/openmetrics-text"))
            out->openmetrics = 1;
    }
    return 1;
}

int wr_metrics_status(const wr_http_request *r)
{
    size_t n = strcspn(r->path, "?");

    if (strcmp(r->method, "GET") && strcmp(r->method, "HEAD"))
        return 405;
    return n == 8 && !strncmp(r->path, "/metrics", 8) ? 200 : 404;
}

/* ---- the server ---- */

typedef struct client {
    uv_tcp_t tcp; /* first: the handle's data is the client too */
    uv_timer_t timer;
    uv_write_t write_req;
    wr_metrics_server *server;
    struct client *next, **prev; /* in the server's list */
    int handles_open;
    int closing;
    size_t len;
    char *out; /* the response being written, owned */
    char buf[WR_METRICS_REQUEST_MAX];
} client;

static client *clients; /* the one server's connections (one listener per process) */

static void on_client_closed(uv_handle_t *h)
{
    client *c = h->data;

    if (--c->handles_open > 0)
        return;
    *c->prev = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->server->nclients--;
    free(c->out);
    free(c);
}

static void close_client(client *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    uv_close((uv_handle_t *)&c->tcp, on_client_closed);
    uv_close((uv_handle_t *)&c->timer, on_client_closed);
}

static void on_written(uv_write_t *req, int status)
{
    (void)status; /* either way, we are done with it */
    close_client(req->data);
}

static const char *reason_of(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    default:
        return "Internal Server Error";
    }
}

/* Answer C with STATUS and BODY (LEN bytes, borrowed) of TYPE, then close.
 * HEAD_ONLY: the headers without the body. */
static void respond(client *c, int status, const char *type, const char *body, size_t len,
                    int head_only)
{
    char head[512];
    int n;
    uv_buf_t b;

    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_timer_stop(&c->timer);
    n = snprintf(head, sizeof head,
                 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sConnection: "
                 "close\r\n\r\n",
                 status, reason_of(status), type, len, status == 405 ? "Allow: GET, HEAD\r\n" : "");
    c->out = malloc((size_t)n + (head_only ? 0 : len));
    if (!c->out) {
        wr_warn("metrics: out of memory answering a request; closing the connection");
        close_client(c);
        return;
    }
    memcpy(c->out, head, (size_t)n);
    if (!head_only)
        memcpy(c->out + n, body, len);
    b = uv_buf_init(c->out, (unsigned)((size_t)n + (head_only ? 0 : len)));
    c->write_req.data = c;
    if (uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0)
        close_client(c);
}

static void respond_text(client *c, int status, const char *text)
{
    respond(c, status, "text/plain; charset=utf-8", text, strlen(text), 0);
}

static void answer(client *c, const wr_http_request *r)
{
    int status = wr_metrics_status(r);
    size_t len = 0;
    char *body;

    if (status == 404) {
        respond_text(c, 404, "Not found: the metrics are at /metrics\n");
        return;
    }
    if (status == 405) {
        respond_text(c, 405, "Method not allowed: GET /metrics\n");
        return;
    }
    body = c->server->body(c->server->arg, r->openmetrics, &len);
    if (!body) {
        wr_warn("metrics: out of memory rendering a scrape; answering 500");
        respond_text(c, 500, "Out of memory\n");
        return;
    }
    respond(c, 200, r->openmetrics ? WR_METRICS_TYPE_OPENMETRICS : WR_METRICS_TYPE_PROMETHEUS, body,
            len, !strcmp(r->method, "HEAD"));
    free(body);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    client *c = h->data;

    (void)suggested;
    *buf = uv_buf_init(c->buf + c->len, (unsigned)(sizeof c->buf - c->len));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    client *c = s->data;
    wr_http_request r;
    int rc;

    (void)buf;
    if (n < 0) {
        close_client(c); /* gone before asking anything complete */
        return;
    }
    c->len += (size_t)n;
    rc = wr_metrics_parse(c->buf, c->len, &r);
    if (rc < 0)
        respond_text(c, 400, "Bad request\n");
    else if (rc > 0)
        answer(c, &r);
}

static void on_timeout(uv_timer_t *t)
{
    respond_text(t->data, 408, "Request timeout\n");
}

static void on_connection(uv_stream_t *server, int status)
{
    wr_metrics_server *m = server->data;
    client *c;

    if (status < 0) {
        wr_warn("metrics: accepting a connection failed: %s", uv_strerror(status));
        return;
    }
    c = calloc(1, sizeof *c);
    if (!c) {
        wr_warn("metrics: out of memory accepting a connection; it waits in the backlog");
        return;
    }
    c->server = m;
    c->tcp.data = c;
    c->timer.data = c;
    uv_tcp_init(m->loop, &c->tcp);
    uv_timer_init(m->loop, &c->timer);
    c->handles_open = 2;
    c->next = clients;
    c->prev = &clients;
    if (clients)
        clients->prev = &c->next;
    clients = c;
    m->nclients++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        close_client(c);
        return;
    }
    if (m->nclients > WR_METRICS_MAX_CLIENTS) {
        wr_debug("metrics: %d connections open already; closing a new one", WR_METRICS_MAX_CLIENTS);
        close_client(c);
        return;
    }
    uv_timer_start(&c->timer, on_timeout, WR_METRICS_TIMEOUT_MS, 0);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
        close_client(c);
}

int wr_metrics_start(wr_metrics_server *m, uv_loop_t *loop, const char *listen,
                     wr_metrics_body_fn body, void *arg)
{
    struct sockaddr_storage addr;
    char err[256];
    int r;

    memset(m, 0, sizeof *m);
    m->loop = loop;
    m->body = body;
    m->arg = arg;
    if (wr_config_listen_addr(listen, &addr, err, sizeof err) < 0) {
        wr_error("metrics: [metrics] listen: %s; running without metrics", err);
        return UV_EINVAL;
    }
    r = uv_tcp_init(loop, &m->listener);
    if (r < 0) {
        wr_error("metrics: cannot create a socket to listen on %s: %s; running without metrics",
                 listen, uv_strerror(r));
        return r;
    }
    m->open = 1;
    m->listener.data = m;
    r = uv_tcp_bind(&m->listener, (const struct sockaddr *)&addr,
                    addr.ss_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&m->listener, WR_METRICS_MAX_CLIENTS, on_connection);
    if (r < 0) {
        wr_error("metrics: cannot listen on %s ([metrics] listen): %s; running without metrics",
                 listen, uv_strerror(r));
        wr_metrics_stop(m);
        return r;
    }
    wr_info("metrics: serving GET /metrics on %s", listen);
    return 0;
}

void wr_metrics_stop(wr_metrics_server *m)
{
    if (m->open && !uv_is_closing((uv_handle_t *)&m->listener))
        uv_close((uv_handle_t *)&m->listener, NULL);
    m->open = 0;
    for (client *c = clients; c; c = c->next)
        close_client(c);
}
