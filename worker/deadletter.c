/* warren's own dead-lettering of refused requests; see deadletter.h. */
#include "worker/deadletter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "worker/publish.h"
#include "worker/topology.h"

/* Headers we add (at most), and the prefix of every one of ours. */
#define OUR_HEADERS 7
#define OUR_PREFIX "x-warren-"

void wr_refusal_from_poison(wr_refusal *out, const wr_ipc_msg *poison)
{
    out->attempts = poison->deaths;
    snprintf(out->reason, sizeof out->reason, "killed %u worker%s", poison->deaths,
             poison->deaths == 1 ? "" : "s");
    snprintf(out->last_death, sizeof out->last_death, "%s", poison->why);
}

/* Whether header KEY is one the copy does not keep: the source queue's
 * counters, and ours from an earlier refusal (a message requeued by hand
 * from the dead-letter queue and refused again gets fresh ones). */
static int dropped_header(amqp_bytes_t key)
{
    static const char *const counters[] = {"x-delivery-count", "x-acquired-count"};

    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++)
        if (key.len == strlen(counters[i]) && !memcmp(key.bytes, counters[i], key.len))
            return 1;
    return key.len >= strlen(OUR_PREFIX) && !memcmp(key.bytes, OUR_PREFIX, strlen(OUR_PREFIX));
}

static amqp_table_entry_t text_header(const char *key, amqp_bytes_t value)
{
    return (amqp_table_entry_t){.key = amqp_cstring_bytes(key),
                                .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = value}};
}

int wr_deadletter_publish(amqp_connection_state_t conn, amqp_channel_t channel,
                          const wr_route *route, const amqp_envelope_t *env, const wr_refusal *why)
{
    amqp_basic_properties_t props = env->message.properties; /* borrows ENV's bytes */
    const amqp_table_t *orig = &env->message.properties.headers;
    size_t norig = (props._flags & AMQP_BASIC_HEADERS_FLAG) ? (size_t)orig->num_entries : 0;
    amqp_table_entry_t *h = malloc((norig + OUR_HEADERS) * sizeof *h);
    int n = 0, st;

    if (!h) {
        wr_error("route %s: out of memory dead-lettering a refused request; leaving it unacked",
                 route->name);
        return -1;
    }
    for (size_t i = 0; i < norig; i++)
        if (!dropped_header(orig->entries[i].key))
            h[n++] = orig->entries[i];
    h[n++] = text_header("x-warren-reason", amqp_cstring_bytes(why->reason));
    h[n++] = (amqp_table_entry_t){
        .key = amqp_cstring_bytes("x-warren-attempts"),
        .value = {.kind = AMQP_FIELD_KIND_I32, .value.i32 = (int32_t)why->attempts}};
    if (why->last_death[0])
        h[n++] = text_header("x-warren-last-death", amqp_cstring_bytes(why->last_death));
    h[n++] = text_header("x-warren-route", amqp_cstring_bytes(route->name));
    h[n++] = text_header("x-warren-queue", amqp_cstring_bytes(route->queue));
    if (props._flags & AMQP_BASIC_EXPIRATION_FLAG) {
        h[n++] = text_header("x-warren-expiration", props.expiration);
        props._flags &= ~AMQP_BASIC_EXPIRATION_FLAG;
    }
    if (props._flags & AMQP_BASIC_USER_ID_FLAG) {
        h[n++] = text_header("x-warren-user-id", props.user_id);
        props._flags &= ~AMQP_BASIC_USER_ID_FLAG;
    }
    props._flags |= AMQP_BASIC_HEADERS_FLAG;
    props.headers = (amqp_table_t){.num_entries = n, .entries = h};

    /* Mandatory: should "<queue>.dead" be gone (deleted since we declared
     * it), the broker returns the copy instead of dropping it silently. */
    st = wr_publish(conn, channel, amqp_cstring_bytes(WR_DEAD_LETTER_EXCHANGE),
                    amqp_cstring_bytes(route->queue), 1 /* mandatory */, &props, env->message.body);
    free(h);
    if (st != AMQP_STATUS_OK) {
        wr_error("route %s: dead-lettering a refused request to %s failed: %s; leaving it unacked",
                 route->name, WR_DEAD_LETTER_EXCHANGE, amqp_error_string2(st));
        return -1;
    }
    return 0;
}
