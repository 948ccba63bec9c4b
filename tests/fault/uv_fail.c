/*
 * Fault injection for the supervisor's libuv calls, loaded with
 * LD_PRELOAD by tests/integration/test_libuv_failures.c.  A failure that
 * libuv reports almost never (a pipe that cannot be created, a signal
 * that cannot be watched) must still be handled; this makes it happen.
 *
 *   WARREN_TEST_UV_FAIL=NAME:N   the Nth call (from 1) of libuv function
 *                                NAME fails with UV_ENOMEM, without
 *                                calling libuv; every other call goes
 *                                through.
 *
 * Counts are per process.  Wrapped: uv_pipe_init, uv_read_start,
 * uv_signal_start.
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* Whether this call of NAME (counted in *CALLS) is the one to fail. */
static int should_fail(const char *name, int *calls)
{
    const char *spec = getenv("WARREN_TEST_UV_FAIL");
    size_t len = strlen(name);

    ++*calls;
    return spec && strncmp(spec, name, len) == 0 && spec[len] == ':' &&
           atoi(spec + len + 1) == *calls;
}

#define REAL(name) ((__typeof__(name) *)dlsym(RTLD_NEXT, #name))

int uv_pipe_init(uv_loop_t *loop, uv_pipe_t *handle, int ipc)
{
    static int calls;
    return should_fail("uv_pipe_init", &calls) ? UV_ENOMEM : REAL(uv_pipe_init)(loop, handle, ipc);
}

int uv_read_start(uv_stream_t *stream, uv_alloc_cb alloc_cb, uv_read_cb read_cb)
{
    static int calls;
    return should_fail("uv_read_start", &calls) ? UV_ENOMEM
                                                : REAL(uv_read_start)(stream, alloc_cb, read_cb);
}

int uv_signal_start(uv_signal_t *handle, uv_signal_cb signal_cb, int signum)
{
    static int calls;
    return should_fail("uv_signal_start", &calls)
               ? UV_ENOMEM
               : REAL(uv_signal_start)(handle, signal_cb, signum);
}
