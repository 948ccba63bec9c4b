/* STUB until the control branch lands: see /work/briefs/control.md. */
#ifndef WR_CONTROL_H
#define WR_CONTROL_H
#include <uv.h>
typedef char *(*wr_control_fn)(void *arg, const char *command);
typedef struct wr_control {
    int unused;
} wr_control;
int wr_control_start(wr_control *c, uv_loop_t *loop, const char *path, wr_control_fn fn, void *arg);
void wr_control_stop(wr_control *c);
#endif
