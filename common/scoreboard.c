/* Per-worker slots in shared memory; see scoreboard.h. */
#include "common/scoreboard.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* Whole pages each (a worker maps only its own): the metrics make a slot
 * some 30 KiB, but only the pages a worker writes ever cost memory. */
#define SLOT_BYTES ((sizeof(wr_slot) + 4095) / 4096 * 4096)

const double wr_metrics_bounds[WR_METRICS_BUCKETS - 1] = {
    .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60};

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

/* Zero a slot by handing its pages back to the memfd (they read as zeros
 * after), not with memset: a memset maps every page of the slot into the
 * supervisor, and the metrics make a slot 8 pages, so 64 workers cost it
 * 2 MiB of resident memory it never reads (BENCHMARKS.md, "Memory").
 * The supervisor's reads touch only the first page. */
void wr_scoreboard_clear(const wr_scoreboard *sb, int i)
{
    if (fallocate(sb->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)i * SLOT_BYTES,
                  SLOT_BYTES) < 0)
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

void wr_slot_read_metrics(const wr_slot *s, wr_slot_metrics *out)
{
    for (int tries = 0;; tries++) {
        unsigned before = atomic_load_explicit(&s->seq, memory_order_acquire);

        if (before & 1) {
            if (tries < 1000)
                continue;
            memcpy(out, &s->metrics, sizeof *out); /* died mid-write: the counts as they are */
            return;
        }
        memcpy(out, &s->metrics, sizeof *out);
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

double wr_monotonic_seconds(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* The entry of (ROUTE, METHOD): found, else the first free one, else the
 * last ("other").  A worker serves a handful of methods, so the scan is
 * short; the last hit is tried first. */
static wr_metrics_call *call_entry(wr_slot_metrics *m, const char *route, const char *method)
{
    static int last;
    wr_metrics_call *c = &m->calls[last];

    if (!strncmp(c->route, route, sizeof c->route - 1) &&
        !strncmp(c->method, method, sizeof c->method - 1))
        return c;
    for (int i = 0; i < WR_METRICS_CALLS - 1; i++) {
        c = &m->calls[i];
        if (!c->route[0]) {
            put(c->route, sizeof c->route, route);
            put(c->method, sizeof c->method, method);
        } else if (strncmp(c->route, route, sizeof c->route - 1) ||
                   strncmp(c->method, method, sizeof c->method - 1)) {
            continue;
        }
        last = i;
        return c;
    }
    c = &m->calls[WR_METRICS_CALLS - 1];
    if (!c->route[0]) {
        put(c->route, sizeof c->route, "other");
        put(c->method, sizeof c->method, "other");
    }
    return c;
}

static void count_code(wr_slot_metrics *m, int code, unsigned long n)
{
    for (int i = 0; i < WR_METRICS_CODES; i++) {
        if (m->codes[i].code == code || !m->codes[i].code) {
            m->codes[i].code = code;
            m->codes[i].count += n;
            return;
        }
    }
    m->other_codes += n;
}

void wr_slot_end_call(wr_slot *s, unsigned long handled, unsigned long failed,
                      const wr_call_record *rec)
{
    wr_slot_metrics *m = &s->metrics;
    wr_metrics_call *c;
    int b = 0;

    write_begin(s);
    s->busy = 0;
    s->handled = handled;
    s->failed = failed;
    c = call_entry(m, rec->route, rec->method);
    if (rec->error)
        c->error++;
    else
        c->ok++;
    while (b < WR_METRICS_BUCKETS - 1 && rec->seconds > wr_metrics_bounds[b])
        b++;
    c->buckets[b]++;
    c->sum += rec->seconds;
    for (size_t i = 0; i < rec->ncodes; i++)
        count_code(m, rec->codes[i], rec->counts[i]);
    m->other_codes += rec->more_codes;
    m->poison_refusals += rec->refused != 0;
    write_end(s);
}

void wr_slot_set_connected(wr_slot *s, int connected)
{
    write_begin(s);
    s->metrics.connected = connected;
    write_end(s);
}

void wr_slot_set_queues(wr_slot *s, const char *const *routes, const long *messages, size_t n,
                        long long at_ms)
{
    write_begin(s);
    for (size_t i = 0; i < n && i < WR_METRICS_ROUTES; i++) {
        put(s->metrics.queues[i].route, sizeof s->metrics.queues[i].route, routes[i]);
        s->metrics.queues[i].messages = messages[i];
    }
    s->metrics.queues_ms = at_ms;
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
