/*
 * Test plugin "abi_1_0": a plugin built for plugin ABI 1.0, before
 * warren_call.message and method_size: minor 0, the reserved fields (where
 * 1.1 keeps method_size) zero.  Written out by hand, as WARREN_PLUGIN_DEFINE
 * stamps the current version.  Its method says whether it saw a message.
 */
#include <warren/plugin.h>

static int old_hello(const warren_call *call, json_t *params, json_t **result, warren_error *err)
{
    (void)params;
    (void)err;
    *result = json_pack("{s:s}", "method", call->method);
    return 0;
}

static int old_bye(const warren_call *call, json_t *params, json_t **result, warren_error *err)
{
    (void)call;
    (void)params;
    (void)err;
    *result = json_string("bye");
    return 0;
}

static const warren_method old_methods[] = {
    {.name = "old.hello", .handler = old_hello, .summary = "1.0 method"},
    {.name = "old.bye", .handler = old_bye},
    {0},
};

WARREN_PLUGIN_EXPORT const struct warren_plugin warren_plugin = {
    .magic = WARREN_PLUGIN_MAGIC,
    .abi_major = 1,
    .abi_minor = 0,
    .size = sizeof(struct warren_plugin),
    .name = "abi_1_0",
    .version = "0.9",
    .methods = old_methods,
};
