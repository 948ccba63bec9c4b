/* Counting the messages ready in a worker's queues; see backlog.h. */
#include "worker/backlog.h"

#include <stdio.h>

#include "common/amqp_conn.h"

/* R failed (ERR filled): answer a channel close so that the channel
 * number can be opened again, and say whether the connection survived. */
static long failed(amqp_connection_state_t conn, int channel, int *open, amqp_rpc_reply_t r)
{
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        amqp_channel_close_ok_t ok = {0};

        *open = 0;
        return amqp_send_method(conn, (amqp_channel_t)channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok) ==
                       AMQP_STATUS_OK
                   ? -1
                   : WR_BACKLOG_CONNECTION_LOST;
    }
    return WR_BACKLOG_CONNECTION_LOST;
}

long wr_backlog_count(amqp_connection_state_t conn, int channel, int *open, char *const *queues,
                      size_t n, long *each, char *err, size_t errlen)
{
    amqp_rpc_reply_t r;
    long sum = 0;

    if (!*open) {
        amqp_channel_open(conn, (amqp_channel_t)channel);
        r = amqp_get_rpc_reply(conn);
        if (wr_amqp_check(r, "channel.open (to count the backlog)", err, errlen))
            return failed(conn, channel, open, r);
        *open = 1;
    }
    for (size_t i = 0; i < n; i++) {
        amqp_queue_declare_ok_t *ok =
            amqp_queue_declare(conn, (amqp_channel_t)channel, amqp_cstring_bytes(queues[i]),
                               1 /* passive */, 0, 0, 0, amqp_empty_table);

        r = amqp_get_rpc_reply(conn);
        if (r.reply_type != AMQP_RESPONSE_NORMAL || !ok) {
            char what[300];

            snprintf(what, sizeof what, "passive queue.declare of %s", queues[i]);
            if (!wr_amqp_check(r, what, err, errlen))
                snprintf(err, errlen, "%s: no declare-ok", what);
            return failed(conn, channel, open, r);
        }
        sum += (long)ok->message_count;
        if (each)
            each[i] = (long)ok->message_count;
    }
    return sum;
}
