/*
 * Worker mode: `warren --worker N`, started by the supervisor with the
 * validated config on stdin and its status pipe on fd 3.
 */
#ifndef WR_WORKER_H
#define WR_WORKER_H

#include "config/config.h"

/* Serve until told to stop.  Returns the process exit code: 0 after a
 * clean stop, WR_EXIT_CONFIG when plugins cannot be loaded. */
int wr_worker_main(int index, const wr_config *cfg, const char *plugin_dir, long long started_ms);

#endif
