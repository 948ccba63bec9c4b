/*
 * The node holding a quorum queue's leader is stopped under load, then
 * started again, on the private 3-node cluster: warren (4 workers, the
 * three URIs, queue_type = quorum) keeps answering while it is down, the
 * workers that were on it move to the other nodes, and no request whose
 * publish the broker confirmed to the caller goes unanswered.
 *
 * The load (cluster_load.c) is a careful caller: persistent requests with
 * publisher confirms, a durable quorum reply queue, reconnecting to
 * another node on loss.  When that reply queue's leader was on the
 * stopped node, its replies are nacked until it has a leader again: the
 * workers hold those requests and send their replies again
 * ([pool] reply_retry).  The figures are printed as
 * "sent / answered / lost / duplicated"; a duplicate (a request answered
 * twice: its reply was published, then its ack was lost with the
 * connection, and it was redelivered) is allowed by at-least-once, a loss
 * is not.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/integration/cluster_harness.h"
#include "tests/integration/cluster_load.h"
#include "tests/integration/harness.h"

#define WORKERS 4
#define RATE 200        /* requests a second */
#define STEADY 1000     /* answers before, during and after the outage */
#define OUTAGE_MIN_S 10 /* the node stays down at least this long */
#define OUTAGE_MAX_S 60 /* and at most this long, waiting for STEADY answers */

static long now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

/* Wait up to TIMEOUT_S for the load to have COUNT answers. */
static int wait_answered(wr_load *load, long count, int timeout_s)
{
    long deadline = now_s() + timeout_s;

    while (wr_load_answered(load) < count) {
        if (now_s() > deadline)
            return 0;
        usleep(100 * 1000);
    }
    return 1;
}

Test(cluster, quorum_leader_node_stopped_under_load, .timeout = 900)
{
    wr_test_warren w = {0};
    wr_load *load;
    wr_load_report r;
    char list[1024], ov[1100], reply_queue[160], err[512], *log = NULL;
    char *uris[WR_CLUSTER_NODES];
    int leader, other, again;
    long mark, down_at;

    for (int n = 1; n <= WR_CLUSTER_NODES; n++)
        uris[n - 1] = (char *)wr_cluster_uri(n);
    snprintf(list, sizeof list, "%s %s %s", uris[0], uris[1], uris[2]);
    snprintf(ov, sizeof ov, "broker.uri=%s", list);
    wr_test_queue_name(w.queue, sizeof w.queue, "cluster_failover");
    snprintf(reply_queue, sizeof reply_queue, "%s.replies", w.queue);
    wr_test_warren_write_conf(&w, WORKERS, "[log]\nlevel = info\n");
    /* reply_retry past the longest outage: 3.10 may keep the caller's
     * quorum reply queue, too, without a leader until the node returns,
     * nacking the replies meanwhile. */
    char *argv[] = {"warren",
                    "-c",
                    w.conf,
                    "-o",
                    ov,
                    "-o",
                    "route.rpc.queue_type=quorum",
                    "-o",
                    "pool.reply_retry=600",
                    NULL};
    wr_test_warren_spawn(&w, argv, NULL);
    cr_assert(wr_test_log_wait(&w, "consuming from", WORKERS, 120000),
              "not every worker got to consume:\n%s", wr_test_log_read(&w));

    load = wr_load_start(uris, WR_CLUSTER_NODES, w.queue, reply_queue, RATE, err, sizeof err);
    cr_assert_not_null(load, "%s", err);
    cr_assert(wait_answered(load, STEADY, 120), "no steady load: %ld answered",
              wr_load_answered(load));

    leader = wr_cluster_leader(1, w.queue);
    cr_assert(leader >= 1, "no leader known for %s", w.queue);
    printf("leader_failover: the leader of %s is on node %d (%s); stopping it\n", w.queue, leader,
           wr_cluster_node_name(leader));
    fflush(stdout);
    other = leader % WR_CLUSTER_NODES + 1;
    wr_cluster_stop_node(leader);
    down_at = now_s();
    mark = wr_load_answered(load);

    /* The service should go on without the node: a new leader, the
     * workers that were on the node reconnected elsewhere.  Reported, not
     * failed: RabbitMQ 3.10 now and then keeps a quorum queue without a
     * working leader until the node returns (it nacks every publish
     * meanwhile; seen in 2 of 9 runs here).  What must hold either way is
     * below: nothing confirmed to the caller is lost. */
    if (!wait_answered(load, mark + STEADY, OUTAGE_MAX_S))
        printf("leader_failover: WARNING: only %ld answered in %d s with node %d down: the "
               "broker kept the queue without a working leader (see the nacked count below)\n",
               wr_load_answered(load) - mark, OUTAGE_MAX_S, leader);
    while (now_s() - down_at < OUTAGE_MIN_S)
        usleep(100 * 1000);
    again = wr_cluster_leader(other, w.queue);
    printf("leader_failover: %ld answered while node %d was down (%ld s); new leader on node %d\n",
           wr_load_answered(load) - mark, leader, now_s() - down_at, again);
    fflush(stdout);
    cr_expect(again >= 1 && again != leader, "no new leader (node %d)", again);

    wr_cluster_start_node(leader);
    mark = wr_load_answered(load);
    cr_expect(wait_answered(load, mark + STEADY, 240), "only %ld answered after node %d came back",
              wr_load_answered(load) - mark, leader);

    wr_load_finish(load, 180000, &r, &log);
    printf("leader_failover: sent %ld / answered %ld / lost %ld / duplicated %ld "
           "(published %ld, unconfirmed at a connection loss %ld, answered although unconfirmed "
           "%ld, nacked %ld, caller reconnects %ld, worker connections %d)\n",
           r.sent, r.answered, r.lost, r.duplicated, r.published, r.unconfirmed,
           r.answered_unconfirmed, r.nacked, r.reconnects, wr_test_log_count(&w, "consuming from"));
    printf("leader_failover: replies the broker nacked and the workers held to send again: %d "
           "(confirmed on a later try: %d, given up: %d)\n",
           wr_test_log_count(&w, "holding the request"),
           wr_test_log_count(&w, "was confirmed on try"),
           wr_test_log_count(&w, "its reply is lost"));
    printf("leader_failover: the load driver's log:\n%s", log ? log : "");
    fflush(stdout);
    free(log);
    cr_expect_eq(wr_test_warren_stop(&w), 0);

    cr_expect_gt(r.sent, 3 * STEADY);
    cr_expect_gt(wr_test_log_count(&w, "consuming from"), WORKERS,
                 "no worker reconnected after its node stopped");
    cr_expect_eq(wr_test_log_count(&w, "its reply is lost"), 0, "a nacked reply was given up");
    cr_assert_eq(r.lost, 0, "%ld confirmed request(s) never answered", r.lost);
}
