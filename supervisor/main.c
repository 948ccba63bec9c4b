/*
 * warren's command line.  One binary, three modes:
 *   warren -c FILE [-o SECTION.KEY=VALUE]...          the supervisor
 *   warren -c FILE [-o ...] --check                   validate and exit
 *   warren --worker N   (internal: started by the supervisor, config on
 *                        stdin, status pipe on fd 3)
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
#include "common/ipc.h"
#include "common/log.h"
#include "common/plugin_loader.h"
#include "config/config.h"
#include "supervisor/supervisor.h"
#include "worker/worker.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: warren [-c FILE] [-o SECTION.KEY=VALUE]... [--check]\n"
            "       warren --version | --help\n"
            "\n"
            "Prefork RPC worker pool for RabbitMQ.  Runs in the foreground and logs to stderr.\n"
            "\n"
            "  -c, --config FILE    config file (default: ../etc/warren/warren.conf next to\n"
            "                       the binary, i.e. PREFIX/etc/warren/warren.conf)\n"
            "  -o, --set S.K=V      override key K of section S; repeatable.  For named\n"
            "                       sections write route.NAME.KEY=V or plugin.NAME.KEY=V\n"
            "  -t, --check          validate the config and load the plugins, then exit:\n"
            "                       0 when all is well, 78 with FILE:LINE: messages if not\n"
            "  -v, --version        print the version\n"
            "  -h, --help           print this help\n"
            "\n"
            "Signals: TERM/INT stop gracefully (requests in hand are finished).\n");
}

/* Directory of our own binary (malloc'd), or NULL. */
static char *exe_path(void)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n < 0)
        return NULL;
    buf[n] = '\0';
    return strdup(buf);
}

/* EXE_DIR/../REL, canonical when it exists.  malloc'd. */
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

/* The plugin dir from the config, or the installed one: our binary lives
 * in PREFIX/bin (or BUILD/bin, which mirrors it), plugins in
 * PREFIX/lib/warren/plugins.  malloc'd. */
static char *plugin_dir_for(const wr_config *cfg, const char *exe)
{
    if (cfg->plugin_dir)
        return strdup(cfg->plugin_dir);
    return beside_exe(exe, "lib/warren/plugins");
}

/*
 * Read the config the supervisor sends on stdin, up to the end-of-config
 * line (see common/ipc.h).  One byte at a time: what follows the marker
 * (commands) must stay unread for the worker, and a config is a few KiB
 * read once per worker start.  malloc'd; NULL on EOF before the marker.
 */
static char *read_config_from_supervisor(void)
{
    static const char marker[] = "\n" WR_IPC_END_CONFIG "\n";
    const size_t mlen = sizeof marker - 1;
    size_t len = 1, cap = 8192;
    char *buf = malloc(cap);

    if (!buf)
        return NULL;
    buf[0] = '\n'; /* so a marker on the very first line matches too */
    for (;;) {
        ssize_t n;
        if (len + 1 == cap) {
            char *grown = realloc(buf, cap * 2);
            if (!grown)
                break;
            buf = grown;
            cap *= 2;
        }
        n = read(STDIN_FILENO, buf + len, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len++;
        if (len >= mlen && memcmp(buf + len - mlen, marker, mlen) == 0) {
            len -= mlen - 1; /* keep the newline that ends the last line */
            buf[len] = '\0';
            memmove(buf, buf + 1, len); /* drop the leading newline */
            return buf;
        }
    }
    free(buf);
    return NULL;
}

/*
 * Replace what `ps` shows for this process with TITLE, by rewriting the
 * argv strings in place (they are contiguous; the supervisor put the title
 * first, so the area is always large enough for it).
 */
static void set_proctitle(int argc, char **argv, const char *title)
{
    char *start = argv[0];
    char *end = argv[argc - 1] + strlen(argv[argc - 1]);
    size_t room = (size_t)(end - start);
    size_t n = strlen(title);

    if (n > room)
        n = room;
    memmove(start, title, n);
    memset(start + n, 0, room - n + 1);
}

static int run_worker(int argc, char **argv, const char *index_arg, const char *exe)
{
    wr_config cfg;
    wr_diag diag = {0};
    char ident[32], title[256];
    char *text, *end, *dir;
    long index = strtol(index_arg, &end, 10);
    int rc;

    if (*index_arg == '\0' || *end != '\0' || index < 0) {
        fprintf(stderr, "warren: --worker needs a worker number\n");
        return WR_EXIT_USAGE;
    }
    snprintf(ident, sizeof ident, "worker %ld", index);
    wr_log_set_ident(ident);
    snprintf(title, sizeof title, "%s", argv[0]);
    set_proctitle(argc, argv, title);

    text = read_config_from_supervisor();
    if (!text) {
        wr_error("cannot read the configuration from the supervisor");
        return WR_EXIT_SOFTWARE;
    }
    rc = wr_config_load_string(&cfg, "<from supervisor>", text, NULL, 0, &diag);
    free(text);
    if (rc < 0) {
        for (size_t i = 0; i < diag.n; i++)
            wr_error("%s", diag.msgs[i]);
        wr_diag_free(&diag);
        return WR_EXIT_CONFIG;
    }
    dir = plugin_dir_for(&cfg, exe);
    rc = wr_worker_main((int)index, &cfg, dir);
    free(dir);
    wr_config_free(&cfg);
    return rc;
}

/* --check: the config, then the plugins (loaded and initialised in this
 * short-lived process, never in the running supervisor). */
static int run_check(const wr_config *cfg, const char *dir)
{
    wr_plugins *plugins = NULL;
    wr_diag diag = {0};

    if (wr_plugins_load(&plugins, dir, cfg->plugins, cfg->nplugins, cfg, &diag) < 0) {
        for (size_t i = 0; i < diag.n; i++) {
            if (cfg->plugins_line > 0)
                fprintf(stderr, "%s:%d: %s\n", cfg->path, cfg->plugins_line, diag.msgs[i]);
            else
                fprintf(stderr, "%s: %s\n", cfg->path, diag.msgs[i]);
        }
        wr_diag_free(&diag);
        return WR_EXIT_CONFIG;
    }
    printf("%s: OK: %d worker%s, %zu route%s, %zu method%s from %s:", cfg->path, cfg->workers,
           cfg->workers == 1 ? "" : "s", cfg->nroutes, cfg->nroutes == 1 ? "" : "s",
           wr_plugins_method_count(plugins), wr_plugins_method_count(plugins) == 1 ? "" : "s", dir);
    for (size_t i = 0; i < wr_plugins_method_count(plugins); i++)
        printf(" %s", wr_plugins_method_at(plugins, i)->method->name);
    printf("\n");
    wr_plugins_unload(plugins);
    return WR_EXIT_OK;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"set", required_argument, NULL, 'o'},
                                         {"check", no_argument, NULL, 't'},
                                         {"version", no_argument, NULL, 'v'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"worker", required_argument, NULL, 'W'},
                                         {NULL, 0, NULL, 0}};
    const char *config_path = NULL, *worker_index = NULL;
    const char **overrides = NULL;
    size_t noverrides = 0;
    int check = 0, opt, rc;
    char *exe, *default_config = NULL, *dir = NULL;
    wr_config cfg;
    wr_diag diag = {0};

    exe = exe_path();
    if (!exe) {
        fprintf(stderr, "warren: cannot find its own binary: %s\n", strerror(errno));
        return WR_EXIT_SOFTWARE;
    }
    overrides = calloc((size_t)argc, sizeof *overrides);
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
        rc = run_worker(argc, argv, worker_index, exe);
        goto out;
    }

    wr_log_set_ident("supervisor");
    if (!config_path)
        config_path = default_config = beside_exe(exe, "etc/warren/warren.conf");
    if (wr_config_load(&cfg, config_path, overrides, noverrides, &diag) < 0) {
        wr_diag_print(&diag);
        wr_diag_free(&diag);
        rc = WR_EXIT_CONFIG;
        goto out;
    }
    dir = plugin_dir_for(&cfg, exe);
    rc = check ? run_check(&cfg, dir) : wr_supervisor_run(&cfg, exe, dir);
    wr_config_free(&cfg);
out:
    free(dir);
    free(default_config);
    free(overrides);
    free(exe);
    return rc;
}
