/*
 * Unit tests for supervisor/poison.c: deaths are counted per message
 * (route, id, body hash), the latest cause is kept, wr_poison_lines()
 * lists exactly the messages at or past the limit as command lines the
 * worker can parse, and a full table forgets its oldest entry first.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor/poison.h"

static wr_ipc_msg start(const char *route, const char *msgid, const char *hash)
{
    wr_ipc_msg m = {.type = WR_IPC_START};
    snprintf(m.route, sizeof m.route, "%s", route);
    snprintf(m.method, sizeof m.method, "test.crash");
    snprintf(m.msgid, sizeof m.msgid, "%s", msgid);
    snprintf(m.hash, sizeof m.hash, "%s", hash);
    return m;
}

/* The slots are large: keep the table off the (criterion) stack. */
static wr_poison *new_table(void)
{
    wr_poison *p = calloc(1, sizeof *p);
    cr_assert_not_null(p);
    return p;
}

Test(poison, counts_deaths_per_message)
{
    wr_poison *p = new_table();
    wr_ipc_msg a = start("rpc", "q1", "aaaa"), b = start("rpc", "q1", "bbbb");
    wr_ipc_msg c = start("other", "q1", "aaaa"), d = start("rpc", "q2", "aaaa");
    const wr_poison_entry *e;

    cr_assert_eq(wr_poison_record(p, &a, "killed by signal 11")->deaths, 1);
    e = wr_poison_record(p, &a, "killed by signal 9");
    cr_assert_eq(e->deaths, 2);
    cr_assert_str_eq(e->why, "killed by signal 9", "the latest cause is kept");
    cr_assert_str_eq(e->route, "rpc");
    cr_assert_str_eq(e->msgid, "q1");
    cr_assert_str_eq(e->hash, "aaaa");
    /* Same id, other body; other route; other id: each its own message. */
    cr_assert_eq(wr_poison_record(p, &b, "x")->deaths, 1);
    cr_assert_eq(wr_poison_record(p, &c, "x")->deaths, 1);
    cr_assert_eq(wr_poison_record(p, &d, "x")->deaths, 1);
    cr_assert_eq(p->n, 4);
    free(p);
}

/* What wr_poison_lines() wrote into BUF, one parsed message per line. */
static size_t parse_lines(char *buf, wr_ipc_msg *out, size_t max)
{
    size_t n = 0;
    char *save = NULL;

    for (char *line = strtok_r(buf, "\n", &save); line && n < max;
         line = strtok_r(NULL, "\n", &save)) {
        cr_assert_eq(wr_ipc_parse(line, &out[n]), 0, "unparseable: %s", line);
        cr_assert_eq(out[n].type, WR_IPC_POISON);
        n++;
    }
    return n;
}

Test(poison, lines_list_messages_at_the_limit)
{
    wr_poison *p = new_table();
    wr_ipc_msg once = start("rpc", "once", "1111"), thrice = start("rpc", "thrice", "3333");
    wr_ipc_msg twice = start("rpc", "twice", "2222"), got[4];
    char *buf = strdup("config\n");
    size_t len = strlen(buf);

    wr_poison_record(p, &once, "killed by signal 11");
    for (int i = 0; i < 3; i++)
        wr_poison_record(p, &thrice, "killed by signal 6 (Aborted)");
    for (int i = 0; i < 2; i++)
        wr_poison_record(p, &twice, "exited with code 1");

    cr_assert_eq(wr_poison_lines(p, 2, &buf, &len), 0);
    cr_assert_eq(len, strlen(buf), "LEN must track the text, which stays NUL-terminated");
    cr_assert_eq(strncmp(buf, "config\n", 7), 0, "what was in the buffer is kept");
    cr_assert_eq(parse_lines(buf + 7, got, 4), 2);
    cr_assert_str_eq(got[0].msgid, "thrice");
    cr_assert_eq(got[0].deaths, 3);
    cr_assert_str_eq(got[0].hash, "3333");
    cr_assert_str_eq(got[0].why, "killed by signal 6 (Aborted)");
    cr_assert_str_eq(got[1].msgid, "twice");
    cr_assert_eq(got[1].deaths, 2);
    free(buf);

    /* Nothing at the limit: nothing appended. */
    buf = strdup("");
    len = 0;
    cr_assert_eq(wr_poison_lines(p, 4, &buf, &len), 0);
    cr_assert_eq(len, 0);
    free(buf);
    free(p);
}

Test(poison, one_line_is_a_poison_command)
{
    wr_poison *p = new_table();
    wr_ipc_msg m = start("rpc", "id with space", "abcd"), got;
    char line[WR_IPC_LINE_MAX];
    int n;

    n = wr_poison_line(wr_poison_record(p, &m, "killed by signal 11 (Segmentation fault)"), line,
                       sizeof line);
    cr_assert_gt(n, 0);
    cr_assert_str_eq(line, "poison rpc id_with_space abcd 1 killed by signal 11 "
                           "(Segmentation fault)\n");
    line[n - 1] = '\0';
    cr_assert_eq(wr_ipc_parse(line, &got), 0);
    cr_assert_eq(got.deaths, 1);
    free(p);
}

/* A full table forgets its oldest entry first, then the next oldest. */
Test(poison, full_table_evicts_the_oldest)
{
    wr_poison *p = new_table();
    char id[32];
    wr_ipc_msg m;

    for (int i = 0; i < WR_POISON_SLOTS; i++) {
        snprintf(id, sizeof id, "m%d", i);
        m = start("rpc", id, "h");
        wr_poison_record(p, &m, "x");
    }
    cr_assert_eq(p->n, WR_POISON_SLOTS);
    m = start("rpc", "m1", "h");
    cr_assert_eq(wr_poison_record(p, &m, "x")->deaths, 2, "m1 is still known");

    m = start("rpc", "new", "h"); /* takes m0's slot */
    cr_assert_eq(wr_poison_record(p, &m, "x")->deaths, 1);
    cr_assert_eq(p->n, WR_POISON_SLOTS);
    m = start("rpc", "m1", "h");
    cr_assert_eq(wr_poison_record(p, &m, "x")->deaths, 3,
                 "m1 keeps its slot: the oldest entry goes, not the least recently hit");
    m = start("rpc", "m0", "h"); /* forgotten: counts from 1 again, takes m1's slot */
    cr_assert_eq(wr_poison_record(p, &m, "x")->deaths, 1);
    m = start("rpc", "m1", "h");
    cr_assert_eq(wr_poison_record(p, &m, "x")->deaths, 1, "m1 went next");
    m = start("rpc", "new", "h");
    cr_assert_eq(wr_poison_record(p, &m, "x")->deaths, 2);
    free(p);
}
