/*
 * A list of user-facing error messages ("warren.conf:12: workers: ...").
 * Config validation and plugin loading collect every problem they find
 * here instead of stopping at the first, so one --check run shows them all.
 */
#ifndef WR_DIAG_H
#define WR_DIAG_H

#include <stddef.h>

typedef struct wr_diag {
    char **msgs; /* owned */
    size_t n;
} wr_diag;

/* Append a formatted message.  Allocation failure aborts (out of memory is
 * not a user error worth recovering from at config time). */
void wr_diag_add(wr_diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Write every message, one per line, to stderr. */
void wr_diag_print(const wr_diag *d);
void wr_diag_free(wr_diag *d);

#endif
