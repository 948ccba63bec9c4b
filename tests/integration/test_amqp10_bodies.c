/*
 * A body of AMQP 1.0 encoded sections (type = amqp-1.0, as RabbitMQ marks
 * what AMQP 1.0 clients send) through the real broker to a raw echo route:
 * unwrapped before the format reads it, and a body that does not decode
 * answered with -32700, acked, in one log line, with no worker restarting.
 * Published here with rabbitmq-c; the AMQP 1.0 clients' own test publishes
 * with Qpid Proton.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/integration/harness.h"

/* Publish LEN bytes of BODY to QUEUE with CORR; the reply's body
 * (malloc'd). */
static char *call(wr_client *c, const char *queue, const char *body, size_t len, const char *corr)
{
    char err[512];

    cr_assert_eq(wr_client_publish(c, "", queue, body, len, corr, 0, err, sizeof err), 0,
                 "publish: %s", err);
    for (;;) {
        wr_client_reply r;
        int got = wr_client_recv(c, 10000, &r, err, sizeof err);
        char *out;

        cr_assert_eq(got, 1, "no reply to %s: %s", corr, got < 0 ? err : "timeout");
        if (!r.correlation_id || strcmp(r.correlation_id, corr) != 0) {
            wr_client_reply_free(&r);
            continue;
        }
        out = strdup(r.body);
        wr_client_reply_free(&r);
        return out;
    }
}

Test(amqp10_bodies, unwrapped_for_a_raw_route_and_bad_ones_refused, .timeout = 120)
{
    wr_test_warren w = {0};
    char extra[512], q[128], key[160], *reply;
    pid_t before[4], after[4];
    int nbefore, nafter;
    wr_client *c;
    size_t n = 3 + 10000 * 9 + 1, at = n;
    unsigned char *deep = malloc(n);

    wr_test_queue_name(q, sizeof q, "amqp10");
    snprintf(extra, sizeof extra, "[route tutorial]\nqueue = %s.raw\nformat = raw\nmethod = echo\n",
             q);
    wr_test_warren_start(&w, 2, extra, 1);
    nbefore = wr_test_worker_pids(&w, before, 4);
    cr_assert_eq(nbefore, 2);
    c = wr_test_client(WR_CLIENT_REPLY_QUEUE);
    wr_client_set_type(c, "amqp-1.0");
    snprintf(key, sizeof key, "%s.raw", q);

    /* amqp-value int 30: the integer 30, as the text 30 would be. */
    reply = call(c, key, "\x00\x53\x77\x71\x00\x00\x00\x1e", 8, "a-1");
    cr_expect_str_eq(reply, "[30]");
    free(reply);
    /* amqp-value str8 "hi": the text. */
    reply = call(c, key, "\x00\x53\x77\xa1\x02hi", 7, "a-2");
    cr_expect_str_eq(reply, "[\"hi\"]");
    free(reply);
    /* Two data sections: their bytes, concatenated. */
    reply = call(c, key,
                 "\x00\x53\x75\xa0\x01"
                 "4\x00\x53\x75\xa0\x01"
                 "2",
                 12, "a-3");
    cr_expect_str_eq(reply, "[42]");
    free(reply);

    /* An unknown descriptor; a list nested 10,000 deep (list32 each). */
    reply = call(c, key, "\x00\x53\x99\x45", 4, "b-1");
    cr_expect(strstr(reply, "-32700") && strstr(reply, "0x99"), "%s", reply);
    free(reply);
    deep[--at] = 0x45;
    for (int i = 0; i < 10000; i++) {
        unsigned size = (unsigned)(n - at + 4);
        at -= 9;
        deep[at] = 0xd0;
        for (int k = 0; k < 4; k++) {
            deep[at + 1 + k] = (unsigned char)(size >> (24 - 8 * k));
            deep[at + 5 + k] = k == 3 ? 1 : 0;
        }
    }
    memcpy(deep, "\x00\x53\x77", 3);
    reply = call(c, key, (const char *)deep, n, "b-2");
    cr_expect(strstr(reply, "-32700") && strstr(reply, "nested deeper"), "%s", reply);
    free(reply);
    free(deep);

    /* Still served, by the same workers; the bad ones acked. */
    reply = call(c, key, "\x00\x53\x77\x71\x00\x00\x00\x1e", 8, "a-4");
    cr_expect_str_eq(reply, "[30]");
    free(reply);
    nafter = wr_test_worker_pids(&w, after, 4);
    cr_expect_eq(nafter, nbefore);
    for (int i = 0; i < nbefore; i++) {
        int same = 0;
        for (int k = 0; k < nafter; k++)
            same |= after[k] == before[i];
        cr_expect(same, "worker %d restarted", (int)before[i]);
    }
    cr_expect_eq(wr_test_log_count(&w, "bad request"), 2);
    cr_expect_eq(wr_test_queue_stat(key, "messages_unacknowledged"), 0);

    wr_client_close(c);
    cr_expect_eq(wr_test_warren_stop(&w), 0);
}
