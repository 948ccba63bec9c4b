/*
 * Test plugin "wide_methods": its method entries are longer than this
 * warren's warren_method, as a plugin built for a later minor version
 * whose methods grew a field would have them (the minor itself is ours:
 * only the stride is under test).  warren must walk the table with the
 * plugin's method_size, not its own sizeof.
 */
#include <warren/plugin.h>

struct wide_method {
    warren_method base;
    const char *added_later; /* a field this warren does not know */
    long more;
};

static int wide(const warren_call *call, json_t *params, json_t **result, warren_error *err)
{
    (void)params;
    (void)err;
    *result = json_string(call->method);
    return 0;
}

static const struct wide_method wide_methods[] = {
    {{.name = "wide.one", .handler = wide}, "x", 1},
    {{.name = "wide.two", .handler = wide}, "y", 2},
    {{.name = "wide.three", .handler = wide}, "z", 3},
    {{0}, NULL, 0},
};

WARREN_PLUGIN_EXPORT const struct warren_plugin warren_plugin = {
    .magic = WARREN_PLUGIN_MAGIC,
    .abi_major = WARREN_PLUGIN_ABI_MAJOR,
    .abi_minor = WARREN_PLUGIN_ABI_MINOR,
    .size = sizeof(struct warren_plugin),
    .name = "wide_methods",
    .version = "1.0",
    .methods = &wide_methods[0].base,
    .method_size = sizeof(struct wide_method),
};
