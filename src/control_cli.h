/*
 * `warren status`, `warren reload`, `warren stop`: clients of the
 * supervisor's control socket (supervisor/control.h).  Each sends one
 * command line, reads the one reply to EOF, and prints it.
 */
#ifndef WR_CONTROL_CLI_H
#define WR_CONTROL_CLI_H

#include <stddef.h>
#include <stdio.h>

/* wr_control_request()'s failures. */
#define WR_CONTROL_UNREACHABLE (-1) /* no connection: nothing listens on PATH */
#define WR_CONTROL_FAILED (-2)      /* connected, but no whole reply in time */

/* How long a request may take, connection to last byte. */
#define WR_CONTROL_REQUEST_MS 10000

/*
 * Send CMD (one line, no "\n") to the control socket at PATH and read the
 * reply to EOF.  0: *REPLY is the reply without its trailing newline,
 * malloc'd, the caller frees it.  Otherwise *REPLY is NULL, ERR (ERRLEN
 * bytes) says why and the result is WR_CONTROL_UNREACHABLE (ERR is then
 * just the strerror() of connect) or WR_CONTROL_FAILED.
 */
int wr_control_request(const char *path, const char *cmd, char **reply, char *err, size_t errlen);

/*
 * The status JSON (the reply to "status") rendered for a person on OUT:
 * a summary line for the supervisor, one for the pool, then a table with
 * one line per worker.  0, or -1 when JSON is not a status object
 * (nothing is printed then).
 */
int wr_status_render(const char *json, FILE *out);

/*
 * ARGV[0] is "status", "reload" or "stop"; the rest are its options.
 * DEFAULT_CONFIG: the config used without -c.  Returns the exit status:
 * 0 done; 1 the supervisor answered with an error; 64 bad usage; 69 no
 * socket, or no answer on it; 70 an answer that could not be read; 78 a
 * config that does not load.
 */
int wr_control_cli_main(int argc, char **argv, const char *default_config);

#endif
