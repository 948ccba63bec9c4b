/*
 * Unit tests for worker/outbox.c: which answered requests the broker's
 * publisher confirms settle.  Sequence numbers follow the channel's
 * publishes; single, multiple and out-of-order acks, nacks, entries with
 * no publish and with two, and a confirm counted once however often it is
 * repeated.
 */
#include <criterion/criterion.h>

#include "worker/outbox.h"

/* Record an entry with N publishes. */
static void sent(wr_outbox *o, wr_sent *s, unsigned n)
{
    wr_outbox_begin(o, s);
    for (unsigned i = 0; i < n; i++)
        cr_assert_eq(wr_outbox_published(o, s), 0);
    wr_outbox_add(o, s);
}

Test(outbox, numbering_starts_at_one_and_follows_publishes)
{
    wr_outbox o;
    wr_sent a, b, c;

    wr_outbox_reset(&o);
    sent(&o, &a, 1);
    sent(&o, &b, 2);
    sent(&o, &c, 1);
    cr_assert_eq(a.first_seq, 1);
    cr_assert_eq(b.first_seq, 2);
    cr_assert_eq(c.first_seq, 4);
    cr_assert_eq(o.next_seq, 5);
    cr_assert_eq(o.len, 3);
}

Test(outbox, nothing_settles_before_its_confirm)
{
    wr_outbox o;
    wr_sent a, b;

    wr_outbox_reset(&o);
    sent(&o, &a, 1);
    sent(&o, &b, 1);
    cr_assert_null(wr_outbox_take_settled(&o));
    cr_assert_eq(wr_outbox_confirm(&o, 2, 0, 0), 1);
    /* Out of order: the second settles, the first still waits. */
    cr_assert_eq(wr_outbox_take_settled(&o), &b);
    cr_assert_null(wr_outbox_take_settled(&o));
    cr_assert_eq(o.len, 1);
    cr_assert_eq(wr_outbox_confirm(&o, 1, 0, 0), 1);
    cr_assert_eq(wr_outbox_take_settled(&o), &a);
    cr_assert_eq(o.len, 0);
    cr_assert_null(o.head);
    cr_assert_null(o.tail);
}

Test(outbox, multiple_settles_everything_up_to_the_tag)
{
    wr_outbox o;
    wr_sent a, b, c;

    wr_outbox_reset(&o);
    sent(&o, &a, 1);
    sent(&o, &b, 2); /* seqs 2 and 3 */
    sent(&o, &c, 1); /* seq 4 */
    cr_assert_eq(wr_outbox_confirm(&o, 2, 1, 0), 2);
    cr_assert_eq(wr_outbox_take_settled(&o), &a);
    cr_assert_null(wr_outbox_take_settled(&o), "b has one publish unconfirmed");
    cr_assert_eq(wr_outbox_confirm(&o, 4, 1, 0), 2);
    cr_assert_eq(wr_outbox_take_settled(&o), &b);
    cr_assert_eq(wr_outbox_take_settled(&o), &c);
    cr_assert_eq(o.len, 0);
}

Test(outbox, a_confirm_counts_once)
{
    wr_outbox o;
    wr_sent a, b;

    wr_outbox_reset(&o);
    sent(&o, &a, 1);
    sent(&o, &b, 1);
    cr_assert_eq(wr_outbox_confirm(&o, 1, 0, 0), 1);
    cr_assert_eq(wr_outbox_confirm(&o, 1, 0, 1), 0, "already confirmed");
    cr_assert_eq(wr_outbox_confirm(&o, 2, 1, 0), 1, "only seq 2 is new");
    cr_assert_eq(a.nacked, 0);
    cr_assert_eq(wr_outbox_confirm(&o, 9, 0, 0), 0, "a tag nobody published");
}

Test(outbox, nacks_are_counted_per_entry)
{
    wr_outbox o;
    wr_sent a, b;

    wr_outbox_reset(&o);
    sent(&o, &a, 2);
    sent(&o, &b, 1);
    cr_assert_eq(wr_outbox_confirm(&o, 1, 0, 1), 1);
    cr_assert_eq(wr_outbox_confirm(&o, 3, 1, 0), 2);
    cr_assert_eq(wr_outbox_take_settled(&o), &a);
    cr_assert_eq(a.nacked, 1);
    cr_assert_eq(wr_outbox_take_settled(&o), &b);
    cr_assert_eq(b.nacked, 0);
}

Test(outbox, an_entry_without_publishes_settles_at_once)
{
    wr_outbox o;
    wr_sent a, none, b;

    wr_outbox_reset(&o);
    sent(&o, &a, 1);
    sent(&o, &none, 0);
    sent(&o, &b, 1);
    cr_assert_eq(b.first_seq, 2, "an entry without publishes takes no number");
    cr_assert_eq(wr_outbox_take_settled(&o), &none);
    cr_assert_null(wr_outbox_take_settled(&o));
}

Test(outbox, too_many_publishes_are_refused_but_numbered)
{
    wr_outbox o;
    wr_sent a;

    wr_outbox_reset(&o);
    wr_outbox_begin(&o, &a);
    for (unsigned i = 0; i < WR_OUTBOX_MAX_PUBLISHES; i++)
        cr_assert_eq(wr_outbox_published(&o, &a), 0);
    cr_assert_eq(wr_outbox_published(&o, &a), -1);
    cr_assert_eq(o.next_seq, WR_OUTBOX_MAX_PUBLISHES + 2);
}

Test(outbox, take_any_releases_in_order_and_reset_renumbers)
{
    wr_outbox o;
    wr_sent a, b;

    wr_outbox_reset(&o);
    sent(&o, &a, 1);
    sent(&o, &b, 1);
    cr_assert_eq(wr_outbox_take_any(&o), &a);
    cr_assert_eq(wr_outbox_take_any(&o), &b);
    cr_assert_null(wr_outbox_take_any(&o));
    wr_outbox_reset(&o);
    sent(&o, &a, 1);
    cr_assert_eq(a.first_seq, 1, "a new channel numbers from 1");
}
