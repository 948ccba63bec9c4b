/*
 * A plugin built twice, as PLUGIN_BUILD 1 and 2 (tests/plugins/v1 and v2,
 * both named version.so): version.get answers which one is loaded, so a
 * test can replace the file on disk and see the roll pick it up.
 */
#include <warren/plugin.h>

static int version_get(const warren_call *call, json_t *params, json_t **result, warren_error *err)
{
    (void)call;
    (void)params;
    (void)err;
    *result = json_integer(PLUGIN_BUILD);
    return 0;
}

static const warren_method version_methods[] = {
    {.name = "version.get", .handler = version_get, .summary = "which build is loaded"},
    {0},
};

WARREN_PLUGIN_DEFINE(.name = "version", .version = "1.0", .methods = version_methods);
