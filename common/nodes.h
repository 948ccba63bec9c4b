/*
 * The broker nodes a worker may connect to ([broker] uri, one or more),
 * and how it walks them: worker N starts at URI N mod count, so a pool
 * spreads its connections over a cluster, and every failed connect or
 * lost connection moves it to the next URI, wrapping around.
 */
#ifndef WR_NODES_H
#define WR_NODES_H

#include <stddef.h>

typedef struct wr_nodes {
    char *const *uris; /* borrowed (the config's broker_uris) */
    size_t n;          /* at least 1 */
    size_t at;         /* index of the URI to use now */
} wr_nodes;

/* Start worker INDEX at URI INDEX mod N.  URIS is borrowed and must
 * outlive NODES. */
void wr_nodes_init(wr_nodes *nodes, char *const *uris, size_t n, int index);

/* The URI to connect to now (borrowed). */
const char *wr_nodes_uri(const wr_nodes *nodes);

/* Move on to the next URI (after a failed connect or a lost connection). */
void wr_nodes_next(wr_nodes *nodes);

/*
 * URI as "HOST:PORT/VHOST", without user and password, so it can be
 * logged and printed by --check; a URI that does not parse gives
 * "(invalid URI)".  Returns BUF.
 */
const char *wr_uri_node(const char *uri, char *buf, size_t len);

#endif
