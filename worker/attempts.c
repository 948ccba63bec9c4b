/* The broker's delivery count as the exact attempt limit; see attempts.h. */
#include "worker/attempts.h"

#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "worker/signals.h"

static long integer_value(const amqp_field_value_t *v)
{
    switch (v->kind) {
    case AMQP_FIELD_KIND_I8:
        return v->value.i8;
    case AMQP_FIELD_KIND_U8:
        return v->value.u8;
    case AMQP_FIELD_KIND_I16:
        return v->value.i16;
    case AMQP_FIELD_KIND_U16:
        return v->value.u16;
    case AMQP_FIELD_KIND_I32:
        return v->value.i32;
    case AMQP_FIELD_KIND_U32:
        return (long)v->value.u32;
    case AMQP_FIELD_KIND_I64:
        return (long)v->value.i64;
    case AMQP_FIELD_KIND_U64:
        return (long)(v->value.u64 > (uint64_t)__LONG_MAX__ ? (uint64_t)__LONG_MAX__
                                                            : v->value.u64);
    default:
        return 0;
    }
}

long wr_attempts_prior(const amqp_basic_properties_t *p)
{
    long most = 0;

    if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG))
        return 0;
    for (int i = 0; i < p->headers.num_entries; i++) {
        const amqp_table_entry_t *e = &p->headers.entries[i];
        long n;

        if (!(e->key.len == 16 && !memcmp(e->key.bytes, "x-delivery-count", 16)) &&
            !(e->key.len == 16 && !memcmp(e->key.bytes, "x-acquired-count", 16)))
            continue;
        n = integer_value(&e->value);
        if (n > most)
            most = n;
    }
    return most;
}

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int wr_attempts_spent(wr_commands *c, const wr_route *route, int max_attempts,
                      const wr_ipc_msg *start, const amqp_envelope_t *env, wr_refusal *out)
{
    long prior;
    long long deadline;
    const wr_ipc_msg *poison;

    /* A classic queue counts nothing (and a header of that name there is
     * the publisher's, not the broker's). */
    if (route->queue_type != WR_QUEUE_QUORUM || !env->redelivered)
        return 0;
    prior = wr_attempts_prior(&env->message.properties);
    if (prior < max_attempts)
        return 0;

    /* Usually the earlier deliveries were deaths, and the supervisor's
     * "poison" command, which says how the last one died, is on its way:
     * give it a moment (the runner is idle, and heartbeats allow it). */
    deadline = now_ms() + WR_ATTEMPTS_WAIT_MS;
    while (!(poison = wr_commands_poisoned(c, start->route, start->msgid, start->hash)) &&
           c->open && !wr_signals_stopping()) {
        long long left = deadline - now_ms();
        struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};

        if (left <= 0)
            break;
        if (poll(&p, 1, (int)left) > 0 && wr_commands_read(c, 0) < 0)
            wr_signals_request_stop();
    }
    if (poison) {
        wr_refusal_from_poison(out, poison);
        return 1;
    }
    out->attempts = (unsigned)prior;
    snprintf(out->reason, sizeof out->reason,
             "was delivered %ld times without being answered (x-delivery-count)", prior);
    out->last_death[0] = '\0';
    return 1;
}
