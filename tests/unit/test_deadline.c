/*
 * Deadlines (worker/delivery.c decides, worker/dispatch.c answers), and
 * the headers → JSON mapping for the AMQP field kinds that have no plain
 * JSON twin.  No broker: properties are built by hand, as rabbitmq-c
 * decodes them.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "worker/delivery.h"
#include "worker/dispatch.h"

static amqp_table_entry_t entries[12];
static amqp_basic_properties_t props;

static void reset(void)
{
    memset(&props, 0, sizeof props);
    memset(entries, 0, sizeof entries);
}

/* Add header KEY of kind KIND to PROPS; returns its value to fill in. */
static amqp_field_value_t *add_header(const char *key, uint8_t kind)
{
    amqp_table_entry_t *e = &entries[props.headers.num_entries++];

    props._flags |= AMQP_BASIC_HEADERS_FLAG;
    props.headers.entries = entries;
    e->key = amqp_cstring_bytes(key);
    e->value.kind = kind;
    return &e->value;
}

static void set_expiration(const char *ms)
{
    props._flags |= AMQP_BASIC_EXPIRATION_FLAG;
    props.expiration = amqp_cstring_bytes(ms);
}

static long long deadline(const char **from)
{
    return wr_delivery_deadline_ms(&props, from);
}

TestSuite(deadline, .init = reset);

Test(deadline, none_without_headers_or_expiration)
{
    const char *from = "x";

    cr_expect_eq(deadline(&from), 0);
    cr_expect_null(from);
}

Test(deadline, x_deadline_of_every_integer_width)
{
    const char *from = NULL;

    add_header("x-deadline", AMQP_FIELD_KIND_I64)->value.i64 = 1733100000123LL;
    cr_expect_eq(deadline(&from), 1733100000123LL);
    cr_expect_str_eq(from, "x-deadline");

    entries[0].value.kind = AMQP_FIELD_KIND_U64;
    entries[0].value.value.u64 = 1733100000124ULL;
    cr_expect_eq(deadline(NULL), 1733100000124LL);
    /* Small widths can only hold times long past: still deadlines. */
    entries[0].value.kind = AMQP_FIELD_KIND_I8;
    entries[0].value.value.i8 = 5;
    cr_expect_eq(deadline(NULL), 5);
    entries[0].value.kind = AMQP_FIELD_KIND_U8;
    entries[0].value.value.u8 = 200;
    cr_expect_eq(deadline(NULL), 200);
    entries[0].value.kind = AMQP_FIELD_KIND_I16;
    entries[0].value.value.i16 = 300;
    cr_expect_eq(deadline(NULL), 300);
    entries[0].value.kind = AMQP_FIELD_KIND_U16;
    entries[0].value.value.u16 = 60000;
    cr_expect_eq(deadline(NULL), 60000);
    entries[0].value.kind = AMQP_FIELD_KIND_I32;
    entries[0].value.value.i32 = 2000000000;
    cr_expect_eq(deadline(NULL), 2000000000);
    entries[0].value.kind = AMQP_FIELD_KIND_U32;
    entries[0].value.value.u32 = 4000000000U;
    cr_expect_eq(deadline(NULL), 4000000000LL);
    /* Floats (what a JavaScript client may send) and timestamps (seconds). */
    entries[0].value.kind = AMQP_FIELD_KIND_F64;
    entries[0].value.value.f64 = 1733100000125.7;
    cr_expect_eq(deadline(NULL), 1733100000125LL);
    entries[0].value.kind = AMQP_FIELD_KIND_TIMESTAMP;
    entries[0].value.value.u64 = 1733100000ULL;
    cr_expect_eq(deadline(NULL), 1733100000000LL);
}

Test(deadline, x_deadline_as_a_numeric_string)
{
    amqp_field_value_t *v = add_header("x-deadline", AMQP_FIELD_KIND_UTF8);

    v->value.bytes = amqp_cstring_bytes("1733100000126");
    cr_expect_eq(deadline(NULL), 1733100000126LL);
    entries[0].value.kind = AMQP_FIELD_KIND_BYTES;
    cr_expect_eq(deadline(NULL), 1733100000126LL);
    entries[0].value.kind = AMQP_FIELD_KIND_UTF8;
    v->value.bytes = amqp_cstring_bytes("1.733100000127e12");
    cr_expect_eq(deadline(NULL), 1733100000127LL);
}

Test(deadline, what_is_not_a_positive_time_is_ignored)
{
    static const char *const bad[] = {"", "soon", "12x", "-5", "0", "nan", "inf", "1e300"};
    amqp_field_value_t *v = add_header("x-deadline", AMQP_FIELD_KIND_UTF8);

    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        v->value.bytes = amqp_cstring_bytes(bad[i]);
        cr_expect_eq(deadline(NULL), 0, "\"%s\"", bad[i]);
    }
    v->kind = AMQP_FIELD_KIND_I64;
    v->value.i64 = -1;
    cr_expect_eq(deadline(NULL), 0);
    v->value.i64 = 0;
    cr_expect_eq(deadline(NULL), 0);
    v->kind = AMQP_FIELD_KIND_F64;
    v->value.f64 = NAN;
    cr_expect_eq(deadline(NULL), 0);
    v->kind = AMQP_FIELD_KIND_BOOLEAN;
    v->value.boolean = 1;
    cr_expect_eq(deadline(NULL), 0);
    v->kind = AMQP_FIELD_KIND_U64;
    v->value.u64 = UINT64_MAX;
    cr_expect_eq(deadline(NULL), 0);
}

Test(deadline, expiration_counts_from_when_it_was_sent)
{
    const char *from = NULL;

    set_expiration("5000");
    cr_expect_eq(deadline(NULL), 0, "no send time: no deadline");
    /* The timestamp property is seconds: the end of that second. */
    props._flags |= AMQP_BASIC_TIMESTAMP_FLAG;
    props.timestamp = 1733100000;
    cr_expect_eq(deadline(&from), 1733100000999LL + 5000);
    cr_expect_str_eq(from, "expiration");
    /* A millisecond header wins over it: timestamp_in_ms ... */
    add_header("timestamp_in_ms", AMQP_FIELD_KIND_I64)->value.i64 = 1733100000200LL;
    cr_expect_eq(deadline(NULL), 1733100000200LL + 5000);
    /* ... and x-sent-at over both. */
    add_header("x-sent-at", AMQP_FIELD_KIND_UTF8)->value.bytes =
        amqp_cstring_bytes("1733100000100");
    cr_expect_eq(deadline(NULL), 1733100000100LL + 5000);
}

Test(deadline, expiration_of_zero_or_garbage_sets_none)
{
    props._flags |= AMQP_BASIC_TIMESTAMP_FLAG;
    props.timestamp = 1733100000;
    set_expiration("0");
    cr_expect_eq(deadline(NULL), 0);
    set_expiration("abc");
    cr_expect_eq(deadline(NULL), 0);
    set_expiration("-100");
    cr_expect_eq(deadline(NULL), 0);
}

Test(deadline, the_earlier_of_both_wins)
{
    const char *from = NULL;

    props._flags |= AMQP_BASIC_TIMESTAMP_FLAG;
    props.timestamp = 1733100000;
    set_expiration("1000"); /* 1733100001999 */
    add_header("x-deadline", AMQP_FIELD_KIND_I64)->value.i64 = 1733100005000LL;
    cr_expect_eq(deadline(&from), 1733100001999LL);
    cr_expect_str_eq(from, "expiration");
    entries[0].value.value.i64 = 1733100001000LL;
    cr_expect_eq(deadline(&from), 1733100001000LL);
    cr_expect_str_eq(from, "x-deadline");
}

Test(deadline, the_envelope_carries_it)
{
    amqp_envelope_t env;
    wr_delivery in;

    memset(&env, 0, sizeof env);
    add_header("x-deadline", AMQP_FIELD_KIND_I64)->value.i64 = 1733100000123LL;
    env.message.properties = props;
    cr_assert_eq(wr_delivery_from_envelope(&in, &env), 0);
    cr_expect_eq(in.deadline_ms, 1733100000123LL);
    cr_expect_str_eq(in.deadline_from, "x-deadline");
    wr_delivery_free(&in);
}

Test(deadline, now_is_the_wall_clock)
{
    /* After 2024-12-02 and before 2100: unix ms, not a monotonic count. */
    long long now = wr_delivery_now_ms();
    cr_expect(now > 1733100000000LL && now < 4102444800000LL, "%lld", now);
}

/* ---- the answer ------------------------------------------------------ */

static const wr_route jsonrpc_route = {.name = "rpc", .queue = "q", .format = WR_FORMAT_JSONRPC};
static const wr_route raw_route = {
    .name = "raw", .queue = "q", .format = WR_FORMAT_RAW, .method = "echo"};
static const wr_route amqpbus_route = {
    .name = "bus", .queue = "q", .format = WR_FORMAT_AMQPBUS, .method = "echo"};

/* Prepare BODY on ROUTE with deadline DEADLINE and REPLY_TO (may be NULL),
 * then ask wr_dispatch_expired at NOW. */
static int expire(wr_job *job, const wr_route *route, const char *body, const char *reply_to,
                  long long dl, long long now, wr_expired_stats *st)
{
    wr_delivery in = {.body = body,
                      .len = strlen(body),
                      .reply_to = reply_to,
                      .correlation_id = "c1",
                      .deadline_ms = dl,
                      .deadline_from = "x-deadline"};

    wr_dispatch_prepare(job, route, &in, 1 << 20);
    return wr_dispatch_expired(job, now, st);
}

Test(deadline, jsonrpc_gets_an_error_object_with_its_id)
{
    wr_expired_stats st = {0};
    wr_job job;
    json_t *r, *e;

    cr_assert_eq(expire(&job, &jsonrpc_route,
                        "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[1],\"id\":7}", "r",
                        1000, 3500, &st),
                 1);
    cr_assert_not_null(job.reply);
    r = json_loadb(job.reply, job.reply_len, 0, NULL);
    e = json_object_get(r, "error");
    cr_expect_eq(json_integer_value(json_object_get(e, "code")), WR_ERR_DEADLINE);
    cr_expect_eq(WR_ERR_DEADLINE, -32000);
    cr_expect_str_eq(json_string_value(json_object_get(e, "message")),
                     "deadline passed 2500 ms ago");
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(e, "data"), "late_ms")), 2500);
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(e, "data"), "deadline_ms")),
                 1000);
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(e, "data"), "from")),
                     "x-deadline");
    cr_expect_eq(json_integer_value(json_object_get(r, "id")), 7);
    cr_expect_eq(job.ncalls, 0, "nothing ran");
    cr_expect_eq(job.nerrors, 1);
    cr_expect_eq(st.count, 1);
    json_decref(r);
    wr_dispatch_free(&job);
}

Test(deadline, in_time_or_without_one_runs)
{
    wr_expired_stats st = {0};
    wr_job job;
    const char *body = "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":7}";

    cr_expect_eq(expire(&job, &jsonrpc_route, body, "r", 5000, 4000, &st), 0);
    cr_expect_null(job.reply);
    wr_dispatch_free(&job);
    cr_expect_eq(expire(&job, &jsonrpc_route, body, "r", 5000, 5000, &st), 0, "at the deadline");
    wr_dispatch_free(&job);
    cr_expect_eq(expire(&job, &jsonrpc_route, body, "r", 0, 5000, &st), 0, "none");
    wr_dispatch_free(&job);
    cr_expect_eq(st.count, 0);
}

Test(deadline, notifications_and_no_address_get_no_reply)
{
    wr_expired_stats st = {0};
    wr_job job;

    cr_expect_eq(
        expire(&job, &jsonrpc_route, "{\"jsonrpc\":\"2.0\",\"method\":\"echo\"}", "r", 1, 2, &st),
        1);
    cr_expect_null(job.reply, "a notification is never answered");
    wr_dispatch_free(&job);
    cr_expect_eq(expire(&job, &raw_route, "30", NULL, 1, 2, &st), 1);
    cr_expect_null(job.reply, "raw without reply_to");
    wr_dispatch_free(&job);
    cr_expect_eq(expire(&job, &amqpbus_route, "{\"q\":1}", NULL, 1, 2, &st), 1);
    cr_expect_null(job.reply, "amqpbus without qid or reply_to");
    wr_dispatch_free(&job);
    cr_expect_eq(st.count, 3, "all counted");
}

Test(deadline, raw_and_amqpbus_use_their_error_shapes)
{
    wr_expired_stats st = {0};
    wr_job job;
    json_t *r;

    cr_assert_eq(expire(&job, &raw_route, "30", "r", 1000, 1100, &st), 1);
    cr_expect_eq(job.error_code, WR_ERR_DEADLINE, "x-error-code");
    cr_expect_str_eq(job.error_message, "deadline passed 100 ms ago");
    r = json_loadb(job.reply, job.reply_len, 0, NULL);
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(r, "error"), "code")),
                 WR_ERR_DEADLINE);
    json_decref(r);
    wr_dispatch_free(&job);

    cr_assert_eq(expire(&job, &amqpbus_route, "{\"q\":1,\"qid\":\"q9\"}", NULL, 1000, 1100, &st),
                 1);
    cr_expect_str_eq(job.reply_id, "q9");
    r = json_loadb(job.reply, job.reply_len, 0, NULL);
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(r, "error"), "code")),
                 WR_ERR_DEADLINE);
    json_decref(r);
    wr_dispatch_free(&job);
}

Test(deadline, info_lines_are_rate_limited)
{
    wr_expired_stats st = {0};
    wr_job job;

    for (long long now = 10000; now < 10000 + 5; now++) {
        expire(&job, &raw_route, "30", "r", 1, now, &st);
        wr_dispatch_free(&job);
    }
    cr_expect_eq(st.count, 5);
    cr_expect_eq(st.unlogged, 4, "one info line, then debug lines");
    cr_expect_eq(st.last_info_ms, 10000);
    expire(&job, &raw_route, "30", "r", 1, 10000 + WR_EXPIRED_LOG_INTERVAL_MS, &st);
    wr_dispatch_free(&job);
    cr_expect_eq(st.unlogged, 0, "the next info line reports them");
    cr_expect_eq(st.last_info_ms, 10000 + WR_EXPIRED_LOG_INTERVAL_MS);
}

/* ---- headers of the kinds without a plain JSON twin --------------------- */

Test(deadline, header_kinds_map_to_json)
{
    amqp_table_entry_t nested_e = {.key = amqp_cstring_bytes("k"),
                                   .value = {.kind = AMQP_FIELD_KIND_VOID}};
    amqp_table_t t;
    json_t *j;
    char *text;

    add_header("big", AMQP_FIELD_KIND_U64)->value.u64 = UINT64_MAX;
    add_header("dec", AMQP_FIELD_KIND_DECIMAL)->value.decimal =
        (amqp_decimal_t){.decimals = 2, .value = 12345};
    add_header("small", AMQP_FIELD_KIND_DECIMAL)->value.decimal =
        (amqp_decimal_t){.decimals = 5, .value = 12};
    add_header("int", AMQP_FIELD_KIND_DECIMAL)->value.decimal =
        (amqp_decimal_t){.decimals = 0, .value = 7};
    add_header("nan", AMQP_FIELD_KIND_F64)->value.f64 = NAN;
    add_header("inf", AMQP_FIELD_KIND_F32)->value.f32 = INFINITY;
    add_header("void", AMQP_FIELD_KIND_VOID);
    add_header("empty", AMQP_FIELD_KIND_UTF8)->value.bytes =
        (amqp_bytes_t){.len = 0, .bytes = NULL};
    add_header("t", AMQP_FIELD_KIND_TABLE)->value.table =
        (amqp_table_t){.num_entries = 1, .entries = &nested_e};
    t = props.headers;
    j = wr_amqp_table_to_json(&t);
    text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    cr_expect_str_eq(
        text, "{\"big\":\"18446744073709551615\",\"dec\":\"123.45\",\"empty\":\"\",\"inf\":null,"
              "\"int\":\"7\",\"nan\":null,\"small\":\"0.00012\",\"t\":{\"k\":null},"
              "\"void\":null}");
    free(text);
    json_decref(j);
}

Test(deadline, headers_nested_too_deep_become_null)
{
    enum { DEPTH = 200 };
    static amqp_field_value_t levels[DEPTH];
    amqp_table_entry_t top;
    amqp_table_t t = {.num_entries = 1, .entries = &top};
    json_t *j, *v;
    int depth = 0;

    /* An array holding an array holding ... DEPTH deep. */
    for (int i = 0; i < DEPTH; i++) {
        levels[i].kind = AMQP_FIELD_KIND_ARRAY;
        levels[i].value.array = (amqp_array_t){.num_entries = i + 1 < DEPTH ? 1 : 0,
                                               .entries = i + 1 < DEPTH ? &levels[i + 1] : NULL};
    }
    top.key = amqp_cstring_bytes("deep");
    top.value = levels[0];
    j = wr_amqp_table_to_json(&t);
    for (v = json_object_get(j, "deep"); json_is_array(v); v = json_array_get(v, 0))
        depth++;
    cr_expect(json_is_null(v), "cut off with null");
    cr_expect_eq(depth, 64);
    json_decref(j);
}
