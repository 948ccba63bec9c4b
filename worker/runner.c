/*
 * The runner (see runner.h).  Inline: the keeper thread and its lock.
 * Threaded: a mutex + condition variable one way and a pipe the other
 * (the main thread sleeps in poll() on the AMQP socket, so completion must
 * be a file descriptor it can poll beside it).
 */
#include "worker/runner.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct wr_runner {
    wr_runner_mode mode;
    const wr_dispatcher *dispatcher;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int quit;
    wr_job *done; /* finished, not yet collected */

    /* Threaded. */
    wr_job *todo;  /* submitted, not yet taken by the thread */
    int pipefd[2]; /* [0] polled by the main thread */

    /* Inline: what the keeper needs, under LOCK. */
    int sockfd;           /* -1: no connection */
    int heartbeat_ms;     /* 0: no heartbeats */
    int in_handler;       /* the main thread is running a handler */
    long long beat_after; /* monotonic ms: no heartbeat is due before */
};

static long long now_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* One heartbeat frame (type 8, channel 0, empty payload, frame end),
 * written whole: the main thread is inside a handler, so no other frame
 * is half-written on the socket.  A failure is left for the main thread
 * to find on its next read. */
static void send_heartbeat(int fd)
{
    static const unsigned char frame[8] = {8, 0, 0, 0, 0, 0, 0, 0xCE};
    size_t off = 0;

    while (off < sizeof frame) {
        ssize_t n = send(fd, frame + off, sizeof frame - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            off += (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            if (poll(&p, 1, 1000) <= 0)
                return;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            return;
        }
    }
}

static void *keeper_main(void *arg)
{
    wr_runner *r = arg;

    pthread_mutex_lock(&r->lock);
    while (!r->quit) {
        /* Wake every half interval (once a second without heartbeats,
         * to notice a change); the main thread never signals it. */
        int tick = r->heartbeat_ms > 0 ? r->heartbeat_ms / 2 : 1000;
        struct timespec until;

        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += tick / 1000;
        until.tv_nsec += (long)(tick % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&r->wake, &r->lock, &until);
        if (r->quit)
            break;
        if (r->in_handler && r->sockfd >= 0 && r->heartbeat_ms > 0 && now_ms() >= r->beat_after) {
            send_heartbeat(r->sockfd);
            r->beat_after = now_ms() + r->heartbeat_ms / 2;
        }
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

static void *handler_main(void *arg)
{
    wr_runner *r = arg;
    char byte = 1;

    pthread_mutex_lock(&r->lock);
    for (;;) {
        while (!r->todo && !r->quit)
            pthread_cond_wait(&r->wake, &r->lock);
        if (!r->todo)
            break;
        wr_job *job = r->todo;
        r->todo = NULL;
        pthread_mutex_unlock(&r->lock);

        wr_dispatch_run(job, r->dispatcher);

        pthread_mutex_lock(&r->lock);
        r->done = job;
        /* The pipe holds at most one byte per job: it cannot fill. */
        while (write(r->pipefd[1], &byte, 1) < 0 && errno == EINTR)
            ;
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

int wr_runner_start(wr_runner **out, const wr_dispatcher *dispatcher, wr_runner_mode mode)
{
    wr_runner *r = calloc(1, sizeof *r);
    pthread_condattr_t ca;
    sigset_t all, old;
    int err;

    if (!r)
        return -1;
    r->mode = mode;
    r->dispatcher = dispatcher;
    r->sockfd = -1;
    r->pipefd[0] = r->pipefd[1] = -1;
    if (mode == WR_RUNNER_THREADED && pipe2(r->pipefd, O_CLOEXEC | O_NONBLOCK) < 0) {
        free(r);
        return -1;
    }
    pthread_mutex_init(&r->lock, NULL);
    /* The keeper's timer must not jump with the wall clock. */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->wake, &ca);
    pthread_condattr_destroy(&ca);
    /* Signals belong to the main thread: the thread starts with all of
     * them blocked (a handler's SIGSEGV is synchronous and still kills). */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    err =
        pthread_create(&r->thread, NULL, mode == WR_RUNNER_INLINE ? keeper_main : handler_main, r);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err) {
        if (r->pipefd[0] >= 0) {
            close(r->pipefd[0]);
            close(r->pipefd[1]);
        }
        pthread_cond_destroy(&r->wake);
        pthread_mutex_destroy(&r->lock);
        free(r);
        errno = err;
        return -1;
    }
    *out = r;
    return 0;
}

void wr_runner_attach(wr_runner *r, int sockfd, int heartbeat_s)
{
    pthread_mutex_lock(&r->lock);
    r->sockfd = sockfd;
    r->heartbeat_ms = heartbeat_s > 0 ? heartbeat_s * 1000 : 0;
    pthread_mutex_unlock(&r->lock);
}

int wr_runner_fd(const wr_runner *r)
{
    return r->pipefd[0];
}

void wr_runner_submit(wr_runner *r, wr_job *job)
{
    if (r->mode == WR_RUNNER_THREADED) {
        pthread_mutex_lock(&r->lock);
        r->todo = job;
        pthread_cond_signal(&r->wake);
        pthread_mutex_unlock(&r->lock);
        return;
    }
    /* Inline.  While the lock is free the keeper may write a heartbeat;
     * taking it back afterwards waits for one being written. */
    pthread_mutex_lock(&r->lock);
    r->in_handler = 1;
    r->beat_after = now_ms() + r->heartbeat_ms / 2;
    pthread_mutex_unlock(&r->lock);

    wr_dispatch_run(job, r->dispatcher);

    pthread_mutex_lock(&r->lock);
    r->in_handler = 0;
    pthread_mutex_unlock(&r->lock);
    r->done = job;
}

wr_job *wr_runner_collect(wr_runner *r, int wait)
{
    char buf[16];
    wr_job *job;

    if (r->mode == WR_RUNNER_INLINE) {
        job = r->done;
        r->done = NULL;
        return job;
    }
    for (;;) {
        pthread_mutex_lock(&r->lock);
        job = r->done;
        r->done = NULL;
        pthread_mutex_unlock(&r->lock);
        if (job || !wait)
            break;
        struct pollfd p = {.fd = r->pipefd[0], .events = POLLIN};
        poll(&p, 1, -1);
        while (read(r->pipefd[0], buf, sizeof buf) > 0)
            ;
    }
    if (job)
        while (read(r->pipefd[0], buf, sizeof buf) > 0)
            ;
    return job;
}

void wr_runner_stop(wr_runner *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    r->quit = 1;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    if (r->pipefd[0] >= 0) {
        close(r->pipefd[0]);
        close(r->pipefd[1]);
    }
    pthread_cond_destroy(&r->wake);
    pthread_mutex_destroy(&r->lock);
    free(r);
}
