/* Replies and acks in few sends; see publish.h. */
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
/* Queued frames past this size go at once (resends, big replies): the
 * buffer stays small. */
enum { SEND_AT = 64 * 1024 };

static amqp_connection_state_t direct; /* the connection we may write to */
static unsigned char *buf;             /* frames not sent yet */
static size_t cap, len;                /* its size, and how much of it is used */

void wr_publish_direct(amqp_connection_state_t conn)
{
    direct = conn;
    len = 0; /* what a lost connection did not send is redelivered */
}

void wr_publish_free(void)
{
    free(buf);
    buf = NULL;
    cap = len = 0;
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

/* Frame at P, of TYPE, whose SIZE-octet payload is already at P +
 * FRAME_HEAD: write its head and end.  Its whole size. */
static size_t frame(unsigned char *p, uint8_t type, amqp_channel_t channel, size_t size)
{
    p[0] = type;
    put16(p + 1, channel);
    put32(p + 3, (uint32_t)size);
    p[FRAME_HEAD + size] = FRAME_END;
    return FRAME_OVERHEAD + size;
}

/* Octets left for a payload after a frame head at AT and HEAD octets of
 * the payload, leaving room for the end octet. */
static size_t room(size_t at, size_t head)
{
    size_t need = at + FRAME_OVERHEAD + head;

    return cap > need ? cap - need : 0;
}

/* Method frame ID with arguments M at buf + AT.  Its end, or 0 when it
 * does not fit. */
static size_t encode_method(size_t at, amqp_channel_t channel, amqp_method_number_t id, void *m)
{
    unsigned char *p;
    int n;

    if (room(at, METHOD_HEAD) == 0)
        return 0;
    p = buf + at;
    put32(p + FRAME_HEAD, id);
    n = amqp_encode_method(
        id, m, (amqp_bytes_t){.len = room(at, METHOD_HEAD), .bytes = p + FRAME_HEAD + METHOD_HEAD});
    if (n <= 0)
        return 0;
    return at + frame(p, AMQP_FRAME_METHOD, channel, METHOD_HEAD + (size_t)n);
}

/*
 * A publish's frames at buf + len: the method, the content header and,
 * unless the body is empty, one body frame.  Their end, or 0 when they do
 * not fit in cap octets or the header would be larger than a frame of
 * FRAME_MAX.
 */
static size_t encode(amqp_channel_t channel, amqp_basic_publish_t *m,
                     const amqp_basic_properties_t *props, amqp_bytes_t body, size_t frame_max)
{
    unsigned char *p;
    size_t used;
    int n;

    if (!(used = encode_method(len, channel, AMQP_BASIC_PUBLISH_METHOD, m)))
        return 0;

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

/* All of the pending frames to CONN's socket, waiting while it is full
 * (as rabbitmq-c's own send does for a publish: no deadline). */
static int send_pending(amqp_connection_state_t conn)
{
    int fd = amqp_get_sockfd(conn);
    size_t off = 0;

    while (off < len) {
        ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL);

        if (n > 0) {
            off += (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};

            if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
                break;
        } else if (n == 0 || errno != EINTR) {
            break;
        }
    }
    /* Half sent or not, the rest goes: the connection is lost. */
    int st = off == len ? AMQP_STATUS_OK : AMQP_STATUS_SOCKET_ERROR;

    len = 0;
    return st;
}

/* Room at buf + len for WANT more octets, within LIMIT in all.  0, or -1
 * when over the limit or out of memory (NOMEM says which). */
static int grow(size_t want, size_t limit, int *nomem)
{
    size_t size = cap ? 2 * cap : 4096;
    unsigned char *grown;

    if (cap >= limit)
        return -1;
    while (size < len + want)
        size *= 2;
    if (size > limit)
        size = limit;
    if (!(grown = realloc(buf, size))) {
        *nomem = 1;
        return -1;
    }
    buf = grown;
    cap = size;
    return 0;
}

int wr_publish_flush(amqp_connection_state_t conn)
{
    return conn == direct && len ? send_pending(conn) : AMQP_STATUS_OK;
}

int wr_publish(amqp_connection_state_t conn, amqp_channel_t channel, amqp_bytes_t exchange,
               amqp_bytes_t routing_key, int mandatory, const amqp_basic_properties_t *props,
               amqp_bytes_t body)
{
    amqp_basic_publish_t m = {
        .exchange = exchange, .routing_key = routing_key, .mandatory = mandatory != 0};
    size_t frame_max = (size_t)amqp_get_frame_max(conn), end;
    int nomem = 0, st;

    if (conn == direct && body.len + FRAME_OVERHEAD <= frame_max) {
        /* Room for the frames, up to the most they may take: three of
         * frame_max.  Bigger properties are rabbitmq-c's to refuse. */
        while (!(end = encode(channel, &m, props, body, frame_max)))
            if (grow(3 * FRAME_OVERHEAD + body.len + 512, len + 3 * frame_max, &nomem) < 0) {
                if (nomem)
                    return AMQP_STATUS_NO_MEMORY;
                break;
            }
        if (end) {
            len = end;
            return len < SEND_AT ? AMQP_STATUS_OK : send_pending(conn);
        }
    }
    /* rabbitmq-c's way, after what is pending: the broker numbers
     * publishes for its confirms in the order they arrive. */
    if ((st = wr_publish_flush(conn)) != AMQP_STATUS_OK)
        return st;
    return amqp_basic_publish(conn, channel, exchange, routing_key, mandatory, 0, props, body);
}

int wr_publish_ack(amqp_connection_state_t conn, amqp_channel_t channel, uint64_t tag, int multiple)
{
    amqp_basic_ack_t m = {.delivery_tag = tag, .multiple = multiple != 0};
    size_t end;
    int nomem = 0, st;

    if (conn == direct) {
        while (!(end = encode_method(len, channel, AMQP_BASIC_ACK_METHOD, &m)))
            if (grow(64, len + 4096, &nomem) < 0)
                return AMQP_STATUS_NO_MEMORY;
        len = end;
        return send_pending(conn);
    }
    if ((st = wr_publish_flush(conn)) != AMQP_STATUS_OK)
        return st;
    return amqp_basic_ack(conn, channel, tag, multiple);
}

int wr_publish_reject(amqp_connection_state_t conn, amqp_channel_t channel, uint64_t tag,
                      int requeue)
{
    int st = wr_publish_flush(conn);

    return st != AMQP_STATUS_OK ? st : amqp_basic_reject(conn, channel, tag, requeue);
}
