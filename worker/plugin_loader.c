/*
 * The plugin loader (see plugin_loader.h).
 *
 * Loading runs in two passes.  The first opens every listed plugin and
 * checks it, without running any of its code: file mode, dlopen(), the
 * descriptor (magic first, then ABI major, size, name, methods) and
 * method names against the plugins already accepted.  It goes on past a
 * failure so that one `warren --check` reports every bad plugin at once.
 * Only when all of them passed does the second pass call the init()s, in
 * order: an init may open connections or files, which is pointless work
 * (and possibly harm) when the worker is about to refuse to start anyway.
 *
 * Every plugin is known by the name it is listed under in the config: it
 * names the file (DIR/NAME.so), the [plugin NAME] section, and starts
 * every message ("plugin NAME: ...").  The descriptor's own name is only
 * required to be present.
 *
 * Out of memory aborts, as in diag.c: it is not a user error, and the
 * loader runs once at worker start where there is nothing to fall back to.
 */
#include "worker/plugin_loader.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/xalloc.h"

/* The descriptor must reach at least to the last field this loader reads;
 * a later minor version may make it longer, never shorter. */
#define DESCRIPTOR_MIN_SIZE                                                                        \
    (offsetof(struct warren_plugin, methods) + sizeof(((struct warren_plugin *)0)->methods))

/* The size of a warren_method in ABI 1.0, what a method_size of 0 means. */
#define METHOD_SIZE_1_0 (offsetof(warren_method, summary) + sizeof(const char *))

/*
 * The I-th entry of D's method table.  Entries are METHOD_SIZE apart as the
 * plugin was built, not sizeof(warren_method) as we were: a plugin built
 * for a later minor version may have longer entries.
 */
static const warren_method *method_at(const struct warren_plugin *d, size_t i)
{
    size_t stride = d->abi_minor >= 1 && d->method_size ? d->method_size : METHOD_SIZE_1_0;
    return (const warren_method *)(const void *)((const char *)d->methods + i * stride);
}

/* Loop over every method of descriptor D, as M. */
#define EACH_METHOD(d, i, m) for (size_t i = 0; (m = method_at((d), i))->name; i++)

struct plugin {
    char *name;                       /* as listed in the config; owned */
    char *path;                       /* DIR/NAME.so; owned */
    void *dl;                         /* dlopen() handle */
    const struct warren_plugin *desc; /* inside the loaded object */
    warren_host host;                 /* handed to init, fini and every call */
    void *state;                      /* what init() stored */
    int inited;                       /* init() ran and succeeded: fini() is owed */
    wr_kv *items;                     /* copy of the [plugin NAME] section; owned */
    size_t nitems;
};

struct wr_plugins {
    /* Fixed capacity (one slot per listed name), never reallocated: each
     * plugin keeps a pointer to its warren_host, which lives in here. */
    struct plugin *plugins;
    size_t n;
    wr_method_ref *methods; /* sorted by name for bsearch; owned */
    size_t nmethods;
};

/* ---- services offered to plugins (warren_host) ------------------------ */

static void host_log(const warren_host *host, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void host_log(const warren_host *host, int level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* WARREN_LOG_* and WR_LOG_* share their numbers; clamp what a plugin
     * may have made up. */
    if (level < WR_LOG_ERROR)
        level = WR_LOG_ERROR;
    if (level > WR_LOG_DEBUG)
        level = WR_LOG_DEBUG;
    wr_log_fields(level, WR_LOG_FIELDS(WR_LOG_STR("plugin", host->plugin_name)), "plugin %s: %s",
                  host->plugin_name, msg);
}

/* Borrowed from the plugin's copy of its section; valid until unload, so
 * also inside fini().  When a key repeats, the last one wins, as later
 * lines and command-line overrides do in the config. */
static const char *host_config_get(const warren_host *host, const char *key)
{
    const struct plugin *pl = host->host_private;
    const char *value = NULL;

    if (!key)
        return NULL;
    for (size_t i = 0; i < pl->nitems; i++)
        if (strcmp(pl->items[i].key, key) == 0)
            value = pl->items[i].value;
    return value;
}

/*
 * Copy the [plugin NAME] section(s) of CFG into PL, so the values a plugin
 * is handed stay valid however long the caller keeps CFG.  Looked up here
 * rather than with wr_config_plugin_section() so that every section with
 * that name counts, in file order, should the parser ever keep several.
 */
static void copy_section(struct plugin *pl, const wr_config *cfg)
{
    size_t n = 0;

    if (!cfg)
        return;
    for (size_t s = 0; s < cfg->nplugin_sections; s++)
        if (strcmp(cfg->plugin_sections[s].name, pl->name) == 0)
            n += cfg->plugin_sections[s].nitems;
    if (n == 0)
        return;
    pl->items = wr_xcalloc(n, sizeof *pl->items);
    for (size_t s = 0; s < cfg->nplugin_sections; s++) {
        const wr_plugin_section *sec = &cfg->plugin_sections[s];
        if (strcmp(sec->name, pl->name) != 0)
            continue;
        for (size_t i = 0; i < sec->nitems; i++) {
            wr_kv *kv = &pl->items[pl->nitems++];
            kv->key = wr_xstrdup(sec->items[i].key);
            kv->value = wr_xstrdup(sec->items[i].value);
            kv->line = sec->items[i].line;
        }
    }
}

/* ---- opening and checking one plugin ---------------------------------- */

/* Release everything PL holds (no fini: the caller decides that), leaving
 * it zeroed.  Safe on a partly opened plugin. */
static void close_plugin(struct plugin *pl)
{
    if (pl->dl)
        dlclose(pl->dl);
    for (size_t i = 0; i < pl->nitems; i++) {
        free(pl->items[i].key);
        free(pl->items[i].value);
    }
    free(pl->items);
    free(pl->path);
    free(pl->name);
    memset(pl, 0, sizeof *pl);
}

/*
 * Check the descriptor D of plugin NAME.  The magic comes first: until it
 * matches, D may be any data that happens to be called warren_plugin, and
 * no other field means anything.  The ABI major next, because a different
 * major may lay out everything after the header differently.
 * Returns 0, or -1 with every problem found in DIAG.
 */
static int check_descriptor(const char *name, const struct warren_plugin *d, wr_diag *diag)
{
    int bad = 0;

    if (d->magic != WARREN_PLUGIN_MAGIC) {
        wr_diag_add(diag,
                    "plugin %s: its warren_plugin symbol is not a warren plugin descriptor "
                    "(bad magic 0x%08x)",
                    name, (unsigned)d->magic);
        return -1;
    }
    if (d->abi_major != WARREN_PLUGIN_ABI_MAJOR) {
        wr_diag_add(diag, "plugin %s: built for plugin ABI %u.%u, warren supports %d.x", name,
                    (unsigned)d->abi_major, (unsigned)d->abi_minor, WARREN_PLUGIN_ABI_MAJOR);
        return -1;
    }
    /* A newer minor may rely on services we do not offer: refuse it
     * rather than let it find out at its first call. */
    if (d->abi_minor > WARREN_PLUGIN_ABI_MINOR) {
        wr_diag_add(diag,
                    "plugin %s: built for plugin ABI %u.%u, newer than this warren's %d.%d "
                    "(rebuild it against this warren's <warren/plugin.h>, or upgrade warren)",
                    name, (unsigned)d->abi_major, (unsigned)d->abi_minor, WARREN_PLUGIN_ABI_MAJOR,
                    WARREN_PLUGIN_ABI_MINOR);
        return -1;
    }
    if (d->size < DESCRIPTOR_MIN_SIZE) {
        wr_diag_add(diag, "plugin %s: descriptor is %u bytes, warren needs at least %zu", name,
                    (unsigned)d->size, (size_t)DESCRIPTOR_MIN_SIZE);
        return -1;
    }
    if (!d->name) {
        wr_diag_add(diag, "plugin %s: descriptor has no name", name);
        bad = 1;
    }
    if (d->abi_minor >= 1 && d->method_size && d->method_size < METHOD_SIZE_1_0) {
        wr_diag_add(diag, "plugin %s: method_size is %u bytes, warren needs at least %zu", name,
                    (unsigned)d->method_size, (size_t)METHOD_SIZE_1_0);
        return -1;
    }
    if (!d->methods || !method_at(d, 0)->name) {
        wr_diag_add(diag, "plugin %s: has no methods", name);
        return -1;
    }
    const warren_method *m;
    EACH_METHOD(d, i, m)
    {
        if (!*m->name) {
            wr_diag_add(diag, "plugin %s: method #%zu has an empty name", name, i + 1);
            bad = 1;
            continue;
        }
        if (!m->handler) {
            wr_diag_add(diag, "plugin %s: method \"%s\" has no handler", name, m->name);
            bad = 1;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(method_at(d, j)->name, m->name) == 0) {
                wr_diag_add(diag, "plugin %s: method \"%s\" is defined twice", name, m->name);
                bad = 1;
                break;
            }
        }
    }
    return bad ? -1 : 0;
}

/* Refuse methods of PL that an accepted plugin of P already provides. */
static int check_unique(const wr_plugins *p, const struct plugin *pl, wr_diag *diag)
{
    int bad = 0;

    const warren_method *m, *o;

    EACH_METHOD(pl->desc, i, m)
    {
        for (size_t j = 0; j < p->n; j++) {
            const struct plugin *other = &p->plugins[j];
            EACH_METHOD(other->desc, k, o)
            {
                if (strcmp(o->name, m->name) == 0) {
                    wr_diag_add(diag, "plugin %s: method \"%s\" is already provided by plugin %s",
                                pl->name, m->name, other->name);
                    bad = 1;
                }
            }
        }
    }
    return bad ? -1 : 0;
}

/*
 * Open DIR/NAME.so into PL and check its descriptor; no plugin code runs.
 * Returns 0, or -1 with messages in DIAG and PL closed (dlclose()d when
 * it got that far).
 *
 * The mode check uses stat() before dlopen(): someone who can swap the
 * file between the two can also write to the plugin directory, which the
 * mode check of a file cannot protect against anyway.  stat() follows
 * symlinks, so a link is judged by the file it points to.
 */
static int open_plugin(struct plugin *pl, const char *dir, const char *name, wr_diag *diag)
{
    struct stat st;
    const struct warren_plugin *d;

    memset(pl, 0, sizeof *pl);
    if (!*name || strchr(name, '/')) {
        /* It would name a file outside DIR. */
        wr_diag_add(diag, "plugin %s: a plugin name must be non-empty and without '/'", name);
        return -1;
    }
    pl->name = wr_xstrdup(name);
    if (asprintf(&pl->path, "%s/%s.so", dir, name) < 0)
        abort();

    if (stat(pl->path, &st) != 0) {
        wr_diag_add(diag, "plugin %s: %s: %s", name, pl->path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        wr_diag_add(diag, "plugin %s: %s is not a regular file", name, pl->path);
        goto fail;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        wr_diag_add(diag,
                    "plugin %s: %s is group- or world-writable (mode %04o); refusing to load it",
                    name, pl->path, (unsigned)(st.st_mode & 07777));
        goto fail;
    }

    pl->dl = dlopen(pl->path, RTLD_NOW | RTLD_LOCAL);
    if (!pl->dl) {
        wr_diag_add(diag, "plugin %s: cannot load it: %s", name, dlerror());
        goto fail;
    }
    d = dlsym(pl->dl, WARREN_PLUGIN_SYMBOL);
    if (!d) {
        wr_diag_add(diag,
                    "plugin %s: %s does not export the symbol " WARREN_PLUGIN_SYMBOL
                    " (was it built with WARREN_PLUGIN_DEFINE?)",
                    name, pl->path);
        goto fail;
    }
    if (check_descriptor(name, d, diag) != 0)
        goto fail;
    pl->desc = d;
    return 0;

fail:
    close_plugin(pl);
    return -1;
}

/* ---- the loaded set ----------------------------------------------------- */

static int compare_refs(const void *a, const void *b)
{
    const wr_method_ref *x = a, *y = b;
    return strcmp(x->method->name, y->method->name);
}

static int compare_key(const void *key, const void *elem)
{
    const wr_method_ref *ref = elem;
    return strcmp(key, ref->method->name);
}

/* Build P's sorted method table; runs after init() so each call carries
 * the state its plugin stored. */
static void build_method_table(wr_plugins *p)
{
    size_t n = 0;

    for (size_t i = 0; i < p->n; i++)
        for (size_t k = 0; method_at(p->plugins[i].desc, k)->name; k++)
            n++;
    p->methods = wr_xcalloc(n, sizeof *p->methods);
    for (size_t i = 0; i < p->n; i++) {
        struct plugin *pl = &p->plugins[i];
        const warren_method *m;
        EACH_METHOD(pl->desc, k, m)
        {
            wr_method_ref *ref = &p->methods[p->nmethods++];
            ref->method = m;
            ref->call.host = &pl->host;
            ref->call.state = pl->state;
            ref->call.method = m->name;
        }
    }
    qsort(p->methods, p->nmethods, sizeof *p->methods, compare_refs);
}

/* Run PL's init(); a failure is reported with the plugin's own message.
 * Returns 0, -1, or WR_PLUGINS_TEMPORARY when the plugin said so. */
static int init_plugin(struct plugin *pl, wr_diag *diag)
{
    warren_error err;

    if (pl->desc->init) {
        memset(&err, 0, sizeof err);
        if (pl->desc->init(&pl->host, &pl->state, &err) != 0) {
            int temporary = err.code == WARREN_ERR_TEMPORARY;
            err.message[sizeof err.message - 1] = '\0';
            wr_diag_add(diag, "plugin %s: init failed%s: %s", pl->name,
                        temporary ? " temporarily" : "",
                        err.message[0] ? err.message : "(no message)");
            json_decref(err.data); /* ours by the SDK's contract */
            pl->state = NULL;
            return temporary ? WR_PLUGINS_TEMPORARY : -1;
        }
    }
    pl->inited = 1;
    wr_debug("plugin %s: version %s loaded from %s", pl->name,
             pl->desc->version ? pl->desc->version : "?", pl->path);
    return 0;
}

int wr_plugins_load(wr_plugins **out, const char *dir, char *const *names, size_t nnames,
                    const wr_config *cfg, wr_diag *diag)
{
    wr_plugins *p = wr_xcalloc(1, sizeof *p);
    int failed = 0, rc = -1;

    *out = NULL;
    p->plugins = wr_xcalloc(nnames, sizeof *p->plugins);

    /* Pass 1: open and check all, reporting every problem. */
    for (size_t i = 0; i < nnames; i++) {
        struct plugin *pl = &p->plugins[p->n];
        int listed_twice = 0;

        for (size_t j = 0; j < i; j++)
            listed_twice |= strcmp(names[j], names[i]) == 0;
        if (listed_twice) {
            wr_diag_add(diag, "plugin %s: listed more than once", names[i]);
            failed = 1;
            continue;
        }
        if (open_plugin(pl, dir, names[i], diag) != 0) {
            failed = 1;
            continue;
        }
        if (check_unique(p, pl, diag) != 0) {
            close_plugin(pl);
            failed = 1;
            continue;
        }
        pl->host.size = sizeof pl->host;
        pl->host.plugin_name = pl->name;
        pl->host.log = host_log;
        pl->host.config_get = host_config_get;
        pl->host.host_private = pl;
        copy_section(pl, cfg);
        p->n++;
    }
    if (failed)
        goto fail;

    /* Pass 2: init in load order; the first failure stops the load. */
    for (size_t i = 0; i < p->n; i++)
        if ((rc = init_plugin(&p->plugins[i], diag)) != 0)
            goto fail;

    build_method_table(p);
    *out = p;
    return 0;

fail:
    /* fini()s whatever init()ed, in reverse, and dlclose()s the rest. */
    wr_plugins_unload(p);
    return rc;
}

const wr_method_ref *wr_plugins_find(const wr_plugins *p, const char *name)
{
    if (!p || !name)
        return NULL;
    return bsearch(name, p->methods, p->nmethods, sizeof *p->methods, compare_key);
}

size_t wr_plugins_method_count(const wr_plugins *p)
{
    return p ? p->nmethods : 0;
}

const wr_method_ref *wr_plugins_method_at(const wr_plugins *p, size_t i)
{
    if (!p || i >= p->nmethods)
        return NULL;
    return &p->methods[i];
}

size_t wr_plugins_count(const wr_plugins *p)
{
    return p ? p->n : 0;
}

const char *wr_plugins_name_at(const wr_plugins *p, size_t i)
{
    return p && i < p->n ? p->plugins[i].name : NULL;
}

const char *wr_plugins_version_at(const wr_plugins *p, size_t i)
{
    if (!p || i >= p->n)
        return NULL;
    return p->plugins[i].desc->version ? p->plugins[i].desc->version : "";
}

void wr_plugins_unload(wr_plugins *p)
{
    if (!p)
        return;
    for (size_t i = p->n; i-- > 0;) {
        struct plugin *pl = &p->plugins[i];
        if (pl->inited && pl->desc->fini)
            pl->desc->fini(&pl->host, pl->state);
        close_plugin(pl);
    }
    free(p->methods);
    free(p->plugins);
    free(p);
}
