/*
 * The worker program, PREFIX/lib/warren/warren-worker: the supervisor
 * starts it as `warren-worker --worker N --since MS --plugin-dir DIR`
 * with the process title as argv[0], the validated config on stdin (INI
 * text up to the WR_IPC_END_CONFIG line, then commands), its status pipe
 * on fd 3 and its scoreboard slot in fd 4.  This file reads the config,
 * sets up logging and the title, and hands over to wr_worker_main().
 *
 * A program of its own so that the supervisor (bin/warren) never loads
 * what only workers use: rabbitmq-c, OpenSSL, Qpid Proton.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/diag.h"
#include "common/exitcodes.h"
#include "common/ipc.h"
#include "common/log.h"
#include "config/config.h"
#include "worker/worker.h"

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

/* When the instance started (unix ms): --since from the supervisor, else
 * now (a worker started by hand is its own instance). */
static long long since_ms(const char *arg)
{
    struct timeval tv;
    char *end;
    long long v = arg ? strtoll(arg, &end, 10) : 0;

    if (arg && *arg && *end == '\0' && v > 0)
        return v;
    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static int boot(int argc, char **argv, const char *index_arg, const char *since_arg,
                const char *plugin_dir)
{
    wr_config cfg;
    wr_diag diag = {0};
    char ident[32], title[256];
    char *text, *end, *dir;
    long index = strtol(index_arg, &end, 10);
    long long since = since_ms(since_arg);
    int rc;

    if (*index_arg == '\0' || *end != '\0' || index < 0) {
        fprintf(stderr, "warren: --worker needs a worker number\n");
        return WR_EXIT_USAGE;
    }
    /* Copied: the title below is written over the arguments. */
    dir = strdup(plugin_dir);
    if (!dir) {
        fprintf(stderr, "warren: out of memory\n");
        return WR_EXIT_SOFTWARE;
    }
    snprintf(ident, sizeof ident, "worker %ld", index);
    wr_log_set_ident(ident);
    /* Our ps title: the supervisor passed it as argv[0]. */
    snprintf(title, sizeof title, "%s", argv[0]);
    set_proctitle(argc, argv, title);

    text = read_config_from_supervisor();
    if (!text) {
        wr_error("cannot read the configuration from the supervisor");
        free(dir);
        return WR_EXIT_SOFTWARE;
    }
    rc = wr_config_load_string(&cfg, "<from supervisor>", text, NULL, 0, &diag);
    free(text);
    if (rc < 0) {
        for (size_t i = 0; i < diag.n; i++)
            wr_error("%s", diag.msgs[i]);
        wr_diag_free(&diag);
        free(dir);
        return WR_EXIT_CONFIG;
    }
    wr_log_set_level(cfg.log_level);
    wr_log_set_format(cfg.log_format);
    rc = wr_worker_main((int)index, &cfg, cfg.plugin_dir ? cfg.plugin_dir : dir, since);
    wr_config_free(&cfg);
    free(dir);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"worker", required_argument, NULL, 'W'},
                                         {"since", required_argument, NULL, 'S'},
                                         {"plugin-dir", required_argument, NULL, 'P'},
                                         {NULL, 0, NULL, 0}};
    const char *index = NULL, *since = NULL, *plugin_dir = NULL;
    int opt;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'W':
            index = optarg;
            break;
        case 'S':
            since = optarg;
            break;
        case 'P':
            plugin_dir = optarg;
            break;
        default:
            index = NULL;
            optind = argc;
            break;
        }
    }
    if (!index || !plugin_dir || optind < argc) {
        fprintf(stderr, "usage: warren-worker --worker N --plugin-dir DIR [--since MS]\n"
                        "(started by warren, the supervisor; see warren(8))\n");
        return WR_EXIT_USAGE;
    }
    return boot(argc, argv, index, since, plugin_dir);
}
