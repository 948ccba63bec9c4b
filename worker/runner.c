/*
 * The handler thread.  Handoff is a mutex + condition variable one way and
 * a pipe the other: the main thread sleeps in poll() on the AMQP socket,
 * so completion must be a file descriptor it can poll beside it.
 */
#include "worker/runner.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

struct wr_runner {
    const wr_dispatcher *dispatcher;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    wr_job *todo; /* submitted, not yet taken by the thread */
    wr_job *done; /* finished, not yet collected */
    int quit;
    int pipefd[2]; /* [0] polled by the main thread */
};

static void *runner_main(void *arg)
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

int wr_runner_start(wr_runner **out, const wr_dispatcher *dispatcher)
{
    wr_runner *r = calloc(1, sizeof *r);
    sigset_t all, old;
    int err;

    if (!r)
        return -1;
    r->dispatcher = dispatcher;
    if (pipe2(r->pipefd, O_CLOEXEC | O_NONBLOCK) < 0) {
        free(r);
        return -1;
    }
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->wake, NULL);
    /* Signals belong to the main thread: the runner starts with all of
     * them blocked (a handler's SIGSEGV is synchronous and still kills). */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    err = pthread_create(&r->thread, NULL, runner_main, r);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err) {
        close(r->pipefd[0]);
        close(r->pipefd[1]);
        free(r);
        errno = err;
        return -1;
    }
    *out = r;
    return 0;
}

int wr_runner_fd(const wr_runner *r)
{
    return r->pipefd[0];
}

void wr_runner_submit(wr_runner *r, wr_job *job)
{
    pthread_mutex_lock(&r->lock);
    r->todo = job;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
}

wr_job *wr_runner_collect(wr_runner *r, int wait)
{
    char buf[16];
    wr_job *job;

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
    close(r->pipefd[0]);
    close(r->pipefd[1]);
    pthread_cond_destroy(&r->wake);
    pthread_mutex_destroy(&r->lock);
    free(r);
}
