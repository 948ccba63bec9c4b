/* A reply's publish in one send(); see publish.h. */
#include "worker/publish.h"

#include <amqp_framing.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* A frame: type (1 octet), channel (2), payload size (4), the payload,
 * then the end octet. */
enum { FRAME_HEAD = 7, FRAME_OVERHEAD = FRAME_HEAD + 1, FRAME_END = 0xCE };
/* Ahead of a method's arguments: its class and method ids.  Ahead of a
 * content header's properties: class id, weight (0), body size. */
enum { METHOD_HEAD = 4, CONTENT_HEAD = 12 };

static amqp_connection_state_t direct; /* the connection we may write to */
static unsigned char *buf;             /* the frames of one publish */
static size_t cap;

void wr_publish_direct(amqp_connection_state_t conn)
{
    direct = conn;
}

void wr_publish_free(void)
{
    free(buf);
    buf = NULL;
    cap = 0;
}

static void put16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static void put32(unsigned char *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p + 2, (uint16_t)v);
}

/* Frame at P, of TYPE, whose LEN-octet payload is already at P +
 * FRAME_HEAD: write its head and end.  Its whole size. */
static size_t frame(unsigned char *p, uint8_t type, amqp_channel_t channel, size_t len)
{
    p[0] = type;
    put16(p + 1, channel);
    put32(p + 3, (uint32_t)len);
    p[FRAME_HEAD + len] = FRAME_END;
    return FRAME_OVERHEAD + len;
}

/* Octets left for a payload after a frame head at AT and HEAD octets of
 * the payload, leaving room for the end octet. */
static size_t room(size_t at, size_t head)
{
    size_t need = at + FRAME_OVERHEAD + head;

    return cap > need ? cap - need : 0;
}

/*
 * The publish's frames into buf: the method, the content header and,
 * unless the body is empty, one body frame.  Their total size, or 0 when
 * they do not fit in cap octets or the header would be larger than a
 * frame of FRAME_MAX.
 */
static size_t encode(amqp_channel_t channel, amqp_basic_publish_t *m,
                     const amqp_basic_properties_t *props, amqp_bytes_t body, size_t frame_max)
{
    unsigned char *p = buf;
    size_t used;
    int n;

    if (cap < FRAME_HEAD + METHOD_HEAD)
        return 0;
    put32(p + FRAME_HEAD, AMQP_BASIC_PUBLISH_METHOD);
    n = amqp_encode_method(
        AMQP_BASIC_PUBLISH_METHOD, m,
        (amqp_bytes_t){.len = room(0, METHOD_HEAD), .bytes = p + FRAME_HEAD + METHOD_HEAD});
    if (n <= 0)
        return 0;
    used = frame(p, AMQP_FRAME_METHOD, channel, METHOD_HEAD + (size_t)n);

    p = buf + used;
    if (room(used, CONTENT_HEAD) == 0)
        return 0;
    put16(p + FRAME_HEAD, AMQP_BASIC_CLASS);
    put16(p + FRAME_HEAD + 2, 0);
    put32(p + FRAME_HEAD + 4, (uint32_t)((uint64_t)body.len >> 32));
    put32(p + FRAME_HEAD + 8, (uint32_t)body.len);
    n = amqp_encode_properties(
        AMQP_BASIC_CLASS, (void *)props,
        (amqp_bytes_t){.len = room(used, CONTENT_HEAD), .bytes = p + FRAME_HEAD + CONTENT_HEAD});
    if (n < 0 || FRAME_OVERHEAD + CONTENT_HEAD + (size_t)n > frame_max)
        return 0;
    used += frame(p, AMQP_FRAME_HEADER, channel, CONTENT_HEAD + (size_t)n);

    if (body.len) {
        if (room(used, 0) < body.len)
            return 0;
        p = buf + used;
        memcpy(p + FRAME_HEAD, body.bytes, body.len);
        used += frame(p, AMQP_FRAME_BODY, channel, body.len);
    }
    return used;
}

/* All LEN octets at P to FD, waiting while the socket is full (as
 * rabbitmq-c's own send does for a publish: no deadline). */
static int send_all(int fd, const unsigned char *p, size_t len)
{
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

        if (n > 0) {
            p += n;
            len -= (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};

            if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
                return AMQP_STATUS_SOCKET_ERROR;
        } else if (n == 0 || errno != EINTR) {
            return AMQP_STATUS_SOCKET_ERROR;
        }
    }
    return AMQP_STATUS_OK;
}

int wr_publish(amqp_connection_state_t conn, amqp_channel_t channel, amqp_bytes_t exchange,
               amqp_bytes_t routing_key, int mandatory, const amqp_basic_properties_t *props,
               amqp_bytes_t body)
{
    amqp_basic_publish_t m = {
        .exchange = exchange, .routing_key = routing_key, .mandatory = mandatory != 0};
    size_t frame_max = (size_t)amqp_get_frame_max(conn), len;

    if (conn == direct && body.len + FRAME_OVERHEAD <= frame_max) {
        /* Room for the frames, up to the most they may take: three of
         * frame_max.  Bigger properties are rabbitmq-c's to refuse. */
        for (;;) {
            if ((len = encode(channel, &m, props, body, frame_max)))
                return send_all(amqp_get_sockfd(conn), buf, len);
            if (cap >= 3 * frame_max)
                break;
            size_t want = cap ? 2 * cap : 4096 + body.len;
            unsigned char *grown;

            if (want > 3 * frame_max)
                want = 3 * frame_max;
            if (!(grown = realloc(buf, want)))
                return AMQP_STATUS_NO_MEMORY;
            buf = grown;
            cap = want;
        }
    }
    return amqp_basic_publish(conn, channel, exchange, routing_key, mandatory, 0, props, body);
}
