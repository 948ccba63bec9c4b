/*
 * worker/amqp10.c: AMQP 1.0 sections, encoded by Qpid Proton's encoder (or
 * by hand, for what no encoder writes), unwrapped into the body a route's
 * format reads; the 3.x legacy headers into JSON.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <proton/codec.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "worker/amqp10.h"

/* A described section with descriptor CODE, entered: put its value next. */
static pn_data_t *section(uint64_t code)
{
    pn_data_t *d = pn_data(0);

    pn_data_put_described(d);
    pn_data_enter(d);
    pn_data_put_ulong(d, code);
    return d;
}

/* Close D's section, encode it after *BUF (*LEN bytes so far; grows it),
 * free D. */
static void finish(pn_data_t *d, char **buf, size_t *len)
{
    ssize_t n;

    pn_data_exit(d);
    n = pn_data_encoded_size(d);
    cr_assert_gt(n, 0);
    *buf = realloc(*buf, *len + (size_t)n);
    cr_assert_eq(pn_data_encode(d, *buf + *len, (size_t)n), n);
    *len += (size_t)n;
    pn_data_free(d);
}

/* Unwrap LEN bytes of BODY; assert it worked and gave WANT. */
static void expect_text(const char *body, size_t len, const char *want, size_t want_len)
{
    char *out, err[128] = "";
    size_t outlen;

    cr_assert_eq(wr_amqp10_unwrap(body, len, &out, &outlen, err, sizeof err), 0, "%s", err);
    cr_expect_eq(outlen, want_len, "got %zu bytes: %s", outlen, out);
    cr_expect(memcmp(out, want, want_len) == 0, "got %s, want %s", out, want);
    cr_expect_eq(out[outlen], '\0');
    free(out);
}

/* The amqp-value section D (its value put) unwraps to WANT. */
static void expect_value(pn_data_t *d, const char *want)
{
    char *buf = NULL;
    size_t len = 0;

    finish(d, &buf, &len);
    expect_text(buf, len, want, strlen(want));
    free(buf);
}

/* Unwrapping LEN bytes of BODY fails as bad input, ERR naming WHAT. */
static void expect_bad(const char *body, size_t len, const char *what)
{
    char *out = (char *)1, err[128] = "";
    size_t outlen;

    cr_assert_eq(wr_amqp10_unwrap(body, len, &out, &outlen, err, sizeof err), WR_AMQP10_EBAD);
    cr_expect_null(out);
    cr_expect(strstr(err, what) != NULL, "error \"%s\" does not say \"%s\"", err, what);
}

#define VALUE 0x77

Test(amqp10, the_issues_example_str8_json_text)
{
    const char *json =
        "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[\"hello\"],\"id\":\"q53\"}";
    char body[5 + 63];

    cr_assert_eq(strlen(json), 0x3f);
    memcpy(body, "\x00\x53\x77\xa1\x3f", 5);
    memcpy(body + 5, json, 0x3f);
    expect_text(body, sizeof body, json, 0x3f);
}

Test(amqp10, value_string_and_binary_give_their_text)
{
    pn_data_t *d = section(VALUE);
    pn_data_put_string(d, pn_bytes(2, "hi"));
    expect_value(d, "hi");
    d = section(VALUE);
    pn_data_put_string(d, pn_bytes(2, "30"));
    expect_value(d, "30"); /* the raw route then reads 30, as from a 0-9-1 client */
    d = section(VALUE);
    pn_data_put_binary(d, pn_bytes(3, "a\0b"));
    char *buf = NULL;
    size_t len = 0;
    finish(d, &buf, &len);
    expect_text(buf, len, "a\0b", 3);
    free(buf);
}

Test(amqp10, value_integers_of_every_width)
{
    pn_data_t *d;

    d = section(VALUE), pn_data_put_int(d, 30), expect_value(d, "30");
    d = section(VALUE), pn_data_put_int(d, -2147483647 - 1), expect_value(d, "-2147483648");
    d = section(VALUE), pn_data_put_uint(d, 4000000000u), expect_value(d, "4000000000");
    d = section(VALUE), pn_data_put_uint(d, 0), expect_value(d, "0"); /* uint0 */
    d = section(VALUE), pn_data_put_long(d, -9000000000LL), expect_value(d, "-9000000000");
    d = section(VALUE), pn_data_put_long(d, 7), expect_value(d, "7"); /* smalllong */
    d = section(VALUE), pn_data_put_ulong(d, 42), expect_value(d, "42");
    d = section(VALUE), pn_data_put_ulong(d, 9223372036854775807ULL);
    expect_value(d, "9223372036854775807");
    /* Beyond int64: a string of digits. */
    d = section(VALUE), pn_data_put_ulong(d, 18446744073709551615ULL);
    expect_value(d, "\"18446744073709551615\"");
    d = section(VALUE), pn_data_put_byte(d, -5), expect_value(d, "-5");
    d = section(VALUE), pn_data_put_ubyte(d, 200), expect_value(d, "200");
    d = section(VALUE), pn_data_put_short(d, -300), expect_value(d, "-300");
    d = section(VALUE), pn_data_put_ushort(d, 60000), expect_value(d, "60000");
}

Test(amqp10, value_reals_booleans_null)
{
    pn_data_t *d;

    d = section(VALUE), pn_data_put_double(d, 2.25), expect_value(d, "2.25");
    d = section(VALUE), pn_data_put_float(d, 1.5f), expect_value(d, "1.5");
    d = section(VALUE), pn_data_put_double(d, 1.0 / 0.0), expect_value(d, "null");
    d = section(VALUE), pn_data_put_bool(d, true), expect_value(d, "true");
    d = section(VALUE), pn_data_put_bool(d, false), expect_value(d, "false");
    d = section(VALUE), pn_data_put_null(d), expect_value(d, "null");
}

Test(amqp10, value_symbol_char_timestamp_uuid)
{
    pn_data_t *d;
    pn_uuid_t u;

    d = section(VALUE), pn_data_put_symbol(d, pn_bytes(3, "sym")), expect_value(d, "\"sym\"");
    d = section(VALUE), pn_data_put_char(d, 0x20ac), expect_value(d, "\"\xe2\x82\xac\"");
    d = section(VALUE), pn_data_put_timestamp(d, 1700000000123LL);
    expect_value(d, "1700000000123");
    memcpy(u.bytes, "\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff", 16);
    d = section(VALUE), pn_data_put_uuid(d, u);
    expect_value(d, "\"00112233-4455-6677-8899-aabbccddeeff\"");
}

Test(amqp10, value_list_map_array)
{
    pn_data_t *d = section(VALUE);

    pn_data_put_list(d);
    pn_data_enter(d);
    pn_data_put_int(d, 1);
    pn_data_put_string(d, pn_bytes(1, "a"));
    pn_data_put_null(d);
    pn_data_put_binary(d, pn_bytes(2, "ok"));           /* UTF-8: a string */
    pn_data_put_binary(d, pn_bytes(3, "\xff\x00\x01")); /* not: base64 */
    pn_data_put_list(d);                                /* empty: list0 */
    pn_data_exit(d);
    expect_value(d, "[1,\"a\",null,\"ok\",\"/wAB\",[]]");

    d = section(VALUE);
    pn_data_put_map(d);
    pn_data_enter(d);
    pn_data_put_string(d, pn_bytes(1, "k"));
    pn_data_put_int(d, 1);
    pn_data_put_symbol(d, pn_bytes(1, "s"));
    pn_data_put_map(d);
    pn_data_enter(d);
    pn_data_exit(d);
    pn_data_put_int(d, 2); /* a non-string key: its JSON text */
    pn_data_put_string(d, pn_bytes(3, "two"));
    pn_data_exit(d);
    expect_value(d, "{\"k\":1,\"s\":{},\"2\":\"two\"}");

    d = section(VALUE);
    pn_data_put_array(d, false, PN_INT);
    pn_data_enter(d);
    for (int i = 1; i <= 3; i++)
        pn_data_put_int(d, i);
    pn_data_exit(d);
    expect_value(d, "[1,2,3]");

    d = section(VALUE);
    pn_data_put_array(d, false, PN_STRING);
    pn_data_enter(d);
    pn_data_put_string(d, pn_bytes(1, "x"));
    pn_data_put_string(d, pn_bytes(1, "y"));
    pn_data_exit(d);
    expect_value(d, "[\"x\",\"y\"]");
}

Test(amqp10, data_sections_concatenate)
{
    char *buf = NULL;
    size_t len = 0;
    pn_data_t *d = section(0x75);

    pn_data_put_binary(d, pn_bytes(5, "hello"));
    finish(d, &buf, &len);
    expect_text(buf, len, "hello", 5);
    d = section(0x75);
    pn_data_put_binary(d, pn_bytes(6, " world"));
    finish(d, &buf, &len);
    expect_text(buf, len, "hello world", 11);
    free(buf);
}

Test(amqp10, sequence_sections_give_one_array)
{
    char *buf = NULL;
    size_t len = 0;
    pn_data_t *d = section(0x76);

    pn_data_put_list(d);
    pn_data_enter(d);
    pn_data_put_int(d, 1);
    pn_data_put_string(d, pn_bytes(1, "b"));
    pn_data_exit(d);
    finish(d, &buf, &len);
    expect_text(buf, len, "[1,\"b\"]", 7);
    d = section(0x76);
    pn_data_put_list(d);
    pn_data_enter(d);
    pn_data_put_bool(d, true);
    pn_data_exit(d);
    finish(d, &buf, &len);
    expect_text(buf, len, "[1,\"b\",true]", 12);
    free(buf);
}

Test(amqp10, other_sections_are_skipped_and_symbolic_descriptors_work)
{
    char *buf = NULL;
    size_t len = 0;
    pn_data_t *d = section(0x74); /* application-properties */

    pn_data_put_map(d);
    pn_data_enter(d);
    pn_data_put_string(d, pn_bytes(1, "p"));
    pn_data_put_int(d, 1);
    pn_data_exit(d);
    finish(d, &buf, &len);
    d = pn_data(0);
    pn_data_put_described(d);
    pn_data_enter(d);
    pn_data_put_symbol(d, pn_bytes(17, "amqp:amqp-value:*"));
    pn_data_put_int(d, 5);
    finish(d, &buf, &len);
    expect_text(buf, len, "5", 1);
    free(buf);
    expect_text("", 0, "", 0); /* no body section: an empty body */
}

Test(amqp10, a_2mb_data_section_unwraps_whole)
{
    size_t n = 2u << 20, len = 0;
    char *big = malloc(n), *buf = NULL;
    pn_data_t *d = section(0x75);

    memset(big, 'x', n);
    pn_data_put_binary(d, pn_bytes(n, big));
    finish(d, &buf, &len);
    expect_text(buf, len, big, n);
    free(buf);
    free(big);
}

Test(amqp10, truncated_sections_are_bad_input)
{
    /* str8 announcing 0x3f bytes, holding 3. */
    expect_bad("\x00\x53\x77\xa1\x3f"
               "abc",
               8, "truncated");
    /* An int missing two of its bytes. */
    expect_bad("\x00\x53\x77\x71\x00\x00", 6, "truncated");
    /* A descriptor and no value. */
    expect_bad("\x00\x53\x77", 3, "truncated");
    expect_bad("\x00\x53", 2, "truncated");
    /* A list whose size runs past the body. */
    expect_bad("\x00\x53\x77\xc0\x10\x01\x45", 7, "past its end");
    /* A list whose count claims more than its size holds. */
    expect_bad("\x00\x53\x77\xc0\x02\x03\x45", 7, "truncated");
}

Test(amqp10, unknown_descriptors_and_types_are_bad_input)
{
    expect_bad("\x00\x53\x99\x45", 4, "unknown section descriptor 0x99");
    expect_bad("\x00\xa3\x03"
               "foo\x45",
               7, "unknown section descriptor \"foo\"");
    expect_bad("\x00\x71\x00\x00\x00\x01\x45", 7, "ulong or a symbol");
    expect_bad("\x45", 1, "expected a section");
    expect_bad("\x00\x53\x77\x01", 4, "unknown type code 0x01");
    /* A described value inside a section. */
    expect_bad("\x00\x53\x77\x00\x53\x01\x45", 7, "described value inside");
    /* Decimals have no JSON form. */
    expect_bad("\x00\x53\x77\x74\x00\x00\x00\x00", 8, "decimal");
    /* Strings must be UTF-8. */
    expect_bad("\x00\x53\x77\xc0\x04\x01\xa1\x01\xff", 9, "not UTF-8");
}

Test(amqp10, garbage_after_the_section_is_bad_input)
{
    expect_bad("\x00\x53\x77\x54\x1e"
               "zz",
               7, "byte 5: expected a section");
}

Test(amqp10, body_kinds_do_not_mix)
{
    expect_bad("\x00\x53\x77\x45\x00\x53\x77\x45", 8, "a second amqp-value");
    expect_bad("\x00\x53\x75\xa0\x01x\x00\x53\x77\x45", 10, "mixed");
    expect_bad("\x00\x53\x75\x45", 4, "holds no binary");
}

/* LEVELS lists, each holding the next (list32), around an empty list. */
static char *nested(size_t levels, size_t *len)
{
    size_t n = 3 + levels * 9 + 1, at = n;
    unsigned char *b = malloc(n);

    b[--at] = 0x45;
    for (size_t i = 0; i < levels; i++) {
        uint32_t size = (uint32_t)(n - at + 4);
        at -= 9;
        b[at] = 0xd0;
        for (int k = 0; k < 4; k++) {
            b[at + 1 + k] = (unsigned char)(size >> (24 - 8 * k));
            b[at + 5 + k] = k == 3 ? 1 : 0;
        }
    }
    memcpy(b, "\x00\x53\x77", 3);
    *len = n;
    return (char *)b;
}

Test(amqp10, nesting_is_bounded)
{
    size_t len;
    char *b = nested(WR_AMQP10_MAX_DEPTH, &len);
    char want[2 * WR_AMQP10_MAX_DEPTH + 3];
    struct timespec t0, t1;

    for (int i = 0; i < WR_AMQP10_MAX_DEPTH + 1; i++) {
        want[i] = '[';
        want[2 * WR_AMQP10_MAX_DEPTH + 1 - i] = ']';
    }
    want[2 * WR_AMQP10_MAX_DEPTH + 2] = '\0';
    expect_text(b, len, want, strlen(want)); /* 64 levels and the innermost list */
    free(b);

    b = nested(WR_AMQP10_MAX_DEPTH + 1, &len);
    expect_bad(b, len, "nested deeper than 64");
    free(b);

    clock_gettime(CLOCK_MONOTONIC, &t0);
    b = nested(10000, &len);
    expect_bad(b, len, "nested deeper than 64");
    free(b);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cr_expect_lt(t1.tv_sec - t0.tv_sec, 2, "10,000 levels took %ld s",
                 (long)(t1.tv_sec - t0.tv_sec));

    /* A chain of 10,000 descriptors. */
    b = calloc(10000, 1);
    memcpy(b, "\x00\x53\x77", 3);
    expect_bad(b, 10000, "described value inside");
    free(b);
}

Test(amqp10, value_count_is_bounded)
{
    /* An array claiming 4 billion nulls (zero bytes each). */
    expect_bad("\x00\x53\x77\xf0\x00\x00\x00\x05\xff\xff\xff\xff\x40", 13,
               "more than 65000 values");
}

static json_t *header_json(pn_data_t *d)
{
    char *buf = NULL, err[128] = "";
    size_t len = 0;
    json_t *v;

    finish(d, &buf, &len);
    cr_assert_eq(wr_amqp10_section_to_json(buf, len, &v, err, sizeof err), 0, "%s", err);
    free(buf);
    return v;
}

Test(amqp10, legacy_headers_decode_to_objects)
{
    pn_data_t *d = section(0x74);
    json_t *v, *want;

    pn_data_put_map(d);
    pn_data_enter(d);
    pn_data_put_string(d, pn_bytes(6, "myprop"));
    pn_data_put_string(d, pn_bytes(1, "v"));
    pn_data_put_string(d, pn_bytes(1, "n"));
    pn_data_put_long(d, 3);
    pn_data_exit(d);
    v = header_json(d);
    want = json_pack("{s:s, s:i}", "myprop", "v", "n", 3);
    cr_expect(json_equal(v, want));
    json_decref(want);
    json_decref(v);

    d = section(0x72); /* message annotations: symbol keys */
    pn_data_put_map(d);
    pn_data_enter(d);
    pn_data_put_symbol(d, pn_bytes(7, "x-opt-a"));
    pn_data_put_bool(d, true);
    pn_data_exit(d);
    v = header_json(d);
    cr_expect(json_is_true(json_object_get(v, "x-opt-a")));
    json_decref(v);

    d = section(0x73); /* properties: a list, keyed by field name */
    pn_data_put_list(d);
    pn_data_enter(d);
    pn_data_put_string(d, pn_bytes(2, "m1"));
    pn_data_put_null(d);
    pn_data_put_string(d, pn_bytes(9, "/queues/q"));
    pn_data_put_string(d, pn_bytes(4, "subj"));
    pn_data_exit(d);
    v = header_json(d);
    want = json_pack("{s:s, s:s, s:s}", "message-id", "m1", "to", "/queues/q", "subject", "subj");
    cr_expect(json_equal(v, want), "%s", json_dumps(v, 0));
    json_decref(want);
    json_decref(v);
}

Test(amqp10, legacy_header_with_trailing_bytes_is_refused)
{
    json_t *v = (json_t *)1;
    char err[128];

    cr_expect_eq(wr_amqp10_section_to_json("\x00\x53\x74\xc1\x01\x00zz", 8, &v, err, sizeof err),
                 WR_AMQP10_EBAD);
    cr_expect_null(v);
}
