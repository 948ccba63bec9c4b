/*
 * common/secret.c: the one URI mask, password files, argv scrubbing and
 * the readable-file warning.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/secret.h"

static const char *mask(const char *uri)
{
    static char buf[256];
    return wr_secret_mask_uri(uri, buf, sizeof buf);
}

Test(secret, the_password_and_only_it_is_masked)
{
    cr_expect_str_eq(mask("amqp://user:pw@host:5672/vhost"), "amqp://user:***@host:5672/vhost");
    cr_expect_str_eq(mask("amqps://u:p%40ss@h/"), "amqps://u:***@h/");
    cr_expect_str_eq(mask("amqp://u:a@b@h/"), "amqp://u:***@h/", "the last @ ends the userinfo");
    cr_expect_str_eq(mask("broker.uri=amqp://u:x@h"), "broker.uri=amqp://u:***@h");
    cr_expect_str_eq(mask("amqp://user@host/v"), "amqp://user@host/v");
    cr_expect_str_eq(mask("amqp://host:5672/v@x"), "amqp://host:5672/v@x", "@ past the authority");
    cr_expect_str_eq(mask("not a uri"), "not a uri");
    cr_expect(wr_secret_uri_has_password("amqp://u:p@h/"));
    cr_expect(!wr_secret_uri_has_password("amqp://u@h:5672/"));
}

static const char *write_temp(const char *text, size_t len)
{
    static char path[] = "/tmp/warren-test-secret.XXXXXX";
    int fd;

    strcpy(path + strlen(path) - 6, "XXXXXX");
    fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

Test(secret, a_password_file_is_one_line_without_its_end)
{
    char err[256];
    char *pw;
    const char *p;

    p = write_temp("hunter2\n", 8);
    pw = wr_secret_read_file(p, err, sizeof err);
    cr_assert_not_null(pw, "%s", err);
    cr_expect_str_eq(pw, "hunter2");
    wr_secret_free(pw);
    unlink(p);

    p = write_temp("no newline", 10);
    pw = wr_secret_read_file(p, err, sizeof err);
    cr_assert_not_null(pw, "%s", err);
    cr_expect_str_eq(pw, "no newline");
    wr_secret_free(pw);
    unlink(p);

    p = write_temp("two\nlines\n", 10);
    cr_expect_null(wr_secret_read_file(p, err, sizeof err));
    cr_expect(strstr(err, "more than one line"), "%s", err);
    unlink(p);

    p = write_temp("\n", 1);
    cr_expect_null(wr_secret_read_file(p, err, sizeof err));
    cr_expect(strstr(err, "is empty"), "%s", err);
    unlink(p);

    cr_expect_null(wr_secret_read_file("/nonexistent/pw", err, sizeof err));
    cr_expect_str_eq(err, "cannot open \"/nonexistent/pw\": No such file or directory");
}

Test(secret, scrubbed_arguments_keep_no_password)
{
    char a0[] = "warren", a1[] = "-o", a2[] = "broker.uri=amqp://u:longpassword@h:1/",
         a3[] = "amqp://u:pw@h/", a4[] = "-c";
    char *argv[] = {a0, a1, a2, a3, a4, NULL};

    cr_expect_eq(wr_secret_scrub_args(5, argv), 2);
    cr_expect_str_eq(a2, "broker.uri=amqp://u:***@h:1/");
    cr_expect_null(memmem(a2, sizeof a2, "longpassword", 12));
    cr_expect_str_eq(a3, "amqp://u:**@h/");
    cr_expect_str_eq(a4, "-c");
}

Test(secret, readable_by_others_is_warned_about)
{
    const char *p = write_temp("[broker]\nuri = amqp://u:p@h/\n", 29);

    cr_assert_eq(chmod(p, 0600), 0);
    cr_expect_eq(wr_secret_warn_if_readable(p, 2), 0);
    cr_assert_eq(chmod(p, 0640), 0);
    cr_expect_eq(wr_secret_warn_if_readable(p, 2), 1);
    cr_assert_eq(chmod(p, 0604), 0);
    cr_expect_eq(wr_secret_warn_if_readable(p, 2), 1);
    unlink(p);
}
