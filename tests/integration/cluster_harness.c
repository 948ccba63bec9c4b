/* The cluster tests' harness; see cluster_harness.h. */
#include "tests/integration/cluster_harness.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/integration/harness.h"

static const char *cluster_dir(void)
{
    const char *d = getenv("WARREN_TEST_CLUSTER_DIR");

    if (!d || !*d)
        cr_assert_fail("WARREN_TEST_CLUSTER_DIR is not set: run the cluster tests through ctest");
    return d;
}

/* The first line of DIR/N/FILE into BUF. */
static const char *node_file(int n, const char *file, char *buf, size_t len)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof path, "%s/%d/%s", cluster_dir(), n, file);
    f = fopen(path, "r");
    if (!f)
        cr_assert_fail("no cluster node %d: %s missing (did the cluster_start fixture run?)", n,
                       path);
    if (!fgets(buf, (int)len, f))
        buf[0] = '\0';
    fclose(f);
    buf[strcspn(buf, "\r\n")] = '\0';
    return buf;
}

const char *wr_cluster_uri(int n)
{
    static char uris[WR_CLUSTER_NODES + 1][256];

    cr_assert(n >= 1 && n <= WR_CLUSTER_NODES);
    return uris[n][0] ? uris[n] : node_file(n, "uri", uris[n], sizeof uris[n]);
}

const char *wr_cluster_node_name(int n)
{
    static char names[WR_CLUSTER_NODES + 1][256];

    cr_assert(n >= 1 && n <= WR_CLUSTER_NODES);
    return names[n][0] ? names[n] : node_file(n, "node", names[n], sizeof names[n]);
}

static char *cluster_sh(const char *what, int n, const char *args)
{
    char cmd[2048], *out = NULL, *err = NULL;
    int rc;

    snprintf(cmd, sizeof cmd, "'%s/tests/cluster.sh' %s '%s' %d %s", getenv("WARREN_SOURCE_DIR"),
             what, cluster_dir(), n, args ? args : "");
    rc = wr_test_sh(cmd, &out, &err);
    cr_assert_eq(rc, 0, "%s failed (%d): %s%s", cmd, rc, out ? out : "", err ? err : "");
    free(err);
    return out;
}

char *wr_cluster_ctl(int n, const char *args)
{
    return cluster_sh("ctl", n, args);
}

void wr_cluster_stop_node(int n)
{
    free(cluster_sh("stop-node", n, NULL));
}

void wr_cluster_start_node(int n)
{
    free(cluster_sh("start-node", n, NULL));
}

int wr_cluster_leader(int ask, const char *queue)
{
    char args[512], *out;
    int leader = 0;

    snprintf(args, sizeof args,
             "list_queues -q --no-table-headers name leader | awk '$1==\"%s\"{print $2}'", queue);
    out = wr_cluster_ctl(ask, args);
    out[strcspn(out, "\r\n")] = '\0';
    for (int n = 1; n <= WR_CLUSTER_NODES; n++)
        if (!strcmp(out, wr_cluster_node_name(n)))
            leader = n;
    free(out);
    return leader;
}
