/*
 * Test plugin "init_fail": init() fails with a message (which the loader
 * must pass on) and error data (which the loader must free: the test runs
 * under ASan's leak checker too).
 */
#include <warren/plugin.h>

static int init_fail_init(const warren_host *host, void **state, warren_error *err)
{
    (void)host;
    (void)state;
    warren_error_set(err, WARREN_ERR_INTERNAL, "cannot reach the frobnicator at %s", "10.0.0.1");
    err->data = json_pack("{s:i}", "attempts", 3);
    return -1;
}

static int init_fail_x(const warren_call *call, json_t *params, json_t **result, warren_error *err)
{
    (void)call;
    (void)params;
    (void)err;
    *result = NULL;
    return 0;
}

static const warren_method init_fail_methods[] = {
    {.name = "init_fail.x", .handler = init_fail_x},
    {0},
};

WARREN_PLUGIN_DEFINE(.name = "init_fail", .version = "1.0", .init = init_fail_init,
                     .methods = init_fail_methods);
