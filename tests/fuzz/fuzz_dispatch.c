/*
 * libFuzzer target: one delivery, from the bytes the broker sends to the
 * reply the worker publishes, through the worker's own code: rabbitmq-c
 * decodes the content header (every property, headers of every field
 * type), wr_delivery_from_envelope reads it (AMQP 1.0 bodies and
 * x-amqp-1.0-* headers included), the route's format prepares and runs
 * it with the echo and test plugins and the built-in methods, and
 * wr_reply_publish builds and sends the reply over a TCP connection to a
 * socket here that swallows it.
 *
 * Input layout:
 *   byte 0      route: bits 0-1 format (0, 3 jsonrpc; 1 raw; 2 amqpbus),
 *               bit 2 type = amqp-1.0 (the body is AMQP 1.0 sections),
 *               bit 3 built-in methods on, bit 4 broadcast,
 *               bit 5 reply_prefix (replies by id to the route's exchange),
 *               bits 6-7 the method of a raw or amqpbus route
 *   bytes 1-2   N, big-endian: the length of the encoded properties
 *   N bytes     basic properties as on the wire (16-bit flags, then the
 *               fields they name; amqp_decode_properties)
 *   the rest    the body
 *
 * Never called: test.sleep and test.crash (they sleep or crash on
 * purpose); a JSON-RPC message naming one is skipped.
 */
#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/log.h"
#include "worker/delivery.h"
#include "worker/dispatch.h"
#include "worker/plugin_loader.h"
#include "worker/reply.h"

#define MAX_SIZE 2048 /* max_message_size: larger bodies take the oversize path */

static wr_plugins *plugins;
static amqp_connection_state_t conn;
static int sink = -1; /* our end of CONN's socket: replies are read and dropped */
static unsigned long handled, failed;
static int verbose;
static wr_builtins builtins = {.index = 0, .handled = &handled, .failed = &failed};

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what)
{
    fprintf(stderr, "fuzz_dispatch: %s\n", what);
    exit(1);
}

/* A connection whose socket is a loopback TCP connection to SINK: no
 * broker, no handshake; publishing writes frames there.  RPCs (the
 * passive exchange check of an exchange reply_to) time out at once, and
 * rabbitmq-c then closes the socket: open_sink() again makes a new one, as
 * the worker reconnects. */
static void open_sink(void)
{
    static int lfd = -1;
    static char port[16];
    struct timeval rpc = {.tv_sec = 0, .tv_usec = 1000};
    amqp_socket_t *s;

    if (lfd < 0) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t alen = sizeof a;

        lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 1) < 0 ||
            getsockname(lfd, (struct sockaddr *)&a, &alen) < 0)
            die("cannot listen on 127.0.0.1");
        snprintf(port, sizeof port, "%u", ntohs(a.sin_port));
    }
    if (conn)
        amqp_destroy_connection(conn);
    if (sink >= 0)
        close(sink);
    if (!(conn = amqp_new_connection()) || !(s = amqp_tcp_socket_new(conn)) ||
        amqp_socket_open(s, "127.0.0.1", atoi(port)) != AMQP_STATUS_OK)
        die("cannot connect to the sink");
    if ((sink = accept(lfd, NULL, NULL)) < 0 || fcntl(sink, F_SETFL, O_NONBLOCK) < 0)
        die("cannot accept the sink connection");
    if (amqp_set_rpc_timeout(conn, &rpc) != AMQP_STATUS_OK)
        die("cannot set the rpc timeout");
}

static void drain_sink(void)
{
    char buf[65536];

    while (read(sink, buf, sizeof buf) > 0)
        ;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char *names[] = {"echo", "test"};
    wr_diag d = {0};

    (void)argc;
    (void)argv;
    /* One line per bad input would be most of the time; WARREN_FUZZ_VERBOSE=1
     * shows the log lines and each reply (for replaying an input). */
    verbose = getenv("WARREN_FUZZ_VERBOSE") != NULL;
    wr_log_set_level(verbose ? WR_LOG_DEBUG : -1);
    if (wr_plugins_load(&plugins, WARREN_FUZZ_PLUGIN_DIR, names, 2, NULL, &d) != 0) {
        wr_diag_print(&d);
        die("cannot load the echo and test plugins from " WARREN_FUZZ_PLUGIN_DIR);
    }
    builtins.plugins = plugins;
    open_sink();
    return 0;
}

/* Does the JSON-RPC message call a method that sleeps or crashes? */
static int calls_forbidden(const wr_job *job)
{
    for (size_t i = 0; i < job->req.ncalls; i++) {
        const char *m = job->req.calls[i].method;
        if (m && (strcmp(m, "test.sleep") == 0 || strcmp(m, "test.crash") == 0))
            return 1;
    }
    return 0;
}

/* What must hold of every reply the formats build. */
static void check_reply(const wr_job *job, int format)
{
    json_error_t e;
    json_t *v;

    if (!job->reply)
        return;
    if (!job->reply_type)
        die("a reply without a content type");
    if (strcmp(job->reply_type, "application/json") != 0)
        return;
    v = json_loadb(job->reply, job->reply_len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    /* Valid JSON that jansson cannot read back: an AMQP 1.0 map key or a
     * header name with a NUL in it ("a\u0000b" as a key). */
    if (!v && strstr(e.text, "NUL byte in object key"))
        return;
    if (!v) {
        fprintf(stderr, "reply: %.*s\n", (int)job->reply_len, job->reply);
        die("an application/json reply that is not JSON");
    }
    if (format == WR_FORMAT_JSONRPC && !json_is_object(v) && !json_is_array(v))
        die("a JSON-RPC reply that is neither an object nor a batch");
    json_decref(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"echo", "test.first", "test.message", "warren.status"};
    amqp_envelope_t env;
    amqp_pool_t pool;
    amqp_basic_properties_t *props = NULL;
    wr_route route = {.name = "fuzz", .queue = "q", .exchange = "x"};
    wr_dispatcher d = {.plugins = plugins};
    wr_delivery in;
    wr_job job;
    size_t plen;
    unsigned sel;

    if (size < 3)
        return 0;
    sel = data[0];
    plen = (size_t)data[1] << 8 | data[2];
    data += 3;
    size -= 3;
    if (plen > size)
        plen = size;

    init_amqp_pool(&pool, 4096);
    if (amqp_decode_properties(AMQP_BASIC_CLASS, &pool,
                               (amqp_bytes_t){.len = plen, .bytes = (void *)data},
                               (void **)&props) < 0) {
        empty_amqp_pool(&pool);
        return 0;
    }
    if (sel & 4) {
        props->_flags |= AMQP_BASIC_TYPE_FLAG;
        props->type = amqp_cstring_bytes("amqp-1.0");
    }
    memset(&env, 0, sizeof env);
    env.channel = 1;
    env.delivery_tag = 1;
    env.redelivered = (sel >> 6) & 1;
    env.exchange = amqp_cstring_bytes("x");
    env.routing_key = amqp_cstring_bytes("fuzz.request");
    env.message.properties = *props;
    env.message.body = (amqp_bytes_t){.len = size - plen, .bytes = (void *)(data + plen)};

    route.format = (sel & 3) == 3 ? WR_FORMAT_JSONRPC : (int)(sel & 3);
    route.method = route.format == WR_FORMAT_JSONRPC ? NULL : (char *)methods[sel >> 6];
    route.broadcast = (sel >> 4) & 1;
    route.reply_prefix = (sel & 32) ? "fuzz.response" : NULL;
    if (sel & 8)
        d.builtins = &builtins;

    if (wr_delivery_from_envelope(&in, &env) < 0)
        die("wr_delivery_from_envelope: out of memory");
    wr_dispatch_prepare(&job, &route, &in, MAX_SIZE);
    if (!wr_dispatch_method(&job))
        die("no method name for the status line");
    if (!(route.format == WR_FORMAT_JSONRPC && calls_forbidden(&job))) {
        wr_dispatch_run(&job, &d);
        check_reply(&job, route.format);
        if (verbose)
            fprintf(stderr, "reply (%s): %.*s\n", job.reply_type ? job.reply_type : "none",
                    (int)job.reply_len, job.reply ? job.reply : "");
        if (job.reply) {
            if (wr_reply_publish(conn, 1, &env.message.properties, &job) < 0)
                open_sink();
            else
                drain_sink();
        }
    }
    wr_dispatch_free(&job);
    wr_delivery_free(&in);
    empty_amqp_pool(&pool);
    return 0;
}
