/*
 * Test plugin "bad_abi": claims the next ABI major, as a plugin built
 * against a future warren would.  The descriptor is written out by hand
 * because WARREN_PLUGIN_DEFINE always stamps the current version.
 */
#include <warren/plugin.h>

static int bad_abi_x(const warren_call *call, json_t *params, json_t **result, warren_error *err)
{
    (void)call;
    (void)params;
    (void)err;
    *result = NULL;
    return 0;
}

static const warren_method bad_abi_methods[] = {
    {.name = "bad_abi.x", .handler = bad_abi_x},
    {0},
};

WARREN_PLUGIN_EXPORT const struct warren_plugin warren_plugin = {
    .magic = WARREN_PLUGIN_MAGIC,
    .abi_major = WARREN_PLUGIN_ABI_MAJOR + 1,
    .abi_minor = 0,
    .size = sizeof(struct warren_plugin),
    .name = "bad_abi",
    .version = "1.0",
    .methods = bad_abi_methods,
};
