/*
 * RabbitMQ 4.x (up to 4.3's refused-by-default deprecated features) asks
 * nothing warren does not already do.  One warren with a route of every
 * kind (jsonrpc, raw, amqpbus declaring its topic exchange, broadcast on
 * amq.topic), a call on each, then the broker's own view of what warren
 * declared and sent: every queue durable or exclusive (4.3 refuses a
 * transient non-exclusive one) with an explicit x-queue-type (a vhost
 * default of quorum changes nothing), none with the arguments 4.x refuses
 * (x-queue-master-locator, x-queue-mode, x-queue-version, ha-*); every
 * exchange it declared durable; no channel with a global basic.qos.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/integration/harness.h"

/* The broker's list (list_queues / list_exchanges / list_channels with
 * COLUMNS) as a JSON array (new reference). */
static json_t *broker_list(const char *what, const char *columns)
{
    char args[512], *out;
    json_error_t e;
    json_t *j;

    snprintf(args, sizeof args, "%s -q --formatter json %s", what, columns);
    out = wr_test_broker_ctl(args);
    j = json_loads(out, 0, &e);
    cr_assert(json_is_array(j), "%s: not a JSON array (%s): %s", what, e.text, out);
    free(out);
    return j;
}

/* Whether a name starts with this test's PREFIX. */
static int ours(json_t *item, const char *prefix)
{
    const char *name = json_string_value(json_object_get(item, "name"));
    return name && strncmp(name, prefix, strlen(prefix)) == 0;
}

/* A queue's or exchange's arguments, whichever shape the formatter gives
 * them: an object, or (3.10) a list of [key, type, value].  A queue's
 * x-queue-type must be TYPE. */
static void check_arguments(json_t *item, const char *name, const char *type)
{
    json_t *args = json_object_get(item, "arguments"), *v;
    const char *k;
    size_t i;
    int typed = 0;
    static const char *const refused[] = {"x-queue-master-locator", "x-queue-mode",
                                          "x-queue-version"};

    json_t *pairs = json_object();
    if (json_is_object(args))
        json_object_update(pairs, args);
    else if (json_is_array(args))
        json_array_foreach(args, i, v)
        {
            if (json_is_array(v) && json_is_string(json_array_get(v, 0)))
                json_object_set(pairs, json_string_value(json_array_get(v, 0)),
                                json_array_get(v, json_array_size(v) - 1));
        }
    json_object_foreach(pairs, k, v)
    {
        for (size_t r = 0; r < sizeof refused / sizeof refused[0]; r++)
            cr_expect_str_neq(k, refused[r], "%s has %s, which RabbitMQ 4 refuses", name, k);
        cr_expect_neq(strncmp(k, "ha-", 3), 0, "%s has %s (mirroring: gone in RabbitMQ 4.0)", name,
                      k);
        if (!strcmp(k, "x-queue-type")) {
            typed = 1;
            cr_expect(json_is_string(v) && !strcmp(json_string_value(v), type),
                      "%s: x-queue-type %s, expected %s", name,
                      json_is_string(v) ? json_string_value(v) : "(not a string)", type);
        }
    }
    if (type)
        cr_expect(typed, "%s declared without x-queue-type: a quorum vhost default would apply",
                  name);
    json_decref(pairs);
}

Test(rabbitmq4_ready, declares_and_sends_nothing_rabbitmq4_refuses, .timeout = 120)
{
    wr_test_warren w = {0};
    char prefix[96], extra[2048], exchange[160], key[160], err[512], *reply;
    json_t *list, *item;
    size_t i;
    int nqueues = 0, nexchanges = 0, nchannels = 0;
    wr_client *c;
    wr_client_reply r;

    wr_test_queue_name(prefix, sizeof prefix, "ready");
    snprintf(w.queue, sizeof w.queue, "%s.rpc", prefix);
    snprintf(exchange, sizeof exchange, "%s.TestExchange", prefix);
    snprintf(extra, sizeof extra,
             "[route tutorial]\nqueue = %s.raw\nformat = raw\nmethod = echo\n\n"
             "[route bus]\nqueue = %s.bus\nformat = amqpbus\nmethod = echo\n"
             "exchange = %s\nexchange_declare = topic\nbindings = example.request.*\n"
             "reply_prefix = example.response\n\n"
             "[route status]\nqueue = %s.status\nbroadcast = yes\nexchange = amq.topic\n"
             "bindings = %s.STATUS\nformat = raw\nmethod = warren.status\n",
             prefix, prefix, exchange, prefix, prefix);
    wr_test_warren_start(&w, 2, extra, 1);

    /* A call on each route, so everything warren does has been done. */
    c = wr_test_client(WR_CLIENT_REPLY_QUEUE);
    reply =
        wr_test_rpc(c, w.queue, "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[1],\"id\":1}",
                    "ready-1", 10000);
    cr_assert(reply && strstr(reply, "\"result\":[1]"), "jsonrpc: %s", reply ? reply : "(none)");
    free(reply);
    snprintf(key, sizeof key, "%s.raw", prefix);
    reply = wr_test_rpc(c, key, "30", "ready-2", 10000);
    cr_assert(reply && !strcmp(reply, "[30]"), "raw: %s", reply ? reply : "(none)");
    free(reply);
    cr_assert_eq(wr_client_publish(c, exchange, "example.request.q1", "{\"q\": 2, \"qid\": \"q1\"}",
                                   strlen("{\"q\": 2, \"qid\": \"q1\"}"), "ready-3", 0, err,
                                   sizeof err),
                 0, "%s", err);
    cr_assert_eq(wr_client_recv(c, 10000, &r, err, sizeof err), 1, "amqpbus: no reply");
    cr_expect_str_eq(r.body, "[2]");
    wr_client_reply_free(&r);
    snprintf(key, sizeof key, "%s.STATUS", prefix);
    cr_assert_eq(wr_client_publish(c, "amq.topic", key, "", 0, "ready-4", 0, err, sizeof err), 0,
                 "%s", err);
    cr_assert_eq(wr_client_recv(c, 10000, &r, err, sizeof err), 1, "broadcast: no reply");
    cr_expect(strstr(r.body, "supervisor_pid") != NULL, "%s", r.body);
    wr_client_reply_free(&r);

    /* Queues: durable or exclusive, typed, no refused arguments. */
    list = broker_list("list_queues", "name durable exclusive auto_delete arguments");
    json_array_foreach(list, i, item)
    {
        const char *name = json_string_value(json_object_get(item, "name"));

        if (!ours(item, prefix))
            continue;
        nqueues++;
        cr_assert(json_is_boolean(json_object_get(item, "durable")), "list_queues: no durable");
        cr_expect(json_is_true(json_object_get(item, "durable")) ||
                      json_is_true(json_object_get(item, "exclusive")),
                  "%s is transient and not exclusive: RabbitMQ 4.3 refuses it", name);
        /* The broadcast queue is the instance's own: classic. */
        check_arguments(item, name, strstr(name, ".status.") ? "classic" : "quorum");
    }
    /* Three shared queues and their .dead ones, and the broadcast one. */
    cr_expect_eq(nqueues, 7, "warren's queues: %d of 7 found", nqueues);
    json_decref(list);

    /* Exchanges warren declared: durable. */
    list = broker_list("list_exchanges", "name type durable auto_delete arguments");
    json_array_foreach(list, i, item)
    {
        const char *name = json_string_value(json_object_get(item, "name"));

        if (name && !strcmp(name, "warren.dead")) {
            cr_expect(json_is_true(json_object_get(item, "durable")), "warren.dead is transient");
            check_arguments(item, name, NULL);
            continue;
        }
        if (!ours(item, prefix))
            continue;
        nexchanges++;
        cr_expect(json_is_true(json_object_get(item, "durable")), "exchange %s is transient", name);
        check_arguments(item, name, NULL);
    }
    cr_expect_eq(nexchanges, 1, "warren's exchanges: %d of 1 found", nexchanges);
    json_decref(list);

    /* basic.qos: per consumer only.  Every channel on the broker now is
     * warren's two workers' or this test client's; none has a global
     * prefetch, and the workers' carry [pool] prefetch 1. */
    list = broker_list("list_channels", "name prefetch_count global_prefetch_count");
    json_array_foreach(list, i, item)
    {
        cr_assert(json_is_integer(json_object_get(item, "global_prefetch_count")),
                  "list_channels shows no global_prefetch_count");
        cr_expect_eq(json_integer_value(json_object_get(item, "global_prefetch_count")), 0,
                     "channel %s has a global basic.qos",
                     json_string_value(json_object_get(item, "name")));
        if (json_integer_value(json_object_get(item, "prefetch_count")) == 1)
            nchannels++;
    }
    cr_expect_geq(nchannels, 2, "the workers' channels (prefetch 1): %d found", nchannels);
    json_decref(list);

    /* And in the source, every basic.qos says global = 0. */
    {
        char cmd[512], *out = NULL;

        snprintf(cmd, sizeof cmd,
                 "grep -rn 'amqp_basic_qos(' '%s'/worker '%s'/common '%s'/client "
                 "| grep -v ', 0);$' || true",
                 getenv("WARREN_SOURCE_DIR"), getenv("WARREN_SOURCE_DIR"),
                 getenv("WARREN_SOURCE_DIR"));
        cr_assert_eq(wr_test_sh(cmd, &out, NULL), 0);
        cr_expect(!out || !out[0], "basic.qos calls without global = 0:\n%s", out);
        free(out);
    }

    wr_client_close(c);
    cr_assert_eq(wr_test_warren_stop(&w), 0);
}
