/*
 * Test plugin "no_symbol": a complete descriptor that is not exported, the
 * mistake of declaring it without WARREN_PLUGIN_DEFINE's export attribute
 * in a library built with -fvisibility=hidden.  dlsym() cannot see it.
 */
#include <warren/plugin.h>

static int no_symbol_x(const warren_call *call, json_t *params, json_t **result, warren_error *err)
{
    (void)call;
    (void)params;
    (void)err;
    *result = NULL;
    return 0;
}

static const warren_method no_symbol_methods[] = {
    {.name = "no_symbol.x", .handler = no_symbol_x},
    {0},
};

__attribute__((visibility("hidden"))) const struct warren_plugin warren_plugin = {
    .magic = WARREN_PLUGIN_MAGIC,
    .abi_major = WARREN_PLUGIN_ABI_MAJOR,
    .abi_minor = WARREN_PLUGIN_ABI_MINOR,
    .size = sizeof(struct warren_plugin),
    .name = "no_symbol",
    .version = "1.0",
    .methods = no_symbol_methods,
};
