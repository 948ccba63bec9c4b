/*
 * common/nodes.c: which broker URI a worker uses first and next, and the
 * host:port/vhost form that is safe to log.
 */
#include <criterion/criterion.h>

#include "common/nodes.h"

static char *const three[] = {"amqp://u:p@a:1/", "amqp://b:2/v", "amqp://c/"};

Test(nodes, worker_n_starts_at_uri_n_mod_count)
{
    wr_nodes n;

    for (int i = 0; i < 7; i++) {
        wr_nodes_init(&n, three, 3, i);
        cr_expect_str_eq(wr_nodes_uri(&n), three[i % 3], "worker %d", i);
    }
}

Test(nodes, next_walks_the_list_and_wraps)
{
    wr_nodes n;

    wr_nodes_init(&n, three, 3, 2);
    wr_nodes_next(&n);
    cr_expect_str_eq(wr_nodes_uri(&n), three[0]);
    wr_nodes_next(&n);
    cr_expect_str_eq(wr_nodes_uri(&n), three[1]);
    wr_nodes_next(&n);
    wr_nodes_next(&n);
    cr_expect_str_eq(wr_nodes_uri(&n), three[0]);

    wr_nodes_init(&n, three, 1, 5); /* one node: always that one */
    wr_nodes_next(&n);
    cr_expect_str_eq(wr_nodes_uri(&n), three[0]);
}

Test(nodes, node_names_carry_no_credentials)
{
    char buf[256];

    cr_expect_str_eq(wr_uri_node("amqp://user:secret@127.0.0.1:5673/", buf, sizeof buf),
                     "127.0.0.1:5673/");
    cr_expect_str_eq(wr_uri_node("amqp://user:secret@rabbit/prod", buf, sizeof buf),
                     "rabbit:5672/prod");
    cr_expect_str_eq(wr_uri_node("amqp://h:1/%2f", buf, sizeof buf), "h:1/");
    cr_expect_str_eq(wr_uri_node("amqp://u:secret@h:port/", buf, sizeof buf), "(invalid URI)");
}
