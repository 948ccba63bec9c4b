/*
 * Unit tests for supervisor/control.c and src/control_cli.c: a control
 * server runs in a libuv loop on a thread of its own, on a socket in a
 * temporary directory, with a fake supervisor answering; the test thread
 * talks to it with the client's wr_control_request() or a raw socket.
 * Each test ends by stopping the server from its loop and checking that
 * uv_loop_close() finds no handle left open and the socket file is gone.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "src/control_cli.h"
#include "supervisor/control.h"

static const char sample_status[] =
    "{\"warren\":\"0.9.0\",\"pid\":1234,\"state\":\"running\",\"generation\":2,"
    "\"config\":\"/etc/warren/warren.conf\",\"uptime_s\":3723.4,\"mode\":\"fixed\","
    "\"workers_target\":4,\"min_workers\":0,\"max_workers\":0,"
    "\"totals\":{\"workers\":4,\"busy\":1,\"idle\":3,\"starting\":0,\"stopping\":0,"
    "\"handled\":10234,\"failed\":3,\"restarts\":2},"
    "\"workers\":[{\"index\":0,\"pid\":4242,\"generation\":2,\"state\":\"busy\","
    "\"method\":\"test.sleep\",\"route\":\"rpc\",\"busy_s\":1.25,\"handled\":100,\"failed\":1,"
    "\"restarts\":0,\"last_death\":null,\"rss_bytes\":5234688,\"uptime_s\":33.1},"
    "{\"index\":1,\"pid\":4243,\"generation\":2,\"state\":\"idle\",\"handled\":99,\"failed\":0,"
    "\"restarts\":1,\"last_death\":\"killed by signal 9 (Killed)\",\"rss_bytes\":4194304,"
    "\"uptime_s\":125}]}";

#define BIG_REPLY (1 << 20)

static uv_loop_t loop;
static wr_control server;
static uv_async_t stopper;
static pthread_t thread;
static char dir[64], path[96];

/* The fake supervisor: knows "status" and "reload". */
static char *fake_supervisor(void *arg, const char *command)
{
    (void)arg;
    if (!strcmp(command, "status"))
        return strdup(sample_status);
    if (!strcmp(command, "big")) {
        /* {"message":"aaa..."}: a reply of some 1 MiB (a big pool's status). */
        char *big = malloc(BIG_REPLY + 1);

        cr_assert_not_null(big);
        memset(big, 'a', BIG_REPLY);
        memcpy(big, "{\"message\":\"", 12);
        memcpy(big + BIG_REPLY - 2, "\"}", 2);
        big[BIG_REPLY] = '\0';
        return big;
    }
    if (!strcmp(command, "reload"))
        return wr_control_reply_ok("reloading: %s", "config generation 3");
    return wr_control_reply_error("unknown command \"%.20s\" (%zu bytes)", command,
                                  strlen(command));
}

static void on_stop(uv_async_t *a)
{
    wr_control_stop(&server);
    uv_close((uv_handle_t *)a, NULL);
}

static void *run_loop(void *arg)
{
    (void)arg;
    uv_run(&loop, UV_RUN_DEFAULT);
    return NULL;
}

static void make_dir(void)
{
    snprintf(dir, sizeof dir, "/tmp/warren-control-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/test.sock", dir);
}

/* The server, listening on PATH, its loop running on a thread. */
static void start_server(unsigned idle_ms)
{
    cr_assert_eq(uv_loop_init(&loop), 0);
    memset(&server, 0, sizeof server);
    cr_assert_eq(wr_control_start(&server, &loop, path, fake_supervisor, NULL), 0);
    if (idle_ms)
        wr_control_set_idle_timeout(&server, idle_ms);
    cr_assert_eq(uv_async_init(&loop, &stopper, on_stop), 0);
    cr_assert_eq(pthread_create(&thread, NULL, run_loop, NULL), 0);
}

/* Stop it from its loop; every handle must have closed. */
static void stop_server(void)
{
    struct stat st;

    cr_assert_eq(uv_async_send(&stopper), 0);
    cr_assert_eq(pthread_join(thread, NULL), 0);
    cr_assert_eq(uv_loop_close(&loop), 0, "a handle was left open");
    cr_assert_eq(lstat(path, &st), -1, "the socket file is still there");
    cr_assert_eq(errno, ENOENT);
}

static void remove_dir(void)
{
    unlink(path);
    rmdir(dir);
}

/* A raw client connection to PATH. */
static int raw_connect(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    cr_assert_geq(fd, 0);
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0, "connect: %s", strerror(errno));
    return fd;
}

/* Read FD to EOF within MS milliseconds into BUF; the bytes read.  A
 * reset counts as the end: a server that closes with bytes of ours
 * unread resets the connection instead of a plain EOF. */
static size_t read_all(int fd, char *buf, size_t len, int ms)
{
    size_t got = 0;

    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t n;

        cr_assert_eq(poll(&p, 1, ms), 1, "no EOF within %d ms", ms);
        n = read(fd, buf + got, len - 1 - got);
        cr_assert(n >= 0 || errno == ECONNRESET, "read: %s", strerror(errno));
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    return got;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

Test(control, status_reply_round_trip)
{
    char *reply = NULL, err[256];

    make_dir();
    start_server(0);
    cr_assert_eq(wr_control_request(path, "status", &reply, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(reply, sample_status);
    free(reply);
    cr_assert_eq(wr_control_request(path, "reload", &reply, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(reply, "{\"ok\":true,\"message\":\"reloading: config generation 3\"}");
    free(reply);
    cr_assert_eq(wr_control_request(path, "dance", &reply, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(reply, "{\"error\":\"unknown command \\\"dance\\\" (5 bytes)\"}");
    free(reply);
    stop_server();
    remove_dir();
}

Test(control, big_reply_arrives_whole)
{
    char *reply = NULL, err[256];

    make_dir();
    start_server(0);
    cr_assert_eq(wr_control_request(path, "big", &reply, err, sizeof err), 0, "%s", err);
    cr_assert_eq(strlen(reply), BIG_REPLY);
    cr_assert_eq(strncmp(reply, "{\"message\":\"aaa", 15), 0);
    cr_assert_str_eq(reply + BIG_REPLY - 3, "a\"}");
    free(reply);
    stop_server();
    remove_dir();
}

Test(control, socket_mode_is_0660)
{
    struct stat st;

    make_dir();
    umask(0); /* the mode must not depend on the umask */
    start_server(0);
    cr_assert_eq(lstat(path, &st), 0);
    cr_assert(S_ISSOCK(st.st_mode));
    cr_assert_eq(st.st_mode & 07777, 0660, "mode %o", (unsigned)(st.st_mode & 07777));
    stop_server();
    remove_dir();
}

Test(control, stale_socket_file_replaced)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char *reply = NULL, err[256];
    int fd;

    make_dir();
    /* What a warren killed by SIGKILL leaves: a bound socket nobody serves. */
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    close(fd);
    cr_assert_eq(wr_control_request(path, "status", &reply, err, sizeof err),
                 WR_CONTROL_UNREACHABLE);
    cr_assert_str_eq(err, "Connection refused");

    start_server(0);
    cr_assert_eq(wr_control_request(path, "status", &reply, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(reply, sample_status);
    free(reply);
    stop_server();
    remove_dir();
}

Test(control, live_socket_refused)
{
    uv_loop_t other_loop;
    wr_control other;
    char *reply = NULL, err[256];

    make_dir();
    start_server(0);
    cr_assert_eq(uv_loop_init(&other_loop), 0);
    memset(&other, 0, sizeof other);
    cr_assert_eq(wr_control_start(&other, &other_loop, path, fake_supervisor, NULL), -1);
    wr_control_stop(&other);
    cr_assert_eq(uv_run(&other_loop, UV_RUN_DEFAULT), 0);
    cr_assert_eq(uv_loop_close(&other_loop), 0);
    /* The first server still has its socket. */
    cr_assert_eq(wr_control_request(path, "status", &reply, err, sizeof err), 0, "%s", err);
    free(reply);
    stop_server();
    remove_dir();
}

Test(control, path_that_is_not_a_socket_refused)
{
    uv_loop_t l;
    wr_control c;
    struct stat st;
    int fd;

    make_dir();
    fd = open(path, O_CREAT | O_WRONLY, 0600);
    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(uv_loop_init(&l), 0);
    memset(&c, 0, sizeof c);
    cr_assert_eq(wr_control_start(&c, &l, path, fake_supervisor, NULL), -1);
    wr_control_stop(&c);
    cr_assert_eq(uv_loop_close(&l), 0);
    cr_assert_eq(lstat(path, &st), 0, "the file was removed");
    cr_assert(S_ISREG(st.st_mode));
    remove_dir();
}

Test(control, stop_when_never_started_is_safe)
{
    wr_control c;

    memset(&c, 0, sizeof c);
    wr_control_stop(&c);
    wr_control_stop(&c);
}

Test(control, long_line_gets_an_error_reply)
{
    char cmd[WR_CONTROL_LINE_MAX + 2], *reply = NULL, err[256];

    make_dir();
    start_server(0);
    /* The longest line allowed reaches the supervisor... */
    memset(cmd, 'x', WR_CONTROL_LINE_MAX);
    cmd[WR_CONTROL_LINE_MAX] = '\0';
    cr_assert_eq(wr_control_request(path, cmd, &reply, err, sizeof err), 0, "%s", err);
    cr_assert(strstr(reply, "(256 bytes)"), "%s", reply);
    free(reply);
    /* ...one byte more does not. */
    memset(cmd, 'x', WR_CONTROL_LINE_MAX + 1);
    cmd[WR_CONTROL_LINE_MAX + 1] = '\0';
    cr_assert_eq(wr_control_request(path, cmd, &reply, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(reply, "{\"error\":\"command line longer than 256 bytes\"}");
    free(reply);
    stop_server();
    remove_dir();
}

Test(control, empty_line_gets_an_error_reply)
{
    char *reply = NULL, err[256];

    make_dir();
    start_server(0);
    cr_assert_eq(wr_control_request(path, "", &reply, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(reply, "{\"error\":\"empty command\"}");
    free(reply);
    stop_server();
    remove_dir();
}

Test(control, silent_client_dropped_after_the_timeout)
{
    char buf[512];
    double t0, waited;
    int fd;

    make_dir();
    start_server(300);
    t0 = now_s();
    fd = raw_connect();
    read_all(fd, buf, sizeof buf, 3000);
    waited = now_s() - t0;
    close(fd);
    cr_assert_str_eq(buf, "{\"error\":\"no command within 300 ms\"}\n");
    cr_assert_geq(waited, 0.25, "dropped after %.3f s", waited);
    cr_assert_lt(waited, 2.5, "dropped after %.3f s", waited);
    stop_server();
    remove_dir();
}

Test(control, too_many_connections_refused)
{
    int fds[WR_CONTROL_MAX_CONNS], fd;
    char buf[512], *reply = NULL, err[256];
    int rc = -1;

    make_dir();
    start_server(0);
    for (int i = 0; i < WR_CONTROL_MAX_CONNS; i++)
        fds[i] = raw_connect();
    /* Accepted in order: the one past the limit is told so at once. */
    fd = raw_connect();
    read_all(fd, buf, sizeof buf, 3000);
    close(fd);
    cr_assert_str_eq(buf, "{\"error\":\"too many control connections (16 open); try again\"}\n");
    for (int i = 0; i < WR_CONTROL_MAX_CONNS; i++)
        close(fds[i]);
    /* Once the server has seen them go, a client is served again. */
    for (int tries = 0; tries < 100; tries++) {
        cr_assert_eq(wr_control_request(path, "status", &reply, err, sizeof err), 0, "%s", err);
        rc = strcmp(reply, sample_status);
        free(reply);
        if (rc == 0)
            break;
        usleep(20000);
    }
    cr_assert_eq(rc, 0, "still refused after the connections closed");
    stop_server();
    remove_dir();
}

Test(control, stop_closes_open_connections)
{
    char buf[64];
    int fd;

    make_dir();
    start_server(0);
    fd = raw_connect();
    cr_assert_eq(write(fd, "sta", 3), 3); /* half a command, then silence */
    stop_server();                        /* checks that no handle is left */
    cr_assert_eq(read_all(fd, buf, sizeof buf, 3000), 0);
    close(fd);
    remove_dir();
}

Test(control, unreachable_socket)
{
    char *reply = (char *)"x", err[256];

    make_dir();
    cr_assert_eq(wr_control_request(path, "status", &reply, err, sizeof err),
                 WR_CONTROL_UNREACHABLE);
    cr_assert_null(reply);
    cr_assert_str_eq(err, "No such file or directory");
    remove_dir();
}

/* The commands' exit statuses, through the socket (-s: no config). */
static int cli(const char *command, const char *option)
{
    char *argv[] = {(char *)command, "-s", path, (char *)option, NULL};

    return wr_control_cli_main(option ? 4 : 3, argv, NULL);
}

Test(control, commands_exit_status)
{
    make_dir();
    cr_assert_eq(cli("status", NULL), 69, "unreachable");
    start_server(0);
    cr_assert_eq(cli("status", NULL), 0);
    cr_assert_eq(cli("status", "--json"), 0);
    cr_assert_eq(cli("reload", NULL), 0);
    cr_assert_eq(cli("stop", NULL), 1, "the fake supervisor refuses stop");
    cr_assert_eq(cli("stop", "--json"), 64);
    stop_server();
    remove_dir();
}

/* wr_status_render's output for JSON, in a malloc'd string; -1 in *RC
 * on failure. */
static char *render(const char *json, int *rc)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);

    cr_assert_not_null(f);
    *rc = wr_status_render(json, f);
    cr_assert_eq(fclose(f), 0);
    return out;
}

Test(control, status_rendered_for_a_person)
{
    int rc;
    char *out = render(sample_status, &rc);

    cr_assert_eq(rc, 0);
    cr_assert(strstr(out, "warren 0.9.0 (pid 1234): running, config generation 2, up 1h02m03s\n"),
              "%s", out);
    cr_assert(strstr(out, "/etc/warren/warren.conf: 4 workers (fixed): 1 busy, 3 idle; 10234 "
                          "served, 3 failed, 2 restarts\n"),
              "%s", out);
    cr_assert(strstr(out, "\nWORKER  PID    GEN  STATE    HANDLED  FAILED  RESTARTS  RSS       "
                          "UP       DOING\n"),
              "%s", out);
    cr_assert(strstr(out, "\n0       4242   2    busy     100      1       0         5.0 MiB   "
                          "33s      test.sleep (route rpc) for 1.2s\n"),
              "%s", out);
    cr_assert(strstr(out, "\n1       4243   2    idle     99       0       1         4.0 MiB   "
                          "2m05s    last death: killed by signal 9 (Killed)\n"),
              "%s", out);
    free(out);
}

Test(control, dynamic_pool_rendered)
{
    static const char json[] =
        "{\"warren\":\"0.9.0\",\"pid\":7,\"state\":\"reloading\",\"generation\":3,"
        "\"config\":\"/etc/warren/a.conf\",\"uptime_s\":90061,\"mode\":\"dynamic\","
        "\"workers_target\":3,\"min_workers\":2,\"max_workers\":8,"
        "\"totals\":{\"workers\":2,\"busy\":0,\"idle\":1,\"starting\":1,\"stopping\":0,"
        "\"handled\":1,\"failed\":0,\"restarts\":1},"
        "\"workers\":[{\"index\":0,\"pid\":0,\"generation\":3,\"state\":\"starting\","
        "\"handled\":0,\"failed\":0,\"restarts\":0}]}";
    int rc;
    char *out = render(json, &rc);

    cr_assert_eq(rc, 0);
    cr_assert(strstr(out, "warren 0.9.0 (pid 7): reloading, config generation 3, up 1d01h01m\n"),
              "%s", out);
    cr_assert(strstr(out, "/etc/warren/a.conf: 2 workers (dynamic, 2 to 8, target 3): 0 busy, "
                          "1 idle, 1 starting; 1 served, 0 failed, 1 restart\n"),
              "%s", out);
    cr_assert(strstr(out, "\n0       -      3    starting 0        0       0         -         "
                          "-\n"),
              "%s", out);
    free(out);
}

Test(control, garbage_not_rendered)
{
    static const char *const bad[] = {"not json", "[1,2]", "{\"error\":\"busy\"}",
                                      "{\"state\":\"running\"}", ""};

    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc;
        char *out = render(bad[i], &rc);

        cr_assert_eq(rc, -1, "rendered %s", bad[i]);
        cr_assert_str_empty(out, "printed for %s: %s", bad[i], out);
        free(out);
    }
}
