/*
 * [log] level: lines less severe than the level are not written, by the
 * supervisor or by its workers.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/integration/harness.h"

/* One call that is answered (the pool is up: at level warn there is no
 * "ready" line to wait for, and a request sent before the queue exists is
 * lost, so ask until one is answered) and one unknown method (a WARN line
 * in the worker). */
static void call_twice(wr_test_warren *w)
{
    wr_client *c = wr_test_client(0);
    char *reply = NULL, corr[32];

    for (int i = 0; i < 60 && !reply; i++) {
        snprintf(corr, sizeof corr, "up-%d", i);
        reply = wr_test_rpc(c, w->queue, "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":1}", corr,
                            500);
    }
    cr_assert_not_null(reply, "no reply from the pool in 30 s");
    free(reply);
    reply = wr_test_rpc(c, w->queue, "{\"jsonrpc\":\"2.0\",\"method\":\"nosuch\",\"id\":2}", "c-2",
                        10000);
    cr_assert(reply && strstr(reply, "-32601"), "reply: %s", reply ? reply : "(none)");
    free(reply);
    wr_client_close(c);
}

Test(log_level, warn_drops_info_lines_of_supervisor_and_workers, .timeout = 120)
{
    wr_test_warren w = {0};
    char *log;

    wr_test_warren_start(&w, 2, "[log]\nlevel = warn\n", 0);
    call_twice(&w);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
    log = wr_test_log_read(&w);
    cr_expect(strstr(log, "WARN: route rpc: unknown method 'nosuch'") != NULL, "log:\n%s", log);
    cr_expect(strstr(log, " INFO: ") == NULL, "an INFO line at level warn:\n%s", log);
    free(log);
}

Test(log_level, debug_adds_the_plugin_load_lines, .timeout = 120)
{
    wr_test_warren w = {0};

    wr_test_warren_start(&w, 1, "[log]\nlevel = debug\n", 1);
    call_twice(&w);
    cr_expect(wr_test_log_wait(&w, "DEBUG: plugin echo: version", 1, 5000));
    cr_expect(wr_test_log_count(&w, "INFO: ready:") == 1);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}
