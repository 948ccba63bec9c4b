/*
 * Test plugin "good": everything a well-behaved plugin does, each in a way
 * the loader test can observe.
 *   init  reads [plugin good] greeting (default "hello") and fini_file,
 *         keeps them in its state, and logs through the host table
 *   good.hello   returns the greeting
 *   good.whoami  returns what the call told it: {"plugin", "method",
 *                "state", "config_now"}: state says whether call->state
 *                is its own, config_now is config_get("greeting") read at
 *                call time (null when unset)
 *   fini  writes "fini GREETING\n" to fini_file when set, frees the state
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <warren/plugin.h>

struct good_state {
    char *greeting;
    char *fini_file; /* NULL: fini writes nothing */
};

static int good_init(const warren_host *host, void **state, warren_error *err)
{
    const char *greeting = host->config_get(host, "greeting");
    const char *fini_file = host->config_get(host, "fini_file");
    struct good_state *st = calloc(1, sizeof *st);

    if (!st)
        return warren_error_set(err, WARREN_ERR_INTERNAL, "out of memory");
    st->greeting = strdup(greeting ? greeting : "hello");
    st->fini_file = fini_file ? strdup(fini_file) : NULL;
    host->log(host, WARREN_LOG_INFO, "greeting is \"%s\"", st->greeting);
    *state = st;
    return 0;
}

static void good_fini(const warren_host *host, void *state)
{
    struct good_state *st = state;
    FILE *f;

    (void)host;
    if (st->fini_file && (f = fopen(st->fini_file, "w"))) {
        fprintf(f, "fini %s\n", st->greeting);
        fclose(f);
    }
    free(st->greeting);
    free(st->fini_file);
    free(st);
}

static int good_hello(const warren_call *call, json_t *params, json_t **result, warren_error *err)
{
    const struct good_state *st = call->state;

    (void)params;
    (void)err;
    *result = json_string(st->greeting);
    return 0;
}

static int good_whoami(const warren_call *call, json_t *params, json_t **result, warren_error *err)
{
    const struct good_state *st = call->state;
    const char *now = call->host->config_get(call->host, "greeting");

    (void)params;
    (void)err;
    *result = json_pack("{s:s,s:s,s:b,s:s?}", "plugin", call->host->plugin_name, "method",
                        call->method, "state", st && st->greeting, "config_now", now);
    return 0;
}

static const warren_method good_methods[] = {
    {.name = "good.hello", .handler = good_hello, .summary = "say the greeting"},
    {.name = "good.whoami", .handler = good_whoami, .summary = "describe the call"},
    {0},
};

WARREN_PLUGIN_DEFINE(.name = "good", .version = "1.2.3", .init = good_init, .fini = good_fini,
                     .methods = good_methods);
