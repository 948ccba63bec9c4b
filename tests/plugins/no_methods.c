/*
 * Test plugin "no_methods": a descriptor that forgot `.methods =`, so the
 * table is NULL.  A plugin nobody can call is a configuration mistake the
 * loader reports rather than loading silently.
 */
#include <warren/plugin.h>

WARREN_PLUGIN_DEFINE(.name = "no_methods", .version = "1.0");
