/* A worker's stop flag and self-pipe; see signals.h. */
#include "worker/signals.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;
static int pipe_fds[2] = {-1, -1};

static void on_stop_signal(int sig)
{
    int saved = errno;
    char byte = (char)sig;

    stop_requested = 1;
    if (write(pipe_fds[1], &byte, 1) < 0) {
        /* the pipe is full: a wakeup is already pending */
    }
    errno = saved;
}

int wr_signals_install(void)
{
    struct sigaction sa;

    if (pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) < 0)
        return -1;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0 ||
        sigaction(SIGQUIT, &sa, NULL) < 0)
        return -1;
    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, NULL) < 0 || sigaction(SIGHUP, &sa, NULL) < 0)
        return -1;
    return 0;
}

int wr_signals_fd(void)
{
    return pipe_fds[0];
}

void wr_signals_drain(void)
{
    char buf[16];

    while (read(pipe_fds[0], buf, sizeof buf) > 0)
        ;
}

int wr_signals_stopping(void)
{
    return stop_requested;
}

void wr_signals_request_stop(void)
{
    stop_requested = 1;
}

void wr_signals_close(void)
{
    for (int i = 0; i < 2; i++) {
        if (pipe_fds[i] >= 0)
            close(pipe_fds[i]);
        pipe_fds[i] = -1;
    }
}
