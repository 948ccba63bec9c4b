/*
 * The JSON-RPC 2.0 envelope (see jsonrpc.h).
 *
 * Decoding never fails: whatever arrives, the caller gets either calls to
 * dispatch or ready-made error responses, so a bad body can be answered
 * and acked instead of crashing or looping the worker.
 *
 * Parsing choices, all made in decode_flags below:
 *   - JSON_DECODE_ANY, so a bare scalar ("42") parses and is then refused
 *     as -32600 Invalid Request (it is valid JSON, just not a request);
 *     without the flag jansson would call it a parse error.
 *   - JSON_ALLOW_NUL: "a\u0000b" is valid JSON, and a handler that reads
 *     strings with json_string_length() gets all of it (echo returns it
 *     whole).  Where a C string would cut it short, it is refused: a
 *     method name holding \u0000 is an invalid request (else
 *     "echo\u0000x" would call echo), and such an id is not made into a
 *     routing key.
 *   - No JSON_REJECT_DUPLICATES: duplicate keys are accepted, the last
 *     one wins, as in most JSON parsers clients are tested against.
 *   - jansson rejects invalid UTF-8 and trailing garbage by itself.
 */
#include "worker/jsonrpc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const size_t decode_flags = JSON_DECODE_ANY | JSON_ALLOW_NUL;

/* The standard text for CODE, used when a caller passes no message. */
static const char *standard_message(int code)
{
    switch (code) {
    case WARREN_ERR_PARSE:
        return "Parse error";
    case WARREN_ERR_INVALID_REQUEST:
        return "Invalid Request";
    case WARREN_ERR_METHOD_NOT_FOUND:
        return "Method not found";
    case WARREN_ERR_INVALID_PARAMS:
        return "Invalid params";
    case WARREN_ERR_INTERNAL:
        return "Internal error";
    default:
        return "Error";
    }
}

/*
 * MSG as a JSON string.  New reference, NULL only on allocation failure.
 * A handler's message may not be valid UTF-8 (a Latin-1 file name, or a
 * multibyte character cut by warren_error's 256-byte buffer), and
 * json_string() refuses that; rather than lose the whole error response,
 * non-ASCII bytes become '?'.
 */
static json_t *message_string(const char *msg)
{
    json_t *s = json_string(msg);
    char *ascii;

    if (s)
        return s;
    ascii = strdup(msg);
    if (!ascii)
        return NULL;
    for (char *p = ascii; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    s = json_string(ascii);
    free(ascii);
    return s;
}

/*
 * Both builders below use the same pattern: every json_object_set_new()
 * runs, without short-circuit, because set_new steals its value even when
 * it fails (and takes NULL, from a failed json_string(), as a failure).
 * So once the containers exist, RESP owns everything and is the only thing
 * to release on failure.
 */
json_t *wr_jsonrpc_result(json_t *id, json_t *result)
{
    json_t *resp = json_object();
    int bad = 0;

    if (!resp) {
        json_decref(result);
        return NULL;
    }
    /* Insertion order is output order: jsonrpc, result, id. */
    bad |= json_object_set_new(resp, "jsonrpc", json_string("2.0")) < 0;
    bad |= json_object_set_new(resp, "result", result ? result : json_null()) < 0;
    bad |= json_object_set(resp, "id", id ? id : json_null()) < 0;
    if (bad) {
        json_decref(resp);
        return NULL;
    }
    return resp;
}

json_t *wr_jsonrpc_error(json_t *id, int code, const char *msg, json_t *data)
{
    json_t *resp = json_object();
    json_t *err = json_object();
    int bad = 0;

    if (!resp || !err) {
        json_decref(resp);
        json_decref(err);
        json_decref(data);
        return NULL;
    }
    bad |= json_object_set_new(err, "code", json_integer(code)) < 0;
    bad |=
        json_object_set_new(err, "message", message_string(msg ? msg : standard_message(code))) < 0;
    if (data)
        bad |= json_object_set_new(err, "data", data) < 0;
    bad |= json_object_set_new(resp, "jsonrpc", json_string("2.0")) < 0;
    bad |= json_object_set_new(resp, "error", err) < 0;
    bad |= json_object_set(resp, "id", id ? id : json_null()) < 0;
    if (bad) {
        json_decref(resp);
        return NULL;
    }
    return resp;
}

/*
 * An encoding being written: jansson's encoder appends to it as it goes,
 * so a response of any size is encoded in one pass (json_dumpb into a
 * fixed buffer needs a second pass once the response outgrows it, which
 * doubled the cost of a 64 KiB reply).  Room is always kept for the NUL.
 */
typedef struct {
    char *s;
    size_t len, cap;
} out_buf;

static int out_append(const char *bytes, size_t n, void *data)
{
    out_buf *o = data;

    if (n >= o->cap - o->len) {
        size_t cap = o->cap ? o->cap : 256;
        char *s;

        while (n >= cap - o->len) {
            if (cap > SIZE_MAX / 2)
                return -1;
            cap *= 2;
        }
        if (!(s = realloc(o->s, cap)))
            return -1;
        o->s = s;
        o->cap = cap;
    }
    memcpy(o->s + o->len, bytes, n);
    o->len += n;
    return 0;
}

/* JSON_ENCODE_ANY only so that a stray scalar still encodes; real
 * responses are objects or arrays.  Reals keep jansson's default 17
 * significant digits, which round-trip every double exactly. */
static int out_json(out_buf *o, const json_t *v)
{
    return json_dump_callback(v, out_append, o, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* O's text, NUL-terminated (its length in *LEN), or NULL, freed, when
 * anything failed to append. */
static char *out_finish(out_buf *o, int failed, size_t *len)
{
    if (failed || !o->s) {
        free(o->s);
        return NULL;
    }
    o->s[o->len] = '\0';
    if (len)
        *len = o->len;
    return o->s;
}

char *wr_jsonrpc_encode(const json_t *response, size_t *len)
{
    out_buf o = {0};

    return out_finish(&o, out_json(&o, response) < 0, len);
}

char *wr_jsonrpc_encode_result(const json_t *id, const json_t *result, size_t *len)
{
    static const char head[] = "{\"jsonrpc\":\"2.0\",\"result\":", mid[] = ",\"id\":";
    out_buf o = {0};
    int bad = out_append(head, sizeof head - 1, &o) < 0;

    bad = bad || out_json(&o, result ? result : json_null()) < 0;
    bad = bad || out_append(mid, sizeof mid - 1, &o) < 0;
    bad = bad || out_json(&o, id ? id : json_null()) < 0;
    bad = bad || out_append("}", 1, &o) < 0;
    return out_finish(&o, bad, len);
}

/* An error response for one entry, with the entry's id when it had a
 * usable one, else null. */
static json_t *entry_error(json_t *id, int code, const char *msg)
{
    return wr_jsonrpc_error(id ? id : json_null(), code, msg, NULL);
}

/*
 * Fill C from one request object ENTRY (borrowed from the request root).
 *
 * Which id an error carries: JSON-RPC 2.0 answers an invalid request with
 * id null, but when the entry is an object with a readable id we echo it,
 * which lets a batch caller tell which entry was wrong.  An invalid
 * request is always answered, even when it has no id (the spec's own
 * examples do so), so c->id is then json_null(), a jansson singleton, and
 * the dispatcher's rule stays simply "reply iff id != NULL".  Invalid
 * params, on the other hand, belong to a well-formed call: a notification
 * keeps id NULL and gets no reply.
 */
static void decode_call(json_t *entry, wr_rpc_call *c)
{
    json_t *id, *version, *method, *params;

    memset(c, 0, sizeof *c);
    if (!json_is_object(entry)) {
        c->id = json_null();
        c->error = entry_error(NULL, WARREN_ERR_INVALID_REQUEST,
                               "Invalid Request: batch entry must be an object");
        return;
    }

    id = json_object_get(entry, "id");
    if (id && !json_is_string(id) && !json_is_number(id) && !json_is_null(id)) {
        c->id = json_null();
        c->error = entry_error(NULL, WARREN_ERR_INVALID_REQUEST,
                               "Invalid Request: id must be a string, a number or null");
        return;
    }

    version = json_object_get(entry, "jsonrpc");
    if (!json_is_string(version) || strcmp(json_string_value(version), "2.0") != 0) {
        c->id = id ? id : json_null();
        c->error =
            entry_error(id, WARREN_ERR_INVALID_REQUEST, "Invalid Request: jsonrpc must be \"2.0\"");
        return;
    }

    method = json_object_get(entry, "method");
    if (!method || !json_is_string(method)) {
        c->id = id ? id : json_null();
        c->error = entry_error(id, WARREN_ERR_INVALID_REQUEST,
                               method ? "Invalid Request: method must be a string"
                                      : "Invalid Request: method is missing");
        return;
    }

    if (strlen(json_string_value(method)) != json_string_length(method)) {
        c->id = id ? id : json_null();
        c->error = entry_error(id, WARREN_ERR_INVALID_REQUEST,
                               "Invalid Request: method must not contain \\u0000");
        return;
    }

    c->id = id; /* NULL: a notification */
    params = json_object_get(entry, "params");
    if (params && !json_is_array(params) && !json_is_object(params)) {
        c->error = entry_error(id, WARREN_ERR_INVALID_PARAMS,
                               "Invalid params: params must be an array or an object");
        return;
    }
    c->method = json_string_value(method);
    c->params = params;
}

void wr_jsonrpc_decode(const char *body, size_t len, wr_rpc_request *req)
{
    wr_jsonrpc_decode_max(body, len, 0, req);
}

void wr_jsonrpc_decode_max(const char *body, size_t len, size_t max_batch, wr_rpc_request *req)
{
    json_error_t jerr;
    char msg[256];
    size_t n;

    memset(req, 0, sizeof *req);
    if (len == 0) {
        req->error = wr_jsonrpc_error(NULL, WARREN_ERR_PARSE, "Parse error: empty body", NULL);
        return;
    }

    req->root = json_loadb(body, len, decode_flags, &jerr);
    if (!req->root) {
        /* \u0000 is allowed in strings but not in object keys (jansson's
         * keys are C strings); its own text there is terse. */
        const char *what = json_error_code(&jerr) == json_error_null_byte_in_key
                               ? "\\u0000 is not allowed in object keys"
                               : jerr.text;
        snprintf(msg, sizeof msg, "Parse error: %s at line %d column %d", what, jerr.line,
                 jerr.column);
        req->error = wr_jsonrpc_error(NULL, WARREN_ERR_PARSE, msg, NULL);
        return;
    }

    if (json_is_object(req->root)) {
        n = 1;
    } else if (json_is_array(req->root)) {
        req->batch = 1;
        n = json_array_size(req->root);
        if (n == 0) {
            req->error = wr_jsonrpc_error(NULL, WARREN_ERR_INVALID_REQUEST,
                                          "Invalid Request: empty batch", NULL);
            return;
        }
        if (max_batch && n > max_batch) {
            snprintf(msg, sizeof msg, "Invalid Request: a batch of %zu calls, over max_batch (%zu)",
                     n, max_batch);
            req->error = wr_jsonrpc_error(NULL, WARREN_ERR_INVALID_REQUEST, msg, NULL);
            return;
        }
    } else {
        req->error = wr_jsonrpc_error(NULL, WARREN_ERR_INVALID_REQUEST,
                                      "Invalid Request: expected an object or an array", NULL);
        return;
    }

    req->calls = calloc(n, sizeof *req->calls);
    if (!req->calls) {
        req->error =
            wr_jsonrpc_error(NULL, WARREN_ERR_INTERNAL, "Internal error: out of memory", NULL);
        return;
    }
    req->ncalls = n;
    if (req->batch) {
        for (size_t i = 0; i < n; i++)
            decode_call(json_array_get(req->root, i), &req->calls[i]);
    } else {
        decode_call(req->root, &req->calls[0]);
    }
}

void wr_jsonrpc_request_free(wr_rpc_request *req)
{
    if (!req)
        return;
    for (size_t i = 0; i < req->ncalls; i++)
        json_decref(req->calls[i].error);
    free(req->calls);
    json_decref(req->error);
    json_decref(req->root);
    memset(req, 0, sizeof *req);
}

char *wr_jsonrpc_id_text(const json_t *id)
{
    char *s = NULL;

    if (json_is_string(id))
        return strlen(json_string_value(id)) == json_string_length(id)
                   ? strdup(json_string_value(id))
                   : NULL;
    if (json_is_integer(id))
        return asprintf(&s, "%" JSON_INTEGER_FORMAT, json_integer_value(id)) < 0 ? NULL : s;
    if (json_is_real(id))
        return asprintf(&s, "%.17g", json_real_value(id)) < 0 ? NULL : s;
    return NULL;
}
