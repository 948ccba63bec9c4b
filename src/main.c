/*
 * warren's entry point and command line:
 *   warren -c FILE [-o SECTION.KEY=VALUE]...          the supervisor
 *   warren -c FILE [-o ...] --check                   validate and exit
 *   warren --worker N   (by hand, for debugging: runs the worker program,
 *                        PREFIX/lib/warren/warren-worker, config on stdin;
 *                        see worker/boot.c)
 * This file only parses the command line and finds the default config,
 * plugin dir and worker program beside the binary; each mode lives with
 * its module.  The supervisor's program links neither rabbitmq-c nor
 * OpenSSL: workers are a program of their own.
 */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/diag.h"
#include "common/exitcodes.h"
#include "common/log.h"
#include "common/secret.h"
#include "config/config.h"
#include "src/control_cli.h"
#include "src/plugin_call.h"
#include "supervisor/supervisor.h"
#include "worker/builtin.h"
#include "worker/plugin_loader.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: warren [-c FILE] [-o SECTION.KEY=VALUE]... [--check]\n"
            "       warren plugin-call [-c FILE] [-s KEY=VALUE]... PLUGIN METHOD [PARAMS_JSON]\n"
            "       warren status [--json] [-c FILE] [-o SECTION.KEY=VALUE]...\n"
            "       warren reload|stop [-c FILE] [-o SECTION.KEY=VALUE]...\n"
            "       warren --version | --help\n"
            "\n"
            "Prefork RPC worker pool for RabbitMQ.  Runs in the foreground and logs to stderr.\n"
            "\n"
            "  -c, --config FILE    config file (default: ../etc/warren/warren.conf next to\n"
            "                       the binary, i.e. PREFIX/etc/warren/warren.conf; a\n"
            "                       /usr build for a package: /etc/warren/warren.conf)\n"
            "  -o, --set S.K=V      override key K of section S; repeatable.  For named\n"
            "                       sections write route.NAME.KEY=V or plugin.NAME.KEY=V\n"
            "  -t, --check          validate the config and load the plugins, then exit:\n"
            "                       0 when all is well, 78 with FILE:LINE: messages if not\n"
            "  -v, --version        print the version\n"
            "  -h, --help           print this help\n"
            "\n"
            "Signals: TERM/INT stop gracefully (requests in hand are finished); HUP reloads\n"
            "the config (checked first; workers rolled one at a time); TTIN/TTOU add or\n"
            "remove one worker.\n"
            "plugin-call: load one plugin as a worker does and call one method, without a\n"
            "broker (warren plugin-call --help).\n"
            "status, reload, stop: ask the warren running with FILE, through its control\n"
            "socket ([pool] control_socket), for its workers' state, to reload its config\n"
            "(as SIGHUP does) or to stop (as SIGTERM does) (warren status --help).\n");
}

/* The path of our own binary (malloc'd), or NULL. */
static char *exe_path(void)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n < 0)
        return NULL;
    buf[n] = '\0';
    return strdup(buf);
}

/* EXE_DIR/../REL, canonical when it exists: our binary lives in PREFIX/bin
 * (or BUILD/bin, which mirrors it), so this finds PREFIX/REL.  malloc'd,
 * or NULL out of memory. */
static char *beside_exe(const char *exe, const char *rel)
{
    char *copy = strdup(exe), *path = NULL, real[PATH_MAX];
    if (!copy)
        return NULL;
    if (asprintf(&path, "%s/../%s", dirname(copy), rel) < 0)
        path = NULL;
    free(copy);
    if (path && realpath(path, real)) {
        free(path);
        return strdup(real);
    }
    return path;
}

/* The default config, malloc'd (NULL out of memory).  Relocatable as a
 * rule: PREFIX/etc/warren/warren.conf beside PREFIX/bin, wherever PREFIX
 * is (a build tree, `cmake --install --prefix DIR`).  A build configured
 * with an absolute sysconfdir (-DCMAKE_INSTALL_SYSCONFDIR=/etc, as the
 * Debian package's /usr build is) looks there instead, but only when the
 * binary runs from the prefix it was built for: a copy elsewhere stays
 * relocatable. */
static char *default_config_path(const char *exe)
{
#ifdef WARREN_SYSCONFDIR
    char *bindir = beside_exe(exe, "bin"), built[PATH_MAX];
    int ours = bindir && realpath(WARREN_PREFIX "/bin", built) && strcmp(bindir, built) == 0;
    free(bindir);
    if (ours)
        return strdup(WARREN_SYSCONFDIR "/warren/warren.conf");
#endif
    return beside_exe(exe, "etc/warren/warren.conf");
}

/* The broker as --check shows it: every node's URI with its password
 * masked, TLS, where the password comes from. */
static const char *broker_text(const wr_config *cfg, char *buf, size_t len)
{
    char uri[512];
    int n;

    n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < cfg->nbroker_uris && n >= 0 && (size_t)n < len; i++) {
        wr_secret_mask_uri(cfg->broker_uris[i], uri, sizeof uri);
        n += snprintf(buf + n, len - (size_t)n, "%s%s", i ? " " : "", uri);
    }
    if (n >= 0 && (size_t)n < len && !strncmp(cfg->broker_uri, "amqps://", 8))
        n += snprintf(buf + n, len - (size_t)n, " (TLS, CA %s%s%s)",
                      cfg->ca_file ? cfg->ca_file : "the system's",
                      cfg->cert_file ? ", client certificate " : "",
                      cfg->cert_file ? cfg->cert_file : "");
    if (n >= 0 && (size_t)n < len && cfg->password_source)
        snprintf(buf + n, len - (size_t)n, ", password from %s", cfg->password_source);
    return buf;
}

/* --check: the config, then the plugins (loaded and initialised in this
 * short-lived process, never in the running supervisor). */
static int run_check(const wr_config *cfg, const char *dir)
{
    wr_plugins *plugins = NULL;
    wr_diag diag = {0};
    char text[1024];

    int rc = wr_plugins_load(&plugins, dir, cfg->plugins, cfg->nplugins, cfg, &diag);
    int missing = 0;

    if (rc < 0) {
        for (size_t i = 0; i < diag.n; i++) {
            if (cfg->plugins_line > 0)
                fprintf(stderr, "%s:%d: %s\n", cfg->path, cfg->plugins_line, diag.msgs[i]);
            else
                fprintf(stderr, "%s: %s\n", cfg->path, diag.msgs[i]);
        }
        wr_diag_free(&diag);
        /* Temporary (a backend not up yet): the unit's ExecStartPre must
         * not turn it into the exit code that keeps warren down. */
        return rc == WR_PLUGINS_TEMPORARY ? WR_EXIT_TEMPFAIL : WR_EXIT_CONFIG;
    }
    /* A route's method must exist somewhere, or every message on it would
     * be answered "Method not found". */
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const wr_route *r = &cfg->routes[i];
        if (!r->method || wr_plugins_find(plugins, r->method) ||
            (cfg->builtin_methods && wr_builtin_has(r->method)))
            continue;
        if (r->method_line > 0)
            fprintf(stderr, "%s:%d: method: no loaded plugin has method \"%s\" (route %s)\n",
                    cfg->path, r->method_line, r->method, r->name);
        else
            fprintf(stderr, "-o route.%s.method: no loaded plugin has method \"%s\"\n", r->name,
                    r->method);
        missing = 1;
    }
    if (missing) {
        wr_plugins_unload(plugins);
        return WR_EXIT_CONFIG;
    }
    printf("%s: OK: %d worker%s, %zu route%s, %zu method%s from %s:", cfg->path, cfg->workers,
           cfg->workers == 1 ? "" : "s", cfg->nroutes, cfg->nroutes == 1 ? "" : "s",
           wr_plugins_method_count(plugins), wr_plugins_method_count(plugins) == 1 ? "" : "s", dir);
    for (size_t i = 0; i < wr_plugins_method_count(plugins); i++)
        printf(" %s", wr_plugins_method_at(plugins, i)->method->name);
    printf("\n");
    printf("%s: broker %s\n", cfg->path, broker_text(cfg, text, sizeof text));
    wr_plugins_unload(plugins);
    return WR_EXIT_OK;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"set", required_argument, NULL, 'o'},
        {"check", no_argument, NULL, 't'},        {"version", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},         {"worker", required_argument, NULL, 'W'},
        {"since", required_argument, NULL, 'S'},  {NULL, 0, NULL, 0}};
    const char *config_path = NULL, *worker_index = NULL, *since = NULL;
    const char **overrides = NULL;
    size_t noverrides = 0;
    int check = 0, opt, rc;
    char *exe, *default_config = NULL, *default_plugins = NULL, *worker_exe = NULL;
    const char *dir;
    wr_config cfg;
    wr_diag diag = {0};

    exe = exe_path();
    if (!exe) {
        fprintf(stderr, "warren: cannot find its own binary: %s\n", strerror(errno));
        return WR_EXIT_SOFTWARE;
    }
    default_plugins = beside_exe(exe, "lib/warren/plugins");
    worker_exe = beside_exe(exe, "lib/warren/warren-worker");
    overrides = calloc((size_t)argc, sizeof *overrides);
    if (!default_plugins || !worker_exe || !overrides) {
        fprintf(stderr, "warren: out of memory\n");
        rc = WR_EXIT_SOFTWARE;
        goto out;
    }
    /* A subcommand, for plugin authors' tests (src/plugin_call.c). */
    if (argc > 1 && strcmp(argv[1], "plugin-call") == 0) {
        rc = wr_plugin_call_main(argc - 1, argv + 1, default_plugins);
        goto out;
    }
    /* Clients of a running warren's control socket (src/control_cli.c). */
    if (argc > 1 && (strcmp(argv[1], "status") == 0 || strcmp(argv[1], "reload") == 0 ||
                     strcmp(argv[1], "stop") == 0)) {
        default_config = default_config_path(exe);
        rc = wr_control_cli_main(argc - 1, argv + 1, default_config);
        goto out;
    }
    while ((opt = getopt_long(argc, argv, "c:o:tvh", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 'o':
            overrides[noverrides++] = optarg;
            break;
        case 't':
            check = 1;
            break;
        case 'v':
            printf("warren %s (plugin ABI %d.%d)\n", WARREN_VERSION, WARREN_PLUGIN_ABI_MAJOR,
                   WARREN_PLUGIN_ABI_MINOR);
            rc = WR_EXIT_OK;
            goto out;
        case 'h':
            usage(stdout);
            rc = WR_EXIT_OK;
            goto out;
        case 'W':
            worker_index = optarg;
            break;
        case 'S':
            since = optarg;
            break;
        default:
            usage(stderr);
            rc = WR_EXIT_USAGE;
            goto out;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "warren: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        rc = WR_EXIT_USAGE;
        goto out;
    }
    if (worker_index) {
        char *args[] = {argv[0],         "--worker", (char *)worker_index, "--plugin-dir",
                        default_plugins, "--since",  (char *)since,        NULL};
        if (!since)
            args[5] = NULL;
        execv(worker_exe, args);
        fprintf(stderr, "warren: cannot run %s: %s\n", worker_exe, strerror(errno));
        rc = WR_EXIT_SOFTWARE;
        goto out;
    }

    wr_log_set_ident("supervisor");
    if (!config_path && !(config_path = default_config = default_config_path(exe))) {
        fprintf(stderr, "warren: out of memory\n");
        rc = WR_EXIT_SOFTWARE;
        goto out;
    }
    if (wr_config_load(&cfg, config_path, overrides, noverrides, &diag) < 0) {
        wr_diag_print(&diag);
        wr_diag_free(&diag);
        rc = WR_EXIT_CONFIG;
        goto out;
    }
    wr_log_set_level(cfg.log_level);
    wr_log_set_format(cfg.log_format);
    /* The config has its copy: what `ps` shows loses the password now. */
    if (wr_secret_scrub_args(argc, argv))
        wr_warn("a broker password was given on the command line: other users could see it in "
                "the process list until now; use [broker] password_file or $%s instead",
                WR_SECRET_PASSWORD_ENV);
    if (cfg.uri_password_line > 0)
        wr_secret_warn_if_readable(cfg.path, cfg.uri_password_line);
    if (!check) {
        char text[1024];

        wr_info("broker %s", broker_text(&cfg, text, sizeof text));
    }
    dir = cfg.plugin_dir ? cfg.plugin_dir : default_plugins;
    /* Without its worker program the supervisor would only retry forever. */
    if (!check && access(worker_exe, X_OK) != 0) {
        wr_error("cannot run the worker program %s: %s (an incomplete install?)", worker_exe,
                 strerror(errno));
        wr_config_free(&cfg);
        rc = WR_EXIT_SOFTWARE;
        goto out;
    }
    if (check) {
        rc = run_check(&cfg, dir);
    } else {
        wr_supervisor_args args = {.config_path = config_path,
                                   .overrides = overrides,
                                   .noverrides = noverrides,
                                   .worker_exe = worker_exe,
                                   .self_exe = exe,
                                   .default_plugin_dir = default_plugins};
        rc = wr_supervisor_run(&cfg, &args);
    }
    wr_config_free(&cfg);
out:
    free(default_plugins);
    free(worker_exe);
    free(default_config);
    free(overrides);
    free(exe);
    return rc;
}
