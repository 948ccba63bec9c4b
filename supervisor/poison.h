/*
 * Poison messages: requests that kill the worker running them.  The
 * supervisor knows from the status pipe which message each worker held
 * (route, correlation id, body hash); each death while holding one is
 * counted here.  Once a message reaches [pool] max_attempts deaths, every
 * worker is told (a "poison" command) and refuses it on its next
 * delivery, instead of the broker and the pool passing it around forever.
 */
#ifndef WR_POISON_H
#define WR_POISON_H

#include <stddef.h>

#include "common/ipc.h"

#define WR_POISON_SLOTS 256 /* oldest entries are forgotten first */

typedef struct wr_poison_entry {
    char route[WR_IPC_TOKEN_MAX];
    char msgid[WR_IPC_TOKEN_MAX];
    char hash[WR_IPC_TOKEN_MAX];
    unsigned deaths;
    char why[2 * WR_IPC_TOKEN_MAX];
} wr_poison_entry;

typedef struct wr_poison {
    wr_poison_entry slots[WR_POISON_SLOTS];
    size_t n;    /* slots in use */
    size_t next; /* where the next new entry goes once full */
} wr_poison;

/* Count one death of the worker that held START (a "start" status line),
 * killed as WHY.  Returns the entry (borrowed) with its new count. */
const wr_poison_entry *wr_poison_record(wr_poison *p, const wr_ipc_msg *start, const char *why);

/* Append a "poison" command line to *BUF (malloc'd, grown; *LEN updated)
 * for every entry with at least LIMIT deaths.  0, or -1 out of memory. */
int wr_poison_lines(const wr_poison *p, unsigned limit, char **buf, size_t *len);

/* Format one entry as a command line into LINE. Length or -1. */
int wr_poison_line(const wr_poison_entry *e, char *line, size_t size);

#endif
