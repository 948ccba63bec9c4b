/* Bookkeeping of publisher confirms; see outbox.h. */
#include "worker/outbox.h"

static unsigned all_bits(unsigned n)
{
    return n >= sizeof(unsigned) * 8 ? ~0u : (1u << n) - 1;
}

void wr_outbox_reset(wr_outbox *o)
{
    *o = (wr_outbox){.next_seq = 1};
}

void wr_outbox_begin(wr_outbox *o, wr_sent *s)
{
    *s = (wr_sent){.first_seq = o->next_seq};
}

int wr_outbox_published(wr_outbox *o, wr_sent *s)
{
    o->next_seq++;
    if (s->n >= WR_OUTBOX_MAX_PUBLISHES)
        return -1;
    s->n++;
    return 0;
}

void wr_outbox_add(wr_outbox *o, wr_sent *s)
{
    s->next = NULL;
    if (o->tail)
        o->tail->next = s;
    else
        o->head = s;
    o->tail = s;
    o->len++;
}

unsigned wr_outbox_confirm(wr_outbox *o, uint64_t tag, int multiple, int nack)
{
    unsigned newly = 0;

    for (wr_sent *s = o->head; s; s = s->next) {
        if (s->first_seq > tag)
            break; /* entries are in publish order */
        for (unsigned i = 0; i < s->n; i++) {
            uint64_t seq = s->first_seq + i;
            unsigned bit = 1u << i;

            if ((multiple ? seq > tag : seq != tag) || (s->confirmed & bit))
                continue;
            s->confirmed |= bit;
            s->nacked += nack ? 1 : 0;
            newly++;
        }
    }
    return newly;
}

static wr_sent *unlink_entry(wr_outbox *o, wr_sent *prev, wr_sent *s)
{
    if (prev)
        prev->next = s->next;
    else
        o->head = s->next;
    if (o->tail == s)
        o->tail = prev;
    o->len--;
    s->next = NULL;
    return s;
}

wr_sent *wr_outbox_take_settled(wr_outbox *o)
{
    for (wr_sent *prev = NULL, *s = o->head; s; prev = s, s = s->next)
        if (s->confirmed == all_bits(s->n))
            return unlink_entry(o, prev, s);
    return NULL;
}

wr_sent *wr_outbox_take_any(wr_outbox *o)
{
    return o->head ? unlink_entry(o, NULL, o->head) : NULL;
}
