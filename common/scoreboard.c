/* Per-worker slots in shared memory; see scoreboard.h. */
#include "common/scoreboard.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define SLOT_BYTES 4096 /* a page each: a worker maps only its own */

_Static_assert(sizeof(wr_slot) <= SLOT_BYTES, "a slot fits its page");

int wr_scoreboard_create(wr_scoreboard *sb, int nslots)
{
    size_t size = (size_t)nslots * SLOT_BYTES;

    sb->fd = memfd_create("warren-scoreboard", MFD_CLOEXEC);
    if (sb->fd < 0)
        return -1;
    if (ftruncate(sb->fd, (off_t)size) < 0) {
        int e = errno;
        close(sb->fd);
        errno = e;
        return -1;
    }
    sb->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, sb->fd, 0);
    if (sb->base == MAP_FAILED) {
        int e = errno;
        close(sb->fd);
        errno = e;
        return -1;
    }
    sb->nslots = nslots;
    return 0;
}

void wr_scoreboard_destroy(wr_scoreboard *sb)
{
    if (sb->base && sb->base != MAP_FAILED)
        munmap(sb->base, (size_t)sb->nslots * SLOT_BYTES);
    if (sb->fd >= 0)
        close(sb->fd);
    sb->base = NULL;
    sb->fd = -1;
}

wr_slot *wr_scoreboard_slot(const wr_scoreboard *sb, int i)
{
    return (wr_slot *)(sb->base + (size_t)i * SLOT_BYTES);
}

void wr_scoreboard_clear(const wr_scoreboard *sb, int i)
{
    memset(wr_scoreboard_slot(sb, i), 0, SLOT_BYTES);
}

void wr_slot_read(const wr_slot *s, wr_slot_view *out)
{
    for (int tries = 0;; tries++) {
        unsigned before = atomic_load_explicit(&s->seq, memory_order_acquire);

        memset(out, 0, sizeof *out);
        if (before & 1) {
            if (tries < 1000)
                continue;
            return; /* died mid-write: idle (see scoreboard.h) */
        }
        out->busy = s->busy;
        out->busy_since_ms = s->busy_since_ms;
        out->handled = s->handled;
        out->failed = s->failed;
        out->backlog = s->backlog;
        out->backlog_ms = s->backlog_ms;
        memcpy(out->last_error, s->last_error, sizeof s->last_error);
        out->last_error[sizeof s->last_error - 1] = '\0';
        if (out->busy) {
            out->current.type = WR_IPC_START;
            memcpy(out->current.route, s->route, sizeof s->route);
            memcpy(out->current.method, s->method, sizeof s->method);
            memcpy(out->current.msgid, s->msgid, sizeof s->msgid);
            memcpy(out->current.hash, s->hash, sizeof s->hash);
            out->current.route[sizeof s->route - 1] = '\0';
            out->current.method[sizeof s->method - 1] = '\0';
            out->current.msgid[sizeof s->msgid - 1] = '\0';
            out->current.hash[sizeof s->hash - 1] = '\0';
        }
        /* An RMW of 0, for its release half: the copies above stay
         * before it. */
        if (atomic_fetch_add_explicit((atomic_uint *)&s->seq, 0, memory_order_acq_rel) == before ||
            tries >= 1000)
            return;
    }
}

void wr_slot_want_backlog(wr_slot *s, int on)
{
    atomic_store_explicit(&s->want_backlog, on ? 1 : 0, memory_order_relaxed);
}

wr_slot *wr_slot_attach(int index)
{
    void *p;

    if (fcntl(WR_SCOREBOARD_FD, F_GETFD) < 0) {
        wr_slot *own = calloc(1, SLOT_BYTES);
        if (own)
            own->private_copy = 1;
        return own;
    }
    p = mmap(NULL, SLOT_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, WR_SCOREBOARD_FD,
             (off_t)index * SLOT_BYTES);
    close(WR_SCOREBOARD_FD);
    return p == MAP_FAILED ? NULL : p;
}

void wr_slot_detach(wr_slot *s)
{
    if (!s)
        return;
    if (s->private_copy)
        free(s);
    else
        munmap(s, SLOT_BYTES);
}

/* Read-modify-writes, not fences (which gcc's ThreadSanitizer cannot
 * follow): the acquire half keeps the data stores after the odd count,
 * the release half keeps them before the even one. */
static void write_begin(wr_slot *s)
{
    atomic_fetch_add_explicit(&s->seq, 1, memory_order_acq_rel);
}

static void write_end(wr_slot *s)
{
    atomic_fetch_add_explicit(&s->seq, 1, memory_order_release);
}

/* Copy a token, cut to fit. */
static void put(char *dst, size_t size, const char *src)
{
    size_t n = strnlen(src, size - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

long long wr_monotonic_ms(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

void wr_slot_begin(wr_slot *s, const wr_ipc_msg *m)
{
    long long now = wr_monotonic_ms();

    write_begin(s);
    s->busy = 1;
    s->busy_since_ms = now;
    put(s->route, sizeof s->route, m->route);
    put(s->method, sizeof s->method, m->method);
    put(s->msgid, sizeof s->msgid, m->msgid);
    put(s->hash, sizeof s->hash, m->hash);
    write_end(s);
}

void wr_slot_end(wr_slot *s, unsigned long handled, unsigned long failed)
{
    write_begin(s);
    s->busy = 0;
    s->handled = handled;
    s->failed = failed;
    write_end(s);
}

int wr_slot_backlog_wanted(const wr_slot *s)
{
    return atomic_load_explicit((atomic_int *)&s->want_backlog, memory_order_relaxed);
}

void wr_slot_set_backlog(wr_slot *s, long backlog, long long at_ms)
{
    write_begin(s);
    s->backlog = backlog;
    s->backlog_ms = at_ms;
    write_end(s);
}

void wr_slot_set_error(wr_slot *s, const char *msg)
{
    write_begin(s);
    put(s->last_error, sizeof s->last_error, msg);
    write_end(s);
}
