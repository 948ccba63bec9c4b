/*
 * The pkgstatus plugin: method "pkgstatus" answers the Qpid "server
 * status" demo's question, which process is this and what is installed:
 *
 *   {"pid": 4242, "packages": [{"name": "adduser", "version": "3.134"}, ...],
 *    "truncated": false, "count": 878}
 *
 * pid is the answering worker's; packages come from
 *   dpkg-query -W -f='${Package}\t${Version}\n'
 * or, where there is no dpkg-query,
 *   rpm -qa --qf '%{NAME}\t%{VERSION}-%{RELEASE}\n'
 * in the order the tool lists them; count is how many it listed, of which
 * at most max_packages are returned (truncated says some were left out),
 * so that one reply stays well inside the broker's message size limit.
 *
 *   [plugin pkgstatus]
 *   max_packages = 5000     1..100000; about 50 bytes of reply each
 *
 * The tool runs without a shell (posix_spawnp), with stdin from /dev/null,
 * no descriptor of the worker's but its pipes, default signal handling,
 * and at most RUN_TIMEOUT_MS to finish; then it is killed.  It is reaped
 * by its own pid, never waitpid(-1).  Any failure is a structured error
 * (WARREN_ERR_INTERNAL) naming the tool and what went wrong.  Params are
 * ignored.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <warren/plugin.h>

extern char **environ;

#define DEFAULT_MAX_PACKAGES 5000
#define MAX_MAX_PACKAGES 100000
#define RUN_TIMEOUT_MS 10000
#define MAX_LINE 1024   /* longer lines are cut (names and versions are short) */
#define STDERR_KEEP 200 /* how much of the tool's stderr an error quotes */

struct pkgstatus {
    long max_packages;
};

/* The package listers, in the order they are tried. */
static char *const dpkg_argv[] = {"dpkg-query", "-W", "--showformat=${Package}\t${Version}\n",
                                  NULL};
static char *const rpm_argv[] = {"rpm", "-qa", "--qf", "%{NAME}\t%{VERSION}-%{RELEASE}\n", NULL};

/* What one run collects. */
struct listing {
    json_t *packages; /* borrowed from the caller's result */
    long max;
    long count;
    int truncated;
    char line[MAX_LINE];
    size_t len;
    int oom;
    char errtext[STDERR_KEEP + 1];
    size_t errlen;
};

/* One line of the tool's output: "NAME\tVERSION". */
static void add_line(struct listing *l)
{
    char *tab;
    json_t *pkg;

    l->line[l->len] = '\0';
    l->len = 0;
    if (l->line[0] == '\0')
        return;
    l->count++;
    if (json_array_size(l->packages) >= (size_t)l->max) {
        l->truncated = 1;
        return;
    }
    tab = strchr(l->line, '\t');
    if (tab != NULL)
        *tab = '\0';
    /* json_string refuses invalid UTF-8: such a package is counted but
     * not listed, rather than failing the whole reply. */
    pkg = json_pack("{s:s, s:s}", "name", l->line, "version", tab != NULL ? tab + 1 : "");
    if (pkg == NULL)
        return;
    if (json_array_append_new(l->packages, pkg) < 0)
        l->oom = 1;
}

static void add_output(struct listing *l, const char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (buf[i] == '\n')
            add_line(l);
        else if (l->len < MAX_LINE - 1)
            l->line[l->len++] = buf[i];
    }
}

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Start ARGV[0] from PATH with stdout to OUT_W and stderr to ERR_W.
 * The worker blocks every signal on the handler thread and ignores
 * SIGPIPE; a child must not inherit that (a dpkg-query that cannot be
 * stopped, or that never learns its reader went away), so the mask is
 * emptied and every signal set back to its default.  Descriptors from 3
 * up (the worker's AMQP socket and status pipe among them) are closed.
 * 0 and *PID, or an errno value (ENOENT: no such program).
 */
static int spawn(char *const argv[], int out_w, int err_w, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, all;
    int rc;

    sigemptyset(&none);
    sigfillset(&all);
    if ((rc = posix_spawn_file_actions_init(&fa)) != 0)
        return rc;
    if ((rc = posix_spawnattr_init(&attr)) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return rc;
    }
    if ((rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)) == 0 &&
        (rc = posix_spawn_file_actions_adddup2(&fa, out_w, 1)) == 0 &&
        (rc = posix_spawn_file_actions_adddup2(&fa, err_w, 2)) == 0 &&
        (rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3)) == 0 &&
        (rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)) ==
            0 &&
        (rc = posix_spawnattr_setsigmask(&attr, &none)) == 0 &&
        (rc = posix_spawnattr_setsigdefault(&attr, &all)) == 0)
        rc = posix_spawnp(pid, argv[0], &fa, &attr, argv, environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}

/* Make L->errtext the tool's stderr as one line for a message ("" if
 * none): trailing blanks cut, inner line breaks made spaces. */
static void tidy_stderr(struct listing *l)
{
    while (l->errlen > 0 && strchr(" \t\r\n", l->errtext[l->errlen - 1]) != NULL)
        l->errlen--;
    l->errtext[l->errlen] = '\0';
    for (size_t i = 0; i < l->errlen; i++)
        if (l->errtext[i] == '\n' || l->errtext[i] == '\r')
            l->errtext[i] = ' ';
}

/*
 * Read the child's stdout (OUT) into L and its stderr (ERR) into
 * L->errtext until both close or DEADLINE passes.  0, or -1 on timeout
 * or a read error (ERR filled).
 */
static int drain(int out, int err, struct listing *l, long long deadline, const char *tool,
                 warren_error *werr)
{
    struct pollfd fds[2] = {{.fd = out, .events = POLLIN}, {.fd = err, .events = POLLIN}};
    char buf[8192];

    while (fds[0].fd >= 0 || fds[1].fd >= 0) {
        long long left = deadline - now_ms();
        int n;

        if (left <= 0)
            return warren_error_set(werr, WARREN_ERR_INTERNAL,
                                    "pkgstatus: %s did not finish within %d s", tool,
                                    RUN_TIMEOUT_MS / 1000);
        n = poll(fds, 2, (int)left);
        if (n < 0 && errno != EINTR)
            return warren_error_set(werr, WARREN_ERR_INTERNAL, "pkgstatus: poll: %s",
                                    strerror(errno));
        for (int i = 0; n > 0 && i < 2; i++) {
            ssize_t got;

            if (fds[i].fd < 0 || fds[i].revents == 0)
                continue;
            got = read(fds[i].fd, buf, sizeof buf);
            if (got < 0 && errno == EINTR)
                continue;
            if (got < 0)
                return warren_error_set(werr, WARREN_ERR_INTERNAL, "pkgstatus: reading from %s: %s",
                                        tool, strerror(errno));
            if (got == 0) {
                fds[i].fd = -1; /* closed; the caller closes the descriptor */
            } else if (i == 0) {
                add_output(l, buf, (size_t)got);
            } else {
                size_t keep = STDERR_KEEP - l->errlen;

                if ((size_t)got < keep)
                    keep = (size_t)got;
                memcpy(l->errtext + l->errlen, buf, keep);
                l->errlen += keep;
            }
        }
    }
    if (l->len > 0)
        add_line(l); /* a last line without its newline */
    return 0;
}

/* Wait for PID until DEADLINE, then kill it; *STATUS as from waitpid.
 * 0, or -1 when it had to be killed. */
static int reap(pid_t pid, long long deadline, int *status)
{
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        struct timespec nap = {0, 5 * 1000 * 1000};

        if (r == pid || (r < 0 && errno != EINTR))
            return 0;
        if (now_ms() >= deadline) {
            kill(pid, SIGKILL);
            while (waitpid(pid, status, 0) < 0 && errno == EINTR)
                ;
            return -1;
        }
        nanosleep(&nap, NULL);
    }
}

/*
 * Run the lister ARGV into L.  0 when it ran and exited 0; ENOENT when
 * there is no such program (try the next); -1 with ERR filled otherwise.
 */
static int run_lister(char *const argv[], struct listing *l, warren_error *err)
{
    const char *tool = argv[0];
    long long deadline = now_ms() + RUN_TIMEOUT_MS;
    int out[2] = {-1, -1}, errp[2] = {-1, -1};
    int rc, status = 0, killed;
    pid_t pid;

    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
        rc = warren_error_set(err, WARREN_ERR_INTERNAL, "pkgstatus: pipe: %s", strerror(errno));
        goto out;
    }
    rc = spawn(argv, out[1], errp[1], &pid);
    close(out[1]);
    close(errp[1]);
    out[1] = errp[1] = -1;
    if (rc == ENOENT)
        goto out;
    if (rc != 0) {
        rc = warren_error_set(err, WARREN_ERR_INTERNAL, "pkgstatus: cannot run %s: %s", tool,
                              strerror(rc));
        goto out;
    }
    rc = drain(out[0], errp[0], l, deadline, tool, err);
    /* After a failed drain the child is killed at once (deadline 0). */
    killed = reap(pid, rc == 0 ? deadline : 0, &status) < 0;
    if (rc != 0)
        goto out;
    tidy_stderr(l);
    if (killed)
        rc = warren_error_set(err, WARREN_ERR_INTERNAL,
                              "pkgstatus: %s did not exit within %d s: killed", tool,
                              RUN_TIMEOUT_MS / 1000);
    else if (WIFSIGNALED(status))
        rc = warren_error_set(err, WARREN_ERR_INTERNAL, "pkgstatus: %s was killed by signal %d%s%s",
                              tool, WTERMSIG(status), l->errlen ? ": " : "", l->errtext);
    else if (WEXITSTATUS(status) != 0)
        rc = warren_error_set(err, WARREN_ERR_INTERNAL, "pkgstatus: %s exited with code %d%s%s",
                              tool, WEXITSTATUS(status), l->errlen ? ": " : "", l->errtext);
    else if (l->oom)
        rc = warren_error_set(err, WARREN_ERR_INTERNAL, "pkgstatus: out of memory");
out:
    for (int i = 0; i < 2; i++) {
        if (out[i] >= 0)
            close(out[i]);
        if (errp[i] >= 0)
            close(errp[i]);
    }
    return rc;
}

static int pkgstatus(const warren_call *call, json_t *params, json_t **result, warren_error *err)
{
    const struct pkgstatus *st = call->state;
    struct listing *l;
    json_t *packages;
    int rc;

    (void)params;
    /* On the heap: the line buffer would make a large frame on the
     * handler thread's stack. */
    l = calloc(1, sizeof *l);
    packages = json_array();
    if (l == NULL || packages == NULL) {
        free(l);
        json_decref(packages);
        return warren_error_set(err, WARREN_ERR_INTERNAL, "pkgstatus: out of memory");
    }
    l->packages = packages;
    l->max = st->max_packages;
    rc = run_lister(dpkg_argv, l, err);
    if (rc == ENOENT) {
        rc = run_lister(rpm_argv, l, err);
        if (rc == ENOENT)
            rc = warren_error_set(err, WARREN_ERR_INTERNAL,
                                  "pkgstatus: neither dpkg-query nor rpm found in PATH");
    }
    if (rc == 0) {
        /* New reference; "o" hands PACKAGES over. */
        *result = json_pack("{s:I, s:o, s:b, s:I}", "pid", (json_int_t)getpid(), "packages",
                            packages, "truncated", l->truncated, "count", (json_int_t)l->count);
        if (*result == NULL)
            rc = warren_error_set(err, WARREN_ERR_INTERNAL, "pkgstatus: out of memory");
    } else {
        json_decref(packages);
    }
    free(l);
    return rc == 0 ? 0 : -1;
}

/* Read max_packages once, here: a bad value stops warren at startup
 * (and `warren --check`) instead of failing every call. */
static int pkgstatus_init(const warren_host *host, void **state, warren_error *err)
{
    const char *text = host->config_get(host, "max_packages");
    struct pkgstatus *st;
    long max = DEFAULT_MAX_PACKAGES;

    *state = NULL;
    if (text != NULL) {
        char *end;

        errno = 0;
        max = strtol(text, &end, 10);
        if (end == text || *end != '\0' || errno != 0 || max < 1 || max > MAX_MAX_PACKAGES)
            return warren_error_set(err, WARREN_ERR_INTERNAL,
                                    "max_packages: expected a whole number from 1 to %d, got "
                                    "\"%s\"",
                                    MAX_MAX_PACKAGES, text);
    }
    st = malloc(sizeof *st);
    if (st == NULL)
        return warren_error_set(err, WARREN_ERR_INTERNAL, "out of memory");
    st->max_packages = max;
    *state = st;
    return 0;
}

static void pkgstatus_fini(const warren_host *host, void *state)
{
    (void)host;
    free(state);
}

static const warren_method pkgstatus_methods[] = {
    {.name = "pkgstatus",
     .handler = pkgstatus,
     .summary = "this worker's pid and the installed packages (dpkg or rpm)"},
    {0},
};

WARREN_PLUGIN_DEFINE(.name = "pkgstatus", .version = "1.0", .init = pkgstatus_init,
                     .fini = pkgstatus_fini, .methods = pkgstatus_methods);
