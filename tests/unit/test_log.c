/*
 * common/log.c: text and JSON lines, JSON escaping and truncation,
 * structured fields, and the journald priority prefix.  Each test sends
 * stderr to a temp file and reads back what was written.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

static char path[] = "/tmp/warren-test-log-XXXXXX";
static int saved_stderr = -1;

static void capture(void)
{
    int fd = mkstemp(path);

    cr_assert(fd >= 0, "mkstemp");
    saved_stderr = dup(STDERR_FILENO);
    cr_assert(dup2(fd, STDERR_FILENO) >= 0);
    close(fd);
    unsetenv("JOURNAL_STREAM");
    wr_log_set_ident("tester");
    wr_log_set_level(WR_LOG_DEBUG);
    wr_log_set_format(WR_LOG_TEXT);
    wr_log_set_hook(NULL);
}

static void restore(void)
{
    if (saved_stderr >= 0) {
        dup2(saved_stderr, STDERR_FILENO);
        close(saved_stderr);
    }
    unlink(path);
}

TestSuite(log, .init = capture, .fini = restore);

/* Everything written so far.  Free it. */
static char *written(void)
{
    FILE *f = fopen(path, "r");
    char *buf = calloc(1, 65536);
    size_t n;

    cr_assert(f && buf);
    n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Empty the file, so the next read sees the next line alone. */
static void clear(void)
{
    cr_assert_eq(ftruncate(STDERR_FILENO, 0), 0);
    cr_assert_eq(lseek(STDERR_FILENO, 0, SEEK_SET), 0);
}

/* The one JSON line written (with no prefix), parsed; new reference. */
static json_t *json_written(void)
{
    char *text = written();
    json_error_t err;
    json_t *j;
    size_t len = strlen(text);

    cr_assert(len > 0 && text[len - 1] == '\n', "not one line: [%s]", text);
    cr_assert(strchr(text, '\n') == text + len - 1, "more than one line: [%s]", text);
    j = json_loads(text, 0, &err);
    cr_assert_not_null(j, "not JSON (%s): [%s]", err.text, text);
    free(text);
    return j;
}

static void journal_is_our_file(void)
{
    struct stat st;
    char v[64];

    cr_assert_eq(fstat(STDERR_FILENO, &st), 0);
    snprintf(v, sizeof v, "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    setenv("JOURNAL_STREAM", v, 1);
    wr_log_detect_journal();
}

Test(log, text_line_has_time_pid_ident_level_and_message)
{
    char want[128], *text;

    wr_warn("hello %d", 42);
    text = written();
    snprintf(want, sizeof want, "Z warren[%d] tester: WARN: hello 42\n", (int)getpid());
    /* 2026-11-23T10:50:00.123 */
    cr_expect_eq(strlen(text), 23 + strlen(want), "line: [%s]", text);
    cr_expect(text[4] == '-' && text[10] == 'T' && text[19] == '.', "line: [%s]", text);
    cr_expect_str_eq(text + 23, want);
    free(text);
}

Test(log, text_lines_above_the_level_are_dropped)
{
    char *text;

    wr_log_set_level(WR_LOG_WARN);
    wr_info("not written");
    wr_debug("nor this");
    wr_error("written");
    text = written();
    cr_expect(strstr(text, "not written") == NULL && strstr(text, "nor this") == NULL);
    cr_expect(strstr(text, "tester: ERROR: written\n") != NULL, "log: [%s]", text);
    free(text);
}

Test(log, json_line_has_time_level_role_pid_and_msg)
{
    json_t *j;
    const char *time;

    wr_log_set_format(WR_LOG_JSON);
    wr_info("hello %s", "world");
    j = json_written();
    time = json_string_value(json_object_get(j, "time"));
    cr_assert_not_null(time);
    /* RFC 3339, UTC, milliseconds */
    cr_expect_eq(strlen(time), 24, "time %s", time);
    cr_expect(time[10] == 'T' && time[19] == '.' && time[23] == 'Z', "time %s", time);
    cr_expect_str_eq(json_string_value(json_object_get(j, "level")), "info");
    cr_expect_str_eq(json_string_value(json_object_get(j, "role")), "tester");
    cr_expect_eq(json_integer_value(json_object_get(j, "pid")), getpid());
    cr_expect_str_eq(json_string_value(json_object_get(j, "msg")), "hello world");
    cr_expect_null(json_object_get(j, "worker"), "a worker index outside a worker");
    cr_expect_eq(json_object_size(j), 5);
    json_decref(j);
}

Test(log, json_level_names)
{
    static const struct {
        int level;
        const char *name;
    } levels[] = {{WR_LOG_ERROR, "error"},
                  {WR_LOG_WARN, "warn"},
                  {WR_LOG_INFO, "info"},
                  {WR_LOG_DEBUG, "debug"}};

    wr_log_set_format(WR_LOG_JSON);
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
        json_t *j;

        clear();
        wr_log(levels[i].level, "x");
        j = json_written();
        cr_expect_str_eq(json_string_value(json_object_get(j, "level")), levels[i].name);
        json_decref(j);
    }
}

Test(log, a_worker_ident_gives_role_worker_and_its_index)
{
    json_t *j;
    char *text;

    wr_log_set_ident("worker 3");
    wr_info("up");
    text = written();
    cr_expect(strstr(text, " worker 3: INFO: up\n") != NULL, "text: [%s]", text);
    free(text);
    clear();
    wr_log_set_format(WR_LOG_JSON);
    wr_info("up");
    j = json_written();
    cr_expect_str_eq(json_string_value(json_object_get(j, "role")), "worker");
    cr_expect_eq(json_integer_value(json_object_get(j, "worker")), 3);
    json_decref(j);
}

Test(log, fields_go_into_json_lines_and_leave_text_lines_alone)
{
    json_t *j;
    char *text;
    const char *gone = NULL;

#define FIELDS                                                                                     \
    WR_LOG_FIELDS(WR_LOG_STR("route", "rpc"), WR_LOG_INT("handled", 7),                            \
                  WR_LOG_DOUBLE("lived_seconds", 1.5), WR_LOG_STR("method", gone),                 \
                  WR_LOG_INT(NULL, 9), WR_LOG_STR("msg", "reserved"),                              \
                  WR_LOG_STR("signal", "SIGSEGV"))
    wr_log_fields(WR_LOG_WARN, FIELDS, "worker %d died", 1);
    text = written();
    cr_expect(strstr(text, " tester: WARN: worker 1 died\n") != NULL, "text: [%s]", text);
    free(text);
    clear();
    wr_log_set_format(WR_LOG_JSON);
    wr_log_fields(WR_LOG_WARN, FIELDS, "worker %d died", 1);
#undef FIELDS
    j = json_written();
    cr_expect_str_eq(json_string_value(json_object_get(j, "route")), "rpc");
    cr_expect_eq(json_integer_value(json_object_get(j, "handled")), 7);
    cr_expect(json_real_value(json_object_get(j, "lived_seconds")) == 1.5);
    cr_expect_str_eq(json_string_value(json_object_get(j, "signal")), "SIGSEGV");
    cr_expect_null(json_object_get(j, "method"), "a NULL string field is left out");
    cr_expect_str_eq(json_string_value(json_object_get(j, "msg")), "worker 1 died");
    /* time level role pid msg + route handled lived_seconds signal */
    cr_expect_eq(json_object_size(j), 9);
    json_decref(j);
}

Test(log, worker_and_pid_fields_replace_the_lines_own)
{
    json_t *j;
    char *text;

    wr_log_set_format(WR_LOG_JSON);
    wr_log_fields(WR_LOG_INFO, WR_LOG_FIELDS(WR_LOG_INT("worker", 2), WR_LOG_INT("pid", 4242)),
                  "about worker 2");
    text = written();
    /* Once each: no duplicate keys. */
    cr_expect(strstr(text, "\"pid\"") && !strstr(strstr(text, "\"pid\"") + 1, "\"pid\""),
              "line: %s", text);
    free(text);
    j = json_written();
    cr_expect_eq(json_integer_value(json_object_get(j, "worker")), 2);
    cr_expect_eq(json_integer_value(json_object_get(j, "pid")), 4242);
    json_decref(j);
}

Test(log, json_strings_are_escaped)
{
    /* quote, backslash, newline, tab, a control char, DEL, valid UTF-8
     * (é, €, 😀), then invalid bytes: a stray continuation, a lone lead,
     * an overlong '/', a surrogate, and a sequence cut at the end. */
    const char *in =
        "a\"b\\c\nd\te\x01"
        "f\x7f"
        "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80|\x80|\xc3|\xc0\xaf|\xed\xa0\x80|\xe2\x82";
    const char *want = "a\"b\\c\nd\te\x01"
                       "f\x7f"
                       "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80|\xef\xbf\xbd|\xef\xbf\xbd|"
                       "\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|"
                       "\xef\xbf\xbd\xef\xbf\xbd";
    json_t *j;
    char *text;

    wr_log_set_format(WR_LOG_JSON);
    wr_log_fields(WR_LOG_INFO, WR_LOG_FIELDS(WR_LOG_STR("method", in)), "%s", in);
    text = written();
    cr_expect(strstr(text, "\\u0001") != NULL, "line: %s", text);
    free(text);
    j = json_written(); /* jansson refuses invalid UTF-8 */
    cr_expect_str_eq(json_string_value(json_object_get(j, "msg")), want);
    cr_expect_str_eq(json_string_value(json_object_get(j, "method")), want);
    json_decref(j);
}

Test(log, a_long_message_is_cut_with_a_marker)
{
    char big[5000];
    char *text;
    json_t *j;
    const char *msg;

    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    wr_info("%s", big);
    text = written();
    cr_expect(strstr(text, "xxx...[truncated]\n") != NULL, "text line: %.80s...", text);
    cr_expect(strlen(text) < 2200, "%zu bytes", strlen(text));
    free(text);

    clear();
    wr_log_set_format(WR_LOG_JSON);
    wr_info("%s", big);
    j = json_written();
    msg = json_string_value(json_object_get(j, "msg"));
    cr_assert_not_null(msg);
    cr_expect(strlen(msg) > 2000 && strstr(msg, "xxx...[truncated]") == msg + strlen(msg) - 17);
    json_decref(j);
}

Test(log, a_message_that_grows_when_escaped_still_makes_valid_json)
{
    char big[3000];
    json_t *j;
    const char *msg;

    memset(big, '\x01', sizeof big - 1); /* each one is \u0001: six bytes */
    big[sizeof big - 1] = '\0';
    wr_log_set_format(WR_LOG_JSON);
    wr_log_fields(WR_LOG_INFO, WR_LOG_FIELDS(WR_LOG_STR("route", "rpc")), "%s", big);
    j = json_written();
    msg = json_string_value(json_object_get(j, "msg"));
    cr_assert_not_null(msg);
    cr_expect(strstr(msg, "\x01...[truncated]") != NULL);
    cr_expect_str_eq(json_string_value(json_object_get(j, "route")), "rpc");
    json_decref(j);
}

Test(log, a_cut_message_does_not_split_a_utf8_sequence)
{
    char big[4000];
    json_t *j;
    const char *msg;

    /* "é" is two bytes, and 2048 - 15 (where the marker goes) is odd: the
     * cut falls inside one */
    memset(big, 'b', sizeof big);
    for (size_t i = 0; i + 1 < sizeof big - 1; i += 2)
        big[i] = '\xc3', big[i + 1] = '\xa9';
    big[sizeof big - 1] = '\0';
    wr_log_set_format(WR_LOG_JSON);
    wr_info("%s", big);
    j = json_written();
    msg = json_string_value(json_object_get(j, "msg"));
    cr_assert_not_null(msg);
    cr_expect(strstr(msg, "\xc3\xa9...[truncated]") != NULL, "no \\ufffd before the marker");
    json_decref(j);
}

Test(log, under_journald_a_text_line_starts_with_its_priority_and_no_time)
{
    static const struct {
        int level;
        const char *start;
    } levels[] = {{WR_LOG_ERROR, "<3>warren["},
                  {WR_LOG_WARN, "<4>warren["},
                  {WR_LOG_INFO, "<6>warren["},
                  {WR_LOG_DEBUG, "<7>warren["}};
    char want[96], *text;

    journal_is_our_file();
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
        clear();
        wr_log(levels[i].level, "m");
        text = written();
        cr_expect(strncmp(text, levels[i].start, strlen(levels[i].start)) == 0, "line: [%s]", text);
        free(text);
    }
    clear();
    wr_warn("hello");
    text = written();
    snprintf(want, sizeof want, "<4>warren[%d] tester: WARN: hello\n", (int)getpid());
    cr_expect_str_eq(text, want);
    free(text);
}

Test(log, under_journald_a_json_line_is_the_priority_then_the_object)
{
    char *text;
    json_t *j;

    journal_is_our_file();
    wr_log_set_format(WR_LOG_JSON);
    wr_error("boom");
    text = written();
    cr_assert(strncmp(text, "<3>{", 4) == 0, "line: [%s]", text);
    j = json_loads(text + 3, 0, NULL);
    cr_assert_not_null(j, "line: [%s]", text);
    cr_expect_str_eq(json_string_value(json_object_get(j, "msg")), "boom");
    cr_expect_str_eq(json_string_value(json_object_get(j, "level")), "error");
    json_decref(j);
    free(text);
}

Test(log, a_journal_stream_that_is_not_our_stderr_changes_nothing)
{
    struct stat st;
    char v[64], *text;

    cr_assert_eq(stat("/", &st), 0);
    snprintf(v, sizeof v, "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    setenv("JOURNAL_STREAM", v, 1);
    wr_log_detect_journal();
    wr_info("plain");
    text = written();
    cr_expect(text[0] >= '0' && text[0] <= '9', "line: [%s]", text);
    free(text);

    clear();
    setenv("JOURNAL_STREAM", "garbage", 1);
    wr_log_detect_journal();
    wr_info("plain");
    text = written();
    cr_expect(text[0] >= '0' && text[0] <= '9', "line: [%s]", text);
    free(text);
}

static char hooked[256];
static int hooked_level = -1;

static void hook(int level, const char *msg)
{
    hooked_level = level;
    snprintf(hooked, sizeof hooked, "%s", msg);
}

Test(log, the_hook_sees_the_message_alone_in_either_format)
{
    wr_log_set_hook(hook);
    wr_error("first %d", 1);
    cr_expect_eq(hooked_level, WR_LOG_ERROR);
    cr_expect_str_eq(hooked, "first 1");
    wr_log_set_format(WR_LOG_JSON);
    journal_is_our_file();
    wr_log_fields(WR_LOG_WARN, WR_LOG_FIELDS(WR_LOG_STR("route", "rpc")), "second \"%d\"", 2);
    cr_expect_eq(hooked_level, WR_LOG_WARN);
    cr_expect_str_eq(hooked, "second \"2\"");
    wr_log_set_hook(NULL);
}
