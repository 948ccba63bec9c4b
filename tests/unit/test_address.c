/* worker/address.c: every reply_to form, and the malformed ones refused. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "worker/address.h"

static void expect(const char *reply_to, const char *exchange, const char *key)
{
    char *ex = NULL, *k = NULL;
    int st = wr_address_resolve(reply_to, strlen(reply_to), &ex, &k);

    cr_assert_eq(st, WR_ADDRESS_OK, "%s: %s", reply_to, wr_address_strerror(st));
    cr_expect_str_eq(ex, exchange, "%s: exchange", reply_to);
    cr_expect_str_eq(k, key, "%s: key", reply_to);
    free(ex);
    free(k);
}

static void refused(const char *reply_to)
{
    char *ex = (char *)"x", *k = (char *)"x";

    cr_expect_eq(wr_address_resolve(reply_to, strlen(reply_to), &ex, &k), WR_ADDRESS_EINVAL, "%s",
                 reply_to);
    cr_expect_null(ex, "%s", reply_to);
    cr_expect_null(k, "%s", reply_to);
}

Test(address, rabbitmq4_v2_forms_are_percent_decoded)
{
    expect("/queues/p%2Dreply", "", "p-reply");
    expect("/queues/a%2fb%20c", "", "a/b c");
    expect("/exchanges/amq.topic/a.b", "amq.topic", "a.b");
    expect("/exchanges/X", "X", "");
    expect("/exchanges/X/", "X", "");
    expect("/exchanges/my%20ex/k%2F1", "my ex", "k/1");
}

Test(address, rabbitmq3_v1_forms_are_literal)
{
    expect("/queue/p-reply", "", "p-reply");
    expect("/queue/p%2Dreply", "", "p%2Dreply");
    expect("/exchange/X/k", "X", "k");
    expect("/exchange/X", "X", "");
    expect("/exchange/X/a/b", "X", "a/b");
    expect("/topic/k", "amq.topic", "k");
    expect("/amq/queue/q", "", "q");
}

Test(address, anything_else_is_a_queue_name)
{
    expect("amq.gen-abc", "", "amq.gen-abc");
    expect("amq.rabbitmq.reply-to.g1h2AA==.XXX", "", "amq.rabbitmq.reply-to.g1h2AA==.XXX");
    expect("rpc.replies", "", "rpc.replies");
    expect("/queuesX", "", "/queuesX");
    expect("/other/thing", "", "/other/thing");
    expect("100%", "", "100%");
}

Test(address, only_len_bytes_are_read)
{
    char *ex, *k;

    cr_assert_eq(wr_address_resolve("/queues/abcdef", 11, &ex, &k), WR_ADDRESS_OK);
    cr_expect_str_eq(ex, "");
    cr_expect_str_eq(k, "abc");
    free(ex);
    free(k);
}

Test(address, malformed_known_forms_are_refused)
{
    refused("/queues/");
    refused("/queues/bad%2");
    refused("/queues/bad%zz");
    refused("/queues/nul%00");
    refused("/queues/a/b");
    refused("/queue/");
    refused("/amq/queue/");
    refused("/exchanges/");
    refused("/exchanges//k");
    refused("/exchanges/X/a/b");
    refused("/exchanges/X/%G0");
    refused("/exchange//k");
    cr_expect_str_neq(wr_address_strerror(WR_ADDRESS_EINVAL), "unknown error");
}
