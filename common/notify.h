/*
 * Telling systemd how the pool is doing: the sd_notify datagram protocol
 * (one AF_UNIX datagram of "KEY=VALUE" lines to $NOTIFY_SOCKET), written
 * here in a few lines instead of linking libsystemd into the supervisor.
 * Outside systemd (NOTIFY_SOCKET unset) every call does nothing, so the
 * supervisor calls them unconditionally.
 */
#ifndef WR_NOTIFY_H
#define WR_NOTIFY_H

/* The longest message wr_notify_fmt() formats, in bytes. */
#define WR_NOTIFY_MAX 4096

/*
 * Send STATE ("READY=1", "STATUS=...", several lines joined by \n) to
 * $NOTIFY_SOCKET.  A no-op returning 0 when NOTIFY_SOCKET is unset or
 * empty; 1 when sent; -1 with errno on failure (EAFNOSUPPORT for an
 * address that is neither a path nor "@abstract", ENAMETOOLONG for one
 * that does not fit a sockaddr_un, or what socket(2)/sendto(2) said).
 */
int wr_notify(const char *state);

/* wr_notify() of a printf-formatted STATE; -1 with EMSGSIZE when it would
 * be longer than WR_NOTIFY_MAX (never sent cut short). */
int wr_notify_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * The watchdog interval systemd expects WATCHDOG=1 within, in ms
 * ($WATCHDOG_USEC rounded up), if set and meant for this process
 * ($WATCHDOG_PID absent or our pid); else 0 (no watchdog, or a malformed
 * value).  Ping at half of it, as sd_watchdog_enabled(3) advises.
 */
long wr_notify_watchdog_ms(void);

/* "RELOADING=1\nMONOTONIC_USEC=<CLOCK_MONOTONIC now in µs>": the start of a
 * reload, to be ended by "READY=1".  Returns as wr_notify(). */
int wr_notify_reloading(void);

#endif
