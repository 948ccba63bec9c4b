/*
 * warren-call: call one method on a warren pool from the command line.
 *
 *   warren-call [-u URI] [-q QUEUE | -x EXCHANGE -k KEY] [-t SECONDS]
 *               [--no-deadline] [--notify] [--direct] [--broadcast]
 *               [--pretty | --raw] METHOD [PARAMS_JSON]
 *   warren-call --format raw [...] BODY
 *   warren-call --format amqpbus [...] [--reply-prefix P [--reply-exchange X]]
 *               [--qid ID] [PAYLOAD_JSON]
 *
 * By default it is a tutorial-style RPC client: a JSON-RPC 2.0 request
 * published with reply_to and correlation_id, the reply read from an
 * exclusive queue (or direct reply-to).  --format speaks warren's other
 * route formats, for debugging a route the way its own clients see it:
 * raw (the body is the one argument of the route's method; the reply body
 * is the result) and amqpbus ({"q": payload, "qid": id}; the reply may
 * come back through an exchange under "<reply-prefix>.<qid>").  There the
 * route names the method, so no METHOD is given.  --broadcast collects
 * every reply that comes in the timeout (one per warren instance of a
 * broadcast route) instead of the first.  For people rather than scripts,
 * --pretty indents the JSON it prints; for seeing exactly what came back,
 * --raw prints the reply body byte for byte (the JSON-RPC envelope and
 * all), errors included, and still exits as the reply says.
 *
 * The exit status tells a script what happened:
 *
 *   0   the result was printed (stdout); --broadcast: at least one reply
 *   1   the method returned an error (on stderr)
 *   2   no reply within the timeout
 *   64  bad command line
 *   69  broker unreachable, refused us, or nothing takes the request
 *   76  the reply is not what the format says a reply is
 *
 * Requests are published mandatory, so a request no queue takes (no such
 * queue, nothing bound) fails at once with 69 rather than with a timeout.
 * A request that waits for its reply carries the timeout as its deadline
 * (expiration and x-deadline, unless --no-deadline): once warren-call has
 * given up, the broker drops it if it is still queued and a worker that
 * takes it later answers with a timeout error instead of running it.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "client/cli.h"
#include "client/rpc_client.h"
#include "common/exitcodes.h"

#ifndef WARREN_VERSION
#define WARREN_VERSION "unknown"
#endif

#define DEFAULT_TIMEOUT_S 10.0
/* A broadcast always waits its whole timeout (who knows how many will
 * answer?), so its default is short: instances on one broker answer in
 * milliseconds. */
#define DEFAULT_BROADCAST_TIMEOUT_S 2.0
#define MAX_TIMEOUT_S 2000000.0 /* fits an int of milliseconds */

#define EXIT_RPC_ERROR 1
#define EXIT_NO_REPLY 2
#define EXIT_PROTOCOL 76 /* sysexits' EX_PROTOCOL: malformed reply */

enum format { FORMAT_JSONRPC, FORMAT_RAW, FORMAT_AMQPBUS };

static const char usage_line[] =
    "usage: warren-call [-u URI] [-q QUEUE | -x EXCHANGE -k KEY] [-t SECONDS]\n"
    "                   [--no-deadline] [--notify] [--direct] [--broadcast]\n"
    "                   [--pretty | --raw] METHOD [PARAMS_JSON]\n"
    "       warren-call --format raw [OPTIONS] BODY\n"
    "       warren-call --format amqpbus [OPTIONS] [--reply-prefix PREFIX\n"
    "                   [--reply-exchange EXCHANGE]] [--qid ID] [PAYLOAD_JSON]\n";

static void usage(FILE *f)
{
    fputs(usage_line, f);
    fputs("\n"
          "Call METHOD on a warren worker pool over AMQP (JSON-RPC 2.0) and print\n"
          "its result as compact JSON.\n"
          "\n"
          "  -u, --uri URI           broker to use (default: $WARREN_URI, else\n"
          "                          " WR_CLI_DEFAULT_URI ");\n"
          "                          amqps:// for TLS.  From the environment:\n"
          "                          $WARREN_BROKER_PASSWORD the password (instead\n"
          "                          of the URI's), $WARREN_CACERT the CA file to\n"
          "                          trust (default: the system's), $WARREN_CERT\n"
          "                          and $WARREN_KEY a client certificate and key\n"
          "  -q, --queue QUEUE       publish to QUEUE via the default exchange\n"
          "                          (default: " WR_CLI_DEFAULT_QUEUE ")\n"
          "  -x, --exchange EXCHANGE publish to EXCHANGE instead ...\n"
          "  -k, --key KEY           ... with routing key KEY (both needed)\n"
          "  -t, --timeout SECONDS   how long to wait for the reply (default: 10,\n"
          "                          with --broadcast 2; fractions allowed); also\n"
          "                          the request's deadline: not run once it passed\n"
          "      --no-deadline       send no deadline (expiration, x-deadline)\n"
          "      --notify            send a notification: no id, no reply, exit 0\n"
          "                          once the broker has accepted it\n"
          "      --direct            take the reply via direct reply-to\n"
          "                          (amq.rabbitmq.reply-to), not a reply queue\n"
          "      --broadcast         collect every reply within the timeout, one\n"
          "                          line each (errors as {\"error\":{...}});\n"
          "                          exit 0 if any came\n"
          "  -f, --format FORMAT     jsonrpc (default), raw or amqpbus: the route's\n"
          "                          format.  raw and amqpbus routes name their\n"
          "                          method, so no METHOD is given:\n"
          "                          raw: BODY is sent as is, the reply body printed\n"
          "                          amqpbus: {\"q\": PAYLOAD_JSON (default null),\n"
          "                          \"qid\": ID} is sent, the result printed\n"
          "      --reply-prefix PREFIX  amqpbus: no reply_to; wait for the reply on\n"
          "                          routing key PREFIX.ID of the exchange (-x) ...\n"
          "      --reply-exchange EXCHANGE  ... or of EXCHANGE\n"
          "      --qid ID            amqpbus: the qid to send (default: a new unique\n"
          "                          one per call)\n"
          "      --pretty            print JSON indented (the result, an error's data,\n"
          "                          a raw reply that is JSON)\n"
          "      --raw               print the reply body exactly as received (an error\n"
          "                          reply too, on stdout); the exit status is still\n"
          "                          the reply's.  --broadcast: a newline after each\n"
          "                          body that does not end with one\n"
          "  -h, --help              show this help\n"
          "  -V, --version           show the version\n"
          "\n"
          "PARAMS_JSON is a JSON array or object, e.g. '[1, 2]' or '{\"n\": 3}'.\n"
          "\n"
          "Exit status: 0 result printed (--broadcast: some reply came); 1 the\n"
          "method returned an error; 2 no reply in time; 64 bad usage; 69 broker\n"
          "unreachable or request not routable; 76 malformed reply.\n",
          f);
}

struct options {
    const char *uri;
    const char *queue;    /* -q, or NULL */
    const char *exchange; /* -x, or NULL */
    const char *key;      /* -k, or NULL */
    double timeout_s;
    int notify;
    int no_deadline;
    int direct;
    int broadcast;
    int pretty; /* --pretty: indented JSON */
    int raw;    /* --raw: the reply body as received */
    enum format format;
    const char *reply_prefix;   /* amqpbus, or NULL: reply_to */
    const char *reply_exchange; /* amqpbus, or NULL: the -x exchange */
    const char *qid;            /* amqpbus, or NULL: generated */
    const char *method;         /* jsonrpc only */
    const char *arg;            /* PARAMS_JSON, BODY or PAYLOAD_JSON; or NULL */
};

/* Long options without a short form. */
enum {
    OPT_NOTIFY = 256,
    OPT_NO_DEADLINE,
    OPT_DIRECT,
    OPT_BROADCAST,
    OPT_REPLY_PREFIX,
    OPT_REPLY_EXCHANGE,
    OPT_QID,
    OPT_PRETTY,
    OPT_RAW
};

/* How JSON is printed: compact, one line per value, unless --pretty. */
static size_t json_flags = JSON_ENCODE_ANY | JSON_COMPACT;

static enum format parse_format(const char *text)
{
    if (strcmp(text, "jsonrpc") == 0)
        return FORMAT_JSONRPC;
    if (strcmp(text, "raw") == 0)
        return FORMAT_RAW;
    if (strcmp(text, "amqpbus") == 0)
        return FORMAT_AMQPBUS;
    wr_cli_usage_error("--format: expected jsonrpc, raw or amqpbus, got \"%s\"", text);
}

/* The positional arguments ARGS[0..N), by format. */
static void take_operands(struct options *o, char **args, int n)
{
    switch (o->format) {
    case FORMAT_JSONRPC:
        if (n == 0)
            wr_cli_usage_error("missing METHOD");
        if (n > 2)
            wr_cli_usage_error("too many arguments (quote PARAMS_JSON as one argument)");
        o->method = args[0];
        if (o->method[0] == '\0')
            wr_cli_usage_error("METHOD is empty");
        o->arg = n > 1 ? args[1] : NULL;
        break;
    case FORMAT_RAW:
        if (n == 0)
            wr_cli_usage_error("missing BODY (--format raw takes only the body: the route "
                               "names the method)");
        if (n > 1)
            wr_cli_usage_error("too many arguments: --format raw takes only BODY, no METHOD "
                               "(the route names the method)");
        o->arg = args[0];
        break;
    case FORMAT_AMQPBUS:
        if (n > 1)
            wr_cli_usage_error("too many arguments: --format amqpbus takes only PAYLOAD_JSON, "
                               "no METHOD (the route names the method)");
        o->arg = n > 0 ? args[0] : NULL;
        break;
    }
}

/* Options that only make sense together, or not at all. */
static void check_combinations(const struct options *o)
{
    if (o->queue != NULL && (o->exchange != NULL || o->key != NULL))
        wr_cli_usage_error("-q cannot be combined with -x/-k");
    if ((o->exchange == NULL) != (o->key == NULL))
        wr_cli_usage_error("-x EXCHANGE and -k KEY go together");
    if (o->broadcast && o->notify)
        wr_cli_usage_error("--broadcast collects replies: it cannot be combined with --notify");
    if (o->pretty && o->raw)
        wr_cli_usage_error("--pretty and --raw exclude each other (--raw prints the body as is)");
    if ((o->pretty || o->raw) && o->notify)
        wr_cli_usage_error("%s prints a reply: --notify waits for none",
                           o->pretty ? "--pretty" : "--raw");
    if (o->format != FORMAT_AMQPBUS) {
        if (o->reply_prefix != NULL)
            wr_cli_usage_error("--reply-prefix is for --format amqpbus");
        if (o->reply_exchange != NULL)
            wr_cli_usage_error("--reply-exchange is for --format amqpbus");
        if (o->qid != NULL)
            wr_cli_usage_error("--qid is for --format amqpbus");
        return;
    }
    if (o->reply_exchange != NULL && o->reply_prefix == NULL)
        wr_cli_usage_error("--reply-exchange needs --reply-prefix");
    if (o->notify && (o->reply_prefix != NULL || o->qid != NULL))
        wr_cli_usage_error("--notify sends no qid and waits for no reply: --reply-prefix and "
                           "--qid make no sense with it");
    if (o->reply_prefix != NULL) {
        if (o->direct)
            wr_cli_usage_error("--direct cannot be combined with --reply-prefix (the reply "
                               "comes to a queue bound under the prefix)");
        if (o->reply_exchange == NULL && o->exchange == NULL)
            wr_cli_usage_error("--reply-prefix needs -x EXCHANGE or --reply-exchange EXCHANGE "
                               "to bind the reply queue to");
        if (o->reply_prefix[0] == '\0')
            wr_cli_usage_error("--reply-prefix is empty");
    }
    if (o->qid != NULL && o->qid[0] == '\0')
        wr_cli_usage_error("--qid is empty");
}

static void parse_args(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        {"uri", required_argument, NULL, 'u'},
        {"queue", required_argument, NULL, 'q'},
        {"exchange", required_argument, NULL, 'x'},
        {"key", required_argument, NULL, 'k'},
        {"timeout", required_argument, NULL, 't'},
        {"notify", no_argument, NULL, OPT_NOTIFY},
        {"no-deadline", no_argument, NULL, OPT_NO_DEADLINE},
        {"direct", no_argument, NULL, OPT_DIRECT},
        {"broadcast", no_argument, NULL, OPT_BROADCAST},
        {"format", required_argument, NULL, 'f'},
        {"reply-prefix", required_argument, NULL, OPT_REPLY_PREFIX},
        {"reply-exchange", required_argument, NULL, OPT_REPLY_EXCHANGE},
        {"qid", required_argument, NULL, OPT_QID},
        {"pretty", no_argument, NULL, OPT_PRETTY},
        {"raw", no_argument, NULL, OPT_RAW},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0}};
    int ch, timeout_given = 0;

    memset(o, 0, sizeof *o);
    wr_cli_init("warren-call", usage_line);
    o->uri = wr_cli_default_uri();
    o->format = FORMAT_JSONRPC;
    opterr = 0; /* our own messages */
    while ((ch = getopt_long(argc, argv, ":u:q:x:k:t:f:hV", longopts, NULL)) != -1) {
        switch (ch) {
        case 'u':
            o->uri = optarg;
            break;
        case 'q':
            o->queue = optarg;
            break;
        case 'x':
            o->exchange = optarg;
            break;
        case 'k':
            o->key = optarg;
            break;
        case 't':
            o->timeout_s = wr_cli_seconds("-t", optarg, MAX_TIMEOUT_S);
            timeout_given = 1;
            break;
        case OPT_NOTIFY:
            o->notify = 1;
            break;
        case OPT_NO_DEADLINE:
            o->no_deadline = 1;
            break;
        case OPT_DIRECT:
            o->direct = 1;
            break;
        case OPT_BROADCAST:
            o->broadcast = 1;
            break;
        case 'f':
            o->format = parse_format(optarg);
            break;
        case OPT_REPLY_PREFIX:
            o->reply_prefix = optarg;
            break;
        case OPT_REPLY_EXCHANGE:
            o->reply_exchange = optarg;
            break;
        case OPT_QID:
            o->qid = optarg;
            break;
        case OPT_PRETTY:
            o->pretty = 1;
            break;
        case OPT_RAW:
            o->raw = 1;
            break;
        case 'h':
            usage(stdout);
            exit(WR_EXIT_OK);
        case 'V':
            printf("warren-call %s\n", WARREN_VERSION);
            exit(WR_EXIT_OK);
        default:
            wr_cli_bad_option(ch, argv);
        }
    }

    check_combinations(o);
    if (o->pretty)
        json_flags = JSON_ENCODE_ANY | JSON_INDENT(2);
    if (o->queue == NULL && o->exchange == NULL)
        o->queue = WR_CLI_DEFAULT_QUEUE;
    if (!timeout_given)
        o->timeout_s = o->broadcast ? DEFAULT_BROADCAST_TIMEOUT_S : DEFAULT_TIMEOUT_S;
    take_operands(o, argv + optind, argc - optind);
}

/* What a JSON value is, for messages. */
static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

static void out_of_memory(void) __attribute__((noreturn));

static void out_of_memory(void)
{
    fprintf(stderr, "warren-call: out of memory\n");
    exit(WR_EXIT_SOFTWARE);
}

/* REQ (taken: a new reference, or NULL when out of memory) as compact
 * JSON text: the request bodies.  New string, caller frees. */
static char *dump_request(json_t *req)
{
    char *text;

    if (req == NULL)
        out_of_memory();
    text = json_dumps(req, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(req);
    if (text == NULL) {
        fprintf(stderr, "warren-call: cannot encode the request (is it valid UTF-8?)\n");
        exit(WR_EXIT_USAGE);
    }
    return text;
}

/*
 * The JSON-RPC request (new string, caller frees), with ID as its id
 * unless ID is NULL (a notification).  Bad PARAMS_JSON is a usage error
 * (exits).
 */
static char *jsonrpc_request(const struct options *o, const char *id)
{
    json_t *req, *params = NULL;
    json_error_t jerr;

    if (o->arg != NULL) {
        params = json_loads(o->arg, JSON_DECODE_ANY, &jerr);
        if (params == NULL)
            wr_cli_usage_error("PARAMS_JSON is not valid JSON: %s (column %d)", jerr.text,
                               jerr.column);
        if (!json_is_array(params) && !json_is_object(params)) {
            const char *kind = json_kind(params);

            json_decref(params);
            wr_cli_usage_error("PARAMS_JSON must be a JSON array or object, got %s", kind);
        }
    }
    req = json_pack("{s:s, s:s}", "jsonrpc", "2.0", "method", o->method);
    if (req == NULL || (params != NULL && json_object_set_new(req, "params", params) < 0) ||
        (id != NULL && json_object_set_new(req, "id", json_string(id)) < 0))
        out_of_memory();
    return dump_request(req);
}

/*
 * The amqpbus request {"q": PAYLOAD_JSON, "qid": QID} (new string, caller
 * frees); without "qid" when QID is NULL (fire and forget).  Bad
 * PAYLOAD_JSON is a usage error (exits).
 */
static char *amqpbus_request(const struct options *o, const char *qid)
{
    json_t *req, *payload = json_null();
    json_error_t jerr;

    if (o->arg != NULL) {
        payload = json_loads(o->arg, JSON_DECODE_ANY, &jerr);
        if (payload == NULL)
            wr_cli_usage_error("PAYLOAD_JSON is not valid JSON: %s (column %d); a string is "
                               "written '\"text\"' (the route names the method: give no METHOD)",
                               jerr.text, jerr.column);
    }
    req = json_pack("{s:o}", "q", payload); /* takes PAYLOAD */
    if (req != NULL && qid != NULL && json_object_set_new(req, "qid", json_string(qid)) < 0)
        out_of_memory();
    return dump_request(req);
}

/*
 * One reply, read as its format says.  Exactly one of RESULT and TEXT is
 * set on success.
 */
struct reply_view {
    int status;       /* WR_EXIT_OK, EXIT_RPC_ERROR or EXIT_PROTOCOL */
    json_t *result;   /* OK: the result, a new reference (JSON null included) */
    const char *text; /* OK, raw format: the body, printed as is (borrowed) */
    size_t text_len;
    json_t *error; /* RPC_ERROR: {"code", "message"[, "data"]}, a new reference */
    char why[320]; /* PROTOCOL: what is wrong with the reply */
};

static void view_free(struct reply_view *v)
{
    json_decref(v->result);
    json_decref(v->error);
}

static void set_protocol(struct reply_view *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_protocol(struct reply_view *v, const char *fmt, ...)
{
    va_list ap;

    v->status = EXIT_PROTOCOL;
    va_start(ap, fmt);
    vsnprintf(v->why, sizeof v->why, fmt, ap);
    va_end(ap);
}

/* ERROR is a JSON-RPC style error object: {"code": integer, ...}. */
static int is_error_object(const json_t *error)
{
    return json_is_object(error) && json_is_integer(json_object_get(error, "code"));
}

/* JSON-RPC: {"result": ...} or {"error": {...}}. */
static void read_jsonrpc(const wr_client_reply *reply, struct reply_view *v)
{
    json_error_t jerr;
    json_t *resp, *result, *error;

    resp = json_loadb(reply->body, reply->len, JSON_DECODE_ANY, &jerr);
    if (resp == NULL) {
        set_protocol(v, "the reply is not JSON: %s (column %d): %.200s", jerr.text, jerr.column,
                     reply->body);
        return;
    }
    result = json_is_object(resp) ? json_object_get(resp, "result") : NULL;
    error = json_is_object(resp) ? json_object_get(resp, "error") : NULL;
    if (result != NULL && error == NULL) {
        v->status = WR_EXIT_OK;
        v->result = json_incref(result);
    } else if (is_error_object(error)) {
        v->status = EXIT_RPC_ERROR;
        v->error = json_incref(error);
    } else {
        set_protocol(v, "the reply is not a JSON-RPC response: %.200s", reply->body);
    }
    json_decref(resp);
}

/*
 * raw and amqpbus error replies carry the code in an x-error-code header
 * (and the message in x-error-message); the body, {"error": {...}} when it
 * parses (BODY, borrowed, may be NULL), may add the message and data.
 */
static void read_header_error(const wr_client_reply *reply, const json_t *body,
                              struct reply_view *v)
{
    json_t *in_body = json_is_object(body) ? json_object_get(body, "error") : NULL;
    const char *msg = reply->error_message;
    json_t *data = json_is_object(in_body) ? json_object_get(in_body, "data") : NULL;

    if (msg == NULL && json_is_object(in_body))
        msg = json_string_value(json_object_get(in_body, "message"));
    v->status = EXIT_RPC_ERROR;
    v->error = json_pack("{s:I, s:s}", "code", (json_int_t)reply->error_code, "message",
                         msg != NULL ? msg : "(no message)");
    if (v->error == NULL || (data != NULL && json_object_set(v->error, "data", data) < 0))
        out_of_memory();
}

/* raw: the body is the result (a string result as bare text); an error
 * has an x-error-code header. */
static void read_raw(const wr_client_reply *reply, struct reply_view *v)
{
    if (reply->has_error_code) {
        json_t *body = json_loadb(reply->body, reply->len, JSON_DECODE_ANY, NULL);

        read_header_error(reply, body, v);
        json_decref(body);
        return;
    }
    v->status = WR_EXIT_OK;
    v->text = reply->body;
    v->text_len = reply->len;
}

/* amqpbus: the body is the result as JSON, or {"error": {"code", ...}}. */
static void read_amqpbus(const wr_client_reply *reply, struct reply_view *v)
{
    json_error_t jerr;
    json_t *body = json_loadb(reply->body, reply->len, JSON_DECODE_ANY, &jerr);
    json_t *error =
        json_is_object(body) && json_object_size(body) == 1 ? json_object_get(body, "error") : NULL;

    if (reply->has_error_code) {
        read_header_error(reply, body, v);
    } else if (body == NULL) {
        set_protocol(v, "the reply is not JSON: %s (column %d): %.200s", jerr.text, jerr.column,
                     reply->body);
    } else if (is_error_object(error)) {
        v->status = EXIT_RPC_ERROR;
        v->error = json_incref(error);
    } else {
        v->status = WR_EXIT_OK;
        v->result = json_incref(body);
    }
    json_decref(body);
}

static void read_reply(enum format format, const wr_client_reply *reply, struct reply_view *v)
{
    memset(v, 0, sizeof *v);
    switch (format) {
    case FORMAT_JSONRPC:
        read_jsonrpc(reply, v);
        break;
    case FORMAT_RAW:
        read_raw(reply, v);
        break;
    case FORMAT_AMQPBUS:
        read_amqpbus(reply, v);
        break;
    }
}

/* V as one compact line on F (indented lines with --pretty).  0, or -1
 * when it cannot be encoded. */
static int print_json_line(FILE *f, const json_t *v)
{
    char *text = json_dumps(v, json_flags);

    if (text == NULL)
        return -1;
    fprintf(f, "%s\n", text);
    free(text);
    return 0;
}

/* "error CODE: MESSAGE" (and "data: DATA") on stderr. */
static void print_error(const json_t *error)
{
    const char *msg = json_string_value(json_object_get(error, "message"));
    json_t *data = json_object_get(error, "data");

    fprintf(stderr, "error %" JSON_INTEGER_FORMAT ": %s\n",
            json_integer_value(json_object_get(error, "code")), msg ? msg : "(no message)");
    if (data != NULL) {
        char *text = json_dumps(data, json_flags);

        if (text != NULL)
            fprintf(stderr, "data: %s\n", text);
        free(text);
    }
}

/*
 * Act on one reply: print the result on stdout, the error on stderr (or,
 * in a broadcast, as {"error": {...}} on stdout: one line per answer), or
 * complain about a malformed reply.  Returns V->status, or
 * WR_EXIT_SOFTWARE when the result cannot be printed.
 */
static int show_reply(const struct reply_view *v, int broadcast)
{
    switch (v->status) {
    case WR_EXIT_OK:
        if (v->text != NULL && json_flags & JSON_INDENT(2)) {
            /* --pretty: a raw reply that is JSON is shown indented too. */
            json_t *body = json_loadb(v->text, v->text_len, JSON_DECODE_ANY, NULL);
            int rc = body != NULL ? print_json_line(stdout, body) : 1;

            json_decref(body);
            if (rc == 0)
                return WR_EXIT_OK;
        }
        if (v->text != NULL) {
            fwrite(v->text, 1, v->text_len, stdout);
            if (v->text_len == 0 || v->text[v->text_len - 1] != '\n')
                putchar('\n');
        } else if (print_json_line(stdout, v->result) < 0) {
            fprintf(stderr, "warren-call: cannot print the result\n");
            return WR_EXIT_SOFTWARE;
        }
        return WR_EXIT_OK;
    case EXIT_RPC_ERROR:
        if (!broadcast) {
            print_error(v->error);
        } else {
            json_t *line = json_pack("{s:O}", "error", v->error);

            if (line == NULL || print_json_line(stdout, line) < 0) {
                json_decref(line);
                fprintf(stderr, "warren-call: cannot print the error\n");
                return WR_EXIT_SOFTWARE;
            }
            json_decref(line);
        }
        return EXIT_RPC_ERROR;
    default:
        fprintf(stderr, "warren-call: %s\n", v->why);
        return EXIT_PROTOCOL;
    }
}

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* How a reply to our request is recognised: by its correlation id, or
 * (amqpbus with a reply prefix, where there is none) by the routing key
 * it was published with.  Exactly one is set. */
struct expect {
    const char *correlation_id;
    const char *routing_key;
};

static int is_ours(const wr_client_reply *r, const struct expect *e)
{
    if (e->correlation_id != NULL)
        return r->correlation_id != NULL && strcmp(r->correlation_id, e->correlation_id) == 0;
    return r->routing_key != NULL && strcmp(r->routing_key, e->routing_key) == 0;
}

/*
 * Wait for the reply to our request, ignoring any other (stale ones), and
 * show it.  With --broadcast, go on until the timeout and show every one:
 * 0 when at least one answer (result or error) came, else 76 when only
 * malformed ones did, else 2.  Returns the exit status.
 */
static int collect_replies(wr_client *c, const struct options *o, const struct expect *e)
{
    long long deadline = now_ms() + (long long)(o->timeout_s * 1000.0 + 0.5);
    int answers = 0, malformed = 0;
    char err[512];

    for (;;) {
        wr_client_reply reply;
        struct reply_view v;
        long long left = deadline - now_ms();
        int rc;

        rc = wr_client_recv(c, left > 0 ? (int)left : 0, &reply, err, sizeof err);
        if (rc == 0)
            break;
        if (rc < 0) {
            fprintf(stderr, "warren-call: %s\n", err);
            return WR_EXIT_UNAVAILABLE;
        }
        if (!is_ours(&reply, e)) {
            wr_client_reply_free(&reply);
            continue;
        }
        read_reply(o->format, &reply, &v);
        if (o->raw) {
            /* The body as it came; the exit status as the reply says. */
            rc = v.status;
            fwrite(reply.body, 1, reply.len, stdout);
            if (o->broadcast && (reply.len == 0 || reply.body[reply.len - 1] != '\n'))
                putchar('\n');
            if (rc == EXIT_PROTOCOL)
                fprintf(stderr, "warren-call: %s\n", v.why);
        } else {
            rc = show_reply(&v, o->broadcast);
        }
        view_free(&v);
        wr_client_reply_free(&reply);
        if (!o->broadcast || rc == WR_EXIT_SOFTWARE)
            return rc;
        fflush(stdout); /* a line as soon as its answer is in */
        if (rc == EXIT_PROTOCOL)
            malformed++;
        else
            answers++;
    }
    if (answers > 0)
        return WR_EXIT_OK;
    if (malformed > 0)
        return EXIT_PROTOCOL;
    fprintf(stderr, "warren-call: no reply within %g s\n", o->timeout_s);
    return EXIT_NO_REPLY;
}

/* What to send, and how its reply is recognised. */
struct request {
    char *body; /* owned */
    const char *content_type;
    const char *correlation_id; /* NULL: no correlation_id, no reply_to */
    char reply_key[512];        /* amqpbus with --reply-prefix: PREFIX.QID (<= 255) */
    struct expect expect;
};

static void build_request(const struct options *o, const char *id, struct request *r)
{
    memset(r, 0, sizeof *r);
    r->content_type = "application/json";
    r->correlation_id = o->notify ? NULL : id;
    switch (o->format) {
    case FORMAT_JSONRPC:
        r->body = jsonrpc_request(o, r->correlation_id);
        break;
    case FORMAT_RAW: {
        /* As is.  Say what it is, as a client that means it would. */
        json_t *probe = json_loads(o->arg, JSON_DECODE_ANY, NULL);

        r->content_type = probe != NULL ? "application/json" : "text/plain";
        json_decref(probe);
        r->body = strdup(o->arg);
        if (r->body == NULL)
            out_of_memory();
        break;
    }
    case FORMAT_AMQPBUS: {
        const char *qid = o->notify ? NULL : (o->qid != NULL ? o->qid : id);

        r->body = amqpbus_request(o, qid);
        if (o->reply_prefix != NULL) {
            /* The recipe's way: no reply_to, the reply comes through the
             * exchange under PREFIX.QID. */
            int n = snprintf(r->reply_key, sizeof r->reply_key, "%s.%s", o->reply_prefix, qid);

            if (n < 0 || n > 255) /* an AMQP short string */
                wr_cli_usage_error("--reply-prefix and the qid make a routing key over 255 bytes");
            r->correlation_id = NULL;
            r->expect.routing_key = r->reply_key;
        }
        break;
    }
    }
    if (r->expect.routing_key == NULL)
        r->expect.correlation_id = id;
}

int main(int argc, char **argv)
{
    struct options o;
    struct request req;
    struct timeval tv;
    wr_client *c = NULL;
    char id[64], err[512];
    const char *exchange, *key;
    int mode, rc;

    parse_args(argc, argv, &o);
    exchange = o.exchange != NULL ? o.exchange : "";
    key = o.exchange != NULL ? o.key : o.queue;

    /* Unique enough per call: pid and the microsecond we started.  No
     * dots, so that as an amqpbus qid it is one word of a routing key. */
    gettimeofday(&tv, NULL);
    snprintf(id, sizeof id, "wc-%ld-%lld-%06ld", (long)getpid(), (long long)tv.tv_sec,
             (long)tv.tv_usec);
    build_request(&o, id, &req);

    mode = o.notify ? WR_CLIENT_NO_REPLY
                    : (o.direct ? WR_CLIENT_DIRECT_REPLY_TO : WR_CLIENT_REPLY_QUEUE);
    if (wr_client_connect(&c, o.uri, mode, err, sizeof err) < 0) {
        fprintf(stderr, "warren-call: %s\n", err);
        free(req.body);
        return WR_EXIT_UNAVAILABLE;
    }
    wr_client_set_mandatory(c, 1);
    wr_client_set_content_type(c, req.content_type);
    /* Once we stop waiting nobody reads the reply: no use running it. */
    if (!o.notify && !o.no_deadline)
        wr_client_set_deadline(c, (long long)(o.timeout_s * 1000.0 + 0.5));
    if (req.expect.routing_key != NULL &&
        wr_client_bind_reply(c, o.reply_exchange != NULL ? o.reply_exchange : exchange,
                             req.reply_key, err, sizeof err) < 0) {
        fprintf(stderr, "warren-call: %s\n", err);
        rc = WR_EXIT_UNAVAILABLE;
    } else if (wr_client_publish(c, exchange, key, req.body, strlen(req.body), req.correlation_id,
                                 0, err, sizeof err) < 0) {
        fprintf(stderr, "warren-call: %s\n", err);
        rc = WR_EXIT_UNAVAILABLE;
    } else if (o.notify) {
        /* Fire and forget, but not blind: wait until the broker took it. */
        rc = WR_EXIT_OK;
        if (wr_client_flush(c, err, sizeof err) < 0) {
            fprintf(stderr, "warren-call: %s\n", err);
            rc = WR_EXIT_UNAVAILABLE;
        }
    } else {
        rc = collect_replies(c, &o, &req.expect);
    }
    wr_client_close(c);
    free(req.body);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "warren-call: writing the result: %s\n", strerror(errno));
        if (rc == WR_EXIT_OK)
            rc = WR_EXIT_SOFTWARE;
    }
    return rc;
}
