/*
 * A worker's stop requests.  SIGTERM, SIGINT and SIGQUIT only set a flag
 * and write a byte to a self-pipe; the serve loop polls the pipe beside
 * the AMQP socket and acts on the flag in ordinary code.  SIGPIPE and
 * SIGHUP are ignored (a worker is reconfigured by being replaced).
 */
#ifndef WR_WORKER_SIGNALS_H
#define WR_WORKER_SIGNALS_H

/* Install the handlers and open the self-pipe.  0, or -1 with errno. */
int wr_signals_install(void);

/* The self-pipe's read end, to poll for POLLIN; -1 before install. */
int wr_signals_fd(void);

/* Empty the self-pipe after poll() said it is readable. */
void wr_signals_drain(void);

/* Has a stop been asked for (by a signal or by wr_signals_request_stop)? */
int wr_signals_stopping(void);

/* Ask for a stop from ordinary code (the supervisor went away). */
void wr_signals_request_stop(void);

/* Close the self-pipe (at exit). */
void wr_signals_close(void);

#endif
