/*
 * Unit tests for common/ipc.c: the status and command lines between
 * supervisor and worker.  Every message survives format → parse; tokens
 * are made safe (no spaces or control characters, never empty) and cut to
 * fit; unknown or malformed lines are refused; the body hash is FNV-1a
 * and must never change (a supervisor and its workers may come from
 * different builds during an upgrade).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/ipc.h"

/* MSG formatted and parsed back into OUT; the line (with its newline)
 * goes to LINE. */
static void round_trip(const wr_ipc_msg *msg, wr_ipc_msg *out, char line[WR_IPC_LINE_MAX])
{
    int n = wr_ipc_format(msg, line, WR_IPC_LINE_MAX);

    cr_assert_gt(n, 0, "format failed");
    cr_assert_eq((size_t)n, strlen(line));
    cr_assert_eq(line[n - 1], '\n', "%s", line);
    line[n - 1] = '\0';
    cr_assert_eq(wr_ipc_parse(line, out), 0, "cannot parse back: %s", line);
    cr_assert_eq(out->type, msg->type);
}

Test(ipc, simple_lines_round_trip)
{
    const wr_ipc_type types[] = {WR_IPC_READY, WR_IPC_SYNC};
    const char *texts[] = {"ready", "sync"};
    char line[WR_IPC_LINE_MAX];
    wr_ipc_msg out;

    for (size_t i = 0; i < 2; i++) {
        wr_ipc_msg m = {.type = types[i]};
        round_trip(&m, &out, line);
        cr_assert_str_eq(line, texts[i]);
    }
}

Test(ipc, poison_round_trips_with_free_text)
{
    wr_ipc_msg m = {.type = WR_IPC_POISON, .deaths = 3}, out;
    char line[WR_IPC_LINE_MAX];

    strcpy(m.route, "rpc");
    strcpy(m.msgid, "boom");
    strcpy(m.hash, "0123456789abcdef");
    strcpy(m.why, "killed by signal 11 (Segmentation fault)");
    round_trip(&m, &out, line);
    cr_assert_str_eq(line, "poison rpc boom 0123456789abcdef 3 killed by signal 11 "
                           "(Segmentation fault)");
    cr_assert_str_eq(out.route, "rpc");
    cr_assert_str_eq(out.msgid, "boom");
    cr_assert_str_eq(out.hash, "0123456789abcdef");
    cr_assert_eq(out.deaths, 3);
    cr_assert_str_eq(out.why, m.why);
}

/* A correlation id is whatever the client sent: spaces, newlines, tabs
 * and DEL would break the line format, and an empty token would shift
 * the next ones. */
Test(ipc, tokens_are_sanitized)
{
    wr_ipc_msg m = {.type = WR_IPC_POISON, .deaths = 2}, out;
    char line[WR_IPC_LINE_MAX];

    strcpy(m.route, "rpc");
    strcpy(m.msgid, "a b\nc\td\x7f"
                    "e\x01");
    strcpy(m.hash, "");
    strcpy(m.why, "SIGSEGV");
    round_trip(&m, &out, line);
    cr_assert_str_eq(line, "poison rpc a_b_c_d_e_ - 2 SIGSEGV");
    cr_assert_str_eq(out.hash, "-");
    cr_assert_str_eq(out.msgid, "a_b_c_d_e_");
}

/* Free text keeps its spaces, loses its control characters (a newline in
 * it would end the line early). */
Test(ipc, poison_text_loses_control_characters)
{
    wr_ipc_msg m = {.type = WR_IPC_POISON, .deaths = 1}, out;
    char line[WR_IPC_LINE_MAX];

    strcpy(m.route, "r");
    strcpy(m.msgid, "m");
    strcpy(m.hash, "h");
    strcpy(m.why, "two\nlines\tand a tab");
    round_trip(&m, &out, line);
    cr_assert_str_eq(out.why, "two lines and a tab");
}

/* Tokens are cut to WR_IPC_TOKEN_MAX - 1 bytes; a line of the longest
 * tokens still fits a line buffer. */
Test(ipc, long_tokens_are_truncated)
{
    wr_ipc_msg m = {.type = WR_IPC_POISON, .deaths = 4294967295U}, out;
    char line[WR_IPC_LINE_MAX];
    char *huge = malloc(4 * WR_IPC_TOKEN_MAX);

    memset(huge, 'x', 4 * WR_IPC_TOKEN_MAX - 1);
    huge[4 * WR_IPC_TOKEN_MAX - 1] = '\0';
    memcpy(m.route, huge, sizeof m.route - 1);
    memcpy(m.msgid, huge, sizeof m.msgid - 1);
    memcpy(m.hash, huge, sizeof m.hash - 1);
    memcpy(m.why, huge, sizeof m.why - 1);
    round_trip(&m, &out, line);
    cr_assert_eq(strlen(out.route), WR_IPC_TOKEN_MAX - 1);
    cr_assert_eq(strlen(out.msgid), WR_IPC_TOKEN_MAX - 1);
    cr_assert_eq(strlen(out.why), sizeof out.why - 1);
    cr_assert_eq(out.deaths, 4294967295U);

    {
        /* A message holding longer strings than its fields (the struct
         * filled by hand, unterminated) is still cut at the token size. */
        wr_ipc_msg s = {.type = WR_IPC_POISON};
        memset(s.route, 'r', sizeof s.route);
        memset(s.msgid, 'i', sizeof s.msgid);
        memset(s.hash, 'h', sizeof s.hash);
        round_trip(&s, &out, line);
        cr_assert_eq(strlen(out.route), WR_IPC_TOKEN_MAX - 1);
        cr_assert_eq(strlen(out.hash), WR_IPC_TOKEN_MAX - 1);
    }
    free(huge);
}

Test(ipc, format_refuses_unknown_type_and_small_buffer)
{
    wr_ipc_msg bad = {.type = (wr_ipc_type)99}, ready = {.type = WR_IPC_READY};
    char line[WR_IPC_LINE_MAX];

    cr_assert_eq(wr_ipc_format(&bad, line, sizeof line), -1);
    cr_assert_eq(wr_ipc_format(&ready, line, 6), -1, "\"ready\\n\" needs 7 bytes");
    cr_assert_eq(wr_ipc_format(&ready, line, 7), 6);
}

Test(ipc, unknown_and_malformed_lines_are_refused)
{
    const char *bad[] = {
        "",
        "   ",
        "bogus",
        "READY",
        "start rpc method id hash", /* per-call lines are gone: the scoreboard */
        "done 1 0",
        "drop",
        "poison rpc id hash",
        "poison rpc id hash many why",
    };
    wr_ipc_msg m;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(wr_ipc_parse(bad[i], &m), -1, "accepted \"%s\"", bad[i]);
}

/* New tokens go at the end of a line; an older reader ignores them. */
Test(ipc, extra_tokens_at_the_end_are_ignored)
{
    wr_ipc_msg m;

    cr_assert_eq(wr_ipc_parse("poison rpc id hash 3 why and more", &m), 0);
    cr_assert_str_eq(m.hash, "hash");
    cr_assert_eq(m.deaths, 3);
    cr_assert_eq(wr_ipc_parse("ready now", &m), 0);
    cr_assert_eq(m.type, WR_IPC_READY);
}

/* FNV-1a 64: bodies under 8 bytes hash as published; longer ones by
 * 8-byte words first.  These values must not change within a release
 * (workers of one pool must agree on a message's identity). */
Test(ipc, body_hash_is_stable)
{
    char h[17];

    wr_ipc_body_hash("", 0, h);
    cr_assert_str_eq(h, "cbf29ce484222325");
    wr_ipc_body_hash("a", 1, h);
    cr_assert_str_eq(h, "af63dc4c8601ec8c");
    wr_ipc_body_hash("foobar", 6, h);
    cr_assert_str_eq(h, "85944171f73967e8");
    wr_ipc_body_hash("0123456789abcdefXYZ", 19, h);
    cr_assert_str_eq(h, "af6d82e0fa8645b0"); /* by hand: see the comment above */
    /* One byte changed anywhere changes it. */
    {
        char body[64];
        char first[17];
        memset(body, 'x', sizeof body);
        wr_ipc_body_hash(body, sizeof body, first);
        for (size_t i = 0; i < sizeof body; i++) {
            body[i] = 'y';
            wr_ipc_body_hash(body, sizeof body, h);
            cr_assert_str_neq(h, first, "byte %zu", i);
            body[i] = 'x';
        }
    }
    /* The length counts, not a NUL. */
    wr_ipc_body_hash("a\0b", 3, h);
    cr_assert_str_neq(h, "af63dc4c8601ec8c");
}

Test(ipc, send_writes_one_line)
{
    int fds[2];
    char buf[WR_IPC_LINE_MAX];
    wr_ipc_msg m = {.type = WR_IPC_READY};
    ssize_t n;

    cr_assert_eq(pipe(fds), 0);
    cr_assert_eq(wr_ipc_send(fds[1], &m), 0);
    n = read(fds[0], buf, sizeof buf - 1);
    cr_assert_eq(n, 6);
    buf[n] = '\0';
    cr_assert_str_eq(buf, "ready\n");
    close(fds[0]);
    cr_assert_eq(wr_ipc_send(fds[1], &(wr_ipc_msg){.type = (wr_ipc_type)99}), -1);
    close(fds[1]);
}

/* A worker asks to be replaced (max_requests), saying why in free text. */
Test(ipc, retire_round_trips_with_its_reason)
{
    wr_ipc_msg m = {.type = WR_IPC_RETIRE}, out;
    char line[WR_IPC_LINE_MAX];

    strcpy(m.why, "max_requests 19");
    round_trip(&m, &out, line);
    cr_assert_str_eq(line, "retire max_requests 19");
    cr_assert_str_eq(out.why, "max_requests 19");

    /* Control characters cannot end the line early. */
    strcpy(m.why, "max_rss 1\n2");
    round_trip(&m, &out, line);
    cr_assert_str_eq(line, "retire max_rss 1 2");

    /* Never without a reason. */
    m.why[0] = '\0';
    round_trip(&m, &out, line);
    cr_assert_str_eq(line, "retire -");
    cr_assert_eq(wr_ipc_parse("retire", &out), -1);
    cr_assert_eq(wr_ipc_parse("retire   ", &out), -1);
    cr_assert_eq(wr_ipc_parse("retirement max_requests 3", &out), -1);
}
