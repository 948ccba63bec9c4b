/*
 * Reloading the config (SIGHUP, `warren reload`).
 *
 * The file is read again with the same -o overrides and checked whole in
 * a short-lived `warren --check` child, which also loads and initialises
 * the plugins: a plugin that crashes on load takes the child down, never
 * the supervisor.  Only then is it parsed here and applied:
 *   - a different pool size (workers, min_workers, max_workers) is applied
 *     at once: new workers are started, or idle ones retire first;
 *   - anything else the workers see (routes, plugins, their config, the
 *     broker), and a plugin's .so or the worker program replaced on disk,
 *     starts a new generation: the workers are rolled, one at a time
 *     (supervisor.c, wr_supervisor_converge);
 *   - [metrics] listen and control_socket take effect at the next start;
 *   - a bad config is logged with FILE:LINE (by the child) and the running
 *     one kept: nothing restarts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/notify.h"
#include "supervisor/supervisor.h"

/* Keys only the supervisor reads: changing them rolls nothing. */
static const char *const supervisor_keys[] = {
    "workers",        "min_workers",      "max_workers", "idle_timeout",    "startup_timeout",
    "control_socket", "shutdown_timeout", "max_rss",     "request_timeout", NULL};

static int supervisor_key(const char *line, size_t len)
{
    for (const char *const *k = supervisor_keys; *k; k++) {
        size_t n = strlen(*k);
        if (len > n + 2 && !strncmp(line, *k, n) && !strncmp(line + n, " = ", 3))
            return 1;
    }
    return 0;
}

/* Append the identity of file PATH (device, inode, size, mtime) to OUT. */
static void file_identity(FILE *out, const char *what, const char *path)
{
    struct stat st;

    if (stat(path, &st) < 0)
        fprintf(out, "%s %s missing\n", what, path);
    else
        fprintf(out, "%s %s %lu %lu %lld %lld.%09ld\n", what, path, (unsigned long)st.st_dev,
                (unsigned long)st.st_ino, (long long)st.st_size, (long long)st.st_mtim.tv_sec,
                st.st_mtim.tv_nsec);
}

/* What workers are started with: the config text without the keys only
 * the supervisor reads ([pool] and [route] sections), the plugin files
 * and the worker program as found on disk now.  malloc'd, or NULL. */
static char *signature(const char *text, const wr_config *cfg, const char *dir, const char *exe)
{
    char *sig = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&sig, &len);
    int ours = 0;    /* in [pool] or a [route] */
    int metrics = 0; /* in [metrics]: the supervisor's alone */

    if (!out)
        return NULL;
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);

        if (n && p[0] == '[') {
            ours = !strncmp(p, "[pool]", 6) || !strncmp(p, "[route ", 7);
            metrics = !strncmp(p, "[metrics]", 9);
        }
        if (!metrics && !(ours && supervisor_key(p, n)))
            fprintf(out, "%.*s\n", (int)n, p);
        p += n + (nl ? 1 : 0);
    }
    for (size_t i = 0; i < cfg->nplugins; i++) {
        char path[4096];

        snprintf(path, sizeof path, "%s/%s.so", dir, cfg->plugins[i]);
        file_identity(out, "plugin", path);
    }
    file_identity(out, "worker", exe);
    if (fclose(out) != 0) {
        free(sig);
        return NULL;
    }
    return sig;
}

/* "rpc,status": the route names, for process titles. */
static char *route_list(const wr_config *cfg)
{
    size_t len = 1;
    char *s;

    for (size_t i = 0; i < cfg->nroutes; i++)
        len += strlen(cfg->routes[i].name) + 1;
    s = calloc(1, len);
    if (!s)
        return NULL;
    for (size_t i = 0; i < cfg->nroutes; i++) {
        if (i)
            strcat(s, ",");
        strcat(s, cfg->routes[i].name);
    }
    return s;
}

int wr_supervisor_apply(wr_supervisor *sup, wr_config *cfg)
{
    char *text = NULL, *title = route_list(cfg), *dir, *sig = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    int roll;

    dir = strdup(cfg->plugin_dir ? cfg->plugin_dir : sup->args->default_plugin_dir);
    if (!mem || wr_config_write(cfg, mem) < 0 || fclose(mem) != 0 || !title || !dir ||
        !(sig = signature(text, cfg, dir, sup->exe))) {
        free(text);
        free(title);
        free(dir);
        free(sig);
        return -1;
    }
    roll = sup->signature && strcmp(sig, sup->signature) != 0;
    if (sup->cfg) {
        wr_config_free(sup->cfg);
        free(sup->cfg);
    }
    free(sup->config_text);
    free(sup->title_routes);
    free(sup->plugin_dir);
    free(sup->signature);
    sup->cfg = cfg;
    sup->config_text = text;
    sup->config_len = len;
    sup->title_routes = title;
    sup->plugin_dir = dir;
    sup->signature = sig;
    wr_log_set_level(cfg->log_level);
    wr_log_set_format(cfg->log_format);
    return roll;
}

/* The new pool size: a fixed pool's `workers`; a dynamic pool keeps its
 * size within the new bounds unless `workers` itself changed. */
static int new_target(const wr_supervisor *sup, const wr_config *old, const wr_config *cfg)
{
    int n = sup->target;

    if (!cfg->min_workers || cfg->workers != old->workers)
        return cfg->workers;
    if (n < cfg->min_workers)
        n = cfg->min_workers;
    if (n > cfg->max_workers)
        n = cfg->max_workers;
    return n;
}

static void apply_reload(wr_supervisor *sup)
{
    wr_config *cfg = calloc(1, sizeof *cfg);
    wr_diag diag = {0};
    int roll, target;
    char *old_socket;

    if (!cfg || wr_config_load(cfg, sup->args->config_path, sup->args->overrides,
                               sup->args->noverrides, &diag) < 0) {
        /* It changed again since the check passed. */
        for (size_t i = 0; i < diag.n; i++)
            wr_error("%s", diag.msgs[i]);
        wr_diag_free(&diag);
        free(cfg);
        wr_error("reload refused: keeping generation %u", sup->generation);
        wr_notify("READY=1");
        return;
    }
    old_socket = strdup(sup->cfg->control_socket ? sup->cfg->control_socket : "none");
    target = new_target(sup, sup->cfg, cfg);
    roll = wr_supervisor_apply(sup, cfg);
    if (roll < 0) {
        wr_error("reload refused: out of memory; keeping generation %u", sup->generation);
        wr_config_free(cfg);
        free(cfg);
        free(old_socket);
        wr_notify("READY=1");
        return;
    }
    if (old_socket && strcmp(old_socket, sup->cfg->control_socket)) {
        wr_warn("control_socket: %s → %s takes effect when warren is restarted; until then it "
                "listens on %s",
                old_socket, sup->cfg->control_socket, old_socket);
    }
    free(old_socket);
    if (target != sup->target)
        wr_info("reload: %d → %d worker%s", sup->target, target, target == 1 ? "" : "s");
    sup->target = target;
    if (roll) {
        sup->generation++;
        sup->state = WR_SUP_RELOADING;
        wr_info("reload: generation %u: rolling the workers one at a time (the configuration, a "
                "plugin or the worker program changed)",
                sup->generation);
    } else {
        wr_info("reload: generation %u stays: nothing changed that needs new workers",
                sup->generation);
    }
    wr_supervisor_converge(sup);
    if (sup->state == WR_SUP_RUNNING)
        wr_notify("READY=1");
}

static void on_check_closed(uv_handle_t *h)
{
    wr_supervisor *sup = h->data;

    sup->checking = 0;
    if (sup->state == WR_SUP_STOPPING) {
        wr_supervisor_exit_if_done(sup);
        return;
    }
    if (sup->check_status == 0)
        apply_reload(sup);
    else if (sup->check_status < 0) /* could not run it: said so */
        wr_notify("READY=1");
    else {
        wr_error("reload refused: %s does not pass --check (%s %d, see above); keeping "
                 "generation %u",
                 sup->args->config_path, sup->check_signal ? "signal" : "exit",
                 sup->check_signal ? sup->check_signal : (int)sup->check_status, sup->generation);
        wr_notify("READY=1");
    }
    if (sup->reload_again) {
        sup->reload_again = 0;
        wr_supervisor_reload(sup);
    }
}

static void on_check_exit(uv_process_t *p, int64_t status, int term_signal)
{
    wr_supervisor *sup = p->data;

    sup->check_status = status;
    sup->check_signal = term_signal;
    uv_close((uv_handle_t *)p, on_check_closed);
}

void wr_supervisor_reload(wr_supervisor *sup)
{
    const wr_supervisor_args *a = sup->args;
    char **argv = calloc(a->noverrides * 2 + 5, sizeof *argv);
    uv_stdio_container_t stdio[3];
    uv_process_options_t opt;
    size_t n = 0;
    int r;

    if (sup->checking) {
        wr_info("a reload is being checked already; the file is read again after it");
        sup->reload_again = 1;
        free(argv);
        return;
    }
    if (!argv) {
        wr_error("reload refused: out of memory");
        return;
    }
    wr_notify_reloading();
    argv[n++] = (char *)a->self_exe;
    argv[n++] = "-c";
    argv[n++] = (char *)a->config_path;
    for (size_t i = 0; i < a->noverrides; i++) {
        argv[n++] = "-o";
        argv[n++] = (char *)a->overrides[i];
    }
    argv[n++] = "--check";
    memset(stdio, 0, sizeof stdio);
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_IGNORE; /* its summary; its errors go to stderr, our log */
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = 2;
    memset(&opt, 0, sizeof opt);
    opt.file = a->self_exe;
    opt.args = argv;
    opt.exit_cb = on_check_exit;
    opt.stdio_count = 3;
    opt.stdio = stdio;
    sup->check_proc.data = sup;
    r = uv_spawn(sup->loop, &sup->check_proc, &opt);
    free(argv);
    if (r < 0) {
        wr_error("reload refused: cannot run %s --check: %s; keeping generation %u", a->self_exe,
                 uv_strerror(r), sup->generation);
        /* uv_spawn initialised the handle: close it. */
        sup->checking = 1;
        sup->check_status = -1;
        sup->check_signal = 0;
        uv_close((uv_handle_t *)&sup->check_proc, on_check_closed);
        return;
    }
    sup->checking = 1;
}
