/*
 * AMQP 1.0 RPC calls to warren through RabbitMQ's rabbitmq_amqp1_0 plugin,
 * with the Qpid Proton C proactor API (the style of Proton's examples
 * send.c and receive.c):
 *
 *   cc -o rpc_client rpc_client.c $(pkg-config --cflags --libs libqpid-proton jansson)
 *   rpc_client echo-string | echo-binary | echo-data | message | fib | status [SECONDS]
 *
 * The calls are those of ../python-proton/rpc_client.py: the JSON-RPC echo
 * as an amqp-value string, an amqp-value binary and a data section;
 * test.message (prints the application property probe as the handler saw
 * it); the tutorial's fib of the AMQP int 30 on a raw route; a broadcast
 * to /topic/STATUS_KEY collected for SECONDS (default 3).
 *
 * Requests go to /amq/queue/QUEUE; replies come to /queue/NAME, a named
 * queue our receiver attaches to first (RabbitMQ 3.10 gives a dynamic
 * receiver no link).  Each request carries a uuid correlation id and the
 * application property probe=x1.
 */
#define _GNU_SOURCE /* asprintf, strndup */
#include <proton/condition.h>
#include <proton/connection.h>
#include <proton/delivery.h>
#include <proton/link.h>
#include <proton/message.h>
#include <proton/proactor.h>
#include <proton/sasl.h>
#include <proton/session.h>
#include <proton/transport.h>

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *env(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

static struct {
    const char *call, *address;
    pn_message_t *request;
    pn_uuid_t corr;
    char reply_to[80];
    pn_link_t *sender, *receiver;
    bool sent, collect, stopping;
    int replies;
    const char *failure;
    char why[256];
    char *result; /* the first reply's body, NUL-terminated */
} app;

static void fail(pn_connection_t *c, const char *why)
{
    if (!app.failure)
        app.failure = why;
    pn_connection_close(c);
}

/* Print one reply's body: a string or binary as text, an integer as a
 * number. */
static void on_reply(pn_connection_t *c, pn_message_t *m)
{
    pn_atom_t corr = pn_message_get_correlation_id(m);
    pn_data_t *body = pn_message_body(m);
    char *text = NULL;

    pn_data_rewind(body);
    pn_data_next(body);
    if (corr.type != PN_UUID || memcmp(corr.u.as_uuid.bytes, app.corr.bytes, 16) != 0) {
        pn_bytes_t b =
            pn_data_type(body) == PN_STRING ? pn_data_get_string(body) : pn_data_get_binary(body);
        snprintf(app.why, sizeof app.why,
                 "reply with a correlation id of AMQP type %s, not our uuid (body: %.*s)",
                 pn_type_name(corr.type), (int)b.size, b.start);
        fail(c, app.why);
        return;
    }
    switch (pn_data_type(body)) {
    case PN_STRING:
    case PN_BINARY: {
        pn_bytes_t b =
            pn_data_type(body) == PN_STRING ? pn_data_get_string(body) : pn_data_get_binary(body);
        text = strndup(b.start, b.size);
        break;
    }
    case PN_INT:
        if (asprintf(&text, "%d", pn_data_get_int(body)) < 0)
            text = NULL;
        break;
    case PN_LONG:
        if (asprintf(&text, "%lld", (long long)pn_data_get_long(body)) < 0)
            text = NULL;
        break;
    default:
        snprintf(app.why, sizeof app.why, "reply body of AMQP type %s",
                 pn_type_name(pn_data_type(body)));
        fail(c, app.why);
        return;
    }
    printf(" [.] Got %s\n", text ? text : "?");
    fflush(stdout);
    app.replies++;
    if (!app.result)
        app.result = text;
    else
        free(text);
    if (!app.collect)
        pn_connection_close(c);
}

static void send_request(void)
{
    pn_rwbytes_t buf = {0, NULL};
    pn_atom_t corr = {.type = PN_UUID};
    pn_data_t *props = pn_message_properties(app.request);

    corr.u.as_uuid = app.corr;
    pn_message_set_correlation_id(app.request, corr);
    pn_message_set_reply_to(app.request, app.reply_to);
    pn_data_put_map(props);
    pn_data_enter(props);
    pn_data_put_string(props, pn_bytes(5, "probe"));
    pn_data_put_string(props, pn_bytes(2, "x1"));
    pn_data_exit(props);
    pn_delivery(app.sender, pn_dtag("1", 1));
    if (pn_message_send(app.request, app.sender, &buf) < 0)
        fprintf(stderr, "send: %s\n", pn_error_text(pn_message_error(app.request)));
    free(buf.start);
    app.sent = true;
}

static bool handle(pn_event_t *e)
{
    pn_connection_t *c = pn_event_connection(e);

    switch (pn_event_type(e)) {
    case PN_CONNECTION_INIT: {
        pn_session_t *s = pn_session(c);
        pn_connection_open(c);
        pn_session_open(s);
        app.receiver = pn_receiver(s, "replies");
        pn_terminus_set_address(pn_link_source(app.receiver), app.reply_to);
        pn_link_open(app.receiver);
        pn_link_flow(app.receiver, 10);
        app.sender = pn_sender(s, "requests");
        pn_terminus_set_address(pn_link_target(app.sender), app.address);
        pn_link_open(app.sender);
        break;
    }
    case PN_LINK_REMOTE_OPEN: /* the reply queue exists once its link is up */
    case PN_LINK_FLOW:
        if (!app.sent && pn_link_state(app.receiver) & PN_REMOTE_ACTIVE &&
            pn_link_credit(app.sender) > 0)
            send_request();
        break;
    case PN_DELIVERY: {
        pn_delivery_t *d = pn_event_delivery(e);
        pn_link_t *l = pn_delivery_link(d);
        if (l == app.receiver && pn_delivery_readable(d) && !pn_delivery_partial(d)) {
            size_t size = pn_delivery_pending(d);
            char *bytes = malloc(size);
            pn_message_t *m = pn_message();
            pn_link_recv(l, bytes, size);
            if (pn_message_decode(m, bytes, size) == 0)
                on_reply(c, m);
            else
                fail(c, "cannot decode the reply");
            pn_message_free(m);
            free(bytes);
            pn_delivery_update(d, PN_ACCEPTED);
            pn_delivery_settle(d);
            pn_link_flow(l, 1);
        } else if (l == app.sender && pn_delivery_updated(d)) {
            if (pn_delivery_remote_state(d) != PN_ACCEPTED)
                fail(c, "the broker did not accept the request");
            pn_delivery_settle(d);
        }
        break;
    }
    case PN_PROACTOR_TIMEOUT:
        if (!app.collect && app.replies == 0)
            app.failure = app.failure ? app.failure : "no reply within 30 s";
        app.stopping = 1; /* the disconnect below aborts the transport */
        pn_proactor_disconnect(pn_event_proactor(e), NULL);
        break;
    case PN_TRANSPORT_CLOSED: {
        pn_condition_t *cond = pn_transport_condition(pn_event_transport(e));
        pn_proactor_cancel_timeout(pn_event_proactor(e)); /* else no INACTIVE */
        if (pn_condition_is_set(cond) && !app.failure && !app.stopping) {
            snprintf(app.why, sizeof app.why, "%s: %s", pn_condition_get_name(cond),
                     pn_condition_get_description(cond));
            app.failure = app.why;
        }
        break;
    }
    case PN_CONNECTION_REMOTE_CLOSE:
    case PN_LINK_REMOTE_CLOSE:
        pn_connection_close(c);
        break;
    case PN_PROACTOR_INACTIVE:
        return false;
    default:
        break;
    }
    return true;
}

/* The value of key anywhere in a JSON value (headers may nest it). */
static json_t *find(json_t *v, const char *key)
{
    const char *k;
    json_t *x, *found;
    size_t i;

    if (json_is_object(v)) {
        if ((found = json_object_get(v, key)))
            return found;
        json_object_foreach(v, k, x) if ((found = find(x, key))) return found;
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, x) if ((found = find(x, key))) return found;
    }
    return NULL;
}

static char *jsonrpc(const char *method, json_t *params)
{
    json_t *req = json_pack("{s:s, s:s, s:o, s:i}", "jsonrpc", "2.0", "method", method, "params",
                            params, "id", 1);
    char *s = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    return s;
}

int main(int argc, char **argv)
{
    const char *url = env("WARREN_AMQP10_URI", "amqp://guest:guest@127.0.0.1:5672");
    char user[64] = "guest", pass[64] = "guest", host[64] = "127.0.0.1", port[16] = "5672";
    char queue[256], addr[PN_MAX_ADDR];
    double seconds = 30;
    char *req = NULL;
    FILE *rnd;
    pn_data_t *body;

    app.call = argc > 1 ? argv[1] : "echo-string";
    if (sscanf(url, "amqp://%63[^:]:%63[^@]@%63[^:]:%15[0-9]", user, pass, host, port) != 4) {
        fprintf(stderr, "cannot read WARREN_AMQP10_URI %s (amqp://USER:PASS@HOST:PORT)\n", url);
        return 64;
    }
    rnd = fopen("/dev/urandom", "r");
    if (!rnd || fread(app.corr.bytes, 1, 16, rnd) != 16)
        return 1;
    fclose(rnd);
    app.corr.bytes[6] = (app.corr.bytes[6] & 0x0f) | 0x40; /* a version 4 uuid */
    app.corr.bytes[8] = (app.corr.bytes[8] & 0x3f) | 0x80;
    snprintf(app.reply_to, sizeof app.reply_to,
             "/queue/c-proton-reply-%02x%02x%02x%02x%02x%02x%02x%02x", app.corr.bytes[0],
             app.corr.bytes[1], app.corr.bytes[2], app.corr.bytes[3], app.corr.bytes[10],
             app.corr.bytes[11], app.corr.bytes[12], app.corr.bytes[13]);

    app.request = pn_message();
    body = pn_message_body(app.request);
    snprintf(queue, sizeof queue, "/amq/queue/%s", env("WARREN_QUEUE", "warren.rpc"));
    if (!strcmp(app.call, "echo-string") || !strcmp(app.call, "echo-binary") ||
        !strcmp(app.call, "echo-data")) {
        req = jsonrpc("echo", json_pack("[s,i]", "hi", 42));
        if (!strcmp(app.call, "echo-string"))
            pn_data_put_string(body, pn_bytes(strlen(req), req));
        else
            pn_data_put_binary(body, pn_bytes(strlen(req), req));
        /* inferred: a binary body goes in a data section, not an amqp-value */
        pn_message_set_inferred(app.request, !strcmp(app.call, "echo-data"));
    } else if (!strcmp(app.call, "message")) {
        req = jsonrpc("test.message", json_array());
        pn_data_put_string(body, pn_bytes(strlen(req), req));
    } else if (!strcmp(app.call, "fib")) {
        snprintf(queue, sizeof queue, "/amq/queue/%s", env("RPC_QUEUE", "rpc_queue"));
        pn_data_put_int(body, 30);
    } else if (!strcmp(app.call, "status")) {
        snprintf(queue, sizeof queue, "/topic/%s", env("STATUS_KEY", "SERVER_STATUS"));
        pn_data_put_string(body, pn_bytes(0, ""));
        app.collect = true;
        seconds = argc > 2 ? atof(argv[2]) : 3;
    } else {
        fprintf(stderr,
                "usage: %s echo-string|echo-binary|echo-data|message|fib|status [SECONDS]\n",
                argv[0]);
        return 64;
    }
    app.address = queue;

    pn_proactor_t *proactor = pn_proactor();
    pn_connection_t *c = pn_connection();
    pn_transport_t *t = pn_transport();
    pn_connection_set_user(c, user);
    pn_connection_set_password(c, pass);
    pn_sasl_set_allow_insecure_mechs(pn_sasl(t), true); /* PLAIN on loopback */
    pn_proactor_addr(addr, sizeof addr, host, port);
    pn_proactor_connect2(proactor, c, t, addr);
    pn_proactor_set_timeout(proactor, (pn_millis_t)(seconds * 1000));

    for (bool more = true; more;) {
        pn_event_batch_t *batch = pn_proactor_wait(proactor);
        pn_event_t *e;
        while (more && (e = pn_event_batch_next(batch)))
            more = handle(e);
        pn_proactor_done(proactor, batch);
    }
    pn_proactor_free(proactor);
    pn_message_free(app.request);
    free(req);

    if (app.failure) {
        fprintf(stderr, " [!] %s\n", app.failure);
        return 1;
    }
    if (app.collect)
        printf(" [x] %d servers answered\n", app.replies);
    if (!strcmp(app.call, "message")) {
        json_t *reply = json_loads(app.result ? app.result : "", 0, NULL);
        json_t *probe = find(json_object_get(json_object_get(reply, "result"), "headers"), "probe");
        char *s = probe ? json_dumps(probe, JSON_ENCODE_ANY) : NULL;
        printf(" [.] probe=%s\n", s ? s : "null");
        free(s);
        json_decref(reply);
    }
    free(app.result);
    return 0;
}
