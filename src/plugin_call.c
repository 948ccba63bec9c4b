/*
 * `warren plugin-call` (see plugin_call.h).
 *
 * Why a subcommand of the daemon rather than a test library: the point of
 * testing a plugin is to learn whether *warren* will take it, so the
 * plugin goes through the very loader and dispatch a worker uses, with
 * their refusals and messages, and not through a look-alike that could
 * drift from them.  A crash in the plugin takes down this short-lived
 * process only, which a test sees as a signal.
 *
 * The outcome is one JSON object on stdout, shaped like a JSON-RPC
 * response without the envelope: {"result": VALUE} or {"error": {"code",
 * "message"[, "data"]}}.  Loader and init() problems are not a call's
 * outcome: they go to stderr as `warren --check` words them.
 */
#include "src/plugin_call.h"

#include <getopt.h>
#include <jansson.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/diag.h"
#include "common/exitcodes.h"
#include "common/log.h"
#include "config/config.h"
#include "worker/dispatch.h"
#include "worker/plugin_loader.h"

static const char usage_line[] =
    "usage: warren plugin-call [-c FILE] [-s KEY=VALUE]... [--pretty]\n"
    "                          PLUGIN METHOD [PARAMS_JSON]\n";

static void usage(FILE *out)
{
    fputs(usage_line, out);
    fputs("\n"
          "Load PLUGIN the way a worker does (file mode, ABI check, init() with its\n"
          "settings), call METHOD once with PARAMS_JSON, print the outcome and exit.\n"
          "No broker is involved.\n"
          "\n"
          "  PLUGIN               a file (DIR/NAME.so), or the NAME of an installed plugin\n"
          "  PARAMS_JSON          any JSON value: an array or object as a JSON-RPC call\n"
          "                       passes it, anything as a raw route may; none: no params\n"
          "  -c, --config FILE    take the plugin's [plugin NAME] section (and, for a\n"
          "                       bare NAME, [plugins] dir) from FILE, validated whole\n"
          "  -s, --set KEY=VALUE  set KEY in the plugin's section (after FILE's); repeatable\n"
          "  -p, --pretty         indent the JSON printed\n"
          "  -h, --help           print this help\n"
          "\n"
          "Prints {\"result\": VALUE} or {\"error\": {\"code\": N, \"message\": TEXT[, \"data\": "
          "X]}}\n"
          "on stdout; plugin log lines and load errors go to stderr.\n"
          "Exit status: 0 result; 1 the method returned an error; 64 bad usage; 75 init()\n"
          "failed temporarily; 78 the plugin was refused or its init() failed.\n",
          out);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "warren plugin-call: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%sTry 'warren plugin-call --help' for more.\n", usage_line);
    return WR_EXIT_USAGE;
}

/* Where PLUGIN lives: a path names DIR/NAME.so itself; a bare name is
 * looked for in FALLBACK_DIR.  Fills *dir and *name (malloc'd), or
 * returns -1 when PLUGIN is a path not ending in ".so". */
static int split_plugin(const char *plugin, const char *fallback_dir, char **dir, char **name)
{
    size_t len = strlen(plugin);
    char *copy;

    if (!strchr(plugin, '/') && (len < 3 || strcmp(plugin + len - 3, ".so") != 0)) {
        *dir = strdup(fallback_dir);
        *name = strdup(plugin);
        return 0;
    }
    if (len < 3 || strcmp(plugin + len - 3, ".so") != 0)
        return -1;
    copy = strdup(plugin);
    *dir = strdup(dirname(copy));
    free(copy);
    copy = strdup(plugin);
    *name = strndup(basename(copy), strlen(basename(copy)) - 3);
    free(copy);
    return 0;
}

/* One outcome object on stdout. */
static void print_outcome(json_t *outcome, int pretty)
{
    char *text =
        outcome ? json_dumps(outcome, JSON_ENCODE_ANY | (pretty ? JSON_INDENT(2) : JSON_COMPACT))
                : NULL;

    if (text)
        printf("%s\n", text);
    else
        fprintf(stderr, "warren plugin-call: cannot encode the outcome as JSON\n");
    free(text);
}

int wr_plugin_call_main(int argc, char **argv, const char *default_dir)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"set", required_argument, NULL, 's'},
                                         {"pretty", no_argument, NULL, 'p'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config_path = NULL;
    char **sets = calloc((size_t)argc, sizeof *sets);
    size_t nsets = 0;
    int pretty = 0, opt, rc = WR_EXIT_SOFTWARE, have_cfg = 0;
    char *dir = NULL, *name = NULL;
    const char *method, *params_text;
    json_t *params = NULL, *result = NULL, *outcome = NULL;
    json_error_t jerr;
    wr_config cfg, pc;
    wr_plugin_section section = {0};
    const wr_plugin_section *file_sec;
    size_t nfile;
    wr_plugins *plugins = NULL;
    wr_diag diag = {0};
    wr_dispatcher d = {0};
    wr_job job;
    warren_error err;

    if (!sets)
        return WR_EXIT_SOFTWARE;
    optind = 1;
    /* '+': options only before PLUGIN, so PARAMS_JSON may start with '-'. */
    while ((opt = getopt_long(argc, argv, "+c:s:ph", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 's':
            if (!strchr(optarg, '=') || optarg[0] == '=') {
                rc = usage_error("--set: expected KEY=VALUE, got \"%s\"", optarg);
                goto out;
            }
            sets[nsets++] = optarg;
            break;
        case 'p':
            pretty = 1;
            break;
        case 'h':
            usage(stdout);
            rc = WR_EXIT_OK;
            goto out;
        default:
            fprintf(stderr, "%sTry 'warren plugin-call --help' for more.\n", usage_line);
            rc = WR_EXIT_USAGE;
            goto out;
        }
    }
    if (argc - optind < 2 || argc - optind > 3) {
        rc = usage_error("%s", argc - optind < 2 ? "expected PLUGIN and METHOD"
                                                 : "too many arguments (quote PARAMS_JSON)");
        goto out;
    }
    method = argv[optind + 1];
    params_text = argc - optind > 2 ? argv[optind + 2] : NULL;
    if (params_text && !(params = json_loads(params_text, JSON_DECODE_ANY, &jerr))) {
        rc = usage_error("PARAMS_JSON is not valid JSON: %s", jerr.text);
        goto out;
    }

    wr_log_set_ident("plugin-call");
    if (config_path) {
        if (wr_config_load(&cfg, config_path, NULL, 0, &diag) < 0) {
            wr_diag_print(&diag);
            rc = WR_EXIT_CONFIG;
            goto out;
        }
        have_cfg = 1;
        wr_log_set_level(cfg.log_level);
        wr_log_set_format(cfg.log_format);
    }
    if (split_plugin(argv[optind], have_cfg && cfg.plugin_dir ? cfg.plugin_dir : default_dir, &dir,
                     &name) < 0) {
        rc = usage_error("PLUGIN: a file must be named NAME.so, got \"%s\"", argv[optind]);
        goto out;
    }
    if (!dir || !name) {
        fprintf(stderr, "warren plugin-call: out of memory\n");
        goto out;
    }

    /* The plugin's section: the file's keys, then --set's, so that the
     * last word wins as it does in the config.  The loader copies it. */
    file_sec = have_cfg ? wr_config_plugin_section(&cfg, name) : NULL;
    nfile = file_sec ? file_sec->nitems : 0;

    section.name = name;
    section.items = calloc(nfile + nsets + 1, sizeof *section.items);
    if (!section.items)
        goto out;
    for (size_t i = 0; i < nfile; i++)
        section.items[section.nitems++] = file_sec->items[i];
    for (size_t i = 0; i < nsets; i++) {
        wr_kv *kv = &section.items[section.nitems++];
        char *eq = strchr(sets[i], '=');

        *eq = '\0';
        kv->key = sets[i];
        kv->value = eq + 1;
    }
    memset(&pc, 0, sizeof pc);
    pc.path = (char *)(config_path ? config_path : "plugin-call");
    pc.plugin_sections = &section;
    pc.nplugin_sections = 1;

    rc = wr_plugins_load(&plugins, dir, &name, 1, &pc, &diag);
    if (rc < 0) {
        for (size_t i = 0; i < diag.n; i++)
            fprintf(stderr, "warren plugin-call: %s\n", diag.msgs[i]);
        rc = rc == WR_PLUGINS_TEMPORARY ? WR_EXIT_TEMPFAIL : WR_EXIT_CONFIG;
        goto out;
    }

    /* The call as a worker makes it, on a message that carries the params
     * as its body (a handler may read job.message, ABI 1.1). */
    memset(&job, 0, sizeof job);
    job.label = "plugin-call";
    job.message.size = sizeof job.message;
    job.message.body = params_text ? params_text : "";
    job.message.body_len = params_text ? strlen(params_text) : 0;
    job.message.content_type = "application/json";
    job.message.route = "plugin-call";
    job.message.exchange = "";
    job.message.routing_key = "";
    d.plugins = plugins;
    if (wr_dispatch_call(&job, &d, method, params, &result, &err) == 0) {
        outcome = json_pack("{s:o}", "result", result);
        rc = WR_EXIT_OK;
    } else {
        outcome = json_pack("{s:{s:i, s:s}}", "error", "code", err.code, "message", err.message);
        if (outcome && err.data)
            json_object_set(json_object_get(outcome, "error"), "data", err.data);
        json_decref(err.data);
        rc = WR_PLUGIN_CALL_ERROR;
    }
    print_outcome(outcome, pretty);
    if (!outcome)
        rc = WR_EXIT_SOFTWARE;
    if (fflush(stdout) != 0)
        rc = WR_EXIT_SOFTWARE;

out:
    json_decref(outcome);
    wr_plugins_unload(plugins);
    json_decref(params);
    free(section.items);
    wr_diag_free(&diag);
    if (have_cfg)
        wr_config_free(&cfg);
    free(name);
    free(dir);
    free(sets);
    return rc;
}
