/*
 * Test plugin "bad_magic": exports a `warren_plugin` symbol that is not a
 * warren descriptor (wrong magic), as an unrelated library or a corrupt
 * build would.  The loader must refuse it before reading any other field.
 */
#include <warren/plugin.h>

WARREN_PLUGIN_EXPORT const struct warren_plugin warren_plugin = {
    .magic = 0xdeadbeefu,
    .abi_major = WARREN_PLUGIN_ABI_MAJOR,
    .abi_minor = WARREN_PLUGIN_ABI_MINOR,
    .size = sizeof(struct warren_plugin),
    .name = "bad_magic",
    .version = "1.0",
};
