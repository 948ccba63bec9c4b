/*
 * `warren plugin-call`: the plugin authors' test helper.  Loads one plugin
 * exactly as a worker does (worker/plugin_loader.c: file mode, ABI check,
 * init() with its [plugin NAME] settings), calls one method through the
 * worker's own dispatch (worker/dispatch.c), prints the outcome as one
 * JSON object and exits.  No broker, no supervisor.
 */
#ifndef WR_PLUGIN_CALL_H
#define WR_PLUGIN_CALL_H

/* Exit status of a call whose method returned an error. */
#define WR_PLUGIN_CALL_ERROR 1

/*
 * ARGV[0] is "plugin-call"; the rest are its options and operands (see
 * the usage text).  DEFAULT_DIR: the installed plugin dir, where a bare
 * plugin name is looked up.  Returns the process's exit status: 0 the
 * result was printed, 1 the method returned an error (printed too), 64
 * bad command line, 75 init() failed temporarily, 78 the plugin was
 * refused or its init() failed.
 */
int wr_plugin_call_main(int argc, char **argv, const char *default_dir);

#endif
