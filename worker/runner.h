/*
 * The runner: one thread per worker that runs plugin handlers, so the main
 * thread stays free to service the AMQP socket (heartbeats, more
 * deliveries) while a long handler runs.  Jobs go over one at a time: the
 * prefork promise (one request at a time per worker, plugins need not be
 * thread-safe) holds because only this thread ever calls a handler.
 */
#ifndef WR_RUNNER_H
#define WR_RUNNER_H

#include "worker/dispatch.h"
#include "worker/plugin_loader.h"

typedef struct wr_runner wr_runner; /* opaque */

/* Start the thread, which runs jobs with DISPATCHER (borrowed: it must
 * outlive the runner).  Returns 0 and *out, or -1 (errno set). */
int wr_runner_start(wr_runner **out, const wr_dispatcher *dispatcher);

/* A descriptor that becomes readable when the submitted job is done. */
int wr_runner_fd(const wr_runner *r);

/* Hand JOB (prepared) to the thread.  Only one job at a time: submit again
 * only after wr_runner_collect returned it.  JOB stays the caller's. */
void wr_runner_submit(wr_runner *r, wr_job *job);

/* The finished job, or NULL when it is still running.  Never blocks unless
 * WAIT is nonzero, in which case it waits for the job to finish. */
wr_job *wr_runner_collect(wr_runner *r, int wait);

/* Wait for any job in hand, stop and join the thread, free R.  NULL ok. */
void wr_runner_stop(wr_runner *r);

#endif
