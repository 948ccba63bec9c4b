/*
 * Walking the list of broker URIs.  Kept apart from the worker's loop so
 * the loop reads "connect to the current node; on failure, the next one",
 * and so the rule (start at index mod count, then round robin) is unit
 * tested without a broker.
 */
#include "common/nodes.h"
#include "common/uri.h"

#include <amqp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void wr_nodes_init(wr_nodes *nodes, char *const *uris, size_t n, int index)
{
    nodes->uris = uris;
    nodes->n = n;
    nodes->at = n && index > 0 ? (size_t)index % n : 0;
}

const char *wr_nodes_uri(const wr_nodes *nodes)
{
    return nodes->uris[nodes->at];
}

void wr_nodes_next(wr_nodes *nodes)
{
    nodes->at = (nodes->at + 1) % nodes->n;
}

const char *wr_uri_node(const char *uri, char *buf, size_t len)
{
    struct amqp_connection_info info;
    char *copy = strdup(uri); /* wr_uri_parse writes into it */

    if (!copy || wr_uri_parse(copy, &info) < 0)
        snprintf(buf, len, "(invalid URI)");
    else
        /* "amqp://h:1/" has vhost "", which warren's login reads as "/". */
        snprintf(buf, len, "%s:%d/%s", info.host, info.port,
                 info.vhost && *info.vhost && strcmp(info.vhost, "/") ? info.vhost : "");
    free(copy);
    return buf;
}
