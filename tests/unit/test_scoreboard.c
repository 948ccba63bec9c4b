/*
 * Unit tests for common/scoreboard.c: a worker process writes its slot
 * through its own mapping of the supervisor's memfd (as fd 4, the way
 * the supervisor hands it over), and the supervisor's side reads what it
 * holds, also after the worker died in the middle of a call.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/scoreboard.h"

/* Run FN(ARG) in a child that sees the scoreboard as fd 4, like a
 * worker; returns when the child has exited. */
static void in_worker(const wr_scoreboard *sb, void (*fn)(int), int index)
{
    pid_t pid = fork();

    cr_assert_neq(pid, -1);
    if (pid == 0) {
        if (dup2(sb->fd, WR_SCOREBOARD_FD) < 0)
            _exit(90);
        fn(index);
        _exit(0);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "worker status %d", st);
}

static wr_ipc_msg request(const char *msgid)
{
    wr_ipc_msg m = {.type = WR_IPC_START};

    strcpy(m.route, "rpc");
    strcpy(m.method, "test.crash");
    snprintf(m.msgid, sizeof m.msgid, "%s", msgid);
    wr_ipc_body_hash("{}", 2, m.hash);
    return m;
}

static void answer_two_then_die_in_third(int index)
{
    wr_slot *s = wr_slot_attach(index);
    wr_ipc_msg m;

    if (!s)
        _exit(91);
    m = request("one");
    wr_slot_begin(s, &m);
    wr_slot_end(s, 1, 0);
    m = request("two");
    wr_slot_begin(s, &m);
    wr_slot_end(s, 2, 1);
    m = request("three");
    wr_slot_begin(s, &m);
    _exit(0); /* as a crash would: with the request in hand */
}

static void answer_one(int index)
{
    wr_slot *s = wr_slot_attach(index);
    wr_ipc_msg m = request("alone");

    wr_slot_begin(s, &m);
    wr_slot_end(s, 1, 0);
}

Test(scoreboard, the_supervisor_reads_what_a_dead_worker_held)
{
    wr_scoreboard sb;
    wr_slot_view v;
    long long before = wr_monotonic_ms();

    cr_assert_eq(wr_scoreboard_create(&sb, 3), 0);
    in_worker(&sb, answer_two_then_die_in_third, 2);
    in_worker(&sb, answer_one, 0);

    wr_slot_read(wr_scoreboard_slot(&sb, 2), &v);
    cr_assert(v.busy);
    cr_assert_eq(v.handled, 2);
    cr_assert_eq(v.failed, 1);
    cr_assert_eq(v.current.type, WR_IPC_START);
    cr_assert_str_eq(v.current.msgid, "three");
    cr_assert_str_eq(v.current.method, "test.crash");
    cr_assert_str_eq(v.current.route, "rpc");
    cr_assert_eq(strlen(v.current.hash), 16);
    cr_assert_geq(v.busy_since_ms, before);
    cr_assert_leq(v.busy_since_ms, wr_monotonic_ms());

    /* Its neighbours are untouched by it. */
    wr_slot_read(wr_scoreboard_slot(&sb, 0), &v);
    cr_assert_not(v.busy);
    cr_assert_eq(v.handled, 1);
    cr_assert_eq(v.current.type, 0);
    wr_slot_read(wr_scoreboard_slot(&sb, 1), &v);
    cr_assert_not(v.busy);
    cr_assert_eq(v.handled, 0);

    /* Cleared for the next worker of that slot. */
    wr_scoreboard_clear(&sb, 2);
    wr_slot_read(wr_scoreboard_slot(&sb, 2), &v);
    cr_assert_not(v.busy);
    cr_assert_eq(v.handled, 0);
    wr_scoreboard_destroy(&sb);
}

/* Pages of [P, P + LEN) resident in this process (mincore). */
static size_t resident_pages(const void *p, size_t len)
{
    unsigned char vec[64];
    size_t n = (len + 4095) / 4096, in = 0;

    cr_assert_leq(n, sizeof vec);
    cr_assert_eq(mincore((void *)p, len, vec), 0);
    for (size_t i = 0; i < n; i++)
        in += vec[i] & 1;
    return in;
}

Test(scoreboard, clearing_zeroes_the_whole_slot_without_mapping_it)
{
    wr_scoreboard sb;
    cr_assert_eq(wr_scoreboard_create(&sb, 2), 0);
    unsigned char *a = (unsigned char *)wr_scoreboard_slot(&sb, 0);
    unsigned char *b = (unsigned char *)wr_scoreboard_slot(&sb, 1);
    size_t len = (size_t)(b - a);

    memset(a, 0x5a, len);
    memset(b, 0x6b, len);
    cr_assert_eq(resident_pages(a, len), (len + 4095) / 4096);
    wr_scoreboard_clear(&sb, 0);
    /* The pages went back to the memfd: none is resident until read. */
    cr_assert_eq(resident_pages(a, len), 0);
    for (size_t i = 0; i < len; i++)
        cr_assert_eq(a[i], 0, "byte %zu", i);
    for (size_t i = 0; i < len; i++)
        cr_assert_eq(b[i], 0x6b, "neighbour's byte %zu", i);
    wr_scoreboard_destroy(&sb);
}

Test(scoreboard, a_slot_left_mid_write_reads_as_idle)
{
    wr_scoreboard sb;
    wr_slot_view v;
    wr_slot *s;
    wr_ipc_msg m = request("x");

    cr_assert_eq(wr_scoreboard_create(&sb, 1), 0);
    s = wr_scoreboard_slot(&sb, 0);
    wr_slot_begin(s, &m);
    atomic_fetch_add(&s->seq, 1); /* as if killed between the two stores */
    wr_slot_read(s, &v);
    cr_assert_not(v.busy);
    wr_scoreboard_destroy(&sb);
}

static void by_hand(int index)
{
    wr_ipc_msg m = request("by hand");
    wr_slot *s;

    close(WR_SCOREBOARD_FD);
    s = wr_slot_attach(index);
    if (!s)
        _exit(91);
    wr_slot_begin(s, &m);
    wr_slot_end(s, 1, 0);
    if (s->handled != 1 || s->busy || !s->private_copy)
        _exit(92);
    wr_slot_detach(s);
    _exit(0);
}

/* A worker started by hand has no fd 4: it writes a slot of its own. */
Test(scoreboard, without_fd_4_a_worker_gets_a_private_slot)
{
    pid_t pid = fork();
    int st;

    cr_assert_neq(pid, -1);
    if (pid == 0)
        by_hand(0);
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
}

/* What the supervisor's side reads for pool decisions and a crash storm:
 * the backlog and when it was counted, the last error. */
static void report_backlog_and_error(int index)
{
    wr_slot *s = wr_slot_attach(index);
    char longer[2 * WR_SLOT_ERROR_MAX];

    if (!s)
        _exit(91);
    /* The supervisor asked for it before we started. */
    if (!wr_slot_backlog_wanted(s))
        _exit(92);
    wr_slot_set_backlog(s, 42, 1234);
    wr_slot_set_error(s, "first error");
    memset(longer, 'x', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    wr_slot_set_error(s, longer);
    wr_slot_set_error(s, "broker 127.0.0.1:1: connection refused");
}

Test(scoreboard, backlog_and_last_error_round_trip)
{
    wr_scoreboard sb;
    wr_slot_view v;

    cr_assert_eq(wr_scoreboard_create(&sb, 2), 0);
    wr_slot_want_backlog(wr_scoreboard_slot(&sb, 1), 1);
    in_worker(&sb, report_backlog_and_error, 1);
    wr_slot_read(wr_scoreboard_slot(&sb, 1), &v);
    cr_assert_eq(v.backlog, 42);
    cr_assert_eq(v.backlog_ms, 1234);
    cr_assert_str_eq(v.last_error, "broker 127.0.0.1:1: connection refused");

    /* Unknown after a failed count. */
    wr_slot_set_backlog(wr_scoreboard_slot(&sb, 1), -1, 5678);
    wr_slot_read(wr_scoreboard_slot(&sb, 1), &v);
    cr_assert_eq(v.backlog, -1);
    cr_assert_eq(v.backlog_ms, 5678);

    /* The neighbour never counted and never failed. */
    wr_slot_read(wr_scoreboard_slot(&sb, 0), &v);
    cr_assert_eq(v.backlog_ms, 0);
    cr_assert_str_eq(v.last_error, "");
    wr_scoreboard_destroy(&sb);
}

Test(scoreboard, last_error_is_cut_to_fit)
{
    wr_scoreboard sb;
    wr_slot_view v;
    char longer[2 * WR_SLOT_ERROR_MAX];

    cr_assert_eq(wr_scoreboard_create(&sb, 1), 0);
    memset(longer, 'x', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    wr_slot_set_error(wr_scoreboard_slot(&sb, 0), longer);
    wr_slot_read(wr_scoreboard_slot(&sb, 0), &v);
    cr_assert_eq(strlen(v.last_error), WR_SLOT_ERROR_MAX - 1);
    wr_scoreboard_destroy(&sb);
}

Test(scoreboard, want_backlog_is_the_supervisors_switch)
{
    wr_scoreboard sb;
    wr_slot *s;
    unsigned seq;

    cr_assert_eq(wr_scoreboard_create(&sb, 1), 0);
    s = wr_scoreboard_slot(&sb, 0);
    cr_assert_not(wr_slot_backlog_wanted(s));
    seq = atomic_load(&s->seq);
    wr_slot_want_backlog(s, 1);
    cr_assert(wr_slot_backlog_wanted(s));
    /* Outside the seqlock: the worker's writes are not disturbed. */
    cr_assert_eq(atomic_load(&s->seq), seq);
    wr_slot_want_backlog(s, 0);
    cr_assert_not(wr_slot_backlog_wanted(s));
    /* A restarted worker's slot starts without it. */
    wr_slot_want_backlog(s, 1);
    wr_scoreboard_clear(&sb, 0);
    cr_assert_not(wr_slot_backlog_wanted(s));
    wr_scoreboard_destroy(&sb);
}
