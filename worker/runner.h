/*
 * The runner: where plugin handlers run, while the connection stays alive
 * however long one takes (rabbitmq-c sends heartbeats only from inside
 * its own calls, and the broker closes a connection that stays silent).
 * Two shapes, chosen once per worker:
 *
 *   inline (plain TCP): the handler runs on the main thread, inside
 *     wr_runner_submit.  A second thread, the keeper, sleeps on a timer
 *     and, only when a call has run longer than half the heartbeat
 *     interval, writes a heartbeat frame to the socket; only while the
 *     main thread is inside a handler (a flag under a lock), never while
 *     it may be using the socket.  Nothing else is needed while one runs:
 *     the broker's frames wait in the socket buffer.  A call costs two
 *     uncontended mutex operations and no system call.
 *
 *   threaded (TLS: a heartbeat cannot be written beside OpenSSL's
 *     stream): the handler runs on a second thread while the main thread
 *     keeps servicing the socket, and a pipe says when it is done.  That
 *     costs two thread wake-ups per call.
 *
 * Either way there is one request at a time per worker and only one
 * thread ever calls a handler at a time, so plugins need not be
 * thread-safe.
 */
#ifndef WR_RUNNER_H
#define WR_RUNNER_H

#include "worker/dispatch.h"
#include "worker/plugin_loader.h"

typedef struct wr_runner wr_runner; /* opaque */

typedef enum wr_runner_mode { WR_RUNNER_INLINE = 0, WR_RUNNER_THREADED } wr_runner_mode;

/* Start the runner's thread (the keeper, or the handler thread), which
 * runs jobs with DISPATCHER (borrowed: it must outlive the runner).
 * Returns 0 and *out, or -1 (errno set). */
int wr_runner_start(wr_runner **out, const wr_dispatcher *dispatcher, wr_runner_mode mode);

/* Inline: the socket the keeper may write heartbeats to while a handler
 * runs, and the negotiated heartbeat interval in seconds (0: none).
 * SOCKFD -1 (before the connection is destroyed): none.  Threaded: a
 * no-op. */
void wr_runner_attach(wr_runner *r, int sockfd, int heartbeat_s);

/* Threaded: a descriptor that becomes readable when the submitted job is
 * done.  Inline: -1 (the job is done when submit returns). */
int wr_runner_fd(const wr_runner *r);

/* Run JOB (prepared): inline, now; threaded, on the thread.  Only one job
 * at a time: submit again only after wr_runner_collect returned it.  JOB
 * stays the caller's. */
void wr_runner_submit(wr_runner *r, wr_job *job);

/* The finished job, or NULL when it is still running.  Never blocks unless
 * WAIT is nonzero, in which case it waits for the job to finish. */
wr_job *wr_runner_collect(wr_runner *r, int wait);

/* Wait for any job in hand, stop and join the thread, free R.  NULL ok. */
void wr_runner_stop(wr_runner *r);

#endif
