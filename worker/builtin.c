/* The built-in methods; see builtin.h. */
#include "worker/builtin.h"

#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static long long now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

int wr_builtin_has(const char *name)
{
    return strcmp(name, WR_BUILTIN_STATUS) == 0;
}

static json_t *status(const wr_builtins *b)
{
    char host[256] = "";
    json_t *plugins = json_array(), *st;
    long long up = now_ms() - b->started_ms;

    if (gethostname(host, sizeof host - 1) < 0)
        host[0] = '\0';
    for (size_t i = 0; i < wr_plugins_count(b->plugins); i++)
        json_array_append_new(plugins,
                              json_pack("{s:s, s:s}", "name", wr_plugins_name_at(b->plugins, i),
                                        "version", wr_plugins_version_at(b->plugins, i)));
    st = json_pack("{s:s, s:I, s:I, s:i, s:s, s:f, s:I, s:I, s:o}", "hostname", host,
                   "supervisor_pid", (json_int_t)b->supervisor_pid, "worker_pid",
                   (json_int_t)getpid(), "worker_index", b->index, "version", WARREN_VERSION,
                   "uptime_s", up > 0 ? (double)up / 1000.0 : 0.0, "requests",
                   (json_int_t)*b->handled, "failed", (json_int_t)*b->failed, "plugins", plugins);
    return st;
}

/* ST (warren.status, taken) with the counters kept beside the worker's
 * own: "expired", the requests answered with the deadline error instead of
 * being run (counted in "requests" and "failed" too); "replies_returned"
 * and "replies_nacked", replies that reached no one (no queue took them,
 * or the broker refused them until [pool] reply_retry ran out), whose
 * requests were acked all the same; "replies_resent", how often a reply
 * the broker refused was sent again. */
static json_t *with_counters(const wr_builtins *b, json_t *st)
{
    const struct {
        const char *name;
        const unsigned long *value;
    } counters[] = {
        {"expired", b->expired},
        {"replies_returned", b->returned},
        {"replies_nacked", b->nacked},
        {"replies_resent", b->resent},
    };

    for (size_t i = 0; st && i < sizeof counters / sizeof counters[0]; i++)
        if (counters[i].value)
            json_object_set_new(st, counters[i].name, json_integer((json_int_t)*counters[i].value));
    return st;
}

json_t *wr_builtin_call(const wr_builtins *b, const char *name)
{
    if (strcmp(name, WR_BUILTIN_STATUS) == 0)
        return with_counters(b, status(b));
    return json_null();
}
