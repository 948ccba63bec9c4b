/*
 * `warren status|reload|stop` (see control_cli.h).
 *
 * The socket's path comes from the same config the supervisor reads
 * ([pool] control_socket, default /run/warren/NAME.sock for NAME.conf),
 * so `-c FILE` names the pool in both.  Everything the pool knows is in
 * the supervisor's reply; this side only moves it and, for `status`
 * without --json, lays it out for a person.  The status JSON's fields
 * are described in the README ("Status and control").
 */
#include "src/control_cli.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/diag.h"
#include "common/exitcodes.h"
#include "config/config.h"

/* A status of a thousand workers is some 300 KB: far below this. */
#define REPLY_MAX (16u << 20)

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The whole reply, to EOF or the deadline.  0, or -1 with ERR set. */
static int read_reply(int fd, long long deadline, char **reply, char *err, size_t errlen)
{
    char *buf = NULL, *grown;
    size_t len = 0, cap = 0;
    ssize_t n;

    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        long long left = deadline - now_ms();
        int rc;

        if (left <= 0) {
            snprintf(err, errlen, "no whole reply within %d s (is the supervisor stuck?)",
                     WR_CONTROL_REQUEST_MS / 1000);
            goto fail;
        }
        rc = poll(&p, 1, (int)left);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0) {
            snprintf(err, errlen, "waiting for the reply: %s", strerror(errno));
            goto fail;
        }
        if (rc == 0)
            continue; /* the deadline check above says it */
        if (cap - len < 4096) {
            if (cap >= REPLY_MAX) {
                snprintf(err, errlen, "the reply is longer than %u bytes", REPLY_MAX);
                goto fail;
            }
            cap = cap ? cap * 2 : 8192;
            grown = realloc(buf, cap);
            if (!grown) {
                snprintf(err, errlen, "out of memory for the reply");
                goto fail;
            }
            buf = grown;
        }
        n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        /* A server that closes with some of our bytes unread (a line too
         * long) resets the connection after its whole reply line. */
        if (n < 0 && errno == ECONNRESET && len > 0 && buf[len - 1] == '\n')
            break;
        if (n < 0) {
            snprintf(err, errlen, "reading the reply: %s", strerror(errno));
            goto fail;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        len--;
    if (len == 0) {
        snprintf(err, errlen, "the connection closed without a reply");
        goto fail;
    }
    buf[len] = '\0';
    *reply = buf;
    return 0;
fail:
    free(buf);
    return -1;
}

int wr_control_request(const char *path, const char *cmd, char **reply, char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    /* Bounds connect() (a server with a full backlog) and send(). */
    struct timeval tv = {.tv_sec = WR_CONTROL_REQUEST_MS / 1000};
    long long deadline = now_ms() + WR_CONTROL_REQUEST_MS;
    size_t cmdlen = strlen(cmd), off = 0;
    char *line = NULL;
    int fd, rc = WR_CONTROL_FAILED;

    *reply = NULL;
    if (strlen(path) >= sizeof sa.sun_path) {
        snprintf(err, errlen, "the path is longer than %zu bytes, the limit of a unix socket",
                 sizeof sa.sun_path - 1);
        return WR_CONTROL_UNREACHABLE;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "%s", strerror(errno));
        return WR_CONTROL_UNREACHABLE;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0) {
        snprintf(err, errlen, "setting a timeout on the socket: %s", strerror(errno));
        goto out;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        snprintf(err, errlen, "%s",
                 errno == EAGAIN ? "no connection within the timeout" : strerror(errno));
        rc = WR_CONTROL_UNREACHABLE;
        goto out;
    }
    line = malloc(cmdlen + 2);
    if (!line) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    memcpy(line, cmd, cmdlen);
    memcpy(line + cmdlen, "\n", 2);
    while (off < cmdlen + 1) {
        /* MSG_NOSIGNAL: a server that closed early is an error, not SIGPIPE. */
        ssize_t n = send(fd, line + off, cmdlen + 1 - off, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            /* A server that refused us (too many connections) may have
             * answered and closed before we sent: its answer says more. */
            int send_errno = errno;

            if (read_reply(fd, deadline, reply, err, errlen) == 0)
                rc = 0;
            else
                snprintf(err, errlen, "sending the command: %s", strerror(send_errno));
            goto out;
        }
        off += (size_t)n;
    }
    if (read_reply(fd, deadline, reply, err, errlen) == 0)
        rc = 0;
out:
    free(line);
    close(fd);
    return rc;
}

/* ---- rendering ---------------------------------------------------------- */

/* A number field (integer or real) of OBJ, or DEF when absent. */
static double num(const json_t *obj, const char *key, double def)
{
    const json_t *v = json_object_get(obj, key);

    return json_is_number(v) ? json_number_value(v) : def;
}

static long long inum(const json_t *obj, const char *key, long long def)
{
    const json_t *v = json_object_get(obj, key);

    if (json_is_integer(v))
        return (long long)json_integer_value(v);
    return json_is_real(v) ? (long long)json_real_value(v) : def;
}

/* A string field of OBJ (borrowed), or DEF when absent or not a string. */
static const char *str(const json_t *obj, const char *key, const char *def)
{
    const char *s = json_string_value(json_object_get(obj, key));

    return s ? s : def;
}

/* 33s, 2m05s, 1h02m03s, 3d04h05m; "-" for a negative or absent time. */
static const char *duration(double secs, char *buf, size_t len)
{
    long long s = (long long)secs;

    if (secs < 0)
        snprintf(buf, len, "-");
    else if (s < 60)
        snprintf(buf, len, "%llds", s);
    else if (s < 3600)
        snprintf(buf, len, "%lldm%02llds", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, len, "%lldh%02lldm%02llds", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(buf, len, "%lldd%02lldh%02lldm", s / 86400, s / 3600 % 24, s / 60 % 60);
    return buf;
}

/* A short time with its tenth (a call busy 1.2s), longer ones as above. */
static const char *short_duration(double secs, char *buf, size_t len)
{
    if (secs >= 0 && secs < 60) {
        snprintf(buf, len, "%.1fs", secs);
        return buf;
    }
    return duration(secs, buf, len);
}

static const char *bytes(long long b, char *buf, size_t len)
{
    if (b <= 0)
        snprintf(buf, len, "-");
    else if (b < 1024 * 1024)
        snprintf(buf, len, "%.1f KiB", (double)b / 1024);
    else if (b < 1024LL * 1024 * 1024)
        snprintf(buf, len, "%.1f MiB", (double)b / (1024 * 1024));
    else
        snprintf(buf, len, "%.1f GiB", (double)b / (1024 * 1024 * 1024));
    return buf;
}

/* A count, or "-" when the field is absent. */
static const char *count(const json_t *obj, const char *key, char *buf, size_t len)
{
    long long v = inum(obj, key, -1);

    if (v < 0)
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, "%lld", v);
    return buf;
}

static void render_worker(const json_t *w, FILE *out)
{
    char pid[24], gen[24], handled[24], failed[24], restarts[24], rss[32], up[32], busy[32];
    char line[1024];
    const char *state = str(w, "state", "?");
    const char *death = str(w, "last_death", NULL);
    size_t n;

    /* In a buffer first, so that an empty DOING leaves no trailing blanks. */
    snprintf(line, sizeof line, "%-7lld %-6s %-4s %-8s %-8s %-7s %-9s %-9s %-8s",
             inum(w, "index", -1), inum(w, "pid", 0) > 0 ? count(w, "pid", pid, sizeof pid) : "-",
             count(w, "generation", gen, sizeof gen), state,
             count(w, "handled", handled, sizeof handled),
             count(w, "failed", failed, sizeof failed),
             count(w, "restarts", restarts, sizeof restarts),
             bytes(inum(w, "rss_bytes", 0), rss, sizeof rss),
             duration(num(w, "uptime_s", -1), up, sizeof up));
    n = strlen(line);
    while (n > 0 && line[n - 1] == ' ' && !death && strcmp(state, "busy"))
        line[--n] = '\0';
    fputs(line, out);
    if (!strcmp(state, "busy"))
        fprintf(out, " %s (route %s) for %s%s", str(w, "method", "?"), str(w, "route", "?"),
                short_duration(num(w, "busy_s", -1), busy, sizeof busy), death ? ";" : "");
    if (death)
        fprintf(out, " last death: %s", death);
    fputc('\n', out);
}

/* "4 workers (fixed)", "3 workers (dynamic, 2 to 8)", "+ target" when
 * the pool is on its way to another size. */
static void render_pool(const json_t *st, const json_t *totals, FILE *out)
{
    long long workers = inum(totals, "workers", 0), target = inum(st, "workers_target", -1);
    const char *mode = str(st, "mode", "fixed");
    long long starting = inum(totals, "starting", 0), stopping = inum(totals, "stopping", 0);
    long long restarts = inum(totals, "restarts", 0);

    fprintf(out, "%s: %lld worker%s (%s", str(st, "config", "?"), workers, workers == 1 ? "" : "s",
            mode);
    if (!strcmp(mode, "dynamic"))
        fprintf(out, ", %lld to %lld", inum(st, "min_workers", 0), inum(st, "max_workers", 0));
    if (target >= 0 && target != workers)
        fprintf(out, ", target %lld", target);
    fprintf(out, "): %lld busy, %lld idle", inum(totals, "busy", 0), inum(totals, "idle", 0));
    if (starting)
        fprintf(out, ", %lld starting", starting);
    if (stopping)
        fprintf(out, ", %lld stopping", stopping);
    fprintf(out, "; %lld served, %lld failed, %lld restart%s\n", inum(totals, "handled", 0),
            inum(totals, "failed", 0), restarts, restarts == 1 ? "" : "s");
}

int wr_status_render(const char *json, FILE *out)
{
    json_error_t jerr;
    json_t *st = json_loads(json, 0, &jerr);
    const json_t *workers = json_object_get(st, "workers");
    const json_t *w;
    size_t i;
    char up[32];

    if (!json_is_object(st) || !json_is_string(json_object_get(st, "state")) ||
        !json_is_array(workers)) {
        json_decref(st);
        return -1;
    }
    fprintf(out, "warren %s (pid %lld): %s, config generation %lld, up %s\n",
            str(st, "warren", "?"), inum(st, "pid", 0), str(st, "state", "?"),
            inum(st, "generation", 0), duration(num(st, "uptime_s", -1), up, sizeof up));
    render_pool(st, json_object_get(st, "totals"), out);
    fprintf(out, "%-7s %-6s %-4s %-8s %-8s %-7s %-9s %-9s %-8s %s\n", "WORKER", "PID", "GEN",
            "STATE", "HANDLED", "FAILED", "RESTARTS", "RSS", "UP", "DOING");
    json_array_foreach(workers, i, w)
    {
        if (json_is_object(w))
            render_worker(w, out);
    }
    json_decref(st);
    return 0;
}

/* ---- the commands ------------------------------------------------------- */

static void usage(FILE *out)
{
    fputs("usage: warren status [--json] [-c FILE] [-o SECTION.KEY=VALUE]... [-s SOCKET]\n"
          "       warren reload [-c FILE] [-o SECTION.KEY=VALUE]... [-s SOCKET]\n"
          "       warren stop [-c FILE] [-o SECTION.KEY=VALUE]... [-s SOCKET]\n"
          "\n"
          "Ask a running warren, through its control socket ([pool] control_socket;\n"
          "default /run/warren/NAME.sock for NAME.conf), for its status, to reload its\n"
          "config (as SIGHUP does), or to stop gracefully (as SIGTERM does).\n"
          "\n"
          "  -c, --config FILE    the running warren's config (default as for warren)\n"
          "  -o, --set S.K=V      an override, as given to warren\n"
          "  -s, --socket PATH    this socket, without reading a config\n"
          "  -j, --json           status: print the supervisor's JSON as received\n"
          "  -h, --help           print this help\n"
          "\n"
          "Exit status: 0 done; 1 warren answered with an error; 64 bad usage; 69 no\n"
          "control socket, or no answer on it; 70 an answer that cannot be read; 78 a\n"
          "config that does not load.\n",
          out);
}

/* Print REPLY to COMMAND as the command's outcome; the exit status. */
static int report(const char *command, int json_out, const char *path, const char *reply)
{
    json_error_t jerr;
    json_t *obj = json_loads(reply, 0, &jerr);
    const char *error = json_string_value(json_object_get(obj, "error"));
    int rc = WR_EXIT_OK;

    if (!json_is_object(obj)) {
        fprintf(stderr, "warren: %s answered with something that is not a JSON object: %s\n", path,
                jerr.text[0] ? jerr.text : "(an array or scalar)");
        rc = WR_EXIT_SOFTWARE;
    } else if (error) {
        fprintf(stderr, "warren: %s: %s\n", command, error);
        rc = 1;
    } else if (!strcmp(command, "status") && json_out) {
        printf("%s\n", reply);
    } else if (!strcmp(command, "status")) {
        if (wr_status_render(reply, stdout) < 0) {
            fprintf(stderr, "warren: %s answered with JSON that is not a status\n", path);
            rc = WR_EXIT_SOFTWARE;
        }
    } else {
        printf("%s\n", str(obj, "message", "done"));
    }
    json_decref(obj);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "warren: writing the output: %s\n", strerror(errno));
        rc = WR_EXIT_SOFTWARE;
    }
    return rc;
}

int wr_control_cli_main(int argc, char **argv, const char *default_config)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"set", required_argument, NULL, 'o'},
        {"socket", required_argument, NULL, 's'}, {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    const char *command = argv[0], *config_path = default_config, *socket_path = NULL;
    const char **overrides = calloc((size_t)argc, sizeof *overrides);
    size_t noverrides = 0;
    int json_out = 0, opt, rc, have_cfg = 0;
    char *reply = NULL, err[512];
    wr_config cfg;
    wr_diag diag = {0};

    if (!overrides) {
        fprintf(stderr, "warren: out of memory\n");
        return WR_EXIT_SOFTWARE;
    }
    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:o:s:jh", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 'o':
            overrides[noverrides++] = optarg;
            break;
        case 's':
            socket_path = optarg;
            break;
        case 'j':
            json_out = 1;
            break;
        case 'h':
            usage(stdout);
            rc = WR_EXIT_OK;
            goto out;
        default:
            usage(stderr);
            rc = WR_EXIT_USAGE;
            goto out;
        }
    }
    if (optind < argc || (json_out && strcmp(command, "status"))) {
        fprintf(stderr, "warren %s: unexpected argument '%s'\n", command,
                optind < argc ? argv[optind] : "--json");
        usage(stderr);
        rc = WR_EXIT_USAGE;
        goto out;
    }
    if (!socket_path) {
        if (!config_path) {
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
        have_cfg = 1;
        socket_path = cfg.control_socket;
        if (!socket_path || !strcmp(socket_path, "none")) {
            fprintf(stderr,
                    "warren: %s has no control socket ([pool] control_socket = none); set one "
                    "to use warren %s\n",
                    cfg.path, command);
            rc = WR_EXIT_UNAVAILABLE;
            goto out;
        }
    }
    rc = wr_control_request(socket_path, command, &reply, err, sizeof err);
    if (rc == WR_CONTROL_UNREACHABLE) {
        if (have_cfg)
            fprintf(stderr,
                    "warren: cannot reach warren at %s: %s (is it running? [pool] control_socket "
                    "in %s)\n",
                    socket_path, err, cfg.path);
        else
            fprintf(stderr, "warren: cannot reach warren at %s: %s (is it running?)\n", socket_path,
                    err);
        rc = WR_EXIT_UNAVAILABLE;
        goto out;
    }
    if (rc < 0) {
        fprintf(stderr, "warren: %s: %s\n", socket_path, err);
        rc = WR_EXIT_UNAVAILABLE;
        goto out;
    }
    rc = report(command, json_out, socket_path, reply);
out:
    free(reply);
    if (have_cfg)
        wr_config_free(&cfg);
    free(overrides);
    return rc;
}
