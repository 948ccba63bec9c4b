/*
 * plugins/pkgstatus.c through the plugin loader, as a worker loads it:
 * the pid, a package list that is not empty on this Debian machine, the
 * max_packages cap, and a bad max_packages refused by init().
 *
 * The .so is copied into a temp dir with mode 0755 first (the loader
 * refuses a group-writable file, and the build output's mode depends on
 * the umask).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "worker/plugin_loader.h"

static char tmpdir[64];
static char sofile[128];

static void stage(void)
{
    char src[512], buf[65536];
    ssize_t n;
    int in, out;

    wr_log_set_level(WR_LOG_WARN);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/warren-pkgstatus-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp: %s", strerror(errno));
    snprintf(src, sizeof src, "%s/pkgstatus.so", WARREN_PLUGIN_DIR);
    snprintf(sofile, sizeof sofile, "%s/pkgstatus.so", tmpdir);
    in = open(src, O_RDONLY);
    cr_assert(in >= 0, "open %s: %s", src, strerror(errno));
    out = open(sofile, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert(out >= 0, "open %s: %s", sofile, strerror(errno));
    while ((n = read(in, buf, sizeof buf)) > 0)
        cr_assert_eq(write(out, buf, (size_t)n), n);
    close(in);
    close(out);
    cr_assert_eq(chmod(sofile, 0755), 0);
}

/* Fake listers in TMPDIR/bin, for the tests that make it the whole PATH. */
static char bindir[128], fakes[2][160];

static void unstage(void)
{
    for (int i = 0; i < 2; i++)
        if (fakes[i][0])
            unlink(fakes[i]);
    if (bindir[0])
        rmdir(bindir);
    unlink(sofile);
    rmdir(tmpdir);
}

/* Make TMPDIR/bin the whole PATH, holding executable scripts SCRIPT[i]
 * named NAME[i] (a NULL name: none).  The loaded plugin then finds only
 * these listers. */
static void fake_path(const char *name0, const char *script0, const char *name1,
                      const char *script1)
{
    const char *names[2] = {name0, name1}, *scripts[2] = {script0, script1};

    snprintf(bindir, sizeof bindir, "%s/bin", tmpdir);
    cr_assert_eq(mkdir(bindir, 0755), 0);
    for (int i = 0; i < 2; i++) {
        FILE *f;

        if (names[i] == NULL)
            continue;
        snprintf(fakes[i], sizeof fakes[i], "%s/%s", bindir, names[i]);
        f = fopen(fakes[i], "w");
        cr_assert_not_null(f);
        fprintf(f, "#!/bin/sh\n%s\n", scripts[i]);
        fclose(f);
        cr_assert_eq(chmod(fakes[i], 0755), 0);
    }
    cr_assert_eq(setenv("PATH", bindir, 1), 0);
}

TestSuite(pkgstatus, .init = stage, .fini = unstage);

/* Load pkgstatus with [plugin pkgstatus] max_packages = MAX (NULL: the
 * section is absent).  Returns what wr_plugins_load returned. */
static int load(wr_plugins **p, const char *max, wr_diag *diag)
{
    char *names[] = {"pkgstatus"};
    wr_kv item = {.key = (char *)"max_packages", .value = (char *)max, .line = 2};
    wr_plugin_section section = {
        .name = (char *)"pkgstatus", .line = 1, .items = &item, .nitems = 1};
    wr_config cfg;

    memset(&cfg, 0, sizeof cfg);
    cfg.plugin_sections = &section;
    cfg.nplugin_sections = max != NULL ? 1 : 0;
    return wr_plugins_load(p, tmpdir, names, 1, &cfg, diag);
}

/* Call pkgstatus on P, which must fail: the error message (static). */
static const char *call_fails(const wr_plugins *p)
{
    static warren_error err;
    const wr_method_ref *ref = wr_plugins_find(p, "pkgstatus");
    json_t *result = NULL;

    memset(&err, 0, sizeof err);
    cr_assert_neq(ref->method->handler(&ref->call, NULL, &result, &err), 0);
    cr_assert_null(result);
    cr_assert_eq(err.code, WARREN_ERR_INTERNAL);
    return err.message;
}

/* Call pkgstatus on P; the result (new reference) must be the documented
 * object. */
static json_t *call_pkgstatus(const wr_plugins *p)
{
    const wr_method_ref *ref = wr_plugins_find(p, "pkgstatus");
    json_t *result = NULL;
    warren_error err;

    cr_assert_not_null(ref);
    memset(&err, 0, sizeof err);
    cr_assert_eq(ref->method->handler(&ref->call, NULL, &result, &err), 0, "error %d: %s", err.code,
                 err.message);
    cr_assert(json_is_object(result));
    cr_assert(json_is_integer(json_object_get(result, "pid")));
    cr_assert(json_is_array(json_object_get(result, "packages")));
    cr_assert(json_is_boolean(json_object_get(result, "truncated")));
    cr_assert(json_is_integer(json_object_get(result, "count")));
    return result;
}

Test(pkgstatus, lists_the_installed_packages_with_the_callers_pid)
{
    wr_plugins *p = NULL;
    wr_diag diag = {0};
    json_t *result, *packages, *pkg;
    size_t i;
    int has_dpkg = 0;

    cr_assert_eq(load(&p, NULL, &diag), 0, "%s", diag.n ? diag.msgs[0] : "");
    result = call_pkgstatus(p);
    cr_assert_eq(json_integer_value(json_object_get(result, "pid")), getpid());
    packages = json_object_get(result, "packages");
    cr_assert_gt(json_array_size(packages), 0, "no packages on a Debian machine?");
    json_array_foreach(packages, i, pkg)
    {
        const char *name = json_string_value(json_object_get(pkg, "name"));

        cr_assert_not_null(name);
        cr_assert_neq(name[0], '\0');
        cr_assert(json_is_string(json_object_get(pkg, "version")));
        if (strcmp(name, "dpkg") == 0) {
            has_dpkg = 1;
            cr_assert_neq(json_string_value(json_object_get(pkg, "version"))[0], '\0');
        }
    }
    cr_assert(has_dpkg, "dpkg itself is not listed");
    /* Fewer than the default cap of 5000 on this machine: all of them. */
    cr_assert(json_is_false(json_object_get(result, "truncated")));
    cr_assert_eq(json_integer_value(json_object_get(result, "count")),
                 (json_int_t)json_array_size(packages));
    json_decref(result);
    wr_plugins_unload(p);
}

Test(pkgstatus, max_packages_caps_the_list)
{
    wr_plugins *p = NULL;
    wr_diag diag = {0};
    json_t *result;

    cr_assert_eq(load(&p, "3", &diag), 0, "%s", diag.n ? diag.msgs[0] : "");
    result = call_pkgstatus(p);
    cr_assert_eq(json_array_size(json_object_get(result, "packages")), 3);
    cr_assert(json_is_true(json_object_get(result, "truncated")));
    cr_assert_gt(json_integer_value(json_object_get(result, "count")), 3,
                 "count is every package listed, not just those returned");
    json_decref(result);
    wr_plugins_unload(p);
}

Test(pkgstatus, bad_max_packages_fails_init)
{
    const char *bad[] = {"x", "0", "-1", "3x", "", "100001"};

    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        wr_plugins *p = (wr_plugins *)1;
        wr_diag diag = {0};

        cr_assert_eq(load(&p, bad[i], &diag), -1, "max_packages = \"%s\" accepted", bad[i]);
        cr_assert_null(p);
        cr_assert_eq(diag.n, 1);
        cr_assert(strstr(diag.msgs[0], "plugin pkgstatus: init failed") != NULL &&
                      strstr(diag.msgs[0], "max_packages: expected a whole number from 1 to "
                                           "100000") != NULL,
                  "message: %s", diag.msgs[0]);
        wr_diag_free(&diag);
    }
}

Test(pkgstatus, uses_rpm_where_there_is_no_dpkg_query)
{
    wr_plugins *p = NULL;
    wr_diag diag = {0};
    json_t *result, *expected;

    fake_path("rpm",
              "[ \"$1 $2 $3\" = '-qa --qf %{NAME}\t%{VERSION}-%{RELEASE}\n' ] || exit 9\n"
              "printf 'bash\\t5.2-1\\nzlib\\t1.3-2\\n'",
              NULL, NULL);
    cr_assert_eq(load(&p, NULL, &diag), 0);
    result = call_pkgstatus(p);
    expected = json_pack("[{s:s,s:s},{s:s,s:s}]", "name", "bash", "version", "5.2-1", "name",
                         "zlib", "version", "1.3-2");
    cr_assert(json_equal(json_object_get(result, "packages"), expected), "%s",
              json_dumps(result, JSON_COMPACT));
    cr_assert_eq(json_integer_value(json_object_get(result, "count")), 2);
    json_decref(expected);
    json_decref(result);
    wr_plugins_unload(p);
}

Test(pkgstatus, a_failing_lister_is_a_structured_error)
{
    wr_plugins *p = NULL;
    wr_diag diag = {0};
    const char *msg;

    fake_path("dpkg-query", "echo 'dpkg-query: database locked' >&2; exit 3", "rpm", "exit 0");
    cr_assert_eq(load(&p, NULL, &diag), 0);
    msg = call_fails(p);
    cr_assert_str_eq(msg, "pkgstatus: dpkg-query exited with code 3: dpkg-query: database locked");
    wr_plugins_unload(p);
}

Test(pkgstatus, no_lister_at_all_is_a_structured_error)
{
    wr_plugins *p = NULL;
    wr_diag diag = {0};

    fake_path(NULL, NULL, NULL, NULL);
    cr_assert_eq(load(&p, NULL, &diag), 0);
    cr_assert_str_eq(call_fails(p), "pkgstatus: neither dpkg-query nor rpm found in PATH");
    wr_plugins_unload(p);
}
