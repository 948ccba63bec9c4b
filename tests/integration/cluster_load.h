/*
 * A load driver for the cluster failover tests: a caller that does what a
 * careful client does when a node goes away, so that anything it reports
 * lost was lost by the server side.
 *
 * One thread, one connection at a time, to any node of a list: persistent
 * JSON-RPC echo requests with publisher confirms (a request counts as
 * "sent" once the broker confirmed it), replies consumed (manual ack) from
 * a durable quorum reply queue, matched by correlation id.  On connection
 * loss it moves to the next node and resumes; requests published but not
 * yet confirmed at that moment are "unconfirmed": a real caller would
 * resend them, so they are not counted as sent (a reply for one is counted
 * apart).  A reply seen again with the redelivered flag is the reply
 * queue's redelivery after our ack was lost, not a second answer, and is
 * not counted as a duplicate.
 */
#ifndef WR_TEST_CLUSTER_LOAD_H
#define WR_TEST_CLUSTER_LOAD_H

#include <stddef.h>

typedef struct wr_load wr_load;

typedef struct wr_load_report {
    long published;            /* basic.publish calls */
    long sent;                 /* confirmed by the broker (basic.ack) */
    long nacked;               /* refused by the broker (basic.nack) */
    long unconfirmed;          /* no confirm before the connection was lost */
    long answered;             /* sent requests with at least one reply */
    long lost;                 /* sent requests with no reply at the end */
    long duplicated;           /* replies beyond the first for one request */
    long answered_unconfirmed; /* replies to unconfirmed or nacked requests */
    long reconnects;           /* connections after the first */
} wr_load_report;

/*
 * Start sending RATE requests a second to QUEUE (which must exist) through
 * the nodes in URIS (NURIS, borrowed; they must outlive the load), at most
 * 100,000 in all.  REPLY_QUEUE is declared durable and quorum.  Returns
 * the load (stop it with wr_load_finish), or NULL with a reason in ERR.
 */
wr_load *wr_load_start(char *const *uris, size_t nuris, const char *queue, const char *reply_queue,
                       int rate, char *err, size_t errlen);

/* How many sent requests have been answered so far (any thread). */
long wr_load_answered(wr_load *load);

/* Replies seen since the start (any thread). */
long wr_load_replies(wr_load *load);

/*
 * Stop sending, wait up to DRAIN_MS for the replies still due, stop, and
 * fill *REPORT.  Frees LOAD.  LOG (may be NULL) receives the driver's
 * reconnect lines.
 */
void wr_load_finish(wr_load *load, int drain_ms, wr_load_report *report, char **log);

#endif
