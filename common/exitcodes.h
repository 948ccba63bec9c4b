/* Exit codes shared by warren, its workers and warren-call (sysexits.h). */
#ifndef WR_EXITCODES_H
#define WR_EXITCODES_H

#define WR_EXIT_OK 0
#define WR_EXIT_USAGE 64       /* bad command line */
#define WR_EXIT_UNAVAILABLE 69 /* cannot reach the broker (warren-call) */
#define WR_EXIT_SOFTWARE 70    /* internal error */
#define WR_EXIT_TEMPFAIL 75    /* worker: transient failure, restart me */
/* Bad config or plugin.  A worker exiting with this code is not respawned:
 * the supervisor stops the pool and exits with it too. */
#define WR_EXIT_CONFIG 78

#endif
