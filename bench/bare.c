/*
 * warren-bare: the bare reference server warren is measured against.
 *
 *   warren-bare [-u URI] [-q QUEUE] [-P PROCESSES] [--prefetch N]
 *               [--queue-type quorum|classic] [--heartbeat S] [--confirm]
 *
 * The smallest correct rabbitmq-c echo loop with warren's semantics: the
 * best warren could be.  PROCESSES children, each with one connection and
 * one channel, consume QUEUE (durable, x-queue-type) with manual acks and
 * basic.qos(prefetch); for each delivery: parse the JSON-RPC request with
 * jansson, build the reply with jansson, publish it to reply_to on the
 * default exchange with the request's correlation_id, ack.  Nothing else
 * per call: no extra syscalls, one reused reply buffer.
 *
 * --confirm: publisher confirms on, and a request is acked only once the
 * broker confirmed its reply (warren's exact at-least-once semantics).
 * rabbitmq-c 0.11 has no confirm wait, so the broker's basic.ack frames
 * are read among the deliveries (amqp_consume_message reports
 * AMQP_STATUS_UNEXPECTED_STATE for them) and matched against a FIFO of
 * (publish sequence number, delivery tag), which prefetch bounds.
 *
 * Connection as warren's workers open it (common/amqp_conn.c: TCP_NODELAY,
 * the same heartbeat default), so the comparison is of the loops alone.
 *
 * The parent only forks, forwards SIGTERM/SIGINT and waits.  Exit: 0 when
 * every child exited 0; 64 bad usage; 69 broker unreachable or lost; 70
 * anything else (a child's own status is passed on).
 */
#include <amqp.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/cli.h"
#include "common/amqp_conn.h"
#include "common/exitcodes.h"

#define CHANNEL 1
#define MAX_PROCESSES 1024L
#define MAX_PREFETCH 65535L
#define DEFAULT_HEARTBEAT 30 /* warren's [broker] heartbeat default */
#define CONNECT_TIMEOUT_S 10
#define POLL_MS 200 /* how soon a child notices SIGTERM while idle */

static const char usage_line[] =
    "usage: warren-bare [-u URI] [-q QUEUE] [-P PROCESSES] [--prefetch N]\n"
    "                   [--queue-type quorum|classic] [--heartbeat SECONDS] [--confirm]\n";

struct options {
    const char *uri;
    const char *queue;
    long processes;
    long prefetch;
    const char *queue_type;
    int heartbeat;
    int confirm;
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static void usage(void)
{
    fputs(usage_line, stdout);
    fputs(
        "\n"
        "The bare rabbitmq-c JSON-RPC echo loop warren is measured against.\n"
        "\n"
        "  -u, --uri URI            broker (default: $WARREN_URI, else " WR_CLI_DEFAULT_URI ")\n"
        "  -q, --queue QUEUE        request queue, declared durable (default: " WR_CLI_DEFAULT_QUEUE
        ")\n"
        "  -P, --processes N        consumer processes, one connection each (default: 1)\n"
        "      --prefetch N         basic.qos per consumer (default: 1)\n"
        "      --queue-type TYPE    x-queue-type: quorum (default) or classic\n"
        "      --heartbeat SECONDS  AMQP heartbeat, 0 off (default: 30, as warren)\n"
        "      --confirm            ack a request only once the broker confirmed its reply\n"
        "  -h, --help               show this help\n"
        "\n"
        "Each process prints \"warren-bare: process I consuming\" on stderr when ready.\n"
        "SIGTERM/SIGINT: stop, exit 0.  Exit 64 bad usage, 69 broker unreachable.\n",
        stdout);
}

static void parse_args(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {{"uri", required_argument, NULL, 'u'},
                                             {"queue", required_argument, NULL, 'q'},
                                             {"processes", required_argument, NULL, 'P'},
                                             {"prefetch", required_argument, NULL, 'f'},
                                             {"queue-type", required_argument, NULL, 'T'},
                                             {"heartbeat", required_argument, NULL, 'H'},
                                             {"confirm", no_argument, NULL, 'C'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int ch;

    wr_cli_init("warren-bare", usage_line);
    *o = (struct options){.uri = wr_cli_default_uri(),
                          .queue = WR_CLI_DEFAULT_QUEUE,
                          .processes = 1,
                          .prefetch = 1,
                          .queue_type = "quorum",
                          .heartbeat = DEFAULT_HEARTBEAT};
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":u:q:P:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'u':
            o->uri = optarg;
            break;
        case 'q':
            o->queue = optarg;
            break;
        case 'P':
            o->processes = wr_cli_count("-P", optarg, MAX_PROCESSES);
            break;
        case 'f':
            o->prefetch = wr_cli_count("--prefetch", optarg, MAX_PREFETCH);
            break;
        case 'T':
            if (strcmp(optarg, "quorum") != 0 && strcmp(optarg, "classic") != 0)
                wr_cli_usage_error("--queue-type: expected quorum or classic, got \"%s\"", optarg);
            o->queue_type = optarg;
            break;
        case 'H':
            o->heartbeat =
                strcmp(optarg, "0") == 0 ? 0 : (int)wr_cli_count("--heartbeat", optarg, 3600);
            break;
        case 'C':
            o->confirm = 1;
            break;
        case 'h':
            usage();
            exit(WR_EXIT_OK);
        default:
            wr_cli_bad_option(ch, argv);
        }
    }
    if (optind < argc)
        wr_cli_usage_error("unexpected argument \"%s\"", argv[optind]);
    if (o->queue[0] == '\0')
        wr_cli_usage_error("-q: QUEUE is empty");
}

/* --- One consumer process ------------------------------------------------ */

/* A reply published under confirms whose request is not acked yet. */
struct pending {
    uint64_t seq; /* publish sequence number the broker confirms */
    uint64_t tag; /* the request's delivery tag */
    int confirmed;
};

struct consumer {
    amqp_connection_state_t conn;
    int index;
    int confirm;
    char *out; /* the reply buffer, reused; grows to the largest reply */
    size_t out_size;
    /* --confirm: a ring of at most prefetch entries, oldest at HEAD. */
    struct pending *fifo;
    size_t fifo_cap, head, count;
    uint64_t next_seq; /* sequence number of the next publish (from 1) */
};

static void die(struct consumer *c, int code, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));

static void die(struct consumer *c, int code, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "warren-bare: process %d: ", c->index);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(code);
}

static void check(struct consumer *c, amqp_rpc_reply_t r, const char *what)
{
    char err[400];

    if (wr_amqp_check(r, what, err, sizeof err) < 0)
        die(c, WR_EXIT_UNAVAILABLE, "%s", err);
}

/* Declare QUEUE as warren does: durable, x-queue-type. */
static void declare(struct consumer *c, const struct options *o)
{
    amqp_table_entry_t type = {
        .key = amqp_cstring_bytes("x-queue-type"),
        .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes(o->queue_type)}};
    amqp_table_t args = {.num_entries = 1, .entries = &type};

    amqp_queue_declare(c->conn, CHANNEL, amqp_cstring_bytes(o->queue), 0, 1, 0, 0, args);
    check(c, amqp_get_rpc_reply(c->conn), "queue.declare");
}

/* Declare the queue (again: the parent did it first), set the prefetch,
 * confirm mode if asked, and start consuming with manual acks. */
static void setup(struct consumer *c, const struct options *o)
{
    declare(c, o);
    amqp_basic_qos(c->conn, CHANNEL, 0, (uint16_t)o->prefetch, 0);
    check(c, amqp_get_rpc_reply(c->conn), "basic.qos");
    if (o->confirm) {
        amqp_confirm_select(c->conn, CHANNEL);
        check(c, amqp_get_rpc_reply(c->conn), "confirm.select");
        c->fifo_cap = (size_t)o->prefetch;
        c->fifo = calloc(c->fifo_cap, sizeof *c->fifo);
        if (c->fifo == NULL)
            die(c, WR_EXIT_SOFTWARE, "out of memory");
        c->next_seq = 1;
    }
    amqp_basic_consume(c->conn, CHANNEL, amqp_cstring_bytes(o->queue), amqp_empty_bytes, 0, 0, 0,
                       amqp_empty_table);
    check(c, amqp_get_rpc_reply(c->conn), "basic.consume");
}

/*
 * The reply to the request BODY, as compact JSON in C->out; returns its
 * length, or 0 when the request wants none (a notification: no id).
 * echo answers its params; any other method -32601; not JSON -32700; not a
 * JSON-RPC 2.0 request -32600.
 */
static size_t build_reply(struct consumer *c, const amqp_bytes_t body)
{
    json_t *req = json_loadb(body.bytes, body.len, 0, NULL), *reply, *id, *method;
    size_t n;

    id = json_object_get(req, "id"); /* NULL-safe */
    method = json_object_get(req, "method");
    if (req == NULL)
        reply = json_pack("{s:s, s:{s:i, s:s}, s:n}", "jsonrpc", "2.0", "error", "code", -32700,
                          "message", "Parse error", "id");
    else if (!json_is_object(req) || !json_is_string(method) ||
             !json_is_string(json_object_get(req, "jsonrpc")))
        reply = json_pack("{s:s, s:{s:i, s:s}, s:O?}", "jsonrpc", "2.0", "error", "code", -32600,
                          "message", "Invalid Request", "id", id);
    else if (id == NULL)
        reply = NULL; /* a notification */
    else if (strcmp(json_string_value(method), "echo") == 0)
        reply = json_pack("{s:s, s:O?, s:O}", "jsonrpc", "2.0", "result",
                          json_object_get(req, "params"), "id", id);
    else
        reply = json_pack("{s:s, s:{s:i, s:s}, s:O}", "jsonrpc", "2.0", "error", "code", -32601,
                          "message", "Method not found", "id", id);
    json_decref(req);
    if (reply == NULL)
        return 0;
    n = json_dumpb(reply, c->out, c->out_size, JSON_COMPACT);
    if (n > c->out_size) {
        char *bigger = realloc(c->out, n);

        if (bigger == NULL)
            die(c, WR_EXIT_SOFTWARE, "out of memory for a %zu-byte reply", n);
        c->out = bigger;
        c->out_size = n;
        n = json_dumpb(reply, c->out, c->out_size, JSON_COMPACT);
    }
    json_decref(reply);
    return n;
}

static void ack(struct consumer *c, uint64_t tag, int multiple)
{
    if (amqp_basic_ack(c->conn, CHANNEL, tag, multiple) != AMQP_STATUS_OK)
        die(c, WR_EXIT_UNAVAILABLE, "basic.ack failed");
}

/* The whole per-call path: decode, reply, ack (now, or on the confirm). */
static void handle(struct consumer *c, const amqp_envelope_t *env)
{
    const amqp_basic_properties_t *p = &env->message.properties;
    amqp_basic_properties_t props;
    size_t n;

    n = build_reply(c, env->message.body);
    if (n == 0 || !(p->_flags & AMQP_BASIC_REPLY_TO_FLAG) || p->reply_to.len == 0) {
        ack(c, env->delivery_tag, 0);
        return;
    }
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
    props.content_type = amqp_cstring_bytes("application/json");
    props.delivery_mode =
        (p->_flags & AMQP_BASIC_DELIVERY_MODE_FLAG) && p->delivery_mode == 2 ? 2 : 1;
    if (p->_flags & AMQP_BASIC_CORRELATION_ID_FLAG) {
        props._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
        props.correlation_id = p->correlation_id;
    }
    if (amqp_basic_publish(c->conn, CHANNEL, amqp_empty_bytes, p->reply_to, 0, 0, &props,
                           (amqp_bytes_t){.len = n, .bytes = c->out}) != AMQP_STATUS_OK)
        die(c, WR_EXIT_UNAVAILABLE, "basic.publish failed");
    if (!c->confirm) {
        ack(c, env->delivery_tag, 0);
        return;
    }
    /* prefetch bounds the unacked deliveries, so the ring cannot overflow. */
    c->fifo[(c->head + c->count) % c->fifo_cap] =
        (struct pending){.seq = c->next_seq++, .tag = env->delivery_tag};
    c->count++;
}

/*
 * The broker confirmed (NACK = 0) or refused (NACK = 1) our publishes up
 * to SEQ (MULTIPLE) or SEQ alone.  Requests whose replies are confirmed
 * are acked, oldest first and in one basic.ack with multiple = 1 when
 * several are; a refused reply puts its request back in the queue.
 */
static void on_confirm(struct consumer *c, uint64_t seq, int multiple, int nack)
{
    uint64_t last = 0;
    size_t i;

    for (i = 0; i < c->count; i++) {
        struct pending *e = &c->fifo[(c->head + i) % c->fifo_cap];

        if (e->seq > seq)
            break;
        if (!multiple && e->seq != seq)
            continue;
        if (nack) {
            if (amqp_basic_nack(c->conn, CHANNEL, e->tag, 0, 1) != AMQP_STATUS_OK)
                die(c, WR_EXIT_UNAVAILABLE, "basic.nack failed");
            e->confirmed = 2; /* settled, nothing more to ack */
        } else {
            e->confirmed = 1;
        }
    }
    /* Settle the confirmed run at the head.  The tags grow along the ring,
     * and every older delivery is settled already, so multiple = 1 up to
     * the last acks exactly this run. */
    while (c->count > 0 && c->fifo[c->head].confirmed) {
        if (c->fifo[c->head].confirmed == 1)
            last = c->fifo[c->head].tag;
        else if (last != 0) {
            ack(c, last, 1);
            last = 0;
        }
        c->head = (c->head + 1) % c->fifo_cap;
        c->count--;
    }
    if (last != 0)
        ack(c, last, 1);
}

/* A frame that is not a delivery: a confirm, or the end of the channel. */
static void other_frame(struct consumer *c)
{
    amqp_frame_t f;
    int st = amqp_simple_wait_frame(c->conn, &f);

    if (st != AMQP_STATUS_OK)
        die(c, WR_EXIT_UNAVAILABLE, "reading from the broker: %s", amqp_error_string2(st));
    if (f.frame_type != AMQP_FRAME_METHOD)
        return;
    switch (f.payload.method.id) {
    case AMQP_BASIC_ACK_METHOD: {
        const amqp_basic_ack_t *a = f.payload.method.decoded;
        on_confirm(c, a->delivery_tag, a->multiple, 0);
        return;
    }
    case AMQP_BASIC_NACK_METHOD: {
        const amqp_basic_nack_t *a = f.payload.method.decoded;
        on_confirm(c, a->delivery_tag, a->multiple, 1);
        return;
    }
    case AMQP_CHANNEL_CLOSE_METHOD: {
        const amqp_channel_close_t *m = f.payload.method.decoded;
        die(c, WR_EXIT_UNAVAILABLE, "broker closed the channel: %.*s", (int)m->reply_text.len,
            (const char *)m->reply_text.bytes);
    }
    case AMQP_CONNECTION_CLOSE_METHOD: {
        const amqp_connection_close_t *m = f.payload.method.decoded;
        die(c, WR_EXIT_UNAVAILABLE, "broker closed the connection: %.*s", (int)m->reply_text.len,
            (const char *)m->reply_text.bytes);
    }
    case AMQP_BASIC_CANCEL_METHOD:
        die(c, WR_EXIT_UNAVAILABLE, "broker cancelled the consumer (queue deleted?)");
    default:
        return;
    }
}

static amqp_connection_state_t connect_or_die(struct consumer *c, const struct options *o)
{
    char err[400];
    amqp_connection_state_t conn =
        wr_amqp_connect(o->uri, o->heartbeat, CONNECT_TIMEOUT_S, "warren-bare", err, sizeof err);

    if (conn == NULL)
        die(c, WR_EXIT_UNAVAILABLE, "%s", err);
    return conn;
}

/*
 * Before the fork: declare the queue once, so the children do not race to
 * create it (concurrent declares of a new quorum queue can fail with 541
 * INTERNAL_ERROR), and an unreachable broker is reported once.
 */
static void declare_first(const struct options *o)
{
    struct consumer c = {.index = -1};

    c.conn = connect_or_die(&c, o);
    declare(&c, o);
    wr_amqp_close(c.conn);
}

static int consume(const struct options *o, int index)
{
    struct consumer c = {.index = index, .confirm = o->confirm};
    struct timeval tv = {.tv_sec = 0, .tv_usec = POLL_MS * 1000};

    c.conn = connect_or_die(&c, o);
    setup(&c, o);
    fprintf(stderr, "warren-bare: process %d consuming\n", index);

    while (!stop_signal) {
        amqp_envelope_t env;
        amqp_rpc_reply_t r;

        amqp_maybe_release_buffers(c.conn);
        r = amqp_consume_message(c.conn, &env, &tv, 0);
        if (r.reply_type == AMQP_RESPONSE_NORMAL) {
            handle(&c, &env);
            amqp_destroy_envelope(&env);
        } else if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
                   r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
            other_frame(&c);
        } else if (!(r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
                     r.library_error == AMQP_STATUS_TIMEOUT)) {
            check(&c, r, "waiting for a delivery");
        }
    }
    /* Unacked deliveries go back to the queue with the connection. */
    wr_amqp_close(c.conn);
    free(c.out);
    free(c.fifo);
    return WR_EXIT_OK;
}

/* --- The parent ---------------------------------------------------------- */

/*
 * The parent blocks SIGTERM, SIGINT and SIGCHLD and takes them with
 * sigwaitinfo: no handler, no race between a flag and a blocking wait.
 * Each child restores the mask and installs its own flag-setting handler.
 */
int main(int argc, char **argv)
{
    struct options o;
    struct sigaction sa;
    sigset_t set, old;
    pid_t *kids;
    long alive = 0, left;
    int rc = WR_EXIT_OK, stopping = 0;

    parse_args(argc, argv, &o);
    declare_first(&o);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, &old);

    kids = calloc((size_t)o.processes, sizeof *kids);
    if (kids == NULL) {
        fprintf(stderr, "warren-bare: out of memory\n");
        return WR_EXIT_SOFTWARE;
    }
    for (long i = 0; i < o.processes; i++) {
        pid_t pid = fork();

        if (pid == 0) {
            free(kids);
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = on_signal;
            sigemptyset(&sa.sa_mask);
            sigaction(SIGTERM, &sa, NULL);
            sigaction(SIGINT, &sa, NULL);
            sigprocmask(SIG_SETMASK, &old, NULL);
            return consume(&o, (int)i);
        }
        if (pid < 0) {
            fprintf(stderr, "warren-bare: fork: %s\n", strerror(errno));
            rc = WR_EXIT_SOFTWARE;
            break;
        }
        kids[alive++] = pid;
    }

    /* Wait for all; pass a stop signal on once; a child that fails takes
     * the others down with it (a benchmark with a process missing would
     * measure something else). */
    left = alive;
    if (rc != WR_EXIT_OK) {
        for (long i = 0; i < alive; i++)
            kill(kids[i], SIGTERM);
        stopping = 1;
    }
    while (left > 0) {
        int st, sig = sigwaitinfo(&set, NULL);
        pid_t pid;

        if (sig < 0)
            continue; /* EINTR */
        if (sig != SIGCHLD) {
            if (!stopping)
                for (long i = 0; i < alive; i++)
                    if (kids[i] > 0)
                        kill(kids[i], SIGTERM);
            stopping = 1;
            continue;
        }
        while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
            for (long i = 0; i < alive; i++)
                if (kids[i] == pid)
                    kids[i] = 0;
            left--;
            if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
                continue;
            if (WIFSIGNALED(st))
                fprintf(stderr, "warren-bare: process %ld died on signal %d\n", (long)pid,
                        WTERMSIG(st));
            if (rc == WR_EXIT_OK)
                rc = WIFEXITED(st) ? WEXITSTATUS(st) : WR_EXIT_SOFTWARE;
            if (!stopping)
                for (long i = 0; i < alive; i++)
                    if (kids[i] > 0)
                        kill(kids[i], SIGTERM);
            stopping = 1;
        }
    }
    free(kids);
    return rc;
}
