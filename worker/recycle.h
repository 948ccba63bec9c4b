/*
 * Recycling by request count ([pool] max_requests): each worker asks to
 * be replaced after its own number of answered requests, drawn once
 * within ±10% of max_requests, so that workers started together do not
 * all retire together (gunicorn's max_requests_jitter, php-fpm's
 * pm.max_requests).  The worker sends "retire max_requests L" on its
 * status pipe (common/ipc.h) and keeps serving; the supervisor starts a
 * replacement and stops this one once the replacement consumes.
 */
#ifndef WR_WORKER_RECYCLE_H
#define WR_WORKER_RECYCLE_H

/* The answered-request count L at which to ask: uniform within
 * MAX_REQUESTS ± MAX_REQUESTS/10, and at least 1; 0 (never) when
 * MAX_REQUESTS is 0 or less.  SEED picks the draw (wr_recycle_seed). */
unsigned long wr_recycle_limit(long max_requests, unsigned long long seed);

/* A seed unlike any other worker's: the pid, the wall clock and the
 * monotonic clock's nanoseconds. */
unsigned long long wr_recycle_seed(void);

#endif
