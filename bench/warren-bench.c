/*
 * warren-bench: a load generator for RPC servers on AMQP (warren, the bare
 * loop bench/bare.c, any tutorial-style server).
 *
 *   warren-bench [-u URI] [-q QUEUE] [-n CALLS | --duration S] [-c WINDOW]
 *                [--connections C] [-m METHOD] [-p PARAMS_JSON | --payload BYTES]
 *                [--format jsonrpc|raw|amqpbus] [--mix PERMILLE:METHOD:PARAMS_JSON]
 *                [--rate R] [--warmup S] [--persistent] [-t SECONDS] [--direct]
 *                [--label TEXT] [--json]
 *   warren-bench --reliable [--reply-queue NAME] [--grace SECONDS] [--progress SECONDS] ...
 *   warren-bench --wait-consumers N -q QUEUE [-t SECONDS] [--since-ns T] [--json]
 *
 * Why closed-loop windows by default: it is how RPC callers behave (a
 * caller waits for its answer before it asks again), so the figure is
 * "calls/s with C x WINDOW callers waiting", and the latency is what each
 * of them sees.  --rate adds an open loop at an offered rate (still capped
 * by the windows) for latency against offered load.
 *
 * It speaks to the server exactly as a tutorial-style client does, through
 * client/rpc_client.c: requests to QUEUE on the default exchange with
 * reply_to and correlation_id, replies on a reply queue of each
 * connection's own (or direct reply-to).  The load itself is bench/load.c;
 * the fault tests' caller is bench/reliable.c; --wait-consumers is
 * bench/wait_consumers.c.
 *
 * Output: one line (or one JSON object with --json) on stdout.  Exit
 * status: 0 every call answered correctly; 1 wrong, duplicated or error
 * replies; 2 the -t deadline struck with calls unanswered (lost); 64 bad
 * usage; 69 broker unreachable or lost.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench/load.h"
#include "bench/reliable.h"
#include "client/cli.h"
#include "common/exitcodes.h"

#define DEFAULT_CALLS 10000L
#define DEFAULT_WINDOW 64L
#define DEFAULT_METHOD "echo"
#define DEFAULT_PARAMS "[\"hello\"]"
#define DEFAULT_TIMEOUT_S 120.0
#define DEFAULT_GRACE_S 60.0
#define MAX_CALLS 100000000L
#define MAX_WINDOW 65535L
#define MAX_CONNECTIONS 1024L
#define MAX_PAYLOAD (64L * 1024 * 1024)
#define MAX_TIMEOUT_S 86400.0

#define EXIT_BAD_REPLIES 1
#define EXIT_TIMED_OUT 2

static const char usage_line[] =
    "usage: warren-bench [-u URI] [-q QUEUE] [-n CALLS | --duration SECONDS] [-c WINDOW]\n"
    "                    [--connections C] [-m METHOD] [-p PARAMS_JSON | --payload BYTES]\n"
    "                    [--format jsonrpc|raw|amqpbus] [--mix PERMILLE:METHOD:PARAMS_JSON]\n"
    "                    [--rate CALLS_PER_S] [--warmup SECONDS] [--persistent]\n"
    "                    [-t SECONDS] [--direct] [--label TEXT] [--json]\n"
    "       warren-bench --reliable [--reply-queue NAME] [--grace SECONDS] [--progress SECONDS]\n"
    "                    [-u URI] [-q QUEUE] [-n CALLS] [-c WINDOW] [-m METHOD]\n"
    "                    [-p PARAMS_JSON | --payload BYTES] [-t SECONDS] [--label TEXT]\n"
    "       warren-bench --wait-consumers N [-u URI] -q QUEUE [-t SECONDS] [--since-ns T]\n"
    "                    [--json]\n"
    "       warren-bench --delete-queues [-u URI] QUEUE...\n";

static void usage(FILE *f)
{
    fputs(usage_line, f);
    fputs("\n"
          "Keep C x WINDOW JSON-RPC calls in flight against QUEUE until CALLS have been\n"
          "answered (or for SECONDS), check every reply, and print throughput and latency.\n"
          "\n"
          "  -u, --uri URI          broker (default: $WARREN_URI, else " WR_CLI_DEFAULT_URI ");\n"
          "                         amqps:// for TLS, with $WARREN_CACERT, $WARREN_CERT,\n"
          "                         $WARREN_KEY, $WARREN_BROKER_PASSWORD as for warren-call\n"
          "  -q, --queue QUEUE      request queue (default: " WR_CLI_DEFAULT_QUEUE ")\n"
          "  -n, --calls CALLS      calls to make in all (default: 10000)\n"
          "      --duration SECONDS instead of -n: keep the windows full this long, then\n"
          "                         wait for the outstanding replies\n"
          "  -c, --window WINDOW    calls in flight at once per connection (default: 64)\n"
          "      --connections C    connections, each with its reply queue and window\n"
          "                         (default: 1)\n"
          "  -m, --method METHOD    method to call (default: " DEFAULT_METHOD ")\n"
          "  -p, --params JSON      params, an array or object (default: " DEFAULT_PARAMS ")\n"
          "      --payload BYTES    params = [a string of BYTES characters] (overrides -p)\n"
          "      --format FORMAT    jsonrpc (default); raw: the payload (or PARAMS_JSON) is\n"
          "                         the body, echo answers [body]; amqpbus: the body is\n"
          "                         {\"q\": PAYLOAD, \"qid\": ID}, echo answers [PAYLOAD]\n"
          "      --mix P:METHOD:PARAMS  P per mille of the calls call METHOD with PARAMS\n"
          "                         (jsonrpc); their latency is reported apart (mix_*)\n"
          "      --rate R           offer R calls/s in all (open loop, capped by the windows)\n"
          "      --warmup SECONDS   replies in the first SECONDS are not counted (default: 0)\n"
          "      --persistent       requests with delivery_mode 2\n"
          "  -t, --timeout SECONDS  give up after this long in all (default: 120, or the\n"
          "                         duration + 60 s)\n"
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
          "Start-up time (bench/wait_consumers.c):\n"
          "      --wait-consumers N poll QUEUE every 5 ms until it has N consumers, print\n"
          "                         \"QUEUE consumers=N elapsed_ms=MS [since_ms=MS]\"\n"
          "      --since-ns T       also the ms since T, CLOCK_REALTIME nanoseconds\n"
          "                         (date +%s%N)\n"
          "\n"
          "Between the benchmark's runs (bench/wait_consumers.c):\n"
          "      --delete-queues QUEUE...  delete each QUEUE (gone already: fine)\n"
          "\n"
          "Exit status: 0 all calls answered correctly; 1 wrong, duplicated or error\n"
          "replies; 2 timeout (calls lost; --wait-consumers: too few consumers);\n"
          "3 (--reliable) a sent call was never answered; 64 bad usage; 69 broker\n"
          "unreachable or lost.\n",
          f);
}

struct options {
    const char *uri;
    const char *queue;
    long calls;
    int calls_set;
    long window;
    long connections;
    const char *method;
    const char *params;
    long payload; /* -1: none, use params */
    int format;
    const char *format_name;
    long mix_permille;
    char *mix_method; /* owned */
    const char *mix_params;
    double rate;
    double duration_s;
    double warmup_s;
    int persistent;
    double timeout_s;
    int timeout_set;
    int direct;
    const char *label;
    int json;
    /* --reliable (bench/reliable.c) */
    int reliable;
    const char *reply_queue;
    double grace_s;
    double progress_s;
    /* --wait-consumers (bench/wait_consumers.c) */
    long wait_consumers;
    int64_t since_ns;
    /* --delete-queues: the names after the options */
    int delete_queues;
    char **names;
    int nnames;
};

/* TEXT as a number >= 0 (fractions allowed) at most MAX, else a usage
 * error naming OPT.  (wr_cli_seconds refuses 0.) */
static double nonneg(const char *opt, const char *text, double max)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !(v >= 0 && v <= max))
        wr_cli_usage_error("%s: expected a number from 0 to %g, got \"%s\"", opt, max, text);
    return v;
}

static void parse_mix(struct options *o, const char *spec)
{
    const char *c1 = strchr(spec, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    char num[16];

    if (c1 == NULL || c2 == NULL || c1 == spec || c2 == c1 + 1 || (size_t)(c1 - spec) >= sizeof num)
        wr_cli_usage_error("--mix: expected PERMILLE:METHOD:PARAMS_JSON, got \"%s\"", spec);
    memcpy(num, spec, (size_t)(c1 - spec));
    num[c1 - spec] = '\0';
    o->mix_permille = wr_cli_count("--mix", num, 1000);
    free(o->mix_method);
    o->mix_method = strndup(c1 + 1, (size_t)(c2 - c1 - 1));
    if (o->mix_method == NULL)
        wr_cli_usage_error("out of memory");
    o->mix_params = c2 + 1;
}

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
                                             {"connections", required_argument, NULL, 'C'},
                                             {"duration", required_argument, NULL, 'D'},
                                             {"warmup", required_argument, NULL, 'W'},
                                             {"payload", required_argument, NULL, 'B'},
                                             {"persistent", no_argument, NULL, 'S'},
                                             {"format", required_argument, NULL, 'F'},
                                             {"mix", required_argument, NULL, 'X'},
                                             {"rate", required_argument, NULL, 'r'},
                                             {"wait-consumers", required_argument, NULL, 'w'},
                                             {"since-ns", required_argument, NULL, 'N'},
                                             {"delete-queues", no_argument, NULL, 'Z'},
                                             {NULL, 0, NULL, 0}};
    int ch;
    char *end;

    memset(o, 0, sizeof *o);
    wr_cli_init("warren-bench", usage_line);
    o->uri = wr_cli_default_uri();
    o->queue = WR_CLI_DEFAULT_QUEUE;
    o->calls = DEFAULT_CALLS;
    o->window = DEFAULT_WINDOW;
    o->connections = 1;
    o->method = DEFAULT_METHOD;
    o->params = DEFAULT_PARAMS;
    o->payload = -1;
    o->format = WR_BENCH_JSONRPC;
    o->format_name = "jsonrpc";
    o->timeout_s = DEFAULT_TIMEOUT_S;
    o->grace_s = DEFAULT_GRACE_S;
    o->since_ns = -1;
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
            o->calls_set = 1;
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
            o->timeout_set = 1;
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
        case 'C':
            o->connections = wr_cli_count("--connections", optarg, MAX_CONNECTIONS);
            break;
        case 'D':
            o->duration_s = wr_cli_seconds("--duration", optarg, MAX_TIMEOUT_S);
            break;
        case 'W':
            o->warmup_s = nonneg("--warmup", optarg, MAX_TIMEOUT_S);
            break;
        case 'B':
            o->payload = (long)nonneg("--payload", optarg, (double)MAX_PAYLOAD);
            if (strspn(optarg, "0123456789") != strlen(optarg))
                wr_cli_usage_error("--payload: expected a whole number of bytes, got \"%s\"",
                                   optarg);
            break;
        case 'S':
            o->persistent = 1;
            break;
        case 'F':
            if (strcmp(optarg, "jsonrpc") == 0)
                o->format = WR_BENCH_JSONRPC;
            else if (strcmp(optarg, "raw") == 0)
                o->format = WR_BENCH_RAW;
            else if (strcmp(optarg, "amqpbus") == 0)
                o->format = WR_BENCH_AMQPBUS;
            else
                wr_cli_usage_error("--format: expected jsonrpc, raw or amqpbus, got \"%s\"",
                                   optarg);
            o->format_name = optarg;
            break;
        case 'X':
            parse_mix(o, optarg);
            break;
        case 'r':
            o->rate = wr_cli_seconds("--rate", optarg, 1e9);
            break;
        case 'w':
            o->wait_consumers = wr_cli_count("--wait-consumers", optarg, 1000000);
            break;
        case 'N':
            errno = 0;
            o->since_ns = strtoll(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0' || o->since_ns < 0)
                wr_cli_usage_error("--since-ns: expected CLOCK_REALTIME nanoseconds, got \"%s\"",
                                   optarg);
            break;
        case 'Z':
            o->delete_queues = 1;
            break;
        case 'h':
            usage(stdout);
            exit(WR_EXIT_OK);
        default:
            wr_cli_bad_option(ch, argv);
        }
    }
    if (optind < argc && !o->delete_queues)
        wr_cli_usage_error("unexpected argument \"%s\"", argv[optind]);
    o->names = argv + optind;
    o->nnames = argc - optind;
    if (o->delete_queues && (o->wait_consumers > 0 || o->reliable))
        wr_cli_usage_error("--delete-queues is a mode of its own");
    if (o->delete_queues && o->nnames == 0)
        wr_cli_usage_error("--delete-queues: name the queues to delete");
    if (o->method[0] == '\0')
        wr_cli_usage_error("-m: METHOD is empty");
    if (o->label == NULL)
        o->label = o->queue;
    if (o->since_ns >= 0 && o->wait_consumers == 0)
        wr_cli_usage_error("--since-ns needs --wait-consumers");
    if (o->wait_consumers > 0 && o->reliable)
        wr_cli_usage_error("--wait-consumers and --reliable are separate modes");
    if (o->reliable &&
        (o->direct || o->json || o->connections != 1 || o->duration_s > 0 || o->warmup_s > 0 ||
         o->persistent || o->format != WR_BENCH_JSONRPC || o->mix_permille > 0 || o->rate > 0))
        wr_cli_usage_error("--reliable: only -u -q -n -c -m -p --payload -t --label and its own "
                           "options apply");
    if (!o->reliable && (o->reply_queue != NULL || o->progress_s > 0))
        wr_cli_usage_error("--reply-queue and --progress need --reliable");
    if (o->duration_s > 0 && o->calls_set)
        wr_cli_usage_error("-n and --duration: give one of them");
    if (o->duration_s > 0 && o->warmup_s >= o->duration_s)
        wr_cli_usage_error("--warmup must be shorter than --duration");
    if (o->mix_permille > 0 && o->format != WR_BENCH_JSONRPC)
        wr_cli_usage_error("--mix needs --format jsonrpc (raw and amqpbus routes have one method)");
    if (o->duration_s > 0 && !o->timeout_set && o->timeout_s < o->duration_s + 60)
        o->timeout_s = o->duration_s + 60;
    if (o->duration_s > 0 && o->timeout_s <= o->duration_s)
        wr_cli_usage_error("-t must be longer than --duration");
}

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (p == NULL) {
        fprintf(stderr, "warren-bench: out of memory\n");
        exit(WR_EXIT_SOFTWARE);
    }
    return p;
}

/* TEXT compact (new, caller frees); exits on failure. */
static char *dump(const json_t *v, const char *opt)
{
    char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

    if (t == NULL)
        wr_cli_usage_error("%s: cannot encode the request (is METHOD valid UTF-8?)", opt);
    return t;
}

/* PARAMS_JSON parsed (new reference); a usage error naming OPT if it is
 * no JSON array or object. */
static json_t *parse_params(const char *text, const char *opt)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);

    if (v == NULL)
        wr_cli_usage_error("%s: not valid JSON: %s (column %d)", opt, jerr.text, jerr.column);
    if (!json_is_array(v) && !json_is_object(v))
        wr_cli_usage_error("%s: PARAMS_JSON must be a JSON array or object", opt);
    return v;
}

/* What the requests are made of; the strings and values are owned here. */
struct requests {
    json_t *payload; /* the string of --payload, or NULL */
    json_t *params;  /* main params (jsonrpc), or the q / body value */
    json_t *expect, *mix_params, *mix_expect;
    char *pre, *post, *mix_pre;
    char *expect_text;
};

/*
 * A JSON-RPC request to METHOD with PARAMS, up to the id:
 * {"jsonrpc":"2.0","method":M,"params":P,"id":   (new, caller frees).
 */
static char *jsonrpc_prefix(const char *method, json_t *params, const char *opt)
{
    json_t *req =
        json_pack("{s:s, s:s, s:O}", "jsonrpc", "2.0", "method", method, "params", params);
    char *text, *pre;
    size_t len;

    if (req == NULL)
        wr_cli_usage_error("%s: cannot encode the request (is METHOD valid UTF-8?)", opt);
    text = dump(req, opt);
    json_decref(req);
    len = strlen(text);
    pre = xmalloc(len + sizeof ",\"id\":");
    memcpy(pre, text, len - 1); /* all but the closing brace */
    memcpy(pre + len - 1, ",\"id\":", sizeof ",\"id\":");
    free(text);
    return pre;
}

static void set_request(struct wr_bench_request *r, const char *pre, size_t pre_len,
                        const char *post, int with_id, const json_t *expect)
{
    r->pre = pre;
    r->pre_len = pre_len;
    r->post = post;
    r->post_len = strlen(post);
    r->with_id = with_id;
    r->expect = expect;
}

/*
 * A large expected result's text, for bench/load.c's fast check: only
 * worth it (and only correct to rely on) beyond a few hundred bytes,
 * where the reply's other fields are small beside it.
 */
#define FAST_CHECK_MIN 1024

static void set_expect_text(struct requests *rq, struct wr_bench_request *r)
{
    if (r->expect == NULL)
        return;
    rq->expect_text = json_dumps(r->expect, JSON_COMPACT | JSON_ENCODE_ANY);
    if (rq->expect_text == NULL || strlen(rq->expect_text) < FAST_CHECK_MIN) {
        free(rq->expect_text);
        rq->expect_text = NULL;
        return;
    }
    r->expect_text = rq->expect_text;
    r->expect_text_len = strlen(rq->expect_text);
}

/* Build the main (and mix) requests for O's format into RQ and L. */
static void build_requests(const struct options *o, struct requests *rq, struct wr_bench_load *l)
{
    int echo = strcmp(o->method, "echo") == 0;

    memset(rq, 0, sizeof *rq);
    if (o->payload >= 0) {
        char *s = xmalloc((size_t)o->payload + 1);

        memset(s, 'x', (size_t)o->payload);
        s[o->payload] = '\0';
        rq->payload = json_stringn(s, (size_t)o->payload);
        free(s);
    }
    switch (o->format) {
    case WR_BENCH_JSONRPC:
        rq->params = rq->payload ? json_pack("[O]", rq->payload) : parse_params(o->params, "-p");
        rq->pre = jsonrpc_prefix(o->method, rq->params, "-m");
        set_request(&l->main, rq->pre, strlen(rq->pre), "}", 1, echo ? rq->params : NULL);
        break;
    case WR_BENCH_RAW: {
        /* The body is the payload's characters, or PARAMS_JSON as text;
         * warren's raw format makes params = [body as JSON, else as a
         * string], and echo answers that array as JSON. */
        json_t *v;

        rq->params = rq->payload ? json_incref(rq->payload) : parse_params(o->params, "-p");
        rq->pre = rq->payload ? strdup(json_string_value(rq->payload)) : dump(rq->params, "-p");
        if (rq->pre == NULL)
            wr_cli_usage_error("out of memory");
        v = json_loads(rq->pre, JSON_DECODE_ANY, NULL);
        if (v == NULL)
            v = json_string(rq->pre);
        rq->expect = json_pack("[o]", v);
        set_request(&l->main, rq->pre, strlen(rq->pre), "", 0, echo ? rq->expect : NULL);
        break;
    }
    case WR_BENCH_AMQPBUS: {
        /* {"q":VALUE,"qid":"ID"}: echo answers [VALUE]. */
        char *q;
        size_t n;

        rq->params = rq->payload ? json_incref(rq->payload) : parse_params(o->params, "-p");
        q = dump(rq->params, "-p");
        n = strlen(q) + sizeof "{\"q\":,\"qid\":\"";
        rq->pre = xmalloc(n);
        snprintf(rq->pre, n, "{\"q\":%s,\"qid\":\"", q);
        free(q);
        rq->expect = json_pack("[O]", rq->params);
        set_request(&l->main, rq->pre, strlen(rq->pre), "\"}", 1, echo ? rq->expect : NULL);
        break;
    }
    }
    set_expect_text(rq, &l->main);
    if (o->mix_permille > 0) {
        rq->mix_params = parse_params(o->mix_params, "--mix");
        rq->mix_pre = jsonrpc_prefix(o->mix_method, rq->mix_params, "--mix");
        set_request(&l->mix, rq->mix_pre, strlen(rq->mix_pre), "}", 1,
                    strcmp(o->mix_method, "echo") == 0 ? rq->mix_params : NULL);
    }
}

static void free_requests(struct requests *rq)
{
    free(rq->expect_text);
    json_decref(rq->payload);
    json_decref(rq->params);
    json_decref(rq->expect);
    json_decref(rq->mix_params);
    free(rq->pre);
    free(rq->post);
    free(rq->mix_pre);
}

/*
 * Nearest-rank percentile P (per mille) of the N sorted latencies, in ms:
 * the latency at rank ceil(P*N/1000).
 */
static double pct_ms(const int64_t *sorted, long n, long p)
{
    long k;

    if (n == 0)
        return 0.0;
    k = (p * n + 999) / 1000 - 1;
    if (k < 0)
        k = 0;
    if (k >= n)
        k = n - 1;
    return (double)sorted[k] / 1e6;
}

/*
 * CPU seconds (user + system) this process has used, all threads.
 * Reported because the generator shares the machine with what it
 * measures: a reader can see what it took from the server.
 */
static double cpu_seconds(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) < 0)
        return 0.0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static const long pcts[] = {500, 900, 990, 999, 1000};
static const char *const pct_names[] = {"p50", "p90", "p99", "p999", "max"};
static const char *const pct_text[] = {"p50", "p90", "p99", "p99.9", "max"};
#define NPCT (sizeof pcts / sizeof pcts[0])

static void report(const struct options *o, const struct wr_bench_load *l)
{
    double rate = l->seconds > 0 ? (double)l->counted / l->seconds : 0.0;
    double mix_rate = l->seconds > 0 ? (double)l->mix_counted / l->seconds : 0.0;
    double cpu = cpu_seconds();
    char key[32];

    if (o->json) {
        json_t *j = json_object();
        char *text;

        json_object_set_new(j, "label", json_string(o->label));
        json_object_set_new(j, "queue", json_string(o->queue));
        json_object_set_new(j, "format", json_string(o->format_name));
        json_object_set_new(j, "connections", json_integer(o->connections));
        json_object_set_new(j, "window", json_integer(o->window));
        json_object_set_new(j, "calls", json_integer(l->counted));
        json_object_set_new(j, "seconds", json_real(l->seconds));
        json_object_set_new(j, "calls_per_s", json_real(rate));
        for (size_t i = 0; i < NPCT; i++) {
            snprintf(key, sizeof key, "%s_ms", pct_names[i]);
            json_object_set_new(j, key, json_real(pct_ms(l->lat_ns, l->counted, pcts[i])));
        }
        json_object_set_new(j, "wrong", json_integer(l->wrong));
        json_object_set_new(j, "duplicated", json_integer(l->duplicated));
        json_object_set_new(j, "lost", json_integer(l->lost));
        json_object_set_new(j, "errors", json_integer(l->errors));
        json_object_set_new(j, "client_cpu_s", json_real(cpu));
        json_object_set_new(j, "sent", json_integer(l->sent));
        json_object_set_new(j, "answered", json_integer(l->answered));
        json_object_set_new(j, "timed_out", json_boolean(l->timed_out));
        json_object_set_new(j, "duration_s", json_real(o->duration_s));
        json_object_set_new(j, "warmup_s", json_real(o->warmup_s));
        json_object_set_new(j, "rate_offered", json_real(o->rate));
        json_object_set_new(j, "payload_bytes", json_integer(o->payload));
        json_object_set_new(j, "persistent", json_boolean(o->persistent));
        json_object_set_new(j, "direct", json_boolean(o->direct));
        if (o->mix_permille > 0) {
            json_object_set_new(j, "mix_permille", json_integer(o->mix_permille));
            json_object_set_new(j, "mix_method", json_string(o->mix_method));
            json_object_set_new(j, "mix_calls", json_integer(l->mix_counted));
            json_object_set_new(j, "mix_calls_per_s", json_real(mix_rate));
            for (size_t i = 0; i < NPCT; i++) {
                snprintf(key, sizeof key, "mix_%s_ms", pct_names[i]);
                json_object_set_new(j, key,
                                    json_real(pct_ms(l->mix_lat_ns, l->mix_counted, pcts[i])));
            }
        }
        text = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6));
        printf("%s\n", text ? text : "{}");
        free(text);
        json_decref(j);
    } else {
        /* One line of KEY=VALUE words after the label: easy to read, and
         * easy for a script to pick apart. */
        printf("%s calls=%ld wall=%.3fs rate=%.1f/s", o->label, l->counted, l->seconds, rate);
        for (size_t i = 0; i < NPCT; i++)
            printf(" %s=%.2fms", pct_text[i], pct_ms(l->lat_ns, l->counted, pcts[i]));
        printf(" cpu=%.2fs errors=%ld wrong=%ld duplicated=%ld lost=%ld", cpu, l->errors, l->wrong,
               l->duplicated, l->lost);
        if (o->mix_permille > 0) {
            printf(" mix_calls=%ld", l->mix_counted);
            for (size_t i = 0; i < NPCT; i++)
                printf(" mix_%s=%.2fms", pct_text[i],
                       pct_ms(l->mix_lat_ns, l->mix_counted, pcts[i]));
        }
        if (l->timed_out)
            printf(" TIMED-OUT after %gs (sent %ld, answered %ld)", o->timeout_s, l->sent,
                   l->answered);
        printf("\n");
    }
    fflush(stdout);
}

/* --reliable: hand the run to bench/reliable.c. */
static int run_reliable(const struct options *o, const struct requests *rq)
{
    struct wr_bench_reliable_opts ro = {
        .uri = o->uri,
        .queue = o->queue,
        .method = o->method,
        .label = o->label,
        .reply_queue = o->reply_queue,
        .prefix = rq->pre,
        .prefix_len = strlen(rq->pre),
        .params = rq->params,
        .calls = o->calls,
        .window = o->window,
        .timeout_s = o->timeout_s,
        .grace_s = o->grace_s,
        .progress_s = o->progress_s,
    };

    return wr_bench_reliable_run(&ro);
}

int main(int argc, char **argv)
{
    int64_t start_ns = now_ns();
    struct options o;
    struct requests rq;
    struct wr_bench_load l;
    int rc;

    parse_args(argc, argv, &o);
    if (o.delete_queues)
        return wr_bench_delete_queues(o.uri, (const char *const *)o.names, o.nnames);
    if (o.wait_consumers > 0)
        return wr_bench_wait_consumers(o.uri, o.queue, o.wait_consumers, o.timeout_s, start_ns,
                                       o.since_ns, o.json);
    json_object_seed(0); /* before the threads, once */
    memset(&l, 0, sizeof l);
    build_requests(&o, &rq, &l);
    if (o.reliable) {
        rc = run_reliable(&o, &rq);
        free_requests(&rq);
        free(o.mix_method);
        return rc;
    }
    l.uri = o.uri;
    l.queue = o.queue;
    l.direct = o.direct;
    l.persistent = o.persistent;
    l.format = o.format;
    l.connections = o.connections;
    l.window = o.window;
    l.calls = o.duration_s > 0 ? 0 : o.calls;
    l.duration_s = o.duration_s;
    l.warmup_s = o.warmup_s;
    l.rate = o.rate;
    l.timeout_s = o.timeout_s;
    l.mix_permille = o.mix_permille;

    rc = wr_bench_load_run(&l);
    if (rc == 0) {
        if (l.timed_out)
            fprintf(stderr, "warren-bench: %s: global timeout (%gs) with %ld calls unanswered\n",
                    o.label, o.timeout_s, l.lost);
        report(&o, &l);
        if (l.timed_out)
            rc = EXIT_TIMED_OUT;
        else if (l.wrong > 0 || l.duplicated > 0 || l.lost > 0 || l.errors > 0)
            rc = EXIT_BAD_REPLIES;
    }
    wr_bench_load_free(&l);
    free_requests(&rq);
    free(o.mix_method);
    return rc;
}
