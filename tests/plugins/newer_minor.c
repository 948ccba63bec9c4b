/*
 * Test plugin "newer_minor": built for a later minor version of this ABI
 * major than the host has, so it may count on services the host lacks.
 */
#include <warren/plugin.h>

static int newer_x(const warren_call *call, json_t *params, json_t **result, warren_error *err)
{
    (void)call;
    (void)params;
    (void)err;
    *result = NULL;
    return 0;
}

static const warren_method newer_methods[] = {
    {.name = "newer.x", .handler = newer_x},
    {0},
};

WARREN_PLUGIN_EXPORT const struct warren_plugin warren_plugin = {
    .magic = WARREN_PLUGIN_MAGIC,
    .abi_major = WARREN_PLUGIN_ABI_MAJOR,
    .abi_minor = WARREN_PLUGIN_ABI_MINOR + 1,
    .size = sizeof(struct warren_plugin),
    .name = "newer_minor",
    .version = "1.0",
    .methods = newer_methods,
    .method_size = sizeof(warren_method),
};
