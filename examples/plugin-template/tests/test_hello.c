/*
 * Tests of the hello plugin, without a broker: each one runs
 *   warren plugin-call [--set KEY=VALUE]... hello.so METHOD PARAMS_JSON
 * which loads hello.so the way a warren worker does (ABI check, init()
 * with those settings), makes one call and prints {"result": ...} or
 * {"error": {...}} on stdout.  plugin_call() below is all the glue a test
 * needs; copy it with the template.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* What one plugin-call run did. */
struct outcome {
    int status;     /* its exit status: 0 result, 1 error, 78 refused or init failed */
    json_t *result; /* new reference, or NULL */
    json_t *error;  /* {"code", "message"[, "data"]}: new reference, or NULL */
};

/*
 * Run `warren plugin-call SETS... PLUGIN_SO METHOD PARAMS` (SETS: a
 * NULL-ended list of "KEY=VALUE", or NULL) and read what it printed.
 * No shell is involved, so PARAMS needs no quoting.
 */
static struct outcome plugin_call(const char *const *sets, const char *method, const char *params)
{
    const char *argv[32];
    int n = 0, fds[2], wstatus;
    struct outcome o = {.status = -1};
    char buf[65536];
    size_t len = 0;
    ssize_t got;
    pid_t pid;

    argv[n++] = WARREN_BIN;
    argv[n++] = "plugin-call";
    for (size_t i = 0; sets && sets[i] && n < 24; i++) {
        argv[n++] = "--set";
        argv[n++] = sets[i];
    }
    argv[n++] = PLUGIN_SO;
    argv[n++] = method;
    if (params)
        argv[n++] = params;
    argv[n] = NULL;

    cr_assert_eq(pipe(fds), 0);
    pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], (char *const *)argv);
        perror(argv[0]);
        _exit(127);
    }
    close(fds[1]);
    while (len < sizeof buf - 1 && (got = read(fds[0], buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)got;
    close(fds[0]);
    buf[len] = '\0';
    cr_assert_eq(waitpid(pid, &wstatus, 0), pid);
    cr_assert(WIFEXITED(wstatus), "plugin-call died (signal %d)", WTERMSIG(wstatus));
    o.status = WEXITSTATUS(wstatus);
    if (len > 0) {
        json_error_t jerr;
        json_t *out = json_loads(buf, 0, &jerr);

        cr_assert_not_null(out, "plugin-call printed no JSON: %s (%s)", buf, jerr.text);
        o.result = json_incref(json_object_get(out, "result"));
        o.error = json_incref(json_object_get(out, "error"));
        json_decref(out);
    }
    return o;
}

static void outcome_free(struct outcome *o)
{
    json_decref(o->result);
    json_decref(o->error);
}

Test(hello, greets_with_the_default_greeting)
{
    struct outcome o = plugin_call(NULL, "hello.greet", "[\"Ada\"]");

    cr_assert_eq(o.status, 0);
    cr_assert_str_eq(json_string_value(o.result), "Hello, Ada!");
    outcome_free(&o);
}

Test(hello, greets_with_the_configured_greeting)
{
    const char *sets[] = {"greeting=Hi", NULL};
    struct outcome o = plugin_call(sets, "hello.greet", "[\"Ada\"]");

    cr_assert_eq(o.status, 0);
    cr_assert_str_eq(json_string_value(o.result), "Hi, Ada!");
    outcome_free(&o);
}

Test(hello, greet_without_a_name_is_invalid_params)
{
    struct outcome o = plugin_call(NULL, "hello.greet", "[]");

    cr_assert_eq(o.status, 1);
    cr_assert_eq(json_integer_value(json_object_get(o.error, "code")), -32602);
    outcome_free(&o);
}

Test(hello, adds_integers_and_reals)
{
    struct outcome o = plugin_call(NULL, "hello.add", "[1, 2, 39]");

    cr_assert_eq(o.status, 0);
    cr_assert(json_is_integer(o.result));
    cr_assert_eq(json_integer_value(o.result), 42);
    outcome_free(&o);

    o = plugin_call(NULL, "hello.add", "[0.5, 1]");
    cr_assert_eq(o.status, 0);
    cr_assert_float_eq(json_real_value(o.result), 1.5, 1e-9);
    outcome_free(&o);
}

Test(hello, add_names_the_bad_param_in_the_error_data)
{
    struct outcome o = plugin_call(NULL, "hello.add", "[1, \"two\"]");

    cr_assert_eq(o.status, 1);
    cr_assert_eq(json_integer_value(json_object_get(o.error, "code")), -32602);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(o.error, "data"), "index")), 1);
    outcome_free(&o);
}

Test(hello, a_method_it_lacks_is_method_not_found)
{
    struct outcome o = plugin_call(NULL, "hello.nope", "[]");

    cr_assert_eq(o.status, 1);
    cr_assert_eq(json_integer_value(json_object_get(o.error, "code")), -32601);
    outcome_free(&o);
}

Test(hello, a_too_long_greeting_stops_it_at_init)
{
    char set[128] = "greeting=";
    const char *sets[] = {set, NULL};
    struct outcome o;

    memset(set + strlen(set), 'x', 80);
    o = plugin_call(sets, "hello.greet", "[\"Ada\"]");
    /* 78: warren would refuse to start; nothing was called. */
    cr_assert_eq(o.status, 78);
    cr_assert_null(o.result);
    outcome_free(&o);
}
