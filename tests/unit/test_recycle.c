/*
 * Unit tests for worker/recycle.c: the request count at which a worker
 * asks to be replaced stays within max_requests ±10%, is never 0 when
 * recycling is on, spreads over the whole range (so workers started
 * together retire apart), and is 0 (never) when it is off.
 */
#include <criterion/criterion.h>

#include "worker/recycle.h"

Test(recycle, off_means_never)
{
    cr_assert_eq(wr_recycle_limit(0, 1), 0);
    cr_assert_eq(wr_recycle_limit(-5, 1), 0);
}

Test(recycle, draws_stay_within_ten_percent_and_cover_it)
{
    int seen[5] = {0};

    for (unsigned long long seed = 0; seed < 2000; seed++) {
        unsigned long l = wr_recycle_limit(20, seed);
        cr_assert(l >= 18 && l <= 22, "seed %llu: %lu", seed, l);
        seen[l - 18]++;
    }
    /* Nearby seeds (pids in a row) land everywhere, about evenly. */
    for (int i = 0; i < 5; i++)
        cr_assert_gt(seen[i], 300, "%d drawn %d times of 2000", 18 + i, seen[i]);
}

Test(recycle, small_limits_are_at_least_one)
{
    for (unsigned long long seed = 0; seed < 100; seed++) {
        cr_assert_eq(wr_recycle_limit(1, seed), 1);
        cr_assert_eq(wr_recycle_limit(9, seed), 9, "under 10: no room for jitter");
    }
    cr_assert_geq(wr_recycle_limit(1000000000, 7), 900000000);
    cr_assert_leq(wr_recycle_limit(1000000000, 7), 1100000000);
}

Test(recycle, seeds_differ_between_calls)
{
    cr_assert_neq(wr_recycle_seed(), wr_recycle_seed());
}
