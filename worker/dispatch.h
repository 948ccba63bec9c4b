/*
 * One delivery's work, without any AMQP: decode the body as its route's
 * format says, call the handlers, build the reply body.  The worker's main
 * thread prepares a job (decoding is cheap and tells it which method is
 * starting), the runner thread runs it, and the main thread publishes what
 * it produced.
 *
 * The formats (worker/format_*.c) are one table of operations each, so
 * that a new dialect is one file: this module does what all of them share
 * (the size limit, calling a method, the built-in methods).
 */
#ifndef WR_DISPATCH_H
#define WR_DISPATCH_H

#include <stddef.h>

#include "config/config.h"
#include "worker/builtin.h"
#include "worker/jsonrpc.h"
#include "worker/plugin_loader.h"

/* The message as the worker received it, with everything a format or a
 * handler may read.  Strings are NUL-terminated; NULL when absent. */
typedef struct wr_delivery {
    const char *body; /* not NUL-terminated */
    size_t len;
    const char *content_type;
    const char *exchange;
    const char *routing_key;
    const char *correlation_id;
    const char *reply_to;
    int redelivered;
    json_t *headers; /* JSON object, or NULL when the message has none */
    /* An AMQP 1.0 encoded body (type = amqp-1.0) that did not decode: the
     * route's bad-input error (CODE, never 0 then, and MESSAGE) answers it
     * instead of the format. */
    int bad_code;
    char bad_message[128];
    char *body_buf; /* owned: the unwrapped body that BODY points to, or NULL */
    char *strings;  /* owned (wr_delivery_from_envelope): where the five
                       strings above live, one allocation for all */
    /* When the caller stops listening, unix ms (worker/delivery.c,
     * wr_delivery_deadline_ms); 0: no deadline.  DEADLINE_FROM says what
     * set it ("x-deadline" or "expiration"; static). */
    long long deadline_ms;
    const char *deadline_from;
} wr_delivery;

/* What methods are called with. */
typedef struct wr_dispatcher {
    const wr_plugins *plugins;
    const wr_builtins *builtins; /* NULL: [pool] builtin_methods = no */
} wr_dispatcher;

typedef struct wr_job wr_job;

#define WR_JOB_CODES 8

/* One message format: how its bodies are read and its replies written. */
typedef struct wr_format_ops {
    const char *name;
    /* Decode JOB->in (JOB->route and JOB->in are set).  Main thread. */
    void (*prepare)(wr_job *job);
    /* The first method the message calls, for status lines; "-" when none. */
    const char *(*method)(const wr_job *job);
    /* Run the calls and fill the reply.  Runner thread. */
    void (*run)(wr_job *job, const wr_dispatcher *d);
    /* Fill the reply with an error for the whole message (CODE, MESSAGE,
     * DATA: a new reference or NULL, taken), when the caller expects an
     * answer. */
    void (*fail)(wr_job *job, int code, const char *message, json_t *data);
} wr_format_ops;

extern const wr_format_ops wr_format_jsonrpc, wr_format_raw, wr_format_amqpbus;

struct wr_job {
    /* Input, borrowed: valid until wr_dispatch_free. */
    const wr_route *route;
    const wr_format_ops *ops;
    wr_delivery in;
    warren_message message; /* the same, for plugins (ABI 1.1) */
    const char *label;      /* for log lines: the route name */

    /* Filled by prepare. */
    wr_rpc_request req;    /* jsonrpc */
    json_t *params;        /* raw, amqpbus: the call's params (new reference) */
    char *qid;             /* amqpbus: the request id, owned */
    int bad_code;          /* raw, amqpbus: the body is unusable: this error... */
    char bad_message[128]; /* ... with this text */
    int oversize;          /* body longer than the limit; not decoded */
    long max_size;
    size_t max_batch; /* jsonrpc: most calls in a batch (0: no limit) */

    /* Filled by run (or fail). */
    char *reply; /* owned: the body to publish, NULL when nothing to send */
    size_t reply_len;
    const char *reply_type;  /* its content type (static) */
    char *reply_id;          /* owned: the request id as text, for reply_prefix
                                routing keys; NULL when none */
    int error_code;          /* raw: the error the reply carries (0: none), */
    char error_message[256]; /* for the x-error-code/x-error-message headers */
    unsigned ncalls;         /* calls executed */
    unsigned nerrors;        /* error responses produced (any code) */
    /* Their codes, for the metrics (wr_dispatch_count_error): the first
     * WR_JOB_CODES distinct ones with how often, then how many more. */
    int codes[WR_JOB_CODES];
    unsigned code_counts[WR_JOB_CODES];
    size_t ncodes;
    unsigned long more_codes;
};

/* One more error response in JOB's reply, with CODE. */
void wr_dispatch_count_error(wr_job *job, int code);

/* Decode IN, which arrived on ROUTE (read as its format says), into JOB
 * (zeroing it first).  Bodies over MAX_SIZE bytes are not parsed at all.
 * ROUTE and what IN points to must outlive JOB. */
void wr_dispatch_prepare(wr_job *job, const wr_route *route, const wr_delivery *in, long max_size);

/* The same, with a JSON-RPC batch of more than MAX_BATCH calls (0: no
 * limit; wr_dispatch_prepare uses WR_DEFAULT_MAX_BATCH) answered with one
 * -32600 error instead of being run. */
#define WR_DEFAULT_MAX_BATCH 1000
void wr_dispatch_prepare_limited(wr_job *job, const wr_route *route, const wr_delivery *in,
                                 long max_size, size_t max_batch);

/* Method of the first call, for status lines; borrowed; "-" when none. */
const char *wr_dispatch_method(const wr_job *job);

/* Run every call of JOB and build the reply.  Logs one line for a message
 * that is malformed as a whole or has invalid entries. */
void wr_dispatch_run(wr_job *job, const wr_dispatcher *d);

/* Instead of running JOB (prepared), answer it with a -32603 error saying
 * WHY, when the caller expects an answer. */
void wr_dispatch_refuse(wr_job *job, const char *why);

/* The error code of a request whose deadline passed before it ran. */
#define WR_ERR_DEADLINE (-32000)

/* Requests not run because their deadline had passed: the count that
 * warren.status shows, and the state of the rate-limited log line. */
typedef struct wr_expired_stats {
    unsigned long count;
    unsigned long unlogged; /* since the last info line */
    long long last_info_ms; /* when that line was written (0: never) */
} wr_expired_stats;

/* Expired requests get one info line per this many ms (the first at
 * once); the others a debug line each. */
#define WR_EXPIRED_LOG_INTERVAL_MS 10000

/*
 * Has JOB's deadline (JOB->in.deadline_ms, worker/delivery.c) passed at
 * NOW_MS (unix)?  Then its reply is the route's error for it where the
 * caller can still listen (code WR_ERR_DEADLINE, "deadline passed N ms
 * ago", data {"deadline_ms", "late_ms", "from"}), it is counted and logged
 * in ST, and 1 is returned: do not run it.  0 otherwise.
 */
int wr_dispatch_expired(wr_job *job, long long now_ms, wr_expired_stats *st);

/*
 * Call METHOD with PARAMS (borrowed; may be NULL) for JOB: a built-in
 * method, else the plugin that has it.  Returns 0 with *RESULT (a new
 * reference, never NULL), or -1 with ERR filled (code never 0, message
 * never empty; ERR->data a new reference or NULL).  Counts the call.
 */
int wr_dispatch_call(wr_job *job, const wr_dispatcher *d, const char *method, json_t *params,
                     json_t **result, warren_error *err);

/* Set JOB's reply to {"error": {"code": CODE, "message": MESSAGE[, "data":
 * DATA]}} (application/json): the error of the formats without an
 * envelope.  Takes DATA (may be NULL). */
void wr_dispatch_error_reply(wr_job *job, int code, const char *message, json_t *data);

/*
 * The run of a format whose message is one call of the route's method
 * with JOB->params (raw, amqpbus): bad input found by prepare, or the
 * handler's error, goes to the format's fail; otherwise the result is
 * returned (a new reference).  NULL when fail ran.
 */
json_t *wr_dispatch_run_method(wr_job *job, const wr_dispatcher *d);

/* Set JOB's reply to RESULT (taken) as compact JSON text. */
void wr_dispatch_json_reply(wr_job *job, json_t *result);

/* Set JOB's reply to TEXT (copied) of type TYPE. */
void wr_dispatch_set_reply(wr_job *job, const char *text, size_t len, const char *type);

void wr_dispatch_free(wr_job *job);

#endif
