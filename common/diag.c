/* Collected user-facing error messages; see diag.h. */
#include "common/diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void wr_diag_add(wr_diag *d, const char *fmt, ...)
{
    va_list ap;
    char *msg = NULL;
    char **grown;

    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        abort();
    va_end(ap);
    grown = realloc(d->msgs, (d->n + 1) * sizeof *grown);
    if (!grown)
        abort();
    d->msgs = grown;
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
