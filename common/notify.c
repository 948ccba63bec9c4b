/*
 * The sd_notify protocol (see sd_notify(3), "NOTIFY_SOCKET"): one datagram
 * per message on an AF_UNIX socket whose address systemd puts in
 * $NOTIFY_SOCKET, either a path ("/run/systemd/notify") or an abstract
 * name written with a leading '@' that stands for the NUL byte.  A fresh
 * socket per call: the supervisor notifies at most a few times a second,
 * and no descriptor is left open for the workers it spawns to inherit.
 */
#include "common/notify.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Fill SA from the address in $NOTIFY_SOCKET; its length goes to *LEN.
 * 0, or -1 with errno. */
static int notify_address(const char *env, struct sockaddr_un *sa, socklen_t *len)
{
    size_t n = strlen(env);

    /* systemd also knows "vsock:CID:PORT" (for VMs); warren runs on the
     * host, so only the two unix forms are accepted. */
    if (env[0] != '/' && env[0] != '@') {
        errno = EAFNOSUPPORT;
        return -1;
    }
    /* A path needs room for its NUL; an abstract name has none. */
    if (n > sizeof(sa->sun_path) - (env[0] == '/')) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    memcpy(sa->sun_path, env, n);
    if (env[0] == '@')
        sa->sun_path[0] = '\0';
    /* The abstract name is exactly N bytes long (trailing NULs would be
     * part of it); a path is counted with its NUL. */
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (env[0] == '/'));
    return 0;
}

int wr_notify(const char *state)
{
    const char *env = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa;
    socklen_t len;
    size_t n = strlen(state);
    ssize_t sent;
    int fd, saved;

    if (!env || !env[0])
        return 0;
    if (notify_address(env, &sa, &len) < 0)
        return -1;
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    sent = sendto(fd, state, n, MSG_NOSIGNAL, (const struct sockaddr *)&sa, len);
    saved = errno;
    close(fd);
    if (sent < 0) {
        errno = saved;
        return -1;
    }
    /* A datagram goes whole or not at all; be safe anyway. */
    if ((size_t)sent != n) {
        errno = EMSGSIZE;
        return -1;
    }
    return 1;
}

int wr_notify_fmt(const char *fmt, ...)
{
    char buf[WR_NOTIFY_MAX + 1];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n >= sizeof(buf)) {
        errno = EMSGSIZE;
        return -1;
    }
    return wr_notify(buf);
}

/* The decimal number TEXT, all of it, into *OUT: 0, or -1 when TEXT is
 * empty, has anything but digits, or overflows. */
static int parse_unsigned(const char *text, unsigned long long *out)
{
    char *end;

    if (!text || text[0] < '0' || text[0] > '9')
        return -1;
    errno = 0;
    *out = strtoull(text, &end, 10);
    if (errno || *end)
        return -1;
    return 0;
}

long wr_notify_watchdog_ms(void)
{
    const char *pid_env = getenv("WATCHDOG_PID");
    unsigned long long usec, pid, ms;

    if (parse_unsigned(getenv("WATCHDOG_USEC"), &usec) < 0 || usec == 0)
        return 0;
    /* Set for another process (we inherited the environment of the one
     * systemd started): not ours to ping. */
    if (pid_env && (parse_unsigned(pid_env, &pid) < 0 || pid != (unsigned long long)getpid()))
        return 0;
    /* Rounded up, so that a sub-millisecond interval is not "no watchdog". */
    ms = usec / 1000 + (usec % 1000 != 0);
    return ms > LONG_MAX ? LONG_MAX : (long)ms;
}

int wr_notify_reloading(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
        return -1;
    return wr_notify_fmt("RELOADING=1\nMONOTONIC_USEC=%llu",
                         (unsigned long long)ts.tv_sec * 1000000ULL +
                             (unsigned long long)ts.tv_nsec / 1000ULL);
}
