/*
 * Unit tests for worker/plugin_loader.c: each refusal with its message,
 * then loading the shipped plugins (echo, time, test) and the test plugin
 * "good" and calling them through the method table.
 *
 * Every test loads from its own temp dir, into which it copies the .so
 * files it needs with an explicit mode: wr_plugins_load takes one dir, and
 * the build outputs' own mode depends on the umask (a group-writable one
 * would be refused), so nothing here may load them in place.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "worker/plugin_loader.h"

/* Short, so that GCC can prove the paths built from it fit in PATH_MAX. */
static char tmpdir[64];

static void make_tmpdir(void)
{
    wr_log_set_level(WR_LOG_WARN); /* keep plugins' INFO lines out of the output */
    snprintf(tmpdir, sizeof tmpdir, "/tmp/warren-plugin-test-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp: %s", strerror(errno));
}

static void remove_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    char path[PATH_MAX];

    if (!d)
        return;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", tmpdir, e->d_name);
        if (unlink(path) != 0)
            rmdir(path);
    }
    closedir(d);
    rmdir(tmpdir);
}

TestSuite(plugin_loader, .init = make_tmpdir, .fini = remove_tmpdir);

static void tmp_path(char *buf, size_t size, const char *file)
{
    snprintf(buf, size, "%s/%s", tmpdir, file);
}

/* Copy SRC to DST byte for byte and give it MODE (chmod, so the umask
 * does not matter). */
static void copy_file(const char *src, const char *dst, mode_t mode)
{
    char buf[65536];
    ssize_t n;
    int in = open(src, O_RDONLY);
    int out;

    cr_assert(in >= 0, "open %s: %s", src, strerror(errno));
    out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert(out >= 0, "open %s: %s", dst, strerror(errno));
    while ((n = read(in, buf, sizeof buf)) > 0)
        cr_assert_eq(write(out, buf, (size_t)n), n);
    cr_assert_eq(n, 0);
    close(in);
    close(out);
    cr_assert_eq(chmod(dst, mode), 0);
}

/* Put plugin NAME into the temp dir with MODE, taking it from the test
 * plugins' build dir or else the shipped plugins' one. */
static void stage_mode(const char *name, mode_t mode)
{
    char src[PATH_MAX], dst[PATH_MAX];

    snprintf(src, sizeof src, "%s/%s.so", WARREN_TEST_PLUGIN_DIR, name);
    if (access(src, F_OK) != 0)
        snprintf(src, sizeof src, "%s/%s.so", WARREN_PLUGIN_DIR, name);
    snprintf(dst, sizeof dst, "%s/%s.so", tmpdir, name);
    copy_file(src, dst, mode);
}

static void stage(const char *name)
{
    stage_mode(name, 0755);
}

/* Load NAMES from the temp dir; *out is set on success. */
static int load(wr_plugins **out, char *const *names, size_t n, const wr_config *cfg, wr_diag *diag)
{
    return wr_plugins_load(out, tmpdir, names, n, cfg, diag);
}

/* Some message in DIAG is exactly EXPECTED. */
static void assert_diag_has(const wr_diag *diag, const char *expected)
{
    for (size_t i = 0; i < diag->n; i++)
        if (strcmp(diag->msgs[i], expected) == 0)
            return;
    for (size_t i = 0; i < diag->n; i++)
        cr_log_error("diag[%zu]: %s", i, diag->msgs[i]);
    cr_assert_fail("no message \"%s\" among %zu", expected, diag->n);
}

/* Some message in DIAG starts with PREFIX and contains NEEDLE. */
static void assert_diag_matches(const wr_diag *diag, const char *prefix, const char *needle)
{
    for (size_t i = 0; i < diag->n; i++)
        if (strncmp(diag->msgs[i], prefix, strlen(prefix)) == 0 && strstr(diag->msgs[i], needle))
            return;
    for (size_t i = 0; i < diag->n; i++)
        cr_log_error("diag[%zu]: %s", i, diag->msgs[i]);
    cr_assert_fail("no message starting \"%s\" with \"%s\"", prefix, needle);
}

/* Loading NAMES fails, sets nothing, and says why in exactly one message
 * that starts with "plugin FIRST: ". */
static void assert_refused(char *const *names, size_t n, const char *prefix, const char *needle)
{
    wr_plugins *p = (wr_plugins *)1; /* must be reset to NULL */
    wr_diag diag = {0};

    cr_assert_eq(load(&p, names, n, NULL, &diag), -1);
    cr_assert_null(p);
    cr_assert_eq(diag.n, 1, "expected one message, got %zu", diag.n);
    assert_diag_matches(&diag, prefix, needle);
    wr_diag_free(&diag);
}

/* Call method NAME of P with PARAMS (borrowed).  Returns the handler's
 * return value; *result is a new reference or NULL. */
static int call(const wr_plugins *p, const char *name, json_t *params, json_t **result,
                warren_error *err)
{
    const wr_method_ref *ref = wr_plugins_find(p, name);

    cr_assert_not_null(ref, "method %s not found", name);
    cr_assert_str_eq(ref->method->name, name);
    *result = NULL;
    memset(err, 0, sizeof *err);
    return ref->method->handler(&ref->call, params, result, err);
}

static int file_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* ---- refusals ------------------------------------------------------- */

Test(plugin_loader, refuses_other_abi_major_naming_both_versions)
{
    char *names[] = {"bad_abi"};
    char expected[128];

    stage("bad_abi");
    snprintf(expected, sizeof expected, "built for plugin ABI %d.0, warren supports %d.x",
             WARREN_PLUGIN_ABI_MAJOR + 1, WARREN_PLUGIN_ABI_MAJOR);
    assert_refused(names, 1, "plugin bad_abi: ", expected);
}

Test(plugin_loader, refuses_a_newer_minor_naming_both_versions)
{
    char *names[] = {"newer_minor"};
    char expected[160];

    stage("newer_minor");
    snprintf(expected, sizeof expected,
             "built for plugin ABI %d.%d, newer than this warren's %d.%d", WARREN_PLUGIN_ABI_MAJOR,
             WARREN_PLUGIN_ABI_MINOR + 1, WARREN_PLUGIN_ABI_MAJOR, WARREN_PLUGIN_ABI_MINOR);
    assert_refused(names, 1, "plugin newer_minor: ", expected);
}

Test(plugin_loader, abi_1_0_plugin_loads_and_runs_unchanged)
{
    char *names[] = {"abi_1_0"};
    wr_plugins *p = NULL;
    wr_diag diag = {0};
    const wr_method_ref *m;
    warren_error err = {0};
    json_t *result = NULL;

    stage("abi_1_0");
    cr_assert_eq(load(&p, names, 1, NULL, &diag), 0, "%s", diag.n ? diag.msgs[0] : "");
    cr_assert_eq(wr_plugins_method_count(p), 2);
    cr_expect_not_null(wr_plugins_find(p, "old.bye"));
    m = wr_plugins_find(p, "old.hello");
    cr_assert_not_null(m);
    cr_expect_null(m->call.message);
    cr_assert_eq(m->method->handler(&m->call, NULL, &result, &err), 0);
    cr_expect_str_eq(json_string_value(json_object_get(result, "method")), "old.hello");
    cr_expect_str_eq(wr_plugins_version_at(p, 0), "0.9");
    json_decref(result);
    wr_plugins_unload(p);
}

Test(plugin_loader, methods_are_walked_with_the_plugins_method_size)
{
    char *names[] = {"wide_methods"};
    wr_plugins *p = NULL;
    wr_diag diag = {0};
    static const char *const expected[] = {"wide.one", "wide.three", "wide.two"};

    stage("wide_methods");
    cr_assert_eq(load(&p, names, 1, NULL, &diag), 0, "%s", diag.n ? diag.msgs[0] : "");
    cr_assert_eq(wr_plugins_method_count(p), 3);
    for (size_t i = 0; i < 3; i++)
        cr_expect_str_eq(wr_plugins_method_at(p, i)->method->name, expected[i]);
    wr_plugins_unload(p);
}

Test(plugin_loader, refuses_bad_magic)
{
    char *names[] = {"bad_magic"};

    stage("bad_magic");
    assert_refused(names, 1, "plugin bad_magic: ", "bad magic 0xdeadbeef");
}

Test(plugin_loader, refuses_missing_symbol)
{
    char *names[] = {"no_symbol"};

    stage("no_symbol");
    assert_refused(names, 1, "plugin no_symbol: ", "does not export the symbol warren_plugin");
}

Test(plugin_loader, refuses_plugin_without_methods)
{
    char *names[] = {"no_methods"};

    stage("no_methods");
    assert_refused(names, 1, "plugin no_methods: ", "has no methods");
}

Test(plugin_loader, refuses_duplicate_method_naming_both_plugins)
{
    char *names[] = {"echo", "dup_method"};
    wr_plugins *p = NULL;
    wr_diag diag = {0};

    stage("echo");
    stage("dup_method");
    cr_assert_eq(load(&p, names, 2, NULL, &diag), -1);
    cr_assert_null(p);
    cr_assert_eq(diag.n, 1);
    assert_diag_has(&diag, "plugin dup_method: method \"echo\" is already provided by plugin echo");
    wr_diag_free(&diag);
}

Test(plugin_loader, refuses_init_failure_with_its_message)
{
    char *names[] = {"init_fail"};

    stage("init_fail");
    /* The plugin also hands back error data: ASan checks it is freed. */
    assert_refused(names, 1,
                   "plugin init_fail: ", "init failed: cannot reach the frobnicator at 10.0.0.1");
}

Test(plugin_loader, refuses_missing_file)
{
    char *names[] = {"nosuch"};
    char expected[PATH_MAX + 64];

    snprintf(expected, sizeof expected, "%s/nosuch.so: No such file or directory", tmpdir);
    assert_refused(names, 1, "plugin nosuch: ", expected);
}

static void assert_writable_refused(mode_t mode, const char *mode_text)
{
    char *names[] = {"good"};
    wr_plugins *p = NULL;
    wr_diag diag = {0};
    char expected[PATH_MAX + 128];

    stage_mode("good", mode);
    snprintf(expected, sizeof expected,
             "plugin good: %s/good.so is group- or world-writable (mode %s); refusing to load it",
             tmpdir, mode_text);
    cr_assert_eq(load(&p, names, 1, NULL, &diag), -1);
    cr_assert_null(p);
    cr_assert_eq(diag.n, 1);
    assert_diag_has(&diag, expected);
    wr_diag_free(&diag);
}

Test(plugin_loader, refuses_world_writable_file)
{
    assert_writable_refused(0666, "0666");
}

Test(plugin_loader, refuses_group_writable_file)
{
    assert_writable_refused(0664, "0664");
}

Test(plugin_loader, refuses_only_other_writable_file)
{
    assert_writable_refused(0646, "0646");
}

Test(plugin_loader, symlink_is_judged_by_its_target)
{
    char *names[] = {"good"};
    char target[PATH_MAX], link[PATH_MAX];

    /* The real file under another name, world-writable; the link itself
     * is always 0777 and must not matter either way. */
    stage_mode("good", 0666);
    tmp_path(target, sizeof target, "good.so");
    tmp_path(link, sizeof link, "real-good.so");
    cr_assert_eq(rename(target, link), 0);
    cr_assert_eq(symlink(link, target), 0);
    assert_refused(names, 1, "plugin good: ", "(mode 0666)");

    cr_assert_eq(chmod(link, 0755), 0);
    {
        wr_plugins *p = NULL;
        wr_diag diag = {0};
        cr_assert_eq(load(&p, names, 1, NULL, &diag), 0);
        wr_plugins_unload(p);
    }
}

Test(plugin_loader, refuses_a_directory)
{
    char *names[] = {"dir"};
    char path[PATH_MAX];

    tmp_path(path, sizeof path, "dir.so");
    cr_assert_eq(mkdir(path, 0755), 0);
    assert_refused(names, 1, "plugin dir: ", "dir.so is not a regular file");
}

Test(plugin_loader, reports_dlopen_error)
{
    char *names[] = {"junk"};
    char path[PATH_MAX];
    FILE *f;

    tmp_path(path, sizeof path, "junk.so");
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("this is not an ELF file\n", f);
    fclose(f);
    cr_assert_eq(chmod(path, 0644), 0);
    /* dlerror() names the file itself. */
    assert_refused(names, 1, "plugin junk: cannot load it: ", "junk.so");
}

Test(plugin_loader, refuses_names_that_leave_the_dir)
{
    char *names[] = {"../good"};

    assert_refused(names, 1, "plugin ../good: ", "without '/'");
}

Test(plugin_loader, refuses_a_plugin_listed_twice)
{
    char *names[] = {"echo", "echo"};

    stage("echo");
    assert_refused(names, 2, "plugin echo: ", "listed more than once");
}

/* One run reports every bad plugin, not just the first. */
Test(plugin_loader, reports_every_problem_at_once)
{
    char *names[] = {"bad_abi", "echo", "bad_magic", "nosuch", "dup_method", "no_methods"};
    wr_plugins *p = NULL;
    wr_diag diag = {0};

    stage("bad_abi");
    stage("echo");
    stage("bad_magic");
    stage("dup_method");
    stage("no_methods");
    cr_assert_eq(load(&p, names, 6, NULL, &diag), -1);
    cr_assert_null(p);
    cr_assert_eq(diag.n, 5);
    assert_diag_matches(&diag, "plugin bad_abi: ", "built for plugin ABI");
    assert_diag_matches(&diag, "plugin bad_magic: ", "bad magic");
    assert_diag_matches(&diag, "plugin nosuch: ", "No such file");
    assert_diag_matches(&diag, "plugin dup_method: ", "plugin echo");
    assert_diag_matches(&diag, "plugin no_methods: ", "has no methods");
    for (size_t i = 0; i < diag.n; i++)
        cr_assert(strncmp(diag.msgs[i], "plugin ", 7) == 0, "%s", diag.msgs[i]);
    wr_diag_free(&diag);
}

/* ---- the "good" plugin: init, config, state, fini ------------------- */

/* A config with one [plugin good] section, built by hand. */
struct good_config {
    wr_kv items[3];
    wr_plugin_section sections[2];
    wr_config cfg;
    char fini_file[PATH_MAX];
    char greeting[32];
};

static void good_config(struct good_config *g)
{
    memset(g, 0, sizeof *g);
    tmp_path(g->fini_file, sizeof g->fini_file, "fini.txt");
    snprintf(g->greeting, sizeof g->greeting, "bonjour");
    g->items[0] = (wr_kv){.key = "greeting", .value = "hi", .line = 2};
    g->items[1] = (wr_kv){.key = "fini_file", .value = g->fini_file, .line = 3};
    /* Repeated key: the last one wins, as in the config itself. */
    g->items[2] = (wr_kv){.key = "greeting", .value = g->greeting, .line = 4};
    g->sections[0] = (wr_plugin_section){.name = "echo", .line = 5, .items = g->items, .nitems = 1};
    g->sections[1] = (wr_plugin_section){.name = "good", .line = 1, .items = g->items, .nitems = 3};
    g->cfg.plugin_sections = g->sections;
    g->cfg.nplugin_sections = 2;
}

static char *read_file(const char *path)
{
    static char buf[256];
    FILE *f = fopen(path, "r");
    size_t n;

    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

Test(plugin_loader, good_plugin_reads_its_config_section)
{
    char *names[] = {"good"};
    struct good_config g;
    wr_plugins *p = NULL;
    wr_diag diag = {0};
    warren_error err;
    json_t *result;

    stage("good");
    good_config(&g);
    cr_assert_eq(load(&p, names, 1, &g.cfg, &diag), 0);
    cr_assert_eq(diag.n, 0);

    cr_assert_eq(call(p, "good.hello", NULL, &result, &err), 0);
    cr_assert_str_eq(json_string_value(result), "bonjour");
    json_decref(result);
    wr_plugins_unload(p);
}

Test(plugin_loader, good_plugin_without_config_uses_its_default)
{
    char *names[] = {"good"};
    wr_plugins *p = NULL;
    wr_diag diag = {0};
    warren_error err;
    json_t *result;

    stage("good");
    cr_assert_eq(load(&p, names, 1, NULL, &diag), 0);
    cr_assert_eq(call(p, "good.hello", NULL, &result, &err), 0);
    cr_assert_str_eq(json_string_value(result), "hello");
    json_decref(result);
    cr_assert_eq(call(p, "good.whoami", NULL, &result, &err), 0);
    cr_assert(json_is_null(json_object_get(result, "config_now")));
    json_decref(result);
    wr_plugins_unload(p);
}

/* The call struct carries the host, the state init stored, the method
 * name; and config values stay valid after the caller's config changes. */
Test(plugin_loader, calls_carry_host_state_and_a_config_copy)
{
    char *names[] = {"good"};
    struct good_config g;
    wr_plugins *p = NULL;
    wr_diag diag = {0};
    warren_error err;
    json_t *result;

    stage("good");
    good_config(&g);
    cr_assert_eq(load(&p, names, 1, &g.cfg, &diag), 0);
    memset(g.greeting, 'X', sizeof g.greeting - 1); /* the caller's config changes */

    cr_assert_eq(call(p, "good.whoami", NULL, &result, &err), 0);
    cr_assert_str_eq(json_string_value(json_object_get(result, "plugin")), "good");
    cr_assert_str_eq(json_string_value(json_object_get(result, "method")), "good.whoami");
    cr_assert(json_is_true(json_object_get(result, "state")));
    cr_assert_str_eq(json_string_value(json_object_get(result, "config_now")), "bonjour");
    json_decref(result);
    wr_plugins_unload(p);
}

Test(plugin_loader, unload_calls_fini)
{
    char *names[] = {"good"};
    struct good_config g;
    wr_plugins *p = NULL;
    wr_diag diag = {0};

    stage("good");
    good_config(&g);
    cr_assert_eq(load(&p, names, 1, &g.cfg, &diag), 0);
    cr_assert_not(file_exists(g.fini_file), "fini ran before unload");
    wr_plugins_unload(p);
    cr_assert_str_eq(read_file(g.fini_file), "fini bonjour\n");
    wr_plugins_unload(NULL);
}

/* When a later init fails, the plugins already initialised are
 * finalized: their fini runs. */
Test(plugin_loader, init_failure_finalizes_earlier_plugins)
{
    char *names[] = {"good", "init_fail"};
    struct good_config g;
    wr_plugins *p = NULL;
    wr_diag diag = {0};

    stage("good");
    stage("init_fail");
    good_config(&g);
    cr_assert_eq(load(&p, names, 2, &g.cfg, &diag), -1);
    cr_assert_null(p);
    assert_diag_has(&diag, "plugin init_fail: init failed: cannot reach the frobnicator at "
                           "10.0.0.1");
    cr_assert_str_eq(read_file(g.fini_file), "fini bonjour\n");
    wr_diag_free(&diag);
}

/* When any plugin fails its checks, no init runs at all. */
Test(plugin_loader, check_failure_runs_no_init)
{
    char *names[] = {"good", "bad_abi"};
    struct good_config g;
    wr_plugins *p = NULL;
    wr_diag diag = {0};

    stage("good");
    stage("bad_abi");
    good_config(&g);
    cr_assert_eq(load(&p, names, 2, &g.cfg, &diag), -1);
    cr_assert_null(p);
    cr_assert_eq(diag.n, 1);
    cr_assert_not(file_exists(g.fini_file), "good was initialised (and finalized)");
    wr_diag_free(&diag);
}

/* host->log writes one line prefixed with the plugin's name. */
Test(plugin_loader, plugin_log_lines_name_the_plugin)
{
    char *names[] = {"good"};
    struct good_config g;
    wr_plugins *p = NULL;
    wr_diag diag = {0};
    char log_path[PATH_MAX];
    int saved, fd;

    stage("good");
    good_config(&g);
    tmp_path(log_path, sizeof log_path, "stderr.txt");
    wr_log_set_level(WR_LOG_INFO);
    fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert(fd >= 0);
    saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    close(fd);
    cr_assert_eq(load(&p, names, 1, &g.cfg, &diag), 0);
    dup2(saved, STDERR_FILENO);
    close(saved);
    cr_assert(strstr(read_file(log_path), ": INFO: plugin good: greeting is \"bonjour\"\n"),
              "log was: %s", read_file(log_path));
    wr_plugins_unload(p);
}

/* ---- the shipped plugins -------------------------------------------- */

static wr_plugins *load_shipped(void)
{
    char *names[] = {"echo", "time", "test", "good"};
    wr_plugins *p = NULL;
    wr_diag diag = {0};

    for (size_t i = 0; i < 4; i++)
        stage(names[i]);
    if (load(&p, names, 4, NULL, &diag) != 0) {
        for (size_t i = 0; i < diag.n; i++)
            cr_log_error("%s", diag.msgs[i]);
        cr_assert_fail("loading the shipped plugins failed");
    }
    return p;
}

Test(plugin_loader, method_table_lists_every_method_in_name_order)
{
    static const char *const expected[] = {"echo",       "good.hello", "good.whoami",  "test.crash",
                                           "test.fail",  "test.first", "test.message", "test.sleep",
                                           "test.touch", "time"};
    wr_plugins *p = load_shipped();
    size_t n = sizeof expected / sizeof *expected;

    cr_assert_eq(wr_plugins_method_count(p), n);
    for (size_t i = 0; i < n; i++)
        cr_assert_str_eq(wr_plugins_method_at(p, i)->method->name, expected[i]);
    cr_assert_null(wr_plugins_method_at(p, n));
    cr_assert_null(wr_plugins_find(p, "nosuch"));
    cr_assert_null(wr_plugins_find(p, "ech"));
    cr_assert_null(wr_plugins_find(p, NULL));
    wr_plugins_unload(p);
}

Test(plugin_loader, empty_list_loads_nothing)
{
    wr_plugins *p = NULL;
    wr_diag diag = {0};

    cr_assert_eq(wr_plugins_load(&p, tmpdir, NULL, 0, NULL, &diag), 0);
    cr_assert_not_null(p);
    cr_assert_eq(wr_plugins_method_count(p), 0);
    cr_assert_null(wr_plugins_find(p, "echo"));
    wr_plugins_unload(p);
    cr_assert_eq(wr_plugins_method_count(NULL), 0);
    cr_assert_null(wr_plugins_find(NULL, "echo"));
}

Test(plugin_loader, echo_returns_its_params)
{
    wr_plugins *p = load_shipped();
    json_t *params = json_pack("[i,s,{s:b}]", 1, "two", "three", 1);
    json_t *result;
    warren_error err;

    cr_assert_eq(call(p, "echo", params, &result, &err), 0);
    cr_assert(json_equal(result, params));
    json_decref(result);
    cr_assert_eq(params->refcount, 1, "echo must hand back a new reference");
    json_decref(params);

    cr_assert_eq(call(p, "echo", NULL, &result, &err), 0);
    cr_assert_null(result, "no params: null");
    wr_plugins_unload(p);
}

Test(plugin_loader, time_returns_now)
{
    wr_plugins *p = load_shipped();
    json_t *result;
    warren_error err;
    json_int_t unix_ms;
    const char *iso;
    char expected[32];
    time_t secs;
    struct tm tm;

    cr_assert_eq(call(p, "time", NULL, &result, &err), 0);
    cr_assert(json_is_integer(json_object_get(result, "unix_ms")));
    unix_ms = json_integer_value(json_object_get(result, "unix_ms"));
    cr_assert(unix_ms / 1000 > time(NULL) - 5 && unix_ms / 1000 <= time(NULL) + 1);
    iso = json_string_value(json_object_get(result, "iso8601"));
    cr_assert_not_null(iso);
    /* Both fields come from one reading: the ISO form is the same second
     * and millisecond. */
    secs = (time_t)(unix_ms / 1000);
    gmtime_r(&secs, &tm);
    strftime(expected, sizeof expected, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(expected + 19, sizeof expected - 19, ".%03dZ", (int)(unix_ms % 1000));
    cr_assert_str_eq(iso, expected);
    json_decref(result);
    wr_plugins_unload(p);
}

Test(plugin_loader, test_fail_returns_structured_error)
{
    wr_plugins *p = load_shipped();
    json_t *params = json_pack("{s:s}", "why", "because");
    json_t *result;
    warren_error err;

    cr_assert_neq(call(p, "test.fail", params, &result, &err), 0);
    cr_assert_null(result);
    cr_assert_eq(err.code, 1001);
    cr_assert_str_eq(err.message, "test.fail: failure requested");
    cr_assert(json_equal(err.data, params));
    json_decref(err.data);
    json_decref(params);

    cr_assert_neq(call(p, "test.fail", NULL, &result, &err), 0);
    cr_assert(json_is_null(err.data));
    json_decref(err.data);
    wr_plugins_unload(p);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

Test(plugin_loader, test_sleep_sleeps_and_returns_the_seconds)
{
    static const char *const shapes[] = {"[0.05]", "{\"seconds\": 0.05}"};
    wr_plugins *p = load_shipped();

    for (size_t i = 0; i < 2; i++) {
        json_t *params = json_loads(shapes[i], 0, NULL);
        json_t *result;
        warren_error err;
        double start = now_seconds();

        cr_assert_eq(call(p, "test.sleep", params, &result, &err), 0, "%s", err.message);
        cr_assert_geq(now_seconds() - start, 0.05);
        cr_assert_float_eq(json_number_value(result), 0.05, 1e-12);
        json_decref(result);
        json_decref(params);
    }
    wr_plugins_unload(p);
}

Test(plugin_loader, test_sleep_refuses_bad_params)
{
    static const char *const bad[] = {
        "[]",       "[\"1\"]", "[1, 2]",        "[-1]",
        "[3600.5]", "{}",      "{\"secs\": 1}", "{\"seconds\": null}"};
    wr_plugins *p = load_shipped();
    json_t *result;
    warren_error err;

    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_t *params = json_loads(bad[i], 0, NULL);
        cr_assert_not_null(params);
        cr_assert_neq(call(p, "test.sleep", params, &result, &err), 0, "%s", bad[i]);
        cr_assert_eq(err.code, WARREN_ERR_INVALID_PARAMS);
        cr_assert(strncmp(err.message, "test.sleep: ", 12) == 0, "%s", err.message);
        cr_assert_null(result);
        json_decref(params);
    }
    cr_assert_neq(call(p, "test.sleep", NULL, &result, &err), 0);
    cr_assert_eq(err.code, WARREN_ERR_INVALID_PARAMS);
    wr_plugins_unload(p);
}

/* Criterion runs each test in its own process, which test.crash kills.
 * SIGSEGV is first reset to the default action, as in a worker without a
 * handler (and to take it from ASan, which would otherwise report and
 * exit(1)).  The suite's .fini never runs in a killed test, so the temp
 * dir goes first (the loaded plugins stay mapped). */
Test(plugin_loader, test_crash_dies_of_sigsegv, .signal = SIGSEGV)
{
    wr_plugins *p = load_shipped();
    json_t *result;
    warren_error err;

    remove_tmpdir();
    signal(SIGSEGV, SIG_DFL);
    call(p, "test.crash", NULL, &result, &err);
    cr_assert_fail("test.crash returned");
}

static volatile sig_atomic_t segv_seen;

static void returning_handler(int sig)
{
    (void)sig;
    segv_seen = 1;
}

/* A worker handler that returns must not let test.crash return. */
Test(plugin_loader, test_crash_dies_even_past_a_returning_handler, .signal = SIGSEGV)
{
    wr_plugins *p = load_shipped();
    json_t *result;
    warren_error err;

    remove_tmpdir(); /* as above */
    signal(SIGSEGV, returning_handler);
    call(p, "test.crash", NULL, &result, &err);
    cr_assert_fail("test.crash returned (handler ran: %d)", (int)segv_seen);
}

/* ---- temporary init failures ------------------------------------------ */

/* The test plugin's init fails with WARREN_ERR_TEMPORARY as often as its
 * [plugin test] section says: the loader tells that apart (a worker
 * retries it), then the next load succeeds. */
Test(plugin_loader, temporary_init_failure_is_reported_as_such)
{
    char *names[] = {"test"};
    char counter[PATH_MAX];
    wr_kv items[2];
    wr_plugin_section section;
    wr_config cfg;
    wr_plugins *p = (wr_plugins *)1;
    wr_diag diag = {0};

    stage("test");
    tmp_path(counter, sizeof counter, "counter");
    items[0] = (wr_kv){.key = "temporary_init_failures", .value = "1", .line = 2};
    items[1] = (wr_kv){.key = "counter_file", .value = counter, .line = 3};
    section = (wr_plugin_section){.name = "test", .line = 1, .items = items, .nitems = 2};
    memset(&cfg, 0, sizeof cfg);
    cfg.plugin_sections = &section;
    cfg.nplugin_sections = 1;

    cr_assert_eq(load(&p, names, 1, &cfg, &diag), WR_PLUGINS_TEMPORARY);
    cr_assert_null(p);
    cr_assert_eq(diag.n, 1);
    assert_diag_has(&diag, "plugin test: init failed temporarily: temporary failure 1 of 1 "
                           "requested");
    wr_diag_free(&diag);

    cr_assert_eq(load(&p, names, 1, &cfg, &diag), 0, "the second load should succeed");
    cr_assert_eq(diag.n, 0);
    wr_plugins_unload(p);
}

/* Everything else stays a plain failure (-1): a worker must not retry it. */
Test(plugin_loader, other_failures_are_not_temporary)
{
    char *init_fail[] = {"init_fail"}, *no_symbol[] = {"no_symbol"}, *bad_abi[] = {"bad_abi"};
    wr_plugins *p = NULL;
    wr_diag diag = {0};

    stage("init_fail");
    stage("no_symbol");
    stage("bad_abi");
    cr_assert_eq(load(&p, init_fail, 1, NULL, &diag), -1);
    cr_assert_eq(load(&p, no_symbol, 1, NULL, &diag), -1);
    cr_assert_eq(load(&p, bad_abi, 1, NULL, &diag), -1);
    cr_assert_eq(diag.n, 3);
    wr_diag_free(&diag);
}
