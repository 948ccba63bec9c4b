/*
 * warren plugin SDK: the one header a handler plugin needs.
 *
 * A plugin is a shared object that exports one symbol, `warren_plugin`, a
 * const descriptor made with WARREN_PLUGIN_DEFINE().  warren checks the
 * descriptor's magic, ABI major and size before it touches anything else,
 * so a plugin built against another major version is refused with a
 * message naming both versions instead of crashing the worker.
 *
 * Services warren offers to plugins (logging, the plugin's config section)
 * reach it through the warren_host table handed to init() and to every
 * call: a plugin never resolves symbols against the daemon.
 *
 * JSON values are jansson values.  Ownership follows jansson's wording:
 * "borrowed" means warren keeps it, "new" means the receiver must
 * json_decref() it.
 *
 * Handlers are called one at a time per worker process, always from the
 * same thread (the worker's handler thread), so a plugin need not be
 * thread-safe.  init() runs before the first call and fini() after the
 * last, on the worker's main thread; nothing else of the plugin runs in
 * between.
 */
#ifndef WARREN_PLUGIN_H
#define WARREN_PLUGIN_H

#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WARREN_PLUGIN_MAGIC 0x5752504cu /* "WRPL" */
#define WARREN_PLUGIN_ABI_MAJOR 1
#define WARREN_PLUGIN_ABI_MINOR                                                                    \
    1 /* 1.1: WARREN_ERR_TEMPORARY, warren_call.message, method_size                               \
       */

/* Name of the symbol every plugin exports. */
#define WARREN_PLUGIN_SYMBOL "warren_plugin"

/* Standard JSON-RPC 2.0 error codes, for handlers that want them. */
#define WARREN_ERR_PARSE (-32700)
#define WARREN_ERR_INVALID_REQUEST (-32600)
#define WARREN_ERR_METHOD_NOT_FOUND (-32601)
#define WARREN_ERR_INVALID_PARAMS (-32602)
#define WARREN_ERR_INTERNAL (-32603)
/* Application errors should use codes outside -32768..-32000. */

/*
 * For init() only (ABI 1.1): put this in err->code when the failure is
 * transient (a database or service not reachable yet).  The worker then
 * exits with 75 (EX_TEMPFAIL) and the supervisor starts it again with
 * backoff (0.1 s doubling to 10 s), where any other init failure stops
 * warren (exit 78).  warren --check says "init failed temporarily".
 * From a handler it is just an error code, passed to the caller.
 */
#define WARREN_ERR_TEMPORARY (-32075)

enum warren_log_level {
    WARREN_LOG_ERROR = 0,
    WARREN_LOG_WARN = 1,
    WARREN_LOG_INFO = 2,
    WARREN_LOG_DEBUG = 3
};

/* Services offered by warren.  One table per loaded plugin. */
typedef struct warren_host {
    uint32_t size; /* sizeof(warren_host) as warren built it */
    /* Name of the plugin this table belongs to. */
    const char *plugin_name;
    /* Log one line, prefixed with the plugin's name. */
    void (*log)(const struct warren_host *host, int level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
    /* Value of KEY in the plugin's own [plugin NAME] config section, or
     * NULL when the section does not set it.  Borrowed: valid until fini. */
    const char *(*config_get)(const struct warren_host *host, const char *key);
    void *reserved[4];  /* zero; later minor versions put services here */
    void *host_private; /* warren's; plugins must not touch it */
} warren_host;

/*
 * A structured error, filled by a handler (or init) that fails.
 * code:    the JSON-RPC error code returned to the caller.
 * message: one line of text for the caller.
 * data:    optional extra JSON; warren takes ownership (a new reference).
 */
typedef struct warren_error {
    int code;
    char message[256];
    json_t *data;
} warren_error;

/* Fill ERR and return -1, so a handler can `return warren_error_set(...)`. */
static inline int warren_error_set(warren_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline int warren_error_set(warren_error *err, int code, const char *fmt, ...)
{
    va_list ap;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return -1;
}

/*
 * The AMQP message a call came in (ABI 1.1), for what a JSON value cannot
 * carry.  Everything is borrowed and valid only during the call.  Check
 * `size` before reading a field added by a later minor version.
 */
typedef struct warren_message {
    uint32_t size;    /* sizeof(warren_message) as warren built it */
    const void *body; /* the body exactly as received */
    size_t body_len;
    const char *content_type; /* NULL when the message has none */
    const char *route;        /* the [route NAME] it arrived on */
    const char *exchange;     /* "" for the default exchange */
    const char *routing_key;
    const char *correlation_id; /* NULL when absent */
    const char *reply_to;       /* NULL when absent */
    int redelivered;            /* the broker delivered it before */
    json_t *headers;            /* the AMQP headers as a JSON object; NULL when none */
} warren_message;

/* What a handler knows about the call it is serving. */
typedef struct warren_call {
    const warren_host *host;
    void *state;        /* what the plugin's init() stored, or NULL */
    const char *method; /* the method name as called */
    /* ABI 1.1: the message this call came in; NULL when there is none
     * (a 1.0 host leaves it NULL too: reserved fields are zero). */
    const warren_message *message;
    void *reserved[3];
} warren_call;

/*
 * A method handler.
 * params: borrowed; the call's "params" (an array or an object), or NULL
 *         when the call has none.
 * On success return 0 and store a new reference in *result (leaving it
 * NULL means JSON null).  On failure return nonzero and fill *err.
 */
typedef int (*warren_handler_fn)(const warren_call *call, json_t *params, json_t **result,
                                 warren_error *err);

/* One method.  warren walks the table with the element size the plugin
 * recorded (method_size in the descriptor), so later minor versions can
 * add fields at the end without breaking older plugins. */
typedef struct warren_method {
    const char *name; /* unique across all loaded plugins */
    warren_handler_fn handler;
    const char *summary; /* one line, for --check listings; may be NULL */
} warren_method;

/*
 * The descriptor.  Build it only with WARREN_PLUGIN_DEFINE so that the
 * header fields are right.
 * init: optional.  Called once per worker process before any call; store
 *       per-process state in *state.  Return 0, or nonzero with *err
 *       filled: the worker refuses to start and says why.  With
 *       err->code = WARREN_ERR_TEMPORARY the worker is retried with
 *       backoff; with any other code warren stops.
 * fini: optional.  Called once at worker exit with the state init stored.
 * methods: array ended by an entry whose name is NULL.
 *
 * Written `struct warren_plugin`, with no typedef: the exported object is
 * itself named warren_plugin, and in C a typedef and a variable of the
 * same name cannot coexist in one scope (a struct tag can, as with
 * `struct stat` and stat()).
 */
struct warren_plugin {
    uint32_t magic;
    uint16_t abi_major;
    uint16_t abi_minor;
    uint32_t size; /* sizeof(struct warren_plugin) */
    const char *name;
    const char *version;
    int (*init)(const warren_host *host, void **state, warren_error *err);
    void (*fini)(const warren_host *host, void *state);
    const warren_method *methods;
    /* ABI 1.1: sizeof(warren_method) as the plugin was built; 0 in 1.0
     * plugins, which means the 1.0 size. */
    uint32_t method_size;
    uint32_t reserved32;
    void *reserved[7];
};

#define WARREN_PLUGIN_EXPORT __attribute__((visibility("default")))

/* Usage: WARREN_PLUGIN_DEFINE(.name = "echo", .version = "1.0",
 *                             .methods = echo_methods); */
#define WARREN_PLUGIN_DEFINE(...)                                                                  \
    WARREN_PLUGIN_EXPORT const struct warren_plugin warren_plugin = {                              \
        .magic = WARREN_PLUGIN_MAGIC,                                                              \
        .abi_major = WARREN_PLUGIN_ABI_MAJOR,                                                      \
        .abi_minor = WARREN_PLUGIN_ABI_MINOR,                                                      \
        .size = sizeof(struct warren_plugin),                                                      \
        .method_size = sizeof(warren_method),                                                      \
        __VA_ARGS__}

#ifdef __cplusplus
}
#endif
#endif
