/*
 * Tests for config/config.c: defaults, every key, every error with its
 * exact message and line, -o overrides, the write/read round trip, and
 * the example config.  The invalid configs in tests/config_cases/ (one
 * folder per case: warren.conf and the expected messages) are run by
 * invalid_configs_report_the_expected_errors.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "config/config.h"

#define MINIMAL "[route rpc]\nqueue = q\n"
#define EXAMPLE WARREN_TEST_SOURCE_DIR "/config/warren.conf"
#define CASES WARREN_TEST_SOURCE_DIR "/tests/config_cases"

/* Every message followed by a newline, as --check prints them.  Free it. */
static char *messages(const wr_diag *d)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    for (size_t i = 0; i < d->n; i++)
        fprintf(f, "%s\n", d->msgs[i]);
    fclose(f);
    return text;
}

static char *slurp(const char *path)
{
    char *text = NULL;
    size_t len = 0;
    FILE *in = fopen(path, "r"), *out = open_memstream(&text, &len);
    int c;

    cr_assert_not_null(in, "cannot open %s", path);
    while ((c = fgetc(in)) != EOF)
        fputc(c, out);
    fclose(in);
    fclose(out);
    return text;
}

static bool is_zeroed(const wr_config *cfg)
{
    static const wr_config zero;

    return !memcmp(cfg, &zero, sizeof zero);
}

static void load_ok(wr_config *cfg, const char *text, const char *const *ov, size_t nov)
{
    wr_diag d = {0};
    int rc = wr_config_load_string(cfg, "warren.conf", text, ov, nov, &d);
    char *got = messages(&d);

    cr_assert_eq(rc, 0, "unexpected errors:\n%s", got);
    cr_assert_eq(d.n, 0);
    free(got);
    wr_diag_free(&d);
}

/* Loading TEXT (as "warren.conf") with overrides fails with exactly
 * EXPECTED, and leaves the config freed. */
static void expect_errors_ov(const char *text, const char *const *ov, size_t nov,
                             const char *expected)
{
    wr_config cfg;
    wr_diag d = {0};
    int rc = wr_config_load_string(&cfg, "warren.conf", text, ov, nov, &d);
    char *got = messages(&d);

    cr_expect_eq(rc, -1);
    cr_expect_str_eq(got, expected);
    cr_expect(is_zeroed(&cfg), "a failed load leaves the config freed and zeroed");
    free(got);
    wr_diag_free(&d);
}

static void expect_errors(const char *text, const char *expected)
{
    expect_errors_ov(text, NULL, 0, expected);
}

static void expect_words(char *const *words, size_t n, const char *const *want, size_t nwant)
{
    cr_assert_eq(n, nwant);
    for (size_t i = 0; i < n; i++)
        cr_expect_str_eq(words[i], want[i]);
}

static void expect_str_or_null(const char *got, const char *want)
{
    if (!want || !got)
        cr_expect_eq(got, want, "\"%s\" vs \"%s\"", got ? got : "(null)", want ? want : "(null)");
    else
        cr_expect_str_eq(got, want);
}

/* A and B hold the same settings (path and line numbers aside). */
static void expect_same(const wr_config *a, const wr_config *b)
{
    cr_expect_str_eq(a->broker_uri, b->broker_uri);
    expect_words(a->broker_uris, a->nbroker_uris, (const char *const *)b->broker_uris,
                 b->nbroker_uris);
    cr_expect_eq(a->heartbeat, b->heartbeat);
    cr_expect_eq(a->connect_timeout, b->connect_timeout);
    expect_str_or_null(a->ca_file, b->ca_file);
    expect_str_or_null(a->cert_file, b->cert_file);
    expect_str_or_null(a->key_file, b->key_file);
    expect_str_or_null(a->password_file, b->password_file);
    expect_str_or_null(a->broker_password, b->broker_password);
    cr_expect_eq(a->workers, b->workers);
    cr_expect_eq(a->prefetch, b->prefetch);
    cr_expect_eq(a->max_message_size, b->max_message_size);
    cr_expect_eq(a->shutdown_timeout, b->shutdown_timeout);
    cr_expect_eq(a->max_attempts, b->max_attempts);
    cr_expect_eq(a->log_level, b->log_level);
    cr_expect_eq(a->log_format, b->log_format);
    cr_expect_eq(a->builtin_methods, b->builtin_methods);
    cr_expect_eq(a->publisher_confirms, b->publisher_confirms);
    expect_str_or_null(a->plugin_dir, b->plugin_dir);
    expect_words(a->plugins, a->nplugins, (const char *const *)b->plugins, b->nplugins);
    cr_assert_eq(a->nroutes, b->nroutes);
    for (size_t i = 0; i < a->nroutes; i++) {
        const wr_route *x = &a->routes[i], *y = &b->routes[i];

        cr_expect_str_eq(x->name, y->name);
        expect_str_or_null(x->queue, y->queue);
        cr_expect_eq(x->format, y->format);
        expect_str_or_null(x->method, y->method);
        cr_expect_eq(x->broadcast, y->broadcast);
        cr_expect_eq(x->queue_type, y->queue_type);
        cr_expect_eq(x->dead_letter, y->dead_letter);
        cr_expect_eq(x->exchange_declare, y->exchange_declare);
        expect_str_or_null(x->exchange, y->exchange);
        expect_words(x->bindings, x->nbindings, (const char *const *)y->bindings, y->nbindings);
        expect_str_or_null(x->reply_exchange, y->reply_exchange);
        expect_str_or_null(x->reply_prefix, y->reply_prefix);
    }
    cr_assert_eq(a->nplugin_sections, b->nplugin_sections);
    for (size_t i = 0; i < a->nplugin_sections; i++) {
        const wr_plugin_section *x = &a->plugin_sections[i], *y = &b->plugin_sections[i];

        cr_expect_str_eq(x->name, y->name);
        cr_assert_eq(x->nitems, y->nitems);
        for (size_t j = 0; j < x->nitems; j++) {
            cr_expect_str_eq(x->items[j].key, y->items[j].key);
            cr_expect_str_eq(x->items[j].value, y->items[j].value);
        }
    }
}

/* wr_config_write() into a string.  Free it. */
static char *written(const wr_config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    cr_assert_eq(wr_config_write(cfg, f), 0);
    fclose(f);
    return text;
}

/* ---- values ------------------------------------------------------------ */

Test(config, minimal_config_gets_every_default)
{
    wr_config cfg;

    load_ok(&cfg, MINIMAL, NULL, 0);
    cr_expect_str_eq(cfg.path, "warren.conf");
    cr_expect_str_eq(cfg.broker_uri, "amqp://guest:guest@127.0.0.1:5672/");
    cr_expect_eq(cfg.heartbeat, 30);
    cr_expect_eq(cfg.connect_timeout, 10);
    cr_expect_eq(cfg.workers, 4);
    cr_expect_eq(cfg.prefetch, 1);
    cr_expect_eq(cfg.max_message_size, 1048576);
    cr_expect_eq(cfg.shutdown_timeout, 30);
    cr_expect_eq(cfg.max_attempts, 3);
    cr_expect_null(cfg.plugin_dir);
    cr_expect_eq(cfg.nplugins, 0);
    cr_expect_null(cfg.plugins);
    cr_assert_eq(cfg.nroutes, 1);
    cr_expect_str_eq(cfg.routes[0].name, "rpc");
    cr_expect_eq(cfg.routes[0].line, 1);
    cr_expect_str_eq(cfg.routes[0].queue, "q");
    cr_expect_eq(cfg.routes[0].format, WR_FORMAT_JSONRPC);
    cr_expect_null(cfg.routes[0].exchange);
    cr_expect_eq(cfg.routes[0].nbindings, 0);
    cr_expect_null(cfg.routes[0].reply_exchange);
    cr_expect_null(cfg.routes[0].reply_prefix);
    cr_expect_eq(cfg.nplugin_sections, 0);
    cr_expect_null(wr_config_plugin_section(&cfg, "echo"));
    wr_config_free(&cfg);
}

static const char full[] = "[broker]\n"
                           "uri = amqp://u:p@rabbit.example:5671/prod\n"
                           "heartbeat = 0\n"
                           "connect_timeout = 600\n"
                           "[pool]\n"
                           "workers = 1024\n"
                           "prefetch = 65535\n"
                           "max_message_size = 128M\n"
                           "shutdown_timeout = 1\n"
                           "max_attempts = 100\n"
                           "[plugins]\n"
                           "dir = /opt/warren/plugins\n"
                           "load = echo time\n"
                           "[route rpc]\n"
                           "queue = warren.rpc\n"
                           "format = jsonrpc\n"
                           "exchange = TestExchange\n"
                           "bindings = example.request.* audit.#\n"
                           "reply_exchange = TestExchange\n"
                           "reply_prefix = example.response\n"
                           "[plugin greet]\n"
                           "greeting = Hello, world\n"
                           "empty =\n";

Test(config, every_key_is_parsed)
{
    wr_config cfg;
    const wr_route *r;

    load_ok(&cfg, full, NULL, 0);
    cr_expect_str_eq(cfg.broker_uri, "amqp://u:p@rabbit.example:5671/prod");
    cr_expect_eq(cfg.heartbeat, 0);
    cr_expect_eq(cfg.connect_timeout, 600);
    cr_expect_eq(cfg.workers, 1024);
    cr_expect_eq(cfg.prefetch, 65535);
    cr_expect_eq(cfg.max_message_size, 128L * 1024 * 1024);
    cr_expect_eq(cfg.shutdown_timeout, 1);
    cr_expect_eq(cfg.max_attempts, 100);
    cr_expect_str_eq(cfg.plugin_dir, "/opt/warren/plugins");
    expect_words(cfg.plugins, cfg.nplugins, (const char *const[]){"echo", "time"}, 2);
    cr_assert_eq(cfg.nroutes, 1);
    r = &cfg.routes[0];
    cr_expect_str_eq(r->name, "rpc");
    cr_expect_eq(r->line, 14);
    cr_expect_str_eq(r->queue, "warren.rpc");
    cr_expect_eq(r->format, WR_FORMAT_JSONRPC);
    cr_expect_str_eq(r->exchange, "TestExchange");
    expect_words(r->bindings, r->nbindings, (const char *const[]){"example.request.*", "audit.#"},
                 2);
    cr_expect_str_eq(r->reply_exchange, "TestExchange");
    cr_expect_str_eq(r->reply_prefix, "example.response");
    wr_config_free(&cfg);
}

Test(config, sizes_take_bytes_or_a_k_m_g_suffix)
{
    static const struct {
        const char *text;
        long bytes;
    } sizes[] = {{"1024", 1024},  {"1k", 1024},    {"1K", 1024},        {"64k", 65536},
                 {"2M", 2097152}, {"2m", 2097152}, {"128M", 134217728}, {"134217728", 134217728}};
    char text[128];
    wr_config cfg;

    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        snprintf(text, sizeof text, MINIMAL "[pool]\nmax_message_size = %s\n", sizes[i].text);
        load_ok(&cfg, text, NULL, 0);
        cr_expect_eq(cfg.max_message_size, sizes[i].bytes, "%s", sizes[i].text);
        wr_config_free(&cfg);
    }
}

Test(config, size_errors_name_the_range)
{
    const char *tail = " (bytes, or with a K, M or G suffix), got ";

    for (const char *const *v = (const char *const[]){"1023", "129M", "1G", "-1", "1 M", "1KiB",
                                                      "M", "99999999999999999999", NULL};
         *v; v++) {
        char text[128], expected[256];

        snprintf(text, sizeof text, MINIMAL "[pool]\nmax_message_size = %s\n", *v);
        snprintf(expected, sizeof expected,
                 "warren.conf:4: max_message_size: expected a size from 1K to 128M%s\"%s\"\n", tail,
                 *v);
        expect_errors(text, expected);
    }
}

Test(config, lists_split_on_spaces_and_commas)
{
    wr_config cfg;

    load_ok(&cfg,
            "[plugins]\nload = a,b , c\td,,e\n"
            "[route rpc]\nqueue = q\nexchange = x\nbindings = k1,k2\n",
            NULL, 0);
    expect_words(cfg.plugins, cfg.nplugins, (const char *const[]){"a", "b", "c", "d", "e"}, 5);
    expect_words(cfg.routes[0].bindings, cfg.routes[0].nbindings, (const char *const[]){"k1", "k2"},
                 2);
    wr_config_free(&cfg);
}

Test(config, routes_keep_file_order_names_and_lines)
{
    wr_config cfg;

    load_ok(&cfg,
            "[route rpc]\nqueue = a\n\n[route billing.v2]\nqueue = b\n"
            "[route x-y_z]\nqueue = c\n",
            NULL, 0);
    cr_assert_eq(cfg.nroutes, 3);
    cr_expect_str_eq(cfg.routes[0].name, "rpc");
    cr_expect_eq(cfg.routes[0].line, 1);
    cr_expect_str_eq(cfg.routes[1].name, "billing.v2");
    cr_expect_eq(cfg.routes[1].line, 4);
    cr_expect_str_eq(cfg.routes[1].queue, "b");
    cr_expect_str_eq(cfg.routes[2].name, "x-y_z");
    cr_expect_eq(cfg.routes[2].line, 6);
    wr_config_free(&cfg);
}

Test(config, plugin_sections_keep_keys_in_order_with_lines)
{
    wr_config cfg;
    const wr_plugin_section *p;

    load_ok(&cfg,
            MINIMAL "[plugin greet]\ngreeting = Hello, world\nempty =\nx.y-z_1 = a=b:c\n"
                    "[plugin other]\n",
            NULL, 0);
    cr_assert_eq(cfg.nplugin_sections, 2);
    p = wr_config_plugin_section(&cfg, "greet");
    cr_assert_not_null(p);
    cr_expect_eq(p, &cfg.plugin_sections[0]);
    cr_expect_str_eq(p->name, "greet");
    cr_expect_eq(p->line, 3);
    cr_assert_eq(p->nitems, 3);
    cr_expect_str_eq(p->items[0].key, "greeting");
    cr_expect_str_eq(p->items[0].value, "Hello, world");
    cr_expect_eq(p->items[0].line, 4);
    cr_expect_str_eq(p->items[1].key, "empty");
    cr_expect_str_eq(p->items[1].value, "");
    cr_expect_eq(p->items[1].line, 5);
    cr_expect_str_eq(p->items[2].key, "x.y-z_1");
    cr_expect_str_eq(p->items[2].value, "a=b:c");
    p = wr_config_plugin_section(&cfg, "other");
    cr_assert_not_null(p);
    cr_expect_eq(p->nitems, 0);
    cr_expect_eq(p->line, 7);
    cr_expect_null(wr_config_plugin_section(&cfg, "time"));
    wr_config_free(&cfg);
}

/* What inih allows or does by default, and what we do about it. */
Test(config, indentation_comments_colons_crlf_and_bom)
{
    wr_config cfg;

    load_ok(&cfg,
            "\xEF\xBB\xBF# comment\r\n"
            "; another\r\n"
            "  [ pool ]  ; inline comment after a header\r\n"
            "  workers = 8 ; eight\r\n"
            "\tprefetch: 3\r\n"
            "[route   rpc]\r\n"
            "queue = q;not-a-comment\r\n"
            "exchange = x\r\n"
            "bindings = audit.# #also.a.key\r\n",
            NULL, 0);
    cr_expect_eq(cfg.workers, 8);
    cr_expect_eq(cfg.prefetch, 3, "an indented line is a key, not a continuation");
    cr_expect_str_eq(cfg.routes[0].name, "rpc");
    cr_expect_str_eq(cfg.routes[0].queue, "q;not-a-comment");
    expect_words(cfg.routes[0].bindings, cfg.routes[0].nbindings,
                 (const char *const[]){"audit.#", "#also.a.key"}, 2);
    wr_config_free(&cfg);
}

/* ---- errors (more in tests/config_cases/) ------------------------------- */

Test(config, number_error_names_key_range_and_value)
{
    expect_errors("[pool]\nworkers = many\n" MINIMAL,
                  "warren.conf:2: workers: expected a number from 1 to 1024, got \"many\"\n");
    expect_errors("[pool]\nworkers = 4x\n" MINIMAL,
                  "warren.conf:2: workers: expected a number from 1 to 1024, got \"4x\"\n");
    expect_errors("[pool]\nprefetch = 65536\n" MINIMAL,
                  "warren.conf:2: prefetch: expected a number from 1 to 65535, got \"65536\"\n");
    expect_errors("[pool]\nshutdown_timeout = 99999999999999999999\n" MINIMAL,
                  "warren.conf:2: shutdown_timeout: expected a number from 1 to 3600, "
                  "got \"99999999999999999999\"\n");
}

Test(config, unknown_format_lists_the_accepted_ones)
{
    expect_errors(MINIMAL "format = xml\n",
                  "warren.conf:3: format: expected one of jsonrpc, raw, amqpbus, got \"xml\"\n");
}

Test(config, log_level_defaults_to_info_and_takes_each_word)
{
    static const struct {
        const char *word;
        int level;
    } levels[] = {{"error", WR_LOG_ERROR}, {"warn", WR_LOG_WARN}, {"debug", WR_LOG_DEBUG}};
    wr_config cfg;
    char text[256];

    load_ok(&cfg, MINIMAL, NULL, 0);
    cr_expect_eq(cfg.log_level, WR_LOG_INFO);
    wr_config_free(&cfg);
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
        snprintf(text, sizeof text, "[log]\nlevel = %s\n" MINIMAL, levels[i].word);
        load_ok(&cfg, text, NULL, 0);
        cr_expect_eq(cfg.log_level, levels[i].level, "level = %s", levels[i].word);
        wr_config_free(&cfg);
    }
    expect_errors("[log]\nlevel = loud\n" MINIMAL,
                  "warren.conf:2: level: expected one of error, warn, info, debug, got \"loud\"\n");
}

Test(config, routes_for_every_client_style)
{
    wr_config cfg;

    load_ok(&cfg,
            "[pool]\nbuiltin_methods = off\n"
            "[route tutorial]\nqueue = rpc_queue\nformat = raw\nmethod = fib\n"
            "[route bus]\nqueue = ExampleBroker_req\nformat = amqpbus\nmethod = time\n"
            "exchange = TestExchange\nexchange_declare = topic\nbindings = example.request.*\n"
            "reply_prefix = example.response\n"
            "[route status]\nbroadcast = yes\nexchange = amq.topic\nbindings = SERVER_STATUS\n"
            "format = raw\nmethod = warren.status\n",
            NULL, 0);
    cr_expect_eq(cfg.builtin_methods, 0);
    cr_assert_eq(cfg.nroutes, 3);
    cr_expect_eq(cfg.routes[0].format, WR_FORMAT_RAW);
    cr_expect_str_eq(cfg.routes[0].method, "fib");
    cr_expect_eq(cfg.routes[0].method_line, 6);
    cr_expect_eq(cfg.routes[1].format, WR_FORMAT_AMQPBUS);
    cr_expect_eq(cfg.routes[1].exchange_declare, WR_EXCHANGE_TOPIC);
    cr_expect_str_eq(cfg.routes[1].reply_prefix, "example.response");
    cr_expect_null(cfg.routes[1].reply_exchange);
    cr_expect_eq(cfg.routes[2].broadcast, 1);
    cr_expect_null(cfg.routes[2].queue);
    cr_expect_eq(cfg.routes[2].broadcast, 1);
    wr_config_free(&cfg);
}

/* Shared queues are quorum with dead letters unless the route says
 * otherwise; a broadcast route's own queue is classic without them
 * whatever the defaults are, and refuses to be told otherwise. */
Test(config, queue_type_and_dead_letter_defaults)
{
    wr_config cfg;

    load_ok(&cfg,
            "[route rpc]\nqueue = warren.rpc\n"
            "[route old]\nqueue = old.rpc\nqueue_type = classic\ndead_letter = no\n"
            "[route status]\nbroadcast = yes\nexchange = amq.topic\nbindings = S\n",
            NULL, 0);
    cr_assert_eq(cfg.nroutes, 3);
    cr_expect_eq(cfg.routes[0].queue_type, WR_QUEUE_QUORUM);
    cr_expect_eq(cfg.routes[0].dead_letter, 1);
    cr_expect_eq(cfg.routes[1].queue_type, WR_QUEUE_CLASSIC);
    cr_expect_eq(cfg.routes[1].dead_letter, 0);
    cr_expect_eq(cfg.routes[2].queue_type, WR_QUEUE_CLASSIC);
    cr_expect_eq(cfg.routes[2].dead_letter, 0);
    wr_config_free(&cfg);

    expect_errors("[route status]\nbroadcast = yes\nexchange = amq.topic\ndead_letter = yes\n",
                  "warren.conf:4: dead_letter: a broadcast route's refused requests are "
                  "dropped, not dead-lettered, in [route status]\n");
}

Test(config, key_given_twice_points_at_both_lines)
{
    expect_errors(MINIMAL "[pool]\nworkers = 2\nworkers = 2\n",
                  "warren.conf:5: workers: given twice (first at line 4)\n");
    expect_errors(MINIMAL "queue = r\n", "warren.conf:3: queue: given twice (first at line 2)\n");
}

Test(config, keys_of_a_bad_section_are_not_reported_again)
{
    expect_errors("[route]\nqueue = q\nbogus = 1\n[wat]\nx = 1\n",
                  "warren.conf:1: [route] needs a name: [route NAME]\n"
                  "warren.conf:4: unknown section [wat]\n");
}

Test(config, every_problem_is_reported_not_just_the_first)
{
    expect_errors("[pool]\nworkers = 0\nprefetch = 0\n[route a]\n[route b]\nqueue =\n",
                  "warren.conf:2: workers: expected a number from 1 to 1024, got \"0\"\n"
                  "warren.conf:3: prefetch: expected a number from 1 to 65535, got \"0\"\n"
                  "warren.conf:6: queue: expected a non-empty value\n"
                  "warren.conf:4: [route a]: queue is required\n");
}

Test(config, a_line_longer_than_inih_reads_is_refused_not_cut)
{
    char text[512];

    /* 198 characters fit; 199 do not. */
    snprintf(text, sizeof text, "[route rpc]\nqueue = %0190d\n", 0);
    wr_config cfg;
    load_ok(&cfg, text, NULL, 0);
    cr_expect_eq(strlen(cfg.routes[0].queue), 190);
    wr_config_free(&cfg);

    snprintf(text, sizeof text, "[route rpc]\nqueue = %0191d\n", 0);
    expect_errors(text, "warren.conf:2: line too long (more than 198 characters)\n"
                        "warren.conf:1: [route rpc]: queue is required\n");
}

Test(config, missing_file_says_so)
{
    wr_config cfg;
    wr_diag d = {0};

    cr_assert_eq(wr_config_load(&cfg, "/nonexistent/warren.conf", NULL, 0, &d), -1);
    cr_assert_eq(d.n, 1);
    cr_expect_str_eq(d.msgs[0], "/nonexistent/warren.conf: cannot open: No such file or directory");
    cr_expect(is_zeroed(&cfg));
    wr_diag_free(&d);
}

Test(config, a_directory_is_not_a_config)
{
    wr_config cfg;
    wr_diag d = {0};

    cr_assert_eq(wr_config_load(&cfg, WARREN_TEST_SOURCE_DIR, NULL, 0, &d), -1);
    cr_assert_eq(d.n, 1);
    cr_expect_str_eq(d.msgs[0], WARREN_TEST_SOURCE_DIR ": cannot read: Is a directory");
    wr_diag_free(&d);
}

Test(config, errors_are_added_after_what_the_diag_already_holds)
{
    wr_config cfg;
    wr_diag d = {0};

    wr_diag_add(&d, "earlier");
    cr_assert_eq(wr_config_load_string(&cfg, "x.conf", MINIMAL, NULL, 0, &d), 0,
                 "an earlier message is not this load's failure");
    wr_config_free(&cfg);
    cr_assert_eq(wr_config_load_string(&cfg, "x.conf", "", NULL, 0, &d), -1);
    cr_assert_eq(d.n, 2);
    cr_expect_str_eq(d.msgs[1], "x.conf: no [route NAME] section: at least one route is required");
    wr_diag_free(&d);
}

/* Each folder of tests/config_cases/ holds warren.conf and the exact
 * messages expected for it.  Loaded from inside the folder so the
 * messages say "warren.conf". */
Test(config, invalid_configs_report_the_expected_errors)
{
    struct dirent **names;
    int n = scandir(CASES, &names, NULL, alphasort);
    int here = open(".", O_RDONLY | O_DIRECTORY), cases = 0;

    cr_assert_gt(n, 0, "no cases in " CASES);
    cr_assert_geq(here, 0);
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        wr_config cfg;
        wr_diag d = {0};
        char *expected, *got;

        if (name[0] != '.') {
            cr_assert_eq(chdir(CASES), 0);
            cr_assert_eq(chdir(name), 0, "case %s", name);
            expected = slurp("expected");
            cr_expect_eq(wr_config_load(&cfg, "warren.conf", NULL, 0, &d), -1, "case %s", name);
            got = messages(&d);
            cr_expect_str_eq(got, expected, "case %s: got\n%s", name, got);
            cr_expect(is_zeroed(&cfg), "case %s", name);
            free(got);
            free(expected);
            wr_diag_free(&d);
            cases++;
        }
        free(names[i]);
    }
    free(names);
    cr_assert_eq(fchdir(here), 0);
    close(here);
    cr_expect_geq(cases, 12);
}

/* ---- overrides ------------------------------------------------------- */

Test(config, override_replaces_a_file_value_without_given_twice)
{
    const char *ov[] = {"pool.workers=8", "pool.workers = 9", "broker.uri=amqp://h/"};
    wr_config cfg;

    load_ok(&cfg, "[pool]\nworkers = 2\n" MINIMAL, ov, 3);
    cr_expect_eq(cfg.workers, 9, "the last override wins");
    cr_expect_str_eq(cfg.broker_uri, "amqp://h/");
    wr_config_free(&cfg);
}

Test(config, override_reaches_named_sections_by_the_last_dot)
{
    const char *ov[] = {"route.rpc.queue=other",     "route.v1.2.queue=dotted",
                        "plugin.greet.greeting=Hi",  "plugin.greet.extra=a=b",
                        "plugins.load=echo,time",    "route.rpc.exchange=x",
                        "route.rpc.bindings=a.* b.#"};
    wr_config cfg;
    const wr_plugin_section *p;

    load_ok(&cfg, MINIMAL "[plugin greet]\ngreeting = Hello\n", ov, 7);
    cr_assert_eq(cfg.nroutes, 2);
    cr_expect_str_eq(cfg.routes[0].queue, "other");
    cr_expect_str_eq(cfg.routes[0].exchange, "x");
    expect_words(cfg.routes[0].bindings, cfg.routes[0].nbindings,
                 (const char *const[]){"a.*", "b.#"}, 2);
    cr_expect_str_eq(cfg.routes[1].name, "v1.2", "a new route, from an override");
    cr_expect_eq(cfg.routes[1].line, 0, "no file line");
    cr_expect_str_eq(cfg.routes[1].queue, "dotted");
    cr_expect_eq(cfg.routes[1].format, WR_FORMAT_JSONRPC, "defaults apply to it");
    expect_words(cfg.plugins, cfg.nplugins, (const char *const[]){"echo", "time"}, 2);
    p = wr_config_plugin_section(&cfg, "greet");
    cr_assert_not_null(p);
    cr_assert_eq(p->nitems, 2);
    cr_expect_str_eq(p->items[0].value, "Hi");
    cr_expect_eq(p->items[0].line, 0);
    cr_expect_str_eq(p->items[1].key, "extra");
    cr_expect_str_eq(p->items[1].value, "a=b");
    wr_config_free(&cfg);
}

Test(config, overrides_alone_can_make_a_config)
{
    const char *ov[] = {"route.rpc.queue=q", "plugin.time.zone=UTC"};
    wr_config cfg;

    load_ok(&cfg, "", ov, 2);
    cr_assert_eq(cfg.nroutes, 1);
    cr_expect_str_eq(cfg.routes[0].name, "rpc");
    cr_expect_not_null(wr_config_plugin_section(&cfg, "time"));
    wr_config_free(&cfg);
}

Test(config, override_errors_name_the_override)
{
    const char *bad_value[] = {"pool.workers=many"};
    const char *malformed[] = {"pool.workers", "workers=8", "pool.=8", ".workers=8"};
    const char *unknown[] = {"bogus.x=1", "pool.bogus=1", "route.queue=x"};
    const char *unwritable[] = {"plugin.greet.msg=a ;b", "route.rpc.queue=;x",
                                "plugin.greet.msg=a\nb"};
    const char *new_route[] = {"route.new.format=jsonrpc"};
    const char *cross[] = {"route.rpc.bindings=a"};

    expect_errors_ov(MINIMAL, bad_value, 1,
                     "-o pool.workers=many: workers: expected a number from 1 to 1024, "
                     "got \"many\"\n");
    expect_errors_ov(MINIMAL, malformed, 4,
                     "-o pool.workers: expected SECTION.KEY=VALUE\n"
                     "-o workers=8: expected SECTION.KEY=VALUE\n"
                     "-o pool.=8: expected SECTION.KEY=VALUE\n"
                     "-o .workers=8: expected SECTION.KEY=VALUE\n");
    expect_errors_ov(MINIMAL, unknown, 3,
                     "-o bogus.x=1: unknown section [bogus]\n"
                     "-o pool.bogus=1: bogus: unknown key in [pool]\n"
                     "-o route.queue=x: [route] needs a name: [route NAME]\n");
    expect_errors_ov(MINIMAL, unwritable, 3,
                     "-o plugin.greet.msg=a ;b: msg: a value cannot hold a newline, nor ';' at "
                     "its start or after a space\n"
                     "-o route.rpc.queue=;x: queue: a value cannot hold a newline, nor ';' at "
                     "its start or after a space\n"
                     "-o plugin.greet.msg=a\nb: msg: a value cannot hold a newline, nor ';' at "
                     "its start or after a space\n");
    expect_errors_ov(MINIMAL, new_route, 1,
                     "-o route.new.format=jsonrpc: [route new]: queue is required\n");
    expect_errors_ov(MINIMAL, cross, 1,
                     "-o route.rpc.bindings=a: bindings: needs exchange in [route rpc]\n");
}

/* A value must fit on one line of what wr_config_write() writes. */
Test(config, override_value_too_long_to_write_back_is_refused)
{
    char ov[300], expected[600];
    const char *ovs[] = {ov};
    wr_config cfg;

    /* "queue = " and 190 characters: 198, the most inih reads. */
    snprintf(ov, sizeof ov, "route.rpc.queue=%0190d", 0);
    load_ok(&cfg, MINIMAL, ovs, 1);
    wr_config_free(&cfg);

    snprintf(ov, sizeof ov, "route.rpc.queue=%0191d", 0);
    snprintf(expected, sizeof expected,
             "-o %s: queue: line too long (\"queue = VALUE\" must fit in 198 characters)\n", ov);
    expect_errors_ov(MINIMAL, ovs, 1, expected);

    /* "[route NAME]" too: it fits with a 190-character name, not 191. */
    snprintf(ov, sizeof ov, "route.%0190d.queue=q", 0);
    load_ok(&cfg, MINIMAL, ovs, 1);
    wr_config_free(&cfg);
    snprintf(ov, sizeof ov, "route.%0191d.queue=q", 0);
    snprintf(expected, sizeof expected,
             "-o %s: section name too long (\"[route %0191d]\" must fit in 198 characters)\n", ov,
             0);
    expect_errors_ov(MINIMAL, ovs, 1, expected);
}

/* Found by fuzz_config: "queue =;u" gave the queue ";u", which
 * wr_config_write() wrote as "queue = ;u", and that reads back as an empty
 * value and a comment: the supervisor accepted a config its workers then
 * refused.  A file value may not start with ';', as an override may not. */
Test(config, value_starting_with_a_semicolon_is_refused)
{
    expect_errors("[route rpc]\nqueue =;u\n[plugin p]\nk =;v\nok = a;b\n",
                  "warren.conf:2: queue: a value cannot start with ';' (it would read back as a "
                  "comment)\n"
                  "warren.conf:4: k: a value cannot start with ';' (it would read back as a "
                  "comment)\n"
                  "warren.conf:1: [route rpc]: queue is required\n");
}

/* ---- writing ------------------------------------------------------------ */

Test(config, write_gives_plain_ini_with_every_value)
{
    wr_config cfg;
    char *text;

    load_ok(&cfg, MINIMAL, NULL, 0);
    text = written(&cfg);
    cr_expect_str_eq(text, "[broker]\n"
                           "uri = amqp://guest:guest@127.0.0.1:5672/\n"
                           "heartbeat = 30\n"
                           "connect_timeout = 10\n"
                           "\n"
                           "[pool]\n"
                           "workers = 4\n"
                           "prefetch = 1\n"
                           "max_message_size = 1048576\n"
                           "shutdown_timeout = 30\n"
                           "max_attempts = 3\n"
                           "builtin_methods = yes\n"
                           "max_batch = 1000\n"
                           "request_timeout = 30\n"
                           "reply_retry = 30\n"
                           "publisher_confirms = yes\n"
                           "max_requests = 0\n"
                           "max_rss = 0\n"
                           "min_workers = 0\n"
                           "max_workers = 0\n"
                           "idle_timeout = 10\n"
                           "startup_timeout = 60\n"
                           "control_socket = /run/warren/warren.sock\n"
                           "\n"
                           "[plugins]\n"
                           "\n"
                           "[log]\n"
                           "level = info\n"
                           "format = text\n"
                           "\n"
                           "[metrics]\n"
                           "\n"
                           "[route rpc]\n"
                           "queue = q\n"
                           "format = jsonrpc\n"
                           "broadcast = no\n"
                           "queue_type = quorum\n"
                           "dead_letter = yes\n"
                           "exchange_declare = no\n"
                           "request_timeout = 30\n");
    free(text);
    wr_config_free(&cfg);
}

Test(config, write_then_load_gives_an_equal_config)
{
    const char *ov[] = {"route.extra.queue=extra.q", "plugin.new.k=v", "pool.workers=7",
                        "log.level=debug"};
    wr_config a, b;
    char *text, *again;

    load_ok(&a,
            "[plugins]\nload = echo time\n"
            "[route rpc]\nqueue = warren.rpc\n"
            "[route example]\nqueue = example.requests\nexchange = TestExchange\n"
            "bindings = example.request.*, audit.#\nreply_exchange = TestExchange\n"
            "reply_prefix = example.response\n"
            "[route tutorial]\nqueue = rpc_queue\nformat = raw\nmethod = fib\n"
            "[route status]\nbroadcast = on\nexchange = amq.topic\nbindings = SERVER_STATUS\n"
            "format = amqpbus\nmethod = warren.status\nexchange_declare = fanout\n"
            "reply_prefix = status.reply\n"
            "[pool]\nbuiltin_methods = false\n"
            "[plugin greet]\ngreeting = Hello, world: a=b # c\nempty =\n"
            "[plugin other]\n",
            ov, 4);
    a.max_message_size = 1000000; /* not a multiple of a suffix */
    text = written(&a);
    load_ok(&b, text, NULL, 0);
    expect_same(&a, &b);
    again = written(&b);
    cr_expect_str_eq(again, text, "writing is stable");
    free(again);
    free(text);
    wr_config_free(&b);
    wr_config_free(&a);

    load_ok(&a, full, NULL, 0);
    text = written(&a);
    load_ok(&b, text, NULL, 0);
    expect_same(&a, &b);
    free(text);
    wr_config_free(&b);
    wr_config_free(&a);
}

/* ---- the example config ------------------------------------------------- */

Test(config, example_config_loads_with_its_documented_values)
{
    const char *ov[] = {"pool.workers=2"};
    wr_config cfg;
    wr_diag d = {0};
    int rc = wr_config_load(&cfg, EXAMPLE, ov, 1, &d);
    char *got = messages(&d);

    cr_assert_eq(rc, 0, "%s", got);
    free(got);
    cr_expect_str_eq(cfg.path, EXAMPLE);
    cr_expect_eq(cfg.workers, 2);
    cr_expect_eq(cfg.heartbeat, 30);
    cr_expect_null(cfg.plugin_dir);
    expect_words(cfg.plugins, cfg.nplugins, (const char *const[]){"echo", "time"}, 2);
    cr_assert_eq(cfg.nroutes, 1);
    cr_expect_str_eq(cfg.routes[0].name, "rpc");
    cr_expect_str_eq(cfg.routes[0].queue, "warren.rpc");
    cr_expect_null(cfg.routes[0].exchange);
    cr_expect_eq(cfg.nplugin_sections, 0);
    wr_config_free(&cfg);
}

/* Is the ';' line at S one of the keys whose value must be a file? */
static bool names_a_file(const char *s)
{
    static const char *const keys[] = {"ca_file", "cert_file", "key_file", "password_file"};

    s += strspn(s, "; ");
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!strncmp(s, keys[i], strlen(keys[i])) && strchr(" =", s[strlen(keys[i])]))
            return true;
    return false;
}

/* The example is the reference: every key appears in it, and with every
 * ';' setting uncommented it still loads and gives the defaults. */
Test(config, example_config_lists_every_key_with_its_default)
{
    static const char *const documented[] = {"uri",
                                             "heartbeat",
                                             "connect_timeout",
                                             "ca_file",
                                             "cert_file",
                                             "key_file",
                                             "password_file",
                                             "workers",
                                             "prefetch",
                                             "max_message_size",
                                             "shutdown_timeout",
                                             "max_attempts",
                                             "builtin_methods",
                                             "dir",
                                             "load",
                                             "level",
                                             "queue",
                                             "format",
                                             "method",
                                             "broadcast",
                                             "queue_type",
                                             "dead_letter",
                                             "exchange",
                                             "exchange_declare",
                                             "bindings",
                                             "reply_exchange",
                                             "reply_prefix"};
    char *text = slurp(EXAMPLE), *open_text, *w;
    wr_config cfg, defaults;
    const wr_route *r;

    for (size_t i = 0; i < sizeof documented / sizeof documented[0]; i++) {
        char line[64];

        snprintf(line, sizeof line, "\n; %s = ", documented[i]);
        if (!strstr(text, line))
            snprintf(line, sizeof line, "\n%s = ", documented[i]);
        cr_expect_not_null(strstr(text, line), "%s is not in warren.conf", documented[i]);
    }

    /* Drop the ';' (and one space) that opens a line.  Not for the keys
     * that name files, which would have to exist (and the TLS ones need
     * amqps://): they stay comments. */
    open_text = malloc(strlen(text) + 1);
    w = open_text;
    for (const char *s = text; *s; s++) {
        if (*s == ';' && (s == text || s[-1] == '\n') && !names_a_file(s)) {
            if (s[1] == ' ')
                s++;
            continue;
        }
        *w++ = *s;
    }
    *w = '\0';

    load_ok(&cfg, open_text, NULL, 0);
    load_ok(&defaults, MINIMAL, NULL, 0);
    cr_expect_str_eq(cfg.broker_uri, defaults.broker_uri);
    cr_expect_eq(cfg.heartbeat, defaults.heartbeat);
    cr_expect_eq(cfg.connect_timeout, defaults.connect_timeout);
    cr_expect_eq(cfg.workers, defaults.workers);
    cr_expect_eq(cfg.prefetch, defaults.prefetch);
    cr_expect_eq(cfg.max_message_size, defaults.max_message_size);
    cr_expect_eq(cfg.shutdown_timeout, defaults.shutdown_timeout);
    cr_expect_eq(cfg.max_attempts, defaults.max_attempts);
    cr_expect_eq(cfg.builtin_methods, defaults.builtin_methods);
    cr_expect_eq(cfg.log_level, defaults.log_level);
    cr_assert_eq(cfg.nroutes, 4);
    cr_expect_eq(cfg.routes[0].format, defaults.routes[0].format);
    cr_expect_eq(cfg.routes[0].broadcast, defaults.routes[0].broadcast);
    cr_expect_eq(cfg.routes[0].queue_type, defaults.routes[0].queue_type);
    cr_expect_eq(cfg.routes[0].dead_letter, defaults.routes[0].dead_letter);
    cr_expect_eq(cfg.routes[0].exchange_declare, defaults.routes[0].exchange_declare);
    r = &cfg.routes[1];
    cr_expect_str_eq(r->name, "tutorial");
    cr_expect_eq(r->format, WR_FORMAT_RAW);
    cr_expect_str_eq(r->method, "fib");
    r = &cfg.routes[2];
    cr_expect_str_eq(r->name, "example");
    cr_expect_eq(r->format, WR_FORMAT_AMQPBUS);
    cr_expect_str_eq(r->exchange, "TestExchange");
    cr_expect_eq(r->exchange_declare, WR_EXCHANGE_TOPIC);
    expect_words(r->bindings, r->nbindings, (const char *const[]){"example.request.*"}, 1);
    cr_expect_null(r->reply_exchange);
    cr_expect_str_eq(r->reply_prefix, "example.response");
    r = &cfg.routes[3];
    cr_expect_str_eq(r->name, "status");
    cr_expect_eq(r->broadcast, 1);
    cr_expect_eq(r->queue_type, WR_QUEUE_CLASSIC);
    cr_expect_eq(r->dead_letter, 0);
    cr_expect_str_eq(r->method, "warren.status");
    cr_expect_not_null(wr_config_plugin_section(&cfg, "greet"));
    wr_config_free(&defaults);
    wr_config_free(&cfg);
    free(open_text);
    free(text);
}

/* ---- freeing -------------------------------------------------------------- */

Test(config, free_is_safe_on_a_zeroed_or_freed_config)
{
    wr_config cfg = {0};

    wr_config_free(&cfg);
    cr_expect(is_zeroed(&cfg));
    load_ok(&cfg, full, NULL, 0);
    wr_config_free(&cfg);
    cr_expect(is_zeroed(&cfg));
    wr_config_free(&cfg);
    cr_expect(is_zeroed(&cfg));
}

/* ---- [broker] uri: one or more nodes ----------------------------------- */

Test(config, uri_lines_and_lists_make_one_node_list)
{
    static const char *const want[] = {"amqp://a:1/", "amqp://b:2/", "amqp://c:3/"};
    wr_config cfg, again;
    wr_diag d = {0};
    char *text;

    load_ok(&cfg, "[broker]\nuri = amqp://a:1/  amqp://b:2/\nuri = amqp://c:3/\n" MINIMAL, NULL, 0);
    expect_words(cfg.broker_uris, cfg.nbroker_uris, want, 3);
    cr_expect_str_eq(cfg.broker_uri, "amqp://a:1/", "broker_uri is the first node");
    /* Written back one line per node, and read back the same. */
    text = written(&cfg);
    cr_expect(strstr(text, "uri = amqp://a:1/\nuri = amqp://b:2/\nuri = amqp://c:3/\n") != NULL,
              "%s", text);
    cr_assert_eq(wr_config_load_string(&again, "again", text, NULL, 0, &d), 0);
    expect_words(again.broker_uris, again.nbroker_uris, want, 3);
    free(text);
    wr_config_free(&again);
    wr_config_free(&cfg);
}

Test(config, uri_override_replaces_the_whole_list)
{
    static const char *const ov[] = {"broker.uri=amqp://x:7/ amqp://y:8/"};
    static const char *const want[] = {"amqp://x:7/", "amqp://y:8/"};
    wr_config cfg;

    load_ok(&cfg, "[broker]\nuri = amqp://a:1/\nuri = amqp://b:2/\n" MINIMAL, ov, 1);
    expect_words(cfg.broker_uris, cfg.nbroker_uris, want, 2);
    cr_expect_str_eq(cfg.broker_uri, "amqp://x:7/");
    wr_config_free(&cfg);
}

Test(config, every_uri_is_checked_at_its_line_without_its_password)
{
    expect_errors("[broker]\nuri = amqp://u:secret@h:1/ amqps://h:2/\nuri = amqp://u:secret@h:1/\n"
                  "uri = amqp://u:secret@h:port/\n" MINIMAL,
                  "warren.conf:3: uri: \"h:1/\" listed twice\n"
                  "warren.conf:4: uri: not a valid AMQP URI (expected "
                  "amqp://USER:PASSWORD@HOST:PORT/VHOST)\n");
    static const char *const ov[] = {"broker.uri=amqp://ok:1/ ftp://h/"};
    expect_errors_ov(MINIMAL, ov, 1,
                     "-o broker.uri=amqp://ok:1/ ftp://h/: uri: expected an amqp:// or amqps:// "
                     "URI, got \"ftp://h/\"\n");
}

/* ---- TLS and the password ---------------------------------------------- */

/* A file in a fresh temp dir holding TEXT; its path (static buffer). */
static const char *temp_file(const char *name, const char *text)
{
    static char path[256];
    char dir[] = "/tmp/warren-test-config.XXXXXX";
    FILE *f;

    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* Remove what temp_file() made. */
static void remove_temp(const char *path)
{
    char dir[256], *slash;

    snprintf(dir, sizeof dir, "%s", path);
    slash = strrchr(dir, '/');
    *slash = '\0';
    cr_expect_eq(unlink(path), 0);
    cr_expect_eq(rmdir(dir), 0);
}

Test(config, amqps_takes_tls_files_and_writes_them_back)
{
    const char *pem = temp_file("ca.pem", "not checked here\n");
    char text[1024], *out;
    wr_config a, b;

    snprintf(
        text, sizeof text,
        "[broker]\nuri = amqps://u@h:5671/v\nca_file = %s\ncert_file = %s\nkey_file = %s\n" MINIMAL,
        pem, pem, pem);
    load_ok(&a, text, NULL, 0);
    cr_expect_str_eq(a.ca_file, pem);
    cr_expect_str_eq(a.cert_file, pem);
    cr_expect_str_eq(a.key_file, pem);
    cr_expect_null(a.broker_password);
    cr_expect_null(a.password_source);
    out = written(&a);
    load_ok(&b, out, NULL, 0);
    expect_same(&a, &b);
    free(out);
    wr_config_free(&b);
    wr_config_free(&a);
    remove_temp(pem);
}

Test(config, password_file_is_read_without_its_newline)
{
    const char *pw = temp_file("password", "s3cret\n");
    char text[512], *out;
    wr_config a, b;

    snprintf(text, sizeof text, "[broker]\nuri = amqp://u@h/\npassword_file = %s\n" MINIMAL, pw);
    load_ok(&a, text, NULL, 0);
    cr_expect_str_eq(a.broker_password, "s3cret");
    cr_expect_str_eq(a.password_source, "password_file");
    cr_expect_eq(a.uri_password_line, 0);
    out = written(&a);
    cr_expect_null(strstr(out, "s3cret"), "what workers get holds no password:\n%s", out);
    load_ok(&b, out, NULL, 0);
    expect_same(&a, &b);
    free(out);
    wr_config_free(&b);
    wr_config_free(&a);
    remove_temp(pw);
}

Test(config, password_file_may_start_with_the_credentials_directory)
{
    const char *pw = temp_file("warren-password", "from-systemd\r\n");
    char dir[256], *slash;
    wr_config cfg;
    wr_diag d = {0};
    const char *text = "[broker]\nuri = amqp://u@h/\n"
                       "password_file = ${CREDENTIALS_DIRECTORY}/warren-password\n" MINIMAL;

    snprintf(dir, sizeof dir, "%s", pw);
    slash = strrchr(dir, '/');
    *slash = '\0';
    unsetenv("CREDENTIALS_DIRECTORY");
    cr_assert_eq(wr_config_load_string(&cfg, "x.conf", text, NULL, 0, &d), -1);
    cr_assert_eq(d.n, 1);
    cr_expect_str_eq(d.msgs[0],
                     "x.conf:3: password_file: \"${CREDENTIALS_DIRECTORY}/warren-password\" needs "
                     "$CREDENTIALS_DIRECTORY, which is not set (systemd sets it for a unit with "
                     "LoadCredential=)");
    wr_diag_free(&d);
    setenv("CREDENTIALS_DIRECTORY", dir, 1);
    load_ok(&cfg, text, NULL, 0);
    cr_expect_str_eq(cfg.broker_password, "from-systemd");
    wr_config_free(&cfg);
    unsetenv("CREDENTIALS_DIRECTORY");
    remove_temp(pw);
}

Test(config, password_from_the_environment_wins_over_the_uri)
{
    wr_config cfg;

    setenv("WARREN_BROKER_PASSWORD", "from-env\n", 1);
    load_ok(&cfg, "[broker]\nuri = amqp://u:in-uri@h/\n" MINIMAL, NULL, 0);
    cr_expect_str_eq(cfg.broker_password, "from-env");
    cr_expect_str_eq(cfg.password_source, "$WARREN_BROKER_PASSWORD");
    cr_expect_eq(cfg.uri_password_line, 2, "unused, the file's password is still there to read");
    wr_config_free(&cfg);
    unsetenv("WARREN_BROKER_PASSWORD");

    load_ok(&cfg, "[broker]\nuri = amqp://u:in-uri@h/\n" MINIMAL, NULL, 0);
    cr_expect_null(cfg.broker_password);
    cr_expect_str_eq(cfg.password_source, "uri");
    cr_expect_eq(cfg.uri_password_line, 2, "the line is what the readable-file warning names");
    wr_config_free(&cfg);
}

Test(config, a_password_in_an_override_is_never_echoed)
{
    const char *ov[] = {"broker.uri=http://u:topsecret@h/"};
    wr_config cfg;
    wr_diag d = {0};

    cr_assert_eq(wr_config_load_string(&cfg, "x.conf", MINIMAL, ov, 1, &d), -1);
    cr_assert_eq(d.n, 1);
    cr_expect_str_eq(d.msgs[0], "-o broker.uri=http://u:***@h/: uri: expected an amqp:// or "
                                "amqps:// URI, got \"http://u:***@h/\"");
    wr_diag_free(&d);
}

/* ---- supervision keys ------------------------------------------------- */

Test(config, dynamic_pool_needs_both_bounds_and_starts_at_min)
{
    wr_config cfg;

    expect_errors("[pool]\nmin_workers = 2\n[route rpc]\nqueue = q\n",
                  "warren.conf:2: min_workers: a dynamic pool needs both min_workers and "
                  "max_workers\n");
    expect_errors("[pool]\nmin_workers = 5\nmax_workers = 3\n[route rpc]\nqueue = q\n",
                  "warren.conf:3: max_workers: 3 is below min_workers (5)\n");
    expect_errors("[pool]\nworkers = 9\nmin_workers = 2\nmax_workers = 3\n[route rpc]\nqueue = q\n",
                  "warren.conf:2: workers: 9 is outside min_workers..max_workers (2..3)\n");
    load_ok(&cfg, "[pool]\nmin_workers = 2\nmax_workers = 6\n[route rpc]\nqueue = q\n", NULL, 0);
    cr_expect_eq(cfg.workers, 2);
    cr_expect_eq(cfg.max_workers, 6);
    wr_config_free(&cfg);
}

Test(config, route_request_timeout_defaults_to_the_pool)
{
    wr_config cfg;

    load_ok(&cfg,
            "[pool]\nrequest_timeout = 7\n[route a]\nqueue = a\n[route b]\nqueue = b\n"
            "request_timeout = 0\n",
            NULL, 0);
    cr_expect_eq(cfg.routes[0].request_timeout, 7);
    cr_expect_eq(cfg.routes[1].request_timeout, 0);
    wr_config_free(&cfg);
}

Test(config, control_socket_is_named_after_the_config_file)
{
    wr_config cfg;
    wr_diag diag = {0};

    cr_assert_eq(wr_config_load_string(&cfg, "/etc/warren/billing.conf", "[route rpc]\nqueue = q\n",
                                       NULL, 0, &diag),
                 0);
    cr_expect_str_eq(cfg.control_socket, "/run/warren/billing.sock");
    wr_config_free(&cfg);
}

Test(config, log_format_defaults_to_text_and_takes_json)
{
    wr_config cfg;

    load_ok(&cfg, MINIMAL, NULL, 0);
    cr_expect_eq(cfg.log_format, WR_LOG_TEXT);
    wr_config_free(&cfg);
    load_ok(&cfg, "[log]\nformat = json\n" MINIMAL, NULL, 0);
    cr_expect_eq(cfg.log_format, WR_LOG_JSON);
    wr_config_free(&cfg);
    expect_errors("[log]\nformat = xml\n" MINIMAL,
                  "warren.conf:2: format: expected one of text, json, got \"xml\"\n");
}

Test(config, metrics_listen_is_off_by_default)
{
    wr_config cfg;

    load_ok(&cfg, MINIMAL, NULL, 0);
    cr_expect_null(cfg.metrics_listen);
    wr_config_free(&cfg);
}

Test(config, metrics_listen_takes_ipv4_ipv6_and_localhost)
{
    static const char *const good[] = {"127.0.0.1:9464", "0.0.0.0:1", "[::1]:9464", "[::]:65535",
                                       "localhost:9464"};
    char text[256];

    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        wr_config cfg;
        struct sockaddr_storage ss;
        char err[160];

        snprintf(text, sizeof text, MINIMAL "[metrics]\nlisten = %s\n", good[i]);
        load_ok(&cfg, text, NULL, 0);
        cr_expect_str_eq(cfg.metrics_listen, good[i]);
        cr_expect_eq(wr_config_listen_addr(good[i], &ss, err, sizeof err), 0, "%s", err);
        cr_expect_eq(ss.ss_family, good[i][0] == '[' ? AF_INET6 : AF_INET);
        wr_config_free(&cfg);
    }
}

Test(config, metrics_listen_errors_name_file_line_and_the_problem)
{
    static const struct {
        const char *value, *error;
    } bad[] = {
        {"9464", "expected HOST:PORT (127.0.0.1:9464, [::1]:9464), got \"9464\""},
        {"127.0.0.1:0", "expected a port from 1 to 65535 after the colon, got \"0\""},
        {"127.0.0.1:65536", "expected a port from 1 to 65535 after the colon, got \"65536\""},
        {"127.0.0.1:http", "expected a port from 1 to 65535 after the colon, got \"http\""},
        {"example.com:9464", "\"example.com\" is not a numeric IPv4 address, [IPv6 address] or "
                             "localhost (names are not resolved)"},
        {"::1:9464", "\"::1\" is not a numeric IPv4 address, [IPv6 address] or localhost (names "
                     "are not resolved)"},
    };
    char text[256], want[512];

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, MINIMAL "[metrics]\nlisten = %s\n", bad[i].value);
        snprintf(want, sizeof want, "warren.conf:4: listen: %s\n", bad[i].error);
        expect_errors(text, want);
    }
}
