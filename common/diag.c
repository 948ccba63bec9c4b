/* Collected user-facing error messages; see diag.h. */
#include "common/diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/xalloc.h"

void wr_diag_add(wr_diag *d, const char *fmt, ...)
{
    va_list ap;
    char *msg = NULL;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        msg = wr_xstrdup("(out of memory formatting a message)");
    d->msgs = wr_xrealloc(d->msgs, (d->n + 1) * sizeof *d->msgs);
    d->msgs[d->n++] = msg;
}

void wr_diag_print(const wr_diag *d)
{
    for (size_t i = 0; i < d->n; i++)
        fprintf(stderr, "%s\n", d->msgs[i]);
}

void wr_diag_free(wr_diag *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->msgs[i]);
    free(d->msgs);
    d->msgs = NULL;
    d->n = 0;
}
