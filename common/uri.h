/*
 * AMQP URIs (amqp[s]://USER:PASSWORD@HOST:PORT/VHOST, RabbitMQ's URI
 * spec), parsed by warren itself rather than by rabbitmq-c's
 * amqp_parse_url, so that the supervisor, which validates the config but
 * never talks to a broker, need not load rabbitmq-c and OpenSSL at all.
 * Every part of warren parses URIs here: what --check accepts is exactly
 * what a worker connects with.
 */
#ifndef WR_URI_H
#define WR_URI_H

#include <amqp.h> /* struct amqp_connection_info: a type only, no code */

/*
 * Parse URL, in place (it is cut and percent-decoded; OUT's strings point
 * into it), as amqp_parse_url does: user and password default to guest,
 * host to localhost, port to 5672 (5671 for amqps), the vhost to "/";
 * "amqp://host/" names the vhost "".  IPv6 hosts go in brackets.
 * Returns 0, or -1 for a malformed URI (a wrong scheme, a bad port or %
 * escape, a '/' in the vhost, a query).
 */
int wr_uri_parse(char *url, struct amqp_connection_info *out);

/* The value of hex digit C, or -1: for percent-decoding (here and in
 * worker/address.c). */
int wr_uri_hex(char c);

#endif
