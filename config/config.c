/*
 * warren.conf: read once, checked whole, then handed around read-only.
 *
 * A load goes in five steps, and every problem found on the way is added
 * to the wr_diag instead of stopping at the first, so one --check shows
 * them all:
 *
 *   1. inih splits the text into KEY = VALUE pairs.  It reads through
 *      next_line(), our own reader, because this inih build does not pass
 *      line numbers to the handler (INI_HANDLER_LINENO is 0) and inih
 *      calls the reader once per line, so the reader always knows the
 *      line of the pair being handled.  The reader also deals with section
 *      headers and comments itself and hands inih only key lines, without
 *      indentation or inline comment.  That buys what inih's defaults do
 *      not give: an empty section or a bare "[route]" is seen at its own
 *      line; every bad line is reported, not only the first; a line too
 *      long for inih's 200-byte buffer is refused instead of cut; section
 *      names are not truncated at 49 characters; and an indented line is
 *      an ordinary line, not a continuation of the previous value.
 *   2. Each pair is looked up in keys[], the one table of fixed keys, and
 *      parsed by type into the wr_config (or into a wr_route for a
 *      "[route NAME]" key).  Where each key was given is remembered in a
 *      "given" slot, 0 meaning unset: it catches a key given twice and
 *      lets the second pass point at the line.  [plugin NAME] sections
 *      take any key.
 *   3. The -o overrides go through the same code and replace file values.
 *   4. Keys still unset take their default from keys[], written as text
 *      and parsed like input, so the table reads like warren.conf.
 *   5. validate() checks fields against each other.
 *
 * A location ("loc") is a file line when > 0, override number -loc - 1
 * when < 0, and "no line" when 0.  wr_route.line and wr_kv.line are 0 for
 * what came from an override.
 */
#include "config/config.h"

#include <amqp.h>
#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/nodes.h"
#include "common/secret.h"
#include "common/uri.h"
#include "common/xalloc.h"

/* inih's line buffer holds INI_MAX_LINE bytes with the newline and NUL.
 * wr_config_write() must produce lines that fit, so values are held to
 * the same limit wherever they come from. */
#define MAX_LINE (INI_MAX_LINE - 2)

/* Characters allowed besides ASCII letters and digits. */
#define ROUTE_NAME_CHARS "_.-"
#define PLUGIN_NAME_CHARS "_-"
#define PLUGIN_KEY_CHARS "_.-"

enum type { T_STRING, T_INT, T_SIZE, T_LIST, T_CHOICE };

struct load;

/* One accepted word of a T_CHOICE key and the int it is stored as. */
struct choice {
    const char *name;
    int value;
};

struct key {
    const char *section; /* "broker", "pool", "plugins"; "route" for each [route NAME] */
    const char *name;
    enum type type;
    size_t offset;                /* into wr_config, or into wr_route for "route" */
    size_t count_offset;          /* T_LIST: where the number of words goes */
    long min, max;                /* T_INT, T_SIZE */
    const char *def;              /* default as written in the file; NULL: none */
    const char *word_chars;       /* T_LIST: what a word may hold besides [A-Za-z0-9]; NULL: any */
    const struct choice *choices; /* T_CHOICE: the accepted words, ended by {NULL} */
    /* T_LIST keys that may be given several times (each adds words, an
     * override replaces them all), split at white space only and written
     * back one line per word; CHECK vets each word at its line. */
    bool repeat;
    void (*check)(struct load *l, const char *word, int loc);
};

#define C(field) offsetof(wr_config, field)
#define R(field) offsetof(wr_route, field)
#define KiB 1024L
#define MiB (1024L * KiB)
#define GiB (1024L * MiB)

/* Message formats a route may speak: adding one is one line here (and its
 * value in wr_format). */
static const struct choice formats[] = {
    {"jsonrpc", WR_FORMAT_JSONRPC},
    {"raw", WR_FORMAT_RAW},
    {"amqpbus", WR_FORMAT_AMQPBUS},
    {NULL, 0},
};

static const struct choice booleans[] = {
    {"yes", 1}, {"no", 0}, {"true", 1}, {"false", 0}, {"on", 1}, {"off", 0}, {NULL, 0},
};

static const struct choice exchange_types[] = {
    {"no", WR_EXCHANGE_NONE},
    {"direct", WR_EXCHANGE_DIRECT},
    {"topic", WR_EXCHANGE_TOPIC},
    {"fanout", WR_EXCHANGE_FANOUT},
    {NULL, 0},
};

static const struct choice queue_types[] = {
    {"classic", WR_QUEUE_CLASSIC},
    {"quorum", WR_QUEUE_QUORUM},
    {NULL, 0},
};

static const struct choice log_levels[] = {
    {"error", WR_LOG_ERROR},
    {"warn", WR_LOG_WARN},
    {"info", WR_LOG_INFO},
    {"debug", WR_LOG_DEBUG},
    {NULL, 0},
};

static const struct choice log_formats[] = {
    {"text", WR_LOG_TEXT},
    {"json", WR_LOG_JSON},
    {NULL, 0},
};

/* Where each fixed key sits in keys[].  validate() reads given[] by these
 * names instead of looking keys up by text, so a key it needs cannot be
 * missing when it indexes with it, and renaming one is a compile error. */
enum key_id {
    K_BROKER_URI,
    K_BROKER_HEARTBEAT,
    K_BROKER_CONNECT_TIMEOUT,
    K_BROKER_CA_FILE,
    K_BROKER_CERT_FILE,
    K_BROKER_KEY_FILE,
    K_BROKER_PASSWORD_FILE,
    K_POOL_WORKERS,
    K_POOL_PREFETCH,
    K_POOL_MAX_MESSAGE_SIZE,
    K_POOL_SHUTDOWN_TIMEOUT,
    K_POOL_MAX_ATTEMPTS,
    K_POOL_BUILTIN_METHODS,
    K_POOL_MAX_BATCH,
    K_POOL_REQUEST_TIMEOUT,
    K_POOL_REPLY_RETRY,
    K_POOL_PUBLISHER_CONFIRMS,
    K_POOL_MAX_REQUESTS,
    K_POOL_MAX_RSS,
    K_POOL_MIN_WORKERS,
    K_POOL_MAX_WORKERS,
    K_POOL_IDLE_TIMEOUT,
    K_POOL_STARTUP_TIMEOUT,
    K_POOL_CONTROL_SOCKET,
    K_PLUGINS_DIR,
    K_PLUGINS_LOAD,
    K_LOG_LEVEL,
    K_LOG_FORMAT,
    K_METRICS_LISTEN,
    K_ROUTE_QUEUE,
    K_ROUTE_FORMAT,
    K_ROUTE_METHOD,
    K_ROUTE_BROADCAST,
    K_ROUTE_QUEUE_TYPE,
    K_ROUTE_DEAD_LETTER,
    K_ROUTE_EXCHANGE,
    K_ROUTE_EXCHANGE_DECLARE,
    K_ROUTE_BINDINGS,
    K_ROUTE_REPLY_EXCHANGE,
    K_ROUTE_REPLY_PREFIX,
    K_ROUTE_REQUEST_TIMEOUT,
    NKEYS
};

/* The fixed keys, one per key_id (a forgotten one would be all zero, with
 * a NULL section that crashes the first load of any test).  Keep each
 * section's keys together: wr_config_write() writes them in this order,
 * one header per run. */
static void check_uri(struct load *l, const char *uri, int loc);

static const struct key keys[NKEYS] = {
    /* section, key, type, offset, count, min, max, default, word chars, choices, repeat,
     * check (every field written out: clang -Wextra warns of any left to zero) */
    [K_BROKER_URI] = {"broker", "uri", T_LIST, C(broker_uris), C(nbroker_uris), 0, 0,
                      "amqp://guest:guest@127.0.0.1:5672/", NULL, NULL, true, check_uri},
    [K_BROKER_HEARTBEAT] = {"broker", "heartbeat", T_INT, C(heartbeat), 0, 0, 3600, "30", NULL,
                            NULL, false, NULL},
    [K_BROKER_CONNECT_TIMEOUT] = {"broker", "connect_timeout", T_INT, C(connect_timeout), 0, 1, 600,
                                  "10", NULL, NULL, false, NULL},
    [K_BROKER_CA_FILE] = {"broker", "ca_file", T_STRING, C(ca_file), 0, 0, 0, NULL, NULL, NULL,
                          false, NULL},
    [K_BROKER_CERT_FILE] = {"broker", "cert_file", T_STRING, C(cert_file), 0, 0, 0, NULL, NULL,
                            NULL, false, NULL},
    [K_BROKER_KEY_FILE] = {"broker", "key_file", T_STRING, C(key_file), 0, 0, 0, NULL, NULL, NULL,
                           false, NULL},
    [K_BROKER_PASSWORD_FILE] = {"broker", "password_file", T_STRING, C(password_file), 0, 0, 0,
                                NULL, NULL, NULL, false, NULL},
    [K_POOL_WORKERS] = {"pool", "workers", T_INT, C(workers), 0, 1, 1024, "4", NULL, NULL, false,
                        NULL},
    [K_POOL_PREFETCH] = {"pool", "prefetch", T_INT, C(prefetch), 0, 1, 65535, "1", NULL, NULL,
                         false, NULL},
    [K_POOL_MAX_MESSAGE_SIZE] = {"pool", "max_message_size", T_SIZE, C(max_message_size), 0, KiB,
                                 128 * MiB, "1M", NULL, NULL, false, NULL},
    [K_POOL_SHUTDOWN_TIMEOUT] = {"pool", "shutdown_timeout", T_INT, C(shutdown_timeout), 0, 1, 3600,
                                 "30", NULL, NULL, false, NULL},
    [K_POOL_MAX_ATTEMPTS] = {"pool", "max_attempts", T_INT, C(max_attempts), 0, 1, 100, "3", NULL,
                             NULL, false, NULL},
    [K_POOL_BUILTIN_METHODS] = {"pool", "builtin_methods", T_CHOICE, C(builtin_methods), 0, 0, 0,
                                "yes", NULL, booleans, false, NULL},
    [K_POOL_MAX_BATCH] = {"pool", "max_batch", T_INT, C(max_batch), 0, 1, 1000000, "1000", NULL,
                          NULL, false, NULL},
    [K_POOL_REQUEST_TIMEOUT] = {"pool", "request_timeout", T_INT, C(request_timeout), 0, 0, 86400,
                                "30", NULL, NULL, false, NULL},
    [K_POOL_REPLY_RETRY] = {"pool", "reply_retry", T_INT, C(reply_retry), 0, 0, 86400, "30", NULL,
                            NULL, false, NULL},
    [K_POOL_PUBLISHER_CONFIRMS] = {"pool", "publisher_confirms", T_CHOICE, C(publisher_confirms), 0,
                                   0, 0, "yes", NULL, booleans, false, NULL},
    [K_POOL_MAX_REQUESTS] = {"pool", "max_requests", T_INT, C(max_requests), 0, 0, 1000000000, "0",
                             NULL, NULL, false, NULL},
    [K_POOL_MAX_RSS] = {"pool", "max_rss", T_SIZE, C(max_rss), 0, 0, 1024 * GiB, "0", NULL, NULL,
                        false, NULL},
    [K_POOL_MIN_WORKERS] = {"pool", "min_workers", T_INT, C(min_workers), 0, 0, 1024, NULL, NULL,
                            NULL, false, NULL},
    [K_POOL_MAX_WORKERS] = {"pool", "max_workers", T_INT, C(max_workers), 0, 0, 1024, NULL, NULL,
                            NULL, false, NULL},
    [K_POOL_IDLE_TIMEOUT] = {"pool", "idle_timeout", T_INT, C(idle_timeout), 0, 1, 86400, "10",
                             NULL, NULL, false, NULL},
    [K_POOL_STARTUP_TIMEOUT] = {"pool", "startup_timeout", T_INT, C(startup_timeout), 0, 0, 86400,
                                "60", NULL, NULL, false, NULL},
    [K_POOL_CONTROL_SOCKET] = {"pool", "control_socket", T_STRING, C(control_socket), 0, 0, 0, NULL,
                               NULL, NULL, false, NULL},
    [K_PLUGINS_DIR] = {"plugins", "dir", T_STRING, C(plugin_dir), 0, 0, 0, NULL, NULL, NULL, false,
                       NULL},
    [K_PLUGINS_LOAD] = {"plugins", "load", T_LIST, C(plugins), C(nplugins), 0, 0, NULL,
                        PLUGIN_NAME_CHARS, NULL, false, NULL},
    [K_LOG_LEVEL] = {"log", "level", T_CHOICE, C(log_level), 0, 0, 0, "info", NULL, log_levels,
                     false, NULL},
    [K_LOG_FORMAT] = {"log", "format", T_CHOICE, C(log_format), 0, 0, 0, "text", NULL, log_formats,
                      false, NULL},
    [K_METRICS_LISTEN] = {"metrics", "listen", T_STRING, C(metrics_listen), 0, 0, 0, NULL, NULL,
                          NULL, false, NULL},
    [K_ROUTE_QUEUE] = {"route", "queue", T_STRING, R(queue), 0, 0, 0, NULL, NULL, NULL, false,
                       NULL},
    [K_ROUTE_FORMAT] = {"route", "format", T_CHOICE, R(format), 0, 0, 0, "jsonrpc", NULL, formats,
                        false, NULL},
    [K_ROUTE_METHOD] = {"route", "method", T_STRING, R(method), 0, 0, 0, NULL, NULL, NULL, false,
                        NULL},
    [K_ROUTE_BROADCAST] = {"route", "broadcast", T_CHOICE, R(broadcast), 0, 0, 0, "no", NULL,
                           booleans, false, NULL},
    [K_ROUTE_QUEUE_TYPE] = {"route", "queue_type", T_CHOICE, R(queue_type), 0, 0, 0, "quorum", NULL,
                            queue_types, false, NULL},
    [K_ROUTE_DEAD_LETTER] = {"route", "dead_letter", T_CHOICE, R(dead_letter), 0, 0, 0, "yes", NULL,
                             booleans, false, NULL},
    [K_ROUTE_EXCHANGE] = {"route", "exchange", T_STRING, R(exchange), 0, 0, 0, NULL, NULL, NULL,
                          false, NULL},
    [K_ROUTE_EXCHANGE_DECLARE] = {"route", "exchange_declare", T_CHOICE, R(exchange_declare), 0, 0,
                                  0, "no", NULL, exchange_types, false, NULL},
    [K_ROUTE_BINDINGS] = {"route", "bindings", T_LIST, R(bindings), R(nbindings), 0, 0, NULL, NULL,
                          NULL, false, NULL},
    [K_ROUTE_REPLY_EXCHANGE] = {"route", "reply_exchange", T_STRING, R(reply_exchange), 0, 0, 0,
                                NULL, NULL, NULL, false, NULL},
    [K_ROUTE_REPLY_PREFIX] = {"route", "reply_prefix", T_STRING, R(reply_prefix), 0, 0, 0, NULL,
                              NULL, NULL, false, NULL},
    [K_ROUTE_REQUEST_TIMEOUT] = {"route", "request_timeout", T_INT, R(request_timeout), 0, 0, 86400,
                                 NULL, NULL, NULL, false, NULL},
};

static const char *const fixed_sections[] = {"broker", "pool", "plugins", "log", "metrics"};
#define NFIXED (sizeof fixed_sections / sizeof fixed_sections[0])

struct route_given {
    int header;       /* loc of "[route NAME]" */
    int given[NKEYS]; /* loc of each route key; 0: unset */
};

/* The state of one load.  routes[] runs parallel to cfg->routes. */
struct load {
    wr_config *cfg;
    wr_diag *diag;
    const char *const *overrides;

    char *pos, *end; /* the reader's place in the (writable) text */
    int lineno;      /* line last handed to inih */

    /* Where keys go now.  IN_SKIP: a section already reported as bad. */
    enum { IN_NONE, IN_SKIP, IN_FIXED, IN_ROUTE, IN_PLUGIN } in;
    size_t in_index; /* into fixed_sections, cfg->routes or cfg->plugin_sections */

    int given[NKEYS];           /* fixed keys outside routes */
    int fixed_header[NFIXED];   /* loc of each fixed section header */
    struct route_given *routes; /* parallel to cfg->routes */
    bool saw_route_header;      /* even a bad one: no "no route" on top */
};

static void problem(struct load *l, int loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void problem(struct load *l, int loc, const char *fmt, ...)
{
    char *msg, *shown;
    va_list ap;

    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        abort();
    va_end(ap);
    if (loc > 0)
        wr_diag_add(l->diag, "%s:%d: %s", l->cfg->path, loc, msg);
    else if (loc < 0) {
        /* An override is shown as given, but for a URI's password. */
        size_t len = strlen(l->overrides[-loc - 1]) + 4;

        shown = wr_xcalloc(1, len);
        wr_diag_add(l->diag, "-o %s: %s", wr_secret_mask_uri(l->overrides[-loc - 1], shown, len),
                    msg);
        free(shown);
    } else
        wr_diag_add(l->diag, "%s: %s", l->cfg->path, msg);
    free(msg);
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* Strip leading and trailing white space in place. */
static char *trim(char *s)
{
    char *e;

    while (is_space(*s))
        s++;
    e = s + strlen(s);
    while (e > s && is_space(e[-1]))
        *--e = '\0';
    return s;
}

/* Non-empty and only ASCII letters, digits and EXTRA.  (isalnum() would
 * follow the locale.) */
static bool is_word(const char *s, const char *extra)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr(extra, *s)))
            return false;
    return true;
}

/* Where inih would start an inline comment: a ';' at the start or after
 * white space.  A value holding one cannot be written back. */
static char *inline_comment(char *s)
{
    for (char *p = s; *p; p++)
        if (*p == ';' && (p == s || is_space(p[-1])))
            return p;
    return NULL;
}

static int find_key(const char *section, const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (!strcmp(keys[i].section, section) && !strcmp(keys[i].name, name))
            return (int)i;
    return -1;
}

static bool is_route_key(const struct key *k)
{
    return !strcmp(k->section, "route");
}

static void free_words(char **words, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(words[i]);
    free(words);
}

static void free_field(const struct key *k, char *base)
{
    if (k->type == T_STRING) {
        char **s = (char **)(base + k->offset);

        free(*s);
        *s = NULL;
    } else if (k->type == T_LIST) {
        char ***words = (char ***)(base + k->offset);
        size_t *n = (size_t *)(base + k->count_offset);

        free_words(*words, *n);
        *words = NULL;
        *n = 0;
    }
}

/* Whole-string strtol; false on junk or overflow. */
static bool parse_long(const char *s, long *out)
{
    char *end;

    errno = 0;
    *out = strtol(s, &end, 10);
    return *s && !*end && errno == 0;
}

/* "1048576", "1024k", "1M", "1G" (suffixes in either case). */
static bool parse_size(const char *s, long *out)
{
    char *end;
    long n, unit = 1;

    errno = 0;
    n = strtol(s, &end, 10);
    if (!*s || end == s || errno)
        return false;
    if (*end == 'k' || *end == 'K')
        unit = KiB;
    else if (*end == 'm' || *end == 'M')
        unit = MiB;
    else if (*end == 'g' || *end == 'G')
        unit = GiB;
    if (unit > 1)
        end++;
    if (*end || n > LONG_MAX / unit || n < LONG_MIN / unit)
        return false;
    *out = n * unit;
    return true;
}

/* A size as a person writes it: "128M" rather than "134217728". */
static const char *size_text(long n, char *buf, size_t len)
{
    if (n && n % GiB == 0)
        snprintf(buf, len, "%ldG", n / GiB);
    else if (n && n % MiB == 0)
        snprintf(buf, len, "%ldM", n / MiB);
    else if (n && n % KiB == 0)
        snprintf(buf, len, "%ldK", n / KiB);
    else
        snprintf(buf, len, "%ld", n);
    return buf;
}

/* Words separated by spaces and/or commas (a repeat key: spaces only);
 * each must be a word_chars word (if the key says so) and appear once.
 * Replaces the list on success, or with APPEND adds to it. */
static void set_list(struct load *l, const struct key *k, char *base, const char *value, int loc,
                     bool append)
{
    char *copy = wr_xstrdup(value), *save = NULL, **words = NULL;
    const char *seps = k->repeat ? " \t" : " \t,";
    size_t n = 0;
    bool ok = true;

    if (k->repeat && !value[strspn(value, seps)]) { /* a list that must not be empty */
        problem(l, loc, "%s: expected a non-empty value", k->name);
        free(copy);
        return;
    }
    if (append) {
        char *const *old = *(char **const *)(base + k->offset);

        n = *(size_t *)(base + k->count_offset);
        words = wr_xrealloc(NULL, (n + 1) * sizeof *words);
        for (size_t i = 0; i < n; i++)
            words[i] = wr_xstrdup(old[i]);
    }
    for (char *w = strtok_r(copy, seps, &save); w; w = strtok_r(NULL, seps, &save)) {
        bool twice = false;
        char node[256];

        for (size_t i = 0; i < n; i++)
            twice |= !strcmp(words[i], w);
        if (k->word_chars && !is_word(w, k->word_chars)) {
            problem(l, loc, "%s: \"%s\" must match [A-Za-z0-9%s]+", k->name, w, k->word_chars);
            ok = false;
        } else if (twice) {
            /* A URI may hold a password: name its node only. */
            problem(l, loc, "%s: \"%s\" listed twice", k->name,
                    k->check == check_uri ? wr_uri_node(w, node, sizeof node) : w);
            ok = false;
        } else {
            if (k->check)
                k->check(l, w, loc);
            words = wr_xrealloc(words, (n + 1) * sizeof *words);
            words[n++] = wr_xstrdup(w);
        }
    }
    free(copy);
    if (!ok) {
        free_words(words, n);
        return;
    }
    free_field(k, base);
    *(char ***)(base + k->offset) = words;
    *(size_t *)(base + k->count_offset) = n;
}

static void set_choice(struct load *l, const struct key *k, char *base, const char *value, int loc)
{
    char accepted[256] = "";

    for (const struct choice *c = k->choices; c->name; c++) {
        if (!strcmp(c->name, value)) {
            *(int *)(base + k->offset) = c->value;
            return;
        }
        snprintf(accepted + strlen(accepted), sizeof accepted - strlen(accepted), "%s%s",
                 c == k->choices ? "" : ", ", c->name);
    }
    problem(l, loc, "%s: expected one of %s, got \"%s\"", k->name, accepted, value);
}

/* Parse VALUE for key K into the struct at BASE, replacing what was there;
 * on a bad value report it and leave the field alone. */
static void set_value(struct load *l, const struct key *k, char *base, const char *value, int loc)
{
    char lo[32], hi[32];
    long n;

    switch (k->type) {
    case T_STRING:
        if (!*value) {
            problem(l, loc, "%s: expected a non-empty value", k->name);
            return;
        }
        free_field(k, base);
        *(char **)(base + k->offset) = wr_xstrdup(value);
        return;
    case T_INT:
        if (!parse_long(value, &n) || n < k->min || n > k->max) {
            problem(l, loc, "%s: expected a number from %ld to %ld, got \"%s\"", k->name, k->min,
                    k->max, value);
            return;
        }
        *(int *)(base + k->offset) = (int)n;
        return;
    case T_SIZE:
        if (!parse_size(value, &n) || n < k->min || n > k->max) {
            problem(l, loc,
                    "%s: expected a size from %s to %s (bytes, or with a K, M or G suffix), "
                    "got \"%s\"",
                    k->name, size_text(k->min, lo, sizeof lo), size_text(k->max, hi, sizeof hi),
                    value);
            return;
        }
        *(long *)(base + k->offset) = n;
        return;
    case T_LIST:
        set_list(l, k, base, value, loc, false);
        return;
    case T_CHOICE:
        set_choice(l, k, base, value, loc);
        return;
    }
}

static void set_plugin_key(struct load *l, const char *name, const char *value, int loc,
                           bool replace)
{
    wr_plugin_section *p = &l->cfg->plugin_sections[l->in_index];
    wr_kv *kv;

    if (!is_word(name, PLUGIN_KEY_CHARS)) {
        problem(l, loc, "%s: a key in [plugin %s] must match [A-Za-z0-9%s]+", name, p->name,
                PLUGIN_KEY_CHARS);
        return;
    }
    for (size_t i = 0; i < p->nitems; i++) {
        kv = &p->items[i];
        if (strcmp(kv->key, name))
            continue;
        if (!replace) {
            problem(l, loc, "%s: given twice in [plugin %s] (first at line %d)", name, p->name,
                    kv->line);
        } else {
            free(kv->value);
            kv->value = wr_xstrdup(value);
            kv->line = loc > 0 ? loc : 0;
        }
        return;
    }
    p->items = wr_xrealloc(p->items, (p->nitems + 1) * sizeof *p->items);
    kv = &p->items[p->nitems++];
    kv->key = wr_xstrdup(name);
    kv->value = wr_xstrdup(value);
    kv->line = loc > 0 ? loc : 0;
}

/* NAME = VALUE in the current section, at LOC.  REPLACE (overrides): a
 * value already given is replaced instead of reported. */
static void set_key(struct load *l, const char *name, const char *value, int loc, bool replace)
{
    const char *section;
    char *base;
    int *given, i;

    if (l->in == IN_NONE) {
        problem(l, loc, "%s: key outside any section", name);
        return;
    }
    if (l->in == IN_SKIP)
        return;
    if (strlen(name) + strlen(value) + 3 > MAX_LINE) {
        problem(l, loc, "%s: line too long (\"%s = VALUE\" must fit in %d characters)", name, name,
                MAX_LINE);
        return;
    }
    if (l->in == IN_PLUGIN) {
        set_plugin_key(l, name, value, loc, replace);
        return;
    }

    section = l->in == IN_ROUTE ? "route" : fixed_sections[l->in_index];
    i = find_key(section, name);
    if (i < 0) {
        if (l->in == IN_ROUTE)
            problem(l, loc, "%s: unknown key in [route %s]", name,
                    l->cfg->routes[l->in_index].name);
        else
            problem(l, loc, "%s: unknown key in [%s]", name, section);
        return;
    }
    if (l->in == IN_ROUTE) {
        base = (char *)&l->cfg->routes[l->in_index];
        given = &l->routes[l->in_index].given[i];
    } else {
        base = (char *)l->cfg;
        given = &l->given[i];
    }
    if (*given && !replace && keys[i].repeat) {
        set_list(l, &keys[i], base, value, loc, true); /* another uri line: one more node */
        return;
    }
    if (*given && !replace) {
        problem(l, loc, "%s: given twice (first at line %d)", name, *given);
        return;
    }
    *given = loc; /* even if the value is bad: it was given, so no "required" on top */
    set_value(l, &keys[i], base, value, loc);
}

/* "[route NAME]" or "[plugin NAME]": find or add the section named ARG.
 * EXISTING_OK (overrides): a section already there is reused. */
static void open_named(struct load *l, bool route, const char *arg, int loc, bool existing_ok)
{
    const char *kind = route ? "route" : "plugin";
    const char *chars = route ? ROUTE_NAME_CHARS : PLUGIN_NAME_CHARS;
    wr_config *cfg = l->cfg;
    size_t n = route ? cfg->nroutes : cfg->nplugin_sections;

    if (!*arg) {
        problem(l, loc, "[%s] needs a name: [%s NAME]", kind, kind);
        return;
    }
    if (!is_word(arg, chars)) {
        problem(l, loc, "[%s %s]: NAME must match [A-Za-z0-9%s]+", kind, arg, chars);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const char *name = route ? cfg->routes[i].name : cfg->plugin_sections[i].name;
        int first = route ? l->routes[i].header : cfg->plugin_sections[i].line;

        if (strcmp(name, arg))
            continue;
        if (!existing_ok) {
            problem(l, loc, "[%s %s] given twice (first at line %d)", kind, arg, first);
            return;
        }
        l->in = route ? IN_ROUTE : IN_PLUGIN;
        l->in_index = i;
        return;
    }
    if (route) {
        cfg->routes = wr_xrealloc(cfg->routes, (n + 1) * sizeof *cfg->routes);
        l->routes = wr_xrealloc(l->routes, (n + 1) * sizeof *l->routes);
        memset(&cfg->routes[n], 0, sizeof cfg->routes[n]);
        memset(&l->routes[n], 0, sizeof l->routes[n]);
        cfg->routes[n].name = wr_xstrdup(arg);
        cfg->routes[n].line = loc > 0 ? loc : 0;
        l->routes[n].header = loc;
        cfg->nroutes++;
        l->in = IN_ROUTE;
    } else {
        cfg->plugin_sections =
            wr_xrealloc(cfg->plugin_sections, (n + 1) * sizeof *cfg->plugin_sections);
        memset(&cfg->plugin_sections[n], 0, sizeof cfg->plugin_sections[n]);
        cfg->plugin_sections[n].name = wr_xstrdup(arg);
        cfg->plugin_sections[n].line = loc > 0 ? loc : 0;
        cfg->nplugin_sections++;
        l->in = IN_PLUGIN;
    }
    l->in_index = n;
}

/* Make HEADER ("pool", "route rpc", ...) the current section.  A bad one
 * is reported once and its keys are skipped. */
static void open_section(struct load *l, char *header, int loc, bool existing_ok)
{
    size_t wlen = strcspn(header, " \t");
    char *arg = trim(header + wlen); /* HEADER is already trimmed: it stays whole */

    l->in = IN_SKIP;
    if (strlen(header) + 2 > MAX_LINE) {
        problem(l, loc, "section name too long (\"[%s]\" must fit in %d characters)", header,
                MAX_LINE);
        return;
    }
    if (wlen == 5 && !strncmp(header, "route", 5)) {
        l->saw_route_header = true;
        open_named(l, true, arg, loc, existing_ok);
        return;
    }
    if (wlen == 6 && !strncmp(header, "plugin", 6)) {
        open_named(l, false, arg, loc, existing_ok);
        return;
    }
    for (size_t i = 0; i < NFIXED && !*arg; i++) {
        if (strcmp(header, fixed_sections[i]))
            continue;
        if (l->fixed_header[i] && !existing_ok) {
            problem(l, loc, "[%s] given twice (first at line %d)", header, l->fixed_header[i]);
            return;
        }
        if (!l->fixed_header[i])
            l->fixed_header[i] = loc;
        l->in = IN_FIXED;
        l->in_index = i;
        return;
    }
    problem(l, loc, "unknown section [%s]", header);
}

/*
 * inih's reader (an fgets lookalike).  Numbers each line, handles blank
 * lines, comments and section headers itself, reports lines inih would
 * reject or cut, and hands inih only "KEY = VALUE" lines, unindented and
 * without inline comment.  Every other line becomes an empty line, so
 * inih's line count stays ours.
 */
static char *next_line(char *buf, int size, void *stream)
{
    struct load *l = stream;
    char *line, *s, *nl, *end;

    if (l->pos >= l->end)
        return NULL;
    line = l->pos;
    nl = memchr(line, '\n', (size_t)(l->end - line));
    if (nl) {
        *nl = '\0';
        l->pos = nl + 1;
    } else {
        l->pos = l->end;
    }
    l->lineno++;
    strcpy(buf, "\n");

    if (l->lineno == 1 && !strncmp(line, "\xEF\xBB\xBF", 3))
        line += 3; /* a UTF-8 byte order mark, as inih allows */
    s = trim(line);
    if (*s == ';' || *s == '#')
        return buf;
    if ((end = inline_comment(s)))
        *end = '\0';
    s = trim(s);
    if (!*s)
        return buf;
    if ((int)strlen(s) > size - 2) {
        problem(l, l->lineno, "line too long (more than %d characters)", size - 2);
        return buf;
    }
    if (*s == '[') {
        end = strchr(s, ']');
        if (!end) {
            problem(l, l->lineno, "syntax error");
            l->in = IN_SKIP; /* its keys are not the previous section's */
            return buf;
        }
        if (end[1]) {
            problem(l, l->lineno, "unexpected text after ']'");
            l->in = IN_SKIP;
            return buf;
        }
        *end = '\0';
        open_section(l, trim(s + 1), l->lineno, false);
        return buf;
    }
    if (!s[strcspn(s, "=:")] || strchr("=:", *s)) { /* no separator, or no key */
        problem(l, l->lineno, "syntax error");
        return buf;
    }
    snprintf(buf, (size_t)size, "%s\n", s);
    return buf;
}

static int on_pair(void *user, const char *section, const char *name, const char *value)
{
    struct load *l = user;

    (void)section; /* always "": next_line() keeps section headers to itself */
    /* next_line() cut any inline comment, but a ';' right after the '='
     * is left: written back as "KEY = ;..." it would read as one. */
    if (value[0] == ';') {
        problem(l, l->lineno, "%s: a value cannot start with ';' (it would read back as a comment)",
                name);
        return 1;
    }
    set_key(l, name, value, l->lineno, false);
    return 1;
}

/* "-o SECTION.KEY=VALUE": the key follows the last dot; in the section the
 * first dot stands for the space of "[route rpc]". */
static void apply_override(struct load *l, size_t i)
{
    const char *eq = strchr(l->overrides[i], '=');
    int loc = -(int)i - 1;
    char *copy, *dot, *section, *value, *p;
    const char *key;

    if (!eq) {
        problem(l, loc, "expected SECTION.KEY=VALUE");
        return;
    }
    copy = wr_xstrdup(l->overrides[i]);
    copy[eq - l->overrides[i]] = '\0';
    value = trim(copy + (eq - l->overrides[i]) + 1);
    dot = strrchr(copy, '.');
    if (dot)
        *dot = '\0';
    section = trim(copy);
    key = dot ? trim(dot + 1) : "";
    if (!*section || !*key) {
        problem(l, loc, "expected SECTION.KEY=VALUE");
    } else if (strchr(value, '\n') || inline_comment(value)) {
        problem(l, loc, "%s: a value cannot hold a newline, nor ';' at its start or after a space",
                key);
    } else {
        if ((p = strchr(section, '.')))
            *p = ' ';
        open_section(l, section, loc, true);
        set_key(l, key, value, loc, true);
    }
    free(copy);
}

static void fill_defaults(struct load *l)
{
    wr_config *cfg = l->cfg;

    for (size_t i = 0; i < NKEYS; i++) {
        if (!keys[i].def)
            continue;
        if (!is_route_key(&keys[i])) {
            if (!l->given[i])
                set_value(l, &keys[i], (char *)cfg, keys[i].def, 0);
            continue;
        }
        for (size_t r = 0; r < cfg->nroutes; r++)
            if (!l->routes[r].given[i])
                set_value(l, &keys[i], (char *)&cfg->routes[r], keys[i].def, 0);
    }
}

/* One [broker] uri, at its line.  A bad one is refused here, where
 * --check and the systemd unit's ExecStartPre see it, instead of workers
 * retrying it forever. */
static void check_uri(struct load *l, const char *uri, int loc)
{
    struct amqp_connection_info info;
    char shown[MAX_LINE + 8], *copy;

    if (strncmp(uri, "amqp://", 7) && strncmp(uri, "amqps://", 8)) {
        problem(l, loc, "uri: expected an amqp:// or amqps:// URI, got \"%s\"",
                wr_secret_mask_uri(uri, shown, sizeof shown));
        return;
    }
    copy = wr_xstrdup(uri);            /* wr_uri_parse writes into it */
    if (wr_uri_parse(copy, &info) < 0) /* not echoed: it may hold a password */
        problem(l, loc,
                "uri: not a valid AMQP URI (expected amqp://USER:PASSWORD@HOST:PORT/VHOST)");
    free(copy);
}

/* Is any [broker] uri amqps://?  (The TLS keys are for such URIs.) */
static bool uses_tls(const wr_config *cfg)
{
    for (size_t i = 0; i < cfg->nbroker_uris; i++)
        if (!strncmp(cfg->broker_uris[i], "amqps://", 8))
            return true;
    return false;
}

/* Does any [broker] uri hold a password? */
static bool uri_has_password(const wr_config *cfg)
{
    for (size_t i = 0; i < cfg->nbroker_uris; i++)
        if (wr_secret_uri_has_password(cfg->broker_uris[i]))
            return true;
    return false;
}

/* A TLS file key K, if given, names a readable file, and only with
 * amqps://.  Read here, where --check and ExecStartPre see it, not first
 * by every worker at every connect. */
static void check_tls_file(struct load *l, int k, const char *path)
{
    struct stat st;
    FILE *f;

    if (!path)
        return;
    if (!uses_tls(l->cfg)) {
        problem(l, l->given[k], "%s: only used with an amqps:// uri", keys[k].name);
        return;
    }
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        problem(l, l->given[k], "%s: \"%s\" is a directory", keys[k].name, path);
        return;
    }
    f = fopen(path, "r");
    if (!f) {
        problem(l, l->given[k], "%s: cannot read \"%s\": %s", keys[k].name, path, strerror(errno));
        return;
    }
    fclose(f);
}

/* password_file with a leading ${CREDENTIALS_DIRECTORY} (systemd's
 * LoadCredential=) taken from the environment.  A new string, or NULL
 * when the variable is unset. */
static char *credentials_path(const char *path)
{
    static const char var[] = "${CREDENTIALS_DIRECTORY}";
    const char *dir;
    char *out;

    if (strncmp(path, var, sizeof var - 1))
        return wr_xstrdup(path);
    dir = getenv("CREDENTIALS_DIRECTORY");
    if (!dir || !*dir)
        return NULL;
    if (asprintf(&out, "%s%s", dir, path + sizeof var - 1) < 0)
        abort();
    return out;
}

/* Where the password comes from: password_file, else the environment,
 * else the URI.  The file is read here (by the supervisor, and again by
 * each worker from the same config: no password travels to them). */
static void resolve_password(struct load *l)
{
    wr_config *cfg = l->cfg;
    int in_uri = uri_has_password(cfg);
    int loc = l->given[K_BROKER_PASSWORD_FILE];
    const char *env = getenv(WR_SECRET_PASSWORD_ENV);
    char err[512], *path;

    if (cfg->password_file) {
        if (in_uri) {
            problem(l, loc,
                    "password_file: the uri holds a password too; keep one (remove it from the "
                    "uri: amqp://USER@HOST:PORT/VHOST)");
            return;
        }
        path = credentials_path(cfg->password_file);
        if (!path) {
            problem(l, loc,
                    "password_file: \"%s\" needs $CREDENTIALS_DIRECTORY, which is not set "
                    "(systemd sets it for a unit with LoadCredential=)",
                    cfg->password_file);
            return;
        }
        cfg->broker_password = wr_secret_read_file(path, err, sizeof err);
        if (!cfg->broker_password)
            problem(l, loc, "password_file: %s", err);
        else
            cfg->password_source = "password_file";
        free(path);
    } else if (env && *env) {
        cfg->broker_password = wr_xstrdup(env);
        cfg->broker_password[strcspn(cfg->broker_password, "\r\n")] = '\0';
        cfg->password_source = "$" WR_SECRET_PASSWORD_ENV;
    } else if (in_uri) {
        cfg->password_source = "uri";
    }
    /* Used or not, a password in the file is one others may read. */
    if (in_uri)
        cfg->uri_password_line = l->given[K_BROKER_URI] > 0 ? l->given[K_BROKER_URI] : 0;
}

/* [broker]: the TLS files, the password (each URI's scheme and form
 * were checked at its line, by check_uri). */
static void validate_broker(struct load *l)
{
    wr_config *cfg = l->cfg;

    check_tls_file(l, K_BROKER_CA_FILE, cfg->ca_file);
    check_tls_file(l, K_BROKER_CERT_FILE, cfg->cert_file);
    check_tls_file(l, K_BROKER_KEY_FILE, cfg->key_file);
    if (uses_tls(cfg) && cfg->cert_file && !cfg->key_file)
        problem(l, l->given[K_BROKER_CERT_FILE], "cert_file: needs key_file (its private key)");
    if (uses_tls(cfg) && cfg->key_file && !cfg->cert_file)
        problem(l, l->given[K_BROKER_KEY_FILE], "key_file: needs cert_file (its certificate)");
    resolve_password(l);
}

/* [pool]: a dynamic pool (min_workers and max_workers) starts with
 * `workers` when given, else with min_workers; the control socket's
 * default is named after the config file. */
static void validate_pool(struct load *l)
{
    wr_config *cfg = l->cfg;
    int min = l->given[K_POOL_MIN_WORKERS], max = l->given[K_POOL_MAX_WORKERS];

    /* 0 reads as absent: wr_config_write() writes a fixed pool that way. */
    if (!cfg->min_workers != !cfg->max_workers) {
        problem(l, cfg->min_workers ? min : max,
                "%s: a dynamic pool needs both min_workers and max_workers",
                cfg->min_workers ? "min_workers" : "max_workers");
    } else if (cfg->min_workers) {
        if (cfg->min_workers > cfg->max_workers)
            problem(l, max, "max_workers: %d is below min_workers (%d)", cfg->max_workers,
                    cfg->min_workers);
        else if (!l->given[K_POOL_WORKERS])
            cfg->workers = cfg->min_workers;
        else if (cfg->workers < cfg->min_workers || cfg->workers > cfg->max_workers)
            problem(l, l->given[K_POOL_WORKERS],
                    "workers: %d is outside min_workers..max_workers (%d..%d)", cfg->workers,
                    cfg->min_workers, cfg->max_workers);
    }
    if (!l->given[K_POOL_CONTROL_SOCKET]) {
        /* /etc/warren/NAME.conf: /run/warren/NAME.sock */
        const char *base = strrchr(cfg->path, '/');
        size_t len;

        base = base ? base + 1 : cfg->path;
        len = strlen(base);
        if (len > 5 && !strcmp(base + len - 5, ".conf"))
            len -= 5;
        if (!len) {
            base = "warren";
            len = 6;
        }
        if (asprintf(&cfg->control_socket, "/run/warren/%.*s.sock", (int)len, base) < 0)
            abort();
    }
}

/* [metrics] listen: HOST:PORT with a numeric IPv4 address, [IPv6] or
 * localhost, and a port from 1 to 65535; the supervisor binds exactly
 * that (wr_config_listen_addr). */
static void validate_metrics(struct load *l)
{
    struct sockaddr_storage ss;
    char err[160];

    if (l->cfg->metrics_listen &&
        wr_config_listen_addr(l->cfg->metrics_listen, &ss, err, sizeof err) < 0)
        problem(l, l->given[K_METRICS_LISTEN], "listen: %s", err);
}

/* The second pass: rules between fields, each pointing at the line that
 * breaks it. */
static void validate(struct load *l)
{
    wr_config *cfg = l->cfg;

    /* Plugin load errors are found later (by the loader); let them point
     * at the line that listed the plugins. */
    cfg->plugins_line = l->given[K_PLUGINS_LOAD] > 0 ? l->given[K_PLUGINS_LOAD] : 0;
    cfg->broker_uri = cfg->nbroker_uris ? cfg->broker_uris[0] : NULL;

    validate_broker(l);
    validate_pool(l);
    validate_metrics(l);

    for (size_t r = 0; r < cfg->nroutes; r++) {
        const int *given = l->routes[r].given;
        const char *name = cfg->routes[r].name;

        wr_route *rt = &cfg->routes[r];

        rt->method_line = given[K_ROUTE_METHOD] > 0 ? given[K_ROUTE_METHOD] : 0;
        if (!given[K_ROUTE_REQUEST_TIMEOUT])
            rt->request_timeout = cfg->request_timeout;

        /* A broadcast route's queue is the instance's own, named by
         * warren; a queue given there is the prefix of that name. */
        if (!given[K_ROUTE_QUEUE] && !rt->broadcast)
            problem(l, l->routes[r].header, "[route %s]: queue is required", name);
        if (given[K_ROUTE_BINDINGS] && !given[K_ROUTE_EXCHANGE])
            problem(l, given[K_ROUTE_BINDINGS], "bindings: needs exchange in [route %s]", name);
        if (given[K_ROUTE_BROADCAST] && rt->broadcast && !given[K_ROUTE_EXCHANGE])
            problem(l, given[K_ROUTE_BROADCAST],
                    "broadcast: needs exchange (and bindings) in [route %s]", name);
        /* An instance's own queue, gone with it: replicating it buys
         * nothing, and x-expires is what removes it.  So a broadcast
         * route is classic whatever the default says. */
        if (given[K_ROUTE_QUEUE_TYPE] && rt->broadcast && rt->queue_type != WR_QUEUE_CLASSIC)
            problem(l, given[K_ROUTE_QUEUE_TYPE],
                    "queue_type: a broadcast route's queue is the instance's own and always "
                    "classic in [route %s]",
                    name);
        if (!given[K_ROUTE_QUEUE_TYPE] && rt->broadcast)
            rt->queue_type = WR_QUEUE_CLASSIC;
        /* Every instance gets its own copy of a broadcast request: a
         * dead-letter queue would collect one per instance, and outlive
         * the instance queues it served.  A refused one is dropped. */
        if (given[K_ROUTE_DEAD_LETTER] && rt->broadcast && rt->dead_letter)
            problem(l, given[K_ROUTE_DEAD_LETTER],
                    "dead_letter: a broadcast route's refused requests are dropped, not "
                    "dead-lettered, in [route %s]",
                    name);
        if (!given[K_ROUTE_DEAD_LETTER] && rt->broadcast)
            rt->dead_letter = 0;
        if (given[K_ROUTE_EXCHANGE_DECLARE] && rt->exchange_declare && !given[K_ROUTE_EXCHANGE])
            problem(l, given[K_ROUTE_EXCHANGE_DECLARE],
                    "exchange_declare: needs exchange in [route %s]", name);
        if (given[K_ROUTE_REPLY_EXCHANGE] && !given[K_ROUTE_REPLY_PREFIX])
            problem(l, given[K_ROUTE_REPLY_EXCHANGE],
                    "reply_exchange: needs reply_prefix in [route %s]", name);
        if (given[K_ROUTE_REPLY_PREFIX] && !given[K_ROUTE_REPLY_EXCHANGE] &&
            !given[K_ROUTE_EXCHANGE])
            problem(l, given[K_ROUTE_REPLY_PREFIX],
                    "reply_prefix: needs reply_exchange (or exchange) in [route %s]", name);
        if (rt->format == WR_FORMAT_JSONRPC && given[K_ROUTE_METHOD])
            problem(l, given[K_ROUTE_METHOD],
                    "method: only for format raw or amqpbus (a JSON-RPC request names its "
                    "method) in [route %s]",
                    name);
        if (rt->format != WR_FORMAT_JSONRPC && !given[K_ROUTE_METHOD])
            problem(l, given[K_ROUTE_FORMAT] ? given[K_ROUTE_FORMAT] : l->routes[r].header,
                    "format: %s needs method (the method every message calls) in [route %s]",
                    rt->format == WR_FORMAT_RAW ? "raw" : "amqpbus", name);
    }
    if (!cfg->nroutes && !l->saw_route_header)
        problem(l, 0, "no [route NAME] section: at least one route is required");
}

/* The common load into CFG, whose path is set: TEXT is writable and ours
 * to free. */
static int load(wr_config *cfg, char *text, const char *const *overrides, size_t noverrides,
                wr_diag *diag)
{
    struct load l = {.cfg = cfg, .diag = diag, .overrides = overrides};
    size_t before = diag->n;
    int rc;

    l.pos = text;
    l.end = text + strlen(text);
    rc = ini_parse_stream(next_line, &l, on_pair, &l);
    if (rc > 0)
        problem(&l, rc, "syntax error"); /* not expected: next_line() passes only good lines */
    else if (rc < 0)
        problem(&l, 0, "cannot parse (inih error %d)", rc);
    for (size_t i = 0; i < noverrides; i++)
        apply_override(&l, i);
    fill_defaults(&l);
    validate(&l);

    free(l.routes);
    free(text);
    if (diag->n > before) {
        wr_config_free(cfg);
        return -1;
    }
    return 0;
}

int wr_config_listen_addr(const char *text, struct sockaddr_storage *out, char *err, size_t errlen)
{
    const char *colon = strrchr(text, ':');
    char host[INET6_ADDRSTRLEN + 2];
    size_t hlen;
    long port;

    memset(out, 0, sizeof *out);
    if (!colon || colon == text) {
        snprintf(err, errlen, "expected HOST:PORT (127.0.0.1:9464, [::1]:9464), got \"%s\"", text);
        return -1;
    }
    hlen = (size_t)(colon - text);
    if (!parse_long(colon + 1, &port) || port < 1 || port > 65535) {
        snprintf(err, errlen, "expected a port from 1 to 65535 after the colon, got \"%s\"",
                 colon + 1);
        return -1;
    }
    if (hlen >= sizeof host) {
        snprintf(err, errlen, "host \"%.*s\" is too long for a numeric address", (int)hlen, text);
        return -1;
    }
    memcpy(host, text, hlen);
    host[hlen] = '\0';
    if (!strcmp(host, "localhost"))
        snprintf(host, sizeof host, "127.0.0.1");
    if (host[0] == '[' && hlen > 2 && host[hlen - 1] == ']') {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)out;

        host[hlen - 1] = '\0';
        if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) == 1) {
            a6->sin6_family = AF_INET6;
            a6->sin6_port = htons((uint16_t)port);
            return 0;
        }
        host[hlen - 1] = ']';
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)out;

        if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
            a4->sin_family = AF_INET;
            a4->sin_port = htons((uint16_t)port);
            return 0;
        }
    }
    snprintf(err, errlen,
             "\"%s\" is not a numeric IPv4 address, [IPv6 address] or localhost (names are "
             "not resolved)",
             host);
    return -1;
}

int wr_config_load_string(wr_config *cfg, const char *name, const char *text,
                          const char *const *overrides, size_t noverrides, wr_diag *diag)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->path = wr_xstrdup(name);
    return load(cfg, wr_xstrdup(text), overrides, noverrides, diag);
}

int wr_config_load(wr_config *cfg, const char *path, const char *const *overrides,
                   size_t noverrides, wr_diag *diag)
{
    FILE *f;
    char *text = NULL;
    size_t len = 0, cap = 0, got;

    memset(cfg, 0, sizeof *cfg);
    f = fopen(path, "r");
    if (!f) {
        wr_diag_add(diag, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    do {
        if (len + 1 >= cap)
            text = wr_xrealloc(text, cap = cap ? 2 * cap : 4096);
        got = fread(text + len, 1, cap - len - 1, f);
        len += got;
    } while (got > 0);
    text[len] = '\0';
    if (ferror(f)) {
        wr_diag_add(diag, "%s: cannot read: %s", path, strerror(errno));
        fclose(f);
        free(text);
        return -1;
    }
    fclose(f);
    cfg->path = wr_xstrdup(path);
    return load(cfg, text, overrides, noverrides, diag);
}

static void write_value(FILE *out, const struct key *k, const char *base)
{
    const void *field = base + k->offset;

    switch (k->type) {
    case T_STRING:
        if (*(char *const *)field)
            fprintf(out, "%s = %s\n", k->name, *(char *const *)field);
        break;
    case T_INT:
        fprintf(out, "%s = %d\n", k->name, *(const int *)field);
        break;
    case T_SIZE:
        fprintf(out, "%s = %ld\n", k->name, *(const long *)field);
        break;
    case T_LIST: {
        char *const *words = *(char **const *)field;
        size_t n = *(const size_t *)(base + k->count_offset);

        if (!n)
            break; /* unset reads back as empty */
        if (k->repeat) {
            for (size_t i = 0; i < n; i++)
                fprintf(out, "%s = %s\n", k->name, words[i]);
            break;
        }
        fprintf(out, "%s =", k->name);
        for (size_t i = 0; i < n; i++)
            fprintf(out, " %s", words[i]);
        fputc('\n', out);
        break;
    }
    case T_CHOICE:
        /* The first word with that value: "yes", not also "true" and "on". */
        for (const struct choice *c = k->choices; c->name; c++)
            if (c->value == *(const int *)field) {
                fprintf(out, "%s = %s\n", k->name, c->name);
                break;
            }
        break;
    }
}

int wr_config_write(const wr_config *cfg, FILE *out)
{
    const char *section = NULL;

    for (size_t i = 0; i < NKEYS; i++) {
        if (is_route_key(&keys[i]))
            continue;
        if (!section || strcmp(section, keys[i].section)) {
            section = keys[i].section;
            fprintf(out, "%s[%s]\n", i ? "\n" : "", section);
        }
        write_value(out, &keys[i], (const char *)cfg);
    }
    for (size_t r = 0; r < cfg->nroutes; r++) {
        fprintf(out, "\n[route %s]\n", cfg->routes[r].name);
        for (size_t i = 0; i < NKEYS; i++)
            if (is_route_key(&keys[i]))
                write_value(out, &keys[i], (const char *)&cfg->routes[r]);
    }
    for (size_t p = 0; p < cfg->nplugin_sections; p++) {
        const wr_plugin_section *ps = &cfg->plugin_sections[p];

        fprintf(out, "\n[plugin %s]\n", ps->name);
        for (size_t i = 0; i < ps->nitems; i++)
            fprintf(out, "%s = %s\n", ps->items[i].key, ps->items[i].value);
    }
    return ferror(out) ? -1 : 0;
}

const wr_plugin_section *wr_config_plugin_section(const wr_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nplugin_sections; i++)
        if (!strcmp(cfg->plugin_sections[i].name, name))
            return &cfg->plugin_sections[i];
    return NULL;
}

void wr_config_free(wr_config *cfg)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (!is_route_key(&keys[i]))
            free_field(&keys[i], (char *)cfg);
    for (size_t r = 0; r < cfg->nroutes; r++) {
        for (size_t i = 0; i < NKEYS; i++)
            if (is_route_key(&keys[i]))
                free_field(&keys[i], (char *)&cfg->routes[r]);
        free(cfg->routes[r].name);
    }
    free(cfg->routes);
    for (size_t p = 0; p < cfg->nplugin_sections; p++) {
        wr_plugin_section *ps = &cfg->plugin_sections[p];

        for (size_t i = 0; i < ps->nitems; i++) {
            free(ps->items[i].key);
            free(ps->items[i].value);
        }
        free(ps->items);
        free(ps->name);
    }
    free(cfg->plugin_sections);
    wr_secret_free(cfg->broker_password);
    free(cfg->path);
    memset(cfg, 0, sizeof *cfg);
}
