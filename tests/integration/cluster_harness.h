/*
 * The cluster tests' view of the private 3-node cluster that the
 * cluster_start fixture starts with tests/cluster.sh (its directory is
 * $WARREN_TEST_CLUSTER_DIR).  Failures fail the test.
 */
#ifndef WR_TEST_CLUSTER_HARNESS_H
#define WR_TEST_CLUSTER_HARNESS_H

#define WR_CLUSTER_NODES 3

/* The AMQP URI of node N (1-3), borrowed. */
const char *wr_cluster_uri(int n);

/* The Erlang node name of node N ("warren-test-PORT@localhost"), borrowed. */
const char *wr_cluster_node_name(int n);

/* `rabbitmqctl ARGS` (a shell fragment) against node N; its stdout, malloc'd. */
char *wr_cluster_ctl(int n, const char *args);

/* `tests/cluster.sh stop-node|start-node DIR N`. */
void wr_cluster_stop_node(int n);
void wr_cluster_start_node(int n);

/* Which node (1-3) holds the leader of quorum queue QUEUE, asking node
 * ASK; 0 if none is known yet. */
int wr_cluster_leader(int ask, const char *queue);

#endif
