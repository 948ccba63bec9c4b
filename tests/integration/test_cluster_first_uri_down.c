/*
 * A broker list whose first URI is down at start (a closed loopback
 * port), then two nodes of the private cluster: workers 0 and 3 start at
 * the dead URI (worker N starts at URI N mod count), fail, walk on to the
 * next node, and the whole pool ends up consuming, spread over both
 * nodes; every call is answered.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/integration/cluster_harness.h"
#include "tests/integration/harness.h"

#define WORKERS 4
#define CALLS 200

/* A loopback port nothing listens on: bound (so nobody else takes it
 * meanwhile) but never listening, so connects are refused.  Close *FD
 * when done. */
static int closed_port(int *fd)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;

    *fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(*fd >= 0);
    cr_assert_eq(bind(*fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(getsockname(*fd, (struct sockaddr *)&a, &len), 0);
    return ntohs(a.sin_port);
}

/* How many warren worker connections node N's AMQP port PORT holds. */
static int worker_connections_on(int port)
{
    char args[512], *out;
    int n;

    snprintf(args, sizeof args,
             "list_connections -q --no-table-headers port client_properties "
             "| grep 'warren worker' | awk '$1==%d' | wc -l",
             port);
    out = wr_cluster_ctl(1, args);
    n = atoi(out);
    free(out);
    return n;
}

static int uri_port(const char *uri)
{
    const char *colon = strrchr(uri, ':');
    return colon ? atoi(colon + 1) : -1;
}

Test(cluster, first_uri_down_at_start, .timeout = 300)
{
    wr_test_warren w = {0};
    wr_client *c;
    char list[1024], ov[1100], down[64], err[256];
    int fd, port = closed_port(&fd), answered = 0, on1, on2;

    snprintf(list, sizeof list, "amqp://guest:guest@127.0.0.1:%d/ %s %s", port, wr_cluster_uri(1),
             wr_cluster_uri(2));
    snprintf(ov, sizeof ov, "broker.uri=%s", list);
    wr_test_queue_name(w.queue, sizeof w.queue, "cluster_first_down");
    wr_test_warren_write_conf(&w, WORKERS, NULL);

    /* --check names every node, and no password. */
    char cmd[2048], want[256], *out = NULL;
    snprintf(cmd, sizeof cmd, "'%s' -c '%s' --check -o '%s'", getenv("WARREN_BIN"), w.conf, ov);
    cr_assert_eq(wr_test_sh(cmd, &out, NULL), 0, "%s", out);
    snprintf(want, sizeof want,
             "broker amqp://guest:***@127.0.0.1:%d/ amqp://guest:***@127.0.0.1:%d/ "
             "amqp://guest:***@127.0.0.1:%d/",
             port, uri_port(wr_cluster_uri(1)), uri_port(wr_cluster_uri(2)));
    cr_expect(strstr(out, want) != NULL, "--check said:\n%s", out);
    cr_expect(strstr(out, "guest:guest") == NULL, "--check shows the password:\n%s", out);
    free(out);

    char *argv[] = {"warren", "-c", w.conf, "-o", ov, NULL};
    wr_test_warren_spawn(&w, argv, NULL);

    cr_assert(wr_test_log_wait(&w, "consuming from", WORKERS, 90000),
              "not every worker got to consume:\n%s", wr_test_log_read(&w));
    snprintf(down, sizeof down, "broker 127.0.0.1:%d/: cannot connect", port);
    cr_expect_geq(wr_test_log_count(&w, down), 2,
                  "workers 0 and 3 should have tried the dead URI first:\n%s",
                  wr_test_log_read(&w));
    cr_expect_eq(wr_test_queue_stat(w.queue, "consumers"), WORKERS);
    on1 = worker_connections_on(uri_port(wr_cluster_uri(1)));
    on2 = worker_connections_on(uri_port(wr_cluster_uri(2)));
    printf("first_uri_down: %d worker connections on node 1, %d on node 2\n", on1, on2);
    cr_expect_eq(on1 + on2, WORKERS);
    cr_expect_geq(on1, 1, "no worker on node 1");
    cr_expect_geq(on2, 1, "no worker on node 2");

    cr_assert_eq(wr_client_connect(&c, wr_cluster_uri(2), WR_CLIENT_REPLY_QUEUE, err, sizeof err),
                 0, "%s", err);
    for (int i = 0; i < CALLS; i++) {
        char body[128], corr[16];
        snprintf(body, sizeof body,
                 "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[%d],\"id\":%d}", i, i);
        snprintf(corr, sizeof corr, "c%d", i);
        cr_assert_eq(
            wr_client_publish(c, "", w.queue, body, strlen(body), corr, 1, err, sizeof err), 0,
            "%s", err);
    }
    while (answered < CALLS) {
        wr_client_reply r;
        int got = wr_client_recv(c, 30000, &r, err, sizeof err);
        cr_assert_eq(got, 1, "only %d of %d calls answered (%s)", answered, CALLS,
                     got < 0 ? err : "timeout");
        cr_expect(strstr(r.body, "\"result\"") != NULL, "%s", r.body);
        answered++;
        wr_client_reply_free(&r);
    }
    printf("first_uri_down: %d of %d calls answered\n", answered, CALLS);
    wr_client_close(c);
    cr_expect_eq(wr_test_warren_stop(&w), 0);
    close(fd);
}
