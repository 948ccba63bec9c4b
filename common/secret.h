/*
 * Keeping the broker password out of sight: the one way a URI is shown
 * (amqp://user:***@host:port/vhost), reading a password file, and the
 * checks that warn when a password sits where others can read it.
 */
#ifndef WR_SECRET_H
#define WR_SECRET_H

#include <stddef.h>

/* The environment variable that may hold the broker password. */
#define WR_SECRET_PASSWORD_ENV "WARREN_BROKER_PASSWORD"

/*
 * TEXT with the password of the URI in it replaced by "***"
 * ("amqp://user:***@host:5672/vhost"); TEXT may have something before the
 * URI ("broker.uri=amqp://...").  Text without a password is copied as
 * is.  Writes into BUF (cut to LEN) and returns it.  Every log line or
 * message that shows a URI goes through this.
 */
const char *wr_secret_mask_uri(const char *text, char *buf, size_t len);

/* Does TEXT hold a URI with a password ("scheme://user:pw@...")? */
int wr_secret_uri_has_password(const char *text);

/*
 * The password in the file at PATH: its first line, without the line end
 * (a file written by `echo` or an editor ends in a newline).  Returns a
 * new string (free it with wr_secret_free), or NULL with the reason in
 * ERR: cannot read, empty, more than one line, NUL bytes, over 4 KiB.
 */
char *wr_secret_read_file(const char *path, char *err, size_t errlen);

/* Wipe and free a password.  NULL ok. */
void wr_secret_free(char *s);

/* Mask, in place, every URI password among ARGV[1..ARGC-1] (what
 * /proc/PID/cmdline shows, hence `ps`).  Returns how many it masked. */
int wr_secret_scrub_args(int argc, char **argv);

/* PATH holds a password at LINE: warn when others may read it.  Returns 1
 * if it warned. */
int wr_secret_warn_if_readable(const char *path, int line);

#endif
