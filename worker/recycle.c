/* The jittered request limit of [pool] max_requests; see recycle.h. */
#include "worker/recycle.h"

#include <stdint.h>
#include <time.h>
#include <unistd.h>

/* splitmix64's finalizer: seeds that differ in a few low bits (pids of
 * workers started one after the other) give unrelated draws. */
static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

unsigned long wr_recycle_limit(long max_requests, unsigned long long seed)
{
    long spread, limit;

    if (max_requests <= 0)
        return 0;
    spread = max_requests / 10;
    limit = max_requests - spread + (long)(mix(seed) % (uint64_t)(2 * spread + 1));
    return limit < 1 ? 1 : (unsigned long)limit;
}

unsigned long long wr_recycle_seed(void)
{
    struct timespec wall, mono;

    clock_gettime(CLOCK_REALTIME, &wall);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    return ((unsigned long long)getpid() << 32) ^ (unsigned long long)wall.tv_sec ^
           ((unsigned long long)mono.tv_nsec << 16);
}
