/* Integration-test harness; see harness.h. */
#include "tests/integration/harness.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/amqp_conn.h"

static char *env_or_die(const char *name)
{
    char *v = getenv(name);
    if (!v || !*v)
        cr_assert_fail("%s is not set: run the integration tests through ctest (see README)", name);
    return v;
}

char *wr_test_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0;
    FILE *mem;
    char chunk[4096];
    size_t n;

    if (!f)
        return NULL;
    mem = open_memstream(&buf, &len);
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        fwrite(chunk, 1, n, mem);
    fclose(mem);
    fclose(f);
    return buf;
}

const char *wr_test_broker_uri(void)
{
    static char uri[256];
    char path[512];
    char *text;

    if (uri[0])
        return uri;
    snprintf(path, sizeof path, "%s/uri", env_or_die("WARREN_TEST_BROKER_DIR"));
    text = wr_test_read_file(path);
    if (!text)
        cr_assert_fail("no test broker: %s missing (did the broker_start fixture run?)", path);
    text[strcspn(text, "\r\n")] = '\0';
    snprintf(uri, sizeof uri, "%s", text);
    free(text);
    return uri;
}

int wr_test_sh(const char *cmd, char **out, char **err)
{
    char outp[] = "/tmp/wr-sh-out-XXXXXX", errp[] = "/tmp/wr-sh-err-XXXXXX";
    int ofd = mkstemp(outp), efd = mkstemp(errp);
    pid_t pid;
    int status = 0;

    cr_assert(ofd >= 0 && efd >= 0);
    pid = fork();
    if (pid == 0) {
        dup2(ofd, 1);
        dup2(efd, 2);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(ofd);
    close(efd);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (out)
        *out = wr_test_read_file(outp);
    if (err)
        *err = wr_test_read_file(errp);
    unlink(outp);
    unlink(errp);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int wr_test_queue_stat(const char *queue, const char *column)
{
    char args[512], *out;
    int n;

    snprintf(args, sizeof args,
             "list_queues -q --no-table-headers name %s "
             "| awk '$1==\"%s\"{print $2; found=1} END{if(!found) print -1}'",
             column, queue);
    out = wr_test_broker_ctl(args);
    n = atoi(out);
    free(out);
    return n;
}

char *wr_test_broker_ctl(const char *args)
{
    char cmd[1024], *out = NULL, *err = NULL;
    int rc;

    snprintf(cmd, sizeof cmd, "'%s/tests/broker.sh' ctl '%s' %s", env_or_die("WARREN_SOURCE_DIR"),
             env_or_die("WARREN_TEST_BROKER_DIR"), args);
    rc = wr_test_sh(cmd, &out, &err);
    cr_assert_eq(rc, 0, "%s failed: %s", cmd, err ? err : "");
    free(err);
    return out;
}

void wr_test_queue_name(char *buf, size_t len, const char *prefix)
{
    static unsigned seq;
    snprintf(buf, len, "%s.%d.%u", prefix, (int)getpid(), seq++);
}

/* Each warren under test gets a directory for its config and log, kept
 * after the run for inspection: under $WARREN_TEST_TMPDIR (ctest points it
 * into the build tree and empties it at the start of a run), else /tmp. */
static void make_dir(wr_test_warren *w)
{
    const char *base = getenv("WARREN_TEST_TMPDIR");
    if (base && *base)
        mkdir(base, 0755);
    snprintf(w->dir, sizeof w->dir, "%s/warren-test-XXXXXX", base && *base ? base : "/tmp");
    cr_assert_not_null(mkdtemp(w->dir), "mkdtemp %s: %s", w->dir, strerror(errno));
    snprintf(w->conf, sizeof w->conf, "%s/warren.conf", w->dir);
    snprintf(w->log, sizeof w->log, "%s/warren.log", w->dir);
}

const char *wr_test_warren_dir(wr_test_warren *w)
{
    if (!w->dir[0])
        make_dir(w);
    return w->dir;
}

void wr_test_warren_spawn(wr_test_warren *w, char *const argv[], const char *out_path)
{
    const char *bin = env_or_die("WARREN_BIN");
    pid_t pid;
    int n = 0;

    if (!w->dir[0])
        make_dir(w);
    while (argv[n])
        n++;
    pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        char **args = calloc((size_t)n + 1, sizeof *args);
        int logfd = open(w->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        int outfd = out_path ? open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644)
                             : open("/dev/null", O_WRONLY);
        /* If the test process dies (a failed assertion), take warren down
         * with it; its workers follow when their status pipe closes. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(outfd, 1);
        dup2(logfd, 2);
        args[0] = (char *)bin;
        for (int i = 1; i < n; i++)
            args[i] = argv[i];
        execv(bin, args);
        _exit(127);
    }
    w->pid = pid;
    w->exited = 0;
}

void wr_test_warren_write_conf(wr_test_warren *w, int workers, const char *extra)
{
    FILE *f;

    if (!w->dir[0])
        make_dir(w);
    if (!w->queue[0])
        wr_test_queue_name(w->queue, sizeof w->queue, "test");
    f = fopen(w->conf, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "[broker]\nuri = %s\n\n[pool]\nworkers = %d\nshutdown_timeout = 20\ncontrol_socket = "
            "none\n\n"
            "[plugins]\ndir = %s\nload = echo time test\n\n[route rpc]\nqueue = %s\n\n%s\n",
            wr_test_broker_uri(), workers, env_or_die("WARREN_PLUGIN_DIR"), w->queue,
            extra ? extra : "");
    fclose(f);
}

void wr_test_warren_start(wr_test_warren *w, int workers, const char *extra, int wait_ready)
{
    char *argv[] = {"warren", "-c", w->conf, NULL};

    wr_test_warren_write_conf(w, workers, extra);
    wr_test_warren_spawn(w, argv, NULL);
    if (wait_ready) {
        int ok = wr_test_log_wait(w, "ready: ", 1, 30000);
        if (!ok) {
            char *log = wr_test_log_read(w);
            cr_assert_fail("warren did not become ready in 30 s; log:\n%s", log ? log : "(none)");
        }
    }
}

char *wr_test_log_read(wr_test_warren *w)
{
    return wr_test_read_file(w->log);
}

int wr_test_log_count(wr_test_warren *w, const char *needle)
{
    char *log = wr_test_read_file(w->log), *p;
    int n = 0;
    if (!log)
        return 0;
    for (p = log; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    free(log);
    return n;
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void nap(void)
{
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

int wr_test_log_wait(wr_test_warren *w, const char *needle, int count, int timeout_ms)
{
    long deadline = now_ms() + timeout_ms;
    do {
        if (wr_test_log_count(w, needle) >= count)
            return 1;
        nap();
    } while (now_ms() < deadline);
    return 0;
}

int wr_test_warren_wait_exit(wr_test_warren *w, int timeout_ms)
{
    long deadline = now_ms() + timeout_ms;
    if (w->exited)
        return 1;
    do {
        pid_t r = waitpid(w->pid, &w->status, WNOHANG);
        if (r == w->pid) {
            w->exited = 1;
            return 1;
        }
        nap();
    } while (now_ms() < deadline);
    return 0;
}

int wr_test_warren_stop(wr_test_warren *w)
{
    if (!w->exited)
        kill(w->pid, SIGTERM);
    if (!wr_test_warren_wait_exit(w, 30000)) {
        kill(w->pid, SIGKILL);
        cr_assert_fail("warren did not stop within 30 s of SIGTERM");
    }
    return WIFEXITED(w->status) ? WEXITSTATUS(w->status) : 128 + WTERMSIG(w->status);
}

int wr_test_worker_pids(const wr_test_warren *w, pid_t *pids, int max)
{
    char path[64], *text;
    int n = 0;
    char *p, *end;

    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)w->pid, (int)w->pid);
    text = wr_test_read_file(path);
    if (!text)
        return 0;
    for (p = text; n < max; p = end) {
        long v = strtol(p, &end, 10);
        if (end == p)
            break;
        pids[n++] = (pid_t)v;
    }
    free(text);
    return n;
}

amqp_connection_state_t wr_test_amqp_connect(void)
{
    char err[512];
    amqp_connection_state_t conn =
        wr_amqp_connect(wr_test_broker_uri(), 0, 10, "warren test", err, sizeof err);

    if (!conn)
        cr_assert_fail("cannot connect to the test broker: %s", err);
    return conn;
}

wr_client *wr_test_client(int mode)
{
    wr_client *c = NULL;
    char err[512];
    if (wr_client_connect(&c, wr_test_broker_uri(), mode, err, sizeof err) < 0)
        cr_assert_fail("client cannot connect: %s", err);
    return c;
}

char *wr_test_rpc(wr_client *c, const char *queue, const char *body, const char *corr,
                  int timeout_ms)
{
    char err[512];
    long deadline = now_ms() + timeout_ms;

    cr_assert_eq(wr_client_publish(c, "", queue, body, strlen(body), corr, 0, err, sizeof err), 0,
                 "publish: %s", err);
    for (;;) {
        wr_client_reply r;
        long left = deadline - now_ms();
        int got;
        if (left <= 0)
            return NULL;
        got = wr_client_recv(c, (int)left, &r, err, sizeof err);
        cr_assert_neq(got, -1, "recv: %s", err);
        if (got == 0)
            return NULL;
        if (r.correlation_id && strcmp(r.correlation_id, corr) == 0) {
            char *b = malloc(r.len + 1);
            memcpy(b, r.body, r.len);
            b[r.len] = '\0';
            wr_client_reply_free(&r);
            return b;
        }
        wr_client_reply_free(&r);
    }
}
