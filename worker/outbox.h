/*
 * Requests answered but not yet settled: their replies are published with
 * publisher confirms, and a request is acked only once the broker has
 * confirmed every message published for it.  A broker that dies in
 * between has not acked the request either, so it redelivers it: nothing
 * is lost, at the price of a possible duplicate reply.
 *
 * This is bookkeeping only (no I/O): each entry records the sequence
 * numbers of its publishes (consecutive, as one job publishes them in a
 * row), and basic.ack / basic.nack frames mark them confirmed.  The worker
 * embeds wr_sent at the start of its own request record.
 */
#ifndef WR_WORKER_OUTBOX_H
#define WR_WORKER_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

/* The most publishes one request may make (a reply and a dead-letter
 * copy, today). */
#define WR_OUTBOX_MAX_PUBLISHES 8

typedef struct wr_sent {
    uint64_t first_seq; /* its publishes are first_seq .. first_seq + n - 1 */
    unsigned n;
    unsigned confirmed; /* bit i: first_seq + i confirmed (acked or nacked) */
    unsigned nacked;    /* how many of them the broker nacked */
    int returned;       /* a basic.return named one of them */
    struct wr_sent *next;
} wr_sent;

typedef struct wr_outbox {
    uint64_t next_seq; /* what the channel's next publish is numbered */
    wr_sent *head, *tail;
    size_t len;
} wr_outbox;

/* A fresh channel in confirm mode: numbering starts at 1, the list is
 * empty (the caller has released what it held). */
void wr_outbox_reset(wr_outbox *o);

/* Start recording S's publishes (before the first one). */
void wr_outbox_begin(wr_outbox *o, wr_sent *s);

/* S has just made one more publish on the channel.  -1 when S already
 * made WR_OUTBOX_MAX_PUBLISHES (the numbering still advances). */
int wr_outbox_published(wr_outbox *o, wr_sent *s);

/* Append S, whose publishes are all made, to the entries awaiting
 * confirms.  An entry with no publishes is settled at once. */
void wr_outbox_add(wr_outbox *o, wr_sent *s);

/* A basic.ack (NACK 0) or basic.nack (NACK 1) with delivery tag TAG
 * (MULTIPLE: every publish up to TAG).  Returns how many publishes it
 * newly confirmed. */
unsigned wr_outbox_confirm(wr_outbox *o, uint64_t tag, int multiple, int nack);

/* Remove and return an entry whose publishes are all confirmed, oldest
 * first, or NULL. */
wr_sent *wr_outbox_take_settled(wr_outbox *o);

/* Remove and return the oldest entry, settled or not (to release
 * everything when the channel is gone), or NULL. */
wr_sent *wr_outbox_take_any(wr_outbox *o);

#endif
