/*
 * The echo plugin: method "echo" returns its params unchanged.  The
 * smallest useful plugin, and the one the integration tests and
 * `warren-call` smoke checks lean on, so it does nothing clever.
 */
#include <warren/plugin.h>

/* params is borrowed; the result must be a new reference, hence incref.
 * No params at all answers null. */
static int echo(const warren_call *call, json_t *params, json_t **result, warren_error *err)
{
    (void)call;
    (void)err;
    *result = json_incref(params);
    return 0;
}

static const warren_method echo_methods[] = {
    {.name = "echo", .handler = echo, .summary = "return the params unchanged"},
    {0},
};

WARREN_PLUGIN_DEFINE(.name = "echo", .version = "1.0", .methods = echo_methods);
