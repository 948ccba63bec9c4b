/*
 * libFuzzer target: the config parser (config/config.c) on any bytes.
 *
 * Input: the file's text, then optionally a NUL byte and -o overrides, one
 * per line ("section.key=value").  It must never crash or leak; a config
 * it accepts must survive the trip the supervisor makes it take to every
 * worker: written out by wr_config_write, read back by
 * wr_config_load_string without a complaint, and written again to the
 * same text.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/diag.h"
#include "common/log.h"
#include "config/config.h"

#define MAX_OVERRIDES 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *a, const char *b, const wr_diag *d)
{
    fprintf(stderr, "fuzz_config: %s\n--- first:\n%s\n--- second:\n%s\n", what, a ? a : "",
            b ? b : "");
    if (d)
        wr_diag_print(d);
    abort();
}

/* CFG as the INI text wr_config_write makes of it (malloc'd). */
static char *written(const wr_config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    if (!f)
        abort();
    if (wr_config_write(cfg, f) < 0)
        fail("wr_config_write failed on a config it accepted", NULL, NULL, NULL);
    fclose(f);
    return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1), *ov, *first, *second;
    const char *overrides[MAX_OVERRIDES];
    size_t nov = 0;
    wr_config cfg, again;
    wr_diag d = {0};

    if (!buf)
        return 0;
    wr_log_set_level(-1);
    memcpy(buf, data, size);
    buf[size] = '\0';
    /* After the first NUL: overrides, one per line. */
    ov = buf + strlen(buf);
    if (ov < buf + size) {
        for (char *p = ov + 1; nov < MAX_OVERRIDES && p <= buf + size;) {
            char *nl = strchr(p, '\n');
            if (nl)
                *nl = '\0';
            overrides[nov++] = p;
            if (!nl)
                break;
            p = nl + 1;
        }
    }
    if (wr_config_load_string(&cfg, "fuzz.conf", buf, overrides, nov, &d) != 0) {
        if (d.n == 0)
            fail("refused a config without saying why", buf, NULL, NULL);
        wr_diag_free(&d);
        free(buf);
        return 0;
    }
    if (d.n)
        fail("accepted a config with an error message", buf, NULL, &d);
    first = written(&cfg);
    if (wr_config_load_string(&again, "written.conf", first, NULL, 0, &d) != 0)
        fail("refused the config it wrote", buf, first, &d);
    second = written(&again);
    if (strcmp(first, second) != 0)
        fail("the config it wrote reads back different", first, second, NULL);
    free(first);
    free(second);
    wr_config_free(&again);
    wr_config_free(&cfg);
    wr_diag_free(&d);
    free(buf);
    return 0;
}
