/*
 * Allocation for code that has no useful way to go on without memory:
 * config loading, plugin loading, diagnostics.  Each of these runs at
 * startup (or in a --check), where the only honest answer to a failed
 * allocation is to stop at once with a message, as redis's zmalloc does.
 * The per-message path does not use them: a worker that cannot allocate
 * for one request answers or requeues it and lives on.
 */
#ifndef WR_XALLOC_H
#define WR_XALLOC_H

#include <stddef.h>

/* As calloc (N may be 0), realloc and strdup, but never NULL: out of
 * memory writes one line to stderr and aborts.  The caller frees. */
void *wr_xcalloc(size_t n, size_t size) __attribute__((malloc, returns_nonnull));
void *wr_xrealloc(void *p, size_t size) __attribute__((returns_nonnull));
char *wr_xstrdup(const char *s) __attribute__((malloc, returns_nonnull));

#endif
