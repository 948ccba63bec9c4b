/* Allocation that stops the process on failure; see xalloc.h. */
#include "common/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void __attribute__((noreturn)) out_of_memory(void)
{
    static const char msg[] = "warren: out of memory\n";
    /* No stdio: it may want to allocate too. */
    if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0) {
        /* nothing else to try */
    }
    abort();
}

void *wr_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        out_of_memory();
    return p;
}

void *wr_xrealloc(void *p, size_t size)
{
    p = realloc(p, size ? size : 1);
    if (!p)
        out_of_memory();
    return p;
}

char *wr_xstrdup(const char *s)
{
    char *p = strdup(s);
    if (!p)
        out_of_memory();
    return p;
}
