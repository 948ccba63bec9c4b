/*
 * hello: a warren handler plugin to start from.  Copy this directory, rename
 * "hello" throughout, and replace the two methods with yours.
 *
 *   hello.greet ["NAME"]       -> "GREETING, NAME!"  (greeting from the config)
 *   hello.add   [N, N, ...]    -> the sum of the numbers
 *
 * Its config section, read once by init():
 *   [plugin hello]
 *   greeting = Hi              (default "Hello"; at most 63 bytes)
 */
#include <stdlib.h>
#include <string.h>
#include <warren/plugin.h>

/* Per-process state, made by init() and handed to every call. */
struct hello {
    char greeting[64];
};

/* Read the config once, here, so that a bad value stops warren at start
 * (and `warren --check` reports it) instead of failing every call. */
static int hello_init(const warren_host *host, void **state, warren_error *err)
{
    const char *greeting = host->config_get(host, "greeting");
    struct hello *h;

    if (!greeting)
        greeting = "Hello";
    if (strlen(greeting) >= sizeof h->greeting)
        return warren_error_set(err, WARREN_ERR_INTERNAL, "greeting: at most %zu bytes, got %zu",
                                sizeof h->greeting - 1, strlen(greeting));
    h = calloc(1, sizeof *h);
    if (!h)
        return warren_error_set(err, WARREN_ERR_INTERNAL, "out of memory");
    strcpy(h->greeting, greeting);
    *state = h;
    host->log(host, WARREN_LOG_DEBUG, "greeting is \"%s\"", h->greeting);
    return 0;
}

static void hello_fini(const warren_host *host, void *state)
{
    (void)host;
    free(state);
}

/* params is borrowed; *result must be a new reference (warren takes it). */
static int hello_greet(const warren_call *call, json_t *params, json_t **result, warren_error *err)
{
    const struct hello *h = call->state;
    const char *name = json_string_value(json_array_get(params, 0));

    if (!name || json_array_size(params) != 1)
        return warren_error_set(err, WARREN_ERR_INVALID_PARAMS, "expected [\"name\"]");
    *result = json_sprintf("%s, %s!", h->greeting, name);
    return 0;
}

static int hello_add(const warren_call *call, json_t *params, json_t **result, warren_error *err)
{
    double sum = 0;
    int all_integers = 1;
    size_t i;
    json_t *v;

    (void)call;
    if (!json_is_array(params))
        return warren_error_set(err, WARREN_ERR_INVALID_PARAMS, "expected an array of numbers");
    json_array_foreach(params, i, v)
    {
        if (!json_is_number(v)) {
            /* An error with data: the caller learns which one was wrong. */
            warren_error_set(err, WARREN_ERR_INVALID_PARAMS, "param %zu is not a number", i);
            err->data = json_pack("{s:I}", "index", (json_int_t)i);
            return -1;
        }
        all_integers &= json_is_integer(v);
        sum += json_number_value(v);
    }
    *result = all_integers ? json_integer((json_int_t)sum) : json_real(sum);
    return 0;
}

static const warren_method hello_methods[] = {
    {.name = "hello.greet", .handler = hello_greet, .summary = "greet someone by name"},
    {.name = "hello.add", .handler = hello_add, .summary = "add numbers"},
    {0},
};

WARREN_PLUGIN_DEFINE(.name = "hello", .version = "0.1", .init = hello_init, .fini = hello_fini,
                     .methods = hello_methods);
