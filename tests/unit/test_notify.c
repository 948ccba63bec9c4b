/*
 * Unit tests for common/notify.c: the sd_notify datagrams arrive exactly
 * as sent on a path socket and on an abstract one; nothing is sent (and 0
 * returned) without NOTIFY_SOCKET; a socket nobody listens on is an error;
 * WATCHDOG_USEC counts only when WATCHDOG_PID is absent or ours.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/notify.h"

static char tmpdir[64];
static int listener = -1;

static void cleanup(void)
{
    char path[128];

    if (listener >= 0)
        close(listener);
    listener = -1;
    if (tmpdir[0]) {
        snprintf(path, sizeof(path), "%s/notify", tmpdir);
        unlink(path);
        rmdir(tmpdir);
        tmpdir[0] = '\0';
    }
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
}

/* A datagram socket bound to ADDR (a path, or "@name" for an abstract
 * one), with NOTIFY_SOCKET naming it. */
static void listen_on(const char *addr)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = strlen(addr);
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    struct timeval tv = {.tv_sec = 2};

    cr_assert_lt(n, sizeof(sa.sun_path));
    memcpy(sa.sun_path, addr, n);
    if (addr[0] == '@')
        sa.sun_path[0] = '\0';
    listener = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(listener, 0, "socket: %s", strerror(errno));
    cr_assert_eq(bind(listener, (struct sockaddr *)&sa, len), 0, "bind %s: %s", addr,
                 strerror(errno));
    /* A missing datagram fails the test instead of hanging it. */
    setsockopt(listener, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    cr_assert_eq(setenv("NOTIFY_SOCKET", addr, 1), 0);
}

static void listen_on_path(void)
{
    char path[128];

    strcpy(tmpdir, "/tmp/warren-notify-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp: %s", strerror(errno));
    snprintf(path, sizeof(path), "%s/notify", tmpdir);
    listen_on(path);
}

/* The next datagram, which must be exactly WANT. */
static void expect(const char *want)
{
    char buf[WR_NOTIFY_MAX + 16];
    ssize_t n = recv(listener, buf, sizeof(buf) - 1, 0);

    cr_assert_geq(n, 0, "no datagram for \"%s\": %s", want, strerror(errno));
    buf[n] = '\0';
    cr_assert_str_eq(buf, want);
}

TestSuite(notify, .fini = cleanup);

Test(notify, path_socket_gets_exact_messages)
{
    listen_on_path();
    cr_assert_eq(wr_notify("READY=1"), 1);
    expect("READY=1");
    cr_assert_eq(wr_notify("READY=1\nSTATUS=4 workers, 0 busy, 0 served"), 1);
    expect("READY=1\nSTATUS=4 workers, 0 busy, 0 served");
    cr_assert_eq(wr_notify_fmt("STATUS=%d workers, %d busy, %lu served", 4, 1, 10234UL), 1);
    expect("STATUS=4 workers, 1 busy, 10234 served");
}

Test(notify, abstract_socket_gets_exact_messages)
{
    char name[64];

    snprintf(name, sizeof(name), "@warren-notify-test-%ld", (long)getpid());
    listen_on(name);
    cr_assert_eq(wr_notify("STOPPING=1"), 1);
    expect("STOPPING=1");
    cr_assert_eq(wr_notify("WATCHDOG=1"), 1);
    expect("WATCHDOG=1");
}

Test(notify, reloading_carries_monotonic_now)
{
    char buf[128];
    unsigned long long before, after, got;
    struct timespec ts;
    ssize_t n;
    int used = 0;

    listen_on_path();
    clock_gettime(CLOCK_MONOTONIC, &ts);
    before = (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000;
    cr_assert_eq(wr_notify_reloading(), 1);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    after = (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000;
    n = recv(listener, buf, sizeof(buf) - 1, 0);
    cr_assert_gt(n, 0, "no datagram: %s", strerror(errno));
    buf[n] = '\0';
    cr_assert_eq(sscanf(buf, "RELOADING=1\nMONOTONIC_USEC=%llu%n", &got, &used), 1, "%s", buf);
    cr_assert_eq((ssize_t)used, n, "trailing bytes in \"%s\"", buf);
    cr_assert(got >= before && got <= after, "%llu not in [%llu, %llu]", got, before, after);
}

Test(notify, unset_or_empty_is_a_noop)
{
    unsetenv("NOTIFY_SOCKET");
    cr_assert_eq(wr_notify("READY=1"), 0);
    cr_assert_eq(wr_notify_fmt("STATUS=%s", "x"), 0);
    cr_assert_eq(wr_notify_reloading(), 0);
    setenv("NOTIFY_SOCKET", "", 1);
    cr_assert_eq(wr_notify("READY=1"), 0);
}

Test(notify, missing_socket_fails)
{
    setenv("NOTIFY_SOCKET", "/nonexistent/warren/notify", 1);
    errno = 0;
    cr_assert_eq(wr_notify("READY=1"), -1);
    cr_assert_eq(errno, ENOENT, "errno %d (%s)", errno, strerror(errno));
    setenv("NOTIFY_SOCKET", "@warren-notify-test-nobody-listens", 1);
    errno = 0;
    cr_assert_eq(wr_notify("READY=1"), -1);
    cr_assert_eq(errno, ECONNREFUSED, "errno %d (%s)", errno, strerror(errno));
}

Test(notify, bad_addresses_fail)
{
    char longpath[200];

    setenv("NOTIFY_SOCKET", "vsock:2:1234", 1);
    cr_assert_eq(wr_notify("READY=1"), -1);
    cr_assert_eq(errno, EAFNOSUPPORT);
    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[0] = '/';
    longpath[sizeof(longpath) - 1] = '\0';
    setenv("NOTIFY_SOCKET", longpath, 1);
    cr_assert_eq(wr_notify("READY=1"), -1);
    cr_assert_eq(errno, ENAMETOOLONG);
}

Test(notify, too_long_a_message_is_not_sent)
{
    char big[WR_NOTIFY_MAX + 2];

    listen_on_path();
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cr_assert_eq(wr_notify_fmt("STATUS=%s", big), -1);
    cr_assert_eq(errno, EMSGSIZE);
    /* Nothing arrived in its place. */
    cr_assert_eq(wr_notify("READY=1"), 1);
    expect("READY=1");
}

Test(notify, watchdog_for_us)
{
    char pid[32];

    unsetenv("WATCHDOG_USEC");
    cr_assert_eq(wr_notify_watchdog_ms(), 0);
    setenv("WATCHDOG_USEC", "30000000", 1);
    cr_assert_eq(wr_notify_watchdog_ms(), 30000);
    setenv("WATCHDOG_USEC", "1500", 1);
    cr_assert_eq(wr_notify_watchdog_ms(), 2, "rounded up");
    setenv("WATCHDOG_USEC", "1", 1);
    cr_assert_eq(wr_notify_watchdog_ms(), 1, "a tiny interval is not \"none\"");
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    setenv("WATCHDOG_USEC", "30000000", 1);
    setenv("WATCHDOG_PID", pid, 1);
    cr_assert_eq(wr_notify_watchdog_ms(), 30000);
}

Test(notify, watchdog_not_for_us)
{
    char pid[32];

    setenv("WATCHDOG_USEC", "30000000", 1);
    snprintf(pid, sizeof(pid), "%ld", (long)getpid() + 1);
    setenv("WATCHDOG_PID", pid, 1);
    cr_assert_eq(wr_notify_watchdog_ms(), 0, "another process's watchdog");
    setenv("WATCHDOG_PID", "abc", 1);
    cr_assert_eq(wr_notify_watchdog_ms(), 0);
    unsetenv("WATCHDOG_PID");
    const char *bad[] = {"", "0", "-5", "30s", " 30", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("WATCHDOG_USEC", bad[i], 1);
        cr_assert_eq(wr_notify_watchdog_ms(), 0, "WATCHDOG_USEC=\"%s\"", bad[i]);
    }
}
