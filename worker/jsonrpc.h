/*
 * The JSON-RPC 2.0 envelope: decoding a request body into calls and
 * building the response objects.  No I/O and no plugin knowledge here, so
 * every error code can be unit-tested on plain strings.
 */
#ifndef WR_JSONRPC_H
#define WR_JSONRPC_H

#include <jansson.h>
#include <stddef.h>

#include "warren/plugin.h" /* WARREN_ERR_* codes */

/* One call of a request (a single request has one; a batch has many). */
typedef struct wr_rpc_call {
    /* Borrowed from the request.  NULL: a notification (no reply).  An
     * invalid request is always answered: when its id could not be read
     * (absent, wrong type, entry not an object) id is json_null(), so the
     * rule is simply "reply iff id != NULL". */
    json_t *id;
    const char *method; /* borrowed; NULL when error is set */
    json_t *params;     /* borrowed; NULL when absent */
    /* New reference: a complete error response for this entry (invalid
     * request, invalid params type), or NULL when the call is valid. */
    json_t *error;
} wr_rpc_call;

typedef struct wr_rpc_request {
    json_t *root;       /* owned parsed body, or NULL after a parse error */
    int batch;          /* 1 when the body was an array */
    wr_rpc_call *calls; /* owned array */
    size_t ncalls;
    /* New reference: the one response for a body that could not be read
     * as calls at all (parse error, empty batch, not an object or array);
     * when set, ncalls is 0. */
    json_t *error;
} wr_rpc_request;

/*
 * Decode BODY (LEN bytes, not NUL-terminated) into REQ.  Never fails:
 * every problem becomes an error response inside REQ:
 *   -32700 not JSON, invalid UTF-8, empty body
 *   -32600 not an object/array, empty batch, batch entry not an object,
 *          jsonrpc != "2.0", method missing or not a string (or holding
 *          \u0000), id not a string/number/null
 *   -32602 params present but neither an array nor an object
 * Free with wr_jsonrpc_request_free.
 */
void wr_jsonrpc_decode(const char *body, size_t len, wr_rpc_request *req);
/* The same, refusing a batch of more than MAX_BATCH entries (0: no limit)
 * as one -32600 error, without decoding its calls. */
void wr_jsonrpc_decode_max(const char *body, size_t len, size_t max_batch, wr_rpc_request *req);
void wr_jsonrpc_request_free(wr_rpc_request *req);

/* {"jsonrpc":"2.0","result":RESULT,"id":ID}.  New reference.  RESULT is
 * stolen (NULL means null); ID is borrowed (NULL means null). */
json_t *wr_jsonrpc_result(json_t *id, json_t *result);

/* {"jsonrpc":"2.0","error":{"code":CODE,"message":MSG[,"data":DATA]},
 * "id":ID}.  New reference.  DATA is stolen (may be NULL); ID borrowed.
 * MSG NULL means the standard text for CODE ("Invalid params"); a MSG
 * that is not valid UTF-8 is sent with its non-ASCII bytes as '?'.
 * Both builders return NULL only on allocation failure. */
json_t *wr_jsonrpc_error(json_t *id, int code, const char *msg, json_t *data);

/* Serialize a response (object or array) compactly.  Returns a malloc'd
 * NUL-terminated string the caller frees, or NULL on allocation failure. */
char *wr_jsonrpc_encode(const json_t *response, size_t *len);

/* What wr_jsonrpc_encode(wr_jsonrpc_result(ID, RESULT)) writes, byte for
 * byte, without building the response object: the envelope is written
 * around RESULT's and ID's own encodings.  Both borrowed (NULL means
 * null).  The call path's answer to one call: jansson's dump checks every
 * object and array for a loop with a hashtable of its own, and the
 * response object cost that and ten allocations per call.  Returns a
 * malloc'd NUL-terminated string, or NULL on allocation failure. */
char *wr_jsonrpc_encode_result(const json_t *id, const json_t *result, size_t *len);

/* A request id as text, for routing keys built from it ("q538", "42",
 * "1.5"): malloc'd, or NULL for an id that is absent, null, not a string
 * or number, a string holding \u0000, or out of memory. */
char *wr_jsonrpc_id_text(const json_t *id);

#endif
