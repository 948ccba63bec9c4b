/*
 * The time plugin: method "time" returns the current time, as the old
 * amqpbus recipe's backend did, in two forms a caller may want:
 *   {"unix_ms": 1732350000123, "iso8601": "2026-11-23T10:50:00.123Z"}
 * Both come from one clock reading rounded down to the millisecond, so
 * they always agree.  Milliseconds as an integer, not seconds as a double:
 * a double prints as 1732350000.1229999 and invites rounding bugs.  No config keys; params are
 * ignored.
 */
#include <time.h>
#include <warren/plugin.h>

static int now(const warren_call *call, json_t *params, json_t **result, warren_error *err)
{
    struct timespec ts;
    struct tm tm;
    char stamp[64];
    long ms;
    size_t n;

    (void)call;
    (void)params;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || !gmtime_r(&ts.tv_sec, &tm))
        return warren_error_set(err, WARREN_ERR_INTERNAL, "time: cannot read the clock");
    ms = ts.tv_nsec / 1000000;
    n = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + n, sizeof stamp - n, ".%03ldZ", ms);

    /* New reference; NULL only when out of memory. */
    *result =
        json_pack("{s:I,s:s}", "unix_ms", (json_int_t)ts.tv_sec * 1000 + ms, "iso8601", stamp);
    if (!*result)
        return warren_error_set(err, WARREN_ERR_INTERNAL, "time: out of memory");
    return 0;
}

static const warren_method time_methods[] = {
    {.name = "time",
     .handler = now,
     .summary = "the current time (unix milliseconds and ISO 8601 UTC)"},
    {0},
};

WARREN_PLUGIN_DEFINE(.name = "time", .version = "1.0", .methods = time_methods);
