/*
 * [log] format = json: every line the supervisor and its workers write is
 * one JSON object, and the line about a worker's death carries the worker,
 * its pid, the signal and the request it was running as fields.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/integration/harness.h"

/* Start warren with its config plus `-o log.format=json`, as an operator
 * would try it, and wait for the pool. */
static void start_json(wr_test_warren *w, char *override)
{
    char *argv[] = {"warren", "-c", w->conf, "-o", "log.format=json", "-o", override, NULL};

    wr_test_warren_write_conf(w, 1, NULL);
    wr_test_warren_spawn(w, argv, NULL);
    if (!wr_test_log_wait(w, "\"msg\":\"ready: ", 1, 30000))
        cr_assert_fail("warren did not become ready in 30 s; log:\n%s", wr_test_log_read(w));
}

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* Each line of LOG as a JSON object (fails the test on any other line);
 * a new array. */
static json_t *parse_lines(char *log)
{
    json_t *lines = json_array();
    char *line = log, *nl;
    int no = 0;
    /* Under ASan the crashing worker's runtime writes its report to the
     * same stderr: those lines are the sanitizer's, not warren's. */
    int sanitizer = strstr(log, "AddressSanitizer") != NULL;

    for (; *line; line = nl + 1) {
        json_error_t err;
        json_t *j;

        nl = strchr(line, '\n');
        cr_assert_not_null(nl, "the log does not end with a newline: [%s]", line);
        *nl = '\0';
        no++;
        if (sanitizer && line[0] != '{')
            continue;
        j = json_loads(line, 0, &err);
        cr_assert(json_is_object(j), "log line %d is not a JSON object (%s): %s", no, err.text,
                  line);
        cr_expect(json_is_string(json_object_get(j, "time")), "line %d: no time: %s", no, line);
        cr_expect(json_is_string(json_object_get(j, "level")), "line %d: no level: %s", no, line);
        cr_expect(json_is_string(json_object_get(j, "role")), "line %d: no role: %s", no, line);
        cr_expect(json_is_integer(json_object_get(j, "pid")), "line %d: no pid: %s", no, line);
        cr_expect(json_is_string(json_object_get(j, "msg")), "line %d: no msg: %s", no, line);
        if (strcmp(str(j, "role"), "worker") == 0)
            cr_expect(json_is_integer(json_object_get(j, "worker")),
                      "line %d: a worker's line without its index: %s", no, line);
        json_array_append_new(lines, j);
    }
    cr_assert_gt(no, 3, "only %d log lines", no);
    return lines;
}

/* Whether some line of role ROLE came from process PID, worker INDEX. */
static int has_line_from(json_t *lines, const char *role, json_int_t pid, json_int_t index)
{
    size_t i;
    json_t *j;

    json_array_foreach(lines, i, j)
    {
        if (strcmp(str(j, "role"), role) == 0 &&
            json_integer_value(json_object_get(j, "pid")) == pid &&
            json_integer_value(json_object_get(j, "worker")) == index)
            return 1;
    }
    return 0;
}

Test(log_json, every_line_parses_and_a_death_names_worker_pid_signal_and_request, .timeout = 180)
{
    wr_test_warren w = {0};
    wr_client *c;
    char *reply = NULL, corr[32], *log;
    json_t *lines, *j, *death = NULL, *unknown = NULL, *refused = NULL;
    size_t i;
    int asan;

    /* Two deaths make test.crash poison, so the third worker refuses it
     * and answers: the refusal line and the reply come without waiting
     * for a timeout. */
    start_json(&w, "pool.max_attempts=2");
    c = wr_test_client(0);
    for (int k = 0; k < 60 && !reply; k++) {
        snprintf(corr, sizeof corr, "up-%d", k);
        reply = wr_test_rpc(c, w.queue, "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":1}", corr,
                            500);
    }
    cr_assert_not_null(reply, "no reply from the pool in 30 s");
    free(reply);
    reply = wr_test_rpc(c, w.queue, "{\"jsonrpc\":\"2.0\",\"method\":\"nosuch\",\"id\":2}", "c-2",
                        10000);
    cr_assert(reply && strstr(reply, "-32601"), "reply: %s", reply ? reply : "(none)");
    free(reply);
    reply = wr_test_rpc(c, w.queue, "{\"jsonrpc\":\"2.0\",\"method\":\"test.crash\",\"id\":3}",
                        "crash-1", 60000);
    cr_assert(reply && strstr(reply, "refused"), "reply to test.crash: %s\nlog:\n%s",
              reply ? reply : "(none)", wr_test_log_read(&w));
    free(reply);
    wr_client_close(c);
    cr_assert_eq(wr_test_warren_stop(&w), 0);

    log = wr_test_log_read(&w);
    /* Under ASan a segfault ends the worker through the sanitizer's own
     * handler: exit code 1 instead of signal 11. */
    asan = strstr(log, "AddressSanitizer") != NULL;
    lines = parse_lines(log);
    json_array_foreach(lines, i, j)
    {
        const char *event = str(j, "event");

        if (!death && strcmp(event, "worker_exit") == 0 &&
            json_object_get(j, asan ? "exit_code" : "signal"))
            death = j;
        else if (!unknown && strcmp(event, "unknown_method") == 0)
            unknown = j;
        else if (!refused && strcmp(event, "request_refused") == 0)
            refused = j;
    }

    /* (No log in the message: under ASan it holds the sanitizer's report,
     * which the suite takes for a failure of its own.) */
    cr_assert_not_null(death, "no worker_exit line with a %s in %s", asan ? "exit code" : "signal",
                       w.log);
    cr_expect_str_eq(str(death, "role"), "supervisor");
    cr_expect_str_eq(str(death, "level"), "warn");
    if (!asan)
        cr_expect_str_eq(str(death, "signal"), "SIGSEGV");
    cr_expect_str_eq(str(death, "method"), "test.crash");
    cr_expect_str_eq(str(death, "route"), "rpc");
    cr_expect_str_eq(str(death, "correlation_id"), "crash-1");
    cr_expect(json_is_integer(json_object_get(death, "worker")));
    cr_expect(json_is_integer(json_object_get(death, "pid")));
    /* Its pid and index are the dead worker's: that worker logged too. */
    cr_expect(has_line_from(lines, "worker", json_integer_value(json_object_get(death, "pid")),
                            json_integer_value(json_object_get(death, "worker"))),
              "no worker line from the pid and index of the death line");
    cr_expect(strstr(str(death, "msg"), asan ? "exited with code 1" : "killed by signal 11") !=
                  NULL,
              "msg: %s", str(death, "msg"));

    cr_assert_not_null(unknown, "no unknown_method line");
    cr_expect_str_eq(str(unknown, "role"), "worker");
    cr_expect_str_eq(str(unknown, "method"), "nosuch");
    cr_expect_str_eq(str(unknown, "route"), "rpc");
    cr_expect_str_eq(str(unknown, "correlation_id"), "c-2");
    cr_expect_str_eq(str(unknown, "msg"), "route rpc: unknown method 'nosuch'");

    cr_assert_not_null(refused, "no request_refused line");
    cr_expect_str_eq(str(refused, "method"), "test.crash");
    cr_expect_str_eq(str(refused, "correlation_id"), "crash-1");

    json_decref(lines);
    free(log);
}

Test(log_json, the_text_format_is_the_default, .timeout = 120)
{
    wr_test_warren w = {0};
    char *log;

    wr_test_warren_start(&w, 1, NULL, 1);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
    log = wr_test_log_read(&w);
    cr_expect(strstr(log, " supervisor: INFO: ready: 1 worker consuming") != NULL, "log:\n%s", log);
    cr_expect(strstr(log, "{\"time\"") == NULL, "a JSON line by default:\n%s", log);
    free(log);
}

/* Under journald the supervisor and its workers (which inherit stderr and
 * the variable) start each line with its priority and leave out the time. */
Test(log_json, under_journald_every_line_starts_with_its_priority, .timeout = 120)
{
    wr_test_warren w = {0};
    char *argv[] = {"warren", "-c", w.conf, NULL};
    char stream[64], *reply = NULL, corr[32], *log, *line;
    struct stat st;
    wr_client *c;
    FILE *f;

    wr_test_warren_write_conf(&w, 1, NULL);
    /* The harness appends to the log: make it now, to know its inode. */
    f = fopen(w.log, "a");
    cr_assert_not_null(f);
    fclose(f);
    cr_assert_eq(stat(w.log, &st), 0);
    snprintf(stream, sizeof stream, "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    setenv("JOURNAL_STREAM", stream, 1);
    wr_test_warren_spawn(&w, argv, NULL);
    unsetenv("JOURNAL_STREAM");
    cr_assert(wr_test_log_wait(&w, "<6>warren[", 1, 30000), "log:\n%s", wr_test_log_read(&w));
    c = wr_test_client(0);
    for (int k = 0; k < 60 && !reply; k++) {
        snprintf(corr, sizeof corr, "up-%d", k);
        reply = wr_test_rpc(c, w.queue, "{\"jsonrpc\":\"2.0\",\"method\":\"nosuch\",\"id\":1}",
                            corr, 500);
    }
    cr_assert_not_null(reply, "no reply from the pool in 30 s");
    free(reply);
    wr_client_close(c);
    cr_assert_eq(wr_test_warren_stop(&w), 0);

    log = wr_test_log_read(&w);
    cr_expect(strstr(log, " worker 0: WARN: route rpc: unknown method 'nosuch'\n") != NULL,
              "log:\n%s", log);
    cr_expect(strstr(log, "<4>warren[") != NULL, "log:\n%s", log);
    for (line = log; *line; line = strchr(line, '\n') + 1) {
        cr_assert(strchr(line, '\n'), "an unterminated line: %s", line);
        cr_expect(line[0] == '<' && strchr("3467", line[1]) && line[2] == '>' &&
                      strncmp(line + 3, "warren[", 7) == 0,
                  "a line without its priority: %.*s", (int)(strchr(line, '\n') - line), line);
    }
    free(log);
}
