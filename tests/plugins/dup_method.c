/*
 * Test plugin "dup_method": a valid plugin whose method is named "echo",
 * so loading it beside plugins/echo must be refused, naming both plugins.
 */
#include <warren/plugin.h>

static int not_echo(const warren_call *call, json_t *params, json_t **result, warren_error *err)
{
    (void)call;
    (void)params;
    (void)err;
    *result = json_string("not the real echo");
    return 0;
}

static const warren_method dup_methods[] = {
    {.name = "echo", .handler = not_echo},
    {0},
};

WARREN_PLUGIN_DEFINE(.name = "dup_method", .version = "1.0", .methods = dup_methods);
