/*
 * warren-call: call one method on a warren pool from the command line.
 *
 *   warren-call [-u URI] [-q QUEUE | -x EXCHANGE -k KEY] [-t SECONDS]
 *               [--notify] [--direct] METHOD [PARAMS_JSON]
 *
 * It is a tutorial-style RPC client: a JSON-RPC 2.0 request published with
 * reply_to and correlation_id, the reply read from an exclusive queue (or
 * direct reply-to).  The exit status tells a script what happened:
 *
 *   0   the result was printed (compact JSON on stdout)
 *   1   the method returned a JSON-RPC error (on stderr)
 *   2   no reply within the timeout
 *   64  bad command line
 *   69  broker unreachable, refused us, or nothing takes the request
 *   76  the reply is not a JSON-RPC response
 *
 * Requests are published mandatory, so a request no queue takes (no such
 * queue, nothing bound) fails at once with 69 rather than with a timeout.
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
#define MAX_TIMEOUT_S 2000000.0 /* fits an int of milliseconds */

#define EXIT_RPC_ERROR 1
#define EXIT_NO_REPLY 2
#define EXIT_PROTOCOL 76 /* sysexits' EX_PROTOCOL: malformed reply */

static const char usage_line[] =
    "usage: warren-call [-u URI] [-q QUEUE | -x EXCHANGE -k KEY] [-t SECONDS]\n"
    "                   [--notify] [--direct] METHOD [PARAMS_JSON]\n";

static void usage(FILE *f)
{
    fputs(usage_line, f);
    fputs("\n"
          "Call METHOD on a warren worker pool over AMQP (JSON-RPC 2.0) and print\n"
          "its result as compact JSON.\n"
          "\n"
          "  -u, --uri URI           broker to use (default: $WARREN_URI, else\n"
          "                          " WR_CLI_DEFAULT_URI ")\n"
          "  -q, --queue QUEUE       publish to QUEUE via the default exchange\n"
          "                          (default: " WR_CLI_DEFAULT_QUEUE ")\n"
          "  -x, --exchange EXCHANGE publish to EXCHANGE instead ...\n"
          "  -k, --key KEY           ... with routing key KEY (both needed)\n"
          "  -t, --timeout SECONDS   how long to wait for the reply (default: 10;\n"
          "                          fractions allowed)\n"
          "      --notify            send a notification: no id, no reply, exit 0\n"
          "                          once the broker has accepted it\n"
          "      --direct            take the reply via direct reply-to\n"
          "                          (amq.rabbitmq.reply-to), not a reply queue\n"
          "  -h, --help              show this help\n"
          "  -V, --version           show the version\n"
          "\n"
          "PARAMS_JSON is a JSON array or object, e.g. '[1, 2]' or '{\"n\": 3}'.\n"
          "\n"
          "Exit status: 0 result printed; 1 the method returned an error;\n"
          "2 no reply in time; 64 bad usage; 69 broker unreachable or request\n"
          "not routable; 76 malformed reply.\n",
          f);
}

struct options {
    const char *uri;
    const char *queue;    /* -q, or NULL */
    const char *exchange; /* -x, or NULL */
    const char *key;      /* -k, or NULL */
    double timeout_s;
    int notify;
    int direct;
    const char *method;
    const char *params; /* PARAMS_JSON text, or NULL */
};

static void parse_args(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        {"uri", required_argument, NULL, 'u'},      {"queue", required_argument, NULL, 'q'},
        {"exchange", required_argument, NULL, 'x'}, {"key", required_argument, NULL, 'k'},
        {"timeout", required_argument, NULL, 't'},  {"notify", no_argument, NULL, 'n'},
        {"direct", no_argument, NULL, 'd'},         {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},        {NULL, 0, NULL, 0}};
    int ch;

    memset(o, 0, sizeof *o);
    wr_cli_init("warren-call", usage_line);
    o->uri = wr_cli_default_uri();
    o->timeout_s = DEFAULT_TIMEOUT_S;
    opterr = 0; /* our own messages */
    while ((ch = getopt_long(argc, argv, ":u:q:x:k:t:hV", longopts, NULL)) != -1) {
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
            break;
        case 'n':
            o->notify = 1;
            break;
        case 'd':
            o->direct = 1;
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

    if (o->queue != NULL && (o->exchange != NULL || o->key != NULL))
        wr_cli_usage_error("-q cannot be combined with -x/-k");
    if ((o->exchange == NULL) != (o->key == NULL))
        wr_cli_usage_error("-x EXCHANGE and -k KEY go together");
    if (o->queue == NULL && o->exchange == NULL)
        o->queue = WR_CLI_DEFAULT_QUEUE;

    if (optind >= argc)
        wr_cli_usage_error("missing METHOD");
    if (argc - optind > 2)
        wr_cli_usage_error("too many arguments (quote PARAMS_JSON as one argument)");
    o->method = argv[optind];
    if (o->method[0] == '\0')
        wr_cli_usage_error("METHOD is empty");
    o->params = optind + 1 < argc ? argv[optind + 1] : NULL;
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

/*
 * The request as compact JSON text (new string, caller frees), with ID as
 * its id unless ID is NULL (a notification).  Bad PARAMS_JSON is a usage
 * error (exits).
 */
static char *build_request(const struct options *o, const char *id)
{
    json_t *req, *params = NULL;
    json_error_t jerr;
    char *text;

    if (o->params != NULL) {
        params = json_loads(o->params, JSON_DECODE_ANY, &jerr);
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
        (id != NULL && json_object_set_new(req, "id", json_string(id)) < 0)) {
        fprintf(stderr, "warren-call: out of memory\n");
        exit(WR_EXIT_SOFTWARE);
    }
    text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (text == NULL) {
        fprintf(stderr, "warren-call: cannot encode the request (is METHOD valid UTF-8?)\n");
        exit(WR_EXIT_USAGE);
    }
    return text;
}

/*
 * Act on the reply: print the result (0) or the error (1), or complain
 * about a malformed reply (76).  Returns the exit status.
 */
static int show_reply(const wr_client_reply *reply)
{
    json_error_t jerr;
    json_t *resp, *result, *error;
    int rc;

    resp = json_loadb(reply->body, reply->len, JSON_DECODE_ANY, &jerr);
    if (resp == NULL) {
        fprintf(stderr, "warren-call: the reply is not JSON: %s (column %d): %.200s\n", jerr.text,
                jerr.column, reply->body);
        return EXIT_PROTOCOL;
    }
    result = json_is_object(resp) ? json_object_get(resp, "result") : NULL;
    error = json_is_object(resp) ? json_object_get(resp, "error") : NULL;
    if (result != NULL && error == NULL) {
        char *text = json_dumps(result, JSON_ENCODE_ANY | JSON_COMPACT);

        if (text == NULL) {
            fprintf(stderr, "warren-call: cannot print the result\n");
            rc = WR_EXIT_SOFTWARE;
        } else {
            printf("%s\n", text);
            free(text);
            rc = WR_EXIT_OK;
        }
    } else if (json_is_object(error) && json_is_integer(json_object_get(error, "code"))) {
        const char *msg = json_string_value(json_object_get(error, "message"));
        json_t *data = json_object_get(error, "data");

        fprintf(stderr, "error %" JSON_INTEGER_FORMAT ": %s\n",
                json_integer_value(json_object_get(error, "code")), msg ? msg : "(no message)");
        if (data != NULL) {
            char *text = json_dumps(data, JSON_ENCODE_ANY | JSON_COMPACT);

            if (text != NULL)
                fprintf(stderr, "data: %s\n", text);
            free(text);
        }
        rc = EXIT_RPC_ERROR;
    } else {
        fprintf(stderr, "warren-call: the reply is not a JSON-RPC response: %.200s\n", reply->body);
        rc = EXIT_PROTOCOL;
    }
    json_decref(resp);
    return rc;
}

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for the reply to request ID, ignoring any other.  Exit status. */
static int await_reply(wr_client *c, const char *id, double timeout_s)
{
    long long deadline = now_ms() + (long long)(timeout_s * 1000.0 + 0.5);
    char err[512];

    for (;;) {
        wr_client_reply reply;
        long long left = deadline - now_ms();
        int rc;

        rc = wr_client_recv(c, left > 0 ? (int)left : 0, &reply, err, sizeof err);
        if (rc == 0) {
            fprintf(stderr, "warren-call: no reply within %g s\n", timeout_s);
            return EXIT_NO_REPLY;
        }
        if (rc < 0) {
            fprintf(stderr, "warren-call: %s\n", err);
            return WR_EXIT_UNAVAILABLE;
        }
        if (reply.correlation_id != NULL && strcmp(reply.correlation_id, id) == 0) {
            rc = show_reply(&reply);
            wr_client_reply_free(&reply);
            return rc;
        }
        wr_client_reply_free(&reply); /* someone else's: a stale reply */
    }
}

int main(int argc, char **argv)
{
    struct options o;
    struct timeval tv;
    wr_client *c = NULL;
    char id[64], err[512], *body;
    const char *exchange, *key;
    int mode, rc;

    parse_args(argc, argv, &o);
    exchange = o.exchange != NULL ? o.exchange : "";
    key = o.exchange != NULL ? o.key : o.queue;

    /* Unique enough per call: pid and the microsecond we started. */
    gettimeofday(&tv, NULL);
    snprintf(id, sizeof id, "wc-%ld-%lld.%06ld", (long)getpid(), (long long)tv.tv_sec,
             (long)tv.tv_usec);
    body = build_request(&o, o.notify ? NULL : id);

    mode = o.notify ? WR_CLIENT_NO_REPLY
                    : (o.direct ? WR_CLIENT_DIRECT_REPLY_TO : WR_CLIENT_REPLY_QUEUE);
    if (wr_client_connect(&c, o.uri, mode, err, sizeof err) < 0) {
        fprintf(stderr, "warren-call: %s\n", err);
        free(body);
        return WR_EXIT_UNAVAILABLE;
    }
    wr_client_set_mandatory(c, 1);
    if (wr_client_publish(c, exchange, key, body, strlen(body), o.notify ? NULL : id, 0, err,
                          sizeof err) < 0) {
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
        rc = await_reply(c, id, o.timeout_s);
    }
    wr_client_close(c);
    free(body);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "warren-call: writing the result: %s\n", strerror(errno));
        if (rc == WR_EXIT_OK)
            rc = WR_EXIT_SOFTWARE;
    }
    return rc;
}
