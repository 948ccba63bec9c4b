/*
 * Methods warren answers itself, on every route, unless [pool]
 * builtin_methods = no.  Today one: warren.status, what the Qpid "server
 * status" demo asked every server for, about this instance and the worker
 * that answers.
 */
#ifndef WR_BUILTIN_H
#define WR_BUILTIN_H

#include <jansson.h>

#include "worker/plugin_loader.h"

#define WR_BUILTIN_STATUS "warren.status"

/* What warren.status reports; the worker fills it once and keeps the
 * counters current. */
typedef struct wr_builtins {
    int index;                    /* the worker's */
    long supervisor_pid;          /* the instance's */
    long long started_ms;         /* when the instance started, unix ms */
    const unsigned long *handled; /* the worker's counters, borrowed */
    const unsigned long *failed;
    const unsigned long *returned; /* replies no queue took; may be NULL */
    const unsigned long *nacked;   /* replies the broker nacked for good; may be NULL */
    const unsigned long *resent;   /* nacked replies sent again; may be NULL */
    const unsigned long *expired;  /* not run: deadline passed; NULL: not counted */
    const wr_plugins *plugins;
} wr_builtins;

/* Is NAME a built-in method? */
int wr_builtin_has(const char *name);

/* Run built-in method NAME.  Returns a new reference. */
json_t *wr_builtin_call(const wr_builtins *b, const char *name);

#endif
