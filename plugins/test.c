/*
 * The test plugin: methods that misbehave on purpose, so the worker's and
 * supervisor's handling of slow, failing and crashing handlers can be
 * exercised against a real pool.  Not meant to be loaded in production.
 *   test.sleep  [seconds] or {"seconds": n}, 0..3600, fractions allowed:
 *               sleeps that long, returns the number as given
 *   test.fail   always fails: code 1001, data = the params it got
 *   test.crash  kills the worker with SIGSEGV
 *   test.touch  [path]: appends a line to the file PATH and returns PATH,
 *               so a test can tell whether a request ran at all
 * Its init() can fail temporarily on request, for the supervisor's retry:
 *   [plugin test]
 *   temporary_init_failures = N    the first N inits fail with
 *                                  WARREN_ERR_TEMPORARY...
 *   counter_file = PATH            ...counted in PATH (a number; missing
 *                                  means 0), shared by every worker
 *                                  (not atomic: use one worker).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <warren/plugin.h>

#define MAX_SLEEP 3600.0

/* The seconds argument of test.sleep, borrowed from PARAMS, or NULL when
 * PARAMS has neither shape. */
static json_t *seconds_param(json_t *params)
{
    if (json_is_array(params) && json_array_size(params) == 1)
        return json_array_get(params, 0);
    if (json_is_object(params) && json_object_size(params) == 1)
        return json_object_get(params, "seconds");
    return NULL;
}

static int test_sleep(const warren_call *call, json_t *params, json_t **result, warren_error *err)
{
    json_t *arg = seconds_param(params);
    struct timespec left;
    double secs;

    (void)call;
    if (!json_is_number(arg))
        return warren_error_set(err, WARREN_ERR_INVALID_PARAMS,
                                "test.sleep: expected [seconds] or {\"seconds\": n}, a number");
    secs = json_number_value(arg);
    if (!(secs >= 0 && secs <= MAX_SLEEP))
        return warren_error_set(err, WARREN_ERR_INVALID_PARAMS,
                                "test.sleep: seconds must be from 0 to %.0f", MAX_SLEEP);

    left.tv_sec = (time_t)secs;
    left.tv_nsec = (long)((secs - (double)left.tv_sec) * 1e9);
    /* A signal (the worker's own timers, a debugger) must not cut the
     * sleep short: a test that asks for 5 s relies on getting 5 s.
     * nanosleep() leaves what remains in LEFT, so just go again. */
    while (nanosleep(&left, &left) != 0)
        if (errno != EINTR)
            return warren_error_set(err, WARREN_ERR_INTERNAL, "test.sleep: nanosleep failed");

    *result = json_incref(arg);
    return 0;
}

static int test_fail(const warren_call *call, json_t *params, json_t **result, warren_error *err)
{
    (void)call;
    (void)result;
    warren_error_set(err, 1001, "test.fail: failure requested");
    /* data is a new reference that warren takes over. */
    err->data = params ? json_incref(params) : json_null();
    return -1;
}

/*
 * Die the way a buggy handler dies.  raise(SIGSEGV) rather than a write
 * through a NULL pointer: the write is undefined behaviour, which the
 * compiler may turn into anything (or sanitizers into an exit(1)), while
 * raise() is a well-defined SIGSEGV that runs whatever handler the worker
 * has installed, as a real fault would.  SIGSEGV is unblocked first (a
 * blocked raise() would just return), and if some handler returns
 * anyway, the default action is restored and the signal raised again;
 * abort() is the last resort so this never returns.
 */
static int test_crash(const warren_call *call, json_t *params, json_t **result, warren_error *err)
{
    sigset_t segv;

    (void)call;
    (void)params;
    (void)result;
    (void)err;
    sigemptyset(&segv);
    sigaddset(&segv, SIGSEGV);
    pthread_sigmask(SIG_UNBLOCK, &segv, NULL);
    raise(SIGSEGV);
    signal(SIGSEGV, SIG_DFL);
    raise(SIGSEGV);
    abort();
}

static int test_init(const warren_host *host, void **state, warren_error *err)
{
    const char *failures = host->config_get(host, "temporary_init_failures");
    const char *path = host->config_get(host, "counter_file");
    long want = failures ? strtol(failures, NULL, 10) : 0, done = 0;
    int written;
    FILE *f;

    *state = NULL;
    if (want <= 0)
        return 0;
    if (!path)
        return warren_error_set(err, WARREN_ERR_INTERNAL,
                                "temporary_init_failures needs counter_file");
    f = fopen(path, "r");
    if (f) {
        if (fscanf(f, "%ld", &done) != 1)
            done = 0;
        fclose(f);
    }
    if (done >= want)
        return 0;
    f = fopen(path, "w");
    if (!f)
        return warren_error_set(err, WARREN_ERR_INTERNAL, "cannot write %s", path);
    written = fprintf(f, "%ld\n", done + 1) > 0;
    if (fclose(f) != 0 || !written)
        return warren_error_set(err, WARREN_ERR_INTERNAL, "cannot write %s", path);
    return warren_error_set(err, WARREN_ERR_TEMPORARY, "temporary failure %ld of %ld requested",
                            done + 1, want);
}

/* test.first: returns its first param (for checking how a route sends a
 * string result). */
static int test_first(const warren_call *call, json_t *params, json_t **result, warren_error *err)
{
    (void)call;
    (void)err;
    *result = json_incref(json_array_get(params, 0));
    return 0;
}

/* TEXT (LEN bytes) as a JSON string, or as "hex:..." when it is not UTF-8
 * (an AMQP 1.0 uuid correlation id arrives as 16 raw bytes); null for
 * NULL. */
static json_t *text_or_hex(const char *text, size_t len)
{
    json_t *s;
    char *hex;

    if (!text)
        return json_null();
    if ((s = json_stringn(text, len)))
        return s;
    hex = malloc(4 + 2 * len + 1);
    if (!hex)
        return NULL;
    memcpy(hex, "hex:", 4);
    for (size_t i = 0; i < len; i++)
        snprintf(hex + 4 + 2 * i, 3, "%02x", (unsigned char)text[i]);
    s = json_string(hex);
    free(hex);
    return s;
}

static json_t *cstr(const char *s)
{
    return text_or_hex(s, s ? strlen(s) : 0);
}

/* test.message: what the call knows of its AMQP message (ABI 1.1). */
static int test_message(const warren_call *call, json_t *params, json_t **result, warren_error *err)
{
    const warren_message *m = call->message;
    (void)params;

    if (!m)
        return warren_error_set(err, WARREN_ERR_INTERNAL, "no message (ABI 1.0 host?)");
    *result = json_pack("{s:o, s:o, s:o, s:o, s:o, s:b, s:O?}", "route", cstr(m->route), "body",
                        text_or_hex(m->body, m->body_len), "content_type", cstr(m->content_type),
                        "reply_to", cstr(m->reply_to), "correlation_id", cstr(m->correlation_id),
                        "redelivered", m->redelivered, "headers", m->headers);
    return *result ? 0 : warren_error_set(err, WARREN_ERR_INTERNAL, "out of memory");
}

/* test.touch: leave a mark that this call ran (one line per call). */
static int test_touch(const warren_call *call, json_t *params, json_t **result, warren_error *err)
{
    const char *path = json_string_value(json_array_get(params, 0));
    FILE *f;

    (void)call;
    if (!path || !*path)
        return warren_error_set(err, WARREN_ERR_INVALID_PARAMS, "test.touch: expected [path]");
    f = fopen(path, "a");
    if (!f)
        return warren_error_set(err, WARREN_ERR_INTERNAL, "test.touch: %s: %s", path,
                                strerror(errno));
    fputs("ran\n", f);
    if (fclose(f) != 0)
        return warren_error_set(err, WARREN_ERR_INTERNAL, "test.touch: %s: %s", path,
                                strerror(errno));
    *result = json_incref(json_array_get(params, 0));
    return 0;
}

static const warren_method test_methods[] = {
    {.name = "test.sleep", .handler = test_sleep, .summary = "sleep [seconds] (0..3600)"},
    {.name = "test.fail", .handler = test_fail, .summary = "fail with code 1001"},
    {.name = "test.crash", .handler = test_crash, .summary = "crash the worker with SIGSEGV"},
    {.name = "test.first", .handler = test_first, .summary = "return the first param"},
    {.name = "test.message", .handler = test_message, .summary = "describe the AMQP message"},
    {.name = "test.touch", .handler = test_touch, .summary = "append a line to a file [path]"},
    {0},
};

WARREN_PLUGIN_DEFINE(.name = "test", .version = "1.0", .init = test_init, .methods = test_methods);
