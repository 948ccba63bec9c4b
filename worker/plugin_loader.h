/*
 * The plugin loader: dlopen()s handler plugins, checks each descriptor
 * before trusting it, runs init(), and builds the method table the worker
 * dispatches from.  Only workers and `warren --check` load plugins; the
 * supervisor never does, so a plugin bug cannot take it down.
 */
#ifndef WR_PLUGIN_LOADER_H
#define WR_PLUGIN_LOADER_H

#include <stddef.h>

#include "common/diag.h"
#include "config/config.h"
#include "warren/plugin.h"

typedef struct wr_plugins wr_plugins; /* opaque */

/* One entry of the method table. */
typedef struct wr_method_ref {
    const warren_method *method; /* borrowed from the plugin */
    warren_call call;            /* ready to hand to method->handler */
} wr_method_ref;

/*
 * Load NAMES (plugin N is DIR/N.so), check each, call each init() with its
 * [plugin N] section from CFG (which may be NULL), in order.
 * Refused, each with a message naming the file: a missing or unreadable
 * file, a file that is group- or world-writable, a dlopen() error, a
 * missing `warren_plugin` symbol, a bad magic, an ABI major other than
 * ours (both versions named), a descriptor smaller than ours needs, a
 * plugin without methods, a method without a name or handler, a method
 * name already taken by another plugin, an init() failure.
 * Every listed plugin is checked (and each problem reported) before any
 * init() runs; init() runs only when all passed.  The [plugin N] values
 * are copied, so CFG need not outlive the call.
 * On success return 0 and set *out (free with wr_plugins_unload).  On
 * failure return -1, or WR_PLUGINS_TEMPORARY when all checks passed and
 * the init() that failed put WARREN_ERR_TEMPORARY in err->code (worth
 * retrying later, unlike everything else), set *out to NULL, with
 * messages in DIAG, each
 * starting "plugin N: "; everything loaded so far has been finalized and
 * dlclose()d.
 */
#define WR_PLUGINS_TEMPORARY (-2) /* an init() said WARREN_ERR_TEMPORARY */

int wr_plugins_load(wr_plugins **out, const char *dir, char *const *names, size_t nnames,
                    const wr_config *cfg, wr_diag *diag) __attribute__((warn_unused_result));

/* The method named NAME, or NULL.  Borrowed; valid until unload. */
const wr_method_ref *wr_plugins_find(const wr_plugins *p, const char *name);

/* Number of methods, and the i-th one in name order (for listings), or
 * NULL past the end.  Borrowed; valid until unload. */
size_t wr_plugins_method_count(const wr_plugins *p);
const wr_method_ref *wr_plugins_method_at(const wr_plugins *p, size_t i);

/* Number of loaded plugins, and the i-th one's name (as listed) and
 * version, in load order.  Borrowed; valid until unload.  NULL P: none. */
size_t wr_plugins_count(const wr_plugins *p);
const char *wr_plugins_name_at(const wr_plugins *p, size_t i);
const char *wr_plugins_version_at(const wr_plugins *p, size_t i);

/* Call every fini() in reverse load order, dlclose() all, free P.  NULL ok. */
void wr_plugins_unload(wr_plugins *p);

#endif
