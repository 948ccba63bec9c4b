/* Command-line helpers shared by warren-call and warren-bench; see cli.h. */
#include "client/cli.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/exitcodes.h"

static const char *cli_prog = "warren";
static const char *cli_usage = "";

void wr_cli_init(const char *prog, const char *usage_line)
{
    cli_prog = prog;
    cli_usage = usage_line;
}

const char *wr_cli_default_uri(void)
{
    const char *env = getenv("WARREN_URI");
    return env != NULL && env[0] != '\0' ? env : WR_CLI_DEFAULT_URI;
}

void wr_cli_usage_error(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", cli_prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fputs(cli_usage, stderr);
    fprintf(stderr, "Try '%s --help' for more.\n", cli_prog);
    exit(WR_EXIT_USAGE);
}

void wr_cli_bad_option(int ch, char **argv)
{
    if (ch == ':')
        wr_cli_usage_error("option %s needs an argument", argv[optind - 1]);
    if (optopt != 0)
        wr_cli_usage_error("unknown option -%c", optopt);
    wr_cli_usage_error("unknown option %s", argv[optind - 1]);
}

double wr_cli_seconds(const char *opt, const char *text, double max)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(text, &end);
    if (end == text || *end != '\0' || errno != 0 || !isfinite(v) || v <= 0 || v > max)
        wr_cli_usage_error("%s: expected a number of seconds greater than 0, got \"%s\"", opt,
                           text);
    return v;
}

long wr_cli_count(const char *opt, const char *text, long max)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(text, &end, 10);
    if (end == text || *end != '\0' || errno != 0 || v < 1 || v > max)
        wr_cli_usage_error("%s: expected a number from 1 to %ld, got \"%s\"", opt, max, text);
    return v;
}
