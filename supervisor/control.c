/* STUB until the control branch lands. */
#include "supervisor/control.h"
int wr_control_start(wr_control *c, uv_loop_t *loop, const char *path, wr_control_fn fn, void *arg)
{
    (void)c, (void)loop, (void)path, (void)fn, (void)arg;
    return -1;
}
void wr_control_stop(wr_control *c)
{
    (void)c;
}
