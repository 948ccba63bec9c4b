/*
 * warren-bench: a closed-loop load generator for JSON-RPC over AMQP.
 *
 *   warren-bench [-u URI] [-q QUEUE] [-n CALLS] [-c WINDOW] [-m METHOD]
 *                [-p PARAMS_JSON] [-t SECONDS] [--direct] [--label TEXT] [--json]
 *   warren-bench --reliable [--reply-queue NAME] [--grace SECONDS]
 *                [--progress SECONDS] [the options above but --direct, --json]
 *
 * Why closed-loop with a fixed window: it is how RPC callers behave (a
 * caller waits for its answer before it asks again), so the figure it gives
 * is "calls/s with WINDOW callers waiting", and the latency is what each of
 * those callers sees.  An open-loop generator would instead measure how
 * fast the queue grows once the server falls behind.
 *
 * It speaks to the server exactly as a tutorial-style client does, through
 * client/rpc_client.c (the client warren-call and the integration tests
 * use): requests to QUEUE on the default exchange with reply_to and
 * correlation_id, replies read from one exclusive reply queue (or direct
 * reply-to).  So it measures any server that follows that convention: warren
 * and the hand-written Python baseline alike.
 *
 * Every reply is checked: it must answer a call still in flight
 * (correlation_id), be a JSON-RPC result (not an error) with that call's id,
 * and for method echo, carry back the params.  Anything else is counted as
 * an error or a mismatch; a call unanswered at the global deadline is a
 * timeout.
 *
 * Output: one line (or one JSON object with --json) on stdout.  Exit status:
 * 0 every call answered correctly; 1 some errors or mismatches; 2 the global
 * timeout struck first; 64 bad usage; 69 broker unreachable or lost.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench/reliable.h"
#include "client/cli.h"
#include "client/rpc_client.h"
#include "common/exitcodes.h"

#define DEFAULT_CALLS 10000L
#define DEFAULT_WINDOW 64L
#define DEFAULT_METHOD "echo"
#define DEFAULT_PARAMS "[\"hello\"]"
#define DEFAULT_TIMEOUT_S 120.0
#define DEFAULT_GRACE_S 60.0
#define MAX_CALLS 100000000L /* keeps the per-call arrays within reason */
#define MAX_WINDOW 65535L
#define MAX_TIMEOUT_S 86400.0

#define EXIT_BAD_REPLIES 1
#define EXIT_TIMED_OUT 2

static const char usage_line[] =
    "usage: warren-bench [-u URI] [-q QUEUE] [-n CALLS] [-c WINDOW] [-m METHOD]\n"
    "                    [-p PARAMS_JSON] [-t SECONDS] [--direct] [--label TEXT] [--json]\n"
    "       warren-bench --reliable [--reply-queue NAME] [--grace SECONDS] [--progress SECONDS]\n"
    "                    [-u URI] [-q QUEUE] [-n CALLS] [-c WINDOW] [-m METHOD] [-p PARAMS_JSON]\n"
    "                    [-t SECONDS] [--label TEXT]\n";

static void usage(FILE *f)
{
    fputs(usage_line, f);
    fputs("\n"
          "Keep WINDOW JSON-RPC calls in flight against QUEUE until CALLS have been\n"
          "answered, check every reply, and print throughput and latency.\n"
          "\n"
          "  -u, --uri URI          broker (default: $WARREN_URI, else " WR_CLI_DEFAULT_URI ");\n"
          "                         amqps:// for TLS, with $WARREN_CACERT, $WARREN_CERT,\n"
          "                         $WARREN_KEY, $WARREN_BROKER_PASSWORD as for warren-call\n"
          "  -q, --queue QUEUE      request queue (default: " WR_CLI_DEFAULT_QUEUE ")\n"
          "  -n, --calls CALLS      calls to make (default: 10000)\n"
          "  -c, --window WINDOW    calls in flight at once (default: 64)\n"
          "  -m, --method METHOD    method to call (default: " DEFAULT_METHOD ")\n"
          "  -p, --params JSON      params, an array or object (default: " DEFAULT_PARAMS ")\n"
          "  -t, --timeout SECONDS  give up after this long in all (default: 120)\n"
          "      --direct           replies via direct reply-to, not a reply queue\n"
          "      --label TEXT       name of this run in the output (default: QUEUE)\n"
          "      --json             print the results as one JSON object\n"
          "  -h, --help             show this help\n"
          "\n"
          "The load for fault tests (bench/reliable.c):\n"
          "      --reliable         persistent requests with publisher confirms, replies\n"
          "                         on a durable named queue, reconnect and resume after\n"
          "                         broker loss; ends with \"sent N answered N lost N\n"
          "                         duplicated N ...\".  SIGINT/SIGTERM: stop sending,\n"
          "                         wait the grace period for replies, report\n"
          "      --reply-queue NAME the reply queue (default: warren-bench.reply.HOST.PID)\n"
          "      --grace SECONDS    wait this long for replies after the last send\n"
          "                         (default: 60)\n"
          "      --progress SECONDS a progress line on stderr every SECONDS\n"
          "\n"
          "Exit status: 0 all calls answered correctly; 1 errors or mismatches;\n"
          "2 global timeout; 3 (--reliable) a sent call was never answered;\n"
          "64 bad usage; 69 broker unreachable or lost.\n",
          f);
}

struct options {
    const char *uri;
    const char *queue;
    long calls;
    long window;
    const char *method;
    const char *params;
    double timeout_s;
    int direct;
    const char *label;
    int json;
    /* --reliable (bench/reliable.c) */
    int reliable;
    const char *reply_queue;
    double grace_s;
    double progress_s;
};

static void parse_args(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {{"uri", required_argument, NULL, 'u'},
                                             {"queue", required_argument, NULL, 'q'},
                                             {"calls", required_argument, NULL, 'n'},
                                             {"window", required_argument, NULL, 'c'},
                                             {"method", required_argument, NULL, 'm'},
                                             {"params", required_argument, NULL, 'p'},
                                             {"timeout", required_argument, NULL, 't'},
                                             {"direct", no_argument, NULL, 'd'},
                                             {"label", required_argument, NULL, 'l'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"help", no_argument, NULL, 'h'},
                                             {"reliable", no_argument, NULL, 'R'},
                                             {"reply-queue", required_argument, NULL, 'Q'},
                                             {"grace", required_argument, NULL, 'G'},
                                             {"progress", required_argument, NULL, 'P'},
                                             {NULL, 0, NULL, 0}};
    int ch;

    memset(o, 0, sizeof *o);
    wr_cli_init("warren-bench", usage_line);
    o->uri = wr_cli_default_uri();
    o->queue = WR_CLI_DEFAULT_QUEUE;
    o->calls = DEFAULT_CALLS;
    o->window = DEFAULT_WINDOW;
    o->method = DEFAULT_METHOD;
    o->params = DEFAULT_PARAMS;
    o->timeout_s = DEFAULT_TIMEOUT_S;
    o->grace_s = DEFAULT_GRACE_S;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":u:q:n:c:m:p:t:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'u':
            o->uri = optarg;
            break;
        case 'q':
            o->queue = optarg;
            break;
        case 'n':
            o->calls = wr_cli_count("-n", optarg, MAX_CALLS);
            break;
        case 'c':
            o->window = wr_cli_count("-c", optarg, MAX_WINDOW);
            break;
        case 'm':
            o->method = optarg;
            break;
        case 'p':
            o->params = optarg;
            break;
        case 't':
            o->timeout_s = wr_cli_seconds("-t", optarg, MAX_TIMEOUT_S);
            break;
        case 'd':
            o->direct = 1;
            break;
        case 'l':
            o->label = optarg;
            break;
        case 'j':
            o->json = 1;
            break;
        case 'R':
            o->reliable = 1;
            break;
        case 'Q':
            o->reply_queue = optarg;
            break;
        case 'G':
            o->grace_s = wr_cli_seconds("--grace", optarg, MAX_TIMEOUT_S);
            break;
        case 'P':
            o->progress_s = wr_cli_seconds("--progress", optarg, MAX_TIMEOUT_S);
            break;
        case 'h':
            usage(stdout);
            exit(WR_EXIT_OK);
        default:
            wr_cli_bad_option(ch, argv);
        }
    }
    if (optind < argc)
        wr_cli_usage_error("unexpected argument \"%s\"", argv[optind]);
    if (o->method[0] == '\0')
        wr_cli_usage_error("-m: METHOD is empty");
    if (o->label == NULL)
        o->label = o->queue;
    if (o->reliable && (o->direct || o->json))
        wr_cli_usage_error("--reliable: --direct and --json are not available");
    if (!o->reliable && (o->reply_queue != NULL || o->progress_s > 0))
        wr_cli_usage_error("--reply-queue and --progress need --reliable");
}

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Where each call stands. */
enum call_state { CALL_UNSENT = 0, CALL_IN_FLIGHT, CALL_ANSWERED };

/*
 * The run: what was asked, and per call its state and timings.  Calls are
 * numbered 0..calls-1; the number is both the JSON-RPC id and the
 * correlation_id, so a reply leads straight to its slot.
 */
struct run {
    const struct options *o;
    json_t *params; /* the parsed PARAMS_JSON, to check echo results */
    char *prefix;   /* the request up to the id: {"jsonrpc":...,"id": */
    size_t prefix_len;
    unsigned char *state; /* enum call_state per call */
    int64_t *sent_ns;     /* publish time per call */
    int64_t *lat_ns;      /* latency of each answered call, in answer order */
    long sent, answered, in_flight;
    long errors, mismatches;
    int64_t start_ns, end_ns;
};

/*
 * Encode the fixed part of every request once: the method and params go
 * through jansson (so PARAMS_JSON is validated and the method escaped), and
 * each call only appends its id.  Keeps the generator's own CPU use small,
 * which matters when it shares two cores with the broker and the server.
 */
static void build_prefix(struct run *r)
{
    json_error_t jerr;
    json_t *req;
    char *text;
    size_t len;

    r->params = json_loads(r->o->params, JSON_DECODE_ANY, &jerr);
    if (r->params == NULL)
        wr_cli_usage_error("-p: not valid JSON: %s (column %d)", jerr.text, jerr.column);
    if (!json_is_array(r->params) && !json_is_object(r->params))
        wr_cli_usage_error("-p: PARAMS_JSON must be a JSON array or object");
    req =
        json_pack("{s:s, s:s, s:O}", "jsonrpc", "2.0", "method", r->o->method, "params", r->params);
    text = req ? json_dumps(req, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(req);
    if (text == NULL)
        wr_cli_usage_error("-m: cannot encode the request (is METHOD valid UTF-8?)");
    /* Swap the closing brace for the id key: {"jsonrpc":...,"params":P,"id": */
    len = strlen(text);
    r->prefix = malloc(len + sizeof ",\"id\":");
    if (r->prefix == NULL) {
        fprintf(stderr, "warren-bench: out of memory\n");
        exit(WR_EXIT_SOFTWARE);
    }
    memcpy(r->prefix, text, len - 1);
    memcpy(r->prefix + len - 1, ",\"id\":", sizeof ",\"id\":");
    r->prefix_len = strlen(r->prefix);
    free(text);
}

/* Publish call number R->sent.  0, or -1 with ERR (the client is lost). */
static int publish_next(struct run *r, wr_client *c, char *err, size_t errlen)
{
    char body[64 + 1024], *big = NULL, *b = body, corr[24];
    long id = r->sent;
    size_t len;
    int rc;

    snprintf(corr, sizeof corr, "%ld", id);
    len = r->prefix_len + strlen(corr) + 1;
    if (len >= sizeof body) {
        big = malloc(len + 1);
        if (big == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        b = big;
    }
    memcpy(b, r->prefix, r->prefix_len);
    snprintf(b + r->prefix_len, len + 1 - r->prefix_len, "%s}", corr);

    r->sent_ns[id] = now_ns();
    rc = wr_client_publish(c, "", r->o->queue, b, len, corr, 0, err, errlen);
    free(big);
    if (rc < 0)
        return -1;
    r->state[id] = CALL_IN_FLIGHT;
    r->sent++;
    r->in_flight++;
    return 0;
}

/* The call number a correlation id names, or -1 if it names none we sent. */
static long call_of(const struct run *r, const char *corr)
{
    char *end;
    long id;

    if (corr == NULL || corr[0] < '0' || corr[0] > '9')
        return -1;
    errno = 0;
    id = strtol(corr, &end, 10);
    if (*end != '\0' || errno != 0 || id < 0 || id >= r->sent)
        return -1;
    return id;
}

/*
 * Is BODY a JSON-RPC result for call ID?  Returns 0 if so, 1 for an error
 * reply (or not JSON-RPC at all), 2 for a result that answers another id or
 * carries the wrong value.  The first few problems are shown on stderr, so
 * a broken run says why without flooding the terminal.
 */
static int check_reply(const struct run *r, long id, const wr_client_reply *reply)
{
    static int shown;
    json_t *resp, *result, *rid;
    int bad = 0;

    resp = json_loadb(reply->body, reply->len, 0, NULL);
    result = json_object_get(resp, "result"); /* NULL-safe on a NULL resp */
    rid = json_object_get(resp, "id");
    if (result == NULL || json_object_get(resp, "error") != NULL)
        bad = 1;
    else if (!json_is_integer(rid) || json_integer_value(rid) != id)
        bad = 2;
    else if (strcmp(r->o->method, "echo") == 0 && !json_equal(result, r->params))
        bad = 2;
    json_decref(resp);
    if (bad && shown++ < 5)
        fprintf(stderr, "warren-bench: call %ld: %s: %.200s\n", id,
                bad == 1 ? "not a result" : "wrong id or value", reply->body);
    return bad;
}

/* Account for one reply. */
static void take_reply(struct run *r, const wr_client_reply *reply, int64_t at)
{
    long id = call_of(r, reply->correlation_id);

    if (id < 0 || r->state[id] != CALL_IN_FLIGHT) {
        /* Not ours, or answered twice: it frees no slot.  The call it
         * should have answered (if any) will time out. */
        r->mismatches++;
        return;
    }
    r->state[id] = CALL_ANSWERED;
    r->in_flight--;
    r->lat_ns[r->answered++] = at - r->sent_ns[id];
    switch (check_reply(r, id, reply)) {
    case 1:
        r->errors++;
        break;
    case 2:
        r->mismatches++;
        break;
    }
}

/*
 * The closed loop: fill the window, then send one more per reply until all
 * calls are sent, and wait for the rest.  Returns 0 when every call was
 * answered, EXIT_TIMED_OUT at the deadline, or WR_EXIT_UNAVAILABLE when the
 * connection failed (ERR says why).
 */
static int drive(struct run *r, wr_client *c, char *err, size_t errlen)
{
    int64_t deadline;

    r->start_ns = now_ns();
    deadline = r->start_ns + (int64_t)(r->o->timeout_s * 1e9);
    while (r->answered < r->o->calls) {
        wr_client_reply reply;
        int64_t left;
        int rc;

        while (r->sent < r->o->calls && r->in_flight < r->o->window)
            if (publish_next(r, c, err, errlen) < 0)
                return WR_EXIT_UNAVAILABLE;
        left = deadline - now_ns();
        if (left <= 0)
            return EXIT_TIMED_OUT;
        rc = wr_client_recv(c, (int)((left + 999999) / 1000000), &reply, err, errlen);
        if (rc < 0)
            return WR_EXIT_UNAVAILABLE;
        if (rc == 0)
            continue; /* the deadline check above ends it */
        take_reply(r, &reply, now_ns());
        wr_client_reply_free(&reply);
        r->end_ns = now_ns();
    }
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/*
 * Nearest-rank percentile P (an integer percent) of the N sorted
 * latencies, in ms.  Integer arithmetic for the rank: ceil(P*N/100), with
 * no libm to link.
 */
static double pct_ms(const int64_t *sorted, long n, int p)
{
    long k;

    if (n == 0)
        return 0.0;
    k = ((long)p * n + 99) / 100 - 1;
    if (k < 0)
        k = 0;
    if (k >= n)
        k = n - 1;
    return (double)sorted[k] / 1e6;
}

/*
 * CPU seconds (user + system) this process has used so far.  Reported
 * because the generator shares the machine with what it measures: a reader
 * can see what it took from the server.
 */
static double cpu_seconds(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) < 0)
        return 0.0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void report(struct run *r, int timed_out)
{
    const struct options *o = r->o;
    long timeouts = r->in_flight;
    double wall, rate, p50, p90, p99, max, cpu = cpu_seconds();

    if (r->end_ns <= r->start_ns || timed_out)
        r->end_ns = now_ns();
    wall = (double)(r->end_ns - r->start_ns) / 1e9;
    rate = wall > 0 ? (double)r->answered / wall : 0.0;
    qsort(r->lat_ns, (size_t)r->answered, sizeof *r->lat_ns, cmp_i64);
    p50 = pct_ms(r->lat_ns, r->answered, 50);
    p90 = pct_ms(r->lat_ns, r->answered, 90);
    p99 = pct_ms(r->lat_ns, r->answered, 99);
    max = pct_ms(r->lat_ns, r->answered, 100);

    if (o->json) {
        json_t *j =
            json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:f, "
                      "s:I, s:I, s:I, s:b, s:b}",
                      "label", o->label, "queue", o->queue, "calls", (json_int_t)o->calls,
                      "answered", (json_int_t)r->answered, "sent", (json_int_t)r->sent, "window",
                      (json_int_t)o->window, "wall_s", wall, "calls_per_s", rate, "p50_ms", p50,
                      "p90_ms", p90, "p99_ms", p99, "max_ms", max, "cpu_s", cpu, "errors",
                      (json_int_t)r->errors, "mismatches", (json_int_t)r->mismatches, "timeouts",
                      (json_int_t)timeouts, "timed_out", timed_out, "direct", o->direct);
        char *text =
            j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) : NULL;

        printf("%s\n", text ? text : "{}");
        free(text);
        json_decref(j);
    } else {
        /* One line of KEY=VALUE words after the label: easy to read, and
         * easy for a script to pick apart. */
        printf("%s calls=%ld wall=%.3fs rate=%.1f/s p50=%.2fms p90=%.2fms p99=%.2fms "
               "max=%.2fms cpu=%.2fs errors=%ld mismatches=%ld timeouts=%ld",
               o->label, r->answered, wall, rate, p50, p90, p99, max, cpu, r->errors, r->mismatches,
               timeouts);
        if (timed_out)
            printf(" TIMED-OUT after %gs (sent %ld of %ld)", o->timeout_s, r->sent, o->calls);
        printf("\n");
    }
    fflush(stdout);
}

/* --reliable: hand the run to bench/reliable.c. */
static int run_reliable(const struct options *o, struct run *r)
{
    struct wr_bench_reliable_opts ro = {
        .uri = o->uri,
        .queue = o->queue,
        .method = o->method,
        .label = o->label,
        .reply_queue = o->reply_queue,
        .prefix = r->prefix,
        .prefix_len = r->prefix_len,
        .params = r->params,
        .calls = o->calls,
        .window = o->window,
        .timeout_s = o->timeout_s,
        .grace_s = o->grace_s,
        .progress_s = o->progress_s,
    };
    int rc = wr_bench_reliable_run(&ro);

    json_decref(r->params);
    free(r->prefix);
    return rc;
}

int main(int argc, char **argv)
{
    struct options o;
    struct run r;
    wr_client *c = NULL;
    char err[512];
    int rc;

    parse_args(argc, argv, &o);
    memset(&r, 0, sizeof r);
    r.o = &o;
    build_prefix(&r);
    if (o.reliable)
        return run_reliable(&o, &r);
    r.state = calloc((size_t)o.calls, sizeof *r.state);
    r.sent_ns = calloc((size_t)o.calls, sizeof *r.sent_ns);
    r.lat_ns = calloc((size_t)o.calls, sizeof *r.lat_ns);
    if (r.state == NULL || r.sent_ns == NULL || r.lat_ns == NULL) {
        fprintf(stderr, "warren-bench: out of memory for %ld calls\n", o.calls);
        return WR_EXIT_SOFTWARE;
    }

    if (wr_client_connect(&c, o.uri, o.direct ? WR_CLIENT_DIRECT_REPLY_TO : WR_CLIENT_REPLY_QUEUE,
                          err, sizeof err) < 0) {
        fprintf(stderr, "warren-bench: %s\n", err);
        return WR_EXIT_UNAVAILABLE;
    }
    /* A request no queue takes (server not started, queue misspelt) comes
     * back and fails the run at once, instead of after the timeout. */
    wr_client_set_mandatory(c, 1);

    rc = drive(&r, c, err, sizeof err);
    if (rc == WR_EXIT_UNAVAILABLE)
        fprintf(stderr, "warren-bench: %s\n", err);
    else if (rc == EXIT_TIMED_OUT)
        fprintf(stderr, "warren-bench: %s: global timeout (%gs) with %ld calls unanswered\n",
                o.label, o.timeout_s, o.calls - r.answered);
    report(&r, rc == EXIT_TIMED_OUT);
    if (rc == 0 && (r.errors > 0 || r.mismatches > 0))
        rc = EXIT_BAD_REPLIES;

    wr_client_close(c);
    json_decref(r.params);
    free(r.prefix);
    free(r.state);
    free(r.sent_ns);
    free(r.lat_ns);
    return rc;
}
