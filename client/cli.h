/*
 * What warren's command-line clients (warren-call, warren-bench) share:
 * the broker and queue they talk to by default, and the way they read
 * option values and complain about bad ones (one line naming the problem,
 * the usage line, exit 64).
 */
#ifndef WR_CLI_H
#define WR_CLI_H

#define WR_CLI_DEFAULT_URI "amqp://guest:guest@127.0.0.1:5672/"
#define WR_CLI_DEFAULT_QUEUE "warren.rpc"

/* Name the program and its usage line (both borrowed: string literals)
 * for the messages below.  Call first. */
void wr_cli_init(const char *prog, const char *usage_line);

/* $WARREN_URI when set and not empty, else WR_CLI_DEFAULT_URI. */
const char *wr_cli_default_uri(void);

/* "PROG: MESSAGE", the usage line, a pointer at --help; exit 64. */
void wr_cli_usage_error(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* getopt_long (with a leading ':' in its optstring and opterr = 0)
 * returned CH, ':' or '?': report the option it could not take. */
void wr_cli_bad_option(int ch, char **argv) __attribute__((noreturn));

/* TEXT as a number of seconds, fractions allowed, greater than 0 and at
 * most MAX; otherwise a usage error naming OPT. */
double wr_cli_seconds(const char *opt, const char *text, double max);

/* TEXT as a whole number from 1 to MAX; otherwise a usage error naming
 * OPT. */
long wr_cli_count(const char *opt, const char *text, long max);

#endif
