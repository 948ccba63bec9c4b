/*
 * Unit tests for common/uri.c: warren's own AMQP URI parser, which the
 * config check, the logs and the workers' connects all use.  The cases
 * follow RabbitMQ's URI spec and what rabbitmq-c's amqp_parse_url did
 * before it (the same defaults, "host/" naming the vhost "").
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/uri.h"

static struct amqp_connection_info info;
static char buf[512];

static int parse(const char *uri)
{
    snprintf(buf, sizeof buf, "%s", uri);
    return wr_uri_parse(buf, &info);
}

Test(uri, defaults)
{
    cr_assert_eq(parse("amqp://"), 0);
    cr_assert_str_eq(info.user, "guest");
    cr_assert_str_eq(info.password, "guest");
    cr_assert_str_eq(info.host, "localhost");
    cr_assert_eq(info.port, 5672);
    cr_assert_str_eq(info.vhost, "/");
    cr_assert_eq(info.ssl, 0);
    cr_assert_eq(parse("amqps://h"), 0);
    cr_assert_eq(info.port, 5671);
    cr_assert_eq(info.ssl, 1);
}

Test(uri, every_part)
{
    cr_assert_eq(parse("amqp://alice:s%40cret@broker.example:5673/prod%2fv1"), 0);
    cr_assert_str_eq(info.user, "alice");
    cr_assert_str_eq(info.password, "s@cret");
    cr_assert_str_eq(info.host, "broker.example");
    cr_assert_eq(info.port, 5673);
    cr_assert_str_eq(info.vhost, "prod/v1");
    /* a password may hold ':' and '@' literally up to the last '@' */
    cr_assert_eq(parse("amqp://u:a:b@c@h/"), 0);
    cr_assert_str_eq(info.user, "u");
    cr_assert_str_eq(info.password, "a:b@c");
    cr_assert_str_eq(info.host, "h");
    cr_assert_str_eq(info.vhost, "");
    cr_assert_eq(parse("amqp://u@h"), 0);
    cr_assert_str_eq(info.user, "u");
    cr_assert_str_eq(info.password, "guest");
}

Test(uri, ipv6)
{
    cr_assert_eq(parse("amqp://[::1]:5680/v"), 0);
    cr_assert_str_eq(info.host, "::1");
    cr_assert_eq(info.port, 5680);
    cr_assert_eq(parse("amqp://[fe80::1]"), 0);
    cr_assert_str_eq(info.host, "fe80::1");
    cr_assert_eq(info.port, 5672);
}

Test(uri, malformed)
{
    const char *bad[] = {
        "http://h",     "amqp:/h",        "amqp://h:port/",       "amqp://h:/",
        "amqp://h:0",   "amqp://h:65536", "amqp://h:123456",      "amqp://h/a/b",
        "amqp://h/%zz", "amqp://u:%4@h",  "amqp://::1",           "amqp://[::1/",
        "amqp://[]:1",  "amqp://[::1]x",  "amqp://h?heartbeat=5", "amqp://h#f",
        "amqp://h]",    "amqp://u%00x@h", "amqp://h/v%00",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(parse(bad[i]), -1, "accepted %s", bad[i]);
}
