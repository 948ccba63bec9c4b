/*
 * Integration-test harness: the private broker started by tests/broker.sh
 * (ctest fixture), a warren supervisor started as a child process with a
 * generated config and its stderr in a log file, and waits on conditions
 * (log lines, process sets) instead of sleeps.
 */
#ifndef WR_TEST_HARNESS_H
#define WR_TEST_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

#include <amqp.h>

#include "client/rpc_client.h"

typedef struct wr_test_warren {
    pid_t pid;
    char dir[256];  /* temp dir holding conf and log */
    char conf[300]; /* path of the generated config */
    char log[300];  /* path of warren's stderr */
    char queue[128];
    int exited;
    int status; /* waitpid status once exited */
} wr_test_warren;

/* amqp URI of the test broker (borrowed). Aborts the test if none. */
const char *wr_test_broker_uri(void);

/* Run `tests/broker.sh ctl DIR ARGS` and return its stdout (malloc'd). */
char *wr_test_broker_ctl(const char *args);

/* Column COLUMN of `rabbitmqctl list_queues` (messages_unacknowledged,
 * consumers, ...) for QUEUE, or -1 when the broker has no such queue. */
int wr_test_queue_stat(const char *queue, const char *column);

/* A queue name unique to this test process, with PREFIX. */
void wr_test_queue_name(char *buf, size_t len, const char *prefix);

/*
 * Write a config: [broker] uri of the test broker, [pool] workers=WORKERS,
 * [plugins] dir of the built plugins, load = echo time test, and
 * [route rpc] queue = W->queue (set it first, or leave empty for a fresh
 * unique one); EXTRA is appended verbatim (more sections, or NULL).
 * Then start `warren -c CONF` with stderr to the log.  When WAIT_READY,
 * wait for its "ready:" log line (fails the test after 30 s).
 */
void wr_test_warren_start(wr_test_warren *w, int workers, const char *extra, int wait_ready);

/* W's directory for its config and log (made on first use): a place for
 * other files of the test.  Borrowed. */
const char *wr_test_warren_dir(wr_test_warren *w);

/* Only write the config wr_test_warren_start would write (no start). */
void wr_test_warren_write_conf(wr_test_warren *w, int workers, const char *extra);

/* Start warren with exactly ARGV (argv[0] is replaced by the binary);
 * stdout to OUT_PATH (may be NULL), stderr to the log.  No waiting. */
void wr_test_warren_spawn(wr_test_warren *w, char *const argv[], const char *out_path);

/* Wait up to TIMEOUT_MS for NEEDLE to appear in the log at least COUNT
 * times.  Returns 1 if it did, 0 otherwise. */
int wr_test_log_wait(wr_test_warren *w, const char *needle, int count, int timeout_ms);

/* How many times NEEDLE occurs in the log now. */
int wr_test_log_count(wr_test_warren *w, const char *needle);

/* The whole log (malloc'd). */
char *wr_test_log_read(wr_test_warren *w);

/* Wait up to TIMEOUT_MS for warren to exit; 1 if it did (status in
 * w->status), 0 if not. */
int wr_test_warren_wait_exit(wr_test_warren *w, int timeout_ms);

/* SIGTERM and wait (fails the test if it takes over 30 s); returns the
 * exit code, or 128+signal. */
int wr_test_warren_stop(wr_test_warren *w);

/* Child pids of the supervisor (its workers), up to MAX.  Count. */
int wr_test_worker_pids(const wr_test_warren *w, pid_t *pids, int max);

/* A bare rabbitmq-c connection to the test broker with channel 1 open, for
 * tests that need what the RPC client does not offer (basic.get, headers
 * of any kind).  Fails the test on error; close with wr_amqp_close. */
amqp_connection_state_t wr_test_amqp_connect(void);

/* Connect a client to the test broker (fails the test on error). */
wr_client *wr_test_client(int mode);

/*
 * Publish BODY to the default exchange with routing key QUEUE, with a
 * reply_to and CORR, and wait up to TIMEOUT_MS for the reply whose
 * correlation_id is CORR.  Returns its body (malloc'd) or NULL on timeout.
 */
char *wr_test_rpc(wr_client *c, const char *queue, const char *body, const char *corr,
                  int timeout_ms);

/* The whole of file PATH (malloc'd), or NULL when it cannot be read. */
char *wr_test_read_file(const char *path);

/* Run a command line with /bin/sh; capture stdout and stderr (malloc'd,
 * may be NULL); return the exit code. */
int wr_test_sh(const char *cmd, char **out, char **err);

#endif
