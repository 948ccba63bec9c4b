/*
 * The supervisor checks what libuv returns.  tests/fault/uv_fail.c (by
 * LD_PRELOAD) makes one call fail; the supervisor must say so and then
 * either carry on correctly (replace the worker concerned) or, when it
 * cannot run safely (a stop signal it cannot watch), exit 70 at once.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/integration/harness.h"

/*
 * The fault library at a path ld.so can take: LD_PRELOAD splits on spaces
 * (and colons), and a checkout may sit in "/home/a b/".  A symlink in a
 * private temp dir without either.  Borrowed; made once.
 */
static char link_path[64];

static const char *preload_path(void)
{
    const char *lib = getenv("WARREN_UV_FAIL_LIB");
    char dir[] = "/tmp/warren-uvfail-XXXXXX";

    cr_assert_not_null(lib, "WARREN_UV_FAIL_LIB is not set: run through ctest");
    if (!strpbrk(lib, " :"))
        return lib;
    if (!link_path[0]) {
        cr_assert_not_null(mkdtemp(dir));
        snprintf(link_path, sizeof link_path, "%s/uv_fail.so", dir);
        cr_assert_eq(symlink(lib, link_path), 0, "symlink %s: %s", link_path, strerror(errno));
    }
    return link_path;
}

/* After each test (warren is stopped by then): the symlink and its dir. */
static void remove_link(void)
{
    char *slash = strrchr(link_path, '/');

    if (!link_path[0])
        return;
    unlink(link_path);
    *slash = '\0';
    rmdir(link_path);
    link_path[0] = '\0';
}

TestSuite(libuv_failures, .timeout = 90, .fini = remove_link);

/* Start warren (WORKERS workers) with the Nth call of FN failing. */
static void start_failing(wr_test_warren *w, int workers, const char *fn, int n)
{
    char *argv[] = {"warren", "-c", w->conf, NULL};
    char spec[64], asan[1024];
    const char *old = getenv("ASAN_OPTIONS");

    wr_test_warren_write_conf(w, workers, NULL);
    snprintf(spec, sizeof spec, "%s:%d", fn, n);
    /* The preloaded library comes before ASan's runtime: allow it. */
    snprintf(asan, sizeof asan, "%s%sverify_asan_link_order=0", old ? old : "", old ? ":" : "");
    setenv("WARREN_TEST_UV_FAIL", spec, 1);
    setenv("LD_PRELOAD", preload_path(), 1);
    setenv("ASAN_OPTIONS", asan, 1);
    wr_test_warren_spawn(w, argv, NULL);
    /* Only warren gets them, not the rabbitmqctl calls that follow. */
    unsetenv("LD_PRELOAD");
    unsetenv("WARREN_TEST_UV_FAIL");
    if (old)
        setenv("ASAN_OPTIONS", old, 1);
    else
        unsetenv("ASAN_OPTIONS");
}

static void assert_pool_answers(wr_test_warren *w)
{
    wr_client *c = wr_test_client(WR_CLIENT_REPLY_QUEUE);
    char *reply =
        wr_test_rpc(c, w->queue, "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":1}", "uv", 10000);
    cr_assert_not_null(reply, "no reply:\n%s", wr_test_log_read(w));
    free(reply);
    wr_client_close(c);
}

/* A stop signal the supervisor cannot watch would make SIGTERM kill it
 * outright: refuse to start instead. */
Test(libuv_failures, unwatchable_signal_exits_70)
{
    wr_test_warren w = {0};

    start_failing(&w, 1, "uv_signal_start", 1);
    cr_assert(wr_test_warren_wait_exit(&w, 10000), "warren ran without its SIGTERM watcher:\n%s",
              wr_test_log_read(&w));
    cr_assert(WIFEXITED(w.status));
    cr_assert_eq(WEXITSTATUS(w.status), 70);
    cr_assert_eq(wr_test_log_count(&w, "cannot watch Terminated"), 1, "%s", wr_test_log_read(&w));
    cr_assert_eq(wr_test_log_count(&w, "consuming from"), 0, "a worker started anyway");
}

/* A worker whose pipes cannot be created counts as not started and is
 * tried again. */
Test(libuv_failures, pipe_failure_retries_the_worker)
{
    wr_test_warren w = {0};

    start_failing(&w, 1, "uv_pipe_init", 1);
    cr_assert(wr_test_log_wait(&w, "ready: ", 1, 30000), "the pool did not come up:\n%s",
              wr_test_log_read(&w));
    cr_assert_eq(wr_test_log_count(&w, "cannot create its pipes"), 1, "%s", wr_test_log_read(&w));
    cr_assert_eq(wr_test_log_count(&w, "could not be started"), 1, "%s", wr_test_log_read(&w));
    assert_pool_answers(&w);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}

/* A worker whose status pipe cannot be read would be a worker the
 * supervisor is blind to (and never buries): it is stopped and replaced. */
Test(libuv_failures, unreadable_status_pipe_replaces_the_worker)
{
    wr_test_warren w = {0};

    start_failing(&w, 1, "uv_read_start", 1);
    cr_assert(wr_test_log_wait(&w, "ready: ", 1, 30000), "the pool did not come up:\n%s",
              wr_test_log_read(&w));
    cr_assert_eq(wr_test_log_count(&w, "cannot read its status pipe"), 1, "%s",
                 wr_test_log_read(&w));
    assert_pool_answers(&w);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}
